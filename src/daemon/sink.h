/* sink.h — where readings go: InfluxDB (sink_influx.c), the snapshot file
 * for Zabbix and the CLI (sink_snapshot.c), an MQTT broker (sink_mqtt.c),
 * node_exporter's textfile (sink_prometheus.c), stdout (sink_stdout.c). A new
 * output is one new file with a 'struct pm_sink_ops' and one line in
 * sinks.c. */
#ifndef PM_SINK_H
#define PM_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/devstate.h"
#include "meter/sample.h"
#include "util/buf.h"

struct pm_watch_tick;

struct pm_sink_ops {
	const char *name;
	/* Is this sink wanted with this config (e.g. influx: cfg->influx)? */
	bool (*wanted)(const struct pm_config *cfg);
	/* Sets up *state; may start threads. 0 or negative error; on error it
	 * has logged why. */
	int (*open)(void **state, const struct pm_config *cfg);
	/* Called by a poller thread after every attempt to read device
	 * 'device' (index into cfg->devices): 's' is the reading, or NULL when
	 * the read failed; 'st' the device's state after the attempt (NULL
	 * from a load generator: samples only). Called
	 * concurrently from several pollers: must be thread-safe, must not
	 * block on the network or the bus. */
	void (*emit)(void *state, const struct pm_config *cfg, size_t device,
		     const struct pm_sample *s, const struct pm_device_state *st);
	/* Called after a tick (optional): when the last poller inside it has
	 * read all its devices — once per interval, since the pollers' ticks
	 * are aligned — or, when one port is slow, at least every 1.5
	 * intervals. Concurrent calls are possible. */
	void (*tick_done)(void *state, const struct pm_config *cfg);
	/* Called after a tick, before tick_done (optional): the feeds'
	 * figures, the alarm changes and the raised alarms (watch.h).
	 * Serialised; must not block on the network. */
	void (*watch)(void *state, const struct pm_config *cfg,
		      const struct pm_watch_tick *t);
	/* Bytes kept for a destination that does not take them now (the
	 * spool), for the spool_backlog alarm (optional). */
	uint64_t (*backlog)(void *state);
	/* Monotonic count that grows while the sink's own threads make
	 * progress; NULL when it has none. Used for the watchdog. */
	uint64_t (*progress)(void *state);
	/* Appends a short human summary for STATUS= (optional). */
	void (*status)(void *state, struct pm_buf *out);
	/* Stops threads, flushes what it holds (to the database or the spool)
	 * and frees state. With 'final' false (reload) it may be quicker. */
	void (*close)(void *state, bool final);
};

/* The registered sinks, NULL-terminated (sinks.c). */
extern const struct pm_sink_ops *const pm_sinks[];

#endif
