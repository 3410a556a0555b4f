/* complain.h — when a repeated failure is worth a log line: the first one,
 * then at 2, 4, 8, ... consecutive failures (at least once an hour), and once
 * when it recovers (as collectd's utils_complain). Pure bookkeeping: the
 * caller writes the lines. */
#ifndef PM_COMPLAIN_H
#define PM_COMPLAIN_H

#include <stdbool.h>
#include <stdint.h>

/* Longest quiet spell while a failure lasts. */
#define PM_COMPLAIN_MAX_QUIET_NS (3600LL * 1000000000)

struct pm_complaint {
	unsigned failures;	/* consecutive */
	unsigned next_report;	/* report when failures reaches this */
	int64_t first_ns;	/* CLOCK_MONOTONIC of the first failure */
	int64_t last_report_ns;
	bool reported;		/* a line was written for this spell */
};

/* Counts one failure at 'now_ns'; true when it should be logged. */
bool pm_complain_failure(struct pm_complaint *c, int64_t now_ns);

/* Counts a success. True when a failure spell that was logged ends: then
 * *failures and *duration_ns (may be NULL) tell how long it lasted. Resets
 * the complaint either way. */
bool pm_complain_success(struct pm_complaint *c, int64_t now_ns,
			 unsigned *failures, int64_t *duration_ns);

/* "12 min", "37 s", "3 h 5 min" for a log line. */
void pm_complain_duration(char *buf, unsigned size, int64_t ns);

#endif
