/* cmd_json.c — `powermeter json`: the seed's JSON array for the Zabbix agent,
 * from powermeterd's snapshot while it is fresh. Without a daemon it reads
 * the bus itself; a port the daemon holds is never opened, so a stale
 * snapshot gives an error, never old values as if current. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <powermeter/powermeter.h>

#include "cli.h"
#include "bus/bus.h"
#include "config/config.h"
#include "meter/readings.h"
#include "output/format.h"
#include "util/log.h"

/* The seed's array is small: 64 MiB is far beyond any configuration. */
#define JSON_TEXT_MAX (64u * 1024 * 1024)

static void json_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter json [-c CONFIG] [CONFIG]\n"
		"  -c, --config PATH   config file (default %s)\n"
		"Prints the seed's JSON array from powermeterd's snapshot, or\n"
		"from the bus when no daemon runs.\n", PM_DEFAULT_CONFIG);
}

/* Who else holds the port of 'dev' (0: nobody, as far as /proc/locks
 * tells). Looked up without opening the tty. */
static pid_t port_holder(const struct pm_device *dev)
{
	pid_t pid = pm_bus_holder(dev->port);

	return pid == getpid() ? 0 : pid;
}

/* Copies device 'index''s part of 'from' (a bus read of that device alone)
 * into 'to'. */
static int merge_device(struct pm_readings *to, const struct pm_config *cfg,
			size_t index, const pm_readings *from)
{
	const struct pm_device *dev = &cfg->devices[index];
	const char *why = pm_readings_error(from, dev->id);
	int err = 0;

	for (size_t i = 0; i < pm_readings_count(from) && !err; i++) {
		const struct pm_value *v = pm_readings_get(from, i);

		if (v->device_id != dev->id)
			continue;
		if (v->status < 0)
			return pm_readings_add_failure(to, index, v->status, why);
		err = pm_readings_set_input(to, v->id, v->current,
					    v->frequency, v->energy, v->charge,
					    v->time_ms);
	}
	return err;
}

/* The snapshot cannot be used (why: 'snapshot_err'): reads the devices
 * whose port nobody holds, and fails the others without touching them. */
static int read_around_daemon(const struct pm_config *cfg, int snapshot_err,
			      struct pm_readings **out)
{
	struct pm_readings *r = pm_readings_new(cfg);
	char text[512];
	int err = 0;

	if (!r)
		return -ENOMEM;
	for (size_t d = 0; d < cfg->n_devices && !err; d++) {
		const struct pm_device *dev = &cfg->devices[d];
		pm_readings *one = NULL;
		pid_t holder = port_holder(dev);

		if (holder > 0) {
			(void)snprintf(text, sizeof(text),
				"device %d on %s address %d: port %s busy (held "
				"by pid %ld) and %s \u2014 no current values to "
				"show", dev->id, dev->port, dev->address,
				dev->port, (long)holder,
				snapshot_err == -PM_ESTALE
				? "its snapshot is older than 3 intervals"
				: "there is no snapshot of this configuration");
			err = pm_readings_add_failure(r, d, -EBUSY, text);
			continue;
		}
		err = pm_read(cfg, dev->id, PM_SOURCE_BUS, &one);
		if (!err)
			err = merge_device(r, cfg, d, one);
		pm_readings_free(one);
	}
	if (err) {
		pm_readings_free(r);
		return err;
	}
	*out = r;
	return 0;
}

/* The readings: the fresh snapshot, else the bus where it is free. */
static int json_read(const struct pm_config *cfg, struct pm_readings **out)
{
	pm_readings *r = NULL;
	bool held = false;
	int err;

	err = pm_read(cfg, -1, PM_SOURCE_SNAPSHOT, &r);
	if (err == 0) {
		*out = r;
		return 0;
	}
	if (err == -ENOMEM)
		return err;
	for (size_t d = 0; d < cfg->n_devices && !held; d++)
		held = port_holder(&cfg->devices[d]) > 0;
	/* Nobody holds a port: the plain bus read, each port once. */
	if (!held)
		return pm_read(cfg, -1, PM_SOURCE_BUS, out);
	return read_around_daemon(cfg, err, out);
}

int cmd_json(int argc, char **argv)
{
	struct pm_config *cfg = NULL;
	struct pm_readings *r = NULL;
	const char *path = NULL;
	struct pm_buf out;
	size_t ok = 0;
	int err, status;

	status = cli_config_options(argc, argv, false, json_usage, &path);
	if (status != CLI_GO_ON)
		return status;
	/* The seed's powermeter_json.py took the config path as argument. */
	if (cli_config_operand(argc, argv, &path) < 0) {
		json_usage(stderr);
		return 2;
	}
	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	pm_buf_init(&out, JSON_TEXT_MAX);
	err = json_read(cfg, &r);
	if (err < 0) {
		log_err("reading failed: %s", pm_strerror(err));
		status = 1;
		goto out;
	}
	cli_warn_failed_devices(cfg, r);
	for (size_t i = 0; i < pm_readings_count(r); i++)
		ok += pm_readings_get(r, i)->status == 0;
	/* Nothing readable: no array at all, so that Zabbix keeps its last
	 * discovery rather than seeing every circuit vanish. */
	if (!ok && pm_readings_count(r)) {
		status = 1;
		goto out;
	}
	err = pm_format_json(&out, r);
	if (!err)
		err = pm_buf_addc(&out, '\n');	/* the seed print()ed it */
	if (err) {
		log_err("formatting failed: %s", pm_strerror(err));
		status = 1;
		goto out;
	}
	status = cli_print_buf(&out);
	if (status)
		goto out;
	status = pm_readings_failed(r) ? 1 : 0;
out:
	pm_buf_free(&out);
	pm_readings_free(r);
	pm_config_free(cfg);
	return status;
}
