/* mqtt.c — "mqtt": the broker the daemon publishes state to (its URL,
 * user, secret and CA), the topics, and Home Assistant discovery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"
#include "config/secret.h"
#include "config/sections.h"

#define MQTT_PORT 1883
#define MQTTS_PORT 8883
#define KEEPALIVE_DEFAULT 30
#define KEEPALIVE_MIN 5
#define KEEPALIVE_MAX 3600
#define TOPIC_MAX 200		/* a prefix; topics add at most ~40 bytes */
#define CLIENT_ID_MAX 128

static const char *const mqtt_keys[] = {
	"url", "username", "password", "password_file", "ca_file",
	"client_id", "topic_prefix", "qos", "retain", "discovery",
	"discovery_prefix", "keepalive", NULL,
};

/* Splits mqtt[s]://HOST[:PORT][/] into m; why not, or NULL. */
static const char *parse_url(struct parse *p, struct pm_mqtt *m)
{
	const char *s = m->url, *host, *end, *colon;
	char *tail;
	long port;

	if (!strncasecmp(s, "mqtt://", 7)) {
		host = s + 7;
	} else if (!strncasecmp(s, "mqtts://", 8)) {
		host = s + 8;
		m->tls = true;
	} else {
		return strstr(s, "://") ?
			"has an unknown scheme: expected mqtt:// or mqtts:// (TLS)" :
			"expected a URL like mqtt://HOST:1883 or mqtts://HOST:8883";
	}
	end = host + strcspn(host, "/?#");
	if (*end && strcmp(end, "/") != 0)
		return "must be mqtt[s]://HOST[:PORT] only: no path, query or fragment";
	if (memchr(host, '@', (size_t)(end - host)))
		return "must not carry a user name or password: use \"username\" and \"password_file\"";
	if (strpbrk(host, " \t"))
		return "contains a space";
	if (*host == '[') {		/* [IPv6]:port */
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close || close == host + 1)
			return "has a malformed IPv6 address (expected [ADDRESS])";
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return "has something after the IPv6 address that is no :PORT";
		m->host = strndup(host + 1, (size_t)(close - host - 1));
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return "has an IPv6 address without brackets (write mqtt://[ADDRESS]:PORT)";
		m->host = strndup(host, (size_t)((colon ? colon : end) - host));
	}
	if (!m->host) {
		p->nomem = true;
		return NULL;
	}
	if (!*m->host)
		return "has no host name";
	m->port = m->tls ? MQTTS_PORT : MQTT_PORT;
	if (!colon)
		return NULL;
	if (colon + 1 == end)
		return "has an empty port after ':'";
	errno = 0;
	port = strtol(colon + 1, &tail, 10);
	if (tail != end || errno || port < 1 || port > 65535 ||
	    colon[1] < '0' || colon[1] > '9')
		return "has a port that is not a number from 1 to 65535";
	m->port = (unsigned)port;
	return NULL;
}

/* A topic prefix: MQTT topic levels without wildcards. Why not, or NULL. */
static const char *topic_problem(const char *t)
{
	if (strpbrk(t, "+#"))
		return "must not contain the MQTT wildcards + or #";
	if (t[0] == '/' || t[strlen(t) - 1] == '/')
		return "must not start or end with /";
	if (strstr(t, "//"))
		return "must not contain an empty level (//)";
	if (t[0] == '$')
		return "must not start with $ (topics the broker reserves)";
	if (strlen(t) > TOPIC_MAX)
		return "is too long (at most 200 bytes)";
	return NULL;
}

static void get_topic(struct parse *p, json_object *jm, const char *key,
		      char **out)
{
	char path[PATH_CAP];
	const char *why;

	if (cfg_get_string(p, jm, "mqtt", key, 0, out) != SET)
		return;
	if (*out && (why = topic_problem(*out)) != NULL) {
		cfg_path_key(path, "mqtt", key);
		cfg_err(p, path, "%s, got \"%s\"", why, *out);
	}
}

static char *default_client_id(struct parse *p)
{
	char host[256] = "", *id;

	if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
		(void)snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (asprintf(&id, "powermeterd-%s", host) < 0) {
		p->nomem = true;
		return NULL;
	}
	if (strlen(id) > CLIENT_ID_MAX)
		id[CLIENT_ID_MAX] = '\0';
	return id;
}

/* The password: inline, from a file, or from the credential mqtt-password
 * (only with a user name, which a password needs). */
static void get_password(struct parse *p, json_object *jm, struct pm_mqtt *m)
{
	bool secrets = !(p->flags & PM_CONFIG_NO_SECRETS);
	bool inline_pw = json_object_object_get_ex(jm, "password", NULL);
	char *file = NULL, msg[CFG_MSG_CAP];
	int r;

	(void)cfg_get_string(p, jm, "mqtt", "password", S_SECRET, &m->password);
	(void)cfg_get_string(p, jm, "mqtt", "password_file", 0, &file);
	if (inline_pw && file)
		cfg_err(p, "mqtt.password_file", "give \"password\" or \"password_file\", not both");
	else if ((inline_pw || file) && !m->username)
		cfg_err(p, "mqtt", "a password without \"username\"");
	else if (file && secrets) {
		r = cfg_secret_file(p, file, &m->password, msg, sizeof(msg));
		if (r == -ENOMEM)
			p->nomem = true;
		else if (r < 0)
			cfg_err(p, "mqtt.password_file", "%s", msg);
	} else if (m->username && !inline_pw && !file && secrets &&
		   cfg_credential_exists("mqtt-password")) {
		cfg_secret_credential(p, "mqtt-password", &m->password);
	}
	free(file);
}

static void get_ca_file(struct parse *p, json_object *jm, struct pm_mqtt *m)
{
	char *file = NULL, msg[CFG_MSG_CAP];
	int r;

	if (cfg_get_string(p, jm, "mqtt", "ca_file", 0, &file) != SET)
		return;
	if (file && !m->tls && m->url) {
		cfg_err(p, "mqtt.ca_file", "is for TLS: use an mqtts:// URL, or drop \"ca_file\"");
	} else if (file) {
		r = cfg_ca_file(p, file, &m->ca_file, msg, sizeof(msg));
		if (r == -ENOMEM)
			p->nomem = true;
		else if (r < 0)
			cfg_err(p, "mqtt.ca_file", "%s", msg);
	}
	free(file);
}

/* "discovery": true, false. */
static void get_discovery(struct parse *p, json_object *jm, struct pm_mqtt *m)
{
	(void)cfg_get_bool(p, jm, "mqtt", "discovery", &m->discovery);
	get_topic(p, jm, "discovery_prefix", &m->discovery_prefix);
	if (!m->discovery_prefix)
		m->discovery_prefix = cfg_strdup(p, "homeassistant");
}

void cfg_mqtt_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	struct pm_mqtt *m;
	json_object *jm;
	char d[DESC_CAP];
	const char *why;
	int64_t x;

	if (!json_object_object_get_ex(root, "mqtt", &jm))
		return;
	if (!json_object_is_type(jm, json_type_object)) {
		cfg_err(p, "mqtt", "expected an object like {\"url\": \"mqtt://127.0.0.1:1883\"}, got %s",
			cfg_describe(jm, d));
		return;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		p->nomem = true;
		return;
	}
	cfg->mqtt = m;
	m->qos = 1;
	m->keepalive = KEEPALIVE_DEFAULT;
	cfg_check_keys(p, jm, "mqtt", mqtt_keys, NULL);

	if (cfg_get_string(p, jm, "mqtt", "url", 0, &m->url) == ABSENT)
		cfg_missing(p, "mqtt", "url", "where the broker listens, e.g. mqtt://127.0.0.1:1883");
	if (m->url && (why = parse_url(p, m)) != NULL) {
		if (strchr(m->url, '@'))
			cfg_err(p, "mqtt.url", "%s", why);
		else
			cfg_err(p, "mqtt.url", "%s, got \"%s\"", why, m->url);
	}
	(void)cfg_get_string(p, jm, "mqtt", "username", 0, &m->username);
	get_password(p, jm, m);
	get_ca_file(p, jm, m);
	if (cfg_get_string(p, jm, "mqtt", "client_id", 0, &m->client_id) == SET &&
	    m->client_id && strlen(m->client_id) > CLIENT_ID_MAX)
		cfg_err(p, "mqtt.client_id", "is longer than %d bytes", CLIENT_ID_MAX);
	if (!m->client_id)
		m->client_id = default_client_id(p);
	get_topic(p, jm, "topic_prefix", &m->topic_prefix);
	if (!m->topic_prefix)
		m->topic_prefix = cfg_strdup(p, "powermeter");
	if (cfg_get_int(p, jm, "mqtt", "qos", 0, 1, &x) == SET)
		m->qos = (int)x;
	(void)cfg_get_bool(p, jm, "mqtt", "retain", &m->retain);
	if (cfg_get_int(p, jm, "mqtt", "keepalive", KEEPALIVE_MIN, KEEPALIVE_MAX,
			&x) == SET)
		m->keepalive = (unsigned)x;
	get_discovery(p, jm, m);
}

void cfg_mqtt_free(struct pm_config *cfg)
{
	struct pm_mqtt *m = cfg->mqtt;

	if (!m)
		return;
	free(m->url);
	free(m->host);
	free(m->username);
	if (m->password)
		explicit_bzero(m->password, strlen(m->password));
	free(m->password);
	free(m->ca_file);
	free(m->client_id);
	free(m->topic_prefix);
	free(m->discovery_prefix);
	free(m);
	cfg->mqtt = NULL;
}
