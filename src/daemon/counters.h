/* counters.h — the daemon's energy counters (meter/energy.h): opened once
 * and kept across reloads, saved every "persist_interval" and at stop by the
 * main thread, never by a poller. */
#ifndef PM_DAEMON_COUNTERS_H
#define PM_DAEMON_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/energy.h"

struct pm_counters {
	struct pm_energy *energy;	/* NULL: off, or could not be opened */
	char *dir;			/* where they are kept */
	int64_t every_ns;		/* save interval */
	int64_t next_ns;		/* CLOCK_MONOTONIC of the next save */
	int save_err;			/* the last save's failure, 0 */
};

/* Follows 'cfg' (start and reload): opens the counters in cfg->state_dir
 * when energy is on (logging where they came from), closes them (saving)
 * when it was turned off or the directory changed, and hands them the new
 * inputs. Never fails the daemon: without counters it meters power only. */
void pm_counters_configure(struct pm_counters *c, const struct pm_config *cfg);

/* Saves when due. Returns the nanoseconds until the next save is due
 * (INT64_MAX when off). */
int64_t pm_counters_run(struct pm_counters *c, int64_t now_ns);

/* Saves once more and frees: at stop, after the pollers have stopped. */
void pm_counters_close(struct pm_counters *c);

#endif
