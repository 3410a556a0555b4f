/* parse.h — for the config's own files only: the parse state, errors at a
 * JSON path, unknown keys with suggestions, and the typed getters (parse.c). */
#ifndef PM_CONFIG_PARSE_H
#define PM_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/errlist.h"

#define PATH_CAP 128			/* a JSON path in a message */
#define DESC_CAP 64			/* a value echoed in a message */
#define NAME_MAX_LEN 256		/* an input's name, bytes */
#define STRING_MAX_LEN 4096		/* any other string */

struct pm_influxconf;

/* One load of one file: where messages go and what they start with. */
struct parse {
	const char *file;	/* as given: every message starts with it */
	char *dir;		/* its directory, for relative secret files */
	unsigned flags;		/* PM_CONFIG_* */
	struct pm_errlist *errs;
	bool nomem;
	/* The seed's influx.conf beside the file, once read (load.c), for the
	 * sections' finish hooks; NULL when there is none. */
	const struct pm_influxconf *ic;
};

/* One error at a JSON path ("" for the whole file). */
void cfg_err(struct parse *p, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "VALUE is out of range (WHY)" at parent.key, VALUE as the file has it:
 * for a value of the right type that its section refuses. */
void cfg_out_of_range(struct parse *p, json_object *obj, const char *parent,
		      const char *key, const char *why_fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* "missing "key" (what)" at 'path'. */
void cfg_missing(struct parse *p, const char *path, const char *key,
		 const char *what);

/* strdup(); NULL and p->nomem on ENOMEM. */
char *cfg_strdup(struct parse *p, const char *s);
/* "dir/name", malloc'd; NULL and p->nomem on ENOMEM. */
char *cfg_join_path(struct parse *p, const char *dir, const char *name);
/* A control character (below 0x20, or DEL) in s. */
bool cfg_has_control(const char *s);

/* JSON paths for messages, cut at PATH_CAP: "parent.key", "parent[i]". */
void cfg_path_key(char *buf, const char *parent, const char *key);
void cfg_path_index(char *buf, const char *parent, size_t i);

/* A JSON value as it appears in a message: "x", 14400, true, an object.
 * buf holds DESC_CAP bytes. */
const char *cfg_describe(json_object *v, char *buf);
/* A value's kind only ("a string"), for secrets. */
const char *cfg_kind(json_object *v);
/* A key as it appears in a message: cut short, control characters as '?'.
 * buf holds DESC_CAP bytes. */
const char *cfg_show_key(const char *key, char *buf);

/* 'key' is one of 'known' (NULL-terminated). */
bool cfg_is_known(const char *key, const char *const *known);
/* Reports every key of 'obj' that is not in 'known', with the closest known
 * key (pm_config_suggest) or, failing that, where 'elsewhere' (or NULL) says
 * it belongs, or else the list of known keys. */
void cfg_check_keys(struct parse *p, json_object *obj, const char *path,
		    const char *const *known,
		    const char *(*elsewhere)(const char *key));

/* ---- the text (load.c), for every JSON file the config layer reads ----- */

/* Parses 'data' (len bytes, NUL-terminated); *ok tells whether it is JSON.
 * A syntax error is reported as FILE:LINE:COL. */
json_object *cfg_parse_json(struct parse *p, const char *data, size_t len,
			    bool *ok);
/* Reports every key given twice in one object (json-c keeps the last one
 * silently) as FILE:LINE:COL; 'data' is known to be valid JSON. */
void cfg_find_duplicate_keys(struct parse *p, const char *data, size_t len);

/* ---- typed getters: ABSENT, SET (and *out written) or BAD (reported) ---- */

enum { BAD = -1, ABSENT = 0, SET = 1 };

/* A whole number in min..max. */
int cfg_get_int(struct parse *p, json_object *obj, const char *parent,
		const char *key, int64_t min, int64_t max, int64_t *out);
/* A finite number. */
int cfg_get_number(struct parse *p, json_object *obj, const char *parent,
		   const char *key, double *out);
/* A number of seconds in min..max (min itself excluded when min is 0). */
int cfg_get_seconds(struct parse *p, json_object *obj, const char *parent,
		    const char *key, double min, double max, double *out);
int cfg_get_bool(struct parse *p, json_object *obj, const char *parent,
		 const char *key, bool *out);

enum {
	S_SECRET = 1,	/* never echo the value */
	S_ABSPATH = 2,	/* an absolute file name */
	S_NAME = 4,	/* at most NAME_MAX_LEN bytes */
};

/* A non-empty string without control characters; *out (freed first) is
 * malloc'd. flags: S_*. */
int cfg_get_string(struct parse *p, json_object *obj, const char *parent,
		   const char *key, unsigned flags, char **out);

#endif
