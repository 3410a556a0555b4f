/* read.c — pm_read(): the readings of a config, from the daemon's snapshot
 * or from the bus (each bus opened and locked once, its devices read in
 * turn). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "meter/failure.h"
#include "meter/module.h"
#include "meter/readings.h"
#include "meter/snapshot.h"
#include "util/timeutil.h"

#define FAILURE_TEXT_MAX 512

/* ---- reading the bus ---------------------------------------------------- */

static void fail_device(struct pm_readings *r, const struct pm_config *cfg,
			size_t d, int err, const struct pm_bus_fault *fault,
			int snapshot_err)
{
	const struct pm_device *dev = &cfg->devices[d];
	char text[FAILURE_TEXT_MAX];
	int n;

	n = pm_describe_failure(text, sizeof(text), dev, err, fault);
	/* The daemon holds the port and its snapshot is too old to show. */
	if (err == -EBUSY && snapshot_err == -PM_ESTALE && n > 0 &&
	    (size_t)n < sizeof(text))
		snprintf(text + n, sizeof(text) - (size_t)n,
			 "; the daemon holding it has not updated its snapshot "
			 "for 3 intervals \u2014 its data is stale and not shown");
	(void)pm_readings_add_failure(r, d, err, text);
}

/* Reads every device of r that uses the port of cfg->devices[first]. */
static void read_port(const struct pm_config *cfg, struct pm_readings *r,
		      size_t first, bool *done, int snapshot_err)
{
	const struct pm_device *lead = &cfg->devices[first];
	struct pm_bus_fault fault;
	struct pm_bus *bus = NULL;
	int open_err;

	open_err = pm_bus_open_fault(&bus, lead->port, &lead->line, &fault);
	for (size_t d = first; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];
		struct pm_sample s;
		int err;

		/* One bus, one open: a second would fail on our own lock. */
		if (done[d] || !pm_readings_device(r, d) ||
		    !pm_bus_same(dev->port, lead->port))
			continue;
		done[d] = true;
		if (!bus && open_err == 0)	/* reopen after a broken port */
			open_err = pm_bus_open_fault(&bus, lead->port,
						     &dev->line, &fault);
		if (open_err < 0) {
			fail_device(r, cfg, d, open_err, &fault, snapshot_err);
			continue;
		}
		err = pm_module_read(bus, dev, d, dev->retries, &s);
		if (err == 0) {
			(void)pm_readings_add_sample(r, &s);
			continue;
		}
		fault = *pm_bus_last_fault(bus);
		fail_device(r, cfg, d, err, &fault, snapshot_err);
		if (pm_bus_broken(bus)) {
			pm_bus_close(bus);
			bus = NULL;
		}
	}
	pm_bus_close(bus);
}

static int read_bus(const struct pm_config *cfg, struct pm_readings *r,
		    int snapshot_err)
{
	bool *done = calloc(cfg->n_devices ? cfg->n_devices : 1, sizeof(*done));

	if (!done)
		return -ENOMEM;
	for (size_t d = 0; d < cfg->n_devices; d++)
		if (!done[d] && pm_readings_device(r, d))
			read_port(cfg, r, d, done, snapshot_err);
	free(done);
	return 0;
}

int pm_read(const pm_config *cfg, int device_id, enum pm_source source,
	    pm_readings **out)
{
	struct pm_readings *r;
	int snapshot_err = -PM_ENOSNAPSHOT, err;

	if (source != PM_SOURCE_AUTO && source != PM_SOURCE_BUS &&
	    source != PM_SOURCE_SNAPSHOT)
		return -EINVAL;
	if (device_id >= 0 && !pm_config_device(cfg, device_id))
		return -ENOENT;
	r = device_id < 0 ? pm_readings_new(cfg)
			  : pm_readings_new_device(cfg, device_id);
	if (!r)
		return -ENOMEM;
	if (source != PM_SOURCE_BUS) {
		snapshot_err = pm_snapshot_read(cfg, r, pm_now_ms());
		if (snapshot_err == 0) {
			*out = r;
			return 0;
		}
		if (source == PM_SOURCE_SNAPSHOT) {
			pm_readings_free(r);
			return snapshot_err;
		}
	}
	err = read_bus(cfg, r, snapshot_err);
	if (err < 0) {
		pm_readings_free(r);
		return err;
	}
	*out = r;
	return 0;
}
