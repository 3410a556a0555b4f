/* influxconf.h — the seed's /etc/powermeter/influx.conf (INI, section
 * [influx]), read as the seed read it. */
#ifndef PM_INFLUXCONF_H
#define PM_INFLUXCONF_H

#include <stdbool.h>

#include "util/buf.h"
#include "util/errlist.h"

/* The keys the seed's influx.conf knows, in its own order. */
enum pm_ic_key {
	PM_IC_URL,
	PM_IC_VERIFY_SSL,
	PM_IC_TOKEN,
	PM_IC_ORG,
	PM_IC_BUCKET,
	PM_IC_MEASUREMENT,
	PM_IC_INTERVAL,
	PM_IC_NKEYS
};

extern const char *const pm_influxconf_keys[PM_IC_NKEYS];

struct pm_influxconf {
	char *path;			/* as it appears in messages */
	char *value[PM_IC_NKEYS];	/* trimmed text, NULL when not set */
	unsigned line[PM_IC_NKEYS];	/* line each key was set on */
	bool verify_ssl;		/* parsed value[PM_IC_VERIFY_SSL] */
	double interval;		/* parsed value[PM_IC_INTERVAL], seconds */
};

/* The seed's influx.conf interval, seconds (same range as the JSON's). */
#define PM_INTERVAL_MIN 0.1
#define PM_INTERVAL_MAX 3600.0

/* Largest influx.conf read; the seed's sample is 1 KiB. */
#define PM_INFLUXCONF_MAX (64 * 1024)

/* "DIR/influx.conf" for the JSON config at 'json_path' (a bare file name
 * gives "influx.conf"). malloc'd; NULL on ENOMEM. */
char *pm_influxconf_path_beside(const char *json_path);

/* Reads the INI file at 'path' into *ic the way Python's configparser read
 * it for the seed: section [influx]; "key = value" or "key: value"; keys
 * case-insensitive; full-line '#' and ';' comments; verify_ssl as
 * configparser's getboolean (1/yes/true/on, 0/no/false/off). Unknown keys and
 * sections, keys given twice, bad booleans and numbers are errors, appended
 * to 'errs' as "path:LINE: message"; a value is never echoed for "token".
 * Returns 0; -PM_ECONFIG when errors were added (*ic then holds the values
 * that were fine, so the caller can check the rest); -ENOENT when there is no
 * such file; other -errno when it cannot be read (*ic untouched for these).
 * After 0 or -PM_ECONFIG the caller frees *ic with pm_influxconf_free(). */
int pm_influxconf_load(struct pm_influxconf *ic, const char *path,
		       struct pm_errlist *errs);
void pm_influxconf_free(struct pm_influxconf *ic);

/* Closest of 'known' (NULL-terminated) to an unknown key when it is
 * plausibly a typo ("baud" for "baudrate"), else NULL. */
const char *pm_config_suggest(const char *key, const char *const *known);

#endif
