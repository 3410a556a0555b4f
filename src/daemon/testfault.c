/* testfault.c — the integration tests' hang point (testfault.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/testfault.h"
#include "util/log.h"
#include "util/timeutil.h"

#define TESTFAULT_ENV "PM_TEST_HANG"
/* How often a hung thread looks whether its file is still there. */
#define TESTFAULT_POLL_NS (20 * 1000000L)
#define NS_PER_S 1000000000.0

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static char *hang_thread, *hang_file;	/* NULL: no fault asked for */

static void read_env(void)
{
	const char *v = getenv(TESTFAULT_ENV), *colon;

	if (!v || !(colon = strchr(v, ':')) || colon == v || !colon[1])
		return;
	hang_thread = strndup(v, (size_t)(colon - v));
	hang_file = strdup(colon + 1);
	if (!hang_thread || !hang_file) {
		free(hang_thread);
		free(hang_file);
		hang_thread = hang_file = NULL;
	}
}

void pm_testfault_hang(const char *thread)
{
	const struct timespec pause = { 0, TESTFAULT_POLL_NS };
	int64_t since;

	(void)pthread_once(&env_once, read_env);
	if (!hang_file || strcmp(thread, hang_thread) != 0 ||
	    access(hang_file, F_OK) < 0)
		return;
	/* CLOCK_MONOTONIC, the clock the test measures with */
	since = pm_mono_ns();
	log_warning("test fault: the %s thread hangs while %s exists "
		    "(monotonic %.3f s)", thread, hang_file,
		    (double)since / NS_PER_S);
	while (access(hang_file, F_OK) == 0)
		(void)nanosleep(&pause, NULL);
	log_warning("test fault: the %s thread goes on after %.3f s "
		    "(monotonic %.3f s)", thread,
		    (double)(pm_mono_ns() - since) / NS_PER_S,
		    (double)pm_mono_ns() / NS_PER_S);
}
