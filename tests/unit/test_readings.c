/* test_readings.c — the pm_readings builder (one value per configured
 * input, -ENODATA until filled, samples, failures, snapshot values), the
 * public accessors and pm_read() from the bus where no port exists. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter/readings.h"
#include "reader_fixture.h"

static void make_config(struct pm_config *cfg)
{
	static const struct fixture_input dev1[] = {
		{ 'c', 0.01, "Input c" },
		{ 'a', 0.0245, "SCT013" },
	};
	static const struct fixture_input dev2[] = {
		{ 'p', 0.01, "Input p" },
	};

	memset(cfg, 0, sizeof(*cfg));
	fixture_add_device(cfg, 5, "/nonexistent/ttyUSB0", 1, false, dev1, 2);
	fixture_add_device(cfg, 9, "/nonexistent/ttyUSB0", 2, true, dev2, 1);
}

static void test_new(void **state)
{
	struct pm_readings *r;
	struct pm_config cfg;
	const struct pm_value *v;

	(void)state;
	make_config(&cfg);
	r = pm_readings_new(&cfg);
	assert_non_null(r);
	assert_int_equal(pm_readings_count(r), 3);
	assert_int_equal(pm_readings_failed(r), 0);
	v = pm_readings_get(r, 0);
	assert_int_equal(v->id, 0);
	assert_int_equal(v->device_id, 5);
	assert_string_equal(v->port, "/nonexistent/ttyUSB0");
	assert_int_equal(v->address, 1);
	assert_int_equal(v->input, 'c');
	assert_int_equal(v->channel, 3);
	assert_string_equal(v->name, "Input c");
	assert_int_equal(v->status, -ENODATA);
	assert_true(isnan(v->current));
	v = pm_readings_get(r, 2);
	assert_int_equal(v->id, 2);
	assert_int_equal(v->device_id, 9);
	assert_int_equal(v->channel, 16);
	assert_null(pm_readings_get(r, 3));
	assert_null(pm_readings_error(r, 5));
	/* the readings own their strings: they outlive the config */
	fixture_free(&cfg);
	assert_string_equal(pm_readings_get(r, 1)->name, "SCT013");
	assert_string_equal(pm_readings_get(r, 1)->port, "/nonexistent/ttyUSB0");
	pm_readings_free(r);
}

static void test_samples_and_failures(void **state)
{
	struct pm_sample s = { .device = 1, .time_ms = 42, .has_frequency = true };
	struct pm_readings *r;
	struct pm_config cfg;
	const struct pm_value *v;

	(void)state;
	make_config(&cfg);
	r = pm_readings_new(&cfg);
	s.current[15] = 1234;
	s.frequency[15] = 499;
	assert_int_equal(pm_readings_add_sample(r, &s), 0);
	v = pm_readings_get(r, 2);
	assert_int_equal(v->status, 0);
	assert_true(v->current == 1234 * 0.01);
	assert_true(v->frequency == 49.9);
	assert_int_equal(v->time_ms, 42);
	/* the other device is still unread */
	assert_int_equal(pm_readings_get(r, 0)->status, -ENODATA);

	s.device = 0;
	s.has_frequency = false;
	s.current[0] = 35;
	s.current[2] = 7;
	assert_int_equal(pm_readings_add_sample(r, &s), 0);
	v = pm_readings_get(r, 0);
	assert_true(v->current == 7 * 0.01);
	assert_true(isnan(v->frequency));
	assert_true(pm_readings_get(r, 1)->current == 35 * 0.0245);

	assert_int_equal(pm_readings_add_failure(r, 0, -PM_ECRC, "noise"), 0);
	assert_int_equal(pm_readings_failed(r), 1);
	assert_string_equal(pm_readings_error(r, 5), "noise");
	assert_null(pm_readings_error(r, 9));
	v = pm_readings_get(r, 1);
	assert_int_equal(v->status, -PM_ECRC);
	assert_true(isnan(v->current));
	/* without a message the code's text */
	assert_int_equal(pm_readings_add_failure(r, 1, ETIMEDOUT, NULL), 0);
	assert_int_equal(pm_readings_get(r, 2)->status, -ETIMEDOUT);
	assert_string_equal(pm_readings_error(r, 9), pm_strerror(-ETIMEDOUT));
	assert_int_equal(pm_readings_failed(r), 2);

	s.device = 7;
	assert_int_equal(pm_readings_add_sample(r, &s), -ENOENT);
	assert_int_equal(pm_readings_add_failure(r, 7, -EIO, NULL), -ENOENT);
	pm_readings_free(r);
	fixture_free(&cfg);
}

static void test_one_device(void **state)
{
	struct pm_sample s = { .device = 0 };
	struct pm_readings *r;
	struct pm_config cfg;

	(void)state;
	make_config(&cfg);
	assert_null(pm_readings_new_device(&cfg, 6));
	r = pm_readings_new_device(&cfg, 9);
	assert_non_null(r);
	assert_int_equal(pm_readings_count(r), 1);
	assert_int_equal(pm_readings_get(r, 0)->id, 2);	/* ids stay stable */
	assert_int_equal(pm_readings_add_sample(r, &s), -ENOENT);
	assert_non_null(pm_readings_device(r, 1));
	assert_null(pm_readings_device(r, 0));
	pm_readings_free(r);
	fixture_free(&cfg);
}

static void test_set_input(void **state)
{
	struct pm_readings *r;
	struct pm_config cfg;

	(void)state;
	make_config(&cfg);
	r = pm_readings_new(&cfg);
	assert_int_equal(pm_readings_set_input(r, 1, 2.5, NAN, 12.5, 0.25, 77), 0);
	assert_int_equal(pm_readings_get(r, 1)->status, 0);
	assert_true(pm_readings_get(r, 1)->current == 2.5);
	/* power from the current, the counters as given */
	assert_true(pm_readings_get(r, 1)->power ==
		    2.5 * cfg.devices[0].inputs[1].voltage *
		    cfg.devices[0].inputs[1].power_factor);
	assert_true(pm_readings_get(r, 1)->energy == 12.5);
	assert_true(pm_readings_get(r, 1)->charge == 0.25);
	assert_int_equal(pm_readings_get(r, 1)->time_ms, 77);
	assert_int_equal(pm_readings_device(r, 0)->status, 0);
	assert_int_equal(pm_readings_set_input(r, 3, 1, NAN, NAN, NAN, 0), -ENOENT);
	pm_readings_free(r);
	fixture_free(&cfg);
}

static void test_format(void **state)
{
	struct pm_sample s = { .device = 1, .time_ms = 42 };
	struct pm_readings *r;
	struct pm_config cfg;
	char *text = NULL;

	(void)state;
	make_config(&cfg);
	r = pm_readings_new(&cfg);
	s.current[15] = 92;
	assert_int_equal(pm_readings_add_sample(r, &s), 0);
	assert_int_equal(pm_readings_format(r, PM_FORMAT_JSON, NULL, &text), 0);
	assert_string_equal(text, "[\n    {\n        \"id\": 2,\n        \"device_id\": 9,\n"
			    "        \"input\": \"p\",\n        \"name\": \"Input p\",\n"
			    "        \"current\": 0.92\n    }\n]");
	free(text);
	assert_int_equal(pm_readings_format(r, PM_FORMAT_INFLUX, "m", &text), 0);
	assert_string_equal(text, "m,device_id=9,input=p,name=Input\\ p,unique_id=2 "
			    "current=0.92,power=211.6 42\n");
	free(text);
	text = NULL;
	assert_int_equal(pm_readings_format(r, (enum pm_format)9, NULL, &text), -EINVAL);
	assert_null(text);
	pm_readings_free(r);
	fixture_free(&cfg);
}

/* From the bus, a missing port fails every device on it with the
 * electrician's sentence; nothing else is touched. */
static void test_read_missing_port(void **state)
{
	pm_readings *r = NULL;
	struct pm_config cfg;

	(void)state;
	make_config(&cfg);
	assert_int_equal(pm_read(&cfg, 6, PM_SOURCE_BUS, &r), -ENOENT);
	assert_int_equal(pm_read(&cfg, -1, (enum pm_source)7, &r), -EINVAL);
	assert_null(r);
	assert_int_equal(pm_read(&cfg, -1, PM_SOURCE_BUS, &r), 0);
	assert_int_equal(pm_readings_failed(r), 2);
	assert_string_equal(pm_readings_error(r, 5),
		"device 5 on /nonexistent/ttyUSB0 address 1: port "
		"/nonexistent/ttyUSB0 does not exist \u2014 is the USB\u2013RS-485 "
		"converter plugged in?");
	assert_int_equal(pm_readings_get(r, 2)->status, -ENOENT);
	pm_readings_free(r);
	fixture_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_samples_and_failures),
		cmocka_unit_test(test_one_device),
		cmocka_unit_test(test_set_input),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_read_missing_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
