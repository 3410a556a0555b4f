/* format.c — printing readings: the seed's JSON byte for byte as Python's
 * json.dumps(values, indent=4), a table for people, line protocol, and
 * pm_readings_format(), the public call that picks one of them. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/readings.h"
#include "output/format.h"
#include "output/lineproto.h"
#include "util/jsonstr.h"
#include "util/numfmt.h"

/* pm_readings_format() never builds a text larger than this. */
#define READINGS_TEXT_MAX (64u * 1024 * 1024)

/* The values the JSON and the table show: those read, with a current that
 * is a finite number (readings.c fails any other). Their figures are
 * printed as json.dumps does (repr), never as NaN or Infinity, which it
 * would print but no JSON parser (Zabbix's) takes: a figure that is not a
 * finite number is left out. */
static bool shown(const struct pm_value *v)
{
	return v->status == 0 && isfinite(v->current);
}

/* Columns are counted in code points, so names with accents line up. */
static size_t utf8_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static int table_cell(struct pm_buf *b, const char *s, size_t width,
		      bool right)
{
	size_t w = utf8_width(s);
	int pad = w < width ? (int)(width - w) : 0;

	if (right)
		return pm_buf_printf(b, "%*s%s", pad, "", s);
	return pm_buf_printf(b, "%s%*s", s, pad, "");
}

enum {
	COL_DEVICE, COL_PORT, COL_INPUT, COL_NAME, COL_AMPS, COL_HZ, COL_WATTS,
	COL_KWH, N_COLS
};

static void table_row(const struct pm_value *v, char cells[N_COLS][256],
		      const char **name)
{
	snprintf(cells[COL_DEVICE], 256, "%d", v->device_id);
	snprintf(cells[COL_PORT], 256, "%s #%d", v->port, v->address);
	snprintf(cells[COL_INPUT], 256, "%c", v->input);
	*name = v->name;
	snprintf(cells[COL_AMPS], 256, "%.2f", v->current);
	if (!isfinite(v->frequency))
		snprintf(cells[COL_HZ], 256, "-");
	else
		snprintf(cells[COL_HZ], 256, "%.1f", v->frequency);
	if (!isfinite(v->power))
		snprintf(cells[COL_WATTS], 256, "-");
	else
		snprintf(cells[COL_WATTS], 256, "%.0f", v->power);
	if (!isfinite(v->energy))
		snprintf(cells[COL_KWH], 256, "-");
	else
		snprintf(cells[COL_KWH], 256, "%.3f", v->energy / 1000);
}

int pm_format_table(struct pm_buf *b, const struct pm_readings *r)
{
	static const char *const head[N_COLS] = {
		"DEVICE", "PORT/ADDRESS", "INPUT", "NAME", "AMPS", "HZ",
		"WATTS*", "KWH*",
	};
	static const bool right[N_COLS] = {
		true, false, false, false, true, true, true, true,
	};
	size_t width[N_COLS], start = b->len;
	char cells[N_COLS][256];
	bool show[N_COLS];
	const char *name;
	int err = 0, last = 0;

	for (int c = 0; c < N_COLS; c++) {
		width[c] = strlen(head[c]);
		show[c] = c <= COL_AMPS;
	}
	for (size_t i = 0; i < r->n_values; i++) {
		const struct pm_value *v = &r->values[i];

		if (!shown(v))
			continue;
		table_row(v, cells, &name);
		show[COL_HZ] |= isfinite(v->frequency);
		show[COL_WATTS] |= isfinite(v->power);
		show[COL_KWH] |= isfinite(v->energy);
		for (int c = 0; c < N_COLS; c++) {
			size_t w = utf8_width(c == COL_NAME ? name : cells[c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (int c = 0; c < N_COLS; c++)
		if (show[c])
			last = c;
	for (size_t i = 0; err == 0 && i <= r->n_values; i++) {
		if (i > 0) {
			if (!shown(&r->values[i - 1]))
				continue;
			table_row(&r->values[i - 1], cells, &name);
		}
		for (int c = 0; err == 0 && c < N_COLS; c++) {
			const char *text = i == 0 ? head[c]
					   : c == COL_NAME ? name : cells[c];

			if (!show[c])
				continue;
			if (c > 0)
				err = pm_buf_adds(b, "  ");
			/* no trailing blanks on the last column */
			if (err == 0)
				err = table_cell(b, text, c == last &&
						 !right[c] ? 0 : width[c], right[c]);
		}
		if (err == 0)
			err = pm_buf_addc(b, '\n');
	}
	if (err == 0 && (show[COL_WATTS] || show[COL_KWH]))
		err = pm_buf_adds(b, "* estimates: the modules measure current "
				  "only; power is current x the configured "
				  "voltage x power factor\n");
	if (err < 0)
		pm_buf_truncate(b, b->len - start);
	return err;
}

/* One value of the seed's array: id, device_id, input, name and current
 * rounded to 2 decimals. With 'circuit' (PM_FORMAT_CIRCUITS) also the
 * circuit's phase and its estimates (power rounded to 0.1 W, energy to
 * 1 mWh, charge to 0.1 mAh), each only where known. */
static int json_value(struct pm_buf *b, const struct pm_value *v, bool first,
		      bool circuit)
{
	char input[2] = { v->input, '\0' };
	int r;

	r = pm_buf_printf(b, "%s\n    {\n        \"id\": %d,\n"
			  "        \"device_id\": %d,\n        \"input\": ",
			  first ? "" : ",", v->id, v->device_id);
	if (r == 0)
		r = pm_json_string(b, input);
	if (r == 0)
		r = pm_buf_adds(b, ",\n        \"name\": ");
	if (r == 0)
		r = pm_json_string(b, v->name);
	if (r == 0 && circuit && v->phase) {
		r = pm_buf_adds(b, ",\n        \"phase\": ");
		if (r == 0)
			r = pm_json_string(b, v->phase);
	}
	if (r == 0)
		r = pm_buf_adds(b, ",\n        \"current\": ");
	if (r == 0)
		r = pm_json_number(b, pm_round(v->current, 2));
	if (r == 0 && circuit && isfinite(v->power)) {
		r = pm_buf_adds(b, ",\n        \"power\": ");
		if (r == 0)
			r = pm_json_number(b, pm_round(v->power, 1));
	}
	if (r == 0 && circuit && isfinite(v->energy)) {
		r = pm_buf_adds(b, ",\n        \"energy\": ");
		if (r == 0)
			r = pm_json_number(b, pm_round(v->energy, 3));
	}
	if (r == 0 && circuit && isfinite(v->charge)) {
		r = pm_buf_adds(b, ",\n        \"charge\": ");
		if (r == 0)
			r = pm_json_number(b, pm_round(v->charge, 4));
	}
	if (r == 0)
		r = pm_buf_adds(b, "\n    }");
	return r;
}

static int json_values(struct pm_buf *b, const struct pm_readings *r,
		       bool circuit)
{
	size_t start = b->len, n = 0;
	int err = pm_buf_addc(b, '[');

	for (size_t i = 0; err == 0 && i < r->n_values; i++) {
		if (!shown(&r->values[i]))
			continue;
		err = json_value(b, &r->values[i], n == 0, circuit);
		n++;
	}
	if (err == 0)
		err = pm_buf_adds(b, n ? "\n]" : "]");
	if (err < 0)
		pm_buf_truncate(b, b->len - start);
	return err;
}

int pm_format_json(struct pm_buf *b, const struct pm_readings *r)
{
	return json_values(b, r, false);
}

int pm_format_circuits(struct pm_buf *b, const struct pm_readings *r)
{
	return json_values(b, r, true);
}

int pm_format_influx(struct pm_buf *b, const struct pm_readings *r,
		     const char *measurement)
{
	size_t start = b->len;
	int err = 0;

	for (size_t i = 0; err == 0 && i < r->n_values; i++)
		if (r->values[i].status == 0)
			err = pm_lp_append_value(b, measurement, &r->values[i],
						 r->inputs[i].n_point_tags,
						 r->inputs[i].point_tags);
	if (err < 0)
		pm_buf_truncate(b, b->len - start);
	return err;
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
	case PM_FORMAT_CIRCUITS:
		err = pm_format_circuits(&b, r);
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
