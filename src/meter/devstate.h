/* devstate.h — what the daemon knows about each module's health: kept by its
 * poller, shown in the snapshot, STATUS= and the logs. */
#ifndef PM_DEVSTATE_H
#define PM_DEVSTATE_H

#include <stdbool.h>
#include <stdint.h>

struct pm_device_state {
	bool up;			/* answering: not down_after failed
					   reads in a row */
	int64_t last_success_ms;	/* Unix ms, 0: never */
	int64_t last_attempt_ms;	/* Unix ms, 0: never */
	unsigned consecutive_failures;
	int last_error;			/* 0 or a negative pm/errno code */
	uint64_t reads;			/* successful reads */
	uint64_t failures;		/* failed reads, all kinds */
	/* Frame by frame (struct pm_bus_counters), retries included: */
	uint64_t requests;		/* frames sent */
	uint64_t retries;		/* of them, sent again */
	uint64_t timeouts;		/* no answer in time */
	uint64_t crc_errors;		/* an answer failing its CRC */
	uint64_t frame_errors;		/* other bad answers: cut short,
					   malformed, another unit's */
	/* Read by read, of the failures: */
	uint64_t exceptions;		/* -PM_EEXCEPTION */
	uint64_t io_errors;		/* port missing, unplugged, busy, ... */
	/* Its firmware version ("6.2.8"), "" until read: read once it
	 * answers, and again after it was down, only where an output shows
	 * it (Home Assistant discovery). */
	char firmware[16];
};

/* The counters above, in the order every output lists them (the snapshot,
 * `powermeter zabbix status`, <measurement>_module): X(name) each. */
#define PM_DEVICE_COUNTERS(X)						\
	X(reads) X(failures) X(requests) X(retries) X(timeouts)		\
	X(crc_errors) X(frame_errors) X(exceptions) X(io_errors)

#endif
