/* tariff.c — the tariff file (tariff.h): its keys, the windows of each list
 * of rates checked for overlaps and gaps, and the week's price per minute. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include <powermeter/powermeter.h>

#include "config/parse.h"
#include "config/sections.h"
#include "config/tariff.h"
#include "util/errlist.h"
#include "util/fileio.h"

#define TARIFF_MAX (1024 * 1024)	/* a tariff is a few hundred bytes */
#define RATES_MAX 64			/* per list; a real tariff has a handful */
#define OVERRIDES_MAX 1024		/* each holds a 40 KiB week table */
/* A price must fit the float table with room to spare; no currency's kWh
 * costs this much. */
#define PRICE_MAX 1e9
#define GAPS_SHOWN 7			/* one a night: a week of windows */

#define DAY_MINUTES (24 * 60)
#define WEEK PM_TARIFF_WEEK_MINUTES
#define WEEK_WORDS ((WEEK + 63) / 64)

static const char *const day_names[7] = {
	"mon", "tue", "wed", "thu", "fri", "sat", "sun",
};

static const char *const top_keys[] = {
	"currency", "vat", "standing_charge", "rates", "overrides", NULL,
};
static const char *const rate_keys[] = { "price", "days", "from", "to", NULL };
static const char *const override_keys[] = { "rates", "standing_charge", NULL };

/* The minutes of the week one rate covers, Monday 00:00 first. */
struct cover {
	uint64_t w[WEEK_WORDS];
};

static bool cover_has(const struct cover *c, unsigned m)
{
	return c->w[m / 64] >> (m % 64) & 1;
}

static void cover_set(struct cover *c, unsigned m)
{
	c->w[m / 64] |= (uint64_t)1 << (m % 64);
}

/* A minute of the week as messages show it: "mon 21:00". An end (exclusive)
 * shows as the end of the day it closes: "sun 24:00", not "mon 00:00". */
static const char *week_time(unsigned m, bool end, char buf[16])
{
	unsigned day, minute;

	if (end) {
		m = (m + WEEK - 1) % WEEK;
		day = m / DAY_MINUTES;
		minute = m % DAY_MINUTES + 1;
	} else {
		day = m / DAY_MINUTES;
		minute = m % DAY_MINUTES;
	}
	(void)snprintf(buf, 16, "%s %02u:%02u", day_names[day], minute / 60,
		       minute % 60);
	return buf;
}

/* ---- "days", "from", "to" ---------------------------------------------- */

static int day_index(const char *s, size_t n)
{
	if (n != 3)
		return -1;
	for (int d = 0; d < 7; d++)
		if (!strncasecmp(s, day_names[d], 3))
			return d;
	return -1;
}

/* 's' cut to 'n' bytes and trimmed of spaces. */
static void trim(const char **s, size_t *n)
{
	while (*n && **s == ' ') {
		(*s)++;
		(*n)--;
	}
	while (*n && (*s)[*n - 1] == ' ')
		(*n)--;
}

/* "mon-fri", "sat,sun", "fri-mon", "mon": a bit per day, Monday bit 0.
 * Returns 0 after an error at 'path'. */
static unsigned parse_days(struct parse *p, const char *path, json_object *v)
{
	const char *s = json_object_get_string(v), *item = s;
	unsigned mask = 0;
	char d[DESC_CAP];

	for (;;) {
		const char *comma = strchr(item, ',');
		size_t n = comma ? (size_t)(comma - item) : strlen(item);
		const char *dash = memchr(item, '-', n);
		const char *a = item, *b = dash ? dash + 1 : item;
		size_t an = dash ? (size_t)(dash - item) : n;
		size_t bn = dash ? n - an - 1 : n;
		int from, to;

		trim(&a, &an);
		trim(&b, &bn);
		if (!an || !bn) {
			cfg_err(p, path, "%s has an empty entry (expected days like \"mon-fri\" or \"sat,sun\")",
				cfg_describe(v, d));
			return 0;
		}
		from = day_index(a, an);
		to = day_index(b, bn);
		if (from < 0 || to < 0) {
			const char *bad = from < 0 ? a : b;
			size_t bad_n = from < 0 ? an : bn;

			if (bad_n == strlen(s))
				cfg_err(p, path, "%s is not a day (mon, tue, wed, thu, fri, sat, sun)",
					cfg_describe(v, d));
			else
				cfg_err(p, path, "\"%.*s\" in %s is not a day (mon, tue, wed, thu, fri, sat, sun)",
					(int)(bad_n < 16 ? bad_n : 16), bad,
					cfg_describe(v, d));
			return 0;
		}
		for (int i = from;; i = (i + 1) % 7) {
			if (mask & 1u << i) {
				cfg_err(p, path, "%s names %s twice",
					cfg_describe(v, d), day_names[i]);
				return 0;
			}
			mask |= 1u << i;
			if (i == to)
				break;
		}
		if (!comma)
			return mask;
		item = comma + 1;
	}
}

/* "HH:MM" as minutes of the day, 00:00..23:59 (or 24:00 when 'end');
 * -1 after an error at 'path'. */
static int parse_time(struct parse *p, json_object *obj, const char *parent,
		      const char *key, bool end)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	const char *s;
	int h, m;

	(void)json_object_object_get_ex(obj, key, &v);
	s = json_object_get_string(v);
	if (strlen(s) != 5 || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4])) {
		cfg_path_key(path, parent, key);
		cfg_err(p, path, "expected a local time \"HH:MM\", got %s",
			cfg_describe(v, d));
		return -1;
	}
	h = (s[0] - '0') * 10 + s[1] - '0';
	m = (s[3] - '0') * 10 + s[4] - '0';
	if (m > 59 || h > 24 || (h == 24 && (m > 0 || !end))) {
		cfg_out_of_range(p, obj, parent, key, "%s", end ?
				 "00:00..24:00" : "00:00..23:59");
		return -1;
	}
	return h * 60 + m;
}

/* ---- one list of rates -------------------------------------------------- */

struct rate {
	float price;
	bool is_window;
	bool ok;		/* a window whose days and times are valid */
	struct cover cover;
};

/* A string key of a rate checked (type, not empty, no control characters)
 * but not kept: SET, ABSENT or BAD. */
static int check_string(struct parse *p, json_object *jr, const char *rpath,
			const char *key)
{
	char *s = NULL;
	int r = cfg_get_string(p, jr, rpath, key, 0, &s);

	free(s);
	return r;
}

/* The window of rate 'jr' (which has "days", "from" or "to") into r->cover;
 * r->ok tells whether it is valid. */
static void parse_window(struct parse *p, json_object *jr, const char *rpath,
			 struct rate *r)
{
	char path[PATH_CAP];
	unsigned mask = 0x7f;
	int from = 0, to = DAY_MINUTES, len, got;
	json_object *v;
	bool ok;

	got = check_string(p, jr, rpath, "days");
	if (got == SET) {
		(void)json_object_object_get_ex(jr, "days", &v);
		cfg_path_key(path, rpath, "days");
		mask = parse_days(p, path, v);
	}
	ok = got != BAD && mask != 0;
	got = check_string(p, jr, rpath, "from");
	if (got == SET)
		from = parse_time(p, jr, rpath, "from", false);
	ok = ok && got != BAD && from >= 0;
	got = check_string(p, jr, rpath, "to");
	if (got == SET)
		to = parse_time(p, jr, rpath, "to", true);
	ok = ok && got != BAD && to >= 0;
	if (!ok)
		return;
	/* "to" at or before "from" crosses midnight: 22:00..06:00 is 8 hours,
	 * 07:00..07:00 a whole day from 07:00. */
	len = to > from ? to - from : to + DAY_MINUTES - from;
	for (unsigned day = 0; day < 7; day++) {
		if (!(mask & 1u << day))
			continue;
		for (int k = 0; k < len; k++)
			cover_set(&r->cover, (day * DAY_MINUTES + (unsigned)from +
					      (unsigned)k) % WEEK);
	}
	r->ok = true;
}

/* Where an unknown key in a rate belongs, if elsewhere. */
static const char *rate_elsewhere(const char *key)
{
	if (!strcmp(key, "standing_charge"))
		return "a standing charge is per tariff or per override, not per rate";
	if (!strcmp(key, "vat") || !strcmp(key, "currency"))
		return "it belongs at the top level of the file";
	return NULL;
}

/* The first minute of the week in 'o' whose minute before is not in it (a
 * stretch's start); Monday 00:00 when 'o' is the whole week. */
static unsigned first_start(const struct cover *o)
{
	for (unsigned m = 0; m < WEEK; m++)
		if (cover_has(o, m) && !cover_has(o, (m + WEEK - 1) % WEEK))
			return m;
	return 0;
}

/* Two windows may not share a minute: one error per pair, at the first
 * local time they share. */
static void check_overlaps(struct parse *p, const char *path,
			   const struct rate *rates, size_t n)
{
	for (size_t j = 1; j < n; j++) {
		for (size_t i = 0; i < j; i++) {
			char ipath[PATH_CAP], jpath[PATH_CAP], t[16];
			struct cover o;
			bool any = false;

			if (!rates[i].ok || !rates[j].ok)
				continue;
			for (size_t k = 0; k < WEEK_WORDS; k++) {
				o.w[k] = rates[i].cover.w[k] & rates[j].cover.w[k];
				any = any || o.w[k];
			}
			if (!any)
				continue;
			cfg_path_index(ipath, path, i);
			cfg_path_index(jpath, path, j);
			cfg_err(p, jpath, "overlaps %s on %s", ipath,
				week_time(first_start(&o), false, t));
		}
	}
}

/* Without a default rate, the windows must cover the week: one error per
 * stretch left out (GAPS_SHOWN of them, then a count). */
static void check_gaps(struct parse *p, const char *path,
		       const struct rate *rates, size_t n)
{
	struct cover all = { { 0 } };
	unsigned shown = 0, more = 0, start = 0;
	char a[16], b[16];

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < WEEK_WORDS; k++)
			all.w[k] |= rates[i].cover.w[k];
	/* Walk the week from the end of a covered stretch, so that a gap
	 * across Sunday midnight is one stretch. Some window is valid here,
	 * so some minute is covered. */
	while (start < WEEK && !(cover_has(&all, start) &&
				 !cover_has(&all, (start + 1) % WEEK)))
		start++;
	if (start == WEEK)
		return;		/* the whole week */
	for (unsigned k = 1; k <= WEEK; k++) {
		unsigned m = (start + k) % WEEK, e = m;

		if (cover_has(&all, m) || !cover_has(&all, (m + WEEK - 1) % WEEK))
			continue;	/* not the start of a gap */
		while (!cover_has(&all, e))
			e = (e + 1) % WEEK;
		if (shown++ < GAPS_SHOWN)
			cfg_err(p, path, "%s .. %s is not covered by any rate; add a rate without \"days\"/\"from\"/\"to\" for the rest of the week",
				week_time(m, false, a), week_time(e, true, b));
		else
			more++;
	}
	if (more)
		cfg_err(p, path, "%u more stretches of the week are not covered by any rate",
			more);
}

/* "rates" of the object 'obj' at 'parent' into out->price. */
static void parse_rates(struct parse *p, json_object *obj, const char *parent,
			struct pm_tariff_rates *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	size_t n, default_at = 0;
	struct rate *rates = NULL;
	bool have_default = false, all_ok = true;
	json_object *ja;

	if (!json_object_object_get_ex(obj, "rates", &ja)) {
		cfg_missing(p, parent, "rates", "a list of prices per kWh, e.g. [{\"price\": 0.25}]");
		return;
	}
	cfg_path_key(path, parent, "rates");
	if (!json_object_is_type(ja, json_type_array)) {
		cfg_err(p, path, "expected a list of rates [{\"price\": ...}], got %s",
			cfg_describe(ja, d));
		return;
	}
	n = json_object_array_length(ja);
	if (n == 0) {
		cfg_err(p, path, "must not be empty (at least one rate {\"price\": ...})");
		return;
	}
	if (n > RATES_MAX) {
		cfg_err(p, path, "%zu rates are too many (at most %d)", n, RATES_MAX);
		return;
	}
	rates = calloc(n, sizeof(*rates));
	out->price = calloc(WEEK, sizeof(*out->price));
	if (!rates || !out->price) {
		p->nomem = true;
		free(rates);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *jr = json_object_array_get_idx(ja, i);
		struct rate *r = &rates[i];
		char rpath[PATH_CAP], dpath[PATH_CAP];
		double price;

		cfg_path_index(rpath, path, i);
		if (!json_object_is_type(jr, json_type_object)) {
			cfg_err(p, rpath, "expected an object {\"price\": ...}, got %s",
				cfg_describe(jr, d));
			all_ok = false;
			continue;
		}
		cfg_check_keys(p, jr, rpath, rate_keys, rate_elsewhere);
		switch (cfg_get_number(p, jr, rpath, "price", &price)) {
		case ABSENT:
			cfg_missing(p, rpath, "price", "the price per kWh");
			break;
		case SET:
			if (price < 0 || price > PRICE_MAX)
				cfg_out_of_range(p, jr, rpath, "price",
						 "0..%g per kWh", PRICE_MAX);
			else
				r->price = (float)price;
			break;
		}
		r->is_window = json_object_object_get_ex(jr, "days", NULL) ||
			json_object_object_get_ex(jr, "from", NULL) ||
			json_object_object_get_ex(jr, "to", NULL);
		if (r->is_window) {
			parse_window(p, jr, rpath, r);
			all_ok = all_ok && r->ok;
		} else if (have_default) {
			cfg_path_index(dpath, path, default_at);
			cfg_err(p, rpath, "a second rate without \"days\"/\"from\"/\"to\" (%s already covers the rest of the week)",
				dpath);
		} else {
			have_default = true;
			default_at = i;
		}
	}
	check_overlaps(p, path, rates, n);
	/* A bad window would show as a gap of its own. */
	if (!have_default && all_ok)
		check_gaps(p, path, rates, n);

	for (unsigned m = 0; m < WEEK; m++) {
		out->price[m] = have_default ? rates[default_at].price : 0;
		for (size_t i = 0; i < n; i++)
			if (rates[i].ok && cover_has(&rates[i].cover, m))
				out->price[m] = rates[i].price;
	}
	free(rates);
}

/* ---- the file ------------------------------------------------------------ */

/* A standing charge per day, >= 0, into *out when given. */
static void parse_standing_charge(struct parse *p, json_object *obj,
				  const char *parent, double *out)
{
	double x;

	if (cfg_get_number(p, obj, parent, "standing_charge", &x) != SET)
		return;
	if (x < 0 || x > PRICE_MAX)
		cfg_out_of_range(p, obj, parent, "standing_charge",
				 "0..%g per day", PRICE_MAX);
	else
		*out = x;
}

static const char *top_elsewhere(const char *key)
{
	if (!strcmp(key, "price") || !strcmp(key, "days") ||
	    !strcmp(key, "from") || !strcmp(key, "to"))
		return "it belongs in each entry of \"rates\": [{\"price\": ...}]";
	return NULL;
}

static const char *override_elsewhere(const char *key)
{
	if (!strcmp(key, "vat") || !strcmp(key, "currency"))
		return "it is the whole file's; an override sets only \"rates\" and \"standing_charge\"";
	return top_elsewhere(key);
}

/* "overrides": {"tag=value": {"rates": [...], "standing_charge": x}}. */
static void parse_overrides(struct parse *p, struct pm_tariff *t,
			    json_object *root)
{
	char d[DESC_CAP];
	json_object *jo;
	int n;

	if (!json_object_object_get_ex(root, "overrides", &jo))
		return;
	if (!json_object_is_type(jo, json_type_object)) {
		cfg_err(p, "overrides", "expected an object {\"tag=value\": {\"rates\": [...]}}, got %s",
			cfg_describe(jo, d));
		return;
	}
	n = json_object_object_length(jo);
	if (n > OVERRIDES_MAX) {
		cfg_err(p, "overrides", "%d overrides are too many (at most %d)",
			n, OVERRIDES_MAX);
		return;
	}
	t->overrides = calloc((size_t)n + 1, sizeof(*t->overrides));
	if (!t->overrides) {
		p->nomem = true;
		return;
	}
	json_object_object_foreach(jo, key, val) {
		struct pm_tariff_override *o = &t->overrides[t->n_overrides++];
		const char *eq = strchr(key, '='), *why;
		char kpath[PATH_CAP], shown[DESC_CAP];

		cfg_path_key(kpath, "overrides", key);
		o->key = strndup(key, eq ? (size_t)(eq - key) : strlen(key));
		o->value = cfg_strdup(p, eq ? eq + 1 : "");
		if (!o->key || !o->value) {
			p->nomem = true;
			return;
		}
		why = cfg_tag_value_problem(o->value);
		if (!eq)
			cfg_err(p, kpath, "expected a key \"tag=value\", e.g. \"customer=ACME\"");
		else if (!cfg_tag_key_ok(o->key))
			cfg_err(p, kpath, "\"%s\" is not a tag name (a lowercase letter, then lowercase letters, digits or '_', at most 32)",
				cfg_show_key(o->key, shown));
		else if (why)
			cfg_err(p, kpath, "the tag value %s", why);
		/* the rates are checked whatever the key: every error at once */
		if (!json_object_is_type(val, json_type_object)) {
			cfg_err(p, kpath, "expected an object {\"rates\": [...]}, got %s",
				cfg_describe(val, d));
			continue;
		}
		cfg_check_keys(p, val, kpath, override_keys, override_elsewhere);
		o->rates.standing_charge = t->rates.standing_charge;
		parse_standing_charge(p, val, kpath, &o->rates.standing_charge);
		parse_rates(p, val, kpath, &o->rates);
	}
}

static void parse_tariff(struct parse *p, struct pm_tariff *t,
			 json_object *root)
{
	char d[DESC_CAP];
	double vat;

	if (!json_object_is_type(root, json_type_object)) {
		cfg_err(p, "", "expected an object {\"rates\": [...]}, got %s",
			cfg_describe(root, d));
		return;
	}
	cfg_check_keys(p, root, "", top_keys, top_elsewhere);
	(void)cfg_get_string(p, root, "", "currency", S_NAME, &t->currency);
	if (cfg_get_number(p, root, "", "vat", &vat) == SET) {
		if (vat < 0 || vat > 100)
			cfg_out_of_range(p, root, "", "vat", "0..100 %%");
		else
			t->vat = vat;
	}
	parse_standing_charge(p, root, "", &t->rates.standing_charge);
	parse_rates(p, root, "", &t->rates);
	parse_overrides(p, t, root);
}

int pm_tariff_load(struct pm_tariff **out, const char *path, char **errors)
{
	struct parse p = { .file = path };
	struct pm_tariff *t = NULL;
	struct pm_errlist errs;
	json_object *root = NULL;
	char *data = NULL;
	bool ok;
	size_t len;
	int r;

	pm_errlist_init(&errs);
	p.errs = &errs;
	r = pm_read_file_capped(path, TARIFF_MAX, &data, &len);
	if (r == -PM_ETOOBIG) {
		pm_errlist_add(&errs, "%s: larger than %d MiB, not a tariff", path,
			       TARIFF_MAX / (1024 * 1024));
		r = -PM_ECONFIG;
		goto out;
	}
	if (r < 0) {
		if (r != -ENOMEM)
			pm_errlist_add(&errs, "%s: cannot read: %s", path,
				       pm_strerror(r));
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		goto out;
	}
	t->path = cfg_strdup(&p, path);
	t->currency = cfg_strdup(&p, "");

	root = cfg_parse_json(&p, data, len, &ok);
	if (ok) {
		cfg_find_duplicate_keys(&p, data, len);
		parse_tariff(&p, t, root);
	}

	r = errs.count ? -PM_ECONFIG : 0;
	if (p.nomem || errs.nomem)
		r = -ENOMEM;
out:
	json_object_put(root);
	free(data);
	if (r == 0) {
		*out = t;
	} else {
		pm_tariff_free(t);
		if (errors && r != -ENOMEM && errs.count)
			*errors = pm_errlist_take(&errs);
	}
	pm_errlist_free(&errs);
	return r;
}

void pm_tariff_free(struct pm_tariff *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_overrides; i++) {
		free(t->overrides[i].key);
		free(t->overrides[i].value);
		free(t->overrides[i].rates.price);
	}
	free(t->overrides);
	free(t->rates.price);
	free(t->currency);
	free(t->path);
	free(t);
}

const struct pm_tariff_rates *pm_tariff_rates_for(const struct pm_tariff *t,
						  size_t n_tags,
						  const char *const *keys,
						  const char *const *values)
{
	for (size_t i = 0; i < t->n_overrides; i++) {
		const struct pm_tariff_override *o = &t->overrides[i];

		for (size_t k = 0; k < n_tags; k++)
			if (!strcmp(keys[k], o->key) && !strcmp(values[k], o->value))
				return &o->rates;
	}
	return &t->rates;
}

double pm_tariff_price(const struct pm_tariff_rates *r, int wday, int minute)
{
	if (wday < 0 || wday > 6 || minute < 0 || minute >= DAY_MINUTES)
		return NAN;
	/* struct tm counts from Sunday, the table from Monday */
	return r->price[(size_t)((wday + 6) % 7) * DAY_MINUTES + (size_t)minute];
}
