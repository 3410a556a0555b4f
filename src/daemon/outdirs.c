/* outdirs.c — the directories powermeterd writes into (outdirs.h): made
 * when missing, and checked that nobody but us and root could swap what we
 * write there for a file of their own (a snapshot feeding Zabbix false
 * currents) or a FIFO (a poller waiting for ever). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/outdirs.h"
#include "util/atomicfile.h"
#include "util/log.h"

/* mkdir -p; a directory we may not create is reported and left to the sink
 * that needs it to fail on. */
static void make_dir(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST) {
			log_warning("cannot create directory %s: %s, ignoring",
				    tmp, strerror(errno));
			return;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
}

/* The directory part of 'file' into 'dir' ("/" for a file in /); NULL when
 * it does not fit. Returns the name part. */
static const char *split_path(const char *file, char *dir, size_t size)
{
	const char *slash = strrchr(file, '/');
	size_t n;

	if (!slash) {
		(void)snprintf(dir, size, ".");
		return file;
	}
	n = slash == file ? 1 : (size_t)(slash - file);
	if (n >= size)
		return NULL;
	memcpy(dir, file, n);
	dir[n] = '\0';
	return slash + 1;
}

void pm_outdirs_prepare(const struct pm_config *cfg)
{
	char dir[4096];

	if (cfg->energy.enabled && cfg->state_dir)
		make_dir(cfg->state_dir, 0750);
	if (cfg->influx && cfg->spool_dir)
		make_dir(cfg->spool_dir, 0750);
	if (cfg->snapshot && split_path(cfg->snapshot, dir, sizeof(dir)) &&
	    strcmp(dir, "/") != 0)
		make_dir(dir, 0755);
}

#define OUTPUTS 5

int pm_outdirs_check(const struct pm_config *cfg)
{
	const struct {
		const char *key;	/* where the config names it */
		const char *path;	/* NULL: not written */
		bool file;		/* a file in the directory to check */
	} out[OUTPUTS] = {
		{ "snapshot", cfg->snapshot, true },
		{ "prometheus.textfile",
		  cfg->prometheus ? cfg->prometheus->textfile : NULL, true },
		{ "state_directory", cfg->energy.enabled || cfg->alarms.enabled
				     ? cfg->state_dir : NULL, false },
		{ "ledger.path", cfg->ledger.enabled ? cfg->ledger.path : NULL,
		  true },
		{ "spool.dir", cfg->influx ? cfg->spool_dir : NULL, false },
	};
	char dir[4096], why[1024];
	int r = 0;

	for (size_t i = 0; i < OUTPUTS; i++) {
		const char *name = NULL;	/* the file, for a file */
		bool fits;

		if (!out[i].path || !*out[i].path)
			continue;
		if (out[i].file) {
			name = split_path(out[i].path, dir, sizeof(dir));
			fits = name != NULL;
		} else {
			fits = snprintf(dir, sizeof(dir), "%s", out[i].path) <
			       (int)sizeof(dir);
		}
		if (!fits)
			continue;	/* too long to be a path */
		/* A missing directory is its writer's to report, if it is
		 * still missing when it writes. */
		if (pm_dir_check_private(dir, name, why, sizeof(why)) ==
		    -EPERM) {
			log_err("%s: %s", out[i].key, why);
			r = -EPERM;
		}
	}
	return r;
}
