/* read_all.c — how a program uses libpowermeter: load a config, read every
 * module (or one), walk the readings and say why a device failed.
 * Uses only <powermeter/powermeter.h>. Build it on its own with
 *   cc -o read_all read_all.c $(pkg-config --cflags --libs powermeter)
 *
 * usage: read_all [-c CONFIG] [-d DEVICE_ID] [-s auto|bus|snapshot]
 *                 [-f values|json|table|influx]
 * Exit status: 0 all read, 1 a device failed, 2 usage, 78 bad config.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

static int usage(void)
{
	fprintf(stderr, "usage: read_all [-c CONFIG] [-d DEVICE_ID] "
		"[-s auto|bus|snapshot] [-f values|json|table|influx]\n");
	return 2;
}

/* One tab-separated line per input: what struct pm_value holds. */
static void print_values(const pm_readings *r)
{
	size_t n = pm_readings_count(r);

	printf("id\tdevice\tport\taddress\tinput\tchannel\tname\tamps\thz\ttime_ms\tstatus\n");
	for (size_t i = 0; i < n; i++) {
		const struct pm_value *v = pm_readings_get(r, i);

		printf("%d\t%d\t%s\t%d\t%c\t%d\t%s\t", v->id, v->device_id,
		       v->port, v->address, v->input, v->channel, v->name);
		if (v->status < 0) {
			printf("-\t-\t-\t%s\n", pm_strerror(v->status));
			continue;
		}
		printf("%.2f\t", v->current);
		if (isnan(v->frequency))
			printf("-\t");	/* the device's "frequency" is off */
		else
			printf("%.1f\t", v->frequency);
		printf("%lld\tok\n", (long long)v->time_ms);
	}
}

/* -f: the library's formats, or -1 for our own walk over the values. */
static const struct {
	const char *name;
	int format;
} formats[] = {
	{ "values", -1 },
	{ "json", PM_FORMAT_JSON },
	{ "table", PM_FORMAT_TABLE },
	{ "influx", PM_FORMAT_INFLUX },
};

static int format_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(formats[i].name, name))
			return formats[i].format;
	return -2;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	enum pm_source source = PM_SOURCE_AUTO;
	int device_id = -1, format = -1, opt, err, status = 0;
	pm_config *cfg = NULL;
	pm_readings *r = NULL;
	char *errors = NULL, *text = NULL;

	while ((opt = getopt(argc, argv, "c:d:s:f:")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			device_id = atoi(optarg);
			break;
		case 's':
			if (!strcmp(optarg, "auto"))
				source = PM_SOURCE_AUTO;
			else if (!strcmp(optarg, "bus"))
				source = PM_SOURCE_BUS;
			else if (!strcmp(optarg, "snapshot"))
				source = PM_SOURCE_SNAPSHOT;
			else
				return usage();
			break;
		case 'f':
			format = format_by_name(optarg);
			if (format == -2)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (optind != argc)
		return usage();

	/* A bad config comes with every problem, one per line. */
	err = pm_config_load(&cfg, path, &errors);
	if (err == -PM_ECONFIG) {
		fputs(errors, stderr);
		free(errors);
		return 78;
	}
	if (err < 0) {
		fprintf(stderr, "read_all: %s: %s\n",
			path ? path : "default config", pm_strerror(err));
		return 78;
	}

	/* 0 means every device was tried; failures are per device. */
	err = pm_read(cfg, device_id, source, &r);
	if (err < 0) {
		fprintf(stderr, "read_all: %s\n", pm_strerror(err));
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < pm_config_device_count(cfg); i++) {
		const char *why = pm_readings_error(r, pm_config_device_id(cfg, i));

		if (why)
			fprintf(stderr, "read_all: %s\n", why);
	}
	if (pm_readings_failed(r) > 0)
		status = 1;

	if (format == -1) {
		print_values(r);
	} else if ((err = pm_readings_format(r, (enum pm_format)format, NULL,
					     &text)) < 0) {
		fprintf(stderr, "read_all: %s\n", pm_strerror(err));
		status = 1;
	} else {
		/* JSON has no trailing newline, as json.dumps(). */
		printf("%s%s", text, format == PM_FORMAT_JSON ? "\n" : "");
		free(text);
	}
out:
	pm_readings_free(r);
	pm_config_free(cfg);
	return status;
}
