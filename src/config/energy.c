/* energy.c — "energy": whether powermeterd keeps energy counters, the
 * longest gap between two samples it integrates over, and how often it
 * saves the counters. */
#include <stdbool.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

#define MAX_GAP_DEFAULT_INTERVALS 10
#define MAX_GAP_MIN_INTERVALS 2
#define MAX_GAP_MAX 86400.0
#define PERSIST_MIN 1.0
#define PERSIST_MAX 86400.0

static const char *const energy_keys[] = {
	"enabled", "max_gap", "persist_interval", NULL,
};

void cfg_energy_init(struct pm_config *cfg)
{
	cfg->energy.enabled = true;
}

void cfg_energy_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	char d[DESC_CAP];
	json_object *v;

	if (!json_object_object_get_ex(root, "energy", &v))
		return;
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, "energy", "expected an object like {\"max_gap\": 10, \"persist_interval\": 60}, got %s",
			cfg_describe(v, d));
		return;
	}
	cfg_check_keys(p, v, "energy", energy_keys, NULL);
	(void)cfg_get_bool(p, v, "energy", "enabled", &cfg->energy.enabled);
	(void)cfg_get_seconds(p, v, "energy", "max_gap", 0, MAX_GAP_MAX,
			      &cfg->energy.max_gap);
	(void)cfg_get_seconds(p, v, "energy", "persist_interval", PERSIST_MIN,
			      PERSIST_MAX, &cfg->energy.persist_interval);
}

/* The defaults need the interval, which influx.conf may set: here, not in
 * parse. A gap shorter than two intervals would count every late answer
 * as unmetered. */
void cfg_energy_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	if (cfg->energy.max_gap == 0) {
		cfg->energy.max_gap = MAX_GAP_DEFAULT_INTERVALS * cfg->interval;
	} else if (cfg->energy.max_gap < MAX_GAP_MIN_INTERVALS * cfg->interval) {
		cfg_err(p, root ? "energy.max_gap" : "", "%g s is shorter than two poll intervals (%g s): every late answer would count as unmetered",
			cfg->energy.max_gap, MAX_GAP_MIN_INTERVALS * cfg->interval);
	}
	if (cfg->energy.persist_interval == 0)
		cfg->energy.persist_interval = PM_DEFAULT_PERSIST_INTERVAL;
}
