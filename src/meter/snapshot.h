/* snapshot.h — the file the daemon replaces after every poller tick (config
 * "snapshot", default /run/powermeter/values.json): the latest sample and the
 * health of every module, the feeds' figures and the active alarms, so that
 * `powermeter json`, `powermeter status`, the Zabbix agent and
 * pm_read(PM_SOURCE_SNAPSHOT) never need the serial port the daemon owns. */
#ifndef PM_SNAPSHOT_H
#define PM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "meter/alarms.h"
#include "meter/devstate.h"
#include "meter/feeds.h"
#include "meter/sample.h"
#include "util/buf.h"

struct pm_readings;

/* "format" and "version" of the file; a reader rejects other versions.
 * Members added later ("feeds", "alarms", "alarms_enabled") keep the
 * version: older readers ignore them, newer ones do without them. */
#define PM_SNAPSHOT_FORMAT "powermeter-snapshot"
#define PM_SNAPSHOT_VERSION 1
/* Neither the writer nor a reader handles a larger file. */
#define PM_SNAPSHOT_MAX (16u * 1024 * 1024)
/* Data older than this many poll intervals is stale, never current. */
#define PM_SNAPSHOT_STALE_INTERVALS 3

/* ---- writer (the daemon's sink, sink_snapshot.c) ---------------------- */

struct pm_snapshot;

/* The in-memory snapshot of 'cfg' (which must outlive it): every device
 * "never read" until updated. NULL on ENOMEM. */
struct pm_snapshot *pm_snapshot_new(const struct pm_config *cfg);
void pm_snapshot_free(struct pm_snapshot *snap);

/* Records one read attempt of cfg->devices[device]: 's' its sample or NULL
 * when the read failed (the previous sample is kept, marked by st->up), 'st'
 * the device's state after it. Thread-safe; never blocks on I/O. */
void pm_snapshot_update(struct pm_snapshot *snap, size_t device,
			const struct pm_sample *s,
			const struct pm_device_state *st);

/* Records the watch's result after a tick (sink_snapshot.c's 'watch'):
 * feeds[cfg->n_feeds] the feeds' figures at 'time_ms', active[n_active]
 * every raised alarm, worst first. Everything is copied: the pointers need
 * only be valid during the call. Until the first call the file lists the
 * configured feeds with null figures and no alarm. Thread-safe. 0, -ENOMEM
 * or -PM_ETOOBIG; on failure the snapshot keeps the previous figures and
 * pm_snapshot_write fails with the same error until a call succeeds (a
 * reader then sees a stale file, never figures from another tick). */
int pm_snapshot_watch(struct pm_snapshot *snap, int64_t time_ms,
		      const struct pm_feed_fig *feeds,
		      const struct pm_alarm *const *active, size_t n_active);

/* Appends the snapshot's JSON, stamped 'now_ms' and writer 'pid', to 'out'.
 * Thread-safe. 0, -ENOMEM or -PM_ETOOBIG; 'out' unchanged on failure. */
/* A module's counters as JSON members, "reads": N, ... "io_errors": N
 * (no braces): the snapshot's and `powermeter zabbix status`'s. */
int pm_snapshot_counters(struct pm_buf *b, const struct pm_device_state *st);

int pm_snapshot_format(struct pm_snapshot *snap, int64_t now_ms, pid_t pid,
		       struct pm_buf *out);

/* Replaces cfg->snapshot atomically (temporary file in the same directory,
 * mode 0644, rename) with the snapshot as of 'now_ms'. Concurrent callers
 * are serialised, so a later call never leaves older content. 0 or -errno
 * (or -PM_ETOOBIG); the previous file is left in place on failure. */
int pm_snapshot_write(struct pm_snapshot *snap, int64_t now_ms);

/* Removes cfg->snapshot if it is still the one this process wrote
 * (clean shutdown: a reader then knows no daemon runs). 0 or -errno. */
int pm_snapshot_remove(struct pm_snapshot *snap);

/* ---- reader ------------------------------------------------------------ */

/* One device as the snapshot file describes it. */
struct pm_snapshot_device {
	int device_id;
	bool has_sample;
	int64_t sample_ms;		/* time of the latest sample, 0: none */
	struct pm_device_state state;
	char error[256];		/* last failure's text, "" when none */
};

/* One phase of a feed: NaN where the file says null. */
struct pm_snapshot_feed_phase {
	unsigned phase;			/* 0..2: L1..L3 */
	double current, power, load, redundant_load;
	unsigned inputs;		/* circuits of the feed on this phase */
	unsigned missing;		/* of them, without a reading */
};

/* One feed as the daemon last worked it out. */
struct pm_snapshot_feed {
	bool known;			/* figures of a tick; false: all NaN */
	bool complete;			/* no circuit lacks a reading */
	unsigned missing;
	double current, power, imbalance, neutral, redundant_load;
	int64_t time_ms;		/* of the tick, 0 when !known */
	unsigned n_phases;		/* = the config's, in its order */
	struct pm_snapshot_feed_phase phase[PM_PHASES];
};

/* One active alarm. */
struct pm_snapshot_alarm {
	int kind;			/* enum pm_alarm_kind, -1: unknown */
	char alarm[32];			/* its name as written */
	char *subject;
	enum pm_severity severity;	/* WARNING or CRITICAL */
	int64_t since_ms;		/* when it reached this level */
	double value, threshold;	/* NaN when null */
};

/* What the snapshot file says, once checked to be of the reader's config. */
struct pm_snapshot_info {
	pid_t pid;			/* the daemon that wrote it */
	int64_t written_at_ms;
	double interval;		/* the writer's poll interval, seconds */
	size_t n_devices;		/* = cfg->n_devices, config order */
	struct pm_snapshot_device *devices;
	/* false: a daemon from before feeds and alarms wrote it, and the
	 * fields below are empty */
	bool has_watch;
	/* the file's feeds are cfg's (names, capacities, phases, partners,
	 * in order); when not, n_feeds is 0 */
	bool feeds_match;
	bool alarms_enabled;
	size_t n_feeds;			/* = cfg->n_feeds, config order */
	struct pm_snapshot_feed *feeds;
	size_t n_alarms;		/* worst first, as written */
	struct pm_snapshot_alarm *alarms;
};

/* Reads and validates cfg->snapshot at 'now_ms' and fills 'r' (made with
 * pm_readings_new or pm_readings_new_device for 'cfg'): every input of an
 * up device whose sample is younger than 3 intervals gets its value; a down
 * device becomes a failure with its last error text, a device whose sample
 * is too old fails with -PM_ESTALE. Returns 0 when filled, -PM_ENOSNAPSHOT
 * when the file is missing or was written for another config (other
 * devices, ports, addresses or inputs), -PM_ESTALE when it was written
 * 3 intervals or more before 'now_ms', -PM_EFRAME when it is not a valid
 * snapshot, -PM_ETOOBIG or -errno. 'r' is untouched unless 0 is returned
 * (or -ENOMEM while filling it). A reader never sees a partial file: the
 * writer renames complete files into place. */
int pm_snapshot_read(const struct pm_config *cfg, struct pm_readings *r,
		     int64_t now_ms);

/* Reads cfg->snapshot's header, device states, feeds and active alarms
 * (for `powermeter status` and `powermeter zabbix status`), without any
 * freshness check. 0 or the errors of pm_snapshot_read except -PM_ESTALE
 * (-PM_EFRAME also for malformed "feeds" or "alarms"); free with
 * pm_snapshot_info_free. */
int pm_snapshot_info_load(const struct pm_config *cfg,
			  struct pm_snapshot_info *info);
void pm_snapshot_info_free(struct pm_snapshot_info *info);

/* The active alarm of 'kind' on 'subject' in 'info', or NULL. */
const struct pm_snapshot_alarm *
pm_snapshot_alarm_find(const struct pm_snapshot_info *info,
		       enum pm_alarm_kind kind, const char *subject);

/* ---- the daemon's sink (sinks.c lists it) ----------------------------- */

struct pm_sink_ops;
extern const struct pm_sink_ops pm_sink_snapshot;

#endif
