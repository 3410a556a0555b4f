/* ledger.c — "ledger": the SQLite file powermeterd appends every circuit's
 * counters to at each boundary of its interval (billing: `powermeter
 * report`), where it lives and how long rows are kept. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

#define INTERVAL_MAX 3600
#define RETENTION_MAX (100 * 366)

static const char *const ledger_keys[] = {
	"enabled", "interval", "path", "retention_days", NULL,
};

void cfg_ledger_init(struct pm_config *cfg)
{
	cfg->ledger.enabled = true;
	cfg->ledger.interval = PM_DEFAULT_LEDGER_INTERVAL;
}

void cfg_ledger_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	char d[DESC_CAP];
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(root, "ledger", &v))
		return;
	cfg->ledger.given = true;
	if (json_object_is_type(v, json_type_boolean)) {
		cfg->ledger.enabled = json_object_get_boolean(v);
		return;
	}
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, "ledger", "expected an object like {\"interval\": 900}, or false, got %s",
			cfg_describe(v, d));
		return;
	}
	cfg_check_keys(p, v, "ledger", ledger_keys, NULL);
	(void)cfg_get_bool(p, v, "ledger", "enabled", &cfg->ledger.enabled);
	if (cfg_get_int(p, v, "ledger", "interval", 1, INTERVAL_MAX, &x) == SET) {
		if (3600 % x == 0)
			cfg->ledger.interval = (unsigned)x;
		else
			cfg_out_of_range(p, v, "ledger", "interval",
					 "seconds that divide an hour, e.g. 60, 300, 900 or 3600");
	}
	(void)cfg_get_string(p, v, "ledger", "path", S_ABSPATH, &cfg->ledger.path);
	if (cfg_get_int(p, v, "ledger", "retention_days", 0, RETENTION_MAX,
			&x) == SET)
		cfg->ledger.retention_days = (unsigned)x;
}

/* The default path (<state_dir>/ledger.sqlite: "snapshot" has settled
 * state_dir), and the counters it needs. */
void cfg_ledger_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	if (!cfg->ledger.enabled)
		return;
	if (!cfg->energy.enabled) {
		/* asked for: a contradiction; by default: quietly off */
		if (cfg->ledger.given && root)
			cfg_err(p, "ledger", "needs the energy counters, but \"energy\" has \"enabled\": false; turn one on or the ledger off (\"ledger\": false)");
		cfg->ledger.enabled = false;
		return;
	}
	if (!cfg->ledger.path && cfg->state_dir)
		cfg->ledger.path = cfg_join_path(p, cfg->state_dir,
						 PM_LEDGER_FILE);
}

void cfg_ledger_free(struct pm_config *cfg)
{
	free(cfg->ledger.path);
}
