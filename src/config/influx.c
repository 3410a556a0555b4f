/* influx.c — "influx": the InfluxDB writer's settings, merged with the seed's
 * influx.conf; which API (v1 or v2), the secrets and credentials, ca_file. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/influxconf.h"
#include "config/parse.h"
#include "config/secret.h"
#include "config/sections.h"
#include "util/fileio.h"

#define INFLUX_TIMEOUT_MIN 1.0
#define INFLUX_TIMEOUT_MAX 300.0
#define FLUSH_MIN 0.1
#define FLUSH_MAX 60.0
#define BATCH_LINES_MAX 100000
#define BATCH_BYTES_MIN 1024
#define BATCH_BYTES_MAX (16 * 1024 * 1024)

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

/* The section while it is put together. */
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
		cfg_path_key(path, "influx", influx_keys[k]);
		cfg_err(p, path, "%s", msg);
	} else if (ip->json) {
		cfg_err(p, "influx", "%s", msg);
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
	json_object *v;
	int64_t x;

	cfg_check_keys(p, jin, "influx", influx_keys, NULL);
	for (int k = 0; k < IK_N; k++) {
		if (json_object_object_get_ex(jin, influx_keys[k], &v))
			ip->set |= BIT(k);
		if (!strs[k])
			continue;
		(void)cfg_get_string(p, jin, "influx", influx_keys[k],
				     k == IK_TOKEN || k == IK_PASSWORD ? S_SECRET : 0,
				     strs[k]);
	}
	(void)cfg_get_bool(p, jin, "influx", "verify_ssl", &in->verify_ssl);
	if (cfg_get_int(p, jin, "influx", "batch_lines", 1, BATCH_LINES_MAX, &x) == SET)
		in->batch_lines = (size_t)x;
	if (cfg_get_int(p, jin, "influx", "batch_bytes", INT64_MIN, INT64_MAX, &x) == SET) {
		if (x < BATCH_BYTES_MIN || x > BATCH_BYTES_MAX) {
			cfg_out_of_range(p, jin, "influx", "batch_bytes",
					 "1024..16777216 bytes: 1 KiB..16 MiB");
		} else {
			in->batch_bytes = (size_t)x;
		}
	}
	(void)cfg_get_seconds(p, jin, "influx", "flush_interval", FLUSH_MIN,
			      FLUSH_MAX, &in->flush_interval);
	(void)cfg_get_seconds(p, jin, "influx", "timeout", INFLUX_TIMEOUT_MIN,
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
		*strs[k] = cfg_strdup(p, ic->value[c]);
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
		in->bucket = cfg_strdup(p, "powermeter");
		ip->set |= BIT(IK_BUCKET);
	}
	if (!(ip->set & BIT(IK_VERIFY_SSL)))
		in->verify_ssl = false;
}

/* A secret from 'file' into *out; errors are reported at key k. */
static void secret_file(struct parse *p, const struct influx_parse *ip, int k,
			const char *file, char **out)
{
	char msg[CFG_MSG_CAP];
	int r = cfg_secret_file(p, file, out, msg, sizeof(msg));

	if (r == -ENOMEM)
		p->nomem = true;
	else if (r < 0)
		influx_err(p, ip, k, "%s", msg);
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

/* What the keys given add up to: the API, the url, the defaults, and the
 * secrets from their files or credentials. */
static void resolve_influx(struct parse *p, struct influx_parse *ip)
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
	if (v2 || (!v1 && cfg_credential_exists("influx-token")))
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
		in->measurement = cfg_strdup(p, "powermeter");

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
			 secrets && cfg_credential_exists("influx-token"))
			cfg_secret_credential(p, "influx-token", &in->token);
		return;
	}

	if (!in->database && !(ip->set & BIT(IK_DATABASE)))
		in->database = cfg_strdup(p, "powermeter");
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
		 secrets && cfg_credential_exists("influx-password"))
		cfg_secret_credential(p, "influx-password", &in->password);
}

/* "ca_file": the CAs that sign the server's certificate, PEM, trusted
 * instead of the system's store (cfg_ca_file). */
static void check_ca_file(struct parse *p, const struct influx_parse *ip)
{
	char msg[CFG_MSG_CAP];
	int r;

	if (!ip->ca_file)
		return;
	r = cfg_ca_file(p, ip->ca_file, &ip->in->ca_file, msg, sizeof(msg));
	if (r == -ENOMEM)
		p->nomem = true;
	else if (r < 0)
		influx_err(p, ip, IK_CA_FILE, "%s", msg);
}

/* The section from the JSON (jin), influx.conf (ic), both or neither. */
static void parse_influx(struct parse *p, struct pm_config *cfg,
			 json_object *jin, const struct pm_influxconf *ic)
{
	struct influx_parse ip = { .ic = ic, .json = jin != NULL };
	char d[DESC_CAP];

	if (!jin && !ic)
		return;
	if (jin && !json_object_is_type(jin, json_type_object)) {
		cfg_err(p, "influx", "expected an object like {\"url\": \"http://127.0.0.1:8086\"}, got %s",
			cfg_describe(jin, d));
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
	resolve_influx(p, &ip);
	check_ca_file(p, &ip);
	free(ip.token_file);
	free(ip.password_file);
	free(ip.ca_file);
}

/* influx.conf sets more than the interval. */
static bool influxconf_sets(const struct pm_influxconf *ic)
{
	for (int i = 0; i < PM_IC_NKEYS; i++)
		if (ic->value[i] && i != PM_IC_INTERVAL)
			return true;
	return false;
}

/* Only a null "influx" is reported here, in the sections' order; the rest
 * waits for influx.conf (cfg_influx_finish). */
void cfg_influx_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	json_object *jin = NULL;

	(void)json_object_object_get_ex(root, "influx", &jin);
	if (jin == NULL && json_object_object_get_ex(root, "influx", NULL))
		cfg_err(p, "influx", "expected an object, got null");
}

void cfg_influx_finish(struct parse *p, struct pm_config *cfg, json_object *root)
{
	json_object *jin = NULL;

	if (root)
		(void)json_object_object_get_ex(root, "influx", &jin);
	parse_influx(p, cfg, jin,
		     p->ic && influxconf_sets(p->ic) ? p->ic : NULL);
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void cfg_influx_free(struct pm_config *cfg)
{
	struct pm_influx *in = cfg->influx;

	if (!in)
		return;
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
