/* timeutil.h — clocks: wall time for sample stamps, monotonic time for
 * schedules and timeouts. */
#ifndef PM_TIMEUTIL_H
#define PM_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t pm_now_ms(void);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t pm_mono_ns(void);
/* Sleeps until the CLOCK_MONOTONIC instant 'deadline_ns' (restarts on EINTR). */
void pm_sleep_until_ns(int64_t deadline_ns);
/* A timespec for pthread_cond_timedwait on a CLOCK_MONOTONIC condvar. */
struct timespec pm_mono_timespec(int64_t ns);

#endif
