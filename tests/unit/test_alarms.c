/* test_alarms.c — judging one alarm (meter/alarms.c): raised only after its
 * hold time, lowered only past its clear margin, never lowered by a lower
 * bound; conditions with a hold; and the state file: what it keeps, and a
 * damaged one refused rather than read as "no alarms". */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "meter/alarms.h"

#define T0 1700000000000LL	/* ms */

static const struct pm_alarm_rule rule = {
	.enabled = true, .warning = 80, .critical = 100, .hold = 10, .clear = 5,
};

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pm-alarms-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Feeds 'value' once a second from t0 (ms) for 'seconds', applying every
 * change; returns the time of the first change to 'want', or -1. */
static int64_t feed(struct pm_alarm *a, double value, int64_t t0, int seconds,
		    enum pm_severity want)
{
	int64_t hit = -1;

	for (int i = 0; i <= seconds; i++) {
		int64_t t = t0 + i * 1000LL;
		enum pm_severity l = pm_alarm_judge(a, &rule, value, false, t);

		if (l != a->level) {
			a->level = l;
			if (l == want && hit < 0)
				hit = t;
		}
	}
	return hit;
}

static void test_raised_after_hold(void **state)
{
	struct pm_alarm a = { .kind = PM_ALARM_CIRCUIT_LOAD };

	(void)state;
	/* 85 % from T0: warning exactly 10 s later, not before */
	assert_int_equal(pm_alarm_judge(&a, &rule, 85, false, T0), PM_SEVERITY_OK);
	assert_int_equal(pm_alarm_judge(&a, &rule, 85, false, T0 + 9999),
			 PM_SEVERITY_OK);
	assert_int_equal(pm_alarm_judge(&a, &rule, 85, false, T0 + 10000),
			 PM_SEVERITY_WARNING);
	assert_true(a.threshold == 80);
}

static void test_dip_restarts_hold(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	(void)pm_alarm_judge(&a, &rule, 90, false, T0);
	(void)pm_alarm_judge(&a, &rule, 79, false, T0 + 5000);	/* a dip */
	assert_int_equal(pm_alarm_judge(&a, &rule, 90, false, T0 + 10000),
			 PM_SEVERITY_OK);
	assert_int_equal(pm_alarm_judge(&a, &rule, 90, false, T0 + 19999),
			 PM_SEVERITY_OK);
	assert_int_equal(pm_alarm_judge(&a, &rule, 90, false, T0 + 20000),
			 PM_SEVERITY_WARNING);
}

static void test_straight_to_critical(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	assert_int_equal(feed(&a, 120, T0, 10, PM_SEVERITY_CRITICAL),
			 T0 + 10000);
	assert_int_equal(a.level, PM_SEVERITY_CRITICAL);
	assert_true(a.threshold == 100);
}

static void test_escalate_then_lower_with_margin(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	assert_int_equal(feed(&a, 85, T0, 10, PM_SEVERITY_WARNING), T0 + 10000);
	assert_int_equal(feed(&a, 101, T0 + 11000, 10, PM_SEVERITY_CRITICAL),
			 T0 + 21000);
	/* 96 is below critical but within the 5-point margin: stays */
	a.level = pm_alarm_judge(&a, &rule, 96, false, T0 + 22000);
	assert_int_equal(a.level, PM_SEVERITY_CRITICAL);
	/* 94.9: down to warning at once, no hold */
	a.level = pm_alarm_judge(&a, &rule, 94.9, false, T0 + 23000);
	assert_int_equal(a.level, PM_SEVERITY_WARNING);
	/* 76 is within the margin of warning: stays */
	a.level = pm_alarm_judge(&a, &rule, 76, false, T0 + 24000);
	assert_int_equal(a.level, PM_SEVERITY_WARNING);
	a.level = pm_alarm_judge(&a, &rule, 74.99, false, T0 + 25000);
	assert_int_equal(a.level, PM_SEVERITY_OK);
	/* the clear told which threshold it left */
	assert_true(a.threshold == 80);
}

static void test_critical_to_ok_in_one_step(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	(void)feed(&a, 150, T0, 10, PM_SEVERITY_CRITICAL);
	assert_int_equal(pm_alarm_judge(&a, &rule, 10, false, T0 + 11000),
			 PM_SEVERITY_OK);
}

static void test_lower_bound_never_clears(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	(void)feed(&a, 110, T0, 10, PM_SEVERITY_CRITICAL);
	/* a module is down: the sum (50) is only a lower bound */
	assert_int_equal(pm_alarm_judge(&a, &rule, 50, true, T0 + 11000),
			 PM_SEVERITY_CRITICAL);
	/* but a lower bound above the threshold does raise */
	{
		struct pm_alarm b = { 0 };

		(void)pm_alarm_judge(&b, &rule, 85, true, T0);
		assert_int_equal(pm_alarm_judge(&b, &rule, 85, true, T0 + 10000),
				 PM_SEVERITY_WARNING);
	}
}

static void test_nan_changes_nothing(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	(void)pm_alarm_judge(&a, &rule, 90, false, T0);
	assert_int_equal(pm_alarm_judge(&a, &rule, NAN, false, T0 + 5000),
			 PM_SEVERITY_OK);
	/* the hold kept running through the gap */
	assert_int_equal(pm_alarm_judge(&a, &rule, 90, false, T0 + 10000),
			 PM_SEVERITY_WARNING);
}

static void test_zero_hold(void **state)
{
	struct pm_alarm_rule r0 = rule;
	struct pm_alarm a = { 0 };

	(void)state;
	r0.hold = 0;
	assert_int_equal(pm_alarm_judge(&a, &r0, 100, false, T0),
			 PM_SEVERITY_CRITICAL);
}

static void test_condition(void **state)
{
	struct pm_alarm a = { 0 };

	(void)state;
	assert_int_equal(pm_alarm_judge_condition(&a, true, PM_SEVERITY_CRITICAL,
						  5, T0), PM_SEVERITY_OK);
	assert_int_equal(pm_alarm_judge_condition(&a, true, PM_SEVERITY_CRITICAL,
						  5, T0 + 4999), PM_SEVERITY_OK);
	a.level = pm_alarm_judge_condition(&a, true, PM_SEVERITY_CRITICAL, 5,
					   T0 + 5000);
	assert_int_equal(a.level, PM_SEVERITY_CRITICAL);
	/* clears the moment it no longer holds */
	assert_int_equal(pm_alarm_judge_condition(&a, false, PM_SEVERITY_CRITICAL,
						  5, T0 + 6000), PM_SEVERITY_OK);
}

static void test_names(void **state)
{
	(void)state;
	for (int k = 0; k < PM_ALARM_KINDS; k++) {
		const char *id = pm_alarm_message_id((enum pm_alarm_kind)k);

		assert_int_equal(pm_alarm_kind_find(pm_alarm_kind_name(k)), k);
		assert_int_equal(strlen(id), 32);
		for (int j = 0; j < k; j++)
			assert_string_not_equal(id, pm_alarm_message_id(j));
	}
	assert_null(pm_alarm_kind_name(PM_ALARM_KINDS));
	assert_int_equal(pm_alarm_kind_find("nope"), -1);
	assert_string_equal(pm_severity_name(PM_SEVERITY_CRITICAL), "critical");
}

static void test_file_roundtrip(void **state)
{
	struct pm_alarm a = { .kind = PM_ALARM_FEED_LOAD, .subject = "UPS \"A\" L1",
			      .level = PM_SEVERITY_CRITICAL, .changed_ms = T0,
			      .value = 103.25, .threshold = 100 };
	struct pm_alarm b = { .kind = PM_ALARM_LOAD_LOST, .subject = "rack 7",
			      .level = PM_SEVERITY_OK, .armed = true,
			      .value = NAN, .threshold = 0.1 };
	struct pm_alarm c = { .kind = PM_ALARM_CIRCUIT_LOAD, .subject = "quiet",
			      .level = PM_SEVERITY_OK };
	const struct pm_alarm *list[] = { &a, &b, &c };
	struct pm_alarm_file f;

	(void)state;
	assert_int_equal(pm_alarm_file_load(dir, &f), 0);	/* absent */
	assert_int_equal(f.n, 0);
	assert_int_equal(pm_alarm_file_save(dir, list, 3, T0 + 1), 0);
	assert_int_equal(pm_alarm_file_load(dir, &f), 0);
	/* the quiet one is not kept */
	assert_int_equal(f.n, 2);
	assert_int_equal(f.alarms[0].kind, PM_ALARM_FEED_LOAD);
	assert_string_equal(f.alarms[0].subject, "UPS \"A\" L1");
	assert_int_equal(f.alarms[0].level, PM_SEVERITY_CRITICAL);
	assert_true(f.alarms[0].changed_ms == T0);
	assert_true(f.alarms[0].value == 103.25);
	assert_true(f.alarms[0].threshold == 100);
	assert_false(f.alarms[0].armed);
	assert_int_equal(f.alarms[1].kind, PM_ALARM_LOAD_LOST);
	assert_true(f.alarms[1].armed);
	assert_true(isnan(f.alarms[1].value));
	pm_alarm_file_free(&f);
}

static void write_file(const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, PM_ALARM_STATE_FILE);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_damaged_file(void **state)
{
	const struct pm_alarm a = { .kind = PM_ALARM_STALE, .subject = "module 1",
				    .level = PM_SEVERITY_WARNING };
	const struct pm_alarm *list[] = { &a };
	struct pm_alarm_file f;
	char aside[256], path[128];

	(void)state;
	assert_int_equal(pm_alarm_file_save(dir, list, 1, T0), 0);
	/* cut short, as by a power cut during a write to a cheap SD card */
	snprintf(path, sizeof(path), "%s/%s", dir, PM_ALARM_STATE_FILE);
	assert_int_equal(truncate(path, 60), 0);
	assert_int_equal(pm_alarm_file_load(dir, &f), -PM_EFRAME);
	write_file("{\"format\": \"powermeter-alarms\", \"version\": 1, \"alarms\": "
		   "[{\"alarm\": \"bogus\", \"subject\": \"x\", \"severity\": \"warning\", "
		   "\"since\": 1, \"value\": 1, \"threshold\": 1, \"armed\": false}]}");
	assert_int_equal(pm_alarm_file_load(dir, &f), -PM_EFRAME);
	write_file("{\"format\": \"powermeter-alarms\", \"version\": 2, \"alarms\": []}");
	assert_int_equal(pm_alarm_file_load(dir, &f), -PM_EFRAME);
	/* a "since" no int64_t holds (found by fuzz_alarms): damage, not a
	 * time — casting it would be undefined behaviour */
	write_file("{\"format\": \"powermeter-alarms\", \"version\": 1, \"alarms\": "
		   "[{\"alarm\": \"circuit_load\", \"subject\": \"s\", \"severity\": \"ok\", "
		   "\"since\": 16555555555555555550, \"value\": 0, \"threshold\": 0, \"armed\": false}]}");
	assert_int_equal(pm_alarm_file_load(dir, &f), -PM_EFRAME);
	assert_int_equal(pm_alarm_file_set_aside(dir, T0, aside, sizeof(aside)), 0);
	assert_non_null(strstr(aside, "alarms.state.damaged-"));
	assert_int_equal(access(aside, F_OK), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(pm_alarm_file_load(dir, &f), 0);
	assert_int_equal(f.n, 0);
}

static void on_alarm(int sig)
{
	static const char msg[] = "# timed out: saving the alarms blocked\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* The main thread saves the state: a FIFO at a temporary's name (this
 * version's or the fixed "alarms.state.tmp" of the one before) must not
 * stop it, nor a FIFO at the file's name make a reader wait. */
static void test_fifos_in_the_way(void **state)
{
	const struct pm_alarm a = { .kind = PM_ALARM_STALE, .subject = "module 1",
				    .level = PM_SEVERITY_WARNING };
	const struct pm_alarm *list[] = { &a };
	struct pm_alarm_file f;
	char path[160];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s.tmp", dir, PM_ALARM_STATE_FILE);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/.%s.%ld.0.tmp", dir,
		 PM_ALARM_STATE_FILE, (long)getpid());
	assert_int_equal(mkfifo(path, 0600), 0);
	(void)signal(SIGALRM, on_alarm);
	(void)alarm(10);
	assert_int_equal(pm_alarm_file_save(dir, list, 1, T0), 0);
	assert_int_equal(pm_alarm_file_load(dir, &f), 0);
	assert_int_equal(f.n, 1);
	pm_alarm_file_free(&f);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	/* the file itself a FIFO: not read, not waited on */
	snprintf(path, sizeof(path), "%s/%s", dir, PM_ALARM_STATE_FILE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(pm_alarm_file_load(dir, &f), -PM_ENOTREG);
	(void)alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raised_after_hold),
		cmocka_unit_test(test_dip_restarts_hold),
		cmocka_unit_test(test_straight_to_critical),
		cmocka_unit_test(test_escalate_then_lower_with_margin),
		cmocka_unit_test(test_critical_to_ok_in_one_step),
		cmocka_unit_test(test_lower_bound_never_clears),
		cmocka_unit_test(test_nan_changes_nothing),
		cmocka_unit_test(test_zero_hold),
		cmocka_unit_test(test_condition),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_file_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifos_in_the_way, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
