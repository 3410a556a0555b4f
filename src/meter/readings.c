/* readings.c — the pm_readings object behind the public API: one value per
 * configured input, filled from samples, the snapshot or failures, and its
 * accessors. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "device/driver.h"
#include "meter/readings.h"

/* What the readings keep of an input: they outlive the config. */
static int input_copy(struct pm_input *to, const struct pm_input *in)
{
	*to = *in;
	to->name = NULL;
	to->n_tags = 0;
	to->tags = NULL;
	to->phase = in->phase ? strdup(in->phase) : NULL;
	to->point_tags = calloc(in->n_point_tags + 1, sizeof(*to->point_tags));
	to->n_point_tags = 0;
	if ((in->phase && !to->phase) || !to->point_tags)
		return -ENOMEM;
	for (size_t i = 0; i < in->n_point_tags; i++) {
		struct pm_tag *t = &to->point_tags[i];

		t->key = strdup(in->point_tags[i].key);
		t->value = strdup(in->point_tags[i].value);
		to->n_point_tags++;
		if (!t->key || !t->value)
			return -ENOMEM;
	}
	return 0;
}

static void input_free(struct pm_input *in)
{
	for (size_t i = 0; i < in->n_point_tags; i++) {
		free(in->point_tags[i].key);
		free(in->point_tags[i].value);
	}
	free(in->point_tags);
	free(in->phase);
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
	r->inputs = calloc(nv ? nv : 1, sizeof(*r->inputs));
	if (!r->devices || !r->values || !r->inputs)
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
		rd->driver = drv;
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
			v->power = v->energy = v->charge = NAN;
			v->status = -ENODATA;
			if (input_copy(&r->inputs[r->n_values - 1], in) < 0)
				goto fail;
			v->phase = r->inputs[r->n_values - 1].phase;
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
	const struct pm_device *dev = pm_config_device(cfg, device_id);

	if (!dev)
		return NULL;
	return readings_build(cfg, dev);
}

void pm_readings_free(struct pm_readings *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_values; i++) {
		free((char *)r->values[i].name);
		input_free(&r->inputs[i]);
	}
	for (size_t d = 0; d < r->n_devices; d++) {
		free((char *)r->devices[d].port);
		free(r->devices[d].error);
	}
	free(r->values);
	free(r->inputs);
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

/* A value that is not a finite number is no reading: no output could carry
 * it (JSON has no Infinity), so a current that is not one fails the input
 * (-ERANGE: a ratio no config accepts, a damaged snapshot), and any other
 * figure that is not one is unknown (NaN), as when it was not read. */
static void value_check(struct pm_value *v)
{
	if (!isfinite(v->current)) {
		v->current = v->frequency = NAN;
		v->power = v->energy = v->charge = NAN;
		v->status = -ERANGE;
		return;
	}
	if (!isfinite(v->frequency))
		v->frequency = NAN;
	if (!isfinite(v->power))
		v->power = NAN;
	if (!isfinite(v->energy))
		v->energy = NAN;
	if (!isfinite(v->charge))
		v->charge = NAN;
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
		v->current = pm_amperes(s->current[ch],
					r->inputs[rd->first_value + i].ratio);
		v->power = pm_power(v->current, &r->inputs[rd->first_value + i]);
		v->energy = s->has_energy ? s->energy_wh[ch] : NAN;
		v->charge = s->has_energy ? s->charge_ah[ch] : NAN;
		v->frequency = s->has_frequency
			? pm_hertz(rd->driver, s->frequency[ch]) : NAN;
		v->time_ms = s->time_ms;
		v->status = 0;
		value_check(v);
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
		v->power = v->energy = v->charge = NAN;
		v->status = err;
	}
	return 0;
}

int pm_readings_set_input(struct pm_readings *r, int input_id, double current,
			  double frequency, double energy, double charge,
			  int64_t time_ms)
{
	for (size_t d = 0; d < r->n_devices; d++) {
		struct pm_readings_device *rd = &r->devices[d];

		for (size_t i = 0; i < rd->n_values; i++) {
			struct pm_value *v = &r->values[rd->first_value + i];

			if (v->id != input_id)
				continue;
			v->current = current;
			v->power = pm_power(current,
					    &r->inputs[rd->first_value + i]);
			v->frequency = frequency;
			v->energy = energy;
			v->charge = charge;
			v->time_ms = time_ms;
			v->status = 0;
			value_check(v);
			if (rd->status == -ENODATA)
				rd->status = 0;
			return 0;
		}
	}
	return -ENOENT;
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
