/* test_api.c — the public API's contract as powermeter.h states it: error
 * codes and their texts, outputs untouched on failure, readings that
 * outlive their config, bounds of the getters. Uses only the public header;
 * no serial port is needed (the configured ports do not exist). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "pm-build.h"

static char tmp[] = "/tmp/pm-test-api-XXXXXX";

/* Writes 'text' as tmp/name (with "@TMP@" replaced by tmp); returns the
 * path (static storage, one at a time). */
static const char *fixture(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	for (const char *p = text; *p; p++) {
		if (!strncmp(p, "@TMP@", 5)) {
			fputs(tmp, f);
			p += 4;
		} else {
			fputc(*p, f);
		}
	}
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Two devices on ports that do not exist; a snapshot path that does not
 * either, so nothing outside tmp is touched. */
static const char two_devices[] =
	"{\"snapshot\": \"@TMP@/values.json\",\n"
	" \"state_directory\": \"@TMP@/state\",\n"
	" \"runtime_directory\": \"@TMP@\",\n"
	" \"devices\": [\n"
	"  {\"id\": 7, \"port\": \"@TMP@/ttyNONE0\", \"timeout\": 0.2,\n"
	"   \"inputs\": [{\"input\": \"a\", \"ratio\": 0.01, \"name\": \"L1\"},\n"
	"              {\"input\": \"c\", \"ratio\": 0.01, \"name\": \"L3\"}]},\n"
	"  {\"id\": 3, \"port\": \"@TMP@/ttyNONE1\", \"timeout\": 0.2,\n"
	"   \"inputs\": [{\"input\": \"p\", \"ratio\": 0.02, \"name\": \"Pitch\"}]}\n"
	" ]}\n";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static pm_config *load_ok(const char *text)
{
	pm_config *cfg = NULL;
	char *errors = NULL;
	int err = pm_config_load(&cfg, fixture("ok.json", text), &errors);

	if (err < 0)
		fail_msg("pm_config_load: %s: %s", pm_strerror(err),
			 errors ? errors : "");
	assert_null(errors);
	return cfg;
}

static void strerror_names_every_code(void **state)
{
	const char *seen[PM_ETOOBIG - PM_EBASE];

	(void)state;
	for (int code = PM_ECONFIG; code <= PM_ETOOBIG; code++) {
		const char *s = pm_strerror(-code);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		assert_string_equal(s, pm_strerror(code));
		assert_null(strstr(s, "Unknown"));
		for (int j = PM_ECONFIG; j < code; j++)
			assert_string_not_equal(s, seen[j - PM_ECONFIG]);
		seen[code - PM_ECONFIG] = s;
	}
	assert_non_null(strstr(pm_strerror(-ETIMEDOUT), "timed out"));
	assert_non_null(pm_strerror(-PM_EBASE - 1000));
	assert_non_null(pm_strerror(0));
}

static void version_is_the_package_version(void **state)
{
	(void)state;
	assert_string_equal(pm_version(), PM_VERSION);
	assert_int_equal(PM_API_VERSION, 1);
}

static void bad_config_reports_file_and_path(void **state)
{
	pm_config *cfg = (pm_config *)(uintptr_t)0x1234;
	char *errors = NULL;
	const char *path = fixture("bad.json",
		"[{\"id\": 1, \"port\": \"/dev/null\", \"inputs\": ["
		"{\"input\": \"a\", \"ratio\": \"x\", \"name\": \"A\"}]}]");

	(void)state;
	assert_int_equal(pm_config_load(&cfg, path, &errors), -PM_ECONFIG);
	assert_ptr_equal(cfg, (pm_config *)(uintptr_t)0x1234);
	assert_non_null(errors);
	assert_non_null(strstr(errors, "bad.json"));
	assert_non_null(strstr(errors, "[0].inputs[0].ratio"));
	free(errors);

	/* errors may be NULL */
	assert_int_equal(pm_config_load(&cfg, path, NULL), -PM_ECONFIG);
	assert_ptr_equal(cfg, (pm_config *)(uintptr_t)0x1234);
}

static void missing_config_is_enoent_errors_untouched(void **state)
{
	pm_config *cfg = (pm_config *)(uintptr_t)0x1234;
	char *errors = (char *)(uintptr_t)0x5678;
	char path[300];

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.json", tmp);
	assert_int_equal(pm_config_load(&cfg, path, &errors), -ENOENT);
	assert_ptr_equal(cfg, (pm_config *)(uintptr_t)0x1234);
	assert_ptr_equal(errors, (char *)(uintptr_t)0x5678);
}

static void devices_in_file_order(void **state)
{
	pm_config *cfg = load_ok(two_devices);

	(void)state;
	assert_int_equal(pm_config_device_count(cfg), 2);
	assert_int_equal(pm_config_device_id(cfg, 0), 7);
	assert_int_equal(pm_config_device_id(cfg, 1), 3);
	assert_int_equal(pm_config_device_id(cfg, 2), -EINVAL);
	assert_int_equal(pm_config_device_id(cfg, SIZE_MAX), -EINVAL);
	pm_config_free(cfg);
	pm_config_free(NULL);
}

static void read_rejects_unknown_device_and_source(void **state)
{
	pm_config *cfg = load_ok(two_devices);
	pm_readings *r = (pm_readings *)(uintptr_t)0x1234;

	(void)state;
	assert_int_equal(pm_read(cfg, 99, PM_SOURCE_BUS, &r), -ENOENT);
	assert_ptr_equal(r, (pm_readings *)(uintptr_t)0x1234);
	assert_int_equal(pm_read(cfg, -1, (enum pm_source)42, &r), -EINVAL);
	assert_ptr_equal(r, (pm_readings *)(uintptr_t)0x1234);
	/* no daemon, no snapshot */
	assert_int_equal(pm_read(cfg, -1, PM_SOURCE_SNAPSHOT, &r),
			 -PM_ENOSNAPSHOT);
	assert_ptr_equal(r, (pm_readings *)(uintptr_t)0x1234);
	pm_config_free(cfg);
}

/* Every device fails (no such port): pm_read still succeeds, each value
 * says why, and nothing is formatted. */
static void failed_devices_are_values_with_status(void **state)
{
	pm_config *cfg = load_ok(two_devices);
	pm_readings *r = NULL;
	const struct pm_value *v;
	char *text = (char *)(uintptr_t)0x5678;
	char port0[300];

	(void)state;
	snprintf(port0, sizeof(port0), "%s/ttyNONE0", tmp);
	assert_int_equal(pm_read(cfg, -1, PM_SOURCE_AUTO, &r), 0);
	/* the readings hold their own copies of ports and names */
	pm_config_free(cfg);

	assert_int_equal(pm_readings_count(r), 3);
	assert_int_equal(pm_readings_failed(r), 2);
	v = pm_readings_get(r, 0);
	assert_non_null(v);
	assert_int_equal(v->id, 0);
	assert_int_equal(v->device_id, 7);
	assert_string_equal(v->port, port0);
	assert_int_equal(v->address, 1);
	assert_int_equal(v->input, 'a');
	assert_int_equal(v->channel, 1);
	assert_string_equal(v->name, "L1");
	assert_int_equal(v->status, -ENOENT);
	assert_true(isnan(v->current));
	assert_true(isnan(v->frequency));
	v = pm_readings_get(r, 1);
	assert_int_equal(v->id, 1);
	assert_int_equal(v->input, 'c');
	assert_int_equal(v->channel, 3);
	v = pm_readings_get(r, 2);
	assert_int_equal(v->id, 2);
	assert_int_equal(v->device_id, 3);
	assert_int_equal(v->input, 'p');
	assert_int_equal(v->channel, 16);
	assert_string_equal(v->name, "Pitch");
	assert_null(pm_readings_get(r, 3));
	assert_null(pm_readings_get(r, SIZE_MAX));

	assert_non_null(pm_readings_error(r, 7));
	assert_non_null(strstr(pm_readings_error(r, 7), "device 7"));
	assert_non_null(strstr(pm_readings_error(r, 7), port0));
	assert_non_null(pm_readings_error(r, 3));
	assert_null(pm_readings_error(r, 99));

	assert_int_equal(pm_readings_format(r, PM_FORMAT_JSON, NULL, &text), 0);
	assert_string_equal(text, "[]");
	free(text);
	text = (char *)(uintptr_t)0x5678;
	assert_int_equal(pm_readings_format(r, PM_FORMAT_INFLUX, "m", &text), 0);
	assert_string_equal(text, "");
	free(text);
	text = (char *)(uintptr_t)0x5678;
	assert_int_equal(pm_readings_format(r, (enum pm_format)42, NULL, &text),
			 -EINVAL);
	assert_ptr_equal(text, (char *)(uintptr_t)0x5678);
	pm_readings_free(r);
	pm_readings_free(NULL);
}

static void read_one_device(void **state)
{
	pm_config *cfg = load_ok(two_devices);
	pm_readings *r = NULL;

	(void)state;
	assert_int_equal(pm_read(cfg, 3, PM_SOURCE_BUS, &r), 0);
	assert_int_equal(pm_readings_count(r), 1);
	assert_int_equal(pm_readings_failed(r), 1);
	assert_int_equal(pm_readings_get(r, 0)->device_id, 3);
	assert_int_equal(pm_readings_get(r, 0)->id, 2);
	/* device 7 was not read: no error for it */
	assert_null(pm_readings_error(r, 7));
	assert_non_null(pm_readings_error(r, 3));
	pm_readings_free(r);
	pm_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strerror_names_every_code),
		cmocka_unit_test(version_is_the_package_version),
		cmocka_unit_test(bad_config_reports_file_and_path),
		cmocka_unit_test(missing_config_is_enoent_errors_untouched),
		cmocka_unit_test(devices_in_file_order),
		cmocka_unit_test(read_rejects_unknown_device_and_source),
		cmocka_unit_test(failed_devices_are_values_with_status),
		cmocka_unit_test(read_one_device),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
