/* sink_influx.h — what the InfluxDB sink (sink_influx.c, registered as
 * pm_sink_influx) shows beyond sink.h: its counters, raw line-protocol
 * input and tuning knobs for tests and benchmarks. */
#ifndef PM_SINK_INFLUX_H
#define PM_SINK_INFLUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/sink.h"

extern const struct pm_sink_ops pm_sink_influx;

struct pm_influx_stats {
	uint64_t written;	/* points the database acknowledged */
	uint64_t replayed;	/* of those, points that came from the spool */
	uint64_t rejected;	/* points the database refused (400/413 for
				   that line alone, or named in a partial
				   write): never sent again */
	uint64_t spooled;	/* points written to the spool */
	uint64_t dropped;	/* points lost, the sum of: */
	uint64_t dropped_queue;	/* the queue overflowed (writer behind) */
	uint64_t dropped_memory;	/* kept in memory while neither the
					   database nor the spool took them:
					   beyond the bound, or at stop */
	uint64_t dropped_bound;	/* the spool's size bound: its oldest */
	uint64_t dropped_damaged;	/* damaged spool records skipped */
	uint64_t dropped_torn;	/* spool records torn by a crash */
	uint64_t dropped_deleted;	/* spool segments deleted from outside */
	uint64_t requests;	/* HTTP requests made */
	uint64_t retries;	/* failed requests whose data was kept */
	uint64_t queued;	/* points waiting in memory now */
	uint64_t spool_points;	/* points in the spool now */
	uint64_t spool_bytes;
	int last_status;	/* last HTTP status, or a negative error */
	bool failing;		/* backing off now */
};

/* Knobs with production defaults; a zero member keeps its default. */
struct pm_influx_tuning {
	long backoff_min_ms;	/* first backoff after a failure: 1 s */
	long backoff_max_ms;	/* cap of the exponential backoff: 60 s */
	long auth_retry_ms;	/* retry after 401/403/404: 60 s */
	long retry_after_max_ms;	/* cap on Retry-After: 15 min */
	long final_budget_ms;	/* close(final): time for the last flush, 5 s */
	size_t ring_chunks;	/* queue: 65536 chunks */
	size_t ring_bytes;	/* queue: 16 MiB; also the bound of the points
				   kept in memory while the spool fails */
	unsigned spool_flags;	/* PM_SPOOL_* */
	long probe_ms;		/* while backing off from a database that is
				   away: GET /ping this often, 5 s */
};

/* Sets the knobs for sinks opened afterwards (NULL: defaults). Not
 * thread-safe: call before opening. */
void pm_sink_influx_tune(const struct pm_influx_tuning *t);

/* What tick_done() does: "every poller has finished a tick". */
void pm_sink_influx_tick(void *state);

/* Counters of an open sink (its state from open()); thread-safe. */
void pm_sink_influx_stats(void *state, struct pm_influx_stats *out);

/* close() that also hands back the final counters (after the last flush). */
void pm_sink_influx_close(void *state, bool final, struct pm_influx_stats *out);

/* Queues ready line protocol ('\n'-terminated lines), as emit() does with a
 * sample: for load generators and tests. Takes 'text' (malloc'd) over.
 * Returns 0, or 1 when older points had to be dropped. */
int pm_sink_influx_put(void *state, char *text, size_t len);

#endif
