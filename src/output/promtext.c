/* promtext.c — the Prometheus text exposition of the latest readings
 * (promtext.h): families, labels, escaping. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "output/promtext.h"
#include "util/numfmt.h"

/* device_id, input, name and the point tags (phase, feed, at most 16 of
 * the file's and 16 of its own): more are left out. */
#define CIRCUIT_LABELS_MAX 48

/* ---- labels ------------------------------------------------------------- */

static bool label_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

void pm_prom_label_name(char out[PM_PROM_LABEL_MAX], const char *key)
{
	char s[PM_PROM_LABEL_MAX];
	const char *prefix = "";
	size_t n = 0, k = 0;

	for (size_t i = 0; key[i] && n < sizeof(s) - 1; i++)
		s[n++] = label_char(key[i], false) ? key[i] : '_';
	s[n] = '\0';
	if (n == 0)
		prefix = "_";
	else if (!label_char(s[0], true))	/* a digit */
		prefix = "_";
	else if (s[0] == '_' && s[1] == '_')	/* reserved by Prometheus */
		prefix = "tag";
	for (size_t i = 0; prefix[i] && k < PM_PROM_LABEL_MAX - 1; i++)
		out[k++] = prefix[i];
	for (size_t i = 0; s[i] && k < PM_PROM_LABEL_MAX - 1; i++)
		out[k++] = s[i];
	out[k] = '\0';
}

int pm_prom_label_value(struct pm_buf *b, const char *v)
{
	size_t start = b->len;
	int r;

	r = pm_buf_addc(b, '"');
	while (r == 0 && *v) {
		size_t plain = strcspn(v, "\\\"\n");

		if (plain)
			r = pm_buf_add(b, v, plain);
		v += plain;
		if (r == 0 && *v) {
			r = pm_buf_adds(b, *v == '\\' ? "\\\\"
					   : *v == '"' ? "\\\"" : "\\n");
			v++;
		}
	}
	if (r == 0)
		r = pm_buf_addc(b, '"');
	if (r)
		pm_buf_truncate(b, b->len - start);
	return r;
}

/* A label name already in names[0..n) or among 'own'. */
static bool label_taken(char (*names)[PM_PROM_LABEL_MAX], size_t n,
			const char *const *own, const char *name)
{
	for (size_t i = 0; own[i]; i++)
		if (!strcmp(own[i], name))
			return true;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* {device_id="4",input="c",name="...",phase="L1",...}: a tag whose label
 * name is taken already (by ours, or by an earlier tag once made a label
 * name) is left out, so no label comes twice. */
static int circuit_labels(struct pm_buf *b, const struct pm_device *dev,
			  const struct pm_input *in)
{
	static const char *const own[] = { "device_id", "input", "name", NULL };
	char names[CIRCUIT_LABELS_MAX][PM_PROM_LABEL_MAX];
	size_t n = 0;
	int r;

	r = pm_buf_printf(b, "{device_id=\"%d\",input=\"%c\"", dev->id,
			  pm_channel_letter(in->channel));
	/* empty is absent to Prometheus, as to line protocol */
	if (r == 0 && in->name && *in->name) {
		r = pm_buf_adds(b, ",name=");
		if (r == 0)
			r = pm_prom_label_value(b, in->name);
	}
	for (size_t i = 0; r == 0 && i < in->n_point_tags &&
	     n < CIRCUIT_LABELS_MAX; i++) {
		const struct pm_tag *t = &in->point_tags[i];

		if (!t->value || !*t->value)
			continue;
		pm_prom_label_name(names[n], t->key);
		if (label_taken(names, n, own, names[n]))
			continue;
		r = pm_buf_printf(b, ",%s=", names[n]);
		if (r == 0)
			r = pm_prom_label_value(b, t->value);
		n++;
	}
	if (r == 0)
		r = pm_buf_addc(b, '}');
	return r;
}

static int module_labels(struct pm_buf *b, const struct pm_device *dev)
{
	int r;

	r = pm_buf_printf(b, "{device_id=\"%d\",port=", dev->id);
	if (r == 0)
		r = pm_prom_label_value(b, dev->port ? dev->port : "");
	if (r == 0)
		r = pm_buf_printf(b, ",address=\"%d\"}", dev->address);
	return r;
}

static int feed_labels(struct pm_buf *b, const struct pm_feed *fd,
		       unsigned phase)
{
	int r;

	r = pm_buf_adds(b, "{feed=");
	if (r == 0)
		r = pm_prom_label_value(b, fd->name ? fd->name : "");
	if (r == 0)
		r = pm_buf_printf(b, ",phase=\"%s\"}", pm_phase_names[phase]);
	return r;
}

/* ---- families and lines ------------------------------------------------- */

struct family {
	const char *name;
	const char *type;	/* "gauge" or "counter" */
	const char *help;	/* no backslash, no line feed */
};

/* Where a family's HELP starts and its lines do. */
struct family_mark {
	size_t head, body;
};

static int family_begin(struct pm_buf *b, const struct family *f,
			struct family_mark *m)
{
	int r;

	m->head = b->len;
	r = pm_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
			  f->name, f->type);
	m->body = b->len;
	return r;
}

/* A family without a line is no family. */
static void family_end(struct pm_buf *b, const struct family_mark *m)
{
	if (b->len == m->body)
		pm_buf_truncate(b, b->len - m->head);
}

/* " 0.92\n": the shortest text that reads back as the same double. */
static int value_end(struct pm_buf *b, double v)
{
	char num[PM_DOUBLE_LEN];

	(void)pm_fmt_double(num, v);
	return pm_buf_printf(b, " %s\n", num);
}

/* ---- circuits ----------------------------------------------------------- */

enum circuit_figure {
	FIG_CURRENT, FIG_POWER, FIG_FREQUENCY, FIG_LOAD, FIG_ENERGY, N_FIGS
};

static const struct family circuit_families[N_FIGS] = {
	[FIG_CURRENT] = { "powermeter_current_amperes", "gauge",
		"Current of the circuit in amperes, as its module measured it." },
	[FIG_POWER] = { "powermeter_power_watts", "gauge",
		"Power of the circuit in watts, ESTIMATED from the current and "
		"the configured voltage and power factor (the module measures "
		"current only)." },
	[FIG_FREQUENCY] = { "powermeter_frequency_hertz", "gauge",
		"Frequency on the circuit's channel in hertz, as its module "
		"measured it." },
	[FIG_LOAD] = { "powermeter_load_ratio", "gauge",
		"Current of the circuit over its breaker's rating (1 is the "
		"rating)." },
	[FIG_ENERGY] = { "powermeter_energy_joules_total", "counter",
		"Energy the circuit used in joules (3.6e6 per kWh), ESTIMATED "
		"from the estimated power; never goes backwards." },
};

static double circuit_value(enum circuit_figure fig,
			    const struct pm_device *dev,
			    const struct pm_input *in, const struct pm_sample *s)
{
	switch (fig) {
	case FIG_CURRENT:
		return pm_sample_amperes(s, in);
	case FIG_POWER:
		return pm_sample_power(s, in);
	case FIG_FREQUENCY:
		return pm_sample_hertz(s, dev, in);
	case FIG_LOAD:
		return in->breaker > 0 ? pm_sample_amperes(s, in) / in->breaker
				       : NAN;
	case FIG_ENERGY:
		/* Wh x 3600 keeps the order of the counter's values: it never
		 * goes backwards either */
		return s->has_energy && in->channel < PM_CHANNELS
			? s->energy_wh[in->channel] * 3600 : NAN;
	case N_FIGS:
		break;
	}
	return NAN;
}

/* The sample to show of a device: its latest read succeeded, recently. */
static const struct pm_sample *current_sample(const struct pm_config *cfg,
					      const struct pm_prom_device *d,
					      int64_t now_ms)
{
	double max_age_ms = PM_PROMTEXT_STALE_INTERVALS * cfg->interval * 1000;

	if (!d->has_sample || (double)(now_ms - d->sample.time_ms) >= max_age_ms)
		return NULL;
	return &d->sample;
}

static int circuit_family(struct pm_buf *b, const struct pm_config *cfg,
			  const struct pm_prom_device *devices,
			  enum circuit_figure fig, int64_t now_ms)
{
	struct family_mark m;
	int r;

	r = family_begin(b, &circuit_families[fig], &m);
	for (size_t d = 0; r == 0 && d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];
		const struct pm_sample *s = current_sample(cfg, &devices[d],
							   now_ms);

		for (size_t k = 0; r == 0 && s && k < dev->n_inputs; k++) {
			const struct pm_input *in = &dev->inputs[k];
			double v = circuit_value(fig, dev, in, s);

			/* A figure that is not a finite number is left out,
			 * and all of a circuit whose current is not one:
			 * never NaN or +Inf, which the format allows but
			 * are not readings. */
			if (!isfinite(v) || !isfinite(pm_sample_amperes(s, in)))
				continue;
			r = pm_buf_adds(b, circuit_families[fig].name);
			if (r == 0)
				r = circuit_labels(b, dev, in);
			if (r == 0)
				r = value_end(b, v);
		}
	}
	if (r == 0)
		family_end(b, &m);
	return r;
}

/* ---- modules ------------------------------------------------------------ */

#define COUNTER_NAME(name) #name,
static const char *const counter_names[] = {
	PM_DEVICE_COUNTERS(COUNTER_NAME)
};
#undef COUNTER_NAME
#define N_COUNTERS (sizeof(counter_names) / sizeof(counter_names[0]))

/* What each counter of struct pm_device_state counts; a counter added
 * there without a line here still gets a family, with a plainer HELP. */
static const struct {
	const char *name, *help;
} counter_help[] = {
	{ "reads", "Successful reads of the module." },
	{ "failures", "Failed reads of the module, all kinds." },
	{ "requests", "Modbus frames sent to the module, retries included." },
	{ "retries", "Frames sent to the module again after a bad or missing "
		     "answer." },
	{ "timeouts", "Frames the module did not answer in time." },
	{ "crc_errors", "Answers of the module that failed their CRC." },
	{ "frame_errors", "Other bad answers: cut short, malformed or from "
			  "another unit." },
	{ "exceptions", "Reads the module answered with a Modbus exception." },
	{ "io_errors", "Reads that failed on the port: missing, unplugged or "
		       "busy." },
};

static uint64_t counter_value(const struct pm_device_state *st, size_t i)
{
	size_t k = 0;

#define COUNTER_VALUE(name)						\
	if (k++ == i)							\
		return st->name;
	PM_DEVICE_COUNTERS(COUNTER_VALUE)
#undef COUNTER_VALUE
	return 0;
}

/* What a module family shows: a counter's index, or one of these. */
enum { MODULE_UP = -1, MODULE_LAST_SUCCESS = -2 };

static int module_family(struct pm_buf *b, const struct pm_config *cfg,
			 const struct pm_prom_device *devices,
			 const struct family *f, int what)
{
	struct family_mark m;
	int r;

	r = family_begin(b, f, &m);
	for (size_t d = 0; r == 0 && d < cfg->n_devices; d++) {
		const struct pm_device_state *st = &devices[d].state;

		if (!devices[d].attempted)
			continue;
		/* never: no line rather than 1970 */
		if (what == MODULE_LAST_SUCCESS && st->last_success_ms <= 0)
			continue;
		r = pm_buf_adds(b, f->name);
		if (r == 0)
			r = module_labels(b, &cfg->devices[d]);
		if (r == 0 && what == MODULE_UP)
			r = pm_buf_printf(b, " %d\n", st->up ? 1 : 0);
		else if (r == 0 && what == MODULE_LAST_SUCCESS)
			r = value_end(b, (double)st->last_success_ms / 1000);
		else if (r == 0)
			r = pm_buf_printf(b, " %llu\n", (unsigned long long)
					  counter_value(st, (size_t)what));
	}
	if (r == 0)
		family_end(b, &m);
	return r;
}

static int module_families(struct pm_buf *b, const struct pm_config *cfg,
			   const struct pm_prom_device *devices)
{
	static const struct family up = { "powermeter_module_up", "gauge",
		"1 while the module answers, 0 once its last reads failed "
		"(\"down_after\" in a row)." };
	static const struct family last = {
		"powermeter_module_last_success_timestamp_seconds", "gauge",
		"When the module last answered, in seconds since the epoch." };
	int r;

	r = module_family(b, cfg, devices, &up, MODULE_UP);
	if (r == 0)
		r = module_family(b, cfg, devices, &last,
				  MODULE_LAST_SUCCESS);
	for (size_t i = 0; r == 0 && i < N_COUNTERS; i++) {
		char name[96], help[128];
		struct family f = { name, "counter", help };

		(void)snprintf(name, sizeof(name), "powermeter_module_%s_total",
			       counter_names[i]);
		(void)snprintf(help, sizeof(help), "The module's %s counter.",
			       counter_names[i]);
		for (size_t k = 0; k < sizeof(counter_help) / sizeof(counter_help[0]); k++)
			if (!strcmp(counter_help[k].name, counter_names[i]))
				f.help = counter_help[k].help;
		r = module_family(b, cfg, devices, &f, (int)i);
	}
	return r;
}

/* ---- feeds -------------------------------------------------------------- */

static int feed_family(struct pm_buf *b, const struct pm_config *cfg,
		       const struct pm_feed_fig *feeds, const struct family *f,
		       bool ratio)
{
	struct family_mark m;
	int r;

	r = family_begin(b, f, &m);
	for (size_t i = 0; r == 0 && i < cfg->n_feeds; i++) {
		const struct pm_feed *fd = &cfg->feeds[i];

		for (unsigned p = 0; r == 0 && p < fd->n_phases &&
		     p < PM_PHASES; p++) {
			const struct pm_feed_phase_fig *ph = &feeds[i].phase[p];
			double v = ratio ? ph->current / fd->capacity
					 : ph->current;

			/* while a circuit lacks a reading the sum is a lower
			 * bound: no value rather than a low one */
			if (ph->missing || !isfinite(v))
				continue;
			r = pm_buf_adds(b, f->name);
			if (r == 0)
				r = feed_labels(b, fd, fd->phases[p]);
			if (r == 0)
				r = value_end(b, v);
		}
	}
	if (r == 0)
		family_end(b, &m);
	return r;
}

static int feed_families(struct pm_buf *b, const struct pm_config *cfg,
			 const struct pm_feed_fig *feeds)
{
	static const struct family current = {
		"powermeter_feed_current_amperes", "gauge",
		"Current on the feed's phase in amperes: the sum over its "
		"circuits." };
	static const struct family load = {
		"powermeter_feed_load_ratio", "gauge",
		"Current on the feed's phase over its capacity (1 is the "
		"capacity)." };
	int r;

	r = feed_family(b, cfg, feeds, &current, false);
	if (r == 0)
		r = feed_family(b, cfg, feeds, &load, true);
	return r;
}

int pm_promtext_format(struct pm_buf *out, const struct pm_config *cfg,
		       const struct pm_prom_device *devices,
		       const struct pm_feed_fig *feeds, int64_t now_ms)
{
	size_t start = out->len;
	int r = 0;

	for (int fig = 0; r == 0 && fig < N_FIGS; fig++)
		r = circuit_family(out, cfg, devices, (enum circuit_figure)fig,
				   now_ms);
	if (r == 0)
		r = module_families(out, cfg, devices);
	if (r == 0 && feeds && cfg->n_feeds)
		r = feed_families(out, cfg, feeds);
	if (r)
		pm_buf_truncate(out, out->len - start);
	return r;
}
