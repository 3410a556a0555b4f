/* cmd_energy.c — `powermeter energy`: the energy counters powermeterd keeps,
 * read from its state file (never from the bus), with the circuits that are
 * no longer in the config ("orphans", kept for a later re-add). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <powermeter/powermeter.h>

#include "cli.h"
#include "config/config.h"
#include "meter/energy.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/log.h"

#define OUT_MAX (64u * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter energy [-c CONFIG] [--format table|json]\n"
		"Lists the energy counters powermeterd keeps in its state\n"
		"directory (STATE/" PM_ENERGY_FILE "), one per circuit, with those of\n"
		"circuits no longer in the config. Energy is an estimate: the\n"
		"modules measure current only.\n"
		"  -c, --config PATH   config file (default %s)\n"
		"  -f, --format FMT    table (default) or json\n",
		PM_DEFAULT_CONFIG);
}

static const struct pm_input *find_input(const struct pm_config *cfg,
					 int device_id, unsigned channel)
{
	const struct pm_device *dev = pm_config_device(cfg, device_id);

	for (size_t k = 0; dev && k < dev->n_inputs; k++)
		if (dev->inputs[k].channel == channel)
			return &dev->inputs[k];
	return NULL;
}

static void local_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !localtime_r(&t, &tm) ||
	    !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, size, "-");
}

static int print_table(struct pm_buf *b, const struct pm_config *cfg,
		       const struct pm_energy_counter *c, size_t n)
{
	int r = pm_buf_printf(b, "%6s  %-5s  %-24s  %12s  %10s  %10s  %s\n",
			      "DEVICE", "INPUT", "NAME", "KWH*", "AH",
			      "UNMETERED", "LAST SAMPLE");

	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct pm_input *in = find_input(cfg, c[i].device_id,
						       c[i].channel);
		char when[32], gap[32];

		local_time(c[i].last_ms, when, sizeof(when));
		snprintf(gap, sizeof(gap), "%.0f s", c[i].unmetered_s);
		r = pm_buf_printf(b, "%6d  %-5c  %-24s  %12.3f  %10.3f  %10s  %s\n",
				  c[i].device_id, pm_channel_letter(c[i].channel),
				  in ? in->name : "(not in the config)",
				  c[i].energy_wh / 1000, c[i].charge_ah, gap, when);
	}
	if (r == 0)
		r = pm_buf_adds(b, "* estimates: current x the configured voltage "
				"x power factor, integrated by powermeterd\n");
	return r;
}

static int json_number(struct pm_buf *b, const char *key, double v)
{
	int r = pm_buf_printf(b, ", \"%s\": ", key);

	return r ? r : pm_json_number(b, v);
}

static int print_json(struct pm_buf *b, const struct pm_config *cfg,
		      const struct pm_energy_counter *c, size_t n,
		      int64_t written_ms)
{
	int r = pm_buf_printf(b, "{\"written_ms\": %lld, \"estimate\": true, "
			      "\"counters\": [", (long long)written_ms);

	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct pm_input *in = find_input(cfg, c[i].device_id,
						       c[i].channel);

		r = pm_buf_printf(b, "%s\n  {\"device_id\": %d, \"input\": \"%c\", "
				  "\"name\": ", i ? "," : "", c[i].device_id,
				  pm_channel_letter(c[i].channel));
		if (r == 0)
			r = in ? pm_json_string(b, in->name) : pm_buf_adds(b, "null");
		if (r == 0)
			r = pm_buf_printf(b, ", \"configured\": %s",
					  in ? "true" : "false");
		if (r == 0)
			r = json_number(b, "energy_wh", c[i].energy_wh);
		if (r == 0)
			r = json_number(b, "charge_ah", c[i].charge_ah);
		if (r == 0)
			r = json_number(b, "unmetered_s", c[i].unmetered_s);
		if (r == 0)
			r = pm_buf_printf(b, ", \"last_ms\": %lld}",
					  (long long)c[i].last_ms);
	}
	if (r == 0)
		r = pm_buf_adds(b, n ? "\n]}\n" : "]}\n");
	return r;
}

int cmd_energy(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *path = NULL, *format = "table";
	struct pm_energy_counter *c = NULL;
	struct pm_config *cfg = NULL;
	char *file = NULL;
	struct pm_buf b;
	int64_t written = 0;
	size_t n = 0;
	int opt, r, status;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:f:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || (strcmp(format, "table") && strcmp(format, "json"))) {
		usage(stderr);
		return 2;
	}
	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	if (asprintf(&file, "%s/%s", cfg->state_dir, PM_ENERGY_FILE) < 0) {
		pm_config_free(cfg);
		return 1;
	}
	r = pm_energy_read_file(file, &c, &n, &written);
	if (r == -ENOENT) {
		log_err("no energy counters in %s yet: powermeterd saves them "
			"every %.0f s while it runs with \"energy\" on",
			cfg->state_dir, cfg->energy.persist_interval);
		status = 1;
		goto out;
	}
	if (r < 0) {
		log_err("%s: %s%s", file, pm_strerror(r), r == -PM_EFRAME
			? " (damaged: powermeterd puts it aside and continues "
			  "from " PM_ENERGY_PREVIOUS " at its next start)" : "");
		status = 1;
		goto out;
	}
	pm_buf_init(&b, OUT_MAX);
	r = strcmp(format, "json") ? print_table(&b, cfg, c, n)
				   : print_json(&b, cfg, c, n, written);
	status = r < 0 ? 1 : cli_print_buf(&b);
	pm_buf_free(&b);
out:
	free(c);
	free(file);
	pm_config_free(cfg);
	return status;
}
