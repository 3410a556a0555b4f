/* report.c — `powermeter report`'s figures from the ledger: one key-range
 * scan of the readings in (from, to] inside one read transaction, dense
 * arrays per description, circuit and group, nothing allocated per row.
 * The semantics are in report.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include <powermeter/powermeter.h>

#include "output/report.h"

#define CIRCUIT_MASK ((INT64_C(1) << PM_LEDGER_CIRCUIT_BITS) - 1)
/* The longest interval a boundary may close (the config's "ledger.interval"
 * is at most an hour): a row reaches back at most this far. */
#define INTERVAL_MAX 3600
/* Windows kept open per group: a row at t reaches windows after t - 3600 s
 * (at most 5), so a window 8 ahead of one means that one is complete. */
#define RING 8
/* Times up to here (year 141 000) keep time << 16 inside int64_t. */
#define TIME_MAX (INT64_C(1) << 42)

struct tagset {
	size_t n;
	char **keys, **values;
};

/* One row of "circuits": a description of a circuit. */
struct desc {
	int64_t id;
	int device_id;
	char channel;
	int64_t since;
	char *name, *phase, *feed;
	struct tagset tags;
	size_t ident, group;
	const struct pm_tariff_rates *rates;
	bool used;			/* a reading in the period */
};

/* A circuit: an identity (device id, channel) and its descriptions
 * descs[first .. first + n). */
struct ident {
	size_t first, n;
	int64_t min_since;
	bool seen;			/* a reading in the period */
	bool has_prev;
	int64_t prev_mwh, prev_t;
	int64_t acc;			/* the period accounted for up to here */
	size_t last_group, last_desc;
};

struct window {
	int64_t w;			/* window number (time / 900), -1: free */
	double wh;
};

/* A group's running figures. */
struct acc {
	const char *label;		/* borrowed from a description */
	int64_t energy_mwh;
	double expected_s, metered_s, cost;
	struct window ring[RING];
	double peak_wh;			/* < 0: none */
	int64_t peak_w;
	size_t rows, n_circuits;
	const struct pm_tariff_rates *rates;
	bool mixed_rates;
};

struct run {
	sqlite3 *db;
	const struct pm_report_query *q;
	char *err;
	size_t size;
	struct desc *descs;
	size_t n_descs;
	int32_t *desc_of_id;		/* circuits.id -> descs index, -1 */
	size_t n_ids;
	struct ident *idents;
	size_t n_idents;
	struct acc *groups;		/* n_groups, then the total */
	size_t n_groups;
	sqlite3_stmt *readings, *boundaries, *before, *point;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct run *r, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (r->err && r->size)
		vsnprintf(r->err, r->size, fmt, ap);
	va_end(ap);
	return e;
}

static int sql_fail(struct run *r, int rc, const char *what)
{
	int e;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		e = -EBUSY;
		break;
	case SQLITE_NOMEM:
		e = -ENOMEM;
		break;
	case SQLITE_IOERR:
		e = -EIO;
		break;
	default:		/* corrupt, not a database, no such table */
		e = -PM_EFRAME;
		break;
	}
	return fail(r, e, "%s: %s", what, sqlite3_errmsg(r->db));
}

static int prepare(struct run *r, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(r->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : sql_fail(r, rc, "reading the ledger");
}

static char *dup_column(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s ? strdup((const char *)s) : NULL;
}

/* ---- local time ------------------------------------------------------------ */

static void local_text(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm) ||
	    !strftime(buf, size, "%Y-%m-%d %H:%M %Z", &tm))
		snprintf(buf, size, "@%lld", (long long)t);
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* The Unix time of local y-m-d h:mi:s: the first when it falls twice,
 * -ERANGE when it does not exist (skipped by daylight saving). */
static int local_to_unix(int y, int mo, int d, int h, int mi, int s,
			 int64_t *out)
{
	static const int isdst[] = { 1, 0, -1 };
	bool found = false;
	int64_t best = 0;

	for (size_t i = 0; i < sizeof(isdst) / sizeof(isdst[0]); i++) {
		struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1,
				 .tm_mday = d, .tm_hour = h, .tm_min = mi,
				 .tm_sec = s, .tm_isdst = isdst[i] };
		struct tm back;
		time_t t = mktime(&tm);

		if (!localtime_r(&t, &back) || back.tm_year != y - 1900 ||
		    back.tm_mon != mo - 1 || back.tm_mday != d ||
		    back.tm_hour != h || back.tm_min != mi || back.tm_sec != s)
			continue;
		if (!found || (int64_t)t < best)
			best = (int64_t)t;
		found = true;
	}
	if (!found)
		return -ERANGE;
	*out = best;
	return 0;
}

/* Local midnight starting y-m-d; where a zone skips midnight, the first
 * moment of that day. */
static int64_t local_midnight(int y, int mo, int d)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_isdst = -1 };
	int64_t t;

	if (local_to_unix(y, mo, d, 0, 0, 0, &t) == 0)
		return t;
	return (int64_t)mktime(&tm);
}

/* n decimal digits at s into *v. */
static bool digits(const char *s, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return true;
}

static bool parse_date(const char *s, int *y, int *mo, int *d)
{
	return digits(s, 4, y) && s[4] == '-' && digits(s + 5, 2, mo) &&
	       s[7] == '-' && digits(s + 8, 2, d) && *y >= 1970 &&
	       *mo >= 1 && *mo <= 12 && *d >= 1 && *d <= month_days(*y, *mo);
}

int pm_report_parse_time(const char *s, int64_t *t)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	size_t len = strlen(s);

	if ((len != 10 && len != 16 && len != 19) || !parse_date(s, &y, &mo, &d))
		return -EINVAL;
	if (len > 10 && (s[10] != 'T' || !digits(s + 11, 2, &h) ||
			 s[13] != ':' || !digits(s + 14, 2, &mi) ||
			 h > 23 || mi > 59))
		return -EINVAL;
	if (len > 16 && (s[16] != ':' || !digits(s + 17, 2, &sec) || sec > 59))
		return -EINVAL;
	return local_to_unix(y, mo, d, h, mi, sec, t);
}

int pm_report_parse_month(const char *s, int64_t *from, int64_t *to)
{
	int y, mo;

	if (strlen(s) != 7 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || y < 1970 || mo < 1 || mo > 12)
		return -EINVAL;
	*from = local_midnight(y, mo, 1);
	*to = mo == 12 ? local_midnight(y + 1, 1, 1) : local_midnight(y, mo + 1, 1);
	return 0;
}

/* Local calendar days in [from, to), each day counted by the share of its
 * own length (23, 24 or 25 hours) that lies in the period. */
static double period_days(int64_t from, int64_t to)
{
	double days = 0;
	int64_t t = from;

	while (t < to) {
		time_t tt = (time_t)t;
		struct tm tm;
		int64_t d0, d1;

		if (!localtime_r(&tt, &tm))
			return (double)(to - from) / 86400;
		d0 = local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
		tm.tm_mday++;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		(void)mktime(&tm);	/* normalises the day after */
		d1 = local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
		if (d1 <= t || d1 <= d0)	/* a zone going mad: stop */
			return days + (double)(to - t) / 86400;
		days += (double)((d1 < to ? d1 : to) - t) / (double)(d1 - d0);
		t = d1;
	}
	return days;
}

/* ---- the descriptions ---------------------------------------------------- */

static void tagset_free(struct tagset *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		free(ts->keys[i]);
		free(ts->values[i]);
	}
	free(ts->keys);
	free(ts->values);
}

static int tagset_parse(struct tagset *ts, const char *text)
{
	json_object *o = text ? json_tokener_parse(text) : NULL;
	size_t n = 0;
	int r = 0;

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -PM_EFRAME;
	}
	ts->keys = calloc((size_t)json_object_object_length(o) + 1, sizeof(char *));
	ts->values = calloc((size_t)json_object_object_length(o) + 1, sizeof(char *));
	if (!ts->keys || !ts->values)
		r = -ENOMEM;
	json_object_object_foreach(o, k, v) {
		if (r < 0 || !v)	/* null: no such tag */
			continue;
		ts->keys[n] = strdup(k);
		ts->values[n] = strdup(json_object_get_string(v));
		if (!ts->keys[n] || !ts->values[n]) {
			free(ts->keys[n]);
			free(ts->values[n]);
			r = -ENOMEM;
			continue;
		}
		n++;
	}
	ts->n = n;
	json_object_put(o);
	return r;
}

static const char *tagset_get(const struct tagset *ts, const char *key)
{
	for (size_t i = 0; i < ts->n; i++)
		if (!strcmp(ts->keys[i], key))
			return ts->values[i];
	return NULL;
}

/* Every description, grouped into identities (descs sorted by device id,
 * channel, id), and the dense map from circuits.id. */
static int load_descs(struct run *r)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int64_t max_id = -1;
	int rc, e;

	e = prepare(r, "SELECT id, device_id, channel, name, phase, feed, tags, "
		    "since FROM circuits ORDER BY device_id, channel, id", &st);
	if (e < 0)
		return e;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct desc *d;
		const unsigned char *ch = sqlite3_column_text(st, 2);

		if (r->n_descs == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct desc *nd = realloc(r->descs, ncap * sizeof(*nd));

			if (!nd) {
				e = -ENOMEM;
				goto out;
			}
			r->descs = nd;
			cap = ncap;
		}
		d = &r->descs[r->n_descs];
		memset(d, 0, sizeof(*d));
		r->n_descs++;
		d->id = sqlite3_column_int64(st, 0);
		d->device_id = sqlite3_column_int(st, 1);
		d->channel = ch && ch[0] >= 'a' && ch[0] <= 'p' && !ch[1] ? (char)ch[0] : 0;
		d->since = sqlite3_column_int64(st, 7);
		d->name = dup_column(st, 3);
		d->phase = dup_column(st, 4);
		d->feed = dup_column(st, 5);
		if (d->id < 0 || d->id > PM_LEDGER_CIRCUIT_MAX || !d->channel) {
			e = fail(r, -PM_EFRAME, "damaged ledger: circuit description %lld "
				 "has id or channel out of range", (long long)d->id);
			goto out;
		}
		if (!d->name) {
			e = -ENOMEM;
			goto out;
		}
		e = tagset_parse(&d->tags, (const char *)sqlite3_column_text(st, 6));
		if (e == -PM_EFRAME)
			e = fail(r, e, "damaged ledger: the tags of circuit description "
				 "%lld are not a JSON object", (long long)d->id);
		if (e < 0)
			goto out;
		if (d->id > max_id)
			max_id = d->id;
	}
	if (rc != SQLITE_DONE) {
		e = sql_fail(r, rc, "reading the ledger's circuits");
		goto out;
	}
	r->n_ids = (size_t)(max_id + 1);
	r->desc_of_id = malloc((r->n_ids ? r->n_ids : 1) * sizeof(int32_t));
	r->idents = calloc(r->n_descs ? r->n_descs : 1, sizeof(*r->idents));
	if (!r->desc_of_id || !r->idents) {
		e = -ENOMEM;
		goto out;
	}
	memset(r->desc_of_id, 0xff, r->n_ids * sizeof(int32_t));
	for (size_t i = 0; i < r->n_descs; i++) {
		struct desc *d = &r->descs[i];
		struct ident *x = r->n_idents ? &r->idents[r->n_idents - 1] : NULL;

		if (r->desc_of_id[d->id] >= 0) {
			e = fail(r, -PM_EFRAME, "damaged ledger: circuit description "
				 "%lld twice", (long long)d->id);
			goto out;
		}
		r->desc_of_id[d->id] = (int32_t)i;
		if (!x || r->descs[x->first].device_id != d->device_id ||
		    r->descs[x->first].channel != d->channel) {
			x = &r->idents[r->n_idents++];
			x->first = i;
			x->min_since = d->since;
		}
		x->n++;
		if (d->since < x->min_since)
			x->min_since = d->since;
		d->ident = (size_t)(x - r->idents);
	}
	e = 0;
out:
	sqlite3_finalize(st);
	return e;
}

/* ---- groups ---------------------------------------------------------------- */

static const char *desc_label(const struct run *r, const struct desc *d)
{
	switch (r->q->by) {
	case PM_REPORT_BY_PHASE:
		return d->phase;
	case PM_REPORT_BY_FEED:
		return d->feed;
	case PM_REPORT_BY_TAG:
		return tagset_get(&d->tags, r->q->tag);
	default:
		return d->name;
	}
}

/* Each description's group, and its rates. With --by circuit a group is an
 * identity; otherwise one per distinct label, NULL ("(none)") included. */
static int make_groups(struct run *r)
{
	const struct pm_tariff *t = r->q->tariff;

	if (r->q->by == PM_REPORT_BY_TAG) {
		bool known = false;

		for (size_t i = 0; i < r->n_descs && !known; i++)
			known = tagset_get(&r->descs[i].tags, r->q->tag) != NULL;
		if (!known)
			return fail(r, -ENOKEY, "no circuit in the ledger has "
				    "the tag \"%s\"", r->q->tag);
	}
	/* at most one group per description or identity, and the total */
	r->groups = calloc(r->n_descs + 1, sizeof(*r->groups));
	if (!r->groups)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_descs; i++) {
		struct desc *d = &r->descs[i];
		const char *label = desc_label(r, d);
		size_t g;

		if (r->q->by == PM_REPORT_BY_CIRCUIT) {
			g = d->ident;
			if (g >= r->n_groups)
				r->n_groups = g + 1;
		} else {
			for (g = 0; g < r->n_groups; g++) {
				const char *l = r->groups[g].label;

				if (l == label || (l && label && !strcmp(l, label)))
					break;
			}
			if (g == r->n_groups)
				r->n_groups++;
		}
		r->groups[g].label = label;
		d->group = g;
		if (t)
			d->rates = pm_tariff_rates_for(t, d->tags.n,
				(const char *const *)d->tags.keys,
				(const char *const *)d->tags.values);
	}
	for (size_t g = 0; g <= r->n_groups; g++) {
		for (size_t k = 0; k < RING; k++)
			r->groups[g].ring[k].w = -1;
		r->groups[g].peak_wh = -1;
	}
	return 0;
}

static void window_close(struct acc *a, const struct window *w)
{
	if (w->wh > a->peak_wh || (w->wh == a->peak_wh && w->w < a->peak_w)) {
		a->peak_wh = w->wh;
		a->peak_w = w->w;
	}
}

static inline void window_add(struct acc *a, int64_t w, double wh)
{
	struct window *s = &a->ring[w % RING];

	if (s->w != w) {
		if (s->w >= 0)
			window_close(a, s);
		s->w = w;
		s->wh = 0;
	}
	s->wh += wh;
}

/* wh spread evenly over (s, t] into 15-minute windows. */
static inline void spread(struct acc *a, int64_t s, int64_t t, double wh)
{
	int64_t w0 = s / PM_REPORT_PEAK_WINDOW, w1 = (t - 1) / PM_REPORT_PEAK_WINDOW;

	if (w0 == w1) {
		window_add(a, w0, wh);
		return;
	}
	for (int64_t w = w0; w <= w1; w++) {
		int64_t lo = w * PM_REPORT_PEAK_WINDOW, hi = lo + PM_REPORT_PEAK_WINDOW;

		if (lo < s)
			lo = s;
		if (hi > t)
			hi = t;
		window_add(a, w, wh * (double)(hi - lo) / (double)(t - s));
	}
}

/* ---- the scan -------------------------------------------------------------- */

/* The newest reading of identity x before time t (at or before 'from': x has
 * none in between), found boundary by boundary backwards with point look-ups
 * of its descriptions' keys: a circuit present at 'from' costs one. */
static int find_prev(struct run *r, struct ident *x, int64_t t)
{
	int rc = SQLITE_DONE, e = 0;

	if (x->min_since >= t)
		return 0;
	sqlite3_bind_int64(r->before, 1, t);
	sqlite3_bind_int64(r->before, 2, x->min_since);
	while (!x->has_prev && (rc = sqlite3_step(r->before)) == SQLITE_ROW) {
		int64_t b = sqlite3_column_int64(r->before, 0);

		for (size_t k = x->first; k < x->first + x->n; k++) {
			const struct desc *d = &r->descs[k];

			if (d->since > b)
				continue;
			sqlite3_bind_int64(r->point, 1,
					   (b << PM_LEDGER_CIRCUIT_BITS) | d->id);
			rc = sqlite3_step(r->point);
			if (rc == SQLITE_ROW) {
				x->has_prev = true;
				x->prev_mwh = sqlite3_column_int64(r->point, 0);
				x->prev_t = b;
			}
			sqlite3_reset(r->point);
			if (rc == SQLITE_ROW)
				break;
			if (rc != SQLITE_DONE) {
				e = sql_fail(r, rc, "reading the ledger");
				goto out;
			}
		}
	}
	if (!x->has_prev && rc != SQLITE_DONE)
		e = sql_fail(r, rc, "reading the ledger's boundaries");
out:
	sqlite3_reset(r->before);
	return e;
}

static int scan(struct run *r, struct pm_report *rep)
{
	const int64_t from = r->q->from, to = r->q->to;
	const bool priced = r->q->tariff != NULL;
	struct acc *total = &r->groups[r->n_groups];
	int64_t cur_t = -1, cur_i = 0;
	int wday = 0, minute = 0, rc, e;

	sqlite3_bind_int64(r->readings, 1, (from + 1) << PM_LEDGER_CIRCUIT_BITS);
	sqlite3_bind_int64(r->readings, 2, (to + 1) << PM_LEDGER_CIRCUIT_BITS);
	sqlite3_bind_int64(r->boundaries, 1, from);
	sqlite3_bind_int64(r->boundaries, 2, to);
	while ((rc = sqlite3_step(r->readings)) == SQLITE_ROW) {
		const int64_t key = sqlite3_column_int64(r->readings, 0);
		const int64_t t = key >> PM_LEDGER_CIRCUIT_BITS;
		const int64_t id = key & CIRCUIT_MASK;
		const int64_t mwh = sqlite3_column_int64(r->readings, 1);
		const int64_t unmetered = sqlite3_column_int64(r->readings, 2);
		struct desc *d;
		struct ident *x;
		struct acc *a;
		int32_t di;

		if (t != cur_t) {
			int64_t b = -1;

			while (b < t && (rc = sqlite3_step(r->boundaries)) == SQLITE_ROW) {
				b = sqlite3_column_int64(r->boundaries, 0);
				cur_i = sqlite3_column_int64(r->boundaries, 1);
			}
			if (b < t && rc != SQLITE_DONE)
				return sql_fail(r, rc, "reading the ledger's boundaries");
			if (b != t) {
				char when[64];

				local_text(t, when, sizeof(when));
				return fail(r, -PM_EFRAME, "damaged ledger: readings at %s "
					    "without their boundary", when);
			}
			if (cur_i < 1 || cur_i > INTERVAL_MAX)
				return fail(r, -PM_EFRAME, "damaged ledger: the boundary "
					    "at %lld has an interval of %lld s (1..%d)",
					    (long long)t, (long long)cur_i, INTERVAL_MAX);
			if (cur_i > PM_REPORT_PEAK_WINDOW &&
			    (unsigned)cur_i > rep->peak_resolution_s)
				rep->peak_resolution_s = (unsigned)cur_i;
			if (priced) {
				/* the price of the interval's local start */
				time_t st = (time_t)(t - cur_i);
				struct tm tm;

				if (!localtime_r(&st, &tm))
					return fail(r, -EINVAL, "no local time for %lld",
						    (long long)st);
				wday = tm.tm_wday;
				minute = tm.tm_hour * 60 + tm.tm_min;
			}
			cur_t = t;
		}
		di = id < (int64_t)r->n_ids ? r->desc_of_id[id] : -1;
		if (di < 0)
			return fail(r, -PM_EFRAME, "damaged ledger: readings of circuit "
				    "%lld, which has no description", (long long)id);
		d = &r->descs[di];
		x = &r->idents[d->ident];
		a = &r->groups[d->group];
		if (!x->seen) {
			x->seen = true;
			x->acc = from;
			e = find_prev(r, x, t);
			if (e < 0)
				return e;
		}
		/* the circuit is expected from where its last row left off */
		a->expected_s += (double)(t - x->acc);
		total->expected_s += (double)(t - x->acc);
		x->acc = t;
		d->used = true;
		a->rows++;
		rep->n_rows++;
		if (x->has_prev && mwh >= x->prev_mwh) {
			const int64_t s = t - cur_i > x->prev_t ? t - cur_i : x->prev_t;
			const int64_t span = t - s;
			const int64_t delta = mwh - x->prev_mwh;
			const int64_t in = s < from ? t - from : span;
			double metered = (double)(unmetered < span ? span - unmetered : 0);

			if (in < span)
				metered = metered * (double)in / (double)span;
			a->metered_s += metered;
			total->metered_s += metered;
			a->energy_mwh += delta;
			total->energy_mwh += delta;
			spread(a, s, t, (double)delta / 1000);
			spread(total, s, t, (double)delta / 1000);
			if (priced)
				a->cost += (double)delta / 1e6 *
					   pm_tariff_price(d->rates, wday, minute);
		} else if (x->has_prev) {
			rep->n_resets++;	/* a new baseline */
		}
		x->has_prev = true;
		x->prev_mwh = mwh;
		x->prev_t = t;
		x->last_group = d->group;
		x->last_desc = (size_t)di;
	}
	if (rc != SQLITE_DONE)
		return sql_fail(r, rc, "reading the ledger's readings");
	return 0;
}

/* ---- the result ------------------------------------------------------------ */

static double cents(double x)
{
	return round(x * 100) / 100;
}

static int cmp_circuit(const void *a, const void *b)
{
	const struct pm_report_group *x = a, *y = b;

	if (x->device_id != y->device_id)
		return x->device_id < y->device_id ? -1 : 1;
	return (x->channel > y->channel) - (x->channel < y->channel);
}

static int cmp_label(const void *a, const void *b)
{
	const struct pm_report_group *x = a, *y = b;

	if (!x->label || !y->label)
		return !x->label - !y->label;	/* "(none)" last */
	return strcmp(x->label, y->label);
}

static void finish_group(const struct run *r, struct acc *a,
			 struct pm_report_group *g, double days)
{
	const struct pm_tariff *t = r->q->tariff;

	for (size_t k = 0; k < RING; k++)
		if (a->ring[k].w >= 0)
			window_close(a, &a->ring[k]);
	g->n_circuits = a->n_circuits;
	g->energy_kwh = (double)a->energy_mwh / 1e6;
	g->peak_kw = a->peak_wh < 0 ? NAN :
		     a->peak_wh / 1000 * (3600.0 / PM_REPORT_PEAK_WINDOW);
	g->peak_start = a->peak_wh < 0 ? 0 : a->peak_w * PM_REPORT_PEAK_WINDOW;
	g->expected_s = a->expected_s;
	g->metered_s = a->metered_s;
	g->standing_days = days;
	if (t) {
		const struct pm_tariff_rates *rates =
			a->rates && !a->mixed_rates ? a->rates : &t->rates;

		g->standing_charge = rates->standing_charge;
		g->cost.energy = cents(a->cost);
		g->cost.standing = cents(rates->standing_charge * days);
		g->cost.net = cents(g->cost.energy + g->cost.standing);
		g->cost.vat = cents(g->cost.net * t->vat / 100);
		g->cost.total = cents(g->cost.net + g->cost.vat);
	}
}

static int cmp_pair(const void *a, const void *b)
{
	const size_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

static int build(struct run *r, struct pm_report *rep)
{
	const int64_t to = r->q->to;
	struct acc *total = &r->groups[r->n_groups];
	double days = period_days(r->q->from, to);
	size_t *pairs = malloc(2 * (r->n_descs ? r->n_descs : 1) * sizeof(size_t));
	size_t n_pairs = 0, n = 0;

	if (!pairs)
		return -ENOMEM;
	/* the rest of the period belongs to each circuit's last group */
	for (size_t i = 0; i < r->n_idents; i++) {
		struct ident *x = &r->idents[i];

		if (!x->seen || x->acc >= to)
			continue;
		r->groups[x->last_group].expected_s += (double)(to - x->acc);
		total->expected_s += (double)(to - x->acc);
	}
	/* circuits per group; the rates a group's standing charge follows */
	for (size_t i = 0; i < r->n_descs; i++) {
		const struct desc *d = &r->descs[i];
		struct acc *a = &r->groups[d->group];

		if (!d->used)
			continue;
		pairs[2 * n_pairs] = d->group;
		pairs[2 * n_pairs + 1] = d->ident;
		n_pairs++;
		if (a->rates && a->rates != d->rates)
			a->mixed_rates = true;
		a->rates = d->rates;
	}
	qsort(pairs, n_pairs, 2 * sizeof(size_t), cmp_pair);
	for (size_t i = 0; i < n_pairs; i++)
		if (i == 0 || cmp_pair(&pairs[2 * i], &pairs[2 * i - 2]))
			r->groups[pairs[2 * i]].n_circuits++;
	for (size_t i = 0; i < r->n_idents; i++)
		total->n_circuits += r->idents[i].seen;
	free(pairs);

	rep->groups = calloc(r->n_groups ? r->n_groups : 1, sizeof(*rep->groups));
	if (!rep->groups)
		return -ENOMEM;
	for (size_t g = 0; g < r->n_groups; g++) {
		struct acc *a = &r->groups[g];
		struct pm_report_group *out = &rep->groups[n];

		if (!a->rows)
			continue;
		if (r->q->by == PM_REPORT_BY_CIRCUIT) {
			/* the circuit's newest name in the period */
			const struct ident *x = &r->idents[g];
			const struct desc *d = &r->descs[x->last_desc];

			a->label = d->name;
			out->device_id = d->device_id;
			out->channel = d->channel;
		}
		if (a->label && !(out->label = strdup(a->label)))
			return -ENOMEM;
		finish_group(r, a, out, days);
		rep->n_groups = ++n;
	}
	qsort(rep->groups, n, sizeof(*rep->groups),
	      r->q->by == PM_REPORT_BY_CIRCUIT ? cmp_circuit : cmp_label);
	finish_group(r, total, &rep->total, days);
	rep->total.standing_charge = 0;
	memset(&rep->total.cost, 0, sizeof(rep->total.cost));
	for (size_t g = 0; g < n; g++) {
		const struct pm_report_cost *c = &rep->groups[g].cost;

		rep->total.standing_charge += rep->groups[g].standing_charge;
		rep->total.cost.energy = cents(rep->total.cost.energy + c->energy);
		rep->total.cost.standing = cents(rep->total.cost.standing + c->standing);
		rep->total.cost.net = cents(rep->total.cost.net + c->net);
		rep->total.cost.vat = cents(rep->total.cost.vat + c->vat);
		rep->total.cost.total = cents(rep->total.cost.total + c->total);
	}
	return 0;
}

/* What the ledger holds, for the message about an empty period. */
static void ledger_span(struct run *r, char *buf, size_t size)
{
	sqlite3_stmt *st = NULL;

	snprintf(buf, size, "the ledger has no rows yet");
	if (prepare(r, "SELECT min(time), max(time) FROM boundaries", &st) == 0 &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL) {
		char a[64], b[64];

		local_text(sqlite3_column_int64(st, 0), a, sizeof(a));
		local_text(sqlite3_column_int64(st, 1), b, sizeof(b));
		snprintf(buf, size, "the ledger has rows from %s to %s", a, b);
	}
	sqlite3_finalize(st);
}

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n_descs; i++) {
		free(r->descs[i].name);
		free(r->descs[i].phase);
		free(r->descs[i].feed);
		tagset_free(&r->descs[i].tags);
	}
	free(r->descs);
	free(r->desc_of_id);
	free(r->idents);
	free(r->groups);
	sqlite3_finalize(r->readings);
	sqlite3_finalize(r->boundaries);
	sqlite3_finalize(r->before);
	sqlite3_finalize(r->point);
}

int pm_report_run(struct pm_ledger *l, const struct pm_report_query *q,
		  struct pm_report **out, char *err, size_t size)
{
	struct run r = { .db = pm_ledger_db(l), .q = q, .err = err, .size = size };
	struct pm_report *rep = calloc(1, sizeof(*rep));
	char *msg = NULL;
	int e, rc;

	if (err && size)
		err[0] = '\0';
	if (!rep)
		return -ENOMEM;
	if (q->from < 0 || q->to > TIME_MAX || q->from >= q->to ||
	    (q->by == PM_REPORT_BY_TAG && (!q->tag || !*q->tag))) {
		free(rep);
		return fail(&r, -EINVAL, "invalid report query");
	}
	rep->from = q->from;
	rep->to = q->to;
	rep->peak_resolution_s = PM_REPORT_PEAK_WINDOW;
	/* one read transaction: a consistent view while the daemon appends */
	rc = sqlite3_exec(r.db, "BEGIN", NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK) {
		e = sql_fail(&r, rc, "reading the ledger");
		goto out;
	}
	e = load_descs(&r);
	if (e == 0)
		e = make_groups(&r);
	if (e == 0)
		e = prepare(&r, "SELECT key, energy_mwh, unmetered_s FROM readings "
			    "WHERE key >= ?1 AND key < ?2 ORDER BY key", &r.readings);
	if (e == 0)
		e = prepare(&r, "SELECT time, interval FROM boundaries "
			    "WHERE time > ?1 AND time <= ?2 ORDER BY time", &r.boundaries);
	if (e == 0)
		e = prepare(&r, "SELECT time FROM boundaries WHERE time < ?1 "
			    "AND time >= ?2 ORDER BY time DESC", &r.before);
	if (e == 0)
		e = prepare(&r, "SELECT energy_mwh FROM readings WHERE key = ?1",
			    &r.point);
	if (e == 0)
		e = scan(&r, rep);
	if (e == 0 && rep->n_rows == 0) {
		char a[64], b[64], span[192];

		local_text(q->from, a, sizeof(a));
		local_text(q->to, b, sizeof(b));
		ledger_span(&r, span, sizeof(span));
		e = fail(&r, -ENODATA, "no ledger rows between %s and %s; %s",
			 a, b, span);
	}
	if (e == 0)
		e = build(&r, rep);
	run_free(&r);
	(void)sqlite3_exec(r.db, "ROLLBACK", NULL, NULL, NULL);
out:
	if (e < 0) {
		pm_report_free(rep);
		return e;
	}
	*out = rep;
	return 0;
}

void pm_report_free(struct pm_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_groups; i++)
		free(r->groups[i].label);
	free(r->groups);
	free(r);
}
