/* lineproto.c — InfluxDB line protocol in the seed's schema, each element
 * escaped by its own rule (see lineproto.h for the rules and what cannot be
 * represented). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "device/driver.h"
#include "output/lineproto.h"
#include "util/jsonstr.h"
#include "util/numfmt.h"

/* Characters escaped with a backslash, per element. */
#define ESC_MEASUREMENT	", "
#define ESC_TAG		",= "
#define ESC_FIELD_KEY	",= "

/* Line protocol has no escape for a line feed, and a parser splits lines on
 * it before anything else: every control character becomes a space. */
static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static char plain(char c)
{
	return c && is_control((unsigned char)c) ? ' ' : c;
}

/* InfluxDB's parser (1.x and 2.x alike) takes a backslash and the character
 * after it as a pair when it looks for the end of an element, and then
 * replaces only "\," "\=" "\ " by the character. So a run of backslashes is
 * written as it is, and read back as it is, when a plain character follows.
 * Before an escaped character the run must have even length to leave that
 * character's own backslash paired with it: an odd run gets one more (read
 * back one longer — the only case that is not exact). A run at the very end
 * is left out: InfluxDB refuses an element that ends in a backslash, and
 * would reject the whole write. (VictoriaMetrics reads "\\" as one
 * backslash.) */
static int lp_escaped(struct pm_buf *b, const char *s, const char *special)
{
	size_t start = b->len;
	int r = 0;

	for (const char *p = s; *p && r == 0; p++) {
		char c = plain(*p);

		if (c == '\\') {
			size_t run = strspn(p, "\\");
			char next = plain(p[run]);

			if (!next)
				break;
			r = pm_buf_add(b, p, run);
			if (r == 0 && strchr(special, next) && run % 2)
				r = pm_buf_addc(b, '\\');
			p += run - 1;
		} else if (strchr(special, c)) {
			char esc[2] = { '\\', c };

			r = pm_buf_add(b, esc, 2);
		} else {
			r = pm_buf_addc(b, c);
		}
	}
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_lp_measurement(struct pm_buf *b, const char *s)
{
	/* A line starting with '#' is a comment. */
	size_t start = b->len;
	int r;

	if (*s == '#')
		return -EINVAL;
	r = lp_escaped(b, s, ESC_MEASUREMENT);
	if (r == 0 && b->len == start)
		r = -EINVAL;	/* nothing left of it */
	return r;
}

int pm_lp_tag(struct pm_buf *b, const char *s)
{
	return lp_escaped(b, s, ESC_TAG);
}

int pm_lp_field_key(struct pm_buf *b, const char *s)
{
	return lp_escaped(b, s, ESC_FIELD_KEY);
}

int pm_lp_string_value(struct pm_buf *b, const char *s)
{
	size_t start = b->len;
	int r = pm_buf_addc(b, '"');

	for (const char *p = s; *p && r == 0; p++) {
		char c = plain(*p);

		if (c == '"' || c == '\\')
			r = pm_buf_addc(b, '\\');
		if (r == 0)
			r = pm_buf_addc(b, c);
	}
	if (r == 0)
		r = pm_buf_addc(b, '"');
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

/* ",key=value", left out when the value is empty (InfluxDB refuses it). */
static int lp_tag_pair(struct pm_buf *b, const char *key, const char *value)
{
	size_t start = b->len, value_at;
	int r;

	r = pm_buf_addc(b, ',');
	if (r == 0)
		r = pm_lp_tag(b, key);
	if (r == 0)
		r = pm_buf_addc(b, '=');
	value_at = b->len;
	if (r == 0)
		r = pm_lp_tag(b, value);
	if (r < 0 || b->len == value_at)
		pm_buf_truncate(b, b->len - start);
	return r;
}

static int lp_float_field(struct pm_buf *b, const char *key, double v,
			  bool first)
{
	char num[PM_DOUBLE_LEN];
	int r = 0;

	(void)pm_fmt_measured(num, v);
	if (!first)
		r = pm_buf_addc(b, ',');
	if (r == 0)
		r = pm_lp_field_key(b, key);
	if (r == 0)
		r = pm_buf_addc(b, '=');
	if (r == 0)
		r = pm_buf_adds(b, num);
	return r;
}

/* ",key=value" for every tag of 't' whose key sorts before 'before' (NULL:
 * all that are left), from *i on. */
static int lp_extra_tags(struct pm_buf *b, const struct pm_lp_point *pt,
			 size_t *i, const char *before)
{
	int r = 0;

	while (r == 0 && *i < pt->n_tags &&
	       (!before || strcmp(pt->tags[*i].key, before) < 0)) {
		r = lp_tag_pair(b, pt->tags[*i].key, pt->tags[*i].value);
		(*i)++;
	}
	return r;
}

int pm_lp_append_point(struct pm_buf *b, const char *measurement,
		       const struct pm_lp_point *pt)
{
	char device[16], letter[2] = { pt->input, '\0' }, uid[16];
	static const char *const fixed[] = {
		"device_id", "input", "name", "unique_id",
	};
	const char *value[4] = { device, letter, pt->name, uid };
	size_t start = b->len, extra = 0;
	int r = 0;

	if (!isfinite(pt->current))
		return 0;	/* nothing to write */
	snprintf(device, sizeof(device), "%d", pt->device_id);
	snprintf(uid, sizeof(uid), "%d", pt->unique_id);
	r = pm_lp_measurement(b, measurement ? measurement : PM_LP_MEASUREMENT);
	/* Tags in key order, the order InfluxDB stores them in and parses
	 * fastest: the fixed four merged with the circuit's own. */
	for (size_t k = 0; r == 0 && k < 4; k++) {
		r = lp_extra_tags(b, pt, &extra, fixed[k]);
		if (r == 0)
			r = lp_tag_pair(b, fixed[k], value[k]);
	}
	if (r == 0)
		r = lp_extra_tags(b, pt, &extra, NULL);
	if (r == 0)
		r = pm_buf_addc(b, ' ');
	if (r == 0)
		r = lp_float_field(b, "current", pt->current, true);
	if (r == 0 && isfinite(pt->frequency))
		r = lp_float_field(b, "frequency", pt->frequency, false);
	if (r == 0 && isfinite(pt->power))
		r = lp_float_field(b, "power", pt->power, false);
	if (r == 0 && isfinite(pt->energy))
		r = lp_float_field(b, "energy", pt->energy, false);
	if (r == 0 && isfinite(pt->charge))
		r = lp_float_field(b, "charge", pt->charge, false);
	if (r == 0)
		r = pm_buf_printf(b, " %lld\n", (long long)pt->time_ms);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_lp_append_value(struct pm_buf *b, const char *measurement,
		       const struct pm_value *v, size_t n_tags,
		       const struct pm_tag *tags)
{
	struct pm_lp_point pt = {
		.device_id = v->device_id,
		.input = v->input,
		.name = v->name,
		.unique_id = v->id,
		.n_tags = n_tags,
		.tags = tags,
		.current = v->current,
		.frequency = v->frequency,
		.power = v->power,
		.energy = v->energy,
		.charge = v->charge,
		.time_ms = v->time_ms,
	};

	if (v->status != 0)
		return 0;
	return pm_lp_append_point(b, measurement, &pt);
}

int pm_lp_append_sample(struct pm_buf *b, const struct pm_config *cfg,
			const char *measurement, const struct pm_sample *s)
{
	const struct pm_device *dev;
	size_t start = b->len;
	int r = 0;

	if (s->device >= cfg->n_devices)
		return -EINVAL;
	dev = &cfg->devices[s->device];
	for (size_t i = 0; i < dev->n_inputs && r == 0; i++) {
		const struct pm_input *in = &dev->inputs[i];
		struct pm_lp_point pt;

		if (in->channel >= PM_CHANNELS)
			continue;
		pt = (struct pm_lp_point){
			.device_id = dev->id,
			.input = pm_channel_letter(in->channel),
			.name = in->name,
			.unique_id = in->id,
			.n_tags = in->n_point_tags,
			.tags = in->point_tags,
			.current = pm_sample_amperes(s, in),
			.frequency = pm_sample_hertz(s, dev, in),
			.power = pm_sample_power(s, in),
			.energy = s->has_energy ? s->energy_wh[in->channel] : NAN,
			.charge = s->has_energy ? s->charge_ah[in->channel] : NAN,
			.time_ms = s->time_ms,
		};
		r = pm_lp_append_point(b, measurement, &pt);
	}
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}
