/* parse.c — the machinery every section uses: errors at a JSON path, how a
 * value or key is shown, unknown keys and their suggestions, typed getters. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "config/influxconf.h"
#include "config/parse.h"

/* ---- messages, paths and the values shown in them ----------------------- */

/* One error at a JSON path ("" for the whole file). */
void cfg_err(struct parse *p, const char *path, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (*path)
		pm_errlist_add(p->errs, "%s: %s: %s", p->file, path, msg);
	else
		pm_errlist_add(p->errs, "%s: %s", p->file, msg);
}

void cfg_missing(struct parse *p, const char *path, const char *key,
		 const char *what)
{
	cfg_err(p, path, "missing \"%s\" (%s)", key, what);
}

char *cfg_strdup(struct parse *p, const char *s)
{
	char *d = strdup(s);

	if (!d)
		p->nomem = true;
	return d;
}

bool cfg_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

char *cfg_join_path(struct parse *p, const char *dir, const char *name)
{
	char *s;

	if (asprintf(&s, "%s/%s", dir, name) < 0) {
		p->nomem = true;
		return NULL;
	}
	return s;
}

/* Appends to a JSON path, cutting it at PATH_CAP. */
static void path_append(char *buf, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (n > PATH_CAP - 1 - *len)
		n = PATH_CAP - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

void cfg_path_key(char *buf, const char *parent, const char *key)
{
	size_t len = 0;

	buf[0] = '\0';
	path_append(buf, &len, parent);
	if (*parent)
		path_append(buf, &len, ".");
	path_append(buf, &len, key);
}

void cfg_path_index(char *buf, const char *parent, size_t i)
{
	char index[32];
	size_t len = 0;

	(void)snprintf(index, sizeof(index), "[%zu]", i);
	buf[0] = '\0';
	path_append(buf, &len, parent);
	path_append(buf, &len, index);
}

/* A JSON value as it appears in a message: "x", 14400, true, an object. */
const char *cfg_describe(json_object *v, char *buf)
{
	const char *s;
	size_t len, cut;

	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	default:
		break;
	}
	s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(s);
	if (len < DESC_CAP) {
		memcpy(buf, s, len + 1);
		return buf;
	}
	cut = DESC_CAP - 8;
	while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;	/* not inside a UTF-8 sequence */
	(void)snprintf(buf, DESC_CAP, "%.*s...%s", (int)cut, s,
		       json_object_is_type(v, json_type_string) ? "\"" : "");
	return buf;
}

/* A value's kind only, for secrets. */
const char *cfg_kind(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_int:
	case json_type_double:
		return "a number";
	case json_type_string:
		return "a string";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	}
	return "something else";
}

/* A key as it appears in a message: quoted, cut short, control characters
 * shown as '?'. */
const char *cfg_show_key(const char *key, char *buf)
{
	size_t i;

	for (i = 0; key[i] && i < DESC_CAP - 4; i++)
		buf[i] = ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) ?
			'?' : key[i];
	if (key[i]) {
		while (i > 0 && ((unsigned char)key[i] & 0xc0) == 0x80)
			i--;
		buf[i++] = '.';
		buf[i++] = '.';
		buf[i++] = '.';
	}
	buf[i] = '\0';
	return buf;
}

/* ---- unknown keys: suggestions, where they belong ---------------------- */

/* Words people use for a key, when no spelling is close. */
static const struct {
	const char *word, *key;
} key_aliases[] = {
	{ "baud", "baudrate" }, { "speed", "baudrate" },
	{ "databits", "bytesize" }, { "data_bits", "bytesize" },
	{ "unit", "address" }, { "unit_id", "address" },
	{ "slave", "address" }, { "slave_id", "address" },
	{ "channel", "input" }, { "device", "port" }, { "tty", "port" },
	{ "db", "database" }, { "user", "username" },
};

static unsigned edit_distance(const char *a, const char *b)
{
	/* Optimal string alignment: a swap of neighbours counts once. */
	unsigned d[33][33];
	size_t la = strlen(a), lb = strlen(b);

	if (la > 32 || lb > 32)
		return UINT_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			unsigned v = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 &&
			    ca == tolower((unsigned char)b[j - 2]) &&
			    cb == tolower((unsigned char)a[i - 2]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *pm_config_suggest(const char *key, const char *const *known)
{
	size_t klen = strlen(key);
	unsigned limit = klen <= 4 ? 1 : 2, best_d = UINT_MAX;
	const char *best = NULL;

	if (klen == 0 || klen > 32)
		return NULL;
	for (size_t i = 0; known[i]; i++) {
		unsigned d = edit_distance(key, known[i]);

		/* A prefix of three letters or more: "baud" for "baudrate". */
		if (d > 1 && klen >= 3 && strlen(known[i]) > klen &&
		    !strncasecmp(known[i], key, klen))
			d = 1;
		if (d <= limit && d < best_d) {
			best = known[i];
			best_d = d;
		}
	}
	if (best)
		return best;
	for (size_t i = 0; i < sizeof(key_aliases) / sizeof(key_aliases[0]); i++) {
		if (strcasecmp(key, key_aliases[i].word))
			continue;
		for (size_t k = 0; known[k]; k++)
			if (!strcmp(known[k], key_aliases[i].key))
				return known[k];
	}
	return NULL;
}

static void join_keys(char *buf, size_t n, const char *const *known)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; known[i] && len < n; i++) {
		int w = snprintf(buf + len, n - len, "%s%s", i ? ", " : "",
				 known[i]);

		if (w < 0)
			break;
		len += (size_t)w;
	}
}

bool cfg_is_known(const char *key, const char *const *known)
{
	for (size_t i = 0; known[i]; i++)
		if (!strcmp(key, known[i]))
			return true;
	return false;
}

/* Reports every key of 'obj' that is not in 'known'. 'elsewhere' (or NULL)
 * says where a key that belongs at another level goes. */
void cfg_check_keys(struct parse *p, json_object *obj, const char *path,
		    const char *const *known,
		    const char *(*elsewhere)(const char *key))
{
	json_object_object_foreach(obj, key, val) {
		char shown[DESC_CAP], list[512];
		const char *hint, *where;

		(void)val;
		if (cfg_is_known(key, known))
			continue;
		cfg_show_key(key, shown);
		hint = pm_config_suggest(key, known);
		where = elsewhere ? elsewhere(key) : NULL;
		if (hint) {
			cfg_err(p, path, "unknown key \"%s\" (did you mean \"%s\"?)",
				shown, hint);
		} else if (where) {
			cfg_err(p, path, "unknown key \"%s\" (%s)", shown, where);
		} else {
			join_keys(list, sizeof(list), known);
			cfg_err(p, path, "unknown key \"%s\" (known keys: %s)",
				shown, list);
		}
	}
}

/* ---- typed getters: ABSENT, SET (and *out written) or BAD (reported) ---- */

int cfg_get_int(struct parse *p, json_object *obj, const char *parent,
		const char *key, int64_t min, int64_t max, int64_t *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	cfg_path_key(path, parent, key);
	if (!json_object_is_type(v, json_type_int)) {
		cfg_err(p, path, "expected a whole number, got %s", cfg_describe(v, d));
		return BAD;
	}
	x = json_object_get_int64(v);
	if (x < min || x > max) {
		cfg_err(p, path, "%s is out of range (%lld..%lld)", cfg_describe(v, d),
			(long long)min, (long long)max);
		return BAD;
	}
	*out = x;
	return SET;
}

int cfg_get_number(struct parse *p, json_object *obj, const char *parent,
		   const char *key, double *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	double x;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	cfg_path_key(path, parent, key);
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double)) {
		cfg_err(p, path, "expected a number, got %s", cfg_describe(v, d));
		return BAD;
	}
	x = json_object_get_double(v);
	if (!isfinite(x)) {
		cfg_err(p, path, "expected a finite number, got %s", cfg_describe(v, d));
		return BAD;
	}
	*out = x;
	return SET;
}

void cfg_out_of_range(struct parse *p, json_object *obj, const char *parent,
		      const char *key, const char *why_fmt, ...)
{
	char path[PATH_CAP], d[DESC_CAP], why[256];
	json_object *v = NULL;
	va_list ap;

	va_start(ap, why_fmt);
	(void)vsnprintf(why, sizeof(why), why_fmt, ap);
	va_end(ap);
	cfg_path_key(path, parent, key);
	(void)json_object_object_get_ex(obj, key, &v);
	cfg_err(p, path, "%s is out of range (%s)", cfg_describe(v, d), why);
}

/* A number of seconds in min..max (min itself excluded when min is 0). */
int cfg_get_seconds(struct parse *p, json_object *obj, const char *parent,
		    const char *key, double min, double max, double *out)
{
	double x;
	int r;

	r = cfg_get_number(p, obj, parent, key, &x);
	if (r != SET)
		return r;
	if ((min == 0 ? x <= 0 : x < min) || x > max) {
		if (min == 0)
			cfg_out_of_range(p, obj, parent, key,
					 "more than 0, at most %g seconds", max);
		else
			cfg_out_of_range(p, obj, parent, key, "%g..%g seconds",
					 min, max);
		return BAD;
	}
	*out = x;
	return SET;
}

int cfg_get_bool(struct parse *p, json_object *obj, const char *parent,
		 const char *key, bool *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	if (!json_object_is_type(v, json_type_boolean)) {
		cfg_path_key(path, parent, key);
		cfg_err(p, path, "expected true or false, got %s", cfg_describe(v, d));
		return BAD;
	}
	*out = json_object_get_boolean(v);
	return SET;
}

/* A non-empty string without control characters; *out is malloc'd. */
int cfg_get_string(struct parse *p, json_object *obj, const char *parent,
		   const char *key, unsigned flags, char **out)
{
	char path[PATH_CAP], d[DESC_CAP];
	size_t max = flags & S_NAME ? NAME_MAX_LEN : STRING_MAX_LEN;
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	cfg_path_key(path, parent, key);
	if (!json_object_is_type(v, json_type_string)) {
		cfg_err(p, path, "expected a string, got %s",
			flags & S_SECRET ? cfg_kind(v) : cfg_describe(v, d));
		return BAD;
	}
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s)) {
		cfg_err(p, path, "contains a NUL character");
		return BAD;
	}
	if (!*s) {
		cfg_err(p, path, "must not be empty");
		return BAD;
	}
	if (strlen(s) > max) {
		cfg_err(p, path, "is longer than %zu bytes", max);
		return BAD;
	}
	if (cfg_has_control(s)) {
		cfg_err(p, path, "contains a control character (a line break or tab)");
		return BAD;
	}
	if ((flags & S_ABSPATH) && s[0] != '/') {
		cfg_err(p, path, "expected an absolute path (starting with /), got %s",
			cfg_describe(v, d));
		return BAD;
	}
	free(*out);
	*out = cfg_strdup(p, s);
	return SET;
}
