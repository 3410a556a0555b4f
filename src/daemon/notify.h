/* notify.h — talking to systemd (sd_notify): readiness, reloads, stopping,
 * STATUS= and the watchdog, which is pinged only while every poller and
 * every sink thread make progress. Without NOTIFY_SOCKET all are no-ops. */
#ifndef PM_NOTIFY_H
#define PM_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/poller.h"
#include "daemon/sinkset.h"

void pm_notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=, as Type=notify-reload expects. */
void pm_notify_reloading(void);
void pm_notify_stopping(void);
void pm_notify_status(const char *status);

/* The watchdog's view of the threads it must see progress from. */
struct pm_watchdog {
	bool enabled;
	int64_t period_ns;		/* WatchdogSec/2: how often to ping */
	int64_t last_ping_ns;
	bool complained;		/* "not pinging" already logged */
	/* per sink: the last progress() seen and when it changed */
	uint64_t progress[PM_SINKS_MAX];
	int64_t changed_ns[PM_SINKS_MAX];
};

/* Reads WATCHDOG_USEC/WATCHDOG_PID (sd_watchdog_enabled). */
void pm_watchdog_init(struct pm_watchdog *w);
/* Warns when a poller of 'port' may legitimately spend 'limit_ns' in one
 * step, longer than WatchdogSec: systemd would restart a daemon that only
 * waits for slow modules. */
void pm_watchdog_check_limit(const struct pm_watchdog *w, int64_t limit_ns,
			     const char *port);
/* Forgets the sinks' progress (after they were reopened). */
void pm_watchdog_reset(struct pm_watchdog *w, int64_t now_ns);
/* Samples progress and pings when due and healthy. Returns how long the
 * caller may sleep before the next call (ns). */
int64_t pm_watchdog_run(struct pm_watchdog *w, int64_t now_ns,
			const struct pm_pollers_health *h,
			const struct pm_sinkset *sinks);

#endif
