/* ledger_writer.c — when the daemon writes its billing ledger, what a
 * boundary's rows hold, what happens when the file cannot take them, and
 * what the log says about it (ledger_writer.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "daemon/ledger_writer.h"
#include "output/ledger.h"
#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* Boundaries kept while the file cannot take them: the counters carry all
 * energy into the next row anyway, these keep its resolution. */
#define KEPT_MAX 8
#define RETRY_NS (10 * NS_PER_S)
#define DAY_S 86400

/* A boundary waiting to be written: its rows' strings live in 'text'. */
struct kept {
	int64_t time;
	unsigned interval;
	size_t n;
	struct pm_ledger_row *rows;
	char *text;
};

struct pm_ledger_writer {
	const struct pm_config *cfg;
	struct pm_energy *energy;
	struct pm_ledger *ledger;
	char *path;			/* of the open ledger */
	unsigned interval;
	int64_t last_boundary;		/* Unix s of the last boundary taken */
	struct kept kept[KEPT_MAX];
	size_t n_kept;
	uint64_t dropped;		/* boundaries that could not be kept */
	/* the counters at the boundary before: their unmetered seconds */
	struct pm_energy_counter *prev;
	size_t n_prev;
	char **tags;			/* per input id: its tags as JSON */
	size_t n_tags;
	int err;			/* the last failure, 0 */
	char errtext[512];
	int64_t retry_ns;		/* CLOCK_MONOTONIC; 0: no retry due */
	int64_t pruned_day;
	bool raised;			/* counters raised from the ledger */
};

/* ---- what a row holds ---------------------------------------------------- */

/* Keeps the counters of this boundary (taking 'c' over) for the next. */
static void remember(struct pm_ledger_writer *w, struct pm_energy_counter *c,
		     size_t n)
{
	free(w->prev);
	w->prev = c;
	w->n_prev = n;
}

static double unmetered_before(const struct pm_ledger_writer *w, int device_id,
			       unsigned channel)
{
	const struct pm_energy_counter *c =
		pm_energy_counter_find(w->prev, w->n_prev, device_id, channel);

	return c ? c->unmetered_s : 0;
}

/* An input's own tags and the file's, as a JSON object: phase and feed
 * have columns of their own. */
static char *tags_json(const struct pm_input *in)
{
	struct pm_buf b;
	bool first = true;
	int r;

	pm_buf_init(&b, 64);
	r = pm_buf_addc(&b, '{');
	for (size_t i = 0; i < in->n_point_tags && !r; i++) {
		const struct pm_tag *t = &in->point_tags[i];

		if (!strcmp(t->key, "phase") || !strcmp(t->key, "feed"))
			continue;
		if (!first)
			r = pm_buf_addc(&b, ',');
		first = false;
		if (!r)
			r = pm_json_string(&b, t->key);
		if (!r)
			r = pm_buf_addc(&b, ':');
		if (!r)
			r = pm_json_string(&b, t->value);
	}
	if (!r)
		r = pm_buf_adds(&b, "}");
	if (r) {
		pm_buf_free(&b);
		return NULL;
	}
	return pm_buf_take(&b, NULL);
}

static void free_tags(struct pm_ledger_writer *w)
{
	for (size_t i = 0; i < w->n_tags; i++)
		free(w->tags[i]);
	free(w->tags);
	w->tags = NULL;
	w->n_tags = 0;
}

/* An input's tags as JSON, "{}" when it has none (or they could not be
 * written down). */
static const char *input_tags(const struct pm_ledger_writer *w,
			      const struct pm_input *in)
{
	return (size_t)in->id < w->n_tags && w->tags[in->id] ? w->tags[in->id]
							      : "{}";
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *str_put(char **at, const char *s)
{
	char *p = *at;
	size_t n = str_size(s);

	if (!s)
		return NULL;
	memcpy(p, s, n);
	*at += n;
	return p;
}

/* The rows of the boundary at 'time', copied, so that they outlive a
 * reload; the peaks start again. 0 or -ENOMEM. */
static int take_boundary(struct pm_ledger_writer *w, int64_t time,
			 struct kept *k)
{
	const struct pm_config *cfg = w->cfg;
	struct pm_energy_counter *c = NULL;
	size_t n = 0, text = 0, at = 0;
	char *p;
	int r;

	r = pm_energy_take_peaks(w->energy, &c, &n);
	if (r < 0)
		return r;
	for (size_t d = 0; d < cfg->n_devices; d++)
		for (size_t i = 0; i < cfg->devices[d].n_inputs; i++) {
			const struct pm_input *in = &cfg->devices[d].inputs[i];

			text += str_size(in->name) + str_size(in->phase) +
				str_size(in->feed >= 0 ? cfg->feeds[in->feed].name
						       : NULL) +
				str_size(input_tags(w, in));
		}
	k->rows = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*k->rows));
	k->text = malloc(text ? text : 1);
	if (!k->rows || !k->text) {
		free(k->rows);
		free(k->text);
		free(c);
		return -ENOMEM;
	}
	p = k->text;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t i = 0; i < dev->n_inputs; i++) {
			const struct pm_input *in = &dev->inputs[i];
			const struct pm_energy_counter *ct =
				pm_energy_counter_find(c, n, dev->id, in->channel);
			struct pm_ledger_row *row = &k->rows[at];

			if (!ct)
				continue;
			row->c.device_id = dev->id;
			row->c.channel = pm_channel_letter(in->channel);
			row->c.name = str_put(&p, in->name);
			row->c.phase = str_put(&p, in->phase);
			row->c.feed = str_put(&p, in->feed >= 0
					      ? cfg->feeds[in->feed].name : NULL);
			row->c.voltage = in->voltage;
			row->c.power_factor = in->power_factor;
			row->c.breaker = in->breaker;
			row->c.tags = str_put(&p, input_tags(w, in));
			row->energy_wh = ct->energy_wh;
			row->charge_ah = ct->charge_ah;
			row->peak_a = ct->has_peak ? ct->peak_a : NAN;
			row->unmetered_s = fmax(0, ct->unmetered_s -
						unmetered_before(w, dev->id,
								 in->channel));
			at++;
		}
	}
	k->n = at;
	k->time = time;
	k->interval = w->interval;
	remember(w, c, n);
	return 0;
}

static void kept_free(struct kept *k)
{
	free(k->rows);
	free(k->text);
	memset(k, 0, sizeof(*k));
}

/* ---- the file ------------------------------------------------------------ */

/* A failure, logged once until it changes or goes. */
static void failed(struct pm_ledger_writer *w, int err, const char *text)
{
	if (err != w->err || strcmp(text, w->errtext))
		log_err("ledger: %s; %zu boundar%s kept in memory, retrying "
			"every %lld s (polling and InfluxDB go on)", text,
			w->n_kept, w->n_kept == 1 ? "y" : "ies",
			(long long)(RETRY_NS / NS_PER_S));
	w->err = err;
	(void)snprintf(w->errtext, sizeof(w->errtext), "%s", text);
	w->retry_ns = pm_mono_ns() + RETRY_NS;
}

/* The counters a crash may have left behind the ledger's newest rows. */
static void raise_counters(struct pm_ledger_writer *w)
{
	const struct pm_config *cfg = w->cfg;
	size_t raised = 0;

	w->raised = true;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t i = 0; i < dev->n_inputs; i++) {
			char ch = pm_channel_letter(dev->inputs[i].channel);
			double wh, ah;

			if (pm_ledger_last(w->ledger, dev->id, ch, &wh, &ah) == 0 &&
			    pm_energy_raise(w->energy, dev->id,
					    dev->inputs[i].channel, wh, ah))
				raised++;
		}
	}
	if (raised)
		log_notice("ledger: %zu energy counters raised to their newest "
			   "ledger rows (the state file was older)", raised);
}

static int open_ledger(struct pm_ledger_writer *w)
{
	char err[512];
	int r;

	if (w->ledger)
		return 0;
	r = pm_ledger_open(&w->ledger, w->path, PM_LEDGER_WRITE, err,
			   sizeof(err));
	if (r < 0) {
		w->ledger = NULL;
		failed(w, r, err);
		return r;
	}
	if (!w->raised)
		raise_counters(w);
	return 0;
}

/* Writes what is kept, oldest first. */
static void flush(struct pm_ledger_writer *w)
{
	size_t done = 0;
	char err[512];

	if (w->n_kept == 0 || open_ledger(w) < 0)
		return;
	while (done < w->n_kept) {
		struct kept *k = &w->kept[done];
		int64_t t0 = pm_mono_ns();
		int r = pm_ledger_append(w->ledger, k->time, k->interval,
					 k->rows, k->n, err, sizeof(err));

		if (r < 0) {
			/* a damaged file is opened afresh next time */
			if (r == -PM_EFRAME) {
				pm_ledger_close(w->ledger);
				w->ledger = NULL;
			}
			break;
		}
		log_debug("ledger: boundary %lld, %zu rows in %.1f ms",
			  (long long)k->time, k->n,
			  (double)(pm_mono_ns() - t0) / NS_PER_MS);
		kept_free(k);
		done++;
	}
	memmove(w->kept, w->kept + done, (w->n_kept - done) * sizeof(*w->kept));
	w->n_kept -= done;
	memset(w->kept + w->n_kept, 0, done * sizeof(*w->kept));
	if (w->n_kept) {
		failed(w, -EIO, err);
	} else if (w->err) {
		log_notice("ledger: %s written again", w->path);
		w->err = 0;
		w->errtext[0] = '\0';
		w->retry_ns = 0;
	}
}

static void prune(struct pm_ledger_writer *w, int64_t now_s)
{
	unsigned days = w->cfg->ledger.retention_days;
	char err[512];

	if (!days || !w->ledger || now_s / DAY_S == w->pruned_day)
		return;
	w->pruned_day = now_s / DAY_S;
	if (pm_ledger_prune(w->ledger, now_s - (int64_t)days * DAY_S, err,
			    sizeof(err)) < 0)
		log_warning("ledger: cannot remove rows older than %u days: %s",
			    days, err);
}

/* ---- the schedule -------------------------------------------------------- */

static int64_t boundary_of(int64_t now_ms, unsigned interval)
{
	return now_ms / 1000 / interval * interval;
}

static void writer_free(struct pm_ledger_writer *w)
{
	for (size_t i = 0; i < w->n_kept; i++)
		kept_free(&w->kept[i]);
	if (w->ledger)
		pm_ledger_close(w->ledger);
	free_tags(w);
	free(w->prev);
	free(w->path);
	free(w);
}

void pm_ledger_writer_configure(struct pm_ledger_writer **wp,
				const struct pm_config *cfg,
				struct pm_energy *energy)
{
	struct pm_ledger_writer *w = *wp;

	if (!cfg->ledger.enabled || !cfg->ledger.path || !energy) {
		if (w) {
			if (w->n_kept)
				log_warning("ledger: turned off with %zu "
					    "boundaries not written", w->n_kept);
			writer_free(w);
		}
		*wp = NULL;
		return;
	}
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w) {
			log_err("ledger: out of memory; no ledger is written");
			return;
		}
		*wp = w;
	}
	if (w->path && strcmp(w->path, cfg->ledger.path)) {
		log_info("ledger: moving from %s to %s", w->path,
			 cfg->ledger.path);
		if (w->ledger)
			pm_ledger_close(w->ledger);
		w->ledger = NULL;
		free(w->path);
		w->path = NULL;
	}
	if (!w->path)
		w->path = strdup(cfg->ledger.path);
	w->cfg = cfg;
	w->energy = energy;
	if (w->interval != cfg->ledger.interval) {
		w->interval = cfg->ledger.interval;
		w->last_boundary = boundary_of(pm_now_ms(), w->interval);
	}
	free_tags(w);
	w->tags = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*w->tags));
	if (w->tags) {
		w->n_tags = cfg->n_inputs;
		for (size_t d = 0; d < cfg->n_devices; d++)
			for (size_t i = 0; i < cfg->devices[d].n_inputs; i++) {
				const struct pm_input *in =
					&cfg->devices[d].inputs[i];

				w->tags[in->id] = tags_json(in);
			}
	}
	if (!w->prev) {
		struct pm_energy_counter *c = NULL;
		size_t n = 0;

		if (pm_energy_counters(energy, &c, &n) == 0)
			remember(w, c, n);
	}
	/* open now: the counters are raised before the first sample */
	if (w->path && open_ledger(w) == 0 && !w->err)
		log_info("ledger: a row per circuit every %u s in %s",
			 w->interval, w->path);
}

int64_t pm_ledger_writer_run(struct pm_ledger_writer *w, int64_t now_ns)
{
	int64_t now_ms = pm_now_ms(), b, next;

	if (!w)
		return INT64_MAX;
	b = boundary_of(now_ms, w->interval);
	if (b > w->last_boundary) {
		struct kept k = { 0 };

		w->last_boundary = b;
		if (take_boundary(w, b, &k) < 0) {
			log_err("ledger: out of memory; the boundary at %lld is "
				"not written", (long long)b);
		} else {
			if (w->n_kept == KEPT_MAX) {
				/* the oldest goes: its energy is in the
				 * counters of the next row */
				kept_free(&w->kept[0]);
				memmove(w->kept, w->kept + 1,
					(KEPT_MAX - 1) * sizeof(*w->kept));
				w->n_kept--;
				w->dropped++;
			}
			w->kept[w->n_kept++] = k;
			w->retry_ns = 0;
		}
	}
	if (w->n_kept && (!w->retry_ns || now_ns >= w->retry_ns))
		flush(w);
	prune(w, now_ms / 1000);
	next = ((b + w->interval) * 1000 - now_ms) * NS_PER_MS;
	if (w->n_kept && w->retry_ns && w->retry_ns - now_ns < next)
		next = w->retry_ns - now_ns;
	return next > 0 ? next : 0;
}

void pm_ledger_writer_status(struct pm_ledger_writer *w, struct pm_buf *out)
{
	if (!w)
		return;
	if (w->err)
		(void)pm_buf_printf(out, "ledger failing (%zu boundaries kept)",
				    w->n_kept);
	else
		(void)pm_buf_adds(out, "ledger ok");
}

void pm_ledger_writer_close(struct pm_ledger_writer *w)
{
	if (!w)
		return;
	if (w->n_kept)
		log_warning("ledger: stopping with %zu boundaries not written to "
			    "%s (their energy is in the counters of the next "
			    "row)", w->n_kept, w->path);
	writer_free(w);
}
