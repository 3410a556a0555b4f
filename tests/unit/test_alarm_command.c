/* test_alarm_command.c — the alarm command runner with real processes
 * (/bin/sh): arguments and environment, the limit on concurrent runs, the
 * timeout down to the grandchildren, a submit that never waits, the full
 * queue, a missing program, what the child inherits, and the grace at
 * free(). Each test's log lines are captured and checked where they matter. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/alarm_command.c"

#define MS (1000000LL)
#define SEC (1000000000LL)

static char tmpdir[] = "/tmp/pm-test-alarm-XXXXXX";
static char log_path[PATH_MAX];
static int saved_stderr = -1;

static const char *tmp_file(const char *name)
{
	static char path[8][PATH_MAX];
	static unsigned next;
	char *p = path[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

/* The whole file, or "" when it does not exist. */
static char *slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, size - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Each test's log goes to a file the test may read (pm_log writes fd 2);
 * the teardown copies it to the real stderr, so nothing is lost. */
static int capture_log(void **unused)
{
	int fd;

	(void)unused;
	fflush(stderr);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return 0;
}

static int release_log(void **unused)
{
	static char buf[65536];

	(void)unused;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	fputs(slurp(log_path, buf, sizeof(buf)), stderr);
	return 0;
}

static const char *log_text(void)
{
	static char buf[65536];

	return slurp(log_path, buf, sizeof(buf));
}

/* Waits (10 s at most) until every accepted run has ended. */
static struct pm_alarm_runner_stats wait_done(struct pm_alarm_runner *r)
{
	struct pm_alarm_runner_stats st;
	int64_t end = pm_mono_ns() + 10 * SEC;

	for (;;) {
		pm_alarm_runner_stats(r, &st);
		if (st.queued == 0 && st.running == 0 &&
		    st.started + st.spawn_failed == st.submitted)
			return st;
		if (pm_mono_ns() > end)
			fail_msg("runs still going after 10 s");
		usleep(5000);
	}
}

static void wait_running(struct pm_alarm_runner *r, unsigned n)
{
	struct pm_alarm_runner_stats st;
	int64_t end = pm_mono_ns() + 10 * SEC;

	do {
		if (pm_mono_ns() > end)
			fail_msg("never %u running", n);
		usleep(5000);
		pm_alarm_runner_stats(r, &st);
	} while (st.running != n);
}

static void sh(struct pm_alarm_runner *r, const char *script, const char *arg,
	       const char *arg2)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, "sh", (char *)arg,
			 (char *)arg2, NULL };
	char *env[] = { NULL };

	assert_int_equal(pm_alarm_runner_submit(r, argv, env, "test"), 0);
}

static void runs_with_args_and_env(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;
	const char *out = tmp_file("env");
	char *argv[] = { "/bin/sh", "-c",
			 "echo \"$POWERMETER_ALARM $1 $HOME $PM_TEST_INHERITED "
			 "$(tr '\\0' '\\n' < /proc/$$/environ | grep -c ^HOME=)"
			 " ${NOTIFY_SOCKET:-none}\" "
			 "> \"$2\"",
			 "sh", "arg one", (char *)out, NULL };
	char *env[] = { "POWERMETER_ALARM=circuit_load", "HOME=/override",
			NULL };
	char buf[256];

	(void)unused;
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
	assert_int_equal(pm_alarm_runner_new(&r, 2, 8, 5), 0);
	assert_int_equal(pm_alarm_runner_submit(r, argv, env,
						"circuit_load rack 12 raised"), 0);
	/* everything was copied */
	argv[4] = "changed";
	env[0] = "POWERMETER_ALARM=changed";
	st = wait_done(r);
	assert_int_equal(st.submitted, 1);
	assert_int_equal(st.started, 1);
	assert_int_equal(st.succeeded, 1);
	/* the job's HOME replaced the daemon's, the rest is inherited but
	 * for what systemd meant for the daemon alone */
	assert_string_equal(slurp(out, buf, sizeof(buf)),
			    "circuit_load arg one /override kept 1 none\n");
	pm_alarm_runner_free(r, 1);
}

static void exit_status_and_output_logged(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 3, 8, 5), 0);
	sh(r, "echo fine", NULL, NULL);
	sh(r, "echo oops >&2; echo second; exit 3", NULL, NULL);
	sh(r, "kill -9 $$", NULL, NULL);
	st = wait_done(r);
	assert_int_equal(st.succeeded, 1);
	assert_int_equal(st.failed, 2);
	pm_alarm_runner_free(r, 1);
	assert_non_null(strstr(log_text(), "alarm command /bin/sh (test) "
			       "failed with exit status 3: oops | second"));
	assert_non_null(strstr(log_text(), "killed by signal 9"));
}

static void max_running_respected(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;
	const char *out = tmp_file("spans");
	int64_t s[5], e[5], t0 = pm_mono_ns();
	unsigned seen = 0, most = 0;
	char buf[1024], *p = buf;

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 2, 8, 5), 0);
	for (int i = 0; i < 5; i++)
		sh(r, "s=$(date +%s%N); sleep 0.3; echo $s $(date +%s%N) >> \"$1\"",
		   out, NULL);
	do {
		pm_alarm_runner_stats(r, &st);
		seen = st.running > seen ? st.running : seen;
		usleep(2000);
	} while (st.succeeded + st.failed < 5 && pm_mono_ns() - t0 < 10 * SEC);
	assert_int_equal(st.succeeded, 5);
	assert_int_equal(seen, 2);
	/* three rounds of 0.3 s */
	assert_true(pm_mono_ns() - t0 >= 850 * MS);
	slurp(out, buf, sizeof(buf));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(sscanf(p, "%" SCNd64 " %" SCNd64, &s[i], &e[i]), 2);
		p = strchr(p, '\n') + 1;
	}
	for (int i = 0; i < 5; i++) {
		unsigned n = 0;

		for (int k = 0; k < 5; k++)
			n += s[k] <= s[i] && s[i] < e[k];
		most = n > most ? n : most;
	}
	assert_int_equal(most, 2);
	pm_alarm_runner_free(r, 1);
}

/* Dead or a zombie (whose parent, init, has not reaped it yet). */
static bool gone(pid_t pid)
{
	char path[64], buf[512], *paren;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	slurp(path, buf, sizeof(buf));
	paren = strrchr(buf, ')');
	return !paren || paren[2] == 'Z' || paren[2] == 'X';
}

static void hanging_command_killed(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;
	const char *out = tmp_file("grandchild");
	int64_t t0 = pm_mono_ns();
	char buf[64];
	pid_t pid;

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 2, 8, 0.3), 0);
	sh(r, "sleep 60 & echo $! > \"$1\"; sleep 60", out, NULL);
	st = wait_done(r);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.failed, 0);
	assert_true(pm_mono_ns() - t0 < 2 * SEC);
	pid = (pid_t)atoi(slurp(out, buf, sizeof(buf)));
	assert_true(pid > 0);
	for (int i = 0; i < 100 && !gone(pid); i++)
		usleep(10000);
	assert_true(gone(pid));
	pm_alarm_runner_free(r, 1);
	assert_non_null(strstr(log_text(), "alarm command /bin/sh (test) still "
			       "running after 0.3 s: killed"));
}

static void term_ignored_then_sigkill(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;
	int64_t t0 = pm_mono_ns();

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 0.2), 0);
	sh(r, "trap '' TERM; sleep 60", NULL, NULL);
	st = wait_done(r);
	assert_int_equal(st.timed_out, 1);
	assert_true(pm_mono_ns() - t0 >= 2 * SEC);
	assert_true(pm_mono_ns() - t0 < 4 * SEC);
	pm_alarm_runner_free(r, 1);
}

static void submit_never_blocks(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	char *argv[] = { "/bin/true", NULL };
	char *env[] = { "POWERMETER_ALARM=x", NULL };
	int64_t worst = 0, t;

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 2, 64, 30), 0);
	sh(r, "sleep 60", NULL, NULL);
	sh(r, "sleep 60", NULL, NULL);
	wait_running(r, 2);
	for (int i = 0; i < 50; i++) {
		t = pm_mono_ns();
		assert_int_equal(pm_alarm_runner_submit(r, argv, env, "q"), 0);
		t = pm_mono_ns() - t;
		worst = t > worst ? t : worst;
		usleep(1000);
	}
	assert_true(worst < 5 * MS);
	/* grace 0: the two are killed, the 50 queued ones dropped */
	t = pm_mono_ns();
	pm_alarm_runner_free(r, 0);
	assert_true(pm_mono_ns() - t < SEC);
	assert_non_null(strstr(log_text(), "50 queued run(s) not started"));
}

static void full_queue_drops(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;
	char *argv[] = { "/bin/true", NULL };
	char *env[] = { NULL };

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 1, 2, 30), 0);
	sh(r, "sleep 60", NULL, NULL);
	wait_running(r, 1);
	assert_int_equal(pm_alarm_runner_submit(r, argv, env, "a"), 0);
	assert_int_equal(pm_alarm_runner_submit(r, argv, env, "b"), 0);
	assert_int_equal(pm_alarm_runner_submit(r, argv, env, "c"), -ENOBUFS);
	assert_int_equal(pm_alarm_runner_submit(r, argv, env, "d"), -ENOBUFS);
	pm_alarm_runner_stats(r, &st);
	assert_int_equal(st.submitted, 3);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.queued, 2);
	/* the thread logs it within its 100 ms sleep */
	usleep(300000);
	assert_non_null(strstr(log_text(), "2 run(s) dropped, the queue of 2 was full"));
	/* and not again within the minute */
	assert_int_equal(pm_alarm_runner_submit(r, argv, env, "e"), -ENOBUFS);
	usleep(300000);
	assert_null(strstr(log_text(), "1 run(s) dropped"));
	pm_alarm_runner_free(r, 0);
}

static void missing_program(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;
	const char *plain = tmp_file("not-executable");
	char *missing[] = { "/nonexistent/notify", "x", NULL };
	char *noexec[] = { (char *)plain, NULL };
	char *relative[] = { "notify", NULL };
	char *env[] = { NULL };
	FILE *f = fopen(plain, "w");

	(void)unused;
	assert_non_null(f);
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	assert_int_equal(pm_alarm_runner_new(&r, 2, 8, 5), 0);
	assert_int_equal(pm_alarm_runner_submit(r, relative, env, "r"), -EINVAL);
	assert_int_equal(pm_alarm_runner_submit(r, missing, env, "m"), 0);
	assert_int_equal(pm_alarm_runner_submit(r, noexec, env, "n"), 0);
	sh(r, "exit 0", NULL, NULL);
	st = wait_done(r);
	assert_int_equal(st.spawn_failed, 2);
	assert_int_equal(st.started, 1);
	assert_int_equal(st.succeeded, 1);
	pm_alarm_runner_free(r, 1);
	assert_non_null(strstr(log_text(), "cannot run alarm command "
			       "/nonexistent/notify (m): No such file or "
			       "directory (check alarms.command in the config)"));
	assert_non_null(strstr(log_text(), "Permission denied"));
}

static uint64_t status_hex(const char *text, const char *field)
{
	const char *p = strstr(text, field);

	assert_non_null(p);
	return strtoull(p + strlen(field), NULL, 16);
}

static void child_gets_clean_signals(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	const char *status = tmp_file("status"), *stat = tmp_file("stat");
	/* not a shell: dash clears its signal mask itself */
	char *cp_status[] = { "/bin/cp", "/proc/self/status", (char *)status,
			      NULL };
	char *cp_stat[] = { "/bin/cp", "/proc/self/stat", (char *)stat, NULL };
	char *env[] = { NULL };
	sigset_t term, old;
	void (*old_pipe)(int);
	char buf[2048], *p;
	long pid, pgrp;

	(void)unused;
	/* as the daemon does, so that the test means something */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	old_pipe = signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 5), 0);
	assert_int_equal(pm_alarm_runner_submit(r, cp_status, env, "s"), 0);
	assert_int_equal(pm_alarm_runner_submit(r, cp_stat, env, "s"), 0);
	sh(r, "readlink /proc/$$/fd/0 > \"$1\"", tmp_file("stdin"), NULL);
	assert_int_equal(wait_done(r).succeeded, 3);
	pm_alarm_runner_free(r, 1);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, old_pipe);

	slurp(status, buf, sizeof(buf));
	assert_int_equal(status_hex(buf, "\nSigBlk:"), 0);
	assert_int_equal(status_hex(buf, "\nSigIgn:") & (1ULL << (SIGPIPE - 1)), 0);
	/* its own process group: "pid (comm) state ppid pgrp ..." */
	slurp(stat, buf, sizeof(buf));
	pid = strtol(buf, NULL, 10);
	p = strrchr(buf, ')');
	assert_non_null(p);
	assert_int_equal(sscanf(p + 2, "%*c %*d %ld", &pgrp), 1);
	assert_true(pid > 0);
	assert_int_equal(pid, pgrp);
	assert_string_equal(slurp(tmp_file("stdin"), buf, sizeof(buf)),
			    "/dev/null\n");
}

static void free_waits_for_the_grace(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	int64_t t;
	char buf[64];

	(void)unused;
	/* finishing within the grace: waited for, queued ones run too */
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 30), 0);
	sh(r, "sleep 0.3; echo a > \"$1\"", tmp_file("first"), NULL);
	sh(r, "echo b > \"$1\"", tmp_file("second"), NULL);
	t = pm_mono_ns();
	pm_alarm_runner_free(r, 5);
	t = pm_mono_ns() - t;
	assert_true(t >= 200 * MS && t < 2 * SEC);
	assert_string_equal(slurp(tmp_file("first"), buf, sizeof(buf)), "a\n");
	assert_string_equal(slurp(tmp_file("second"), buf, sizeof(buf)), "b\n");

	/* still running at the end of the grace: killed then */
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 30), 0);
	sh(r, "sleep 60", NULL, NULL);
	wait_running(r, 1);
	t = pm_mono_ns();
	pm_alarm_runner_free(r, 0.3);
	t = pm_mono_ns() - t;
	assert_true(t >= 250 * MS && t < 2 * SEC);
	assert_non_null(strstr(log_text(), "still running at shutdown: killed"));
}

static void big_output_drained(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	struct pm_alarm_runner_stats st;

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 5), 0);
	/* 1 MB: far more than a pipe holds */
	sh(r, "head -c 1000000 /dev/zero | tr '\\0' x; exit 1", NULL, NULL);
	st = wait_done(r);
	assert_int_equal(st.timed_out, 0);
	assert_int_equal(st.failed, 1);
	pm_alarm_runner_free(r, 1);
	assert_non_null(strstr(log_text(), "exit status 1: xxxxxxxxxx"));
}

static void progress_and_arguments(void **unused)
{
	struct pm_alarm_runner *r = NULL;
	uint64_t p0;

	(void)unused;
	assert_int_equal(pm_alarm_runner_new(&r, 0, 8, 5), -EINVAL);
	assert_int_equal(pm_alarm_runner_new(&r, 1, 0, 5), -EINVAL);
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 0), -EINVAL);
	assert_null(r);
	pm_alarm_runner_free(NULL, 1);
	assert_int_equal(pm_alarm_runner_new(&r, 1, 8, 5), 0);
	/* idle, the thread still goes round every 100 ms */
	p0 = pm_alarm_runner_progress(r);
	usleep(350000);
	assert_true(pm_alarm_runner_progress(r) >= p0 + 2);
	pm_alarm_runner_free(r, 1);
}

static int remove_one(const char *path, const struct stat *sb, int type,
		      struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, capture_log, release_log)
	const struct CMUnitTest tests[] = {
		T(runs_with_args_and_env),
		T(exit_status_and_output_logged),
		T(max_running_respected),
		T(hanging_command_killed),
		T(term_ignored_then_sigkill),
		T(submit_never_blocks),
		T(full_queue_drops),
		T(missing_program),
		T(child_gets_clean_signals),
		T(free_waits_for_the_grace),
		T(big_output_drained),
		T(progress_and_arguments),
	};
	int failed;

	if (!mkdtemp(tmpdir))
		return 99;
	snprintf(log_path, sizeof(log_path), "%s/log", tmpdir);
	/* before any runner thread reads the environment */
	setenv("PM_TEST_INHERITED", "kept", 1);
	setenv("HOME", "/daemon-home", 1);
	pm_log_set_level(LOG_DEBUG);	/* every line is formatted and checked */
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	(void)nftw(tmpdir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
	return failed;
}
