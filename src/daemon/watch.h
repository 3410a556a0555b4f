/* watch.h — the daemon's judgement between the pollers and the outputs. It
 * keeps the latest reading of every module; after every tick it works out
 * the feeds' figures (meter/feeds.h) and judges the alarms (meter/alarms.h);
 * the sinks get both (sink.h, 'watch'), every change is logged once with
 * journal fields and runs the alarm command (alarm_command.h). Like the
 * energy counters it outlives a reload; raised alarms outlive a restart in
 * <state_dir>/alarms.state. */
#ifndef PM_WATCH_H
#define PM_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/alarms.h"
#include "meter/devstate.h"
#include "meter/feeds.h"
#include "meter/sample.h"
#include "util/buf.h"

struct pm_sinkset;

/* What the sinks hear after a tick. Valid during the call only. */
struct pm_watch_tick {
	int64_t time_ms;		/* the newest sample's, or now */
	size_t n_feeds;			/* cfg->n_feeds */
	const struct pm_feed_fig *feeds;	/* in cfg->feeds order */
	size_t n_events;		/* changes in this tick */
	const struct pm_alarm_event *events;
	size_t n_active;		/* every raised alarm, worst first */
	const struct pm_alarm *const *active;
};

struct pm_watch;

/* An empty watch; alarm state comes with the first configure. 0 or
 * -ENOMEM. */
int pm_watch_new(struct pm_watch **out);
/* Binds the watch to 'cfg' (which must outlive the binding), from the main
 * thread while no poller runs. The first time, raised alarms are restored
 * from the state file; an alarm whose subject or rule is gone is cleared at
 * the next tick. 0 or -ENOMEM. */
int pm_watch_configure(struct pm_watch *w, const struct pm_config *cfg);

/* Poller threads: every read attempt of cfg->devices[device] ('s' NULL
 * when it failed). Never blocks on I/O. */
void pm_watch_record(struct pm_watch *w, size_t device,
		     const struct pm_sample *s, const struct pm_device_state *st);
/* After a tick (before the sinks' tick_done): computes, judges, logs,
 * queues commands and hands the result to 'sinks'. Serialised inside. */
void pm_watch_tick(struct pm_watch *w, const struct pm_sinkset *sinks);

/* Main thread: saves the state file when alarms changed. Returns the ns
 * until it wants to run again. */
int64_t pm_watch_run(struct pm_watch *w, int64_t now_ns);
/* Grows while the alarm command's thread loops; 'has' false without one. */
uint64_t pm_watch_progress(struct pm_watch *w, bool *has);
/* "2 alarms (1 critical)" for STATUS=; nothing when none. */
void pm_watch_status(struct pm_watch *w, struct pm_buf *out);

/* Saves the state, waits a little for running commands and frees. */
void pm_watch_free(struct pm_watch *w);

#endif
