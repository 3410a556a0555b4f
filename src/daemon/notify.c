/* notify.c — sd_notify messages and the watchdog decision. libsystemd is
 * linked by the daemon only; the library never talks to systemd. */
#include <inttypes.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "daemon/notify.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_S 1000000000LL
/* How often the main thread samples progress when the watchdog is on. */
#define WATCH_SAMPLE_NS (NS_PER_S / 2)

void pm_notify_ready(const char *status)
{
	if (status && *status)
		(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
	else
		(void)sd_notify(0, "READY=1");
}

void pm_notify_reloading(void)
{
	(void)sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading the configuration\n"
			 "MONOTONIC_USEC=%" PRId64, pm_mono_ns() / 1000);
}

void pm_notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
}

void pm_notify_status(const char *status)
{
	(void)sd_notifyf(0, "STATUS=%s", status);
}

void pm_watchdog_init(struct pm_watchdog *w)
{
	uint64_t usec = 0;

	*w = (struct pm_watchdog){ 0 };
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		w->enabled = true;
		w->period_ns = (int64_t)usec * 1000 / 2;
		log_debug("watchdog: pinging every %" PRId64 " ms while all "
			  "threads make progress", w->period_ns / 1000000);
	}
	pm_watchdog_reset(w, pm_mono_ns());
}

void pm_watchdog_check_limit(const struct pm_watchdog *w, int64_t limit_ns,
			     const char *port)
{
	if (!w->enabled || !port || limit_ns < 2 * w->period_ns)
		return;
	log_warning("watchdog: a read on %s may take up to %.0f s with its "
		    "timeout and retries (and the port's reopening), and "
		    "WatchdogSec is %.0f s: systemd would restart the daemon "
		    "while it waits for a slow module; lower that module's "
		    "\"timeout\" or \"retries\", or raise WatchdogSec= in a "
		    "drop-in (systemctl edit powermeterd)", port,
		    (double)limit_ns / NS_PER_S,
		    (double)(2 * w->period_ns) / NS_PER_S);
}

void pm_watchdog_reset(struct pm_watchdog *w, int64_t now_ns)
{
	for (size_t i = 0; i < PM_SINKS_MAX; i++) {
		w->progress[i] = 0;
		w->changed_ns[i] = now_ns;
	}
}

int64_t pm_watchdog_run(struct pm_watchdog *w, int64_t now_ns,
			const struct pm_pollers_health *h,
			const struct pm_sinkset *sinks)
{
	const char *stuck = NULL;
	int64_t next;

	if (!w->enabled)
		return INT64_MAX;
	for (size_t i = 0; i < sinks->n; i++) {
		bool has;
		uint64_t v = pm_sinkset_progress(sinks, i, &has);

		if (!has)
			continue;
		if (v != w->progress[i]) {
			w->progress[i] = v;
			w->changed_ns[i] = now_ns;
		} else if (now_ns - w->changed_ns[i] > w->period_ns) {
			stuck = sinks->ops[i]->name;
		}
	}
	if (h && !h->all_recent)
		stuck = "poller";

	if (now_ns - w->last_ping_ns >= w->period_ns) {
		if (!stuck) {
			(void)sd_notify(0, "WATCHDOG=1");
			w->last_ping_ns = now_ns;
			if (w->complained)
				log_notice("watchdog: every thread makes "
					   "progress again");
			w->complained = false;
		} else if (!w->complained) {
			log_err("watchdog: the %s thread makes no progress; "
				"not pinging the watchdog", stuck);
			w->complained = true;
		}
	}
	next = w->last_ping_ns + w->period_ns - now_ns;
	if (next > WATCH_SAMPLE_NS || next <= 0)
		next = WATCH_SAMPLE_NS;
	return next;
}
