/* snapshot.c — "snapshot", the file of the latest values, and the state and
 * runtime directories it, the spool and the daemon's other files go in. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

void cfg_snapshot_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	(void)cfg_get_string(p, root, "", "state_directory", S_ABSPATH,
			     &cfg->state_dir);
	(void)cfg_get_string(p, root, "", "runtime_directory", S_ABSPATH,
			     &cfg->runtime_dir);
	(void)cfg_get_string(p, root, "", "snapshot", S_ABSPATH, &cfg->snapshot);
}

/* $STATE_DIRECTORY and friends may list several paths, ':'-separated. */
static char *env_dir(struct parse *p, const char *name, const char *def)
{
	const char *v = getenv(name);
	char *d;

	if (!v || v[0] != '/')
		return cfg_strdup(p, def);
	d = strndup(v, strcspn(v, ":"));
	if (!d)
		p->nomem = true;
	return d;
}

/* The defaults: the directories systemd gives the service, or the usual
 * ones; the snapshot in the runtime directory. */
void cfg_snapshot_finish(struct parse *p, struct pm_config *cfg,
			 json_object *root)
{
	if (!cfg->state_dir)
		cfg->state_dir = env_dir(p, "STATE_DIRECTORY", PM_DEFAULT_STATE_DIR);
	if (!cfg->runtime_dir)
		cfg->runtime_dir = env_dir(p, "RUNTIME_DIRECTORY",
					   PM_DEFAULT_RUNTIME_DIR);
	if (!cfg->snapshot && cfg->runtime_dir)
		cfg->snapshot = cfg_join_path(p, cfg->runtime_dir, "values.json");
}

void cfg_snapshot_free(struct pm_config *cfg)
{
	free(cfg->state_dir);
	free(cfg->runtime_dir);
	free(cfg->snapshot);
}
