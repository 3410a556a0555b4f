/* lineproto_feeds.h — line protocol for what the daemon works out beyond
 * single circuits (lineproto.h has the rules of escaping):
 *   <measurement>_feed   tags feed and phase (a feed's own point has no
 *                        phase) and the file's "tags"; fields current (A),
 *                        power (W, estimated) and load (% of capacity) —
 *                        left out while a circuit of the feed has no
 *                        reading, so a low sum is never shown as the truth
 *                        — redundant_load (% of the smaller capacity of a
 *                        2N pair; left out too while the partner misses a
 *                        reading), and on the feed's point imbalance (%),
 *                        neutral (A, estimated); always missing (circuits
 *                        without a reading) and complete;
 *   <measurement>_alarm  one point per change: tags alarm, subject,
 *                        severity and the file's "tags"; fields value,
 *                        threshold, active (false: cleared), message;
 *   <measurement>_module one point per module and read attempt: tags
 *                        device_id, port, address and the file's "tags";
 *                        fields up, consecutive_failures and the counters
 *                        of struct pm_device_state (reads, failures,
 *                        requests, retries, timeouts, crc_errors,
 *                        frame_errors, exceptions, io_errors; integers).
 * <measurement> is the configured one, "powermeter" by default. */
#ifndef PM_LINEPROTO_FEEDS_H
#define PM_LINEPROTO_FEEDS_H

#include <stdint.h>

#include "config/config.h"
#include "meter/alarms.h"
#include "meter/devstate.h"
#include "meter/feeds.h"
#include "util/buf.h"

/* Appends the points of feed cfg->feeds[f] with figures 'fig' at 'time_ms'.
 * 0, -ENOMEM or -PM_ETOOBIG; 'b' as it was on failure. */
int pm_lp_append_feed(struct pm_buf *b, const struct pm_config *cfg,
		      const char *measurement, size_t f,
		      const struct pm_feed_fig *fig, int64_t time_ms);

/* Appends the point of one alarm change. Same contract. */
int pm_lp_append_alarm(struct pm_buf *b, const struct pm_config *cfg,
		       const char *measurement, const struct pm_alarm_event *e);

/* Appends the point of device 'dev' in state 'st', at its last attempt.
 * Same contract. */
int pm_lp_append_module(struct pm_buf *b, const struct pm_config *cfg,
			const char *measurement, const struct pm_device *dev,
			const struct pm_device_state *st);

/* The lines of one read attempt of cfg->devices[device], as the sinks
 * write them: the sample's (when 's') and the module's point (when 'st').
 * Same contract. */
int pm_lp_append_read(struct pm_buf *b, const struct pm_config *cfg,
		      const char *measurement, size_t device,
		      const struct pm_sample *s,
		      const struct pm_device_state *st);

/* Every feed's points (figs[cfg->n_feeds] at 'time_ms') and every change
 * in events[0..n_events). Same contract. */
int pm_lp_append_watch(struct pm_buf *b, const struct pm_config *cfg,
		       const char *measurement, const struct pm_feed_fig *figs,
		       int64_t time_ms, const struct pm_alarm_event *events,
		       size_t n_events);

#endif
