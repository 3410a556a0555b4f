/* influxconf.c — reads the seed's influx.conf (INI, section [influx]) the way
 * the seed's Python configparser did, so an existing install keeps working.
 * Merging it with the JSON config is influx.c's job. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <powermeter/powermeter.h>

#include "util/fileio.h"
#include "config/influxconf.h"

const char *const pm_influxconf_keys[PM_IC_NKEYS] = {
	[PM_IC_URL] = "url",
	[PM_IC_VERIFY_SSL] = "verify_ssl",
	[PM_IC_TOKEN] = "token",
	[PM_IC_ORG] = "org",
	[PM_IC_BUCKET] = "bucket",
	[PM_IC_MEASUREMENT] = "measurement",
	[PM_IC_INTERVAL] = "interval",
};

/* Longest key, section or value echoed back in a message. */
#define ECHO_MAX 40

char *pm_influxconf_path_beside(const char *json_path)
{
	const char *slash = strrchr(json_path, '/');
	size_t dir_len;
	char *p;

	if (!slash)
		return strdup("influx.conf");
	dir_len = (size_t)(slash - json_path) + 1;
	p = malloc(dir_len + sizeof("influx.conf"));
	if (!p)
		return NULL;
	memcpy(p, json_path, dir_len);
	memcpy(p + dir_len, "influx.conf", sizeof("influx.conf"));
	return p;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* configparser's RawConfigParser.BOOLEAN_STATES. */
static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int key_index(const char *key)
{
	for (int i = 0; i < PM_IC_NKEYS; i++)
		if (!strcmp(pm_influxconf_keys[i], key))
			return i;
	return -1;
}

static void unknown_key(struct pm_errlist *errs, const char *path,
			unsigned line, const char *key)
{
	const char *known[PM_IC_NKEYS + 1];
	const char *hint;

	for (int i = 0; i < PM_IC_NKEYS; i++)
		known[i] = pm_influxconf_keys[i];
	known[PM_IC_NKEYS] = NULL;
	hint = pm_config_suggest(key, known);
	if (hint)
		pm_errlist_add(errs, "%s:%u: unknown key \"%.*s\" (did you mean \"%s\"?)",
			       path, line, ECHO_MAX, key, hint);
	else
		pm_errlist_add(errs, "%s:%u: unknown key \"%.*s\" (known: url, verify_ssl, token, org, bucket, measurement, interval)",
			       path, line, ECHO_MAX, key);
}

/* Checks the values once every line is in; messages point at their line.
 * A bad value is dropped, so what remains can still be checked. */
static void check_values(struct pm_influxconf *ic, struct pm_errlist *errs)
{
	for (int i = 0; i < PM_IC_NKEYS; i++) {
		const char *v = ic->value[i];
		bool bad = true;

		if (!v)
			continue;
		if (!*v)
			pm_errlist_add(errs, "%s:%u: %s: the value is empty",
				       ic->path, ic->line[i],
				       pm_influxconf_keys[i]);
		else if (has_control(v))
			pm_errlist_add(errs, "%s:%u: %s: contains a control character",
				       ic->path, ic->line[i],
				       pm_influxconf_keys[i]);
		else if (i == PM_IC_VERIFY_SSL && parse_bool(v, &ic->verify_ssl))
			pm_errlist_add(errs, "%s:%u: verify_ssl: expected True or False, got \"%.*s\"",
				       ic->path, ic->line[i], ECHO_MAX, v);
		else if (i == PM_IC_INTERVAL && parse_seconds(v, &ic->interval))
			pm_errlist_add(errs, "%s:%u: interval: expected seconds, got \"%.*s\"",
				       ic->path, ic->line[i], ECHO_MAX, v);
		else if (i == PM_IC_INTERVAL && (ic->interval < PM_INTERVAL_MIN ||
						 ic->interval > PM_INTERVAL_MAX))
			pm_errlist_add(errs, "%s:%u: interval: %s is out of range (0.1..3600 seconds)",
				       ic->path, ic->line[i], v);
		else
			bad = false;
		if (bad) {
			free(ic->value[i]);
			ic->value[i] = NULL;
		}
	}
}

int pm_influxconf_load(struct pm_influxconf *ic, const char *path,
		       struct pm_errlist *errs)
{
	struct pm_influxconf n = { 0 };
	enum { NONE, INFLUX, OTHER } section = NONE;
	unsigned before = errs->count, lineno = 0, influx_line = 0;
	char *data = NULL, *line, *next;
	size_t len;
	int r;

	r = pm_read_file_capped(path, PM_INFLUXCONF_MAX, &data, &len);
	if (r == -PM_ETOOBIG) {
		pm_errlist_add(errs, "%s: larger than %d KiB, not an influx.conf",
			       path, PM_INFLUXCONF_MAX / 1024);
		return -PM_ECONFIG;
	}
	if (r < 0)
		return r;
	n.path = strdup(path);
	if (!n.path) {
		r = -ENOMEM;
		goto out;
	}
	if (strlen(data) != len)
		pm_errlist_add(errs, "%s: contains a NUL byte, not a text file",
			       path);

	for (line = data; line; line = next) {
		char *s, *delim, *key, *value;
		int idx;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			char *name;

			if (!close || close[1]) {
				pm_errlist_add(errs, "%s:%u: expected a section header like [influx]",
					       path, lineno);
				continue;
			}
			*close = '\0';
			name = trim(s + 1);
			if (strcmp(name, "influx")) {
				pm_errlist_add(errs, "%s:%u: unknown section [%.*s] (only [influx] is read)",
					       path, lineno, ECHO_MAX, name);
				section = OTHER;
			} else if (influx_line) {
				pm_errlist_add(errs, "%s:%u: section [influx] given twice (first on line %u)",
					       path, lineno, influx_line);
				section = OTHER;
			} else {
				influx_line = lineno;
				section = INFLUX;
			}
			continue;
		}
		if (section == NONE) {
			pm_errlist_add(errs, "%s:%u: a setting before the [influx] section",
				       path, lineno);
			continue;
		}
		if (section == OTHER)
			continue;
		/* configparser splits at the first '=' or ':'. */
		delim = s + strcspn(s, "=:");
		if (!*delim) {
			pm_errlist_add(errs, "%s:%u: expected \"key = value\"",
				       path, lineno);
			continue;
		}
		*delim = '\0';
		key = trim(s);
		value = trim(delim + 1);
		for (char *k = key; *k; k++)
			*k = (char)tolower((unsigned char)*k);
		if (!*key) {
			pm_errlist_add(errs, "%s:%u: a value without a key",
				       path, lineno);
			continue;
		}
		idx = key_index(key);
		if (idx < 0) {
			unknown_key(errs, path, lineno, key);
			continue;
		}
		if (n.value[idx]) {
			pm_errlist_add(errs, "%s:%u: %s given twice (first on line %u)",
				       path, lineno, key, n.line[idx]);
			continue;
		}
		n.value[idx] = strdup(value);
		if (!n.value[idx]) {
			r = -ENOMEM;
			goto out;
		}
		n.line[idx] = lineno;
	}
	if (!influx_line)
		pm_errlist_add(errs, "%s: no [influx] section", path);
	check_values(&n, errs);
	*ic = n;
	memset(&n, 0, sizeof(n));
	r = errs->count != before ? -PM_ECONFIG : 0;
out:
	pm_influxconf_free(&n);
	free(data);
	return r;
}

void pm_influxconf_free(struct pm_influxconf *ic)
{
	free(ic->path);
	for (int i = 0; i < PM_IC_NKEYS; i++)
		free(ic->value[i]);
	memset(ic, 0, sizeof(*ic));
}
