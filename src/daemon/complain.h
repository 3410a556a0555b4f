/* complain.h — when a repeated failure is worth a log line (as collectd's
 * utils_complain): the first failure, then at 2, 4, 8, ... failures (at
 * least once an hour while they go on), and one line when it recovers.
 * A flapping module (failing every other read) stays in one episode, with
 * the same backoff, until it has been calm for an hour. Pure
 * bookkeeping: the caller writes the lines. */
#ifndef PM_COMPLAIN_H
#define PM_COMPLAIN_H

#include <stdbool.h>
#include <stdint.h>

/* Longest quiet spell while failures go on. */
#define PM_COMPLAIN_MAX_QUIET_NS (3600LL * 1000000000)
/* An episode ends after this long without a failure. */
#define PM_COMPLAIN_CALM_NS (3600LL * 1000000000)

struct pm_complaint {
	unsigned failures;	/* consecutive, in the current spell */
	int64_t spell_ns;	/* CLOCK_MONOTONIC of the spell's first failure */
	bool spell_reported;	/* a line was written during this spell */
	/* the episode: spells separated by less than PM_COMPLAIN_CALM_NS */
	bool in_episode;
	int64_t episode_ns;	/* its first failure */
	unsigned episode_failures;
	unsigned next_report;	/* report when episode_failures reaches it */
	int64_t last_failure_ns;
	int64_t last_report_ns;
	/* Set by the owner (0: none): after an episode's first line, none
	 * sooner than this after the previous one. For failures that come
	 * quickly at first and are not news (a database retried every second
	 * while it is down). */
	int64_t min_quiet_ns;
};

/* Counts one failure at 'now_ns'; true when it should be logged. */
bool pm_complain_failure(struct pm_complaint *c, int64_t now_ns);

/* Counts a success. True when a failure spell during which a line was
 * logged ends: then *failures (consecutive) and *duration_ns (may be NULL)
 * tell how long it lasted. */
bool pm_complain_success(struct pm_complaint *c, int64_t now_ns,
			 unsigned *failures, int64_t *duration_ns);

/* "12 min", "37 s", "3 h 5 min" for a log line. */
void pm_complain_duration(char *buf, unsigned size, int64_t ns);

#endif
