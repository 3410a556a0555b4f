/* test_format.c — Python's float repr and round(), JSON strings and the
 * seed's json.dumps(indent=4) output byte for byte, the table. Expected
 * texts were produced once with python3 and are kept as literals. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter/readings.h"
#include "output/format.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/numfmt.h"
#include "reader_fixture.h"

static void check_repr(double v, const char *want)
{
	char buf[PM_DOUBLE_LEN];
	int n = pm_fmt_double(buf, v);

	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_fmt_double(void **state)
{
	(void)state;
	/* repr() of each, from python3 */
	check_repr(0.92, "0.92");
	check_repr(1.0, "1.0");
	check_repr(10.1, "10.1");
	check_repr(35 * 0.01, "0.35000000000000003");
	check_repr(0.1 + 0.2, "0.30000000000000004");
	check_repr(1e16, "1e+16");
	check_repr(1e15, "1000000000000000.0");
	check_repr(1e-5, "1e-05");
	check_repr(0.0001, "0.0001");
	check_repr(1.5e-7, "1.5e-07");
	check_repr(-0.0, "-0.0");
	check_repr(0.0, "0.0");
	check_repr(123456789.123, "123456789.123");
	check_repr(5e-324, "5e-324");
	check_repr(1.7976931348623157e308, "1.7976931348623157e+308");
	check_repr(-2.2250738585072014e-308, "-2.2250738585072014e-308");
	check_repr(1234567890123456.7, "1234567890123456.8");
	check_repr(12345678901234567.0, "1.2345678901234568e+16");
	check_repr(100.0, "100.0");
	check_repr(655.35, "655.35");
	check_repr(-49.9, "-49.9");
	check_repr(1e100, "1e+100");
	check_repr(INFINITY, "inf");
	check_repr(-INFINITY, "-inf");
	check_repr(NAN, "nan");
}

/* Stored values carry the measurement, not the binary product's noise. */
static void test_fmt_measured(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 1020 * 0.01, "10.2" },	/* product is 10.200000000000001 */
		{ 2499 * 0.01, "24.99" },	/* product is 24.990000000000002 */
		{ 37 * 0.0245, "0.9065" },
		{ 499 * 0.1, "49.9" },		/* frequency, 0.1 Hz units */
		{ 65535 * 0.01, "655.35" },
		{ 0.0, "0.0" },
		{ 1.0 / 3.0, "0.333333333333333" },	/* 15 digits, no more */
	};
	char buf[PM_DOUBLE_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pm_fmt_measured(buf, cases[i].v);
		assert_string_equal(buf, cases[i].text);
	}
	/* Its definition, repr() of the value rounded to 15 digits, for
	 * products, energies, extremes, negatives and subnormals. */
	srand(7);
	for (int i = 0; i < 300000; i++) {
		char want[PM_DOUBLE_LEN], tmp[64];
		double v;

		switch (i % 5) {
		case 0:
			v = (rand() % 65536) * 0.01;
			break;
		case 1:
			v = (double)rand() / RAND_MAX * pow(10, rand() % 40 - 20);
			break;
		case 2:
			v = -(double)rand() / 3.0;
			break;
		case 3:
			v = ldexp((double)rand(), rand() % 2100 - 1100);
			break;
		default:
			v = (rand() % 100000) * 0.0245 * 230 * 0.93 / 3600 * (rand() % 7);
		}
		snprintf(tmp, sizeof(tmp), "%.15g", v);
		pm_fmt_double(want, strtod(tmp, NULL));
		pm_fmt_measured(buf, v);
		if (strcmp(buf, want))
			fail_msg("%.17g: \"%s\", not \"%s\"", v, buf, want);
	}
	pm_fmt_measured(buf, -0.0);
	assert_string_equal(buf, "-0.0");
	pm_fmt_measured(buf, 9.9999999999999995e15);
	assert_string_equal(buf, "1e+16");
}

static void test_round(void **state)
{
	(void)state;
	/* round(v, 2) from python3: ties go by the exact binary value */
	assert_true(pm_round(0.92, 2) == 0.92);
	assert_true(pm_round(35 * 0.01, 2) == 0.35);
	assert_true(pm_round(35 * 0.0245, 2) == 0.86);	/* 0.8575 */
	assert_true(pm_round(0.005, 2) == 0.01);
	assert_true(pm_round(0.015, 2) == 0.01);
	assert_true(pm_round(0.025, 2) == 0.03);
	assert_true(pm_round(1.005, 2) == 1.0);
	assert_true(pm_round(2.675, 2) == 2.67);
	assert_true(pm_round(123456789.123, 2) == 123456789.12);
	assert_true(pm_round(1e16, 2) == 1e16);
	assert_true(pm_round(1e-5, 2) == 0.0);
	assert_true(signbit(pm_round(-0.001, 2)));	/* -0.0, as Python */
	assert_true(isnan(pm_round(NAN, 2)));
}

static void check_json_string(const char *s, const char *want)
{
	struct pm_buf b;

	pm_buf_init(&b, 4096);
	assert_int_equal(pm_json_string(&b, s), 0);
	assert_string_equal(b.data, want);
	pm_buf_free(&b);
}

static void test_json_string(void **state)
{
	(void)state;
	/* json.dumps() of each, from python3 */
	check_json_string("Input a", "\"Input a\"");
	check_json_string("Rack 3, PDU \"A\"=left", "\"Rack 3, PDU \\\"A\\\"=left\"");
	check_json_string("back\\slash", "\"back\\\\slash\"");
	check_json_string("\xc3\xbc" "n\xc3\xaf" "code", "\"\\u00fcn\\u00efcode\"");
	check_json_string("tab\there", "\"tab\\there\"");
	check_json_string("nl\nx\r\b\f", "\"nl\\nx\\r\\b\\f\"");
	check_json_string("\x7f", "\"\\u007f\"");
	check_json_string("emoji \xf0\x9f\x98\x80", "\"emoji \\ud83d\\ude00\"");
	check_json_string("\x01" "ctl", "\"\\u0001ctl\"");
	check_json_string("/slash", "\"/slash\"");
	check_json_string("\xe2\x82\xac", "\"\\u20ac\"");	/* the euro sign */
	check_json_string("", "\"\"");
	/* not UTF-8: each bad byte becomes U+FFFD */
	check_json_string("a\xff" "b\xc3", "\"a\\ufffdb\\ufffd\"");
	check_json_string("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");	/* a surrogate */
}

static void test_json_string_too_big(void **state)
{
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 8);
	assert_int_equal(pm_buf_adds(&b, "x"), 0);
	assert_int_equal(pm_json_string(&b, "\xc3\xbc\xc3\xbc"), -PM_ETOOBIG);
	assert_string_equal(b.data, "x");
	assert_int_equal(b.len, 1);
	pm_buf_free(&b);
}

/* Two devices; device 1 has inputs a, c (out of channel order: p first). */
static void make_config(struct pm_config *cfg)
{
	static const struct fixture_input dev1[] = {
		{ 'a', 0.01, "Rack 3, PDU \"A\"=left" },
		{ 'p', 0.0245, "\xc3\xbc" "n\xc3\xaf" "code \xf0\x9f\x98\x80" },
		{ 'c', 0.01, "back\\slash" },
	};
	static const struct fixture_input dev2[] = {
		{ 'b', 0.01, "Input b" },
	};

	memset(cfg, 0, sizeof(*cfg));
	fixture_add_device(cfg, 1, "/dev/ttyUSB0", 1, false, dev1, 3);
	fixture_add_device(cfg, 7, "/dev/ttyUSB1", 2, true, dev2, 1);
}

static void test_json_seed_output(void **state)
{
	struct pm_sample s1 = { .device = 0, .time_ms = 1700000000123 };
	struct pm_sample s2 = { .device = 1, .time_ms = 1700000000456 };
	struct pm_readings *r;
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg);
	s1.current[0] = 92;
	s1.current[15] = 35;
	s1.current[2] = 1000;
	s2.current[1] = 1010;
	s2.has_frequency = true;
	s2.frequency[1] = 499;
	r = pm_readings_new(&cfg);
	assert_non_null(r);
	assert_int_equal(pm_readings_add_sample(r, &s1), 0);
	assert_int_equal(pm_readings_add_sample(r, &s2), 0);
	pm_buf_init(&b, 1 << 20);
	assert_int_equal(pm_format_json(&b, r), 0);
	/* python3: json.dumps([...], indent=4) of the same values */
	assert_string_equal(b.data,
		"[\n"
		"    {\n"
		"        \"id\": 0,\n"
		"        \"device_id\": 1,\n"
		"        \"input\": \"a\",\n"
		"        \"name\": \"Rack 3, PDU \\\"A\\\"=left\",\n"
		"        \"current\": 0.92\n"
		"    },\n"
		"    {\n"
		"        \"id\": 1,\n"
		"        \"device_id\": 1,\n"
		"        \"input\": \"p\",\n"
		"        \"name\": \"\\u00fcn\\u00efcode \\ud83d\\ude00\",\n"
		"        \"current\": 0.86\n"
		"    },\n"
		"    {\n"
		"        \"id\": 2,\n"
		"        \"device_id\": 1,\n"
		"        \"input\": \"c\",\n"
		"        \"name\": \"back\\\\slash\",\n"
		"        \"current\": 10.0\n"
		"    },\n"
		"    {\n"
		"        \"id\": 3,\n"
		"        \"device_id\": 7,\n"
		"        \"input\": \"b\",\n"
		"        \"name\": \"Input b\",\n"
		"        \"current\": 10.1\n"
		"    }\n"
		"]");

	/* a failed device is left out; the ids of the others do not move */
	assert_int_equal(pm_readings_add_failure(r, 0, -ETIMEDOUT, "why"), 0);
	pm_buf_reset(&b);
	assert_int_equal(pm_format_json(&b, r), 0);
	assert_string_equal(b.data,
		"[\n"
		"    {\n"
		"        \"id\": 3,\n"
		"        \"device_id\": 7,\n"
		"        \"input\": \"b\",\n"
		"        \"name\": \"Input b\",\n"
		"        \"current\": 10.1\n"
		"    }\n"
		"]");

	/* nothing read: json.dumps([], indent=4) */
	assert_int_equal(pm_readings_add_failure(r, 1, -PM_ECRC, NULL), 0);
	pm_buf_reset(&b);
	assert_int_equal(pm_format_json(&b, r), 0);
	assert_string_equal(b.data, "[]");
	pm_buf_free(&b);
	pm_readings_free(r);
	fixture_free(&cfg);
}

static void test_table(void **state)
{
	struct pm_sample s1 = { .device = 0, .time_ms = 1 };
	struct pm_sample s2 = { .device = 1, .time_ms = 2, .has_frequency = true };
	struct pm_readings *r;
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg);
	s1.current[0] = 92;
	s1.current[15] = 35;
	s1.current[2] = 1000;
	s2.current[1] = 1010;
	s2.frequency[1] = 499;
	r = pm_readings_new(&cfg);
	assert_int_equal(pm_readings_add_sample(r, &s1), 0);
	assert_int_equal(pm_readings_add_sample(r, &s2), 0);
	pm_buf_init(&b, 1 << 20);
	assert_int_equal(pm_format_table(&b, r), 0);
	/* names line up by characters, not bytes */
	/* power at 230 V and power factor 1, marked as the estimate it is */
	assert_string_equal(b.data,
		"DEVICE  PORT/ADDRESS     INPUT  NAME                   AMPS    HZ  WATTS*\n"
		"     1  /dev/ttyUSB0 #1  a      Rack 3, PDU \"A\"=left   0.92     -     212\n"
		"     1  /dev/ttyUSB0 #1  p      \xc3\xbc" "n\xc3\xaf" "code \xf0\x9f\x98\x80              0.86     -     197\n"
		"     1  /dev/ttyUSB0 #1  c      back\\slash            10.00     -    2300\n"
		"     7  /dev/ttyUSB1 #2  b      Input b               10.10  49.9    2323\n"
		"* estimates: the modules measure current only; power is current x "
		"the configured voltage x power factor\n");
	/* without any frequency, no HZ column */
	assert_int_equal(pm_readings_add_failure(r, 1, -ETIMEDOUT, NULL), 0);
	pm_buf_reset(&b);
	assert_int_equal(pm_format_table(&b, r), 0);
	assert_null(strstr(b.data, "HZ"));
	assert_null(strstr(b.data, "KWH"));	/* no energy off the bus */
	assert_non_null(strstr(b.data, "     1  /dev/ttyUSB0 #1  a      Rack 3, PDU \"A\"=left   0.92     212\n"));
	pm_buf_free(&b);
	pm_readings_free(r);
	fixture_free(&cfg);
}

/* A current that is not a finite number (a ratio no config accepts: 1e308
 * x 1000 counts) fails its input alone, -ERANGE: no output shows it —
 * never "Infinity" (not JSON: Zabbix fails to parse it) nor "inf" — and
 * the device's other inputs are shown as read. */
static void test_not_finite(void **state)
{
	static const struct fixture_input inputs[] = {
		{ 'a', 1e308, "Absurd" }, { 'b', 0.01, "Fine" },
	};
	struct pm_sample s = { .device = 0, .time_ms = 1700000000123,
			       .has_frequency = true };
	static const enum pm_format formats[] = {
		PM_FORMAT_JSON, PM_FORMAT_CIRCUITS, PM_FORMAT_TABLE,
		PM_FORMAT_INFLUX,
	};
	struct pm_readings *r;
	struct pm_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	fixture_add_device(&cfg, 1, "/dev/ttyUSB0", 1, true, inputs, 2);
	s.current[0] = 1000;
	s.current[1] = 1020;
	s.frequency[0] = s.frequency[1] = 500;
	r = pm_readings_new(&cfg);
	assert_non_null(r);
	assert_int_equal(pm_readings_add_sample(r, &s), 0);
	assert_int_equal(r->values[0].status, -ERANGE);
	assert_true(isnan(r->values[0].current));
	assert_true(isnan(r->values[0].power));
	assert_true(isnan(r->values[0].frequency));
	assert_int_equal(r->values[1].status, 0);
	assert_true(r->values[1].current == 1020 * 0.01);
	/* the device was read: its other input counts, nothing failed */
	assert_int_equal(pm_readings_failed(r), 0);
	assert_null(pm_readings_error(r, 1));
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		char *text = NULL;

		assert_int_equal(pm_readings_format(r, formats[i], NULL, &text), 0);
		assert_null(strstr(text, "Infinity"));
		assert_null(strstr(text, "NaN"));
		assert_null(strstr(text, "inf"));
		assert_null(strstr(text, "nan"));
		assert_null(strstr(text, "Absurd"));
		assert_non_null(strstr(text, "Fine"));
		free(text);
	}
	/* the same through the snapshot's path */
	assert_int_equal(pm_readings_set_input(r, 0, INFINITY, NAN, NAN, NAN,
					       1), 0);
	assert_int_equal(r->values[0].status, -ERANGE);
	assert_int_equal(pm_readings_set_input(r, 1, 10.2, INFINITY, -INFINITY,
					       NAN, 1), 0);
	assert_int_equal(r->values[1].status, 0);
	assert_true(isnan(r->values[1].frequency));
	assert_true(isnan(r->values[1].energy));
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		char *text = NULL;

		assert_int_equal(pm_readings_format(r, formats[i], NULL, &text), 0);
		assert_null(strstr(text, "inf"));
		assert_null(strstr(text, "Infinity"));
		assert_non_null(strstr(text, "10.2"));
		free(text);
	}
	pm_readings_free(r);
	fixture_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt_double),
		cmocka_unit_test(test_fmt_measured),
		cmocka_unit_test(test_round),
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_json_string_too_big),
		cmocka_unit_test(test_json_seed_output),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_not_finite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
