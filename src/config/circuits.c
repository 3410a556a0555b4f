/* circuits.c — what a circuit is beyond its channel: the voltage and power
 * factor its power is estimated from, its phase and breaker rating, and the
 * tags its points carry. The file's "voltage", "power_factor" and "tags";
 * the same keys on a device or an input (devices.c asks here), resolved
 * input, then device, then file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

/* A module measures up to 80 A through its CTs; a circuit's voltage is
 * that of one phase or, for a load between phases, of the line. */
#define VOLTAGE_MIN 1.0
#define VOLTAGE_MAX 1000.0
#define BREAKER_MAX 10000.0
#define TAGS_MAX 16
#define TAG_KEY_MAX 32
#define TAG_VALUE_MAX 64

/* Tags the points carry already, or will: never a user's. */
static const char *const reserved_tags[] = {
	"device_id", "input", "name", "unique_id", "phase", "feed", "time",
	"alarm", "subject", "severity", NULL,
};

const char *const pm_phase_names[PM_PHASES + 1] = { "L1", "L2", "L3", NULL };

/* A key line protocol, Prometheus labels, Zabbix LLD macros ({#TAG.KEY},
 * upper case) and file names all carry as it is: a lowercase letter, then
 * lowercase letters, digits or '_' — lowercase, so that no two keys become
 * one macro. */
bool cfg_tag_key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > TAG_KEY_MAX || !(k[0] >= 'a' && k[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
		      k[i] == '_'))
			return false;
	return true;
}

/* Valid UTF-8 without control characters. */
static bool utf8_text(const unsigned char *s)
{
	while (*s) {
		size_t n = *s < 0x80 ? 1 : (*s & 0xe0) == 0xc0 ? 2
			 : (*s & 0xf0) == 0xe0 ? 3 : (*s & 0xf8) == 0xf0 ? 4 : 0;

		if (n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f)))
			return false;
		for (size_t i = 1; i < n; i++)
			if ((s[i] & 0xc0) != 0x80)
				return false;
		s += n;
	}
	return true;
}

/* A value: printable UTF-8, 1..64 bytes, no surrounding spaces, none of the
 * characters that need escaping somewhere (line protocol's backslash, JSON's
 * quote, a path's slash, Zabbix's macro braces and $). */
const char *cfg_tag_value_problem(const char *v)
{
	size_t n = strlen(v);

	if (n == 0)
		return "is empty";
	if (n > TAG_VALUE_MAX)
		return "is longer than 64 bytes";
	if (!utf8_text((const unsigned char *)v))
		return "is not printable UTF-8 text";
	if (v[0] == ' ' || v[n - 1] == ' ')
		return "starts or ends with a space";
	if (strpbrk(v, "\"\\/,={}$"))
		return "contains one of \" \\ / , = { } $";
	return NULL;
}

void cfg_tags_free(size_t n, struct pm_tag *tags)
{
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

void cfg_circuit_tags(struct parse *p, json_object *obj, const char *parent,
		      size_t *n_out, struct pm_tag **out)
{
	char path[PATH_CAP], kpath[PATH_CAP], d[DESC_CAP];
	struct pm_tag *tags;
	json_object *v;
	size_t n = 0;

	if (!json_object_object_get_ex(obj, "tags", &v))
		return;
	cfg_path_key(path, parent, "tags");
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, path, "expected an object of short strings like {\"customer\": \"ACME\"}, got %s",
			cfg_describe(v, d));
		return;
	}
	if (json_object_object_length(v) > TAGS_MAX) {
		cfg_err(p, path, "%d tags are too many (at most %d)",
			json_object_object_length(v), TAGS_MAX);
		return;
	}
	tags = calloc((size_t)json_object_object_length(v) + 1, sizeof(*tags));
	if (!tags) {
		p->nomem = true;
		return;
	}
	json_object_object_foreach(v, key, val) {
		const char *why;

		cfg_path_key(kpath, path, key);
		if (!cfg_tag_key_ok(key)) {
			cfg_err(p, kpath, "\"%s\" is not a tag name (a lowercase letter, then lowercase letters, digits or '_', at most %d)",
				cfg_show_key(key, d), TAG_KEY_MAX);
			continue;
		}
		if (cfg_is_known(key, reserved_tags)) {
			cfg_err(p, kpath, "\"%s\" is a tag powermeterd writes itself; choose another name",
				key);
			continue;
		}
		if (!json_object_is_type(val, json_type_string)) {
			cfg_err(p, kpath, "expected a string, got %s",
				cfg_describe(val, d));
			continue;
		}
		why = cfg_tag_value_problem(json_object_get_string(val));
		if (why) {
			cfg_err(p, kpath, "%s %s", cfg_describe(val, d), why);
			continue;
		}
		tags[n].key = cfg_strdup(p, key);
		tags[n].value = cfg_strdup(p, json_object_get_string(val));
		n++;
	}
	cfg_tags_free(*n_out, *out);
	*n_out = n;
	*out = tags;
}

/* A voltage or power factor, when given; NaN stays NaN otherwise. */
void cfg_circuit_estimate(struct parse *p, json_object *obj, const char *parent,
			  double *voltage, double *power_factor)
{
	double x;

	if (cfg_get_number(p, obj, parent, "voltage", &x) == SET) {
		if (x >= VOLTAGE_MIN && x <= VOLTAGE_MAX)
			*voltage = x;
		else
			cfg_out_of_range(p, obj, parent, "voltage", "%g..%g volts",
					 VOLTAGE_MIN, VOLTAGE_MAX);
	}
	if (cfg_get_number(p, obj, parent, "power_factor", &x) == SET) {
		if (x > 0 && x <= 1)
			*power_factor = x;
		else
			cfg_out_of_range(p, obj, parent, "power_factor",
					 "more than 0, at most 1; 1 makes power the apparent power");
	}
}

void cfg_circuit_input(struct parse *p, json_object *ji, const char *ipath,
		       struct pm_input *in)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	double x;

	in->voltage = in->power_factor = NAN;
	cfg_circuit_estimate(p, ji, ipath, &in->voltage, &in->power_factor);
	if (json_object_object_get_ex(ji, "phase", &v)) {
		const char *s = json_object_is_type(v, json_type_string)
			? json_object_get_string(v) : NULL;

		cfg_path_key(path, ipath, "phase");
		if (s && cfg_is_known(s, pm_phase_names))
			in->phase = cfg_strdup(p, s);
		else
			cfg_err(p, path, "%s is not a phase (\"L1\", \"L2\" or \"L3\")",
				cfg_describe(v, d));
	}
	if (cfg_get_number(p, ji, ipath, "breaker", &x) == SET) {
		if (x > 0 && x <= BREAKER_MAX)
			in->breaker = x;
		else
			cfg_out_of_range(p, ji, ipath, "breaker",
					 "the breaker's rating in amperes, more than 0, at most %g",
					 BREAKER_MAX);
	}
	cfg_circuit_tags(p, ji, ipath, &in->n_tags, &in->tags);
	/* resolved against "feeds" by feeds.c, "load_lost" by alarms.c */
	in->feed = -1;
	(void)cfg_get_string(p, ji, ipath, "feed", S_NAME, &in->feed_name);
	cfg_alarm_load_lost(p, ji, ipath, in);
}

/* ---- the section: "voltage", "power_factor", "tags" at the top ---------- */

void cfg_circuits_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	cfg_circuit_estimate(p, root, "", &cfg->voltage, &cfg->power_factor);
	cfg_circuit_tags(p, root, "", &cfg->n_tags, &cfg->tags);
}

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pm_tag *)a)->key,
		      ((const struct pm_tag *)b)->key);
}

/* An input's point tags: phase, feed, the file's tags, its own (its own
 * win). */
static void point_tags(struct parse *p, const struct pm_config *cfg,
		       struct pm_input *in)
{
	size_t n = 0, cap = 2 + cfg->n_tags + in->n_tags;
	struct pm_tag *t = calloc(cap, sizeof(*t));

	if (!t) {
		p->nomem = true;
		return;
	}
	if (in->phase)
		t[n++] = (struct pm_tag){ "phase", in->phase };
	if (in->feed >= 0)
		t[n++] = (struct pm_tag){ "feed", cfg->feeds[in->feed].name };
	for (size_t i = 0; i < cfg->n_tags; i++)
		t[n++] = cfg->tags[i];
	for (size_t i = 0; i < in->n_tags; i++) {
		size_t j;

		for (j = 0; j < n && strcmp(t[j].key, in->tags[i].key); j++)
			;
		t[j] = in->tags[i];
		if (j == n)
			n++;
	}
	qsort(t, n, sizeof(*t), tag_cmp);
	in->point_tags = t;
	in->n_point_tags = n;
}

/* Settles every input's voltage and power factor, and its point tags. */
void cfg_circuits_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	(void)root;
	/* 0: not given (neither is a valid value) */
	if (cfg->voltage == 0)
		cfg->voltage = PM_DEFAULT_VOLTAGE;
	if (cfg->power_factor == 0)
		cfg->power_factor = PM_DEFAULT_POWER_FACTOR;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		struct pm_device *dev = &cfg->devices[d];

		for (size_t k = 0; k < dev->n_inputs; k++) {
			struct pm_input *in = &dev->inputs[k];

			const struct pm_feed *f = in->feed >= 0
				? &cfg->feeds[in->feed] : NULL;

			/* the feed's voltage is the circuit's supply: it comes
			 * before the module's, which only says where the CT is
			 * read */
			if (isnan(in->voltage) && f && !isnan(f->voltage))
				in->voltage = f->voltage;
			if (isnan(in->voltage))
				in->voltage = isnan(dev->voltage) ? cfg->voltage
								  : dev->voltage;
			if (isnan(in->power_factor))
				in->power_factor = isnan(dev->power_factor)
					? cfg->power_factor : dev->power_factor;
			point_tags(p, cfg, in);
		}
	}
}

void cfg_circuits_free(struct pm_config *cfg)
{
	cfg_tags_free(cfg->n_tags, cfg->tags);
}
