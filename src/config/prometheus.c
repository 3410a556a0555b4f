/* prometheus.c — "prometheus": the textfile node_exporter's textfile
 * collector reads, which powermeterd replaces at every tick (its content:
 * output/promtext.h). Only its place is configured; the directory must
 * exist, as it is node_exporter's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"

#define PROM_SUFFIX ".prom"
/* The temporary beside it is ".<name>.<pid>.<serial>.tmp": its name must
 * stay within NAME_MAX (255) bytes. */
#define PROM_NAME_MAX 200

static const char *const prometheus_keys[] = { "textfile", NULL };

#define EXAMPLE "/var/lib/prometheus/node-exporter/powermeter.prom"

/* The file's directory exists and is one. Programs that never write the
 * file (PM_CONFIG_NO_SECRETS: read, json, zabbix) do not look: the Zabbix
 * agent's user need not see node_exporter's directory. */
static void check_directory(struct parse *p, const char *file)
{
	const char *slash = strrchr(file, '/');
	struct stat st;
	char *dir;

	if (p->flags & PM_CONFIG_NO_SECRETS)
		return;
	dir = strndup(file, slash == file ? 1 : (size_t)(slash - file));
	if (!dir) {
		p->nomem = true;
		return;
	}
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			cfg_err(p, "prometheus.textfile", "directory %s does not exist; create it, and point node_exporter's --collector.textfile.directory there",
				dir);
		else
			cfg_err(p, "prometheus.textfile", "cannot use directory %s: %s",
				dir, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		cfg_err(p, "prometheus.textfile", "%s is not a directory; the file goes into the directory node_exporter's --collector.textfile.directory points to",
			dir);
	} else if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
		cfg_err(p, "prometheus.textfile", "%s is a directory, not a file",
			file);
	}
	free(dir);
}

void cfg_prometheus_parse(struct parse *p, struct pm_config *cfg,
			  json_object *root)
{
	char d[DESC_CAP];
	const char *name;
	json_object *v, *jt;
	char *file = NULL;
	size_t n;

	if (!json_object_object_get_ex(root, "prometheus", &v))
		return;
	if (!json_object_is_type(v, json_type_object)) {
		cfg_err(p, "prometheus", "expected an object like {\"textfile\": \"" EXAMPLE "\"}, got %s",
			cfg_describe(v, d));
		return;
	}
	cfg_check_keys(p, v, "prometheus", prometheus_keys, NULL);
	if (!json_object_object_get_ex(v, "textfile", &jt)) {
		cfg_missing(p, "prometheus", "textfile",
			    "the file node_exporter's textfile collector reads, e.g. " EXAMPLE);
		return;
	}
	if (cfg_get_string(p, v, "prometheus", "textfile", S_ABSPATH,
			   &file) != SET)
		return;
	name = strrchr(file, '/') + 1;
	n = strlen(name);
	if (n < strlen(PROM_SUFFIX) ||
	    strcmp(name + n - strlen(PROM_SUFFIX), PROM_SUFFIX)) {
		cfg_err(p, "prometheus.textfile", "%s does not end in \"" PROM_SUFFIX "\": node_exporter's textfile collector reads only *" PROM_SUFFIX " files, e.g. " EXAMPLE,
			cfg_describe(jt, d));
		free(file);
		return;
	}
	if (n == strlen(PROM_SUFFIX)) {
		cfg_err(p, "prometheus.textfile", "%s has no name before \"" PROM_SUFFIX "\", e.g. " EXAMPLE,
			cfg_describe(jt, d));
		free(file);
		return;
	}
	if (n > PROM_NAME_MAX) {
		cfg_err(p, "prometheus.textfile", "the file's name is too long (%zu bytes, at most %d)",
			n, PROM_NAME_MAX);
		free(file);
		return;
	}
	check_directory(p, file);
	cfg->prometheus = calloc(1, sizeof(*cfg->prometheus));
	if (!cfg->prometheus) {
		p->nomem = true;
		free(file);
		return;
	}
	cfg->prometheus->textfile = file;
}

void cfg_prometheus_free(struct pm_config *cfg)
{
	if (cfg->prometheus)
		free(cfg->prometheus->textfile);
	free(cfg->prometheus);
}
