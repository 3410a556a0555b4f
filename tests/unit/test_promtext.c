/* test_promtext.c — the Prometheus textfile's text (output/promtext.h):
 * label names and values, the families and their lines for a small config,
 * what is left out (failed, stale, not finite, never read, a feed missing a
 * circuit), every module counter of the X-macro, HELP and TYPE once per
 * family with its lines together, never half a file. (promtool and
 * node_exporter read the daemon's file in tests/integration/prometheus.py.) */
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

#include "output/promtext.h"
#include "util/buf.h"
#include "reader_fixture.h"

#define NOW 1700000000500
#define T0 1700000000123

static void check_name(const char *key, const char *want)
{
	char out[PM_PROM_LABEL_MAX];

	pm_prom_label_name(out, key);
	assert_string_equal(out, want);
}

static void test_label_name(void **state)
{
	char long_key[200], want[PM_PROM_LABEL_MAX];

	(void)state;
	/* what the config accepts comes out as it is */
	check_name("rack", "rack");
	check_name("customer_2", "customer_2");
	check_name("Rack", "Rack");
	check_name("rack-1.a", "rack_1_a");
	check_name("1st", "_1st");
	check_name("9", "_9");
	check_name("_x", "_x");
	check_name("__name__", "tag__name__");
	check_name("\xc3\xbc", "tag__");		/* two bytes, two '_' */
	check_name("-x", "_x");
	check_name("", "_");
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	memset(want, 'k', sizeof(want) - 1);
	want[sizeof(want) - 1] = '\0';
	check_name(long_key, want);
	long_key[0] = '7';
	want[0] = '_';
	want[1] = '7';
	check_name(long_key, want);
}

static void test_label_value(void **state)
{
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 4096);
	assert_int_equal(pm_prom_label_value(&b, "Rack 3, PDU \"A\"=left\\\n{x}"), 0);
	assert_string_equal(b.data, "\"Rack 3, PDU \\\"A\\\"=left\\\\\\n{x}\"");
	pm_buf_reset(&b);
	assert_int_equal(pm_prom_label_value(&b, ""), 0);
	assert_string_equal(b.data, "\"\"");
	pm_buf_reset(&b);
	assert_int_equal(pm_prom_label_value(&b, "\xc3\xbc" "ber"), 0);
	assert_string_equal(b.data, "\"\xc3\xbc" "ber\"");
	pm_buf_free(&b);
	/* too large: nothing half-written */
	pm_buf_init(&b, 8);
	assert_int_equal(pm_buf_adds(&b, "x"), 0);
	assert_int_equal(pm_prom_label_value(&b, "0123456789"), -PM_ETOOBIG);
	assert_string_equal(b.data, "x");
	pm_buf_free(&b);
}

/* ---- a small config ------------------------------------------------------ */

static struct pm_tag tags0[] = {
	/* sorted by key, as the config makes them; "1st" and "_1st" are one
	 * label name, "input" is ours: both left out */
	{ "1st", "one" }, { "_1st", "dup" }, { "input", "x" },
	{ "phase", "L1" }, { "site", "Hall \"B\"" },
};
static struct pm_feed feed = {
	.name = "UPS A", .capacity = 32, .n_phases = 2, .phases = { 0, 2 },
	.partner = -1,
};

/* Device 4 (frequency) inputs c and a, device 7 input b; input c has a
 * breaker and tags. */
static void make_config(struct pm_config *cfg)
{
	static const struct fixture_input in4[] = {
		{ 'c', 0.01, "Rack 3, PDU \"A\"" },
		{ 'a', 0.1, "" },
	};
	static const struct fixture_input in7[] = { { 'b', 0.02, "Pump" } };
	struct pm_device *dev;

	memset(cfg, 0, sizeof(*cfg));
	cfg->interval = 1.0;
	dev = fixture_add_device(cfg, 4, "/dev/ttyUSB0", 1, true, in4, 2);
	dev->inputs[0].breaker = 16;
	dev->inputs[0].point_tags = tags0;
	dev->inputs[0].n_point_tags = sizeof(tags0) / sizeof(tags0[0]);
	dev->inputs[0].voltage = 230;
	dev->inputs[0].power_factor = 0.9;
	(void)fixture_add_device(cfg, 7, "tcp://10.0.0.5", 2, false, in7, 1);
	cfg->feeds = &feed;
	cfg->n_feeds = 1;
}

static void make_devices(struct pm_prom_device d[2])
{
	memset(d, 0, 2 * sizeof(*d));
	d[0].attempted = true;
	d[0].state.up = true;
	d[0].state.last_success_ms = T0;
	d[0].state.last_attempt_ms = T0;
	d[0].state.reads = 12;
	d[0].state.requests = 13;
	d[0].state.retries = 1;
	d[0].state.crc_errors = 1;
	d[0].has_sample = true;
	d[0].sample.time_ms = T0;
	d[0].sample.current[2] = 1020;	/* c: 10.2 A, 10.200000000000001 */
	d[0].sample.current[0] = 35;	/* a: 3.5 A */
	d[0].sample.has_frequency = true;
	d[0].sample.frequency[2] = 500;
	d[0].sample.frequency[0] = 499;
	d[0].sample.has_energy = true;
	for (int ch = 0; ch < PM_CHANNELS; ch++)
		d[0].sample.energy_wh[ch] = NAN;
	d[0].sample.energy_wh[2] = 1.5;
	/* device 7: read before, failing now */
	d[1].attempted = true;
	d[1].state.up = false;
	d[1].state.last_success_ms = 0;
	d[1].state.last_attempt_ms = T0;
	d[1].state.failures = 3;
	d[1].state.timeouts = 9;
	d[1].state.requests = 9;
	d[1].has_sample = false;
	d[1].sample.time_ms = T0 - 1000;
	d[1].sample.current[1] = 500;
}

static void free_config(struct pm_config *cfg)
{
	cfg->feeds = NULL;
	cfg->n_feeds = 0;
	fixture_free(cfg);
}

#define C4 "{device_id=\"4\",input=\"c\",name=\"Rack 3, PDU \\\"A\\\"\"," \
	   "_1st=\"one\",phase=\"L1\",site=\"Hall \\\"B\\\"\"}"
#define A4 "{device_id=\"4\",input=\"a\"}"
#define M4 "{device_id=\"4\",port=\"/dev/ttyUSB0\",address=\"1\"}"
#define M7 "{device_id=\"7\",port=\"tcp://10.0.0.5\",address=\"2\"}"
#define COUNTER(name, help, v4, v7)					\
	"# HELP powermeter_module_" name "_total " help "\n"		\
	"# TYPE powermeter_module_" name "_total counter\n"		\
	"powermeter_module_" name "_total" M4 " " v4 "\n"		\
	"powermeter_module_" name "_total" M7 " " v7 "\n"

/* In parts: ISO C promises string literals of 4095 bytes only. */
static const char *const expected_parts[] = {
	"# HELP powermeter_current_amperes Current of the circuit in amperes, as its module measured it.\n"
	"# TYPE powermeter_current_amperes gauge\n"
	"powermeter_current_amperes" C4 " 10.200000000000001\n"
	"powermeter_current_amperes" A4 " 3.5\n"
	"# HELP powermeter_power_watts Power of the circuit in watts, ESTIMATED from the current and the configured voltage and power factor (the module measures current only).\n"
	"# TYPE powermeter_power_watts gauge\n"
	"powermeter_power_watts" C4 " 2111.4000000000005\n"
	"powermeter_power_watts" A4 " 805.0\n"
	"# HELP powermeter_frequency_hertz Frequency on the circuit's channel in hertz, as its module measured it.\n"
	"# TYPE powermeter_frequency_hertz gauge\n"
	"powermeter_frequency_hertz" C4 " 50.0\n"
	"powermeter_frequency_hertz" A4 " 49.9\n"
	"# HELP powermeter_load_ratio Current of the circuit over its breaker's rating (1 is the rating).\n"
	"# TYPE powermeter_load_ratio gauge\n"
	"powermeter_load_ratio" C4 " 0.6375000000000001\n"
	"# HELP powermeter_energy_joules_total Energy the circuit used in joules (3.6e6 per kWh), ESTIMATED from the estimated power; never goes backwards.\n"
	"# TYPE powermeter_energy_joules_total counter\n"
	"powermeter_energy_joules_total" C4 " 5400.0\n",
	"# HELP powermeter_module_up 1 while the module answers, 0 once its last reads failed (\"down_after\" in a row).\n"
	"# TYPE powermeter_module_up gauge\n"
	"powermeter_module_up" M4 " 1\n"
	"powermeter_module_up" M7 " 0\n"
	"# HELP powermeter_module_last_success_timestamp_seconds When the module last answered, in seconds since the epoch.\n"
	"# TYPE powermeter_module_last_success_timestamp_seconds gauge\n"
	"powermeter_module_last_success_timestamp_seconds" M4 " 1700000000.123\n"
	COUNTER("reads", "Successful reads of the module.", "12", "0")
	COUNTER("failures", "Failed reads of the module, all kinds.", "0", "3")
	COUNTER("requests", "Modbus frames sent to the module, retries included.", "13", "9")
	COUNTER("retries", "Frames sent to the module again after a bad or missing answer.", "1", "0"),
	COUNTER("timeouts", "Frames the module did not answer in time.", "0", "9")
	COUNTER("crc_errors", "Answers of the module that failed their CRC.", "1", "0")
	COUNTER("frame_errors", "Other bad answers: cut short, malformed or from another unit.", "0", "0")
	COUNTER("exceptions", "Reads the module answered with a Modbus exception.", "0", "0")
	COUNTER("io_errors", "Reads that failed on the port: missing, unplugged or busy.", "0", "0")
	"# HELP powermeter_feed_current_amperes Current on the feed's phase in amperes: the sum over its circuits.\n"
	"# TYPE powermeter_feed_current_amperes gauge\n"
	"powermeter_feed_current_amperes{feed=\"UPS A\",phase=\"L1\"} 10.2\n"
	"# HELP powermeter_feed_load_ratio Current on the feed's phase over its capacity (1 is the capacity).\n"
	"# TYPE powermeter_feed_load_ratio gauge\n"
	"powermeter_feed_load_ratio{feed=\"UPS A\",phase=\"L1\"} 0.31875\n",
};

/* The parts above as one string (static: the tests run one at a time). */
static const char *expected(void)
{
	static char text[16384];

	if (!text[0])
		for (size_t i = 0; i < sizeof(expected_parts) / sizeof(expected_parts[0]); i++)
			strcat(text, expected_parts[i]);
	return text;
}

static void make_feeds(struct pm_feed_fig *fig)
{
	memset(fig, 0, sizeof(*fig));
	fig->phase[0].current = 10.2;
	fig->phase[0].inputs = 1;
	/* L3: a circuit without a reading: a lower bound, left out */
	fig->phase[1].current = 1.0;
	fig->phase[1].inputs = 2;
	fig->phase[1].missing = 1;
}

/* Every family has its HELP, then its TYPE, once, then all its lines; a
 * metric line belongs to the family just announced; nothing has a
 * timestamp (name{labels} value, value a number). */
static void assert_well_formed(const char *text)
{
	char seen[64][96];
	size_t n_seen = 0;
	char family[96] = "";
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n');
		char name[96];
		size_t len;

		assert_non_null(end);
		len = (size_t)(end - line);
		if (!strncmp(line, "# HELP ", 7)) {
			const char *sp = memchr(line + 7, ' ', len - 7);

			assert_non_null(sp);
			(void)snprintf(family, sizeof(family), "%.*s",
				       (int)(sp - line - 7), line + 7);
			for (size_t i = 0; i < n_seen; i++)
				assert_string_not_equal(seen[i], family);
			assert_true(n_seen < 64);
			strcpy(seen[n_seen++], family);
			/* the TYPE follows at once */
			assert_int_equal(strncmp(end + 1, "# TYPE ", 7), 0);
			assert_int_equal(strncmp(end + 8, family, strlen(family)), 0);
			end = strchr(end + 1, '\n');
			assert_non_null(end);
			line = end + 1;
			continue;
		}
		assert_true(line[0] != '#');
		len = strcspn(line, "{ ");
		assert_true(len < sizeof(name));
		memcpy(name, line, len);
		name[len] = '\0';
		assert_string_equal(name, family);
		{
			const char *value = memchr(line, '}', (size_t)(end - line));
			char *num_end;
			double v;

			value = value ? value + 1 : line + len;
			assert_int_equal(*value, ' ');
			v = strtod(value + 1, &num_end);
			assert_ptr_equal(num_end, end);	/* one number, no time */
			assert_true(isfinite(v));
		}
		line = end + 1;
	}
}

static void test_format(void **state)
{
	struct pm_prom_device d[2];
	struct pm_feed_fig fig;
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg);
	make_devices(d);
	make_feeds(&fig);
	pm_buf_init(&b, PM_PROMTEXT_MAX);
	assert_int_equal(pm_buf_adds(&b, "# before\n"), 0);
	assert_int_equal(pm_promtext_format(&b, &cfg, d, &fig, NOW), 0);
	assert_int_equal(strncmp(b.data, "# before\n", 9), 0);
	assert_string_equal(b.data + 9, expected());
	assert_well_formed(b.data + 9);
	pm_buf_free(&b);
	free_config(&cfg);
}

/* A reading older than 3 intervals is no value; no feed figures yet, no
 * feed lines; a module never read is no module. */
static void test_left_out(void **state)
{
	struct pm_prom_device d[2];
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg);
	make_devices(d);
	pm_buf_init(&b, PM_PROMTEXT_MAX);

	/* 2.9 intervals: still shown */
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, T0 + 2900), 0);
	assert_non_null(strstr(b.data, "powermeter_current_amperes" A4 " 3.5\n"));
	assert_null(strstr(b.data, "powermeter_feed"));
	assert_well_formed(b.data);
	pm_buf_reset(&b);
	/* 3: stale, the circuit families are gone with their HELP */
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, T0 + 3000), 0);
	assert_null(strstr(b.data, "powermeter_current_amperes"));
	assert_null(strstr(b.data, "powermeter_power_watts"));
	assert_null(strstr(b.data, "powermeter_energy"));
	assert_non_null(strstr(b.data, "powermeter_module_up" M4 " 1\n"));
	assert_well_formed(b.data);
	pm_buf_reset(&b);

	/* not finite: no line (energy withheld, frequency not read) */
	d[0].sample.energy_wh[2] = NAN;
	d[0].sample.has_frequency = false;
	cfg.devices[0].inputs[0].breaker = 0;
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, NOW), 0);
	assert_non_null(strstr(b.data, "powermeter_current_amperes" C4));
	assert_null(strstr(b.data, "powermeter_energy"));
	assert_null(strstr(b.data, "powermeter_frequency"));
	assert_null(strstr(b.data, "powermeter_load_ratio"));
	assert_well_formed(b.data);
	pm_buf_reset(&b);

	/* device 7 never attempted; device 4 read, once, by a load
	 * generator (samples only, no state) */
	d[1].attempted = false;
	d[0].attempted = false;
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, NOW), 0);
	assert_null(strstr(b.data, "powermeter_module"));
	assert_non_null(strstr(b.data, "powermeter_current_amperes" C4));
	pm_buf_reset(&b);
	/* nothing at all: an empty file, not a lone HELP */
	d[0].has_sample = false;
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, NOW), 0);
	assert_int_equal(b.len, 0);
	pm_buf_free(&b);
	free_config(&cfg);
}

/* A circuit whose current is not a finite number (a ratio no config
 * accepts) is left out whole — current, power, load, frequency, energy —
 * never "+Inf" or "NaN", which the format would take; the other circuits
 * stay. An energy counter that is not finite is left out alone. */
static void test_not_finite(void **state)
{
	struct pm_prom_device d[2];
	struct pm_config cfg;
	struct pm_buf b;

	(void)state;
	make_config(&cfg);
	make_devices(d);
	cfg.devices[0].inputs[0].ratio = 1e308;		/* c: 1020 counts */
	d[0].sample.energy_wh[0] = INFINITY;		/* a */
	pm_buf_init(&b, PM_PROMTEXT_MAX);
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, NOW), 0);
	assert_null(strstr(b.data, C4));
	assert_null(strstr(b.data, "Inf"));
	assert_null(strstr(b.data, "inf"));
	assert_null(strstr(b.data, "NaN"));
	assert_null(strstr(b.data, "nan"));
	assert_non_null(strstr(b.data, "powermeter_current_amperes" A4 " 3.5\n"));
	assert_non_null(strstr(b.data, "powermeter_frequency_hertz" A4 " 49.9\n"));
	assert_null(strstr(b.data, "powermeter_energy_joules_total" A4));
	assert_well_formed(b.data);
	pm_buf_free(&b);
	free_config(&cfg);
}

/* Every counter of PM_DEVICE_COUNTERS has its family, with its value. */
static void test_every_counter(void **state)
{
	struct pm_prom_device d[2];
	struct pm_config cfg;
	struct pm_buf b;
	unsigned n = 0;

	(void)state;
	make_config(&cfg);
	make_devices(d);
#define SET(name) d[0].state.name = 1000 + n++;
	PM_DEVICE_COUNTERS(SET)
#undef SET
	pm_buf_init(&b, PM_PROMTEXT_MAX);
	assert_int_equal(pm_promtext_format(&b, &cfg, d, NULL, NOW), 0);
	n = 0;
#define CHECK(name)							\
	{								\
		char want[256];						\
									\
		(void)snprintf(want, sizeof(want),			\
			       "# TYPE powermeter_module_" #name	\
			       "_total counter\n");			\
		assert_non_null(strstr(b.data, want));			\
		(void)snprintf(want, sizeof(want),			\
			       "powermeter_module_" #name "_total" M4	\
			       " %u\n", 1000 + n++);			\
		assert_non_null(strstr(b.data, want));			\
	}
	PM_DEVICE_COUNTERS(CHECK)
#undef CHECK
	assert_well_formed(b.data);
	pm_buf_free(&b);
	free_config(&cfg);
}

/* Never half a file: too large leaves the buffer as it was. */
static void test_too_large(void **state)
{
	struct pm_prom_device d[2];
	struct pm_feed_fig fig;
	struct pm_config cfg;
	struct pm_buf b;
	size_t len = strlen(expected());

	(void)state;
	make_config(&cfg);
	make_devices(d);
	make_feeds(&fig);
	for (size_t cap = 10; cap < len + 10; cap += 97) {
		int r;

		pm_buf_init(&b, cap);
		assert_int_equal(pm_buf_adds(&b, "old\n"), 0);
		r = pm_promtext_format(&b, &cfg, d, &fig, NOW);
		if (cap < len + 4) {
			assert_int_equal(r, -PM_ETOOBIG);
			assert_int_equal(b.len, 4);
			assert_string_equal(b.data, "old\n");
		} else {
			assert_int_equal(r, 0);
		}
		pm_buf_free(&b);
	}
	free_config(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_name),
		cmocka_unit_test(test_label_value),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_left_out),
		cmocka_unit_test(test_not_finite),
		cmocka_unit_test(test_every_counter),
		cmocka_unit_test(test_too_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
