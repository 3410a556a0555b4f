/* testfault.h — a fault point for the integration tests, and only for them:
 * a thread made to hang at a known place while a file exists, so that a test
 * can show the watchdog noticing (tests/integration/daemon_watchdog.py).
 *
 * PM_TEST_HANG=THREAD:FILE in powermeterd's environment: the thread named
 * ("poller": every poller, at the top of its tick; "writer": the InfluxDB
 * writer, at the top of its loop) stops there while FILE exists, and goes on
 * once it is removed. Without the variable (always, outside the tests) a
 * call costs a pthread_once() and a comparison. It opens no way in: whoever
 * sets the daemon's environment can stop it anyway. */
#ifndef PM_DAEMON_TESTFAULT_H
#define PM_DAEMON_TESTFAULT_H

/* The fault point of thread 'thread' ("poller", "writer"). */
void pm_testfault_hang(const char *thread);

#endif
