/* cmd_read.c — `powermeter read`: reads the modules over the bus and prints
 * the seed's JSON, a table or line protocol. A device that fails is left out
 * with one warning on stderr; the others are still printed. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "cli.h"
#include "config/config.h"
#include "util/log.h"

static void read_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter read [-c CONFIG] [-f json|table|influx] [-d ID]\n"
		"  -c, --config PATH   config file (default %s)\n"
		"  -f, --format FMT    json (default: the seed's output with the\n"
		"                      circuit's phase and estimated power, and\n"
		"                      energy while powermeterd runs), seed (the\n"
		"                      seed's output exactly), table, or influx\n"
		"                      (InfluxDB line protocol)\n"
		"  -d, --device ID     read only the device with this id\n",
		PM_DEFAULT_CONFIG);
}

static int parse_format(const char *s, enum pm_format *format)
{
	if (!strcmp(s, "json"))
		*format = PM_FORMAT_CIRCUITS;
	else if (!strcmp(s, "seed"))
		*format = PM_FORMAT_JSON;
	else if (!strcmp(s, "table"))
		*format = PM_FORMAT_TABLE;
	else if (!strcmp(s, "influx"))
		*format = PM_FORMAT_INFLUX;
	else
		return -EINVAL;
	return 0;
}

int cmd_read(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "device", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum pm_format format = PM_FORMAT_CIRCUITS;
	const char *path = NULL, *measurement = NULL;
	struct pm_config *cfg = NULL;
	pm_readings *r = NULL;
	int device_id = -1, c, err, status;
	char *text = NULL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:f:d:h", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			if (parse_format(optarg, &format) < 0) {
				log_err("unknown format '%s' (json, seed, table, influx)",
					optarg);
				return 2;
			}
			break;
		case 'd':
			if (cli_device_option(optarg, &device_id) < 0)
				return 2;
			break;
		case 'h':
			read_usage(stdout);
			return 0;
		default:
			read_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		read_usage(stderr);
		return 2;
	}

	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	if (cfg->influx && cfg->influx->measurement)
		measurement = cfg->influx->measurement;

	err = pm_read(cfg, device_id, PM_SOURCE_BUS, &r);
	if (err == -ENOENT) {
		log_err("%s: no device with id %d", cfg->path, device_id);
		status = 2;
		goto out;
	}
	if (err < 0) {
		log_err("reading failed: %s", pm_strerror(err));
		status = 1;
		goto out;
	}
	cli_warn_failed_devices(cfg, r);
	err = pm_readings_format(r, format, measurement, &text);
	if (err < 0) {
		log_err("formatting failed: %s", pm_strerror(err));
		status = 1;
		goto out;
	}
	fputs(text, stdout);
	if (format == PM_FORMAT_JSON || format == PM_FORMAT_CIRCUITS)
		fputc('\n', stdout);	/* the seed print()ed its json.dumps() */
	if (fflush(stdout) != 0) {
		log_err("writing the output: %s", strerror(errno));
		status = 1;
		goto out;
	}
	status = pm_readings_failed(r) ? 1 : 0;
out:
	free(text);
	pm_readings_free(r);
	pm_config_free(cfg);
	return status;
}
