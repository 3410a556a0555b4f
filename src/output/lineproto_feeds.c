/* lineproto_feeds.c — feed and alarm points (lineproto_feeds.h). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/lineproto.h"
#include "output/lineproto_feeds.h"
#include "util/numfmt.h"

#define TAGS_MAX 24	/* ours (at most 3) and the file's (at most 16) */

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pm_tag *)a)->key,
		      ((const struct pm_tag *)b)->key);
}

/* "<measurement>_<suffix>,k=v,..." with our tags and the file's, sorted. */
static int head(struct pm_buf *b, const struct pm_config *cfg,
		const char *measurement, const char *suffix,
		struct pm_tag *ours, size_t n_ours)
{
	struct pm_tag t[TAGS_MAX];
	char name[256];
	size_t n = 0;
	int r;

	for (size_t i = 0; i < n_ours && n < TAGS_MAX; i++)
		if (ours[i].value && *ours[i].value)
			t[n++] = ours[i];
	for (size_t i = 0; i < cfg->n_tags && n < TAGS_MAX; i++)
		t[n++] = cfg->tags[i];
	qsort(t, n, sizeof(*t), tag_cmp);
	(void)snprintf(name, sizeof(name), "%s_%s",
		       measurement ? measurement : PM_LP_MEASUREMENT, suffix);
	r = pm_lp_measurement(b, name);
	for (size_t i = 0; i < n && r == 0; i++) {
		r = pm_buf_addc(b, ',');
		if (r == 0)
			r = pm_lp_tag(b, t[i].key);
		if (r == 0)
			r = pm_buf_addc(b, '=');
		if (r == 0)
			r = pm_lp_tag(b, t[i].value);
	}
	return r;
}

/* ",key=value" (or "key=value" first); NaN writes nothing. */
static int field(struct pm_buf *b, bool *first, const char *key, double v)
{
	char num[PM_DOUBLE_LEN];
	int r;

	if (!isfinite(v))
		return 0;
	(void)pm_fmt_measured(num, v);
	r = pm_buf_printf(b, "%s%s=%s", *first ? " " : ",", key, num);
	*first = false;
	return r;
}

static int tail(struct pm_buf *b, bool *first, unsigned missing, bool complete,
		int64_t time_ms)
{
	return pm_buf_printf(b, "%smissing=%ui,complete=%s %lld\n",
			     *first ? " " : ",", missing,
			     complete ? "true" : "false", (long long)time_ms);
}

int pm_lp_append_feed(struct pm_buf *b, const struct pm_config *cfg,
		      const char *measurement, size_t f,
		      const struct pm_feed_fig *fig, int64_t time_ms)
{
	const struct pm_feed *fd = &cfg->feeds[f];
	size_t start = b->len;
	int r = 0;

	for (unsigned p = 0; p < fd->n_phases && r == 0; p++) {
		const struct pm_feed_phase_fig *ph = &fig->phase[p];
		struct pm_tag tags[] = {
			{ "feed", fd->name },
			{ "phase", (char *)pm_phase_names[fd->phases[p]] },
		};
		bool first = true, whole = ph->missing == 0;

		r = head(b, cfg, measurement, "feed", tags, 2);
		if (r == 0 && whole)
			r = field(b, &first, "current", ph->current);
		if (r == 0 && whole)
			r = field(b, &first, "power", ph->power);
		if (r == 0 && whole)
			r = field(b, &first, "load", ph->load);
		/* a partner's missing circuit makes it a lower bound too */
		if (r == 0 && whole && ph->redundant_missing == 0)
			r = field(b, &first, "redundant_load", ph->redundant_load);
		if (r == 0)
			r = tail(b, &first, ph->missing, whole, time_ms);
	}
	if (r == 0) {
		struct pm_tag tags[] = { { "feed", fd->name } };
		bool first = true;

		r = head(b, cfg, measurement, "feed", tags, 1);
		if (r == 0 && fig->complete)
			r = field(b, &first, "current", fig->current);
		if (r == 0 && fig->complete)
			r = field(b, &first, "power", fig->power);
		if (r == 0 && fig->complete)
			r = field(b, &first, "imbalance", fig->imbalance);
		if (r == 0 && fig->complete)
			r = field(b, &first, "neutral", fig->neutral);
		if (r == 0 && fig->complete && fig->redundant_missing == 0)
			r = field(b, &first, "redundant_load", fig->redundant_load);
		if (r == 0)
			r = tail(b, &first, fig->missing, fig->complete, time_ms);
	}
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_lp_append_alarm(struct pm_buf *b, const struct pm_config *cfg,
		       const char *measurement, const struct pm_alarm_event *e)
{
	struct pm_tag tags[] = {
		{ "alarm", (char *)pm_alarm_kind_name(e->kind) },
		{ "subject", (char *)e->subject },
		{ "severity", (char *)pm_severity_name(e->severity) },
	};
	size_t start = b->len;
	bool first = true;
	int r;

	r = head(b, cfg, measurement, "alarm", tags, 3);
	if (r == 0)
		r = field(b, &first, "value", e->value);
	if (r == 0)
		r = field(b, &first, "threshold", e->threshold);
	if (r == 0)
		r = pm_buf_printf(b, "%sactive=%s,message=", first ? " " : ",",
				  e->active ? "true" : "false");
	if (r == 0)
		r = pm_lp_string_value(b, e->message);
	if (r == 0)
		r = pm_buf_printf(b, " %lld\n", (long long)e->time_ms);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_lp_append_module(struct pm_buf *b, const struct pm_config *cfg,
			const char *measurement, const struct pm_device *dev,
			const struct pm_device_state *st)
{
	char id[16], address[8];
	struct pm_tag tags[] = {
		{ "device_id", id },
		{ "port", dev->port },
		{ "address", address },
	};
	size_t start = b->len;
	int r;

	(void)snprintf(id, sizeof(id), "%d", dev->id);
	(void)snprintf(address, sizeof(address), "%d", dev->address);
	r = head(b, cfg, measurement, "module", tags, 3);
	if (r == 0)
		r = pm_buf_printf(b, " up=%s,consecutive_failures=%ui",
				  st->up ? "true" : "false",
				  st->consecutive_failures);
#define FIELD(name)							\
	if (r == 0)							\
		r = pm_buf_printf(b, "," #name "=%llui",		\
				  (unsigned long long)st->name);
	PM_DEVICE_COUNTERS(FIELD)
#undef FIELD
	if (r == 0)
		r = pm_buf_printf(b, " %lld\n", (long long)st->last_attempt_ms);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_lp_append_read(struct pm_buf *b, const struct pm_config *cfg,
		      const char *measurement, size_t device,
		      const struct pm_sample *s,
		      const struct pm_device_state *st)
{
	size_t start = b->len;
	int r = 0;

	if (s)
		r = pm_lp_append_sample(b, cfg, measurement, s);
	if (r == 0 && st)
		r = pm_lp_append_module(b, cfg, measurement,
					&cfg->devices[device], st);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_lp_append_watch(struct pm_buf *b, const struct pm_config *cfg,
		       const char *measurement, const struct pm_feed_fig *figs,
		       int64_t time_ms, const struct pm_alarm_event *events,
		       size_t n_events)
{
	size_t start = b->len;
	int r = 0;

	for (size_t f = 0; f < cfg->n_feeds && r == 0; f++)
		r = pm_lp_append_feed(b, cfg, measurement, f, &figs[f], time_ms);
	for (size_t i = 0; i < n_events && r == 0; i++)
		r = pm_lp_append_alarm(b, cfg, measurement, &events[i]);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}
