/* test_lineproto.c — InfluxDB line protocol: each element's own escaping
 * (measurement, tag key/value, field key, string field value), the seed's
 * schema for a sample, and never half a sample in the buffer. (The real
 * InfluxDB 1.6 round trip is tests/integration/lineproto_influx.py.) */
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
#include "output/lineproto.h"
#include "util/buf.h"
#include "reader_fixture.h"

static void check(int (*escape)(struct pm_buf *, const char *), const char *in,
		  const char *want)
{
	struct pm_buf b;

	pm_buf_init(&b, 4096);
	assert_int_equal(escape(&b, in), 0);
	assert_string_equal(b.data, want);
	pm_buf_free(&b);
}

static void test_measurement(void **state)
{
	struct pm_buf b;

	(void)state;
	check(pm_lp_measurement, "powermeter", "powermeter");
	/* comma and space only; '=' and '"' are plain in a measurement */
	check(pm_lp_measurement, "my meas,x=\"y\"", "my\\ meas\\,x=\"y\"");
	check(pm_lp_measurement, "\xc3\xbc" "ber", "\xc3\xbc" "ber");
	check(pm_lp_measurement, "a\nb", "a\\ b");
	pm_buf_init(&b, 64);
	assert_int_equal(pm_lp_measurement(&b, ""), -EINVAL);
	assert_int_equal(pm_lp_measurement(&b, "#comment"), -EINVAL);
	assert_int_equal(pm_lp_measurement(&b, "\\"), -EINVAL);
	assert_int_equal(b.len, 0);
	pm_buf_free(&b);
}

static void test_tag(void **state)
{
	(void)state;
	check(pm_lp_tag, "Input a", "Input\\ a");
	check(pm_lp_tag, "Rack 3, PDU \"A\"=left", "Rack\\ 3\\,\\ PDU\\ \"A\"\\=left");
	check(pm_lp_tag, "\xc3\xbc" "n\xc3\xaf" "code", "\xc3\xbc" "n\xc3\xaf" "code");
	/* backslashes are read back by InfluxDB as written ... */
	check(pm_lp_tag, "back\\slash", "back\\slash");
	check(pm_lp_tag, "a\\\\b", "a\\\\b");
	check(pm_lp_tag, "a\\\\ b", "a\\\\\\ b");
	/* ... except an odd run before an escaped character (one more) ... */
	check(pm_lp_tag, "a\\ b", "a\\\\\\ b");
	check(pm_lp_tag, "a\\,b", "a\\\\\\,b");
	/* ... and at the end, which InfluxDB refuses: left out */
	check(pm_lp_tag, "end\\", "end");
	check(pm_lp_tag, "end\\\\\\", "end");
	/* line feeds and other control characters cannot be represented */
	check(pm_lp_tag, "two\nlines\r\t", "two\\ lines\\ \\ ");
	check(pm_lp_tag, "a\\\n", "a\\\\\\ ");
}

static void test_field_key(void **state)
{
	(void)state;
	check(pm_lp_field_key, "current", "current");
	check(pm_lp_field_key, "cur rent,=\"x\"", "cur\\ rent\\,\\=\"x\"");
}

static void test_string_value(void **state)
{
	(void)state;
	/* only double quote and backslash, inside quotes */
	check(pm_lp_string_value, "say \"hi\" \\o/, a=b", "\"say \\\"hi\\\" \\\\o/, a=b\"");
	check(pm_lp_string_value, "", "\"\"");
	check(pm_lp_string_value, "x\ny", "\"x y\"");
}

static void make_config(struct pm_config *cfg, bool frequency)
{
	static const struct fixture_input inputs[] = {
		{ 'c', 0.01, "Rack 3, PDU \"A\"=left" },
		{ 'a', 0.0245, "\\" },	/* nothing left after escaping */
	};

	memset(cfg, 0, sizeof(*cfg));
	fixture_add_device(cfg, 4, "/dev/ttyUSB0", 1, frequency, inputs, 2);
}

static void test_sample(void **state)
{
	struct pm_sample s = { .device = 0, .time_ms = 1700000000123 };
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg, false);
	s.current[2] = 92;
	s.current[0] = 35;
	pm_buf_init(&b, 4096);
	assert_int_equal(pm_lp_append_sample(&b, &cfg, NULL, &s), 0);
	/* tags sorted by key; an empty name is left out; shortest floats */
	assert_string_equal(b.data,
		"powermeter,device_id=4,input=c,name=Rack\\ 3\\,\\ PDU\\ \"A\"\\=left,"
		"unique_id=0 current=0.92,power=211.6 1700000000123\n"
		"powermeter,device_id=4,input=a,unique_id=1 current=0.8575,power=197.225 1700000000123\n");
	fixture_free(&cfg);

	make_config(&cfg, true);
	s.has_frequency = true;
	s.frequency[2] = 499;
	s.frequency[0] = 0;
	pm_buf_reset(&b);
	assert_int_equal(pm_lp_append_sample(&b, &cfg, "my power", &s), 0);
	assert_string_equal(b.data,
		"my\\ power,device_id=4,input=c,name=Rack\\ 3\\,\\ PDU\\ \"A\"\\=left,"
		"unique_id=0 current=0.92,frequency=49.9,power=211.6 1700000000123\n"
		"my\\ power,device_id=4,input=a,unique_id=1 current=0.8575,frequency=0.0,"
		"power=197.225 1700000000123\n");
	pm_buf_free(&b);

	/* a sample for a device the config does not have */
	s.device = 1;
	pm_buf_init(&b, 4096);
	assert_int_equal(pm_lp_append_sample(&b, &cfg, NULL, &s), -EINVAL);
	assert_int_equal(b.len, 0);
	pm_buf_free(&b);
	fixture_free(&cfg);
}

static void test_never_half_a_sample(void **state)
{
	struct pm_sample s = { .device = 0, .time_ms = 1700000000123 };
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg, false);
	/* room for "old\n" and the first line, not the second */
	pm_buf_init(&b, 4 + 90);
	assert_int_equal(pm_buf_adds(&b, "old\n"), 0);
	assert_int_equal(pm_lp_append_sample(&b, &cfg, NULL, &s), -PM_ETOOBIG);
	assert_string_equal(b.data, "old\n");
	assert_int_equal(b.len, 4);
	pm_buf_free(&b);
	fixture_free(&cfg);
}

/* A current that is not a finite number (a ratio no config accepts) writes
 * no line for its input, the others as read; any other figure that is not
 * finite is left out of its line, never "inf" or "nan". */
static void test_not_finite(void **state)
{
	struct pm_sample s = { .device = 0, .time_ms = 1700000000123 };
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg, false);
	cfg.devices[0].inputs[0].ratio = 1e308;
	s.current[2] = 1000;
	s.current[0] = 35;
	s.has_energy = true;
	for (int k = 0; k < PM_CHANNELS; k++)
		s.energy_wh[k] = s.charge_ah[k] = INFINITY;
	pm_buf_init(&b, 4096);
	assert_int_equal(pm_lp_append_sample(&b, &cfg, NULL, &s), 0);
	assert_string_equal(b.data,
		"powermeter,device_id=4,input=a,unique_id=1 current=0.8575,"
		"power=197.225 1700000000123\n");
	pm_buf_free(&b);
	fixture_free(&cfg);
}

static void test_value(void **state)
{
	struct pm_value v = {
		.id = 9, .device_id = 2, .input = 'p', .name = "x",
		.current = 1e-05, .frequency = NAN, .power = NAN,
		.energy = NAN, .charge = NAN, .time_ms = 5, .status = 0,
	};
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 4096);
	assert_int_equal(pm_lp_append_value(&b, NULL, &v, 0, NULL), 0);
	assert_string_equal(b.data,
		"powermeter,device_id=2,input=p,name=x,unique_id=9 current=1e-05 5\n");
	/* failed values write nothing */
	v.status = -ETIMEDOUT;
	assert_int_equal(pm_lp_append_value(&b, NULL, &v, 0, NULL), 0);
	assert_int_equal(b.len, strlen("powermeter,device_id=2,input=p,name=x,"
				       "unique_id=9 current=1e-05 5\n"));
	pm_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_measurement),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_field_key),
		cmocka_unit_test(test_string_value),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_never_half_a_sample),
		cmocka_unit_test(test_value),
		cmocka_unit_test(test_not_finite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
