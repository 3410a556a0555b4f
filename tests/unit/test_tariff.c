/* test_tariff.c — the tariff file: prices by minute of the week, windows
 * across midnight, overrides picked by tag, and every golden tariff under
 * tests/data/tariff loading or giving exactly its expected messages. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "config/tariff.h"
#include "util/fileio.h"

#include "golden.h"

#define DATA_DIR PM_SOURCE_DIR "/tests/data/tariff"

enum { SUN, MON, TUE, WED, THU, FRI, SAT };

static char tmp[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmp, "/tmp/pm-test-tariff-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/tariff.json", tmp);
	(void)unlink(path);
	return rmdir(tmp);
}

/* Loads 'json' written to tmp/tariff.json: r is what pm_tariff_load gave. */
static struct pm_tariff *load_text(const char *json, int *r, char **errors)
{
	struct pm_tariff *t = NULL;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/tariff.json", tmp);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(json, f) >= 0);
	assert_int_equal(fclose(f), 0);
	*errors = NULL;
	*r = pm_tariff_load(&t, path, errors);
	return t;
}

static struct pm_tariff *load_ok(const char *json)
{
	struct pm_tariff *t;
	char *errors;
	int r;

	t = load_text(json, &r, &errors);
	if (r)
		print_error("unexpected failure %d:\n%s", r, errors ? errors : "");
	free(errors);
	assert_int_equal(r, 0);
	assert_non_null(t);
	return t;
}

/* The price at day hh:mm, as float the table holds it. */
static double price_at(const struct pm_tariff_rates *r, int wday, int hh, int mm)
{
	return pm_tariff_price(r, wday, hh * 60 + mm);
}

#define assert_price(r, wday, hh, mm, want) \
	assert_float_equal(price_at((r), (wday), (hh), (mm)), (want), 1e-6)

/* ---- the header's example ------------------------------------------------ */

static void test_example(void **state)
{
	const struct pm_tariff_rates *r;
	struct pm_tariff *t = NULL;
	char *errors = (char *)0x1;

	(void)state;
	assert_int_equal(pm_tariff_load(&t, DATA_DIR "/good-example.json", &errors), 0);
	assert_ptr_equal(errors, (char *)0x1);	/* untouched */
	assert_string_equal(t->path, DATA_DIR "/good-example.json");
	assert_string_equal(t->currency, "EUR");
	assert_float_equal(t->vat, 21, 0);
	r = &t->rates;
	assert_float_equal(r->standing_charge, 0.30, 1e-12);
	assert_price(r, MON, 6, 59, 0.12);
	assert_price(r, MON, 7, 0, 0.25);
	assert_price(r, WED, 12, 0, 0.25);
	assert_price(r, FRI, 21, 59, 0.25);
	assert_price(r, FRI, 22, 0, 0.12);
	assert_price(r, SAT, 10, 0, 0.12);
	assert_price(r, SUN, 12, 0, 0.12);
	/* the table itself: Monday 00:00 first, Sunday 23:59 last */
	assert_float_equal(r->price[7 * 60], 0.25, 1e-6);
	assert_float_equal(r->price[7 * 60 - 1], 0.12, 1e-6);
	assert_float_equal(r->price[4 * 1440 + 22 * 60 - 1], 0.25, 1e-6);
	assert_float_equal(r->price[5 * 1440 + 7 * 60], 0.12, 1e-6);

	assert_int_equal(t->n_overrides, 1);
	assert_string_equal(t->overrides[0].key, "customer");
	assert_string_equal(t->overrides[0].value, "ACME");
	r = &t->overrides[0].rates;
	assert_float_equal(r->standing_charge, 0.30, 1e-12);	/* the tariff's */
	assert_price(r, MON, 7, 0, 0.20);
	assert_price(r, SUN, 23, 59, 0.20);
	pm_tariff_free(t);
}

/* Defaults: no currency, no VAT, no standing charge. */
static void test_defaults(void **state)
{
	struct pm_tariff *t = load_ok("{\"rates\": [{\"price\": 0.3}]}");

	(void)state;
	assert_string_equal(t->currency, "");
	assert_float_equal(t->vat, 0, 0);
	assert_float_equal(t->rates.standing_charge, 0, 0);
	assert_int_equal(t->n_overrides, 0);
	for (int m = 0; m < PM_TARIFF_WEEK_MINUTES; m++)
		assert_float_equal(t->rates.price[m], 0.3, 1e-6);
	pm_tariff_free(t);
}

/* ---- windows ----------------------------------------------------------- */

/* "fri" 22:00-06:00 is Friday night into Saturday morning, not Friday's
 * early hours. */
static void test_window_across_midnight(void **state)
{
	struct pm_tariff *t = load_ok(
		"{\"rates\": [{\"price\": 0.10, \"days\": \"fri\", "
		"\"from\": \"22:00\", \"to\": \"06:00\"}, {\"price\": 0.30}]}");
	const struct pm_tariff_rates *r = &t->rates;

	(void)state;
	assert_price(r, FRI, 21, 59, 0.30);
	assert_price(r, FRI, 22, 0, 0.10);
	assert_price(r, FRI, 23, 59, 0.10);
	assert_price(r, SAT, 0, 0, 0.10);
	assert_price(r, SAT, 5, 59, 0.10);
	assert_price(r, SAT, 6, 0, 0.30);
	assert_price(r, FRI, 5, 0, 0.30);
	assert_price(r, THU, 23, 0, 0.30);
	pm_tariff_free(t);
}

/* Sunday night runs into Monday morning: the end of the table wraps to its
 * start. */
static void test_window_across_week(void **state)
{
	struct pm_tariff *t = load_ok(
		"{\"rates\": [{\"price\": 0.10, \"days\": \"SUN\", "
		"\"from\": \"23:00\", \"to\": \"01:00\"}, {\"price\": 0.30}]}");
	const struct pm_tariff_rates *r = &t->rates;

	(void)state;
	assert_price(r, SUN, 22, 59, 0.30);
	assert_price(r, SUN, 23, 0, 0.10);
	assert_price(r, MON, 0, 59, 0.10);
	assert_price(r, MON, 1, 0, 0.30);
	assert_price(r, SUN, 0, 30, 0.30);
	pm_tariff_free(t);
}

/* "from" equal to "to" is a whole day from that time. */
static void test_from_equals_to(void **state)
{
	struct pm_tariff *t = load_ok(
		"{\"rates\": [{\"price\": 0.10, \"days\": \"sat\", "
		"\"from\": \"07:00\", \"to\": \"07:00\"}, {\"price\": 0.30}]}");
	const struct pm_tariff_rates *r = &t->rates;

	(void)state;
	assert_price(r, SAT, 6, 59, 0.30);
	assert_price(r, SAT, 7, 0, 0.10);
	assert_price(r, SUN, 6, 59, 0.10);
	assert_price(r, SUN, 7, 0, 0.30);
	pm_tariff_free(t);
}

/* Windows alone may cover the week: ranges that wrap ("fri-mon"), day lists
 * with spaces and capitals, a "to" of 24:00, a "from" alone. */
static void test_windows_cover_week(void **state)
{
	struct pm_tariff *t = load_ok(
		"{\"rates\": ["
		"{\"price\": 0.1, \"days\": \"Fri-Mon\", \"to\": \"12:00\"},"
		"{\"price\": 0.2, \"days\": \"fri-mon\", \"from\": \"12:00\", \"to\": \"24:00\"},"
		"{\"price\": 0.3, \"days\": \"tue , wed,thu\", \"from\": \"00:00\"}]}");
	const struct pm_tariff_rates *r = &t->rates;

	(void)state;
	assert_price(r, FRI, 11, 59, 0.1);
	assert_price(r, SAT, 12, 0, 0.2);
	assert_price(r, SUN, 23, 59, 0.2);
	assert_price(r, MON, 0, 0, 0.1);
	assert_price(r, MON, 23, 59, 0.2);
	assert_price(r, TUE, 0, 0, 0.3);
	assert_price(r, THU, 23, 59, 0.3);
	pm_tariff_free(t);
}

static void test_price_out_of_range(void **state)
{
	struct pm_tariff *t = load_ok("{\"rates\": [{\"price\": 0.3}]}");

	(void)state;
	assert_true(isnan(pm_tariff_price(&t->rates, 7, 0)));
	assert_true(isnan(pm_tariff_price(&t->rates, -1, 0)));
	assert_true(isnan(pm_tariff_price(&t->rates, MON, 1440)));
	assert_true(isnan(pm_tariff_price(&t->rates, MON, -1)));
	assert_float_equal(pm_tariff_price(&t->rates, SAT, 1439), 0.3, 1e-6);
	pm_tariff_free(t);
}

/* ---- overrides ---------------------------------------------------------- */

static void test_overrides_by_tag(void **state)
{
	struct pm_tariff *t = load_ok(
		"{\"standing_charge\": 0.5, \"rates\": [{\"price\": 0.30}],"
		" \"overrides\": {"
		"  \"customer=ACME\": {\"rates\": [{\"price\": 0.20}]},"
		"  \"pitch=12\": {\"standing_charge\": 0.8, \"rates\": [{\"price\": 0.25}]},"
		"  \"customer=Globex\": {\"standing_charge\": 0,"
		"    \"rates\": [{\"price\": 0.15, \"days\": \"sat,sun\"}, {\"price\": 0.35}]}}}");
	const char *keys[] = { "pitch", "customer", "site" };
	const char *acme[] = { "12", "ACME", "north" };
	const char *globex[] = { "7", "Globex", "north" };
	const char *pitch12[] = { "12", "Initech", "north" };
	const char *none[] = { "7", "Initech", "ACME" };
	const struct pm_tariff_rates *r;

	(void)state;
	assert_int_equal(t->n_overrides, 3);
	assert_string_equal(t->overrides[1].key, "pitch");
	assert_string_equal(t->overrides[1].value, "12");

	/* both customer=ACME and pitch=12 match: the first in the file wins */
	r = pm_tariff_rates_for(t, 3, keys, acme);
	assert_ptr_equal(r, &t->overrides[0].rates);
	assert_price(r, MON, 12, 0, 0.20);
	assert_float_equal(r->standing_charge, 0.5, 0);

	r = pm_tariff_rates_for(t, 3, keys, pitch12);
	assert_ptr_equal(r, &t->overrides[1].rates);
	assert_float_equal(r->standing_charge, 0.8, 0);

	r = pm_tariff_rates_for(t, 3, keys, globex);
	assert_ptr_equal(r, &t->overrides[2].rates);
	assert_float_equal(r->standing_charge, 0, 0);
	assert_price(r, SAT, 12, 0, 0.15);
	assert_price(r, FRI, 12, 0, 0.35);

	/* a value under another key is no match */
	r = pm_tariff_rates_for(t, 3, keys, none);
	assert_ptr_equal(r, &t->rates);
	assert_price(r, MON, 12, 0, 0.30);
	assert_float_equal(r->standing_charge, 0.5, 0);

	assert_ptr_equal(pm_tariff_rates_for(t, 0, NULL, NULL), &t->rates);
	pm_tariff_free(t);
}

/* ---- files that cannot be read ----------------------------------------- */

static void test_unreadable(void **state)
{
	struct pm_tariff *t = (struct pm_tariff *)0x1;
	char *errors = NULL, *big;
	size_t n = 1024 * 1024 + 1;
	int r;

	(void)state;
	assert_int_equal(pm_tariff_load(&t, "/nonexistent/tariff.json", &errors),
			 -ENOENT);
	assert_ptr_equal(t, (struct pm_tariff *)0x1);	/* untouched */
	assert_string_equal(errors, "/nonexistent/tariff.json: cannot read: No such file or directory\n");
	free(errors);
	errors = NULL;
	assert_int_equal(pm_tariff_load(&t, tmp, &errors), -EISDIR);
	assert_ptr_equal(t, (struct pm_tariff *)0x1);
	assert_non_null(strstr(errors, ": cannot read: "));
	free(errors);

	/* larger than the cap: a config error, not an attempt to parse it */
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	t = load_text(big, &r, &errors);
	free(big);
	assert_int_equal(r, -PM_ECONFIG);
	assert_null(t);
	assert_non_null(strstr(errors, "tariff.json: larger than 1 MiB, not a tariff\n"));
	free(errors);
}

/* ---- the goldens ---------------------------------------------------------- */

static int load_tariff(const char *path, char **errors)
{
	struct pm_tariff *t = NULL;
	int r = pm_tariff_load(&t, path, errors);

	if (r == 0)
		pm_tariff_free(t);
	return r;
}

static void test_golden_bad(void **state)
{
	static char names[200][GOLDEN_NAME_MAX];
	size_t n = golden_list(DATA_DIR, "bad-", false, names, 200);
	unsigned failed = 0;

	(void)state;
	assert_true(n >= 20);
	for (size_t i = 0; i < n; i++) {
		char json[512], expected_path[512];

		snprintf(json, sizeof(json), "%s/%.*s", DATA_DIR,
			 GOLDEN_NAME_MAX, names[i]);
		snprintf(expected_path, sizeof(expected_path), "%s/%.*s.expected",
			 DATA_DIR, (int)strlen(names[i]) - 5, names[i]);
		if (!golden_bad_case(load_tariff, names[i], json, expected_path,
				     DATA_DIR))
			failed++;
	}
	assert_int_equal(failed, 0);
}

static void test_golden_good(void **state)
{
	static char names[64][GOLDEN_NAME_MAX];
	size_t n = golden_list(DATA_DIR, "good-", false, names, 64);
	unsigned failed = 0;

	(void)state;
	assert_true(n >= 5);
	for (size_t i = 0; i < n; i++) {
		struct pm_tariff *t = NULL;
		char json[512], *errors = NULL;
		int r;

		snprintf(json, sizeof(json), "%s/%.*s", DATA_DIR,
			 GOLDEN_NAME_MAX, names[i]);
		r = pm_tariff_load(&t, json, &errors);
		if (r) {
			print_error("%s: %d\n%s", names[i], r, errors ? errors : "");
			failed++;
		}
		pm_tariff_free(t);
		free(errors);
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_example),
		T(test_defaults),
		T(test_window_across_midnight),
		T(test_window_across_week),
		T(test_from_equals_to),
		T(test_windows_cover_week),
		T(test_price_out_of_range),
		T(test_overrides_by_tag),
		T(test_unreadable),
		T(test_golden_bad),
		T(test_golden_good),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
