/* promtext.h — the daemon's latest readings in the Prometheus text
 * exposition format (0.0.4), for node_exporter's textfile collector (config
 * "prometheus"; the daemon's sink_prometheus.c writes the file). Pure
 * formatting of the config and the values handed in: no threads, no I/O, no
 * clock. The families, each with its HELP and TYPE once and its lines
 * together, and left out while it has no line:
 *
 *   per circuit (labels device_id, input, name, then its point tags: phase,
 *   feed, the file's and its own "tags", sorted by key), while its module's
 *   latest read succeeded and is younger than PM_PROMTEXT_STALE_INTERVALS:
 *     powermeter_current_amperes      gauge    raw count x ratio
 *     powermeter_power_watts          gauge    estimated (pm_power)
 *     powermeter_frequency_hertz      gauge    modules with "frequency"
 *     powermeter_load_ratio           gauge    current / "breaker"
 *     powermeter_energy_joules_total  counter  estimated, Wh x 3600
 *   per module read at least once (labels device_id, port, address):
 *     powermeter_module_up            gauge    1, or 0 once down
 *     powermeter_module_last_success_timestamp_seconds  gauge
 *     powermeter_module_<c>_total     counter  each of PM_DEVICE_COUNTERS
 *   per feed and phase (labels feed, phase), while no circuit of it lacks
 *   a reading (a low sum is never shown as the truth):
 *     powermeter_feed_current_amperes gauge
 *     powermeter_feed_load_ratio      gauge    current / capacity
 *
 * No timestamps (node_exporter refuses them in textfiles); a value that is
 * not finite is no line. */
#ifndef PM_OUTPUT_PROMTEXT_H
#define PM_OUTPUT_PROMTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/devstate.h"
#include "meter/feeds.h"
#include "meter/sample.h"
#include "util/buf.h"

/* The daemon's file never grows past this (32 modules make ~200 kB). */
#define PM_PROMTEXT_MAX (16u * 1024 * 1024)
/* A reading older than this many poll intervals is no value any more
 * (as the snapshot's readers judge it). */
#define PM_PROMTEXT_STALE_INTERVALS 3
/* A label name as pm_prom_label_name() makes it, with its NUL. */
#define PM_PROM_LABEL_MAX 72

/* What is known of one module: its latest read attempt. */
struct pm_prom_device {
	bool attempted;			/* 'state' is set */
	struct pm_device_state state;
	bool has_sample;		/* the latest read succeeded: */
	struct pm_sample sample;	/* its sample */
};

/* Appends the file's text: devices[cfg->n_devices] in config order, the
 * feeds' figures feeds[cfg->n_feeds] (NULL: none yet), 'now_ms' to judge
 * the samples' age by. 0, -ENOMEM or -PM_ETOOBIG; 'out' as it was on
 * failure. */
int pm_promtext_format(struct pm_buf *out, const struct pm_config *cfg,
		       const struct pm_prom_device *devices,
		       const struct pm_feed_fig *feeds, int64_t now_ms);

/* A tag key as a label name ([a-zA-Z_][a-zA-Z0-9_]*): every other byte
 * becomes '_', a leading digit gets a '_' before it, a name that would
 * start with "__" (Prometheus' own) gets "tag" before it, and it is cut at
 * PM_PROM_LABEL_MAX - 1 bytes. Keys the config accepts come out as they
 * are. */
void pm_prom_label_name(char out[PM_PROM_LABEL_MAX], const char *key);

/* Appends 'v' as a label value: in double quotes, backslash, double quote
 * and line feed escaped. 0, -ENOMEM or -PM_ETOOBIG. */
int pm_prom_label_value(struct pm_buf *b, const char *v);

#endif
