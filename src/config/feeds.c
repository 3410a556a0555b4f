/* feeds.c — "feeds": the supplies circuits hang off (a UPS output, a
 * board's incomer), each with a capacity in amperes per phase, its phases
 * and, in a 2N design, the feed that backs it up; and an input's "feed",
 * which joins it to one beside its "phase". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

#define FEEDS_MAX 64
#define CAPACITY_MAX 100000.0	/* amperes per phase */
#define VOLTAGE_MIN 1.0
#define VOLTAGE_MAX 1000.0

static const char *const feed_keys[] = {
	"name", "capacity", "phases", "voltage", "redundant_with", NULL,
};

static int feed_find(const struct pm_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_feeds; i++)
		if (cfg->feeds[i].name && !strcmp(cfg->feeds[i].name, name))
			return (int)i;
	return -1;
}

static int phase_index(const char *s)
{
	for (int i = 0; i < PM_PHASES; i++)
		if (!strcmp(s, pm_phase_names[i]))
			return i;
	return -1;
}

/* "L1, L2, L3": a feed's phases for messages. */
static void phase_list(const struct pm_feed *f, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < f->n_phases && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? ", " : "", pm_phase_names[f->phases[i]]);
}

static void parse_phases(struct parse *p, json_object *jf, const char *fpath,
			 struct pm_feed *f)
{
	char path[PATH_CAP], ipath[PATH_CAP], d[DESC_CAP];
	json_object *v;
	size_t n;

	f->n_phases = PM_PHASES;
	for (unsigned i = 0; i < PM_PHASES; i++)
		f->phases[i] = i;
	if (!json_object_object_get_ex(jf, "phases", &v))
		return;
	cfg_path_key(path, fpath, "phases");
	n = json_object_is_type(v, json_type_array)
		? json_object_array_length(v) : 0;
	if (n == 0 || n > PM_PHASES) {
		cfg_err(p, path, "expected a list of one to three phases like [\"L1\", \"L2\", \"L3\"], got %s",
			cfg_describe(v, d));
		return;
	}
	f->n_phases = 0;
	for (size_t i = 0; i < n; i++) {
		json_object *jp = json_object_array_get_idx(v, i);
		int k = json_object_is_type(jp, json_type_string)
			? phase_index(json_object_get_string(jp)) : -1;

		cfg_path_index(ipath, path, i);
		if (k < 0) {
			cfg_err(p, ipath, "%s is not a phase (\"L1\", \"L2\" or \"L3\")",
				cfg_describe(jp, d));
			continue;
		}
		for (unsigned j = 0; j < f->n_phases; j++)
			if (f->phases[j] == (unsigned)k) {
				cfg_err(p, ipath, "\"%s\" is listed twice",
					pm_phase_names[k]);
				k = -1;
				break;
			}
		if (k >= 0)
			f->phases[f->n_phases++] = (unsigned)k;
	}
}

static void parse_feed(struct parse *p, const struct pm_config *cfg,
		       json_object *jf, const char *fpath, struct pm_feed *f)
{
	char d[DESC_CAP];
	const char *why;
	double x;

	f->voltage = NAN;
	f->partner = -1;
	if (!json_object_is_type(jf, json_type_object)) {
		cfg_err(p, fpath, "expected a feed like {\"name\": \"UPS A\", \"capacity\": 32}, got %s",
			cfg_describe(jf, d));
		return;
	}
	cfg_check_keys(p, jf, fpath, feed_keys, NULL);
	if (cfg_get_string(p, jf, fpath, "name", S_NAME, &f->name) == ABSENT)
		cfg_missing(p, fpath, "name", "what the feed is called, e.g. \"UPS A\"");
	/* a bad or second name is reported once, then forgotten: no input
	 * can join it and it is not checked further */
	if (f->name && (why = cfg_tag_value_problem(f->name))) {
		char path[PATH_CAP];

		cfg_path_key(path, fpath, "name");
		cfg_err(p, path, "\"%s\" %s", f->name, why);
		free(f->name);
		f->name = NULL;
	} else if (f->name && feed_find(cfg, f->name) >= 0) {
		char path[PATH_CAP];

		cfg_path_key(path, fpath, "name");
		cfg_err(p, path, "\"%s\" names another feed already", f->name);
		free(f->name);
		f->name = NULL;
	}
	switch (cfg_get_number(p, jf, fpath, "capacity", &x)) {
	case ABSENT:
		cfg_missing(p, fpath, "capacity", "amperes per phase the feed may carry, e.g. 32");
		break;
	case SET:
		if (x > 0 && x <= CAPACITY_MAX)
			f->capacity = x;
		else
			cfg_out_of_range(p, jf, fpath, "capacity",
					 "amperes per phase, more than 0, at most %g",
					 CAPACITY_MAX);
		break;
	}
	parse_phases(p, jf, fpath, f);
	if (cfg_get_number(p, jf, fpath, "voltage", &x) == SET) {
		if (x >= VOLTAGE_MIN && x <= VOLTAGE_MAX)
			f->voltage = x;
		else
			cfg_out_of_range(p, jf, fpath, "voltage", "%g..%g volts",
					 VOLTAGE_MIN, VOLTAGE_MAX);
	}
	(void)cfg_get_string(p, jf, fpath, "redundant_with", S_NAME,
			     &f->redundant_with);
}

/* Runs before "devices" is parsed (sections.c), so each input's "feed" is
 * checked against the feeds in finish, where all are known. */
void cfg_feeds_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	char d[DESC_CAP], fpath[PATH_CAP];
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(root, "feeds", &v))
		return;
	if (!json_object_is_type(v, json_type_array)) {
		cfg_err(p, "feeds", "expected a list of feeds like [{\"name\": \"UPS A\", \"capacity\": 32}], got %s",
			cfg_describe(v, d));
		return;
	}
	n = json_object_array_length(v);
	if (n > FEEDS_MAX) {
		cfg_err(p, "feeds", "%zu feeds are too many (at most %d)", n,
			FEEDS_MAX);
		return;
	}
	if (n == 0)
		return;
	cfg->feeds = calloc(n, sizeof(*cfg->feeds));
	if (!cfg->feeds) {
		p->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		cfg_path_index(fpath, "feeds", i);
		/* n_feeds grows first: feed_find sees the earlier ones */
		cfg->n_feeds = i;
		parse_feed(p, cfg, json_object_array_get_idx(v, i), fpath,
			   &cfg->feeds[i]);
	}
	cfg->n_feeds = n;
}

/* An input's "feed" and "phase" against the feeds; 'ipath' is its place. */
static void join_feed(struct parse *p, struct pm_config *cfg,
		      struct pm_input *in, const char *ipath)
{
	char path[PATH_CAP], list[32];
	const struct pm_feed *f;
	int k;

	cfg_path_key(path, ipath, "feed");
	in->feed = feed_find(cfg, in->feed_name);
	if (in->feed < 0) {
		if (cfg->n_feeds == 0)
			cfg_err(p, path, "\"%s\" is not a feed: there is no \"feeds\" list; add {\"name\": \"%s\", \"capacity\": AMPERES} to it",
				in->feed_name, in->feed_name);
		else
			cfg_err(p, path, "\"%s\" is not one of the feeds (see \"feeds\")",
				in->feed_name);
		return;
	}
	f = &cfg->feeds[in->feed];
	phase_list(f, list, sizeof(list));
	cfg_path_key(path, ipath, "phase");
	if (!in->phase && f->n_phases == 1) {
		in->phase = cfg_strdup(p, pm_phase_names[f->phases[0]]);
		if (!in->phase)
			return;
	} else if (!in->phase) {
		cfg_err(p, ipath, "an input of feed \"%s\" needs its \"phase\" (%s)",
			f->name, list);
		in->feed = -1;
		return;
	}
	k = phase_index(in->phase);
	for (unsigned i = 0; i < f->n_phases; i++)
		if (f->phases[i] == (unsigned)k) {
			in->feed_phase = i;
			cfg->feeds[in->feed].n_inputs++;
			return;
		}
	cfg_err(p, path, "\"%s\" is not a phase of feed \"%s\" (%s)", in->phase,
		f->name, list);
	in->feed = -1;
}

void cfg_feeds_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	char path[PATH_CAP], ipath[PATH_CAP], rpath[PATH_CAP];

	/* the seed's array form has no feeds, and an input no "feed" */
	if (!root)
		return;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		for (size_t k = 0; k < cfg->devices[d].n_inputs; k++) {
			struct pm_input *in = &cfg->devices[d].inputs[k];

			if (!in->feed_name)
				continue;
			(void)snprintf(ipath, sizeof(ipath),
				       "devices[%zu].inputs[%zu]", d, k);
			join_feed(p, cfg, in, ipath);
		}
	}
	for (size_t i = 0; i < cfg->n_feeds; i++) {
		struct pm_feed *f = &cfg->feeds[i];
		const struct pm_feed *o;

		if (!f->name)
			continue;
		cfg_path_index(path, "feeds", i);
		if (f->n_inputs == 0)
			cfg_err(p, path, "no input uses feed \"%s\": add \"feed\": \"%s\" and a \"phase\" to its circuits, or remove it",
				f->name, f->name);
		if (!f->redundant_with)
			continue;
		cfg_path_key(rpath, path, "redundant_with");
		if (!strcmp(f->redundant_with, f->name)) {
			cfg_err(p, rpath, "feed \"%s\" cannot back itself up: name the other feed of the pair",
				f->name);
			continue;
		}
		f->partner = feed_find(cfg, f->redundant_with);
		if (f->partner < 0) {
			cfg_err(p, rpath, "\"%s\" is not one of the feeds",
				f->redundant_with);
			continue;
		}
		o = &cfg->feeds[f->partner];
		if (!o->redundant_with || strcmp(o->redundant_with, f->name)) {
			cfg_err(p, rpath, "feed \"%s\" does not name \"%s\" back: add \"redundant_with\": \"%s\" to it (a 2N pair backs each other up)",
				o->name, f->name, f->name);
			f->partner = -1;
		}
	}
}

void cfg_feeds_free(struct pm_config *cfg)
{
	for (size_t i = 0; i < cfg->n_feeds; i++) {
		free(cfg->feeds[i].name);
		free(cfg->feeds[i].redundant_with);
	}
	free(cfg->feeds);
}
