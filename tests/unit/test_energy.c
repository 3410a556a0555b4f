/* test_energy.c — the energy counters (meter/energy.c): the trapezoid and the
 * gap rule, counters kept per (device id, channel) through reorders and
 * removals, and the state file: what outputs show never goes down, through
 * saves, restarts, a damaged newest file and a damaged pair. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <cmocka.h>

#include "meter/energy.h"
#include "reader_fixture.h"

#define T0 1700000000000LL	/* ms */

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pm-energy-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Device 'id' with inputs a and b (ratio 0.01, 230 V, pf 1), max gap 10 s. */
static void make_config(struct pm_config *cfg, int id, bool swap)
{
	const struct fixture_input ab[] = {
		{ 'a', 0.01, "A" }, { 'b', 0.01, "B" },
	};
	const struct fixture_input ba[] = {
		{ 'b', 0.01, "B" }, { 'a', 0.01, "A" },
	};

	memset(cfg, 0, sizeof(*cfg));
	fixture_add_device(cfg, id, "/dev/null", 1, false, swap ? ba : ab, 2);
	cfg->energy.enabled = true;
	cfg->energy.max_gap = 10;
}

static struct pm_sample sample(int64_t ms, uint16_t a, uint16_t b)
{
	struct pm_sample s = { .device = 0, .time_ms = ms };

	s.current[0] = a;
	s.current[1] = b;
	return s;
}

static struct pm_energy *open_ok(struct pm_energy_open_report *rep)
{
	struct pm_energy *e = NULL;
	struct pm_energy_open_report local;

	assert_int_equal(pm_energy_open(&e, dir, rep ? rep : &local), 0);
	return e;
}

static struct pm_energy_counter counter(struct pm_energy *e, int dev,
					unsigned ch)
{
	struct pm_energy_counter *c, found = { .device_id = -1 };
	size_t n;

	assert_int_equal(pm_energy_counters(e, &c, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (c[i].device_id == dev && c[i].channel == ch)
			found = c[i];
	free(c);
	assert_int_equal(found.device_id, dev);
	return found;
}

static void feed(struct pm_energy *e, int64_t from_ms, int n, int64_t step_ms,
		 uint16_t a, uint16_t b)
{
	for (int i = 0; i < n; i++) {
		struct pm_sample s = sample(from_ms + i * step_ms, a, b);

		pm_energy_add(e, &s);
	}
}

static void test_trapezoid(void **state)
{
	struct pm_config cfg;
	struct pm_energy *e;
	struct pm_energy_counter c;

	(void)state;
	make_config(&cfg, 1, false);
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	/* 10 A constant on a for 9 s (10 samples): 2300 W x 9 s */
	feed(e, T0, 10, 1000, 1000, 0);
	c = counter(e, 1, 0);
	assert_true(fabs(c.energy_wh - 2300.0 * 9 / 3600) < 1e-9);
	assert_true(fabs(c.charge_ah - 10.0 * 9 / 3600) < 1e-12);
	assert_true(c.unmetered_s == 0);
	/* a ramp 0 -> 20 A over 4 s is integrated exactly: mean 10 A */
	feed(e, T0 + 10000, 1, 1000, 0, 0);	/* 10 -> 0 A in 1 s: 5 A */
	for (int i = 1; i <= 4; i++)
		feed(e, T0 + 10000 + i * 1000, 1, 1000, (uint16_t)(i * 500), 0);
	c = counter(e, 1, 0);
	assert_true(fabs(c.charge_ah - (90.0 + 5 + 40) / 3600) < 1e-12);
	/* b carried 0 A: nothing, but it was metered */
	c = counter(e, 1, 1);
	assert_true(c.energy_wh == 0 && c.unmetered_s == 0);
	pm_energy_free(e);
	fixture_free(&cfg);
}

static void test_gap_rule(void **state)
{
	struct pm_config cfg;
	struct pm_energy *e;
	struct pm_energy_counter c;
	struct pm_sample s;

	(void)state;
	make_config(&cfg, 1, false);
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0, 2, 1000, 1000, 1000);		/* 1 s counted */
	/* down for 30 s (> max_gap 10 s): nothing added, 30 s unmetered */
	feed(e, T0 + 31000, 2, 1000, 1000, 1000);	/* and 1 s counted */
	c = counter(e, 1, 0);
	assert_true(fabs(c.energy_wh - 2 * 2300.0 / 3600) < 1e-9);
	assert_true(c.unmetered_s == 30);
	/* exactly max_gap still counts */
	feed(e, T0 + 42000, 1, 1000, 1000, 1000);
	c = counter(e, 1, 0);
	assert_true(fabs(c.energy_wh - 12 * 2300.0 / 3600) < 1e-9);
	/* a clock stepped back adds nothing and counts nothing */
	feed(e, T0 + 40000, 1, 1000, 1000, 1000);
	c = counter(e, 1, 0);
	assert_true(fabs(c.energy_wh - 12 * 2300.0 / 3600) < 1e-9);
	assert_true(c.unmetered_s == 30);
	/* what outputs see: the shown values (0 before any save) */
	s = sample(T0 + 41000, 1000, 1000);
	pm_energy_add(e, &s);
	assert_true(s.has_energy);
	assert_true(s.energy_wh[0] == 0 && s.charge_ah[1] == 0);
	assert_true(isnan(s.energy_wh[2]));	/* no input on c */
	pm_energy_free(e);
	fixture_free(&cfg);
}

/* A new voltage applies from then on: the counter keeps what it had. */
static void test_voltage_change(void **state)
{
	struct pm_config cfg;
	struct pm_energy *e;
	struct pm_energy_counter c;
	double before;

	(void)state;
	make_config(&cfg, 1, false);
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0, 3, 1000, 1000, 0);
	before = counter(e, 1, 0).energy_wh;
	cfg.devices[0].inputs[0].voltage = 115;
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0 + 3000, 2, 1000, 1000, 0);
	c = counter(e, 1, 0);
	/* 2 s -> 3 s: trapezoid of 2300 W and 1150 W; then 1150 W */
	assert_true(fabs(c.energy_wh - before - (1725.0 + 1150.0) / 3600) < 1e-9);
	pm_energy_free(e);
	fixture_free(&cfg);
}

/* Counters belong to (device id, channel): a reordered config, a removed
 * input and a re-added one never move energy between circuits. */
static void test_identity(void **state)
{
	struct pm_config cfg, swapped, other;
	struct pm_energy *e;
	double a, b;

	(void)state;
	make_config(&cfg, 1, false);
	make_config(&swapped, 1, true);
	make_config(&other, 2, false);
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0, 5, 1000, 1000, 100);
	a = counter(e, 1, 0).energy_wh;
	b = counter(e, 1, 1).energy_wh;
	assert_true(a > 9 * b);
	assert_int_equal(pm_energy_configure(e, &swapped), 0);
	{
		/* in 'swapped' input 0 is channel b */
		struct pm_sample s = sample(T0 + 5000, 1000, 100);

		pm_energy_add(e, &s);
	}
	assert_true(counter(e, 1, 0).energy_wh > a);
	assert_true(fabs(counter(e, 1, 0).energy_wh - a - 2300.0 / 3600) < 1e-9);
	assert_true(fabs(counter(e, 1, 1).energy_wh - b - 230.0 / 3600) < 1e-9);
	/* device 1 gone: its counters stay (orphans), device 2 starts at 0 */
	assert_int_equal(pm_energy_configure(e, &other), 0);
	assert_false(counter(e, 1, 0).configured);
	assert_true(counter(e, 2, 0).configured);
	assert_true(counter(e, 2, 0).energy_wh == 0);
	assert_int_equal(pm_energy_save(e, T0 + 6000), 0);
	pm_energy_free(e);
	/* and they survive a restart, to be resumed when re-added */
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	assert_true(counter(e, 1, 0).energy_wh > a);
	assert_true(counter(e, 1, 0).configured);
	pm_energy_free(e);
	fixture_free(&cfg);
	fixture_free(&swapped);
	fixture_free(&other);
}

static double shown(struct pm_energy *e, int64_t ms)
{
	struct pm_sample s = sample(ms, 1000, 0);

	pm_energy_add(e, &s);
	return s.energy_wh[0];
}

/* What outputs show only ever goes up, and only to values that two saved
 * generations hold. */
static void test_saves_and_restarts(void **state)
{
	struct pm_energy_open_report rep;
	struct pm_config cfg;
	struct pm_energy *e;
	double e1, e2, s;

	(void)state;
	make_config(&cfg, 1, false);
	e = open_ok(&rep);
	assert_int_equal(rep.origin, PM_ENERGY_NEW);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0, 10, 1000, 1000, 0);
	assert_int_equal(pm_energy_save(e, T0 + 10000), 0);
	e1 = counter(e, 1, 0).energy_wh;
	assert_true(shown(e, T0 + 10000) == 0);		/* one generation */
	feed(e, T0 + 11000, 10, 1000, 1000, 0);
	assert_int_equal(pm_energy_save(e, T0 + 21000), 0);
	e2 = counter(e, 1, 0).energy_wh;
	s = shown(e, T0 + 21000);
	assert_true(s == e1);				/* in both files */
	assert_int_equal(pm_energy_saves(e), 2);
	pm_energy_free(e);

	/* a restart (SIGKILL after the save): the newest file is read */
	e = open_ok(&rep);
	assert_int_equal(rep.origin, PM_ENERGY_LOADED);
	assert_int_equal(rep.counters, 2);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	assert_true(counter(e, 1, 0).energy_wh == e2);	/* exactly */
	assert_true(shown(e, T0 + 21000) == e1);
	/* the restart took 60 s: unmetered, not integrated */
	feed(e, T0 + 81000, 1, 1000, 1000, 0);
	assert_true(counter(e, 1, 0).unmetered_s == 60);
	assert_int_equal(pm_energy_save(e, T0 + 82000), 0);
	assert_true(shown(e, T0 + 82000) == e2);
	pm_energy_free(e);
	fixture_free(&cfg);
}

static void corrupt(const char *name, long offset, const char *bytes)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r+");
	assert_non_null(f);
	assert_int_equal(fseek(f, offset, SEEK_SET), 0);
	assert_int_equal(fwrite(bytes, 1, strlen(bytes), f), strlen(bytes));
	fclose(f);
}

static void truncate_to(const char *name, off_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(truncate(path, len), 0);
}

static int count_aside(void)
{
	char cmd[160];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^" PM_ENERGY_DAMAGED "'",
		 dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* Three saves, so both generations have something to show. */
static double three_saves(const struct pm_config *cfg, double *prev)
{
	struct pm_energy *e = open_ok(NULL);
	double last = 0;

	assert_int_equal(pm_energy_configure(e, cfg), 0);
	for (int k = 0; k < 3; k++) {
		feed(e, T0 + k * 10000, 10, 1000, 1000, 0);
		assert_int_equal(pm_energy_save(e, T0 + k * 10000 + 9000), 0);
		*prev = last;
		last = counter(e, 1, 0).energy_wh;
	}
	pm_energy_free(e);
	return last;
}

static void test_damaged_newest(void **state)
{
	struct pm_energy_open_report rep;
	struct pm_config cfg;
	struct pm_energy *e;
	double newest, previous, shown_before;

	(void)state;
	make_config(&cfg, 1, false);
	newest = three_saves(&cfg, &previous);
	shown_before = previous;	/* what outputs showed last */
	/* one digit changed: the CRC catches it */
	corrupt(PM_ENERGY_FILE, 120, "9");
	e = open_ok(&rep);
	assert_int_equal(rep.origin, PM_ENERGY_FALLBACK);
	assert_int_equal(rep.newest_err, -PM_EFRAME);
	assert_non_null(strstr(rep.newest_aside, PM_ENERGY_DAMAGED));
	assert_int_equal(count_aside(), 1);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	assert_true(counter(e, 1, 0).energy_wh == previous);
	assert_true(previous < newest);
	/* never below what was shown */
	assert_true(shown(e, T0 + 60000) >= shown_before);
	pm_energy_free(e);
	fixture_free(&cfg);
}

static void test_truncated_newest(void **state)
{
	struct pm_energy_open_report rep;
	struct pm_config cfg;
	struct pm_energy *e;
	double previous;

	(void)state;
	make_config(&cfg, 1, false);
	(void)three_saves(&cfg, &previous);
	truncate_to(PM_ENERGY_FILE, 100);
	e = open_ok(&rep);
	assert_int_equal(rep.origin, PM_ENERGY_FALLBACK);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	assert_true(counter(e, 1, 0).energy_wh == previous);
	pm_energy_free(e);
	fixture_free(&cfg);
}

/* Neither generation usable: counting goes on from 0, nothing is shown
 * until someone who accepts that removes the marker file. A damaged
 * newest save alone withholds nothing (test_damaged_newest). */
static void test_both_damaged(void **state)
{
	struct pm_energy_open_report rep;
	struct pm_config cfg;
	struct pm_energy *e;
	struct pm_sample s;
	char cmd[160];
	double previous;

	(void)state;
	make_config(&cfg, 1, false);
	(void)three_saves(&cfg, &previous);
	truncate_to(PM_ENERGY_FILE, 10);
	corrupt(PM_ENERGY_PREVIOUS, 0, "x");
	e = open_ok(&rep);
	assert_int_equal(rep.origin, PM_ENERGY_HELD_BACK);
	assert_int_equal(count_aside(), 2);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0, 3, 1000, 1000, 0);
	s = sample(T0 + 3000, 1000, 0);
	pm_energy_add(e, &s);
	assert_true(isnan(s.energy_wh[0]) && isnan(s.charge_ah[0]));
	assert_int_equal(pm_energy_save(e, T0 + 3000), 0);
	pm_energy_free(e);
	/* still withheld after a restart: the marker file stays */
	e = open_ok(&rep);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	s = sample(T0 + 4000, 1000, 0);
	pm_energy_add(e, &s);
	assert_true(isnan(s.energy_wh[0]));
	/* removed: shown again from the next save on */
	snprintf(cmd, sizeof(cmd), "rm '%s'/" PM_ENERGY_WITHHELD, dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pm_energy_save(e, T0 + 5000), 0);
	s = sample(T0 + 5000, 1000, 0);
	pm_energy_add(e, &s);
	assert_false(isnan(s.energy_wh[0]));
	pm_energy_free(e);
	fixture_free(&cfg);
}

/* A file that cannot be read (here: a directory in its place) is not
 * damage: nothing is opened, nothing overwritten. */
static void test_unreadable_is_not_damage(void **state)
{
	struct pm_energy_open_report rep;
	struct pm_energy *e = NULL;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, PM_ENERGY_FILE);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(pm_energy_open(&e, dir, &rep), -EISDIR);
	assert_null(e);
	assert_int_equal(count_aside(), 0);
}

static void test_file_format(void **state)
{
	struct pm_energy_counter *c;
	struct pm_config cfg;
	struct pm_energy *e;
	char path[128];
	int64_t written;
	size_t n;

	(void)state;
	make_config(&cfg, 7, false);
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	feed(e, T0, 4, 1000, 333, 1);
	assert_int_equal(pm_energy_save(e, T0 + 4000), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, PM_ENERGY_FILE);
	assert_int_equal(pm_energy_read_file(path, &c, &n, &written), 0);
	assert_int_equal(n, 2);
	assert_int_equal(written, T0 + 4000);
	assert_int_equal(c[0].device_id, 7);
	assert_int_equal(c[0].channel, 0);
	/* %.17g: the very double comes back */
	assert_true(c[0].energy_wh == counter(e, 7, 0).energy_wh);
	assert_int_equal(c[1].channel, 1);
	free(c);
	/* a foreign file */
	{
		FILE *f = fopen(path, "w");

		fputs("hello\n", f);
		fclose(f);
	}
	assert_int_equal(pm_energy_read_file(path, &c, &n, &written), -PM_EFRAME);
	pm_energy_free(e);
	fixture_free(&cfg);
}

struct adder {
	struct pm_energy *e;
	size_t device;
};

static void *add_many(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < 2000; i++) {
		struct pm_sample s = sample(T0 + i * 100, 1000, 500);

		s.device = a->device;
		pm_energy_add(a->e, &s);
	}
	return NULL;
}

/* Pollers add while the main thread saves and reconfigures (ThreadSanitizer
 * runs this too); every sample is counted once. */
static void test_threads(void **state)
{
	const struct fixture_input ab[] = { { 'a', 0.01, "A" }, { 'b', 0.01, "B" } };
	struct pm_config cfg;
	struct pm_energy *e;
	struct adder a[2];
	pthread_t t[2];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	fixture_add_device(&cfg, 1, "/dev/null", 1, false, ab, 2);
	fixture_add_device(&cfg, 2, "/dev/null", 2, false, ab, 2);
	cfg.energy.enabled = true;
	cfg.energy.max_gap = 10;
	e = open_ok(NULL);
	assert_int_equal(pm_energy_configure(e, &cfg), 0);
	for (int i = 0; i < 2; i++) {
		a[i] = (struct adder){ e, (size_t)i };
		assert_int_equal(pthread_create(&t[i], NULL, add_many, &a[i]), 0);
	}
	for (int k = 0; k < 5; k++) {
		assert_int_equal(pm_energy_save(e, T0 + k), 0);
		assert_int_equal(pm_energy_configure(e, &cfg), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* 1999 intervals of 0.1 s at 10 A, 230 V */
	for (int dev = 1; dev <= 2; dev++)
		assert_true(fabs(counter(e, dev, 0).energy_wh -
				 2300.0 * 199.9 / 3600) < 1e-6);
	pm_energy_free(e);
	fixture_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_trapezoid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_voltage_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_saves_and_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_is_not_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
