/* ring.c — the bounded FIFO of line-protocol chunks between the pollers and
 * the InfluxDB writer: a circular array under one mutex, never blocking the
 * producers; when full, the oldest chunk goes (counted) so the newest data
 * survives. The array grows with what is queued, up to its bound: the head
 * going round an array sized for the bound would touch all of it (1.5 MiB
 * for 65536 chunks) however little is ever queued. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "output/ring.h"
#include "util/timeutil.h"

/* Slots at first (or max_chunks if fewer); doubled as needed. */
#define RING_SLOTS_MIN 64

struct pm_ring {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;	/* CLOCK_MONOTONIC */
	struct pm_chunk *slot;
	size_t n_slot;			/* allocated, <= max_chunks */
	size_t max_chunks, max_bytes;
	size_t head;			/* oldest */
	size_t count;
	size_t bytes, lines;		/* of the queued chunks */
	uint64_t dropped_lines, dropped_chunks;
	bool closed;
	bool kicked;
};

int pm_ring_new(struct pm_ring **r, size_t max_chunks, size_t max_bytes)
{
	pthread_condattr_t ca;
	struct pm_ring *ring;

	if (max_chunks == 0 || max_bytes == 0)
		return -EINVAL;
	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	ring->n_slot = max_chunks < RING_SLOTS_MIN ? max_chunks : RING_SLOTS_MIN;
	ring->slot = calloc(ring->n_slot, sizeof(*ring->slot));
	if (!ring->slot) {
		free(ring);
		return -ENOMEM;
	}
	ring->max_chunks = max_chunks;
	ring->max_bytes = max_bytes;
	(void)pthread_mutex_init(&ring->lock, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&ring->nonempty, &ca);
	(void)pthread_condattr_destroy(&ca);
	*r = ring;
	return 0;
}

void pm_ring_free(struct pm_ring *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		free(r->slot[(r->head + i) % r->n_slot].text);
	free(r->slot);
	(void)pthread_cond_destroy(&r->nonempty);
	(void)pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Removes the oldest chunk into *c; the lock is held and count > 0. */
static void ring_pop(struct pm_ring *r, struct pm_chunk *c)
{
	*c = r->slot[r->head];
	r->slot[r->head].text = NULL;
	r->head = (r->head + 1) % r->n_slot;
	r->count--;
	r->bytes -= c->len;
	r->lines -= c->lines;
}

/* Doubles the array (up to max_chunks), the queue moved to its start; the
 * lock is held. -ENOMEM leaves it as it was. */
static int ring_grow(struct pm_ring *r)
{
	size_t n = r->n_slot * 2 > r->max_chunks ? r->max_chunks : r->n_slot * 2;
	struct pm_chunk *slot = calloc(n, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < r->count; i++)
		slot[i] = r->slot[(r->head + i) % r->n_slot];
	free(r->slot);
	r->slot = slot;
	r->n_slot = n;
	r->head = 0;
	return 0;
}

int pm_ring_put(struct pm_ring *r, struct pm_chunk *c)
{
	struct pm_chunk old;
	int dropped = 0;

	(void)pthread_mutex_lock(&r->lock);
	if (c->len > r->max_bytes) {
		/* could never fit: it is the one to go */
		r->dropped_lines += c->lines;
		r->dropped_chunks++;
		(void)pthread_mutex_unlock(&r->lock);
		free(c->text);
		c->text = NULL;
		return 1;
	}
	if (r->count == r->n_slot && r->n_slot < r->max_chunks)
		(void)ring_grow(r);	/* out of memory: as if full */
	while (r->count == r->n_slot ||
	       r->bytes + c->len > r->max_bytes) {
		ring_pop(r, &old);
		r->dropped_lines += old.lines;
		r->dropped_chunks++;
		free(old.text);
		dropped = 1;
	}
	r->slot[(r->head + r->count) % r->n_slot] = *c;
	r->count++;
	r->bytes += c->len;
	r->lines += c->lines;
	c->text = NULL;
	(void)pthread_cond_signal(&r->nonempty);
	(void)pthread_mutex_unlock(&r->lock);
	return dropped;
}

int pm_ring_take(struct pm_ring *r, struct pm_chunk *c, int timeout_ms)
{
	struct timespec deadline;
	int r_wait = 0, ret;

	if (timeout_ms > 0)
		deadline = pm_mono_timespec(pm_mono_ns() +
					    (int64_t)timeout_ms * 1000000);
	(void)pthread_mutex_lock(&r->lock);
	while (r->count == 0 && !r->closed && !r->kicked &&
	       r_wait != ETIMEDOUT) {
		if (timeout_ms == 0)
			r_wait = ETIMEDOUT;
		else if (timeout_ms < 0)
			(void)pthread_cond_wait(&r->nonempty, &r->lock);
		else
			r_wait = pthread_cond_timedwait(&r->nonempty,
							&r->lock, &deadline);
	}
	if (r->count > 0) {
		ring_pop(r, c);
		ret = 0;
	} else if (r->kicked) {
		r->kicked = false;
		ret = -EINTR;
	} else {
		ret = r->closed ? -ECANCELED : -ETIMEDOUT;
	}
	(void)pthread_mutex_unlock(&r->lock);
	return ret;
}

void pm_ring_kick(struct pm_ring *r)
{
	(void)pthread_mutex_lock(&r->lock);
	r->kicked = true;
	(void)pthread_cond_signal(&r->nonempty);
	(void)pthread_mutex_unlock(&r->lock);
}

void pm_ring_close(struct pm_ring *r)
{
	(void)pthread_mutex_lock(&r->lock);
	r->closed = true;
	(void)pthread_cond_broadcast(&r->nonempty);
	(void)pthread_mutex_unlock(&r->lock);
}

void pm_ring_stats(struct pm_ring *r, size_t *queued_lines,
		   uint64_t *dropped_lines)
{
	(void)pthread_mutex_lock(&r->lock);
	if (queued_lines)
		*queued_lines = r->lines;
	if (dropped_lines)
		*dropped_lines = r->dropped_lines;
	(void)pthread_mutex_unlock(&r->lock);
}

void pm_ring_usage(struct pm_ring *r, size_t *chunks, size_t *bytes)
{
	(void)pthread_mutex_lock(&r->lock);
	if (chunks)
		*chunks = r->count;
	if (bytes)
		*bytes = r->bytes;
	(void)pthread_mutex_unlock(&r->lock);
}
