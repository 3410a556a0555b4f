/* test_ring.c — the poller→writer queue: FIFO order, overflow dropping the
 * oldest (counted), timeouts, close semantics, and several producers
 * against one consumer without losing or reordering anything. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "output/ring.h"
#include "util/timeutil.h"

/* A chunk whose text is "<n>\n" repeated 'lines' times. */
static struct pm_chunk chunk(unsigned n, size_t lines)
{
	struct pm_chunk c = { .lines = lines };
	char one[16];
	int len = snprintf(one, sizeof(one), "%u\n", n);

	c.len = (size_t)len * lines;
	c.text = malloc(c.len + 1);
	assert_non_null(c.text);
	for (size_t i = 0; i < lines; i++)
		memcpy(c.text + i * (size_t)len, one, (size_t)len);
	c.text[c.len] = '\0';
	return c;
}

static unsigned chunk_number(const struct pm_chunk *c)
{
	return (unsigned)strtoul(c->text, NULL, 10);
}

static void test_fifo(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;
	size_t queued;
	uint64_t dropped;

	(void)state;
	assert_int_equal(pm_ring_new(&r, 8, 4096), 0);
	for (unsigned i = 0; i < 5; i++) {
		c = chunk(i, 2);
		assert_int_equal(pm_ring_put(r, &c), 0);
		assert_null(c.text);	/* ownership went to the ring */
	}
	pm_ring_stats(r, &queued, &dropped);
	assert_int_equal(queued, 10);
	assert_int_equal(dropped, 0);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(pm_ring_take(r, &c, 0), 0);
		assert_int_equal(chunk_number(&c), i);
		assert_int_equal(c.lines, 2);
		free(c.text);
	}
	assert_int_equal(pm_ring_take(r, &c, 0), -ETIMEDOUT);
	pm_ring_stats(r, &queued, NULL);
	assert_int_equal(queued, 0);
	pm_ring_free(r);
}

static void test_wraps_around(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;

	(void)state;
	assert_int_equal(pm_ring_new(&r, 11, 4096), 0);
	for (unsigned i = 0; i < 20; i++) {
		c = chunk(i, 1);
		assert_int_equal(pm_ring_put(r, &c), 0);
		if (i % 2) {
			assert_int_equal(pm_ring_take(r, &c, 0), 0);
			assert_int_equal(chunk_number(&c), i / 2);
			free(c.text);
		}
	}
	pm_ring_free(r);	/* frees the 10 still queued */
}

static void test_overflow_by_count_drops_oldest(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;
	uint64_t dropped;
	size_t queued;

	(void)state;
	assert_int_equal(pm_ring_new(&r, 4, 1 << 20), 0);
	for (unsigned i = 0; i < 4; i++) {
		c = chunk(i, 3);
		assert_int_equal(pm_ring_put(r, &c), 0);
	}
	c = chunk(4, 3);
	assert_int_equal(pm_ring_put(r, &c), 1);	/* chunk 0 went */
	c = chunk(5, 3);
	assert_int_equal(pm_ring_put(r, &c), 1);	/* chunk 1 went */
	pm_ring_stats(r, &queued, &dropped);
	assert_int_equal(dropped, 6);
	assert_int_equal(queued, 12);
	for (unsigned want = 2; want < 6; want++) {
		assert_int_equal(pm_ring_take(r, &c, 0), 0);
		assert_int_equal(chunk_number(&c), want);
		free(c.text);
	}
	pm_ring_free(r);
}

static void test_overflow_by_bytes(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;
	uint64_t dropped;
	size_t chunks, bytes;

	(void)state;
	/* "1\n" x 10 = 20 bytes per chunk; room for 3 */
	assert_int_equal(pm_ring_new(&r, 100, 65), 0);
	for (unsigned i = 1; i <= 3; i++) {
		c = chunk(i, 10);
		assert_int_equal(pm_ring_put(r, &c), 0);
	}
	pm_ring_usage(r, &chunks, &bytes);
	assert_int_equal(chunks, 3);
	assert_int_equal(bytes, 60);
	c = chunk(4, 10);
	assert_int_equal(pm_ring_put(r, &c), 1);
	pm_ring_stats(r, NULL, &dropped);
	assert_int_equal(dropped, 10);
	assert_int_equal(pm_ring_take(r, &c, 0), 0);
	assert_int_equal(chunk_number(&c), 2);
	free(c.text);

	/* a chunk larger than the whole ring is the one dropped */
	c = chunk(9, 40);
	assert_int_equal(pm_ring_put(r, &c), 1);
	assert_null(c.text);
	pm_ring_stats(r, NULL, &dropped);
	assert_int_equal(dropped, 50);
	pm_ring_usage(r, &chunks, NULL);
	assert_int_equal(chunks, 2);
	pm_ring_free(r);
}

static void test_take_timeout(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;
	int64_t t0, waited;

	(void)state;
	assert_int_equal(pm_ring_new(&r, 4, 1024), 0);
	t0 = pm_mono_ns();
	assert_int_equal(pm_ring_take(r, &c, 50), -ETIMEDOUT);
	waited = pm_mono_ns() - t0;
	assert_true(waited >= 50 * 1000000LL);
	assert_true(waited < 5000 * 1000000LL);
	pm_ring_free(r);
}

static void test_close_drains_then_cancels(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;

	(void)state;
	assert_int_equal(pm_ring_new(&r, 4, 1024), 0);
	c = chunk(1, 1);
	assert_int_equal(pm_ring_put(r, &c), 0);
	pm_ring_close(r);
	/* what was queued is still handed out, even with a wait */
	assert_int_equal(pm_ring_take(r, &c, -1), 0);
	assert_int_equal(chunk_number(&c), 1);
	free(c.text);
	assert_int_equal(pm_ring_take(r, &c, -1), -ECANCELED);
	assert_int_equal(pm_ring_take(r, &c, 100), -ECANCELED);
	/* a late put is accepted (and freed with the ring) */
	c = chunk(2, 1);
	assert_int_equal(pm_ring_put(r, &c), 0);
	assert_int_equal(pm_ring_take(r, &c, 0), 0);
	free(c.text);
	c = chunk(3, 1);
	assert_int_equal(pm_ring_put(r, &c), 0);
	pm_ring_free(r);
}

static void test_kick_after_queued(void **state)
{
	struct pm_ring *r;
	struct pm_chunk c;
	uint64_t dropped;

	(void)state;
	assert_int_equal(pm_ring_new(&r, 2, 1024), 0);
	c = chunk(1, 1);
	assert_int_equal(pm_ring_put(r, &c), 0);
	c = chunk(2, 1);
	assert_int_equal(pm_ring_put(r, &c), 0);
	/* a kick on a full ring drops nothing */
	pm_ring_kick(r);
	pm_ring_stats(r, NULL, &dropped);
	assert_int_equal(dropped, 0);
	/* what was put before the kick comes first, then the kick, once */
	assert_int_equal(pm_ring_take(r, &c, 0), 0);
	assert_int_equal(chunk_number(&c), 1);
	free(c.text);
	assert_int_equal(pm_ring_take(r, &c, 0), 0);
	assert_int_equal(chunk_number(&c), 2);
	free(c.text);
	assert_int_equal(pm_ring_take(r, &c, 1000), -EINTR);
	assert_int_equal(pm_ring_take(r, &c, 0), -ETIMEDOUT);
	pm_ring_free(r);
}

struct waiter {
	struct pm_ring *ring;
	int result;
};

static void *wait_forever(void *arg)
{
	struct waiter *w = arg;
	struct pm_chunk c;

	w->result = pm_ring_take(w->ring, &c, -1);
	if (w->result == 0)
		free(c.text);
	return NULL;
}

static void test_close_wakes_consumer(void **state)
{
	struct waiter w = { .result = 1 };
	pthread_t t;

	(void)state;
	assert_int_equal(pm_ring_new(&w.ring, 4, 1024), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_forever, &w), 0);
	pm_sleep_until_ns(pm_mono_ns() + 20 * 1000000LL);
	pm_ring_close(w.ring);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.result, -ECANCELED);
	pm_ring_free(w.ring);
}

#define PRODUCERS 4
#define PER_PRODUCER 20000

struct producer {
	struct pm_ring *ring;
	unsigned id;
};

static atomic_int producers_done;

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		struct pm_chunk c = chunk(p->id * 1000000 + i, 1);

		(void)pm_ring_put(p->ring, &c);
	}
	atomic_fetch_add(&producers_done, 1);
	return NULL;
}

/* Several pollers, one writer: every chunk arrives once, each producer's
 * in its order (the ring is large enough that nothing is dropped). */
static void test_kick_wakes_consumer(void **state)
{
	struct waiter w = { .result = 1 };
	pthread_t t;

	(void)state;
	assert_int_equal(pm_ring_new(&w.ring, 4, 1024), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_forever, &w), 0);
	pm_sleep_until_ns(pm_mono_ns() + 20 * 1000000LL);
	pm_ring_kick(w.ring);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.result, -EINTR);
	pm_ring_free(w.ring);
}

static void test_threads(void **state)
{
	struct producer p[PRODUCERS];
	pthread_t t[PRODUCERS];
	unsigned next[PRODUCERS] = {0};
	struct pm_ring *r;
	struct pm_chunk c;
	unsigned got = 0;
	uint64_t dropped;

	(void)state;
	assert_int_equal(pm_ring_new(&r, PRODUCERS * PER_PRODUCER,
				     64u * 1024 * 1024), 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		p[i].ring = r;
		p[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
	}
	while (got < PRODUCERS * PER_PRODUCER) {
		unsigned n, who;

		assert_int_equal(pm_ring_take(r, &c, 10000), 0);
		n = chunk_number(&c);
		who = n / 1000000;
		assert_true(who < PRODUCERS);
		assert_int_equal(n % 1000000, next[who]);
		next[who]++;
		got++;
		free(c.text);
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pm_ring_stats(r, NULL, &dropped);
	assert_int_equal(dropped, 0);
	assert_int_equal(pm_ring_take(r, &c, 0), -ETIMEDOUT);
	pm_ring_free(r);
}

/* A small ring under the same load: what arrives plus what was dropped is
 * everything, and each producer's chunks still arrive in order. */
static void test_threads_overflow_accounting(void **state)
{
	struct producer p[PRODUCERS];
	pthread_t t[PRODUCERS];
	long last[PRODUCERS];
	struct pm_ring *r;
	struct pm_chunk c;
	uint64_t got = 0, dropped;
	int done = 0;

	(void)state;
	atomic_store(&producers_done, 0);
	for (unsigned i = 0; i < PRODUCERS; i++)
		last[i] = -1;
	assert_int_equal(pm_ring_new(&r, 64, 1 << 20), 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		p[i].ring = r;
		p[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
	}
	while (!done) {
		int res = pm_ring_take(r, &c, 10);

		if (res == -ETIMEDOUT) {
			done = atomic_load(&producers_done) == PRODUCERS;
			continue;
		}
		unsigned n, who;

		assert_int_equal(res, 0);
		n = chunk_number(&c);
		who = n / 1000000;
		assert_true((long)(n % 1000000) > last[who]);
		last[who] = n % 1000000;
		got++;
		free(c.text);
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	while (pm_ring_take(r, &c, 0) == 0) {
		got++;
		free(c.text);
	}
	pm_ring_stats(r, NULL, &dropped);
	assert_int_equal(got + dropped, PRODUCERS * PER_PRODUCER);
	pm_ring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_wraps_around),
		cmocka_unit_test(test_overflow_by_count_drops_oldest),
		cmocka_unit_test(test_overflow_by_bytes),
		cmocka_unit_test(test_take_timeout),
		cmocka_unit_test(test_close_drains_then_cancels),
		cmocka_unit_test(test_close_wakes_consumer),
		cmocka_unit_test(test_kick_after_queued),
		cmocka_unit_test(test_kick_wakes_consumer),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_threads_overflow_accounting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
