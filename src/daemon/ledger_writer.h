/* ledger_writer.h — the daemon's billing ledger (output/ledger.h): at every
 * boundary of "ledger.interval" (aligned to the clock) one row per
 * configured circuit with its energy and charge counters, its peak current
 * in the interval and its unmetered seconds, in one transaction — written
 * by the main thread, never by a poller. A ledger that cannot be opened or
 * written (locked, full, damaged) is logged once, its boundaries are kept
 * in memory (a few) and retried; polling and InfluxDB never wait for it. */
#ifndef PM_DAEMON_LEDGER_WRITER_H
#define PM_DAEMON_LEDGER_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/energy.h"
#include "util/buf.h"

struct pm_ledger_writer;

/* Follows 'cfg' (start and reload) with the counters of 'energy' (NULL:
 * none, and then no ledger). The first time the ledger opens, each
 * circuit's counters are raised to its newest row (a crash may have left
 * the ledger ahead of the energy state file). Never fails the daemon. */
void pm_ledger_writer_configure(struct pm_ledger_writer **w,
				const struct pm_config *cfg,
				struct pm_energy *energy);

/* Writes a boundary when one has passed, retries what is kept, prunes
 * once a day. Returns the nanoseconds until it wants to run again
 * (INT64_MAX when off). */
int64_t pm_ledger_writer_run(struct pm_ledger_writer *w, int64_t now_ns);

/* "ledger ok" / "ledger failing: ..." for STATUS=; nothing when off. */
void pm_ledger_writer_status(struct pm_ledger_writer *w, struct pm_buf *out);

/* Closes the ledger (no row for the interval in progress) and frees. */
void pm_ledger_writer_close(struct pm_ledger_writer *w);

#endif
