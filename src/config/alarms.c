/* alarms.c — "alarms": the rules the daemon judges every tick (thresholds,
 * hold times, clear margins), the command it runs at every raise and clear,
 * and an input's "load_lost"; also the name alarms give each circuit. The
 * defaults are a switchboard engineer's: warn at 80 % of a breaker (the
 * continuous-load rule), critical at 100 %. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

#define PERCENT_MAX 1000.0
#define SPOOL_MB_MAX 1000000.0
#define HOLD_MAX 86400.0
#define BELOW_MAX 1000.0
#define COMMAND_ARGS_MAX 64
#define COMMAND_TIMEOUT_DEFAULT 30.0
#define COMMAND_TIMEOUT_MAX 3600.0
#define COMMAND_MAX_DEFAULT 4
#define COMMAND_MAX_MAX 64
/* A module offline or stale is judged over a few intervals at least. */
#define OFFLINE_HOLD_DEFAULT 10.0
#define OFFLINE_HOLD_INTERVALS 3
#define STALE_HOLD_DEFAULT 30.0
#define STALE_HOLD_INTERVALS 5

static const char *const alarm_keys[] = {
	"enabled", "circuit_load", "feed_load", "imbalance", "redundancy",
	"load_lost", "module_offline", "stale", "spool_backlog", "command",
	"command_timeout", "command_max", NULL,
};
static const char *const rule_keys[] = {
	"warning", "critical", "hold", "clear", NULL,
};
static const char *const imbalance_keys[] = {
	"warning", "critical", "hold", "clear", "min_load", NULL,
};
static const char *const load_lost_keys[] = {
	"below", "hold", "severity", NULL,
};
static const char *const input_load_lost_keys[] = { "below", "hold", NULL };
static const char *const hold_keys[] = { "hold", NULL };

void cfg_alarms_init(struct pm_config *cfg)
{
	struct pm_alarms *a = &cfg->alarms;

	a->enabled = true;
	a->circuit_load = (struct pm_alarm_rule){ true, 80, 100, 10, 5 };
	a->feed_load = (struct pm_alarm_rule){ true, 80, 100, 10, 5 };
	a->imbalance = (struct pm_alarm_rule){ true, 20, 40, 60, 5 };
	a->imbalance_min_load = 10;
	a->redundancy = (struct pm_alarm_rule){ true, 80, 100, 10, 5 };
	a->spool_backlog = (struct pm_alarm_rule){ true, 10, 50, 0, 1 };
	a->load_lost.enabled = true;
	a->load_lost.critical = true;
	a->load_lost.below = 0.1;
	a->load_lost.hold = 5;
	a->module_offline.enabled = true;
	a->stale.enabled = true;
	/* 0: the default, which follows the interval (finish) */
	a->module_offline.hold = 0;
	a->stale.hold = 0;
	a->command_timeout = COMMAND_TIMEOUT_DEFAULT;
	a->command_max = COMMAND_MAX_DEFAULT;
}

/* A rule's object, or false to turn it off. Returns the object, or NULL
 * when absent, off or bad. */
static json_object *rule_object(struct parse *p, json_object *ja,
				const char *key, const char *example,
				bool *enabled)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;

	if (!json_object_object_get_ex(ja, key, &v))
		return NULL;
	cfg_path_key(path, "alarms", key);
	if (json_object_is_type(v, json_type_boolean)) {
		*enabled = json_object_get_boolean(v);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, path, "expected %s, or false to turn the rule off, got %s",
			example, cfg_describe(v, d));
		return NULL;
	}
	*enabled = true;
	return v;
}

/* A number in min..max at parent.key into *out; 'what' says the unit. */
static void get_range(struct parse *p, json_object *obj, const char *parent,
		      const char *key, double min, double max, const char *what,
		      double *out)
{
	double x;

	if (cfg_get_number(p, obj, parent, key, &x) != SET)
		return;
	if (x >= min && x <= max)
		*out = x;
	else
		cfg_out_of_range(p, obj, parent, key, "%s, %g..%g", what, min, max);
}

static void parse_rule(struct parse *p, json_object *ja, const char *key,
		       const char *unit, double max, struct pm_alarm_rule *r,
		       const char *const *keys, double *min_load)
{
	char path[PATH_CAP];
	json_object *v;

	v = rule_object(p, ja, key, "{\"warning\": 80, \"critical\": 100, \"hold\": 10, \"clear\": 5}",
			&r->enabled);
	if (!v)
		return;
	cfg_path_key(path, "alarms", key);
	cfg_check_keys(p, v, path, keys, NULL);
	get_range(p, v, path, "warning", 0, max, unit, &r->warning);
	get_range(p, v, path, "critical", 0, max, unit, &r->critical);
	get_range(p, v, path, "hold", 0, HOLD_MAX, "seconds", &r->hold);
	get_range(p, v, path, "clear", 0, max, unit, &r->clear);
	if (min_load)
		get_range(p, v, path, "min_load", 0, 100, "% of capacity",
			  min_load);
	if (r->warning >= r->critical)
		cfg_err(p, path, "warning (%g) must be below critical (%g)",
			r->warning, r->critical);
	else if (r->clear >= r->warning && r->warning > 0)
		cfg_err(p, path, "clear (%g) must be below warning (%g): an alarm clears once the value falls that far below its threshold",
			r->clear, r->warning);
}

static void parse_hold(struct parse *p, json_object *ja, const char *key,
		       bool *enabled, double *hold)
{
	char path[PATH_CAP];
	json_object *v;

	v = rule_object(p, ja, key, "{\"hold\": 30}", enabled);
	if (!v)
		return;
	cfg_path_key(path, "alarms", key);
	cfg_check_keys(p, v, path, hold_keys, NULL);
	get_range(p, v, path, "hold", 1, HOLD_MAX, "seconds", hold);
}

/* "below", "hold" (and at the top "severity") of a load_lost object. */
static void parse_load_lost(struct parse *p, json_object *v, const char *path,
			    bool top, double *below, double *hold,
			    bool *critical)
{
	char d[DESC_CAP], spath[PATH_CAP];
	json_object *s;

	cfg_check_keys(p, v, path, top ? load_lost_keys : input_load_lost_keys,
		       NULL);
	get_range(p, v, path, "below", 0.001, BELOW_MAX, "amperes", below);
	get_range(p, v, path, "hold", 0, HOLD_MAX, "seconds", hold);
	if (!json_object_object_get_ex(v, "severity", &s))
		return;
	cfg_path_key(spath, path, "severity");
	if (!top)
		return;
	if (json_object_is_type(s, json_type_string) &&
	    !strcmp(json_object_get_string(s), "warning"))
		*critical = false;
	else if (json_object_is_type(s, json_type_string) &&
		 !strcmp(json_object_get_string(s), "critical"))
		*critical = true;
	else
		cfg_err(p, spath, "%s is not a severity (\"warning\" or \"critical\")",
			cfg_describe(s, d));
}

static void parse_command(struct parse *p, struct pm_alarms *a, json_object *ja)
{
	char d[DESC_CAP], path[PATH_CAP];
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(ja, "command", &v))
		return;
	n = json_object_is_type(v, json_type_array)
		? json_object_array_length(v) : 0;
	if (n == 0 || n > COMMAND_ARGS_MAX) {
		cfg_err(p, "alarms.command", "expected the program and its arguments like [\"/usr/local/bin/notify-alarm\", \"--to\", \"ops\"] (run without a shell), got %s",
			cfg_describe(v, d));
		return;
	}
	a->command = calloc(n + 1, sizeof(*a->command));
	if (!a->command) {
		p->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *arg = json_object_array_get_idx(v, i);

		cfg_path_index(path, "alarms.command", i);
		if (!json_object_is_type(arg, json_type_string) ||
		    cfg_has_control(json_object_get_string(arg))) {
			cfg_err(p, path, "expected a string without control characters, got %s",
				cfg_describe(arg, d));
			continue;
		}
		if (i == 0 && json_object_get_string(arg)[0] != '/') {
			cfg_err(p, path, "expected the program's absolute path (starting with /; no shell looks it up), got %s",
				cfg_describe(arg, d));
			continue;
		}
		a->command[a->n_command++] = cfg_strdup(p, json_object_get_string(arg));
	}
}

void cfg_alarms_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	struct pm_alarms *a = &cfg->alarms;
	char d[DESC_CAP];
	json_object *ja, *v;
	int64_t x;

	if (!json_object_object_get_ex(root, "alarms", &ja))
		return;
	if (json_object_is_type(ja, json_type_boolean)) {
		a->enabled = json_object_get_boolean(ja);
		return;
	}
	if (!json_object_is_type(ja, json_type_object)) {
		cfg_err(p, "alarms", "expected an object like {\"circuit_load\": {\"warning\": 80, \"critical\": 100}}, or false, got %s",
			cfg_describe(ja, d));
		return;
	}
	cfg_check_keys(p, ja, "alarms", alarm_keys, NULL);
	(void)cfg_get_bool(p, ja, "alarms", "enabled", &a->enabled);
	parse_rule(p, ja, "circuit_load", "% of the breaker", PERCENT_MAX,
		   &a->circuit_load, rule_keys, NULL);
	parse_rule(p, ja, "feed_load", "% of capacity", PERCENT_MAX,
		   &a->feed_load, rule_keys, NULL);
	parse_rule(p, ja, "imbalance", "%", PERCENT_MAX, &a->imbalance,
		   imbalance_keys, &a->imbalance_min_load);
	parse_rule(p, ja, "redundancy", "% of the smaller capacity",
		   PERCENT_MAX, &a->redundancy, rule_keys, NULL);
	parse_rule(p, ja, "spool_backlog", "MB", SPOOL_MB_MAX,
		   &a->spool_backlog, rule_keys, NULL);
	v = rule_object(p, ja, "load_lost", "{\"below\": 0.1, \"hold\": 5}",
			&a->load_lost.enabled);
	if (v)
		parse_load_lost(p, v, "alarms.load_lost", true,
				&a->load_lost.below, &a->load_lost.hold,
				&a->load_lost.critical);
	parse_hold(p, ja, "module_offline", &a->module_offline.enabled,
		   &a->module_offline.hold);
	parse_hold(p, ja, "stale", &a->stale.enabled, &a->stale.hold);
	parse_command(p, a, ja);
	(void)cfg_get_seconds(p, ja, "alarms", "command_timeout", 0,
			      COMMAND_TIMEOUT_MAX, &a->command_timeout);
	if (cfg_get_int(p, ja, "alarms", "command_max", 1, COMMAND_MAX_MAX,
			&x) == SET)
		a->command_max = (unsigned)x;
}

/* An input's "load_lost": true, false or {"below": A, "hold": s}. */
void cfg_alarm_load_lost(struct parse *p, json_object *ji, const char *ipath,
			 struct pm_input *in)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;

	in->load_lost_given = -1;
	in->load_lost_below = in->load_lost_hold = NAN;
	if (!json_object_object_get_ex(ji, "load_lost", &v))
		return;
	cfg_path_key(path, ipath, "load_lost");
	if (json_object_is_type(v, json_type_boolean)) {
		in->load_lost_given = json_object_get_boolean(v);
		return;
	}
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, path, "expected true, false or {\"below\": 0.1, \"hold\": 5}, got %s",
			cfg_describe(v, d));
		return;
	}
	in->load_lost_given = 1;
	parse_load_lost(p, v, path, false, &in->load_lost_below,
			&in->load_lost_hold, NULL);
}

/* What alarms call each input: its name, unless another input has it. */
static void subjects(struct parse *p, struct pm_config *cfg)
{
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t k = 0; k < dev->n_inputs; k++) {
			struct pm_input *in = &dev->inputs[k];
			bool twice = false;
			char buf[NAME_MAX_LEN + 64];

			if (!in->name)
				continue;
			for (size_t e = 0; e < cfg->n_devices && !twice; e++)
				for (size_t j = 0; j < cfg->devices[e].n_inputs; j++) {
					const struct pm_input *o =
						&cfg->devices[e].inputs[j];

					if (o != in && o->name &&
					    !strcmp(o->name, in->name)) {
						twice = true;
						break;
					}
				}
			if (twice)
				(void)snprintf(buf, sizeof(buf),
					       "%s (device %d input %c)", in->name,
					       dev->id, pm_channel_letter(in->channel));
			else
				(void)snprintf(buf, sizeof(buf), "%s", in->name);
			in->subject = cfg_strdup(p, buf);
		}
	}
}

void cfg_alarms_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	struct pm_alarms *a = &cfg->alarms;
	double offline_min = OFFLINE_HOLD_INTERVALS * cfg->interval;
	double stale_min = STALE_HOLD_INTERVALS * cfg->interval;

	(void)root;
	if (a->module_offline.hold == 0)
		a->module_offline.hold = fmax(OFFLINE_HOLD_DEFAULT, offline_min);
	if (a->stale.hold == 0)
		a->stale.hold = fmax(STALE_HOLD_DEFAULT, stale_min);
	subjects(p, cfg);
	for (size_t d = 0; d < cfg->n_devices; d++) {
		for (size_t k = 0; k < cfg->devices[d].n_inputs; k++) {
			struct pm_input *in = &cfg->devices[d].inputs[k];

			/* by default the circuits of a feed: those are the
			 * ones a datacenter cannot lose */
			in->load_lost = a->enabled && a->load_lost.enabled &&
				(in->load_lost_given < 0 ? in->feed >= 0
				 : in->load_lost_given);
			if (isnan(in->load_lost_below))
				in->load_lost_below = a->load_lost.below;
			if (isnan(in->load_lost_hold))
				in->load_lost_hold = a->load_lost.hold;
		}
	}
}

void cfg_alarms_free(struct pm_config *cfg)
{
	for (size_t i = 0; i < cfg->alarms.n_command; i++)
		free(cfg->alarms.command[i]);
	free(cfg->alarms.command);
}
