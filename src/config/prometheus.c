/* prometheus.c — "prometheus": the textfile node_exporter's textfile
 * collector reads. (Stub: being written.) */
#include <stdlib.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

void cfg_prometheus_parse(struct parse *p, struct pm_config *cfg,
			  json_object *root)
{
	(void)p;
	(void)cfg;
	(void)root;
}

void cfg_prometheus_free(struct pm_config *cfg)
{
	if (cfg->prometheus)
		free(cfg->prometheus->textfile);
	free(cfg->prometheus);
}
