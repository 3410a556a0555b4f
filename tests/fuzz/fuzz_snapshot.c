/* fuzz_snapshot.c — the snapshot reader (src/meter/snapshot.c): the input
 * is the snapshot file of a fixed config (two modules on one port, one on
 * another, two feeds of a 2N pair, alarms on), read as `powermeter json`
 * and pm_read() read it (pm_snapshot_read, at a fixed "now") and as
 * `powermeter status` does (pm_snapshot_info_load). What the reader lets
 * through is then printed the ways the CLI prints it, and the JSON ones
 * must be JSON: a value the file smuggled in (Infinity, NaN) that reaches
 * the output aborts, as Zabbix would choke on it.
 *
 * PM_FUZZ_WRITE_SEEDS=DIR: instead of fuzzing, writes snapshots of this
 * config as the daemon's writer makes them into DIR (the seed corpus,
 * tests/fuzz/corpus/snapshot/), then exits. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "config/config.h"
#include "fuzz.h"
#include "meter/alarms.h"
#include "meter/feeds.h"
#include "meter/readings.h"
#include "meter/snapshot.h"
#include "output/format.h"
#include "util/buf.h"

/* "now" for every read; the seeds are written a moment before it. */
#define NOW_MS 1700000000000LL

static struct pm_config *cfg;

static const char config_json[] =
	"{\"interval\": 1,\n"
	" \"state_directory\": \"%s/state\", \"runtime_directory\": \"%s/run\",\n"
	" \"snapshot\": \"%s/values.json\",\n"
	" \"feeds\": [{\"name\": \"UPS A\", \"capacity\": 32, \"redundant_with\": \"UPS B\"},\n"
	"            {\"name\": \"UPS B\", \"capacity\": 32, \"redundant_with\": \"UPS A\"}],\n"
	" \"devices\": [\n"
	"  {\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"address\": 1, \"frequency\": true, \"inputs\": [\n"
	"    {\"input\": \"a\", \"ratio\": 0.01, \"name\": \"rack 1 A\", \"feed\": \"UPS A\", \"phase\": \"L1\", \"breaker\": 16},\n"
	"    {\"input\": \"b\", \"ratio\": 0.01, \"name\": \"rack 1 B\", \"feed\": \"UPS B\", \"phase\": \"L1\", \"breaker\": 16}]},\n"
	"  {\"id\": 2, \"port\": \"/dev/ttyUSB0\", \"address\": 2, \"inputs\": [\n"
	"    {\"input\": \"c\", \"ratio\": 0.1, \"name\": \"pump \\\"north\\\"\"}]},\n"
	"  {\"id\": 7, \"port\": \"/dev/ttyUSB1\", \"address\": 7, \"inputs\": [\n"
	"    {\"input\": \"p\", \"ratio\": 0.02, \"name\": \"lights\"}]}]}\n";

static void load_config(void)
{
	char text[sizeof(config_json) + 3 * 4096];
	const char *d = fuzz_dir();
	char *errors = NULL;
	int n;

	n = snprintf(text, sizeof(text), config_json, d, d, d);
	if (n < 0 || (size_t)n >= sizeof(text))
		abort();
	fuzz_write(fuzz_path("powermeter.json"), text, (size_t)n);
	if (pm_config_load_flags(&cfg, fuzz_path("powermeter.json"), 0,
				 &errors) < 0) {
		fprintf(stderr, "fuzz_snapshot: its config: %s\n", errors);
		abort();
	}
}

/* ---- the seeds ----------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, int variant)
{
	const int64_t at = NOW_MS - 400;
	struct pm_sample s[3] = { 0 };
	const struct pm_sample *latest[3];
	struct pm_feed_fig figs[2];
	struct pm_alarm a = { 0 }, b = { 0 };
	const struct pm_alarm *active[2] = { &a, &b };
	struct pm_snapshot *snap = pm_snapshot_new(cfg);
	struct pm_buf out;
	char path[4096];

	if (!snap)
		abort();
	for (size_t i = 0; i < cfg->n_devices; i++) {
		struct pm_device_state st = {
			.up = true, .last_success_ms = at - 10 * (int64_t)i,
			.last_attempt_ms = at - 10 * (int64_t)i, .reads = 42,
			.requests = 44, .retries = 2, .crc_errors = 1,
			.timeouts = 1,
		};

		s[i].device = i;
		s[i].time_ms = st.last_success_ms;
		for (unsigned c = 0; c < PM_CHANNELS; c++) {
			s[i].current[c] = (uint16_t)(100 * c + 7 * i);
			s[i].frequency[c] = 500;
		}
		s[i].has_frequency = cfg->devices[i].frequency;
		s[i].has_energy = variant != 2;
		for (unsigned c = 0; c < PM_CHANNELS; c++) {
			s[i].energy_wh[c] = c == 3 ? NAN : 1234.5 * c;
			s[i].charge_ah[c] = c == 3 ? NAN : 5.25 * c;
		}
		if (variant == 1 && i == 2) {
			st.up = false;
			st.consecutive_failures = 5;
			st.last_error = -ETIMEDOUT;
			st.failures = 5;
			st.last_attempt_ms = at;
		}
		if (variant == 3 && i == 1)
			st.last_success_ms = s[i].time_ms = at - 60000;
		pm_snapshot_update(snap, i, &s[i], &st);
		latest[i] = st.up ? &s[i] : NULL;
	}
	if (variant != 2) {
		pm_feeds_compute(cfg, latest, figs);
		a.kind = PM_ALARM_REDUNDANCY;
		a.subject = (char *)"UPS A/UPS B L1";
		a.level = PM_SEVERITY_WARNING;
		a.changed_ms = at - 5000;
		a.value = 82.5;
		a.threshold = 80;
		b.kind = PM_ALARM_MODULE_OFFLINE;
		b.subject = (char *)"device 7";
		b.level = PM_SEVERITY_CRITICAL;
		b.changed_ms = 0;
		b.value = NAN;
		b.threshold = 60;
		if (pm_snapshot_watch(snap, at, figs, active,
				      variant == 1 ? 2 : 1) < 0)
			abort();
	}
	pm_buf_init(&out, PM_SNAPSHOT_MAX);
	if (pm_snapshot_format(snap, at, 4242, &out) < 0)
		abort();
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	fuzz_write(path, out.data, out.len);
	pm_buf_free(&out);
	pm_snapshot_free(snap);
}

static void write_seeds(const char *dir)
{
	write_seed(dir, "all-up.json", 0);
	write_seed(dir, "one-down-two-alarms.json", 1);
	write_seed(dir, "no-watch-no-energy.json", 2);
	write_seed(dir, "one-stale.json", 3);
}

/* ---- fuzzing ------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("PM_FUZZ_WRITE_SEEDS");

	(void)argc;
	(void)argv;
	fuzz_clean_environment();
	load_config();
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

/* A printed form that claims to be JSON must be JSON. */
static void check_json(const struct pm_buf *b, const char *what)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, b->data ? b->data : "", (int)b->len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != b->len) {
		fprintf(stderr, "fuzz_snapshot: %s printed what is not JSON:\n%s\n",
			what, b->data ? b->data : "");
		abort();
	}
	json_object_put(o);
	json_tokener_free(tok);
}

static void print_readings(const struct pm_readings *r)
{
	struct pm_buf b;

	pm_buf_init(&b, 1u << 20);
	if (pm_format_json(&b, r) == 0)
		check_json(&b, "pm_format_json");
	pm_buf_reset(&b);
	if (pm_format_circuits(&b, r) == 0)
		check_json(&b, "pm_format_circuits");
	pm_buf_reset(&b);
	(void)pm_format_table(&b, r);
	pm_buf_reset(&b);
	(void)pm_format_influx(&b, r, "powermeter");
	pm_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_snapshot_info info;
	struct pm_readings *r;

	fuzz_write(cfg->snapshot, data, size);
	r = pm_readings_new(cfg);
	if (!r)
		abort();
	if (pm_snapshot_read(cfg, r, NOW_MS) == 0)
		print_readings(r);
	pm_readings_free(r);
	r = pm_readings_new_device(cfg, 7);
	if (r && pm_snapshot_read(cfg, r, NOW_MS + 2500) == 0)
		print_readings(r);
	pm_readings_free(r);

	if (pm_snapshot_info_load(cfg, &info) == 0) {
		for (size_t i = 0; i < info.n_alarms; i++)
			(void)pm_snapshot_alarm_find(&info, info.alarms[i].kind,
						     info.alarms[i].subject);
		(void)pm_snapshot_alarm_find(&info, PM_ALARM_STALE, "device 7");
		pm_snapshot_info_free(&info);
	}
	return 0;
}
