/* test_daemon.c — the daemon's pure logic: tick arithmetic (no drift, skipped
 * ticks counted, never bunched up), the complaint rate limits, and the
 * pollers against a port that does not exist, through a recording sink. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/complain.c"
#include "../../src/daemon/sinkset.c"
#include "../../src/daemon/poller.c"

#define MS (1000000LL)
#define SEC (1000000000LL)

static void tick_next_on_time(void **unused)
{
	uint64_t missed = 0;

	(void)unused;
	/* finished early: the next slot, nothing missed */
	assert_int_equal(pm_tick_next(10 * SEC, SEC, 10 * SEC + 300 * MS, &missed),
			 11 * SEC);
	assert_int_equal(missed, 0);
	/* 1000 ticks later the schedule has not drifted by a nanosecond */
	int64_t d = 5 * SEC;

	for (int i = 0; i < 1000; i++)
		d = pm_tick_next(d, 250 * MS, d + 7 * MS, &missed);
	assert_int_equal(d, 5 * SEC + 1000 * 250 * MS);
	assert_int_equal(missed, 0);
}

static void tick_next_overrun_skips(void **unused)
{
	uint64_t missed = 0;
	int64_t next;

	(void)unused;
	/* a tick that took 2.5 intervals: slots 11 and 12 are gone */
	next = pm_tick_next(10 * SEC, SEC, 12 * SEC + 500 * MS, &missed);
	assert_int_equal(next, 13 * SEC);
	assert_int_equal(missed, 2);
	/* exactly on the next slot: that slot has started, it is missed */
	missed = 0;
	next = pm_tick_next(10 * SEC, SEC, 11 * SEC, &missed);
	assert_int_equal(next, 12 * SEC);
	assert_int_equal(missed, 1);
	/* never a deadline in the past, whatever the delay */
	for (int64_t late = 0; late < 10 * SEC; late += 37 * MS) {
		int64_t now = 10 * SEC + late;

		missed = 0;
		next = pm_tick_next(10 * SEC, 300 * MS, now, &missed);
		assert_true(next > now);
		assert_true(next - now <= 300 * MS);
		assert_int_equal((next - 10 * SEC) / (300 * MS) - 1, missed);
	}
}

static void tick_first_aligned(void **unused)
{
	(void)unused;
	/* wall clock at x.3 s: the first tick is 0.7 s ahead, at a whole
	 * second of the wall clock */
	assert_int_equal(pm_tick_first(SEC, 1700000000 * SEC + 300 * MS, 50 * SEC),
			 50 * SEC + 700 * MS);
	assert_int_equal(pm_tick_first(250 * MS, 1700000000 * SEC + 300 * MS, 50 * SEC),
			 50 * SEC + 200 * MS);
	/* exactly on a slot: the next one, not now */
	assert_int_equal(pm_tick_first(SEC, 1700000000 * SEC, 50 * SEC), 51 * SEC);
}

static void complain_backs_off(void **unused)
{
	struct pm_complaint c = { 0 };
	unsigned logged[16], n = 0, failures;
	int64_t dur;

	(void)unused;
	for (unsigned i = 1; i <= 100; i++)
		if (pm_complain_failure(&c, (int64_t)i * SEC)) {
			assert_true(n < 16);
			logged[n++] = i;
		}
	assert_int_equal(n, 7);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(logged[i], 1u << i);	/* 1 2 4 ... 64 */
	assert_true(pm_complain_success(&c, 101 * SEC, &failures, &dur));
	assert_int_equal(failures, 100);
	assert_int_equal(dur, 100 * SEC);
	/* nothing to say after a success without failures */
	assert_false(pm_complain_success(&c, 102 * SEC, &failures, &dur));
	/* failing again soon after: the same episode, still backing off */
	assert_false(pm_complain_failure(&c, 103 * SEC));
	assert_false(pm_complain_success(&c, 104 * SEC, &failures, &dur));
	/* after a calm hour a failure is news again */
	assert_true(pm_complain_failure(&c, 103 * SEC + PM_COMPLAIN_CALM_NS));
	assert_int_equal(c.episode_failures, 1);
}

static void complain_flapping(void **unused)
{
	struct pm_complaint c = { 0 };
	unsigned lines = 0, failures;
	int64_t dur;

	(void)unused;
	/* a module failing every other read for 1000 reads: a handful of
	 * lines, not 1000 */
	for (unsigned i = 0; i < 1000; i++) {
		int64_t t = (int64_t)i * SEC;

		if (i % 2)
			lines += pm_complain_success(&c, t, &failures, &dur);
		else
			lines += pm_complain_failure(&c, t);
	}
	assert_true(lines >= 10);	/* 1 2 4 ... 256 and their recoveries */
	assert_true(lines <= 20);
}

static void complain_hourly_at_least(void **unused)
{
	struct pm_complaint c = { 0 };
	int64_t t = 0;
	unsigned n = 0;

	(void)unused;
	/* one failure every 10 min for a day: logs at 1, 2, 4, 8, 16 and then
	 * at least once an hour */
	for (unsigned i = 0; i < 144; i++, t += 600 * SEC)
		n += pm_complain_failure(&c, t);
	assert_true(n >= 24);
	assert_true(n <= 30);
}

static void complain_min_quiet(void **unused)
{
	struct pm_complaint c = { .min_quiet_ns = 300 * SEC };
	unsigned logged[16], n = 0, failures;
	int64_t dur;

	(void)unused;
	/* a database retried every second for 20 minutes: the first failure
	 * at once, then backing off but never twice within 5 minutes */
	for (unsigned i = 1; i <= 1200; i++)
		if (pm_complain_failure(&c, (int64_t)i * SEC)) {
			assert_true(n < 16);
			logged[n++] = i;
		}
	assert_int_equal(logged[0], 1);
	for (unsigned i = 1; i < n; i++)
		assert_true(logged[i] - logged[i - 1] >= 300);
	assert_int_equal(n, 3);		/* 1, 301 (count >= 2), 602 (>= 602) */
	/* the recovery is still told, and a new episode starts at once */
	assert_true(pm_complain_success(&c, 1201 * SEC, &failures, &dur));
	assert_true(pm_complain_failure(&c, 1201 * SEC + PM_COMPLAIN_CALM_NS));
}

static void complain_durations(void **unused)
{
	char b[32];

	(void)unused;
	pm_complain_duration(b, sizeof(b), 37 * SEC);
	assert_string_equal(b, "37 s");
	pm_complain_duration(b, sizeof(b), 12 * 60 * SEC + 5 * SEC);
	assert_string_equal(b, "12 min");
	pm_complain_duration(b, sizeof(b), (3 * 3600 + 5 * 60) * SEC);
	assert_string_equal(b, "3 h 5 min");
	pm_complain_duration(b, sizeof(b), (2 * 86400 + 3600) * SEC);
	assert_string_equal(b, "2 d 1 h");
}

/* ---- pollers against a missing port, through a recording sink ---------- */

struct record {
	pthread_mutex_t lock;
	unsigned emits[2], samples, ticks;
	int last_error[2];
	unsigned consecutive[2];
};

static bool rec_wanted(const struct pm_config *cfg)
{
	(void)cfg;
	return true;
}

static void rec_emit(void *state, const struct pm_config *cfg, size_t device,
		     const struct pm_sample *s, const struct pm_device_state *st)
{
	struct record *r = state;

	(void)cfg;
	pthread_mutex_lock(&r->lock);
	r->emits[device]++;
	r->samples += s != NULL;
	r->last_error[device] = st->last_error;
	r->consecutive[device] = st->consecutive_failures;
	pthread_mutex_unlock(&r->lock);
}

static void rec_tick_done(void *state, const struct pm_config *cfg)
{
	struct record *r = state;

	(void)cfg;
	pthread_mutex_lock(&r->lock);
	r->ticks++;
	pthread_mutex_unlock(&r->lock);
}

static void pollers_missing_port(void **unused)
{
	static const struct pm_sink_ops rec_ops = {
		.name = "record",
		.wanted = rec_wanted,
		.emit = rec_emit,
		.tick_done = rec_tick_done,
	};
	struct pm_input in = { .channel = 0, .ratio = 0.01, .name = (char *)"a" };
	struct pm_device devs[2] = {
		{ .id = 1, .port = (char *)"/nonexistent/ttyUSB9", .address = 1,
		  .line = { 9600, 'N', 8, 1 }, .timeout = 0.1, .n_inputs = 1,
		  .inputs = &in },
		{ .id = 2, .port = (char *)"/nonexistent/ttyUSB9", .address = 2,
		  .line = { 9600, 'N', 8, 1 }, .timeout = 0.1, .n_inputs = 1,
		  .inputs = &in },
	};
	struct pm_config cfg = { .interval = 0.02, .n_devices = 2, .devices = devs,
				 .n_inputs = 2 };
	struct record rec = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct pm_sinkset set = { .cfg = &cfg, .n = 1, .ops = { &rec_ops },
				  .state = { &rec } };
	struct pm_pollers *p = NULL;
	struct pm_pollers_health h;
	unsigned ticks = 0;
	int64_t t0;

	(void)unused;
	assert_int_equal(pm_pollers_start(&p, &cfg, &set, NULL, NULL), 0);
	for (int i = 0; i < 500 && ticks < 10; i++) {
		usleep(10000);
		pthread_mutex_lock(&rec.lock);
		ticks = rec.ticks;
		pthread_mutex_unlock(&rec.lock);
	}
	assert_true(ticks >= 10);
	pm_pollers_health(p, pm_mono_ns(), &h);
	assert_int_equal(h.ports, 1);
	assert_int_equal(h.ports_down, 1);
	assert_int_equal(h.modules, 2);
	assert_int_equal(h.modules_up, 0);
	assert_true(h.all_recent);
	/* one poller for the shared port: stopping it is immediate */
	t0 = pm_mono_ns();
	pm_pollers_stop(p);
	assert_true(pm_mono_ns() - t0 < 200 * MS);

	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.samples, 0);
	/* both modules tried at every tick, the failure counted */
	assert_true(rec.emits[0] >= rec.ticks - 1 && rec.emits[1] >= rec.ticks - 1);
	assert_int_equal(rec.last_error[0], -ENOENT);
	assert_int_equal(rec.last_error[1], -ENOENT);
	assert_int_equal(rec.consecutive[0], rec.emits[0]);
	pthread_mutex_unlock(&rec.lock);
}

/* Two ports whose modules never answer (ptys nobody serves): their ticks
 * overlap as real ones do, and the sinks hear one tick_done per tick. */
static void tick_done_once_per_tick_of_all_ports(void **unused)
{
	static const struct pm_sink_ops rec_ops = {
		.name = "record",
		.wanted = rec_wanted,
		.emit = rec_emit,
		.tick_done = rec_tick_done,
	};
	struct pm_input in = { .channel = 0, .ratio = 0.01, .name = (char *)"a" };
	struct pm_device devs[2] = {
		{ .id = 1, .address = 1, .line = { 9600, 'N', 8, 1 },
		  .timeout = 0.03, .n_inputs = 1, .inputs = &in },
		{ .id = 2, .address = 1, .line = { 9600, 'N', 8, 1 },
		  .timeout = 0.03, .n_inputs = 1, .inputs = &in },
	};
	struct pm_config cfg = { .interval = 0.1, .n_devices = 2, .devices = devs,
				 .n_inputs = 2 };
	struct record rec = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct pm_sinkset set = { .cfg = &cfg, .n = 1, .ops = { &rec_ops },
				  .state = { &rec } };
	struct pm_pollers *p = NULL;
	struct pm_pollers_health h;
	char names[2][64];
	int masters[2];

	(void)unused;
	for (int i = 0; i < 2; i++) {
		masters[i] = posix_openpt(O_RDWR | O_NOCTTY);
		assert_true(masters[i] >= 0);
		assert_int_equal(grantpt(masters[i]), 0);
		assert_int_equal(unlockpt(masters[i]), 0);
		assert_int_equal(ptsname_r(masters[i], names[i], sizeof(names[i])), 0);
		devs[i].port = names[i];
	}
	assert_int_equal(pm_pollers_start(&p, &cfg, &set, NULL, NULL), 0);
	for (int i = 0; i < 500; i++) {
		usleep(20000);
		pm_pollers_health(p, pm_mono_ns(), &h);
		if (h.ticks >= 30)
			break;
	}
	pm_pollers_stop(p);
	for (int i = 0; i < 2; i++)
		close(masters[i]);
	assert_int_equal(h.ports, 2);
	assert_int_equal(h.ports_down, 0);
	assert_true(h.ticks >= 30);
	pthread_mutex_lock(&rec.lock);
	/* every read failed by timeout: the ports were open */
	assert_int_equal(rec.last_error[0], -ETIMEDOUT);
	assert_int_equal(rec.last_error[1], -ETIMEDOUT);
	/* one tick_done per pair of port ticks (give or take the last) */
	assert_true(rec.ticks + 1 >= h.ticks / 2);
	assert_true(rec.ticks <= h.ticks / 2 + 1);
	pthread_mutex_unlock(&rec.lock);
}

/* ---- the sinks' STATUS= parts ------------------------------------------ */

static void status_says(void *state, struct pm_buf *out)
{
	(void)pm_buf_adds(out, state);
}

static void status_silent(void *state, struct pm_buf *out)
{
	(void)state;
	(void)out;
}

static void sinkset_status_skips_a_silent_sink(void **unused)
{
	static const struct pm_sink_ops says = { .name = "says",
						 .status = status_says };
	static const struct pm_sink_ops silent = { .name = "silent",
						   .status = status_silent };
	struct pm_sinkset set = { .n = 3, .ops = { &says, &silent, &says },
				  .state = { "influx ok", NULL, "snapshot ok" } };
	struct pm_buf b;

	(void)unused;
	pm_buf_init(&b, 512);
	(void)pm_buf_adds(&b, "2/2 modules up");
	pm_sinkset_status(&set, &b);
	assert_string_equal(b.data, "2/2 modules up; influx ok; snapshot ok");
	/* a silent last sink leaves no separator behind */
	set.n = 2;
	pm_buf_reset(&b);
	(void)pm_buf_adds(&b, "2/2 modules up");
	pm_sinkset_status(&set, &b);
	assert_string_equal(b.data, "2/2 modules up; influx ok");
	pm_buf_free(&b);
}

/* The hang point's file (PM_TEST_HANG=poller:FILE, set in main() before
 * any poller runs; the poller hangs at the start of a tick while it exists). */
static char hang_file[64];

/* The poller's state, under the group's lock (poller.c is included). */
static void poller_state(struct pm_pollers *g, uint64_t *ticks, bool *in_tick,
			 int64_t *alive_ns)
{
	pthread_mutex_lock(&g->lock);
	*ticks = g->pollers[0].ticks;
	*in_tick = g->pollers[0].in_tick;
	*alive_ns = g->pollers[0].alive_ns;
	pthread_mutex_unlock(&g->lock);
}

/* Returns just after the poller finished a tick: the next is an interval
 * (1 s) away. */
static void after_a_tick(struct pm_pollers *g)
{
	const struct timespec poll = { 0, 5 * MS };
	uint64_t t0, t;
	bool in_tick;
	int64_t alive;

	poller_state(g, &t0, &in_tick, &alive);
	do {
		(void)nanosleep(&poll, NULL);
		poller_state(g, &t, &in_tick, &alive);
	} while (t == t0);
}

/* The stuck-poller case's poller and what it reads: static, and stopped by
 * the teardown, so that a failed assertion (which leaves the test at once)
 * does not leave the thread running on a finished test's stack. */
static struct pm_input stuck_in = { .channel = 0, .ratio = 0.01, .name = (char *)"a" };
static struct pm_device stuck_dev = { .id = 1, .port = (char *)"/nonexistent/x",
				      .address = 1, .line = { 9600, 'N', 8, 1 },
				      .timeout = 0.5, .n_inputs = 1, .inputs = &stuck_in };
static struct pm_config stuck_cfg = { .interval = 1, .n_devices = 1, .devices = &stuck_dev };
static struct pm_sinkset stuck_set = { .cfg = &stuck_cfg };
static struct pm_pollers *stuck_pollers;

static int stop_stuck_poller(void **unused)
{
	(void)unused;
	(void)unlink(hang_file);
	if (stuck_pollers)
		pm_pollers_stop(stuck_pollers);
	stuck_pollers = NULL;
	return 0;
}

static void health_notices_a_stuck_poller(void **unused)
{
	struct pm_pollers_health h;
	const struct timespec poll = { 0, 5 * MS };
	const char *port = NULL;
	struct pm_pollers *p;
	uint64_t ticks;
	bool in_tick = false;
	int64_t alive;
	int fd;

	(void)unused;
	assert_int_equal(pm_pollers_start(&stuck_pollers, &stuck_cfg, &stuck_set,
					  NULL, NULL), 0);
	p = stuck_pollers;
	/* one step: 2 x 0.5 s x (0 retries + 2); stuck 5 s after that */
	assert_true(pm_pollers_stall_limit(p, &port) == 7 * SEC);
	assert_string_equal(port, "/nonexistent/x");
	/* waiting for its tick, however long, is not being stuck */
	after_a_tick(p);
	pm_pollers_health(p, pm_mono_ns() + 60 * SEC, &h);
	assert_true(h.all_recent);

	/* hung at the start of its next tick: stuck 7 s after it began */
	fd = open(hang_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	while (!in_tick) {
		(void)nanosleep(&poll, NULL);
		poller_state(p, &ticks, &in_tick, &alive);
	}
	pm_pollers_health(p, alive + 7 * SEC, &h);
	assert_true(h.all_recent);
	pm_pollers_health(p, alive + 7 * SEC + 1, &h);
	assert_false(h.all_recent);

	/* the hang ends, the tick with it */
	assert_int_equal(unlink(hang_file), 0);
	after_a_tick(p);
	pm_pollers_health(p, pm_mono_ns() + 60 * SEC, &h);
	assert_true(h.all_recent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tick_next_on_time),
		cmocka_unit_test(tick_next_overrun_skips),
		cmocka_unit_test(tick_first_aligned),
		cmocka_unit_test(complain_backs_off),
		cmocka_unit_test(complain_hourly_at_least),
		cmocka_unit_test(complain_flapping),
		cmocka_unit_test(complain_min_quiet),
		cmocka_unit_test(complain_durations),
		cmocka_unit_test(pollers_missing_port),
		cmocka_unit_test(tick_done_once_per_tick_of_all_ports),
		cmocka_unit_test_teardown(health_notices_a_stuck_poller,
					  stop_stuck_poller),
		cmocka_unit_test(sinkset_status_skips_a_silent_sink),
	};

	int r;

	(void)snprintf(hang_file, sizeof(hang_file), "/tmp/pm-test-hang.%ld",
		       (long)getpid());
	(void)unlink(hang_file);
	{
		char v[sizeof(hang_file) + 16];

		(void)snprintf(v, sizeof(v), "poller:%s", hang_file);
		if (setenv("PM_TEST_HANG", v, 1) < 0)
			return 1;
	}
	pm_log_set_level(LOG_ERR);	/* the failures are expected */
	r = cmocka_run_group_tests(tests, NULL, NULL);
	(void)unlink(hang_file);
	return r;
}
