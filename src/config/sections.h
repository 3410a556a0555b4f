/* sections.h — for the config's own files only: the registry of top-level
 * sections (sections.c) and the hooks each section's file provides. */
#ifndef PM_CONFIG_SECTIONS_H
#define PM_CONFIG_SECTIONS_H

#include <stddef.h>

#include <json-c/json.h>

#include "config/config.h"
#include "config/parse.h"

#define CFG_SECTION_KEYS 4	/* top-level keys one section may read */
#define CFG_TOP_KEYS_MAX 32	/* all top-level keys, with the NULL */

/* A section of the object form. load.c runs the hooks of every section in
 * the registry's order: first each 'parse' (object form only), then, after
 * influx.conf is read, each 'finish' (both forms); pm_config_free() each
 * 'free'. Any hook may be NULL. */
struct cfg_section {
	/* Its top-level keys, as unknown-key errors list them. */
	const char *keys[CFG_SECTION_KEYS];
	/* Where those keys go in that list (after the generic keys). */
	unsigned listed;
	/* Reads the section from the top-level object 'root'; an absent key
	 * is the section's own business (an error or the defaults). */
	void (*parse)(struct parse *p, struct pm_config *cfg, json_object *root);
	/* Completes it once the whole JSON and influx.conf (p->ic) are read:
	 * defaults, merging. 'root' is the top-level object, or NULL for the
	 * seed's array form or a file that did not parse. */
	void (*finish)(struct parse *p, struct pm_config *cfg, json_object *root);
	/* Frees what it put into cfg (which may be half-built). */
	void (*free)(struct pm_config *cfg);
	/* For an unknown top-level key that belongs inside this section, where
	 * it goes; else NULL. */
	const char *(*elsewhere)(const char *key);
	/* Sets defaults that a given value overrides, before anything is
	 * parsed (both forms). */
	void (*init)(struct pm_config *cfg);
};

extern const struct cfg_section cfg_sections[];
extern const size_t cfg_n_sections;

/* Every top-level key into out[CFG_TOP_KEYS_MAX], NULL-terminated, in the
 * order messages list them: the generic ones, then the sections' by
 * 'listed'. */
void cfg_top_keys(const char **out);

/* ---- the sections' hooks ------------------------------------------------ */

/* devices.c: "devices", and the seed's array form (a list of devices at
 * 'path' "", handed over by load.c). */
void cfg_devices_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_devices_list(struct parse *p, struct pm_config *cfg, json_object *ja,
		      const char *path);
void cfg_devices_free(struct pm_config *cfg);
const char *cfg_devices_elsewhere(const char *key);

/* snapshot.c: "snapshot", "state_directory", "runtime_directory". */
void cfg_snapshot_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_snapshot_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_snapshot_free(struct pm_config *cfg);

/* spool.c: "spool". */
void cfg_spool_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_spool_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_spool_free(struct pm_config *cfg);

/* circuits.c: "voltage", "power_factor", "tags" (and, for devices.c, the
 * same keys on a device or an input, with "phase" and "breaker"). */
void cfg_circuits_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_circuits_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_circuits_free(struct pm_config *cfg);
void cfg_circuit_estimate(struct parse *p, json_object *obj, const char *parent,
			  double *voltage, double *power_factor);
void cfg_circuit_input(struct parse *p, json_object *ji, const char *ipath,
		       struct pm_input *in);
void cfg_circuit_tags(struct parse *p, json_object *obj, const char *parent,
		      size_t *n, struct pm_tag **tags);
void cfg_tags_free(size_t n, struct pm_tag *tags);
/* 'k' can be a tag key: a lowercase letter, then lowercase letters, digits
 * or '_', at most 32 bytes. */
bool cfg_tag_key_ok(const char *k);
/* Why 'v' cannot be a tag value (line protocol, Zabbix macros, file
 * names), or NULL when it can. */
const char *cfg_tag_value_problem(const char *v);

/* feeds.c: "feeds", and an input's "feed" beside its "phase". */
void cfg_feeds_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_feeds_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_feeds_free(struct pm_config *cfg);

/* alarms.c: "alarms", and an input's "load_lost" (cfg_circuit_input asks
 * here). */
void cfg_alarms_init(struct pm_config *cfg);
void cfg_alarms_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_alarms_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_alarms_free(struct pm_config *cfg);
void cfg_alarm_load_lost(struct parse *p, json_object *ji, const char *ipath,
			 struct pm_input *in);

/* energy.c: "energy". */
void cfg_energy_init(struct pm_config *cfg);
void cfg_energy_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_energy_finish(struct parse *p, struct pm_config *cfg, json_object *root);

/* ledger.c: "ledger". */
void cfg_ledger_init(struct pm_config *cfg);
void cfg_ledger_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_ledger_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_ledger_free(struct pm_config *cfg);

/* influx.c: "influx", merged with the seed's influx.conf. */
void cfg_influx_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_influx_finish(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_influx_free(struct pm_config *cfg);

/* mqtt.c: "mqtt", the broker, its secrets, Home Assistant discovery. */
void cfg_mqtt_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_mqtt_free(struct pm_config *cfg);

/* prometheus.c: "prometheus", the textfile for node_exporter. */
void cfg_prometheus_parse(struct parse *p, struct pm_config *cfg, json_object *root);
void cfg_prometheus_free(struct pm_config *cfg);

#endif
