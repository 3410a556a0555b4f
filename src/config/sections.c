/* sections.c — the registry: which top-level keys there are, which file reads
 * each, and in what order. A new section is a new file and one line here. */
#include <stddef.h>

#include "config/sections.h"

/* The top-level keys that are no section: load.c reads them itself. */
static const char *const generic_keys[] = { "interval", NULL };

/* In the order they are parsed, which is the order their errors come out in
 * (the golden tests in tests/data/config compare it): "snapshot" resolves
 * the directories that "spool" defaults into, and "influx" comes last as it
 * merges the seed's influx.conf. 'listed' keeps the order known keys have
 * always been listed in: interval, devices, influx, spool, snapshot, ... */
const struct cfg_section cfg_sections[] = {
	/* keys, listed, then the hooks: parse, finish, free, elsewhere, init */
	{ { "devices" }, 1, cfg_devices_parse, NULL, cfg_devices_free, cfg_devices_elsewhere, NULL },
	{ { "snapshot", "state_directory", "runtime_directory" }, 4, cfg_snapshot_parse, cfg_snapshot_finish, cfg_snapshot_free, NULL, NULL },
	{ { "spool" }, 3, cfg_spool_parse, cfg_spool_finish, cfg_spool_free, NULL, NULL },
	{ { "influx" }, 2, cfg_influx_parse, cfg_influx_finish, cfg_influx_free, NULL, NULL },
	{ { "mqtt" }, 11, cfg_mqtt_parse, NULL, cfg_mqtt_free, NULL, NULL },
	{ { "prometheus" }, 12, cfg_prometheus_parse, NULL, cfg_prometheus_free, NULL, NULL },
	/* after "devices": finish resolves each input's "feed" (and its
	 * voltage, which circuits' finish needs) */
	{ { "feeds" }, 8, cfg_feeds_parse, cfg_feeds_finish, cfg_feeds_free, NULL, NULL },
	/* after "devices": finish settles each input's voltage and tags */
	{ { "voltage", "power_factor", "tags" }, 6, cfg_circuits_parse, cfg_circuits_finish, cfg_circuits_free, NULL, NULL },
	{ { "energy" }, 7, cfg_energy_parse, cfg_energy_finish, NULL, NULL, cfg_energy_init },
	/* after "energy", which it needs */
	{ { "ledger" }, 10, cfg_ledger_parse, cfg_ledger_finish, cfg_ledger_free, NULL, cfg_ledger_init },
	/* last: its defaults follow the interval, its rules the feeds */
	{ { "alarms" }, 9, cfg_alarms_parse, cfg_alarms_finish, cfg_alarms_free, NULL, cfg_alarms_init },
};

const size_t cfg_n_sections = sizeof(cfg_sections) / sizeof(cfg_sections[0]);

void cfg_top_keys(const char **out)
{
	unsigned last = 0;
	size_t n = 0;

	for (size_t i = 0; generic_keys[i] && n < CFG_TOP_KEYS_MAX - 1; i++)
		out[n++] = generic_keys[i];
	for (size_t i = 0; i < cfg_n_sections; i++)
		if (cfg_sections[i].listed > last)
			last = cfg_sections[i].listed;
	for (unsigned rank = 0; rank <= last; rank++) {
		for (size_t i = 0; i < cfg_n_sections; i++) {
			const struct cfg_section *s = &cfg_sections[i];

			if (s->listed != rank)
				continue;
			for (size_t k = 0; k < CFG_SECTION_KEYS && s->keys[k] &&
			     n < CFG_TOP_KEYS_MAX - 1; k++)
				out[n++] = s->keys[k];
		}
	}
	out[n] = NULL;
}
