/* config.h — the parsed configuration: devices, inputs, InfluxDB, spool and
 * paths. load.c reads the file, a file per section validates it (the list is
 * in sections.c), influxconf.c reads the seed's influx.conf. A pm_config is
 * immutable once loaded: reload builds a new one. */
#ifndef PM_CONFIG_H
#define PM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <powermeter/powermeter.h>

#include "device/line.h"

/* sysexits.h EX_CONFIG: what every program exits with on a bad config. */
#define PM_EXIT_CONFIG 78

#define PM_DEFAULT_CONFIG "/etc/powermeter/powermeter.json"
/* Older seed installs used this name; tried when the default is missing. */
#define PM_SEED_CONFIG "/etc/powermeter/powermeter_config.json"
#define PM_DEFAULT_STATE_DIR "/var/lib/powermeter"
#define PM_DEFAULT_RUNTIME_DIR "/run/powermeter"
#define PM_DEFAULT_INTERVAL 1.0
#define PM_DEFAULT_TIMEOUT 1.0
#define PM_DEFAULT_DOWN_AFTER 3	/* ticks */
#define PM_DOWN_AFTER_MAX 1000
#define PM_DEFAULT_SPOOL_MAX (100ull * 1024 * 1024)
/* The module measures current only: power is estimated from these. */
#define PM_DEFAULT_VOLTAGE 230.0
#define PM_DEFAULT_POWER_FACTOR 1.0
#define PM_DEFAULT_PERSIST_INTERVAL 60.0
#define PM_DEFAULT_LEDGER_INTERVAL 900
#define PM_LEDGER_FILE "ledger.sqlite"

struct pm_driver;

/* A tag a circuit's points carry: "customer": "ACME". */
struct pm_tag {
	char *key;
	char *value;
};

struct pm_input {
	unsigned channel;	/* 0..15, channel A..P */
	double ratio;		/* amperes per register count */
	char *name;
	int id;			/* running index over the whole config */
	/* What its power is estimated from: the input's, else its device's,
	 * else the file's "voltage" and "power_factor", else 230 V and 1. */
	double voltage;
	double power_factor;	/* 0 < pf <= 1; 1: power is apparent power */
	char *phase;		/* "L1", "L2", "L3" or NULL */
	double breaker;		/* the circuit's rating in amperes, 0: none */
	size_t n_tags;		/* its own "tags", as given */
	struct pm_tag *tags;
	/* What its points carry besides device_id, input, name and
	 * unique_id: phase, the file's tags and its own (its own win), sorted
	 * by key; the strings belong to the config's other fields. */
	size_t n_point_tags;
	struct pm_tag *point_tags;
	/* Its feed (feeds.c): the index into cfg->feeds, -1 when none, and the
	 * index of its phase among the feed's phases. */
	char *feed_name;
	int feed;
	unsigned feed_phase;
	/* What alarms call it: its name, or "name (device 3 input c)" when
	 * another input has the same name (alarms.c). */
	char *subject;
	/* The load_lost rule for this input (alarms.c): on by default for the
	 * inputs of a feed, "load_lost": true/false/{...} on the input
	 * (load_lost_given: -1 not given, 0 false, 1 true or an object). */
	int load_lost_given;
	bool load_lost;
	double load_lost_below;		/* amperes */
	double load_lost_hold;		/* seconds */
};

/* The phases a feed or an input may name, in this order. */
#define PM_PHASES 3
extern const char *const pm_phase_names[PM_PHASES + 1];	/* "L1".."L3", NULL */

/* A feed (feeds.c): a supply with a capacity per phase, e.g. a UPS output
 * or a distribution board's incomer; inputs join it with "feed". */
struct pm_feed {
	char *name;
	double capacity;	/* amperes per phase */
	double voltage;		/* NaN: not given; else its inputs' default */
	unsigned n_phases;
	unsigned phases[PM_PHASES];	/* 0..2 (L1..L3), as listed */
	char *redundant_with;	/* the other feed of a 2N pair, or NULL */
	int partner;		/* its index in cfg->feeds, -1: none */
	size_t n_inputs;	/* inputs that join it */
};

/* One threshold rule of "alarms" (alarms.c): raised at 'warning' or
 * 'critical' once the value has stayed there 'hold' seconds, lowered
 * once it falls 'clear' below the threshold. */
struct pm_alarm_rule {
	bool enabled;
	double warning, critical;	/* in the rule's unit */
	double hold;			/* seconds */
	double clear;			/* in the rule's unit */
};

struct pm_alarms {
	bool enabled;			/* "alarms": false turns all off */
	struct pm_alarm_rule circuit_load;	/* % of the breaker */
	struct pm_alarm_rule feed_load;		/* % of capacity */
	struct pm_alarm_rule imbalance;		/* % (NEMA) */
	double imbalance_min_load;		/* % of capacity below which
						   imbalance is not judged */
	struct pm_alarm_rule redundancy;	/* % of the smaller capacity */
	struct pm_alarm_rule spool_backlog;	/* MB */
	struct {
		bool enabled;
		bool critical;		/* severity: critical (default) */
		double below;		/* amperes */
		double hold;		/* seconds */
	} load_lost;
	struct {
		bool enabled;
		double hold;
	} module_offline, stale;
	/* "command": run (no shell) at every raise and clear; NULL: none */
	size_t n_command;
	char **command;		/* n_command strings, then NULL */
	double command_timeout;	/* seconds */
	unsigned command_max;	/* at most this many at once */
};

struct pm_device {
	int id;			/* the user's device id ("id") */
	char *port;		/* e.g. /dev/ttyUSB0 */
	int address;		/* Modbus unit id, default 1 */
	struct pm_line line;
	double timeout;		/* seconds to wait for an answer */
	unsigned retries;	/* a request sent again after a bad answer */
	unsigned down_after;	/* failed ticks in a row before "down" */
	bool frequency;		/* also read registers 24..39 */
	const struct pm_driver *driver;	/* "model", default "hdhk" */
	double voltage;		/* NaN: the file's */
	double power_factor;	/* NaN: the file's */
	size_t n_inputs;
	struct pm_input *inputs;
};

enum pm_influx_api {
	PM_INFLUX_V1 = 1,	/* /write?db=&rp=, user/password */
	PM_INFLUX_V2 = 2,	/* /api/v2/write?org=&bucket=, Token */
};

struct pm_influx {
	char *url;		/* base URL, e.g. http://127.0.0.1:8086 */
	enum pm_influx_api api;
	char *org, *bucket;	/* v2 */
	char *token;		/* v2 secret: from "token", "token_file" or
				   $CREDENTIALS_DIRECTORY/influx-token */
	char *database, *retention_policy;	/* v1 */
	char *username;
	char *password;		/* v1 secret: "password", "password_file" or
				   $CREDENTIALS_DIRECTORY/influx-password */
	char *measurement;	/* default "powermeter" */
	bool verify_ssl;	/* default true */
	char *ca_file;		/* PEM CAs trusted instead of the system's,
				   resolved against the config's directory;
				   NULL: the system's store */
	size_t batch_lines;	/* default 5000 */
	size_t batch_bytes;	/* default 1 MiB (uncompressed) */
	double flush_interval;	/* seconds, default 1 */
	double timeout;		/* seconds per HTTP request, default 10 */
};

/* "mqtt" (mqtt.c): state per circuit to an MQTT broker, Home Assistant
 * discovery. */
struct pm_mqtt {
	char *url;		/* as given: mqtt://host[:port], mqtts://... */
	bool tls;		/* mqtts:// */
	char *host;
	unsigned port;		/* default 1883, 8883 with TLS */
	char *username;		/* NULL: none */
	char *password;		/* secret: "password", "password_file" or
				   $CREDENTIALS_DIRECTORY/mqtt-password */
	char *ca_file;		/* PEM CAs instead of the system's (mqtts),
				   resolved against the config's directory */
	char *client_id;	/* default "powermeterd-<hostname>" */
	char *topic_prefix;	/* default "powermeter" */
	int qos;		/* 0 or 1, default 1 */
	bool retain;		/* state messages retained, default false */
	bool discovery;		/* Home Assistant discovery, default false */
	char *discovery_prefix;	/* default "homeassistant" */
	unsigned keepalive;	/* seconds, default 30 */
};

/* "prometheus" (prometheus.c): node_exporter's textfile collector. */
struct pm_prometheus {
	char *textfile;		/* absolute; replaced atomically each tick */
};

struct pm_config {
	char *path;		/* the file it came from */
	double interval;	/* seconds between polls */
	size_t n_devices;
	struct pm_device *devices;
	size_t n_inputs;	/* over all devices */
	struct pm_influx *influx;	/* NULL: not configured */
	struct pm_mqtt *mqtt;		/* NULL: not configured */
	struct pm_prometheus *prometheus;	/* NULL: not configured */
	char *state_dir;	/* $STATE_DIRECTORY or /var/lib/powermeter */
	char *runtime_dir;	/* $RUNTIME_DIRECTORY or /run/powermeter */
	char *spool_dir;	/* default <state_dir>/spool */
	uint64_t spool_max_bytes;	/* default 100 MB */
	char *snapshot;		/* default <runtime_dir>/values.json */
	char *influx_conf;	/* the seed's influx.conf merged in, or NULL */
	double voltage;		/* default for every input, 230 V */
	double power_factor;	/* default for every input, 1 */
	size_t n_tags;		/* "tags": added to every point */
	struct pm_tag *tags;
	size_t n_feeds;
	struct pm_feed *feeds;
	struct pm_alarms alarms;
	struct {
		bool enabled;		/* default true (with energy) */
		bool given;		/* "ledger" is in the file */
		unsigned interval;	/* seconds, divides an hour; 900 */
		char *path;		/* default <state_dir>/ledger.sqlite */
		unsigned retention_days;	/* 0: keep every row */
	} ledger;
	struct {
		bool enabled;		/* default true */
		double max_gap;		/* seconds; default 10 intervals */
		double persist_interval;	/* seconds; default 60 */
	} energy;
};

/* Loads 'path' (NULL: PM_DEFAULT_CONFIG, falling back to PM_SEED_CONFIG),
 * then the seed's influx.conf beside it if present. Returns 0, -PM_ECONFIG
 * with every problem in *errors (one per line, "file: path: message"), or
 * -errno. Environment read: STATE_DIRECTORY, RUNTIME_DIRECTORY,
 * CREDENTIALS_DIRECTORY. (Declared in powermeter.h as pm_config_load, which
 * leaves out the secrets: see PM_CONFIG_NO_SECRETS.) */

/* pm_config_load_flags(): don't read token_file, password_file or
 * $CREDENTIALS_DIRECTORY, and skip an influx.conf this user may not read.
 * For programs that never write to InfluxDB (read, json, zabbix), so the
 * Zabbix agent's user can load a config whose secrets it cannot see. The
 * secrets in the result are then NULL unless given inline. */
#define PM_CONFIG_NO_SECRETS 0x1

/* pm_config_load() with flags (PM_CONFIG_*). */
int pm_config_load_flags(struct pm_config **cfg, const char *path,
			 unsigned flags, char **errors);

/* Looks a device up by its id; NULL when absent. */
const struct pm_device *pm_config_device(const struct pm_config *cfg, int id);

/* Channel letter of an input ('a'..'p'). */
static inline char pm_channel_letter(unsigned channel)
{
	return (char)('a' + channel);
}

#endif
