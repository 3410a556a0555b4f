/* config.c — loads and validates powermeter.json (the seed's array of devices
 * or the object form) into a struct pm_config, collecting every error with
 * its file and JSON path, and merges the seed's influx.conf beside it. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "util/buf.h"
#include "config/config.h"
#include "device/driver.h"
#include "util/fileio.h"
#include "config/influxconf.h"

#define CONFIG_MAX (4 * 1024 * 1024)	/* a 1000-device config is ~1 MiB */
#define SECRET_MAX (64 * 1024)
#define CA_FILE_MAX (8 * 1024 * 1024)	/* Debian's whole CA store is ~0.2 MiB */
#define PATH_CAP 128			/* a JSON path in a message */
#define DESC_CAP 64			/* a value echoed in a message */
#define NAME_MAX_LEN 256		/* an input's name, bytes */
#define STRING_MAX_LEN 4096		/* any other string */
#define DEVICES_MAX 1024

#define INFLUX_TIMEOUT_MIN 1.0
#define INFLUX_TIMEOUT_MAX 300.0
#define FLUSH_MIN 0.1
#define FLUSH_MAX 60.0
#define BATCH_LINES_MAX 100000
#define BATCH_BYTES_MIN 1024
#define BATCH_BYTES_MAX (16 * 1024 * 1024)
#define SPOOL_MB_MAX 100000
#define TIMEOUT_MAX 60.0
#define DEFAULT_RATIO 0.01	/* datasheet: current registers count 0.01 A */

static const char *const top_keys[] = {
	"interval", "devices", "influx", "spool", "snapshot",
	"state_directory", "runtime_directory", NULL,
};
static const char *const device_keys[] = {
	"id", "port", "address", "timeout", "baudrate", "parity", "bytesize",
	"stopbits", "frequency", "model", "inputs", NULL,
};
static const char *const input_keys[] = { "input", "ratio", "name", NULL };
static const char *const spool_keys[] = { "dir", "max_mb", NULL };

enum influx_key {
	IK_URL, IK_ORG, IK_BUCKET, IK_TOKEN, IK_TOKEN_FILE, IK_DATABASE,
	IK_RETENTION_POLICY, IK_USERNAME, IK_PASSWORD, IK_PASSWORD_FILE,
	IK_MEASUREMENT, IK_VERIFY_SSL, IK_CA_FILE, IK_BATCH_LINES,
	IK_BATCH_BYTES, IK_FLUSH_INTERVAL, IK_TIMEOUT, IK_N
};
static const char *const influx_keys[IK_N + 1] = {
	"url", "org", "bucket", "token", "token_file", "database",
	"retention_policy", "username", "password", "password_file",
	"measurement", "verify_ssl", "ca_file", "batch_lines", "batch_bytes",
	"flush_interval", "timeout", NULL,
};
#define BIT(k) (1u << (k))
#define V2_KEYS (BIT(IK_ORG) | BIT(IK_BUCKET) | BIT(IK_TOKEN) | BIT(IK_TOKEN_FILE))
#define V1_KEYS (BIT(IK_DATABASE) | BIT(IK_RETENTION_POLICY) | \
		 BIT(IK_USERNAME) | BIT(IK_PASSWORD) | BIT(IK_PASSWORD_FILE))

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

/* ---- small helpers --------------------------------------------------------- */

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

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* ---- parse state and messages ------------------------------------------- */

struct parse {
	const char *file;	/* as given: every message starts with it */
	char *dir;		/* its directory, for relative secret files */
	unsigned flags;		/* PM_CONFIG_* */
	struct pm_errlist *errs;
	bool nomem;
};

static void jerr(struct parse *p, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One error at a JSON path ("" for the whole file). */
static void jerr(struct parse *p, const char *path, const char *fmt, ...)
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

static char *xstrdup(struct parse *p, const char *s)
{
	char *d = strdup(s);

	if (!d)
		p->nomem = true;
	return d;
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

static void path_key(char *buf, const char *parent, const char *key)
{
	size_t len = 0;

	buf[0] = '\0';
	path_append(buf, &len, parent);
	if (*parent)
		path_append(buf, &len, ".");
	path_append(buf, &len, key);
}

static void path_index(char *buf, const char *parent, size_t i)
{
	char index[32];
	size_t len = 0;

	(void)snprintf(index, sizeof(index), "[%zu]", i);
	buf[0] = '\0';
	path_append(buf, &len, parent);
	path_append(buf, &len, index);
}

/* A JSON value as it appears in a message: "x", 14400, true, an object. */
static const char *describe(json_object *v, char *buf)
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
static const char *kind(json_object *v)
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
static const char *show_key(const char *key, char *buf)
{
	size_t i;

	for (i = 0; key[i] && i < DESC_CAP - 4; i++)
		buf[i] = ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) ?
			'?' : key[i];
	if (key[i]) {
		while (i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80)
			i--;
		buf[i++] = '.';
		buf[i++] = '.';
		buf[i++] = '.';
	}
	buf[i] = '\0';
	return buf;
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

static bool is_known(const char *key, const char *const *known)
{
	for (size_t i = 0; known[i]; i++)
		if (!strcmp(key, known[i]))
			return true;
	return false;
}

/* Reports every key of 'obj' that is not in 'known'. 'elsewhere' (or NULL)
 * says where a key that belongs at another level goes. */
static void check_keys(struct parse *p, json_object *obj, const char *path,
		       const char *const *known,
		       const char *(*elsewhere)(const char *key))
{
	json_object_object_foreach(obj, key, val) {
		char shown[DESC_CAP], list[512];
		const char *hint, *where;

		(void)val;
		if (is_known(key, known))
			continue;
		show_key(key, shown);
		hint = pm_config_suggest(key, known);
		where = elsewhere ? elsewhere(key) : NULL;
		if (hint) {
			jerr(p, path, "unknown key \"%s\" (did you mean \"%s\"?)",
			     shown, hint);
		} else if (where) {
			jerr(p, path, "unknown key \"%s\" (%s)", shown, where);
		} else {
			join_keys(list, sizeof(list), known);
			jerr(p, path, "unknown key \"%s\" (known keys: %s)",
			     shown, list);
		}
	}
}

static const char *top_elsewhere(const char *key)
{
	if (is_known(key, device_keys))
		return "a device's settings go inside \"devices\": [ { ... } ]";
	return NULL;
}

static const char *device_elsewhere(const char *key)
{
	if (is_known(key, input_keys))
		return "an input's settings go inside \"inputs\": [ { ... } ]";
	if (is_known(key, top_keys))
		return "it belongs at the top level of the object form";
	return NULL;
}

/* ---- typed getters: ABSENT, SET (and *out written) or BAD (reported) ---- */

enum { BAD = -1, ABSENT = 0, SET = 1 };

static int get_int(struct parse *p, json_object *obj, const char *parent,
		   const char *key, int64_t min, int64_t max, int64_t *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	path_key(path, parent, key);
	if (!json_object_is_type(v, json_type_int)) {
		jerr(p, path, "expected a whole number, got %s", describe(v, d));
		return BAD;
	}
	x = json_object_get_int64(v);
	if (x < min || x > max) {
		jerr(p, path, "%s is out of range (%lld..%lld)", describe(v, d),
		     (long long)min, (long long)max);
		return BAD;
	}
	*out = x;
	return SET;
}

static int get_number(struct parse *p, json_object *obj, const char *parent,
		      const char *key, double *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	double x;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	path_key(path, parent, key);
	if (!json_object_is_type(v, json_type_int) &&
	    !json_object_is_type(v, json_type_double)) {
		jerr(p, path, "expected a number, got %s", describe(v, d));
		return BAD;
	}
	x = json_object_get_double(v);
	if (!isfinite(x)) {
		jerr(p, path, "expected a finite number, got %s", describe(v, d));
		return BAD;
	}
	*out = x;
	return SET;
}

/* A number of seconds in min..max (min itself excluded when min is 0). */
static int get_seconds(struct parse *p, json_object *obj, const char *parent,
		       const char *key, double min, double max, double *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	double x;
	int r;

	r = get_number(p, obj, parent, key, &x);
	if (r != SET)
		return r;
	if ((min == 0 ? x <= 0 : x < min) || x > max) {
		path_key(path, parent, key);
		(void)json_object_object_get_ex(obj, key, &v);
		if (min == 0)
			jerr(p, path, "%s is out of range (more than 0, at most %g seconds)",
			     describe(v, d), max);
		else
			jerr(p, path, "%s is out of range (%g..%g seconds)",
			     describe(v, d), min, max);
		return BAD;
	}
	*out = x;
	return SET;
}

static int get_bool(struct parse *p, json_object *obj, const char *parent,
		    const char *key, bool *out)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	if (!json_object_is_type(v, json_type_boolean)) {
		path_key(path, parent, key);
		jerr(p, path, "expected true or false, got %s", describe(v, d));
		return BAD;
	}
	*out = json_object_get_boolean(v);
	return SET;
}

enum {
	S_SECRET = 1,	/* never echo the value */
	S_ABSPATH = 2,	/* an absolute file name */
	S_NAME = 4,	/* at most NAME_MAX_LEN bytes */
};

/* A non-empty string without control characters; *out is malloc'd. */
static int get_string(struct parse *p, json_object *obj, const char *parent,
		      const char *key, unsigned flags, char **out)
{
	char path[PATH_CAP], d[DESC_CAP];
	size_t max = flags & S_NAME ? NAME_MAX_LEN : STRING_MAX_LEN;
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v))
		return ABSENT;
	path_key(path, parent, key);
	if (!json_object_is_type(v, json_type_string)) {
		jerr(p, path, "expected a string, got %s",
		     flags & S_SECRET ? kind(v) : describe(v, d));
		return BAD;
	}
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s)) {
		jerr(p, path, "contains a NUL character");
		return BAD;
	}
	if (!*s) {
		jerr(p, path, "must not be empty");
		return BAD;
	}
	if (strlen(s) > max) {
		jerr(p, path, "is longer than %zu bytes", max);
		return BAD;
	}
	if (has_control(s)) {
		jerr(p, path, "contains a control character (a line break or tab)");
		return BAD;
	}
	if ((flags & S_ABSPATH) && s[0] != '/') {
		jerr(p, path, "expected an absolute path (starting with /), got %s",
		     describe(v, d));
		return BAD;
	}
	free(*out);
	*out = xstrdup(p, s);
	return SET;
}

static void missing(struct parse *p, const char *path, const char *key,
		    const char *what)
{
	jerr(p, path, "missing \"%s\" (%s)", key, what);
}

/* ---- devices ---------------------------------------------------------------- */

/* What the cross-device checks need to know about each device. */
struct device_meta {
	char path[PATH_CAP];
	bool id_ok, port_ok, address_ok, address_given, line_ok;
};

static void parse_baudrate(struct parse *p, json_object *jd,
			   const char *dpath, struct pm_device *dev,
			   struct device_meta *m)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	long long baud = -1;

	if (!json_object_object_get_ex(jd, "baudrate", &v))
		return;
	path_key(path, dpath, "baudrate");
	if (json_object_is_type(v, json_type_int)) {
		baud = (long long)json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_string)) {
		/* The seed writes "9600": digits only. */
		const char *s = json_object_get_string(v);
		char *end;

		errno = 0;
		if (isdigit((unsigned char)s[0]))
			baud = strtoll(s, &end, 10);
		if (!isdigit((unsigned char)s[0]) || errno || *end) {
			jerr(p, path, "expected a baud rate such as 9600, got %s",
			     describe(v, d));
			m->line_ok = false;
			return;
		}
	} else {
		jerr(p, path, "expected a baud rate such as 9600, got %s",
		     describe(v, d));
		m->line_ok = false;
		return;
	}
	if (baud >= 0 && baud <= INT32_MAX && pm_line_baud_ok((long)baud)) {
		dev->line.baud = (int)baud;
		return;
	}
	jerr(p, path, "%s is not a baud rate the module supports (" PM_LINE_BAUD_LIST ")",
	     describe(v, d));
	m->line_ok = false;
}

static void parse_line(struct parse *p, json_object *jd, const char *dpath,
		       struct pm_device *dev, struct device_meta *m)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	int64_t x;
	int r;

	parse_baudrate(p, jd, dpath, dev, m);

	if (json_object_object_get_ex(jd, "parity", &v)) {
		const char *s = json_object_is_type(v, json_type_string) ?
			json_object_get_string(v) : NULL;
		int c = s && s[0] && !s[1] ? toupper((unsigned char)s[0]) : 0;

		path_key(path, dpath, "parity");
		if (c == 'N' || c == 'E' || c == 'O') {
			dev->line.parity = (char)c;
		} else {
			jerr(p, path, "%s is not a parity the module supports (\"N\", \"E\" or \"O\")",
			     describe(v, d));
			m->line_ok = false;
		}
	}

	r = get_int(p, jd, dpath, "bytesize", INT64_MIN, INT64_MAX, &x);
	if (r == SET && x != 8) {
		path_key(path, dpath, "bytesize");
		jerr(p, path, "%lld data bits are not supported: the module uses 8",
		     (long long)x);
		r = BAD;
	}
	if (r == BAD)
		m->line_ok = false;

	r = get_int(p, jd, dpath, "stopbits", INT64_MIN, INT64_MAX, &x);
	path_key(path, dpath, "stopbits");
	if (r == SET && x != 1 && x != 2) {
		jerr(p, path, "%lld stop bits are not supported (1 or 2)",
		     (long long)x);
		r = BAD;
	}
	if (r == SET)
		dev->line.stop_bits = (int)x;
	if (r == BAD)
		m->line_ok = false;

	if (m->line_ok && !pm_line_framing(&dev->line)) {
		jerr(p, path, "parity %c with %d stop bits is not a framing the module supports (" PM_LINE_FRAMING_LIST ")",
		     dev->line.parity, dev->line.stop_bits);
		m->line_ok = false;
	}
}

static void parse_input(struct parse *p, json_object *ji, const char *ipath,
			struct pm_device *dev, struct pm_input *in,
			int *listed_at, size_t index)
{
	char path[PATH_CAP], d[DESC_CAP];
	unsigned channels = dev->driver ? dev->driver->channels : PM_CHANNELS;
	char last = (char)('a' + channels - 1);
	json_object *v;
	int channel = -1;

	in->ratio = DEFAULT_RATIO;
	if (!json_object_is_type(ji, json_type_object)) {
		jerr(p, ipath, "expected an input like {\"input\": \"a\", \"name\": \"Kitchen\"}, got %s",
		     describe(ji, d));
		return;
	}
	check_keys(p, ji, ipath, input_keys, NULL);

	path_key(path, ipath, "input");
	if (!json_object_object_get_ex(ji, "input", &v)) {
		missing(p, ipath, "input", "the channel: a letter a..p or a number 1..16");
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		int c = tolower((unsigned char)s[0]);

		if (s[0] && !s[1] && c >= 'a' && c <= last)
			channel = c - 'a';
		else
			jerr(p, path, "%s is not a channel (a..%c or 1..%u)",
			     describe(v, d), last, channels);
	} else if (json_object_is_type(v, json_type_int)) {
		int64_t x = json_object_get_int64(v);

		if (x >= 1 && x <= (int64_t)channels)
			channel = (int)x - 1;
		else
			jerr(p, path, "%s is not a channel (a..%c or 1..%u)",
			     describe(v, d), last, channels);
	} else {
		jerr(p, path, "expected a channel letter (a..%c) or number (1..%u), got %s",
		     last, channels, describe(v, d));
	}
	if (channel >= 0 && listed_at[channel] >= 0) {
		jerr(p, path, "channel %c is listed twice (also at inputs[%d])",
		     pm_channel_letter((unsigned)channel), listed_at[channel]);
	} else if (channel >= 0) {
		listed_at[channel] = (int)index;
		in->channel = (unsigned)channel;
	}

	if (get_number(p, ji, ipath, "ratio", &in->ratio) == SET &&
	    in->ratio <= 0) {
		path_key(path, ipath, "ratio");
		(void)json_object_object_get_ex(ji, "ratio", &v);
		jerr(p, path, "%s is out of range (must be more than 0: amperes per count, 0.01 for the stock CT)",
		     describe(v, d));
	}

	if (get_string(p, ji, ipath, "name", S_NAME, &in->name) == ABSENT &&
	    channel >= 0) {
		char def[16];

		(void)snprintf(def, sizeof(def), "Input %c",
			       pm_channel_letter((unsigned)channel));
		in->name = xstrdup(p, def);
	}
}

static void parse_inputs(struct parse *p, json_object *jd, const char *dpath,
			 struct pm_device *dev)
{
	char path[PATH_CAP], d[DESC_CAP];
	unsigned channels = dev->driver ? dev->driver->channels : PM_CHANNELS;
	int listed_at[PM_CHANNELS];
	json_object *ja;
	size_t n;

	if (!json_object_object_get_ex(jd, "inputs", &ja)) {
		missing(p, dpath, "inputs", "the list of channels to read, e.g. [{\"input\": \"a\"}]");
		return;
	}
	path_key(path, dpath, "inputs");
	if (!json_object_is_type(ja, json_type_array)) {
		jerr(p, path, "expected a list of inputs [ {...}, ... ], got %s",
		     describe(ja, d));
		return;
	}
	n = json_object_array_length(ja);
	if (n == 0) {
		jerr(p, path, "is empty: list at least one input");
		return;
	}
	if (n > channels) {
		jerr(p, path, "lists %zu inputs, but the module has %u channels",
		     n, channels);
		return;
	}
	dev->inputs = calloc(n, sizeof(*dev->inputs));
	if (!dev->inputs) {
		p->nomem = true;
		return;
	}
	dev->n_inputs = n;
	for (size_t i = 0; i < PM_CHANNELS; i++)
		listed_at[i] = -1;
	for (size_t i = 0; i < n; i++) {
		char ipath[PATH_CAP];

		path_index(ipath, path, i);
		parse_input(p, json_object_array_get_idx(ja, i), ipath, dev,
			    &dev->inputs[i], listed_at, i);
	}
}

static void parse_device(struct parse *p, json_object *jd, struct pm_device *dev,
			 struct device_meta *m)
{
	const char *dpath = m->path;
	char path[PATH_CAP], d[DESC_CAP], *model = NULL;
	int64_t x;
	int r;

	dev->id = -1;
	dev->address = 1;
	dev->line = PM_LINE_DEFAULT;
	dev->timeout = PM_DEFAULT_TIMEOUT;
	dev->driver = pm_driver_find(NULL);
	m->line_ok = true;
	if (!json_object_is_type(jd, json_type_object)) {
		jerr(p, dpath, "expected a device like {\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [...]}, got %s",
		     describe(jd, d));
		return;
	}
	check_keys(p, jd, dpath, device_keys, device_elsewhere);

	r = get_int(p, jd, dpath, "id", 0, INT_MAX, &x);
	if (r == ABSENT)
		missing(p, dpath, "id", "the device's number, e.g. 1");
	if (r == SET) {
		dev->id = (int)x;
		m->id_ok = true;
	}

	r = get_string(p, jd, dpath, "port", 0, &dev->port);
	if (r == ABSENT)
		missing(p, dpath, "port", "the serial port, e.g. /dev/ttyUSB0");
	m->port_ok = r == SET;

	r = get_int(p, jd, dpath, "address", INT64_MIN, INT64_MAX, &x);
	m->address_given = r != ABSENT;
	m->address_ok = r != BAD;
	if (r == SET && (x < PM_ADDRESS_MIN || x > PM_ADDRESS_MAX)) {
		path_key(path, dpath, "address");
		jerr(p, path, "%lld is not a Modbus unit id (%d..%d)",
		     (long long)x, PM_ADDRESS_MIN, PM_ADDRESS_MAX);
		m->address_ok = false;
	} else if (r == SET) {
		dev->address = (int)x;
	}

	(void)get_seconds(p, jd, dpath, "timeout", 0, TIMEOUT_MAX, &dev->timeout);
	parse_line(p, jd, dpath, dev, m);
	(void)get_bool(p, jd, dpath, "frequency", &dev->frequency);

	if (get_string(p, jd, dpath, "model", 0, &model) == SET && model) {
		dev->driver = pm_driver_find(model);
		if (!dev->driver) {
			char list[256];
			size_t len = 0;

			list[0] = '\0';
			for (size_t i = 0; pm_drivers[i] && len < sizeof(list); i++) {
				int w = snprintf(list + len, sizeof(list) - len,
						 "%s%s", i ? ", " : "",
						 pm_drivers[i]->model);

				if (w < 0)
					break;
				len += (size_t)w;
			}
			path_key(path, dpath, "model");
			jerr(p, path, "unknown module type \"%s\" (known: %s)",
			     show_key(model, d), list);
		}
	}
	free(model);
	if (dev->driver)
		parse_inputs(p, jd, dpath, dev);
}

/* Devices sharing a port are one RS-485 bus: distinct addresses, one set
 * of line settings. Each device is compared with the first one on its port
 * (line) and every earlier one (address, id). */
static void check_devices(struct parse *p, const struct pm_config *cfg,
			  const struct device_meta *meta)
{
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct pm_device *a = &cfg->devices[i];
		const struct device_meta *ma = &meta[i];
		bool id_done = false, addr_done = false, line_done = false;
		char path[PATH_CAP];

		for (size_t j = 0; j < i; j++) {
			const struct pm_device *b = &cfg->devices[j];
			const struct device_meta *mb = &meta[j];

			if (!id_done && ma->id_ok && mb->id_ok && a->id == b->id) {
				path_key(path, ma->path, "id");
				jerr(p, path, "%d is already the id of the device at %s",
				     a->id, mb->path[0] ? mb->path : "the top");
				id_done = true;
			}
			if (!ma->port_ok || !mb->port_ok ||
			    strcmp(a->port, b->port))
				continue;
			if (!addr_done && ma->address_ok && mb->address_ok &&
			    a->address == b->address) {
				path_key(path, ma->path, "address");
				jerr(p, path, "%d is already used by device %d on %s%s",
				     a->address, b->id, a->port,
				     ma->address_given ? "" :
				     " (the default: give each module on a shared port its own \"address\")");
				addr_done = true;
			}
			if (line_done || !ma->line_ok || !mb->line_ok)
				continue;
			line_done = true;
			if (a->line.baud != b->line.baud) {
				path_key(path, ma->path, "baudrate");
				jerr(p, path, "%d differs from device %d on the same port %s (%d): modules on one bus need the same line settings",
				     a->line.baud, b->id, a->port, b->line.baud);
			}
			if (a->line.parity != b->line.parity) {
				path_key(path, ma->path, "parity");
				jerr(p, path, "\"%c\" differs from device %d on the same port %s (\"%c\"): modules on one bus need the same line settings",
				     a->line.parity, b->id, a->port, b->line.parity);
			}
			if (a->line.stop_bits != b->line.stop_bits) {
				path_key(path, ma->path, "stopbits");
				jerr(p, path, "%d differs from device %d on the same port %s (%d): modules on one bus need the same line settings",
				     a->line.stop_bits, b->id, a->port, b->line.stop_bits);
			}
		}
	}
}

static void parse_devices(struct parse *p, struct pm_config *cfg,
			  json_object *ja, const char *path)
{
	struct device_meta *meta;
	size_t n = json_object_array_length(ja);
	int next_id = 0;

	if (n == 0) {
		jerr(p, path, "no devices: list at least one module");
		return;
	}
	if (n > DEVICES_MAX) {
		jerr(p, path, "%zu devices is more than the %d supported", n,
		     DEVICES_MAX);
		return;
	}
	cfg->devices = calloc(n, sizeof(*cfg->devices));
	meta = calloc(n, sizeof(*meta));
	if (!cfg->devices || !meta) {
		free(meta);
		p->nomem = true;
		return;
	}
	cfg->n_devices = n;
	for (size_t i = 0; i < n; i++) {
		path_index(meta[i].path, path, i);
		parse_device(p, json_object_array_get_idx(ja, i),
			     &cfg->devices[i], &meta[i]);
	}
	check_devices(p, cfg, meta);
	free(meta);

	/* The seed's "id": a running index over every input, in file order. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < cfg->devices[i].n_inputs; k++)
			cfg->devices[i].inputs[k].id = next_id++;
	cfg->n_inputs = (size_t)next_id;
}

/* ---- InfluxDB --------------------------------------------------------------- */

struct influx_parse {
	struct pm_influx *in;
	char *token_file, *password_file;
	char *ca_file;		/* as written: relative to the config */
	unsigned set;		/* keys given (JSON or influx.conf) */
	unsigned from_ic;	/* of those, the ones from influx.conf */
	bool json;		/* the JSON has an "influx" section */
	const struct pm_influxconf *ic;
};

static int ic_key(int k)
{
	switch (k) {
	case IK_URL: return PM_IC_URL;
	case IK_ORG: return PM_IC_ORG;
	case IK_BUCKET: return PM_IC_BUCKET;
	case IK_TOKEN: return PM_IC_TOKEN;
	case IK_MEASUREMENT: return PM_IC_MEASUREMENT;
	case IK_VERIFY_SSL: return PM_IC_VERIFY_SSL;
	}
	return -1;
}

static void influx_verr(struct parse *p, const struct influx_parse *ip, int k,
			const char *fmt, va_list ap)
{
	char msg[768], path[PATH_CAP];

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (k >= 0 && (ip->from_ic & BIT(k))) {
		int i = ic_key(k);

		pm_errlist_add(p->errs, "%s:%u: %s: %s", ip->ic->path,
			       ip->ic->line[i], influx_keys[k], msg);
	} else if (k >= 0) {
		path_key(path, "influx", influx_keys[k]);
		jerr(p, path, "%s", msg);
	} else if (ip->json) {
		jerr(p, "influx", "%s", msg);
	} else {
		pm_errlist_add(p->errs, "%s: %s", ip->ic->path, msg);
	}
}

/* An error about key k where it was set, or (k < 0) about the section. */
static void influx_err(struct parse *p, const struct influx_parse *ip, int k,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void influx_err(struct parse *p, const struct influx_parse *ip, int k,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	influx_verr(p, ip, k, fmt, ap);
	va_end(ap);
}

/* Why 'url' is not a base URL for the write API, or NULL. */
static const char *url_problem(const char *url)
{
	const char *host, *end;

	if (!strncasecmp(url, "http://", 7))
		host = url + 7;
	else if (!strncasecmp(url, "https://", 8))
		host = url + 8;
	else
		return "expected a URL starting with http:// or https://";
	end = host + strcspn(host, "/");
	if (end == host)
		return "has no host name";
	if (strpbrk(url, " \t"))
		return "contains a space";
	if (strpbrk(url, "?#"))
		return "must not carry a query or fragment (? or #): the writer adds its own";
	if (memchr(host, '@', (size_t)(end - host)))
		return "must not carry a user name or password: use \"username\"/\"password\" or \"token\"";
	return NULL;
}

static void json_influx(struct parse *p, struct influx_parse *ip,
			json_object *jin)
{
	struct pm_influx *in = ip->in;
	char **strs[IK_N] = {
		[IK_URL] = &in->url, [IK_ORG] = &in->org,
		[IK_BUCKET] = &in->bucket, [IK_TOKEN] = &in->token,
		[IK_TOKEN_FILE] = &ip->token_file,
		[IK_DATABASE] = &in->database,
		[IK_RETENTION_POLICY] = &in->retention_policy,
		[IK_USERNAME] = &in->username, [IK_PASSWORD] = &in->password,
		[IK_PASSWORD_FILE] = &ip->password_file,
		[IK_CA_FILE] = &ip->ca_file,
		[IK_MEASUREMENT] = &in->measurement,
	};
	char d[DESC_CAP], path[PATH_CAP];
	json_object *v;
	int64_t x;

	check_keys(p, jin, "influx", influx_keys, NULL);
	for (int k = 0; k < IK_N; k++) {
		if (json_object_object_get_ex(jin, influx_keys[k], &v))
			ip->set |= BIT(k);
		if (!strs[k])
			continue;
		(void)get_string(p, jin, "influx", influx_keys[k],
				 k == IK_TOKEN || k == IK_PASSWORD ? S_SECRET : 0,
				 strs[k]);
	}
	(void)get_bool(p, jin, "influx", "verify_ssl", &in->verify_ssl);
	if (get_int(p, jin, "influx", "batch_lines", 1, BATCH_LINES_MAX, &x) == SET)
		in->batch_lines = (size_t)x;
	if (get_int(p, jin, "influx", "batch_bytes", INT64_MIN, INT64_MAX, &x) == SET) {
		if (x < BATCH_BYTES_MIN || x > BATCH_BYTES_MAX) {
			path_key(path, "influx", "batch_bytes");
			(void)json_object_object_get_ex(jin, "batch_bytes", &v);
			jerr(p, path, "%s is out of range (1024..16777216 bytes: 1 KiB..16 MiB)",
			     describe(v, d));
		} else {
			in->batch_bytes = (size_t)x;
		}
	}
	(void)get_seconds(p, jin, "influx", "flush_interval", FLUSH_MIN,
			  FLUSH_MAX, &in->flush_interval);
	(void)get_seconds(p, jin, "influx", "timeout", INFLUX_TIMEOUT_MIN,
			  INFLUX_TIMEOUT_MAX, &in->timeout);
}

/* Takes what influx.conf sets and the JSON does not. */
static void merge_influxconf(struct parse *p, struct influx_parse *ip)
{
	static const int keys[] = { IK_URL, IK_ORG, IK_BUCKET, IK_TOKEN,
				    IK_MEASUREMENT };
	struct pm_influx *in = ip->in;
	char **strs[IK_N] = {
		[IK_URL] = &in->url, [IK_ORG] = &in->org,
		[IK_BUCKET] = &in->bucket, [IK_TOKEN] = &in->token,
		[IK_MEASUREMENT] = &in->measurement,
	};
	const struct pm_influxconf *ic = ip->ic;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int k = keys[i], c = ic_key(k);

		if (!ic->value[c] || (ip->set & BIT(k)))
			continue;
		/* "token_file" in the JSON is its "token". */
		if (k == IK_TOKEN && (ip->set & BIT(IK_TOKEN_FILE)))
			continue;
		*strs[k] = xstrdup(p, ic->value[c]);
		ip->set |= BIT(k);
		ip->from_ic |= BIT(k);
	}
	if (ic->value[PM_IC_VERIFY_SSL] && !(ip->set & BIT(IK_VERIFY_SSL))) {
		in->verify_ssl = ic->verify_ssl;
		ip->set |= BIT(IK_VERIFY_SSL);
		ip->from_ic |= BIT(IK_VERIFY_SSL);
	}
	if (ip->json)
		return;
	/* influx.conf alone: the seed's defaults for what it leaves out. */
	if (!(ip->set & BIT(IK_BUCKET))) {
		in->bucket = xstrdup(p, "powermeter");
		ip->set |= BIT(IK_BUCKET);
	}
	if (!(ip->set & BIT(IK_VERIFY_SSL)))
		in->verify_ssl = false;
}

static char *credential_path(const char *name)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *path;

	if (!dir || !*dir)
		return NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	return path;
}

static bool credential_exists(const char *name)
{
	char *path = credential_path(name);
	bool r = path && access(path, F_OK) == 0;

	free(path);
	return r;
}

/* Reads a secret: one line, trailing newline dropped. 0, or an error with
 * *why describing it (never the contents), or -errno with *why NULL. */
static int read_secret(const char *file, char **out, const char **why)
{
	char *data = NULL;
	size_t len;
	int r;

	*why = NULL;
	r = pm_read_file_capped(file, SECRET_MAX, &data, &len);
	if (r == -PM_ETOOBIG)
		*why = "is larger than 64 KiB, not a secret";
	if (r < 0)
		return r;
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (!len)
		*why = "is empty";
	else if (strlen(data) != len || has_control(data))
		*why = "must hold the secret on one line, without control characters";
	if (*why) {
		explicit_bzero(data, len);
		free(data);
		return -EINVAL;
	}
	*out = data;
	return 0;
}

/* A secret from 'file' (resolved against the config's directory) into *out;
 * errors are reported at key k. */
static void secret_file(struct parse *p, const struct influx_parse *ip, int k,
			const char *file, char **out)
{
	char *path = NULL;
	const char *why;
	int r;

	if (file[0] == '/' || !p->dir[0])
		path = strdup(file);
	else if (asprintf(&path, "%s/%s", p->dir, file) < 0)
		path = NULL;
	if (!path) {
		p->nomem = true;
		return;
	}
	r = read_secret(path, out, &why);
	if (r < 0 && why)
		influx_err(p, ip, k, "%s %s", path, why);
	else if (r < 0)
		influx_err(p, ip, k, "cannot read %s: %s", path, pm_strerror(r));
	free(path);
}

static void secret_credential(struct parse *p, const char *name, char **out)
{
	char *path = credential_path(name);
	const char *why;
	int r;

	if (!path) {
		p->nomem = true;
		return;
	}
	r = read_secret(path, out, &why);
	if (r < 0 && why)
		pm_errlist_add(p->errs, "%s: %s (credential %s)", path, why, name);
	else if (r < 0)
		pm_errlist_add(p->errs, "%s: cannot read credential %s: %s", path,
			       name, pm_strerror(r));
	free(path);
}

/* The name of the first key of 'mask' that is set, with where it came from. */
static const char *first_key(const struct influx_parse *ip, unsigned mask,
			     char *buf, size_t n)
{
	for (int k = 0; k < IK_N; k++) {
		if (!(ip->set & mask & BIT(k)))
			continue;
		if (ip->from_ic & BIT(k))
			(void)snprintf(buf, n, "\"%s\" (%s:%u)", influx_keys[k],
				       ip->ic->path, ip->ic->line[ic_key(k)]);
		else
			(void)snprintf(buf, n, "\"%s\"", influx_keys[k]);
		return buf;
	}
	return "";
}

static void finish_influx(struct parse *p, struct influx_parse *ip)
{
	struct pm_influx *in = ip->in;
	bool secrets = !(p->flags & PM_CONFIG_NO_SECRETS);
	unsigned v1 = ip->set & V1_KEYS, v2 = ip->set & V2_KEYS;
	const char *why;

	if (v1 && v2) {
		char a[PATH_MAX + 64], b[PATH_MAX + 64];

		influx_err(p, ip, -1, "%s is an InfluxDB v2 setting and %s a v1 setting: use org, bucket and token for v2, or database, username and password for v1",
			   first_key(ip, V2_KEYS, a, sizeof(a)),
			   first_key(ip, V1_KEYS, b, sizeof(b)));
		return;
	}
	/* Neither: a token credential means v2, else v1 (an open 1.x). */
	if (v2 || (!v1 && credential_exists("influx-token")))
		in->api = PM_INFLUX_V2;
	else
		in->api = PM_INFLUX_V1;

	if (!(ip->set & BIT(IK_URL)))
		influx_err(p, ip, -1, "missing \"url\" (where InfluxDB listens, e.g. http://127.0.0.1:8086)");
	if (in->url && (why = url_problem(in->url)) != NULL) {
		if (strchr(in->url, '@'))
			influx_err(p, ip, IK_URL, "%s", why);
		else
			influx_err(p, ip, IK_URL, "%s, got \"%s\"", why, in->url);
	} else if (in->url) {
		size_t len = strlen(in->url);

		while (len > 8 && in->url[len - 1] == '/')
			in->url[--len] = '\0';
	}
	if (!in->measurement && !(ip->set & BIT(IK_MEASUREMENT)))
		in->measurement = xstrdup(p, "powermeter");

	if (in->api == PM_INFLUX_V2) {
		if (!(ip->set & BIT(IK_ORG)))
			influx_err(p, ip, -1, "missing \"org\" (InfluxDB v2 needs org and bucket)");
		if (!(ip->set & BIT(IK_BUCKET)))
			influx_err(p, ip, -1, "missing \"bucket\" (InfluxDB v2 needs org and bucket)");
		if ((ip->set & BIT(IK_TOKEN)) && (ip->set & BIT(IK_TOKEN_FILE)) &&
		    !(ip->from_ic & BIT(IK_TOKEN)))
			influx_err(p, ip, IK_TOKEN_FILE, "give \"token\" or \"token_file\", not both");
		else if (ip->token_file && secrets)
			secret_file(p, ip, IK_TOKEN_FILE, ip->token_file, &in->token);
		else if (!(ip->set & (BIT(IK_TOKEN) | BIT(IK_TOKEN_FILE))) &&
			 secrets && credential_exists("influx-token"))
			secret_credential(p, "influx-token", &in->token);
		return;
	}

	if (!in->database && !(ip->set & BIT(IK_DATABASE)))
		in->database = xstrdup(p, "powermeter");
	if ((ip->set & BIT(IK_PASSWORD)) && (ip->set & BIT(IK_PASSWORD_FILE)))
		influx_err(p, ip, IK_PASSWORD_FILE, "give \"password\" or \"password_file\", not both");
	else if ((ip->set & (BIT(IK_PASSWORD) | BIT(IK_PASSWORD_FILE))) &&
		 !(ip->set & BIT(IK_USERNAME)))
		influx_err(p, ip, -1, "a password without \"username\"");
	else if (ip->password_file && secrets)
		secret_file(p, ip, IK_PASSWORD_FILE, ip->password_file,
			    &in->password);
	else if ((ip->set & BIT(IK_USERNAME)) &&
		 !(ip->set & (BIT(IK_PASSWORD) | BIT(IK_PASSWORD_FILE))) &&
		 secrets && credential_exists("influx-password"))
		secret_credential(p, "influx-password", &in->password);
}

/* "ca_file": the CAs that sign the server's certificate, PEM, trusted
 * instead of the system's store (influx.c). Resolved against the config's
 * directory and read here, so a wrong path is a config error at start
 * rather than a failed write at every flush. Not a secret, but only the
 * programs that write to InfluxDB use it: with PM_CONFIG_NO_SECRETS (read,
 * json, zabbix) it is kept unread, like the secret files. */
static void check_ca_file(struct parse *p, const struct influx_parse *ip)
{
	struct pm_influx *in = ip->in;
	char *data = NULL;
	size_t len;
	int r;

	if (!ip->ca_file)
		return;
	if (ip->ca_file[0] == '/' || !p->dir[0])
		in->ca_file = xstrdup(p, ip->ca_file);
	else if (asprintf(&in->ca_file, "%s/%s", p->dir, ip->ca_file) < 0) {
		in->ca_file = NULL;
		p->nomem = true;
	}
	if (!in->ca_file || (p->flags & PM_CONFIG_NO_SECRETS))
		return;
	r = pm_read_file_capped(in->ca_file, CA_FILE_MAX, &data, &len);
	if (r == -PM_ETOOBIG)
		influx_err(p, ip, IK_CA_FILE, "%s is larger than 8 MiB, not a CA bundle",
			   in->ca_file);
	else if (r < 0)
		influx_err(p, ip, IK_CA_FILE, "cannot read %s: %s", in->ca_file,
			   pm_strerror(r));
	/* libcurl over OpenSSL loads PEM only; a DER file (.cer, .der)
	 * would fail every connection with "error setting certificate file". */
	else if (!strstr(data, "-----BEGIN CERTIFICATE-----") &&
		 !strstr(data, "-----BEGIN TRUSTED CERTIFICATE-----"))
		influx_err(p, ip, IK_CA_FILE, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----); convert a DER file with: openssl x509 -inform der -in FILE -out FILE.pem",
			   in->ca_file);
	free(data);
}

static void parse_influx(struct parse *p, struct pm_config *cfg,
			 json_object *jin, const struct pm_influxconf *ic)
{
	struct influx_parse ip = { .ic = ic, .json = jin != NULL };
	char d[DESC_CAP];

	if (!jin && !ic)
		return;
	if (jin && !json_object_is_type(jin, json_type_object)) {
		jerr(p, "influx", "expected an object like {\"url\": \"http://127.0.0.1:8086\"}, got %s",
		     describe(jin, d));
		return;
	}
	ip.in = calloc(1, sizeof(*ip.in));
	if (!ip.in) {
		p->nomem = true;
		return;
	}
	cfg->influx = ip.in;
	ip.in->verify_ssl = true;
	ip.in->batch_lines = 5000;
	ip.in->batch_bytes = 1024 * 1024;
	ip.in->flush_interval = 1.0;
	ip.in->timeout = 10.0;
	if (jin)
		json_influx(p, &ip, jin);
	if (ic)
		merge_influxconf(p, &ip);
	finish_influx(p, &ip);
	check_ca_file(p, &ip);
	free(ip.token_file);
	free(ip.password_file);
	free(ip.ca_file);
}

static bool influxconf_sets(const struct pm_influxconf *ic)
{
	for (int i = 0; i < PM_IC_NKEYS; i++)
		if (ic->value[i] && i != PM_IC_INTERVAL)
			return true;
	return false;
}

/* ---- the file --------------------------------------------------------------- */

/* $STATE_DIRECTORY and friends may list several paths, ':'-separated. */
static char *env_dir(struct parse *p, const char *name, const char *def)
{
	const char *v = getenv(name);
	char *d;

	if (!v || v[0] != '/')
		return xstrdup(p, def);
	d = strndup(v, strcspn(v, ":"));
	if (!d)
		p->nomem = true;
	return d;
}

static char *join_path(struct parse *p, const char *dir, const char *name)
{
	char *s;

	if (asprintf(&s, "%s/%s", dir, name) < 0) {
		p->nomem = true;
		return NULL;
	}
	return s;
}

/* The object form's top level, except "influx" (parsed after influx.conf
 * is read). */
static void parse_object(struct parse *p, struct pm_config *cfg,
			 json_object *root, bool *interval_set)
{
	char d[DESC_CAP];
	json_object *v;
	int64_t x;

	check_keys(p, root, "", top_keys, top_elsewhere);
	*interval_set = get_seconds(p, root, "", "interval", PM_INTERVAL_MIN,
				    PM_INTERVAL_MAX, &cfg->interval) != ABSENT;

	if (!json_object_object_get_ex(root, "devices", &v))
		missing(p, "", "devices", "the list of modules to read");
	else if (!json_object_is_type(v, json_type_array))
		jerr(p, "devices", "expected a list of devices [ {...}, ... ], got %s",
		     describe(v, d));
	else
		parse_devices(p, cfg, v, "devices");

	(void)get_string(p, root, "", "state_directory", S_ABSPATH, &cfg->state_dir);
	(void)get_string(p, root, "", "runtime_directory", S_ABSPATH,
			 &cfg->runtime_dir);
	(void)get_string(p, root, "", "snapshot", S_ABSPATH, &cfg->snapshot);

	if (!json_object_object_get_ex(root, "spool", &v))
		return;
	if (!json_object_is_type(v, json_type_object)) {
		jerr(p, "spool", "expected an object like {\"max_mb\": 100}, got %s",
		     describe(v, d));
		return;
	}
	check_keys(p, v, "spool", spool_keys, NULL);
	(void)get_string(p, v, "spool", "dir", S_ABSPATH, &cfg->spool_dir);
	if (get_int(p, v, "spool", "max_mb", 1, SPOOL_MB_MAX, &x) == SET)
		cfg->spool_max_bytes = (uint64_t)x * 1024 * 1024;
}

/* Keys compared per object: a config object has at most 16 known keys, and
 * past this many every extra key is reported as unknown anyway. */
#define DUP_KEYS_MAX 64
#define DUP_DEPTH_MAX 64

/* json-c keeps the last of two equal keys in one object, silently (as the
 * seed's Python did), so a copied line with an edited duplicate would go
 * unnoticed: find them in the text, which is known to be valid JSON here. */
static void find_duplicate_keys(struct parse *p, const char *data, size_t len)
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
static json_object *parse_json(struct parse *p, const char *data, size_t len,
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

static void config_defaults(struct parse *p, struct pm_config *cfg)
{
	if (!cfg->state_dir)
		cfg->state_dir = env_dir(p, "STATE_DIRECTORY", PM_DEFAULT_STATE_DIR);
	if (!cfg->runtime_dir)
		cfg->runtime_dir = env_dir(p, "RUNTIME_DIRECTORY",
					   PM_DEFAULT_RUNTIME_DIR);
	if (!cfg->spool_dir && cfg->state_dir)
		cfg->spool_dir = join_path(p, cfg->state_dir, "spool");
	if (!cfg->snapshot && cfg->runtime_dir)
		cfg->snapshot = join_path(p, cfg->runtime_dir, "values.json");
}

int pm_config_load_flags(struct pm_config **out, const char *path,
			 unsigned flags, char **errors)
{
	struct parse p = { .flags = flags };
	struct pm_influxconf ic = { 0 };
	struct pm_config *cfg = NULL;
	struct pm_errlist errs;
	json_object *root = NULL, *jin = NULL;
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
		p.dir = xstrdup(&p, "/");
	}
	cfg->path = xstrdup(&p, path);
	cfg->interval = PM_DEFAULT_INTERVAL;
	cfg->spool_max_bytes = PM_DEFAULT_SPOOL_MAX;

	root = parse_json(&p, data, len, &ok);
	if (ok)
		find_duplicate_keys(&p, data, len);
	if (ok && json_object_is_type(root, json_type_array)) {
		parse_devices(&p, cfg, root, "");
	} else if (ok && json_object_is_type(root, json_type_object)) {
		parse_object(&p, cfg, root, &interval_set);
		(void)json_object_object_get_ex(root, "influx", &jin);
		if (jin == NULL && json_object_object_get_ex(root, "influx", NULL))
			jerr(&p, "influx", "expected an object, got null");
	} else if (ok) {
		char d[DESC_CAP];

		jerr(&p, "", "expected an object {\"devices\": [...]} or a list of devices [...], got %s",
		     describe(root, d));
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
		cfg->influx_conf = xstrdup(&p, icpath);
	} else if (r == -ENOMEM) {
		goto out;
	} else if (r != -ENOENT &&
		   !(r == -EACCES && (flags & PM_CONFIG_NO_SECRETS))) {
		pm_errlist_add(&errs, "%s: cannot read: %s", icpath, pm_strerror(r));
	}
	if (have_ic && !interval_set && ic.value[PM_IC_INTERVAL])
		cfg->interval = ic.interval;
	parse_influx(&p, cfg, jin, have_ic && influxconf_sets(&ic) ? &ic : NULL);
	config_defaults(&p, cfg);

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

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void pm_config_free(pm_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_devices; i++) {
		struct pm_device *dev = &cfg->devices[i];

		for (size_t k = 0; k < dev->n_inputs; k++)
			free(dev->inputs[k].name);
		free(dev->inputs);
		free(dev->port);
	}
	free(cfg->devices);
	if (cfg->influx) {
		struct pm_influx *in = cfg->influx;

		free(in->url);
		free(in->org);
		free(in->bucket);
		free_secret(in->token);
		free(in->database);
		free(in->retention_policy);
		free(in->username);
		free_secret(in->password);
		free(in->measurement);
		free(in->ca_file);
		free(in);
	}
	free(cfg->path);
	free(cfg->state_dir);
	free(cfg->runtime_dir);
	free(cfg->spool_dir);
	free(cfg->snapshot);
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
