/* load.c — the file as a whole: reading it and the seed's influx.conf beside
 * it, syntax errors, keys given twice, the top level, pm_config_free(). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/influxconf.h"
#include "config/parse.h"
#include "config/sections.h"
#include "util/fileio.h"

#define CONFIG_MAX (4 * 1024 * 1024)	/* a 1000-device config is ~1 MiB */

/* ---- the text: keys given twice, syntax errors -------------------------- */

/* Keys compared per object: a config object has at most 16 known keys, and
 * past this many every extra key is reported as unknown anyway. */
#define DUP_KEYS_MAX 64
#define DUP_DEPTH_MAX 64

/* json-c keeps the last of two equal keys in one object, silently (as the
 * seed's Python did), so a copied line with an edited duplicate would go
 * unnoticed: find them in the text, which is known to be valid JSON here. */
void cfg_find_duplicate_keys(struct parse *p, const char *data, size_t len)
{
	struct key {
		const char *s;
		size_t n;
	} *keys;
	struct {
		bool object;
		size_t first;	/* its first key in keys[] */
	} stack[DUP_DEPTH_MAX];
	size_t depth = 0, nkeys = 0, line = 1, col = 0;
	bool expect_key = false;

	keys = malloc(DUP_DEPTH_MAX * DUP_KEYS_MAX * sizeof(*keys));
	if (!keys) {
		p->nomem = true;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		size_t start, kline, kcol;

		if (((unsigned char)c & 0xc0) != 0x80)	/* columns count characters */
			col++;
		if (c == '\n') {
			line++;
			col = 0;
		}
		if (c == '{' || c == '[') {
			if (depth == DUP_DEPTH_MAX)
				break;
			stack[depth].object = c == '{';
			stack[depth].first = nkeys;
			depth++;
			expect_key = c == '{';
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
			nkeys = stack[depth].first;
			expect_key = false;
		} else if (c == ',') {
			expect_key = depth > 0 && stack[depth - 1].object;
		} else if (c == '"') {
			kline = line;
			kcol = col;
			start = ++i;
			for (; i < len && data[i] != '"'; i++) {
				if (data[i] == '\\') {
					i++;
					col++;
				}
				if (i < len && ((unsigned char)data[i] & 0xc0) != 0x80)
					col++;
				if (i < len && data[i] == '\n') {
					line++;
					col = 0;
				}
			}
			col++;
			if (!expect_key || depth == 0)
				continue;
			expect_key = false;
			for (size_t k = stack[depth - 1].first; k < nkeys; k++) {
				if (keys[k].n != i - start ||
				    memcmp(keys[k].s, data + start, i - start))
					continue;
				pm_errlist_add(p->errs, "%s:%zu:%zu: key \"%.*s\" given twice in one object (only the last would count)",
					       p->file, kline, kcol,
					       (int)(i - start < 40 ? i - start : 40),
					       data + start);
				break;
			}
			if (nkeys - stack[depth - 1].first < DUP_KEYS_MAX) {
				keys[nkeys].s = data + start;
				keys[nkeys].n = i - start;
				nkeys++;
			}
		}
	}
	free(keys);
}

/* What went wrong at character c, in words for someone editing the file. */
static void syntax_message(enum json_tokener_error e, char c, char *msg,
			   size_t n)
{
	char found[16] = "";

	if (isprint((unsigned char)c))
		(void)snprintf(found, sizeof(found), ", found '%c'", c);
	switch (e) {
	case json_tokener_error_depth:
		(void)snprintf(msg, n, "nested too deeply");
		break;
	case json_tokener_error_parse_null:
	case json_tokener_error_parse_boolean:
		(void)snprintf(msg, n, "expected true, false or null%s", found);
		break;
	case json_tokener_error_parse_number:
		(void)snprintf(msg, n, "not a valid number%s", found);
		break;
	case json_tokener_error_parse_array:
		(void)snprintf(msg, n, "expected ',' or ']' after a list entry%s (a comma missing?)",
			       found);
		break;
	case json_tokener_error_parse_object_key_name:
		(void)snprintf(msg, n, "expected a key in double quotes%s", found);
		break;
	case json_tokener_error_parse_object_key_sep:
		(void)snprintf(msg, n, "expected ':' after the key%s", found);
		break;
	case json_tokener_error_parse_object_value_sep:
		(void)snprintf(msg, n, "expected ',' or '}' after a value%s (a comma missing?)",
			       found);
		break;
	case json_tokener_error_parse_string:
		(void)snprintf(msg, n, "invalid string (a line break or a bad \\ escape inside quotes?)");
		break;
	case json_tokener_error_parse_utf8_string:
		(void)snprintf(msg, n, "not valid UTF-8 text");
		break;
	default:
		if (isprint((unsigned char)c))
			(void)snprintf(msg, n, "unexpected character '%c'", c);
		else
			(void)snprintf(msg, n, "unexpected character");
		break;
	}
}

/* Parses the text; a syntax error is reported as FILE:LINE:COL. */
json_object *cfg_parse_json(struct parse *p, const char *data, size_t len,
			    bool *ok)
{
	struct json_tokener *tok;
	enum json_tokener_error e;
	json_object *root = NULL;
	size_t at, line = 1, col = 1;
	char msg[160];

	*ok = false;
	at = strlen(data);
	if (at != len) {
		(void)snprintf(msg, sizeof(msg), "a NUL byte: not a text file");
	} else if (strspn(data, " \t\r\n") == len) {
		(void)snprintf(msg, sizeof(msg), "the file is empty");
	} else {
		tok = json_tokener_new();
		if (!tok) {
			p->nomem = true;
			return NULL;
		}
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				       JSON_TOKENER_VALIDATE_UTF8);
		/* len + 1: the NUL ends a number at the end of the file. */
		root = json_tokener_parse_ex(tok, data, (int)len + 1);
		e = json_tokener_get_error(tok);
		at = json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
		if (e == json_tokener_success) {
			*ok = true;
			return root;
		}
		json_object_put(root);
		root = NULL;
		if (e == json_tokener_continue || at >= len) {
			at = len;
			(void)snprintf(msg, sizeof(msg), "unexpected end of file (a closing ] or } missing?)");
		} else {
			size_t prev = at;
			char c = data[at];

			while (prev > 0 && strchr(" \t\r\n", data[prev - 1]))
				prev--;
			if ((c == '}' || c == ']') && prev > 0 && data[prev - 1] == ',')
				(void)snprintf(msg, sizeof(msg), "a comma before '%c' (JSON allows no comma after the last entry)",
					       c);
			else
				syntax_message(e, c, msg, sizeof(msg));
		}
	}
	for (size_t i = 0; i < at; i++) {
		if (data[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)data[i] & 0xc0) != 0x80) {
			col++;	/* characters, not bytes */
		}
	}
	pm_errlist_add(p->errs, "%s:%zu:%zu: %s", p->file, line, col, msg);
	return NULL;
}

/* ---- the top level ------------------------------------------------------ */

/* An unknown top-level key that belongs inside a section: where it goes. */
static const char *top_elsewhere(const char *key)
{
	for (size_t i = 0; i < cfg_n_sections; i++) {
		const char *where = cfg_sections[i].elsewhere ?
			cfg_sections[i].elsewhere(key) : NULL;

		if (where)
			return where;
	}
	return NULL;
}

/* The object form's top level: unknown keys, "interval", then each section
 * in the registry's order. *interval_set: "interval" was given. */
static void parse_object(struct parse *p, struct pm_config *cfg,
			 json_object *root, bool *interval_set)
{
	const char *top[CFG_TOP_KEYS_MAX];

	cfg_top_keys(top);
	cfg_check_keys(p, root, "", top, top_elsewhere);
	*interval_set = cfg_get_seconds(p, root, "", "interval", PM_INTERVAL_MIN,
					PM_INTERVAL_MAX, &cfg->interval) != ABSENT;
	for (size_t i = 0; i < cfg_n_sections; i++)
		if (cfg_sections[i].parse)
			cfg_sections[i].parse(p, cfg, root);
}

int pm_config_load_flags(struct pm_config **out, const char *path,
			 unsigned flags, char **errors)
{
	struct parse p = { .flags = flags };
	struct pm_influxconf ic = { 0 };
	struct pm_config *cfg = NULL;
	struct pm_errlist errs;
	json_object *root = NULL, *obj = NULL;
	char *data = NULL, *icpath = NULL;
	bool have_ic = false, ok, interval_set = false;
	size_t len;
	int r;

	if (!path) {
		path = PM_DEFAULT_CONFIG;
		r = pm_read_file_capped(path, CONFIG_MAX, &data, &len);
		if (r == -ENOENT) {
			path = PM_SEED_CONFIG;
			r = pm_read_file_capped(path, CONFIG_MAX, &data, &len);
			if (r == -ENOENT)
				path = PM_DEFAULT_CONFIG;
		}
	} else {
		r = pm_read_file_capped(path, CONFIG_MAX, &data, &len);
	}
	pm_errlist_init(&errs);
	p.errs = &errs;
	p.file = path;
	if (r == -PM_ETOOBIG) {
		pm_errlist_add(&errs, "%s: larger than %d MiB, not a powermeter config",
			       path, CONFIG_MAX / (1024 * 1024));
		r = -PM_ECONFIG;
	}
	if (r < 0)
		goto out;

	cfg = calloc(1, sizeof(*cfg));
	p.dir = strndup(path, strrchr(path, '/') ? (size_t)(strrchr(path, '/') - path) : 0);
	if (!cfg || !p.dir) {
		r = -ENOMEM;
		goto out;
	}
	if (path[0] == '/' && !p.dir[0]) {	/* a file in / */
		free(p.dir);
		p.dir = cfg_strdup(&p, "/");
	}
	cfg->path = cfg_strdup(&p, path);
	cfg->interval = PM_DEFAULT_INTERVAL;
	for (size_t i = 0; i < cfg_n_sections; i++)
		if (cfg_sections[i].init)
			cfg_sections[i].init(cfg);

	root = cfg_parse_json(&p, data, len, &ok);
	if (ok)
		cfg_find_duplicate_keys(&p, data, len);
	if (ok && json_object_is_type(root, json_type_array)) {
		cfg_devices_list(&p, cfg, root, "");
	} else if (ok && json_object_is_type(root, json_type_object)) {
		obj = root;
		parse_object(&p, cfg, obj, &interval_set);
	} else if (ok) {
		char d[DESC_CAP];

		cfg_err(&p, "", "expected an object {\"devices\": [...]} or a list of devices [...], got %s",
			cfg_describe(root, d));
	}

	/* The seed's influx.conf beside the JSON. */
	icpath = pm_influxconf_path_beside(path);
	if (!icpath) {
		r = -ENOMEM;
		goto out;
	}
	r = pm_influxconf_load(&ic, icpath, &errs);
	if (r == 0 || r == -PM_ECONFIG) {
		have_ic = true;
		cfg->influx_conf = cfg_strdup(&p, icpath);
	} else if (r == -ENOMEM) {
		goto out;
	} else if (r != -ENOENT &&
		   !(r == -EACCES && (flags & PM_CONFIG_NO_SECRETS))) {
		pm_errlist_add(&errs, "%s: cannot read: %s", icpath, pm_strerror(r));
	}
	if (have_ic && !interval_set && ic.value[PM_IC_INTERVAL])
		cfg->interval = ic.interval;
	p.ic = have_ic ? &ic : NULL;
	for (size_t i = 0; i < cfg_n_sections; i++)
		if (cfg_sections[i].finish)
			cfg_sections[i].finish(&p, cfg, obj);

	r = 0;
	if (errs.count)
		r = -PM_ECONFIG;
	if (p.nomem || errs.nomem)
		r = -ENOMEM;
out:
	json_object_put(root);
	free(data);
	free(icpath);
	free(p.dir);
	if (have_ic)
		pm_influxconf_free(&ic);
	if (r == 0)
		*out = cfg;
	else
		pm_config_free(cfg);
	if (r == -PM_ECONFIG && errors)
		*errors = pm_errlist_take(&errs);
	pm_errlist_free(&errs);
	return r;
}

int pm_config_load(pm_config **cfg, const char *path, char **errors)
{
	/* Integrators read modules; only powermeterd needs the InfluxDB secrets,
	 * and a user who may not read them must still load the config. */
	return pm_config_load_flags(cfg, path, PM_CONFIG_NO_SECRETS, errors);
}

void pm_config_free(pm_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg_n_sections; i++)
		if (cfg_sections[i].free)
			cfg_sections[i].free(cfg);
	free(cfg->path);
	free(cfg->influx_conf);
	free(cfg);
}

size_t pm_config_device_count(const pm_config *cfg)
{
	return cfg ? cfg->n_devices : 0;
}

int pm_config_device_id(const pm_config *cfg, size_t index)
{
	if (!cfg || index >= cfg->n_devices)
		return -EINVAL;
	return cfg->devices[index].id;
}

const struct pm_device *pm_config_device(const struct pm_config *cfg, int id)
{
	for (size_t i = 0; cfg && i < cfg->n_devices; i++)
		if (cfg->devices[i].id == id)
			return &cfg->devices[i];
	return NULL;
}
