/* sinkset.h — the sinks open for one configuration (sink.h): opened and
 * closed together, fed by every poller. */
#ifndef PM_SINKSET_H
#define PM_SINKSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/sink.h"
#include "util/buf.h"

#define PM_SINKS_MAX 8

struct pm_sinkset {
	const struct pm_config *cfg;
	size_t n;
	const struct pm_sink_ops *ops[PM_SINKS_MAX];
	void *state[PM_SINKS_MAX];
};

/* Opens every registered sink that wants 'cfg'. 0, or the first error
 * (what was opened is closed again; the sink has logged why). */
int pm_sinkset_open(struct pm_sinkset *set, const struct pm_config *cfg);
/* Closes in reverse order; 'final' as in sink.h. */
void pm_sinkset_close(struct pm_sinkset *set, bool final);

void pm_sinkset_emit(const struct pm_sinkset *set, size_t device,
		     const struct pm_sample *s,
		     const struct pm_device_state *st);
void pm_sinkset_tick_done(const struct pm_sinkset *set);
/* The watch's result to every sink that takes it. */
void pm_sinkset_watch(const struct pm_sinkset *set,
		      const struct pm_watch_tick *t);
/* The sum of the sinks' backlogs in bytes; 'has' false when no sink keeps
 * one. */
uint64_t pm_sinkset_backlog(const struct pm_sinkset *set, bool *has);
/* The sinks' STATUS= parts, "; "-separated. */
void pm_sinkset_status(const struct pm_sinkset *set, struct pm_buf *out);
/* progress() of sink i; 'has' false when it has no threads to watch. */
uint64_t pm_sinkset_progress(const struct pm_sinkset *set, size_t i,
			     bool *has);

#endif
