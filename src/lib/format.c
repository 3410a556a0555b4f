/* format.c — printing readings: the seed's JSON byte for byte as Python's
 * json.dumps(values, indent=4), a table for people, and Python's float repr
 * (shortest round-trip text), which both JSON and line protocol use. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "lineproto.h"
#include "readings.h"

int pm_fmt_measured(char buf[PM_DOUBLE_LEN], double v)
{
	char tmp[PM_DOUBLE_LEN];

	if (isfinite(v)) {
		snprintf(tmp, sizeof(tmp), "%.15g", v);
		v = strtod(tmp, NULL);
	}
	return pm_fmt_double(buf, v);
}

/* repr(float) switches to exponent notation outside 1e-4 <= |v| < 1e16. */
#define REPR_EXP_MIN	-4
#define REPR_EXP_MAX	16
#define DBL_MAX_DIGITS	17	/* always enough to round-trip a double */

int pm_fmt_double(char buf[PM_DOUBLE_LEN], double v)
{
	char tmp[40], digits[DBL_MAX_DIGITS + 1];
	size_t nd = 0, pos = 0;
	int exp = 0;
	char *e;

	if (isnan(v))
		return snprintf(buf, PM_DOUBLE_LEN, "nan");
	if (isinf(v))
		return snprintf(buf, PM_DOUBLE_LEN, "%sinf", v < 0 ? "-" : "");
	/* The fewest significant digits that read back to v; %e rounds
	 * correctly, so the first precision that round-trips is the shortest
	 * text (what Python's repr gives). For a normal double the search
	 * starts at 15 digits: a shorter text that round-trips lies within
	 * half an ulp (2^-53 relative) of v, closer than half a step of the
	 * 15-digit grid (>= 5e-16 relative), so it is the 15-digit rounding
	 * with its trailing zeros, which are stripped below. That is one or
	 * three snprintf+strtod instead of up to 17: the daemon formats every
	 * input at every tick. Subnormals keep the full search. */
	for (int prec = fabs(v) >= DBL_MIN || v == 0 ? 15 : 1;
	     prec <= DBL_MAX_DIGITS; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp: [-]d[.ddd]e(+|-)xx */
	for (const char *p = tmp; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && nd < DBL_MAX_DIGITS)
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	e = strchr(tmp, 'e');
	if (e)
		exp = atoi(e + 1);
	if (signbit(v))
		buf[pos++] = '-';
	if (exp < REPR_EXP_MIN || exp >= REPR_EXP_MAX) {
		buf[pos++] = digits[0];
		if (nd > 1) {
			buf[pos++] = '.';
			memcpy(buf + pos, digits + 1, nd - 1);
			pos += nd - 1;
		}
		pos += (size_t)snprintf(buf + pos, PM_DOUBLE_LEN - pos, "e%c%02d",
					exp < 0 ? '-' : '+', abs(exp));
		return (int)pos;
	}
	if (exp < 0) {
		buf[pos++] = '0';
		buf[pos++] = '.';
		for (int i = -1; i > exp; i--)
			buf[pos++] = '0';
		memcpy(buf + pos, digits, nd);
		pos += nd;
	} else {
		for (int i = 0; i <= exp; i++)
			buf[pos++] = (size_t)i < nd ? digits[i] : '0';
		buf[pos++] = '.';
		if ((size_t)exp + 1 < nd) {
			memcpy(buf + pos, digits + exp + 1, nd - (size_t)exp - 1);
			pos += nd - (size_t)exp - 1;
		} else {
			buf[pos++] = '0';
		}
	}
	buf[pos] = '\0';
	return (int)pos;
}

double pm_round(double v, int ndigits)
{
	char tmp[64];

	/* Beyond 2^53 every double is an integer; printf's exact decimal
	 * expansion rounds half to even like Python's round(). */
	if (!isfinite(v) || fabs(v) >= 9007199254740992.0 || ndigits < 0 ||
	    ndigits > 17)
		return v;
	snprintf(tmp, sizeof(tmp), "%.*f", ndigits, v);
	return strtod(tmp, NULL);
}

/* One UTF-8 sequence at s: the code point, and its length in *len; invalid
 * input yields U+FFFD for one byte. */
static uint32_t utf8_next(const unsigned char *s, size_t *len)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80) {
		*len = 1;
		return s[0];
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		*len = 1;
		return 0xfffd;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*len = 1;
			return 0xfffd;
		}
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff)) {
		*len = 1;
		return 0xfffd;
	}
	*len = n;
	return cp;
}

static int json_escape_cp(struct pm_buf *b, uint32_t cp)
{
	if (cp > 0xffff) {
		cp -= 0x10000;
		return pm_buf_printf(b, "\\u%04x\\u%04x",
				     (unsigned)(0xd800 | (cp >> 10)),
				     (unsigned)(0xdc00 | (cp & 0x3ff)));
	}
	return pm_buf_printf(b, "\\u%04x", (unsigned)cp);
}

int pm_json_string(struct pm_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = b->len, n;
	int r = pm_buf_addc(b, '"');

	while (r == 0 && *p) {
		uint32_t cp = utf8_next(p, &n);

		p += n;
		switch (cp) {
		case '"':
			r = pm_buf_adds(b, "\\\"");
			break;
		case '\\':
			r = pm_buf_adds(b, "\\\\");
			break;
		case '\n':
			r = pm_buf_adds(b, "\\n");
			break;
		case '\r':
			r = pm_buf_adds(b, "\\r");
			break;
		case '\t':
			r = pm_buf_adds(b, "\\t");
			break;
		case '\b':
			r = pm_buf_adds(b, "\\b");
			break;
		case '\f':
			r = pm_buf_adds(b, "\\f");
			break;
		default:
			/* ensure_ascii: only ' '..'~' stay as they are */
			if (cp < 0x20 || cp > 0x7e)
				r = json_escape_cp(b, cp);
			else
				r = pm_buf_addc(b, (char)cp);
		}
	}
	if (r == 0)
		r = pm_buf_addc(b, '"');
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

/* A float as json.dumps prints it: repr, but NaN and Infinity spelled out. */
static int json_float(struct pm_buf *b, double v)
{
	char num[PM_DOUBLE_LEN];

	if (isnan(v))
		return pm_buf_adds(b, "NaN");
	if (isinf(v))
		return pm_buf_adds(b, v < 0 ? "-Infinity" : "Infinity");
	(void)pm_fmt_double(num, v);
	return pm_buf_adds(b, num);
}

static int json_value(struct pm_buf *b, const struct pm_value *v, bool first)
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
	if (r == 0)
		r = pm_buf_adds(b, ",\n        \"current\": ");
	if (r == 0)
		r = json_float(b, pm_round(v->current, 2));
	if (r == 0)
		r = pm_buf_adds(b, "\n    }");
	return r;
}

int pm_format_json(struct pm_buf *b, const struct pm_readings *r)
{
	size_t start = b->len, shown = 0;
	int err = pm_buf_addc(b, '[');

	for (size_t i = 0; err == 0 && i < r->n_values; i++) {
		if (r->values[i].status != 0)
			continue;
		err = json_value(b, &r->values[i], shown == 0);
		shown++;
	}
	if (err == 0)
		err = pm_buf_adds(b, shown ? "\n]" : "]");
	if (err < 0)
		pm_buf_truncate(b, b->len - start);
	return err;
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

enum { COL_DEVICE, COL_PORT, COL_INPUT, COL_NAME, COL_AMPS, COL_HZ, N_COLS };

static void table_row(const struct pm_value *v, char cells[N_COLS][256],
		      const char **name)
{
	snprintf(cells[COL_DEVICE], 256, "%d", v->device_id);
	snprintf(cells[COL_PORT], 256, "%s #%d", v->port, v->address);
	snprintf(cells[COL_INPUT], 256, "%c", v->input);
	*name = v->name;
	snprintf(cells[COL_AMPS], 256, "%.2f", v->current);
	if (isnan(v->frequency))
		snprintf(cells[COL_HZ], 256, "-");
	else
		snprintf(cells[COL_HZ], 256, "%.1f", v->frequency);
}

int pm_format_table(struct pm_buf *b, const struct pm_readings *r)
{
	static const char *const head[N_COLS] = {
		"DEVICE", "PORT/ADDRESS", "INPUT", "NAME", "AMPS", "HZ",
	};
	static const bool right[N_COLS] = { true, false, false, false, true, true };
	size_t width[N_COLS], start = b->len;
	char cells[N_COLS][256];
	bool any_hz = false;
	const char *name;
	int err = 0;

	for (int c = 0; c < N_COLS; c++)
		width[c] = strlen(head[c]);
	for (size_t i = 0; i < r->n_values; i++) {
		const struct pm_value *v = &r->values[i];

		if (v->status != 0)
			continue;
		table_row(v, cells, &name);
		any_hz |= !isnan(v->frequency);
		for (int c = 0; c < N_COLS; c++) {
			size_t w = utf8_width(c == COL_NAME ? name : cells[c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t i = 0; err == 0 && i <= r->n_values; i++) {
		int ncols = any_hz ? N_COLS : N_COLS - 1;

		if (i > 0) {
			if (r->values[i - 1].status != 0)
				continue;
			table_row(&r->values[i - 1], cells, &name);
		}
		for (int c = 0; err == 0 && c < ncols; c++) {
			const char *text = i == 0 ? head[c]
					   : c == COL_NAME ? name : cells[c];

			if (c > 0)
				err = pm_buf_adds(b, "  ");
			/* no trailing blanks on the last column */
			if (err == 0)
				err = table_cell(b, text, c == ncols - 1 &&
						 !right[c] ? 0 : width[c], right[c]);
		}
		if (err == 0)
			err = pm_buf_addc(b, '\n');
	}
	if (err < 0)
		pm_buf_truncate(b, b->len - start);
	return err;
}

int pm_format_influx(struct pm_buf *b, const struct pm_readings *r,
		     const char *measurement)
{
	size_t start = b->len;
	int err = 0;

	for (size_t i = 0; err == 0 && i < r->n_values; i++)
		if (r->values[i].status == 0)
			err = pm_lp_append_value(b, measurement, &r->values[i]);
	if (err < 0)
		pm_buf_truncate(b, b->len - start);
	return err;
}
