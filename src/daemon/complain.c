/* complain.c — rate limits for repeated complaints about one module or port:
 * a dead module polled every second must not write 86 400 lines a day, nor
 * a flapping one twice as many. */
#include <stdio.h>

#include "daemon/complain.h"

bool pm_complain_failure(struct pm_complaint *c, int64_t now_ns)
{
	if (!c->in_episode ||
	    now_ns - c->last_failure_ns >= PM_COMPLAIN_CALM_NS) {
		c->in_episode = true;
		c->episode_ns = now_ns;
		c->episode_failures = 0;
		c->next_report = 1;
	}
	if (c->failures == 0) {
		c->spell_ns = now_ns;
		c->spell_reported = false;
	}
	if (c->failures < UINT32_MAX)
		c->failures++;
	if (c->episode_failures < UINT32_MAX)
		c->episode_failures++;
	c->last_failure_ns = now_ns;
	if ((c->episode_failures >= c->next_report ||
	     now_ns - c->last_report_ns >= PM_COMPLAIN_MAX_QUIET_NS) &&
	    (c->episode_failures == 1 ||
	     now_ns - c->last_report_ns >= c->min_quiet_ns)) {
		c->next_report = c->episode_failures <= UINT32_MAX / 2 ?
			c->episode_failures * 2 : UINT32_MAX;
		c->last_report_ns = now_ns;
		c->spell_reported = true;
		return true;
	}
	return false;
}

bool pm_complain_success(struct pm_complaint *c, int64_t now_ns,
			 unsigned *failures, int64_t *duration_ns)
{
	bool report = c->failures > 0 && c->spell_reported;

	if (report) {
		if (failures)
			*failures = c->failures;
		if (duration_ns)
			*duration_ns = now_ns - c->spell_ns;
	}
	c->failures = 0;
	c->spell_reported = false;
	return report;
}

void pm_complain_duration(char *buf, unsigned size, int64_t ns)
{
	int64_t s = ns / 1000000000;

	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, size, "%lld s", (long long)s);
	else if (s < 2 * 3600)
		snprintf(buf, size, "%lld min", (long long)(s / 60));
	else if (s < 2 * 86400)
		snprintf(buf, size, "%lld h %lld min", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(buf, size, "%lld d %lld h", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
}
