/* alarm_command.h — runs the user's "alarms.command" at every raise and
 * clear: without a shell, outside the polling path (its own thread), at most
 * a few at once, each with a timeout; what it prints and how it ends are
 * logged. Submitting never blocks. */
#ifndef PM_ALARM_COMMAND_H
#define PM_ALARM_COMMAND_H

#include <stddef.h>
#include <stdint.h>

struct pm_alarm_runner;

struct pm_alarm_runner_stats {
	uint64_t submitted;	/* accepted by submit */
	uint64_t dropped;	/* refused: the queue was full */
	uint64_t started;	/* spawned */
	uint64_t spawn_failed;	/* could not be started (ENOENT, EACCES...) */
	uint64_t succeeded;	/* exited 0 */
	uint64_t failed;	/* exited non-zero or killed by a signal */
	uint64_t timed_out;	/* killed after the timeout */
	unsigned running;	/* now */
	size_t queued;		/* now, waiting for a slot */
};

/* A runner with its thread: at most 'max_running' commands at once, at most
 * 'max_queued' waiting, each killed (SIGTERM to its process group, SIGKILL
 * 2 s later) after 'timeout' seconds. 0 or -errno. */
int pm_alarm_runner_new(struct pm_alarm_runner **out, unsigned max_running,
			size_t max_queued, double timeout);

/* Queues one run of argv[0] (an absolute path, run as is, no shell) with
 * the arguments argv[1..] (NULL-terminated) and 'env' ("NAME=value"
 * strings, NULL-terminated) added to the daemon's environment. Everything
 * is copied. 'what' names the run in logs ("circuit_load rack 12 raised").
 * Never blocks. 0, -ENOBUFS when the queue is full (counted as dropped and
 * logged), -EINVAL without an absolute argv[0], -ESHUTDOWN once free() has
 * begun, -ENOMEM. */
int pm_alarm_runner_submit(struct pm_alarm_runner *r, char *const *argv,
			   char *const *env, const char *what);

void pm_alarm_runner_stats(struct pm_alarm_runner *r,
			   struct pm_alarm_runner_stats *out);

/* Grows while the runner's thread is alive and looping (for the watchdog). */
uint64_t pm_alarm_runner_progress(struct pm_alarm_runner *r);

/* Runs what is queued and waits for the running commands up to 'grace'
 * seconds in all, kills what is left, stops the thread and frees. NULL is
 * fine. */
void pm_alarm_runner_free(struct pm_alarm_runner *r, double grace);

#endif
