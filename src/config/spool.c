/* spool.c — "spool": where lines wait while InfluxDB cannot take them, and
 * how much of them is kept. */
#include <stdint.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

#define SPOOL_MB_MAX 100000

static const char *const spool_keys[] = { "dir", "max_mb", NULL };

void cfg_spool_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	char d[DESC_CAP];
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(root, "spool", &v))
		return;
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, "spool", "expected an object like {\"max_mb\": 100}, got %s",
			cfg_describe(v, d));
		return;
	}
	cfg_check_keys(p, v, "spool", spool_keys, NULL);
	(void)cfg_get_string(p, v, "spool", "dir", S_ABSPATH, &cfg->spool_dir);
	if (cfg_get_int(p, v, "spool", "max_mb", 1, SPOOL_MB_MAX, &x) == SET)
		cfg->spool_max_bytes = (uint64_t)x * 1024 * 1024;
}

/* The defaults: <state_dir>/spool (the "snapshot" section, before this one
 * in the registry, has settled state_dir), 100 MB. */
void cfg_spool_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	if (!cfg->spool_dir && cfg->state_dir)
		cfg->spool_dir = cfg_join_path(p, cfg->state_dir, "spool");
	if (!cfg->spool_max_bytes)	/* "max_mb" is at least 1 */
		cfg->spool_max_bytes = PM_DEFAULT_SPOOL_MAX;
}

void cfg_spool_free(struct pm_config *cfg)
{
	free(cfg->spool_dir);
}
