/* read.c — pm_read(): the readings of a config, from the daemon's snapshot
 * or from the bus (each port opened and locked once, its devices read in
 * turn); and the pm_readings object behind the public API. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <powermeter/powermeter.h>

#include "buf.h"
#include "bus.h"
#include "driver.h"
#include "format.h"
#include "readings.h"
#include "snapshot.h"
#include "timeutil.h"

/* pm_readings_format() never builds a text larger than this. */
#define READINGS_TEXT_MAX (64u * 1024 * 1024)
#define FAILURE_TEXT_MAX 512

static const struct pm_device *device_by_id(const struct pm_config *cfg,
					    int id)
{
	for (size_t d = 0; d < cfg->n_devices; d++)
		if (cfg->devices[d].id == id)
			return &cfg->devices[d];
	return NULL;
}

static struct pm_readings *readings_build(const struct pm_config *cfg,
					  const struct pm_device *only)
{
	struct pm_readings *r = calloc(1, sizeof(*r));
	size_t nd = 0, nv = 0;

	if (!r)
		return NULL;
	for (size_t d = 0; d < cfg->n_devices; d++)
		if (!only || only == &cfg->devices[d]) {
			nd++;
			nv += cfg->devices[d].n_inputs;
		}
	r->devices = calloc(nd ? nd : 1, sizeof(*r->devices));
	r->values = calloc(nv ? nv : 1, sizeof(*r->values));
	r->ratios = calloc(nv ? nv : 1, sizeof(*r->ratios));
	if (!r->devices || !r->values || !r->ratios)
		goto fail;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];
		const struct pm_driver *drv = dev->driver ? dev->driver
							  : pm_driver_find(NULL);
		struct pm_readings_device *rd = &r->devices[r->n_devices];

		if (only && only != dev)
			continue;
		rd->index = d;
		rd->device_id = dev->id;
		rd->address = dev->address;
		rd->status = -ENODATA;
		rd->first_value = r->n_values;
		rd->n_values = dev->n_inputs;
		rd->has_frequency = dev->frequency;
		rd->frequency_unit = drv->frequency.unit;
		rd->port = strdup(dev->port);
		r->n_devices++;
		if (!rd->port)
			goto fail;
		for (size_t i = 0; i < dev->n_inputs; i++) {
			const struct pm_input *in = &dev->inputs[i];
			struct pm_value *v = &r->values[r->n_values];

			v->name = strdup(in->name ? in->name : "");
			if (!v->name)
				goto fail;
			r->n_values++;
			v->id = in->id;
			v->device_id = dev->id;
			v->port = rd->port;
			v->address = dev->address;
			v->input = pm_channel_letter(in->channel);
			v->channel = (int)in->channel + 1;
			v->current = NAN;
			v->frequency = NAN;
			v->status = -ENODATA;
			r->ratios[r->n_values - 1] = in->ratio;
		}
	}
	return r;

fail:
	pm_readings_free(r);
	return NULL;
}

struct pm_readings *pm_readings_new(const struct pm_config *cfg)
{
	return readings_build(cfg, NULL);
}

struct pm_readings *pm_readings_new_device(const struct pm_config *cfg,
					   int device_id)
{
	const struct pm_device *dev = device_by_id(cfg, device_id);

	if (!dev)
		return NULL;
	return readings_build(cfg, dev);
}

void pm_readings_free(struct pm_readings *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_values; i++)
		free((char *)r->values[i].name);
	for (size_t d = 0; d < r->n_devices; d++) {
		free((char *)r->devices[d].port);
		free(r->devices[d].error);
	}
	free(r->values);
	free(r->ratios);
	free(r->devices);
	free(r);
}

struct pm_readings_device *pm_readings_device(struct pm_readings *r,
					      size_t device)
{
	for (size_t d = 0; d < r->n_devices; d++)
		if (r->devices[d].index == device)
			return &r->devices[d];
	return NULL;
}

/* A frequency count in Hz, as the driver's block says (unit 1/n: / n). */
static double frequency_hz(const struct pm_readings_device *rd, uint16_t raw)
{
	struct pm_register_block blk = { .unit = rd->frequency_unit };

	return pm_block_value(&blk, raw);
}

int pm_readings_add_sample(struct pm_readings *r, const struct pm_sample *s)
{
	struct pm_readings_device *rd = pm_readings_device(r, s->device);

	if (!rd)
		return -ENOENT;
	for (size_t i = 0; i < rd->n_values; i++) {
		struct pm_value *v = &r->values[rd->first_value + i];
		unsigned ch = (unsigned)v->channel - 1;

		if (ch >= PM_CHANNELS)
			continue;
		v->current = s->current[ch] * r->ratios[rd->first_value + i];
		v->frequency = s->has_frequency ? frequency_hz(rd, s->frequency[ch])
						: NAN;
		v->time_ms = s->time_ms;
		v->status = 0;
	}
	rd->status = 0;
	free(rd->error);
	rd->error = NULL;
	return 0;
}

int pm_readings_add_failure(struct pm_readings *r, size_t device, int err,
			    const char *message)
{
	struct pm_readings_device *rd = pm_readings_device(r, device);
	char *text = NULL;

	if (!rd)
		return -ENOENT;
	if (err > 0)
		err = -err;
	if (err == 0)
		err = -EIO;
	if (message) {
		text = strdup(message);
		if (!text)
			return -ENOMEM;
	}
	free(rd->error);
	rd->error = text;
	rd->status = err;
	for (size_t i = 0; i < rd->n_values; i++) {
		struct pm_value *v = &r->values[rd->first_value + i];

		v->current = NAN;
		v->frequency = NAN;
		v->status = err;
	}
	return 0;
}

int pm_readings_set_input(struct pm_readings *r, int input_id, double current,
			  double frequency, int64_t time_ms)
{
	for (size_t d = 0; d < r->n_devices; d++) {
		struct pm_readings_device *rd = &r->devices[d];

		for (size_t i = 0; i < rd->n_values; i++) {
			struct pm_value *v = &r->values[rd->first_value + i];

			if (v->id != input_id)
				continue;
			v->current = current;
			v->frequency = frequency;
			v->time_ms = time_ms;
			v->status = 0;
			if (rd->status == -ENODATA)
				rd->status = 0;
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- reading the bus ---------------------------------------------------- */

/* Two port names for one tty (a udev symlink and the node) are one port:
 * a second open would fail on our own lock. */
static bool same_port(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return true;
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

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

		if (done[d] || !pm_readings_device(r, d) ||
		    !same_port(dev->port, lead->port))
			continue;
		done[d] = true;
		if (!bus && open_err == 0)	/* reopen after a broken port */
			open_err = pm_bus_open_fault(&bus, lead->port,
						     &dev->line, &fault);
		if (open_err < 0) {
			fail_device(r, cfg, d, open_err, &fault, snapshot_err);
			continue;
		}
		err = pm_bus_read(bus, dev, d, &s);
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
	if (device_id >= 0 && !device_by_id(cfg, device_id))
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

/* ---- the public accessors ----------------------------------------------- */

size_t pm_readings_count(const pm_readings *r)
{
	return r->n_values;
}

const struct pm_value *pm_readings_get(const pm_readings *r, size_t index)
{
	return index < r->n_values ? &r->values[index] : NULL;
}

size_t pm_readings_failed(const pm_readings *r)
{
	size_t n = 0;

	for (size_t d = 0; d < r->n_devices; d++)
		if (r->devices[d].status < 0 && r->devices[d].status != -ENODATA)
			n++;
	return n;
}

const char *pm_readings_error(const pm_readings *r, int device_id)
{
	for (size_t d = 0; d < r->n_devices; d++) {
		const struct pm_readings_device *rd = &r->devices[d];

		if (rd->device_id != device_id)
			continue;
		if (rd->status >= 0 || rd->status == -ENODATA)
			return NULL;
		return rd->error ? rd->error : pm_strerror(rd->status);
	}
	return NULL;
}

int pm_readings_format(const pm_readings *r, enum pm_format format,
		       const char *measurement, char **out)
{
	struct pm_buf b;
	int err;

	pm_buf_init(&b, READINGS_TEXT_MAX);
	switch (format) {
	case PM_FORMAT_JSON:
		err = pm_format_json(&b, r);
		break;
	case PM_FORMAT_TABLE:
		err = pm_format_table(&b, r);
		break;
	case PM_FORMAT_INFLUX:
		err = pm_format_influx(&b, r, measurement);
		break;
	default:
		err = -EINVAL;
	}
	if (err < 0) {
		pm_buf_free(&b);
		return err;
	}
	*out = pm_buf_take(&b, NULL);
	return *out ? 0 : -ENOMEM;
}
