/* poller.h — one thread per distinct serial port, reading the port's
 * modules in turn at every tick and handing each result to the sinks. */
#ifndef PM_POLLER_H
#define PM_POLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "daemon/sinkset.h"

struct pm_watch;
#include "meter/energy.h"

struct pm_pollers;

/* What the main thread learns about the pollers (STATUS=, watchdog). */
struct pm_pollers_health {
	size_t ports;
	size_t ports_down;	/* cannot be opened, or went away */
	size_t modules;
	size_t modules_up;
	uint64_t ticks;		/* completed, all pollers */
	uint64_t missed_ticks;	/* skipped after overruns, all pollers */
	bool all_recent;	/* no poller stuck inside a step of its tick */
};

/* Starts one thread per port of 'cfg', feeding 'sinks', after adding each
 * good sample to the counters of 'energy' (NULL: none kept) and every
 * attempt to 'watch' (NULL: no feeds or alarms), which hears of every tick
 * before the sinks; all must outlive the pollers. Ticks fall on multiples of cfg->interval of the wall clock,
 * kept on CLOCK_MONOTONIC. 0 or -errno (nothing left running). */
int pm_pollers_start(struct pm_pollers **pp, const struct pm_config *cfg,
		     const struct pm_sinkset *sinks, struct pm_energy *energy,
		     struct pm_watch *watch);

/* Sets the stop flag, wakes and joins every thread, closes the ports and
 * frees 'p'. A poller inside a read finishes that read first (at most the
 * module's timeout). NULL is ignored. */
void pm_pollers_stop(struct pm_pollers *p);

void pm_pollers_health(struct pm_pollers *p, int64_t now_ns,
		       struct pm_pollers_health *h);
/* How long a poller may go without finishing a step of its tick (opening
 * its port, one module's read) before it counts as stuck: the largest over
 * the ports, whose name goes to *port. */
int64_t pm_pollers_stall_limit(struct pm_pollers *p, const char **port);

/* The deadline after 'deadline_ns' that is still ahead of 'now_ns':
 * deadline + interval, or later when the tick overran, in which case the
 * ticks that were missed are added to *missed. Never returns a deadline in
 * the past, so late ticks are skipped, never run back to back. */
int64_t pm_tick_next(int64_t deadline_ns, int64_t interval_ns, int64_t now_ns,
		     uint64_t *missed);

/* The first tick: the next multiple of 'interval_ns' of the wall clock
 * 'real_ns', as CLOCK_MONOTONIC time (given 'mono_ns' read at the same
 * moment). */
int64_t pm_tick_first(int64_t interval_ns, int64_t real_ns, int64_t mono_ns);

#endif
