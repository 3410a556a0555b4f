/* alarms.c — judging one alarm (hold times, clear margins) and the state
 * file that keeps raised alarms across a restart (alarms.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include <powermeter/powermeter.h>

#include "meter/alarms.h"
#include "util/atomicfile.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/jsonstr.h"

#define STATE_FORMAT "powermeter-alarms"
#define STATE_VERSION 1
#define STATE_MAX (8u * 1024 * 1024)
/* A "since" beyond the year 10000 (Unix ms) is damage, not a time: it
 * would not even fit an int64_t. */
#define SINCE_MAX_MS 253402300800000.0

static const struct {
	const char *name;
	const char *message_id;	/* journalctl MESSAGE_ID=..., never changes */
} kinds[PM_ALARM_KINDS] = {
	[PM_ALARM_CIRCUIT_LOAD] = { "circuit_load", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a11" },
	[PM_ALARM_FEED_LOAD] = { "feed_load", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a12" },
	[PM_ALARM_IMBALANCE] = { "imbalance", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a13" },
	[PM_ALARM_REDUNDANCY] = { "redundancy", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a14" },
	[PM_ALARM_LOAD_LOST] = { "load_lost", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a15" },
	[PM_ALARM_MODULE_OFFLINE] = { "module_offline", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a16" },
	[PM_ALARM_STALE] = { "stale", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a17" },
	[PM_ALARM_SPOOL_BACKLOG] = { "spool_backlog", "4b1d3a0f6c2e4f0e9a51c2d7e8f90a18" },
};

static const char *const severities[] = { "ok", "warning", "critical" };

const char *pm_alarm_kind_name(enum pm_alarm_kind kind)
{
	return (unsigned)kind < PM_ALARM_KINDS ? kinds[kind].name : NULL;
}

int pm_alarm_kind_find(const char *name)
{
	for (int i = 0; i < PM_ALARM_KINDS; i++)
		if (!strcmp(kinds[i].name, name))
			return i;
	return -1;
}

const char *pm_alarm_message_id(enum pm_alarm_kind kind)
{
	return (unsigned)kind < PM_ALARM_KINDS ? kinds[kind].message_id : NULL;
}

const char *pm_severity_name(enum pm_severity s)
{
	return (unsigned)s <= PM_SEVERITY_CRITICAL ? severities[s] : "unknown";
}

static int severity_find(const char *name)
{
	for (int i = 0; i <= PM_SEVERITY_CRITICAL; i++)
		if (!strcmp(severities[i], name))
			return i;
	return -1;
}

/* ---- subjects ----------------------------------------------------------- */

const char *pm_alarm_subject_module(char *buf, size_t size, int device_id)
{
	(void)snprintf(buf, size, "module %d", device_id);
	return buf;
}

const char *pm_alarm_subject_phase(char *buf, size_t size,
				   const struct pm_feed *f, unsigned p)
{
	(void)snprintf(buf, size, "%s %s", f->name,
		       pm_phase_names[f->phases[p]]);
	return buf;
}

const char *pm_alarm_subject_pair(char *buf, size_t size,
				  const struct pm_config *cfg, size_t f,
				  unsigned p)
{
	const struct pm_feed *feed = &cfg->feeds[f], *o, *first, *second;
	bool shared = false;

	if (feed->partner < 0 || (size_t)feed->partner >= cfg->n_feeds)
		return NULL;
	o = &cfg->feeds[feed->partner];
	for (unsigned i = 0; i < o->n_phases; i++)
		shared |= o->phases[i] == feed->phases[p];
	if (!shared)
		return NULL;
	first = (size_t)feed->partner < f ? o : feed;
	second = first == feed ? o : feed;
	(void)snprintf(buf, size, "%s+%s %s", first->name, second->name,
		       pm_phase_names[feed->phases[p]]);
	return buf;
}

/* ---- judging ------------------------------------------------------------ */

static bool held(const struct pm_alarm *a, int level, double hold,
		 int64_t time_ms)
{
	return a->since_ms[level] &&
	       time_ms - a->since_ms[level] >= (int64_t)llround(hold * 1000);
}

enum pm_severity pm_alarm_judge(struct pm_alarm *a,
				const struct pm_alarm_rule *rule, double value,
				bool lower_bound, int64_t time_ms)
{
	const double thr[3] = { 0, rule->warning, rule->critical };
	enum pm_severity level = a->level;

	a->judged = true;
	a->value = value;
	if (isnan(value))
		return level;
	for (int s = PM_SEVERITY_WARNING; s <= PM_SEVERITY_CRITICAL; s++) {
		if (value >= thr[s]) {
			if (!a->since_ms[s])
				a->since_ms[s] = time_ms;
		} else {
			a->since_ms[s] = 0;
		}
	}
	if (level < PM_SEVERITY_CRITICAL &&
	    held(a, PM_SEVERITY_CRITICAL, rule->hold, time_ms))
		level = PM_SEVERITY_CRITICAL;
	else if (level < PM_SEVERITY_WARNING &&
		 held(a, PM_SEVERITY_WARNING, rule->hold, time_ms))
		level = PM_SEVERITY_WARNING;
	else if (!lower_bound && level == PM_SEVERITY_CRITICAL &&
		 value < rule->critical - rule->clear)
		level = value < rule->warning - rule->clear ? PM_SEVERITY_OK
							    : PM_SEVERITY_WARNING;
	else if (!lower_bound && level == PM_SEVERITY_WARNING &&
		 value < rule->warning - rule->clear)
		level = PM_SEVERITY_OK;
	/* the threshold of the level reached, or of the one left */
	a->threshold = thr[level != PM_SEVERITY_OK ? level
			   : a->level != PM_SEVERITY_OK ? a->level
			   : PM_SEVERITY_WARNING];
	return level;
}

enum pm_severity pm_alarm_judge_condition(struct pm_alarm *a, bool holds,
					  enum pm_severity severity,
					  double hold, int64_t time_ms)
{
	a->judged = true;
	if (!holds) {
		a->since_ms[severity] = 0;
		return PM_SEVERITY_OK;
	}
	if (!a->since_ms[severity])
		a->since_ms[severity] = time_ms;
	if (a->level == PM_SEVERITY_OK && held(a, severity, hold, time_ms))
		return severity;
	return a->level;
}

/* ---- the state file ----------------------------------------------------- */

static char *state_path(const char *dir, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s/" PM_ALARM_STATE_FILE "%s", dir, suffix) < 0)
		return NULL;
	return p;
}

void pm_alarm_file_free(struct pm_alarm_file *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->alarms[i].subject);
	free(f->alarms);
	f->alarms = NULL;
	f->n = 0;
}

static bool get_number(json_object *o, const char *key, double *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return false;
	if (json_object_is_type(v, json_type_null)) {
		*out = NAN;
		return true;
	}
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double))
		return false;
	*out = json_object_get_double(v);
	return true;
}

static const char *get_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int parse_entry(json_object *e, struct pm_alarm_saved *s)
{
	const char *kind = get_string(e, "alarm");
	const char *subject = get_string(e, "subject");
	const char *sev = get_string(e, "severity");
	json_object *v;
	double changed;
	int k, l;

	if (!kind || !subject || !sev || !*subject ||
	    (k = pm_alarm_kind_find(kind)) < 0 || (l = severity_find(sev)) < 0 ||
	    !get_number(e, "since", &changed) ||
	    !(isnan(changed) || fabs(changed) <= SINCE_MAX_MS) ||
	    !get_number(e, "value", &s->value) ||
	    !get_number(e, "threshold", &s->threshold) ||
	    !json_object_object_get_ex(e, "armed", &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return -PM_EFRAME;
	s->kind = (enum pm_alarm_kind)k;
	s->level = (enum pm_severity)l;
	s->changed_ms = isnan(changed) ? 0 : (int64_t)changed;	/* null */
	s->armed = json_object_get_boolean(v);
	s->subject = strdup(subject);
	return s->subject ? 0 : -ENOMEM;
}

int pm_alarm_file_load(const char *dir, struct pm_alarm_file *out)
{
	struct pm_alarm_file f = { 0 };
	char *path = state_path(dir, ""), *text = NULL;
	json_object *root = NULL, *list, *v;
	size_t len = 0, n;
	int r;

	*out = f;
	if (!path)
		return -ENOMEM;
	r = pm_read_file_capped(path, STATE_MAX, &text, &len);
	free(path);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r == -PM_ETOOBIG ? -PM_EFRAME : r;
	root = json_tokener_parse(text);
	free(text);
	r = -PM_EFRAME;
	if (!root || !json_object_is_type(root, json_type_object) ||
	    !get_string(root, "format") ||
	    strcmp(get_string(root, "format"), STATE_FORMAT) ||
	    !json_object_object_get_ex(root, "version", &v) ||
	    json_object_get_int(v) != STATE_VERSION ||
	    !json_object_object_get_ex(root, "alarms", &list) ||
	    !json_object_is_type(list, json_type_array))
		goto out;
	n = json_object_array_length(list);
	f.alarms = calloc(n ? n : 1, sizeof(*f.alarms));
	if (!f.alarms) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = parse_entry(json_object_array_get_idx(list, i), &f.alarms[i]);
		if (r < 0)
			goto out;
		f.n++;
	}
	*out = f;
	f.alarms = NULL;
	f.n = 0;
	r = 0;
out:
	pm_alarm_file_free(&f);
	json_object_put(root);
	return r;
}

int pm_alarm_json_members(struct pm_buf *b, const struct pm_alarm *a)
{
	const char *kind = pm_alarm_kind_name(a->kind);
	int r;

	r = pm_buf_adds(b, "\"alarm\": ");
	if (!r)
		r = pm_json_string(b, kind ? kind : "unknown");
	if (!r)
		r = pm_buf_adds(b, ", \"subject\": ");
	if (!r)
		r = pm_json_string(b, a->subject ? a->subject : "");
	if (!r)
		r = pm_buf_printf(b, ", \"severity\": \"%s\", \"since\": ",
				  pm_severity_name(a->level));
	if (!r)
		r = a->changed_ms > 0
			? pm_buf_printf(b, "%lld", (long long)a->changed_ms)
			: pm_buf_adds(b, "null");
	if (!r)
		r = pm_buf_adds(b, ", \"value\": ");
	if (!r)
		r = pm_json_number(b, a->value);
	if (!r)
		r = pm_buf_adds(b, ", \"threshold\": ");
	if (!r)
		r = pm_json_number(b, a->threshold);
	return r;
}

static int format_state(struct pm_buf *b, const struct pm_alarm *const *a,
			size_t n, int64_t now_ms)
{
	bool first = true;
	int r;

	r = pm_buf_printf(b, "{\n\t\"format\": \"%s\",\n\t\"version\": %d,\n"
			  "\t\"saved_at\": %lld,\n\t\"alarms\": [", STATE_FORMAT,
			  STATE_VERSION, (long long)now_ms);
	for (size_t i = 0; i < n && !r; i++) {
		if (a[i]->level == PM_SEVERITY_OK && !a[i]->armed)
			continue;
		r = pm_buf_adds(b, first ? "\n\t\t{" : ",\n\t\t{");
		first = false;
		if (!r)
			r = pm_alarm_json_members(b, a[i]);
		if (!r)
			r = pm_buf_printf(b, ", \"armed\": %s}",
					  a[i]->armed ? "true" : "false");
	}
	if (!r)
		r = pm_buf_adds(b, first ? "]\n}\n" : "\n\t]\n}\n");
	return r;
}

int pm_alarm_file_save(const char *dir, const struct pm_alarm *const *a,
		       size_t n, int64_t now_ms)
{
	char *path = state_path(dir, "");
	struct pm_atomic_file file;
	struct pm_buf b;
	int r;

	pm_buf_init(&b, 4096);
	r = path ? format_state(&b, a, n, now_ms) : -ENOMEM;
	if (r < 0)
		goto out;
	/* An exclusive temporary, synced before it replaces the file: the
	 * main thread saves, and a FIFO at a fixed temporary's name would
	 * have it wait for ever (its signals too). */
	r = pm_atomic_init(&file, path, 0640, PM_ATOMIC_SYNC);
	if (r < 0)
		goto out;
	r = pm_atomic_write(&file, b.data, b.len);
	pm_atomic_fini(&file);
out:
	pm_buf_free(&b);
	free(path);
	return r;
}

int pm_alarm_file_set_aside(const char *dir, int64_t now_ms, char *name,
			    size_t size)
{
	char suffix[48];
	char *path = state_path(dir, ""), *aside;
	int r = 0;

	(void)snprintf(suffix, sizeof(suffix), ".damaged-%lld",
		       (long long)now_ms);
	aside = state_path(dir, suffix);
	if (!path || !aside) {
		r = -ENOMEM;
	} else {
		if (rename(path, aside) < 0)
			r = -errno;
		(void)snprintf(name, size, "%s", aside);
	}
	free(path);
	free(aside);
	return r;
}
