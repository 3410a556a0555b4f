/* alarm_command.c — the runner of the user's alarm command: a queue filled
 * by the pollers (a mutex, nothing else) and one thread that spawns, reads,
 * times out and reaps the commands, so a slow or hanging script never
 * delays a reading. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/alarm_command.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
/* What a run may print that we keep for the log; the rest is read and
 * dropped so the command never blocks on a full pipe. */
#define OUT_MAX 1024
/* Reads per wakeup and run: a command printing without end must not keep
 * the thread from the others' timeouts. */
#define READS_MAX 16
#define KILL_AFTER_NS (2 * NS_PER_S)
/* Longest sleep of the thread: bounds the watchdog's view of it and how
 * late a queued command starts. */
#define IDLE_NS (100 * NS_PER_MS)
#define POLL_MS 50
#define DROP_LOG_NS (60 * NS_PER_S)

struct job {
	struct job *next;	/* in the queue */
	char **argv;
	char **env;
	char *what;
};

/* One running command; owned by the thread. */
struct run {
	struct job *job;	/* NULL: a free slot */
	pid_t pid;		/* also its process group */
	int fd;			/* our end of its stdout+stderr, -1 once closed */
	int64_t start_ns;
	int64_t term_ns;	/* SIGTERM sent (timed out), 0: not */
	bool killed;		/* SIGKILL sent */
	bool cut;		/* printed more than OUT_MAX */
	size_t out_len;
	char out[OUT_MAX];
};

struct pm_alarm_runner {
	unsigned max_running;
	size_t max_queued;
	int64_t timeout_ns;
	pthread_t thread;
	atomic_uint_least64_t progress;
	/* owned by the thread */
	struct run *runs;
	struct pollfd *pfds;	/* one per run, fd -1: none */
	unsigned n_running;
	uint64_t drops_logged;
	int64_t drop_log_ns;
	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* CLOCK_MONOTONIC */
	bool stop;
	int64_t grace_end_ns;
	struct job *head, *tail;
	struct pm_alarm_runner_stats st;	/* st.queued: the queue's length */
};

/* One allocation: the struct, argv's and env's pointers, the strings. */
static struct job *job_new(char *const *argv, char *const *env,
			   const char *what)
{
	size_t na = 0, ne = 0, size = sizeof(struct job) + strlen(what) + 1;
	struct job *j;
	char *s;

	for (; argv[na]; na++)
		size += sizeof(char *) + strlen(argv[na]) + 1;
	for (; env && env[ne]; ne++)
		size += sizeof(char *) + strlen(env[ne]) + 1;
	j = malloc(size + 2 * sizeof(char *));
	if (!j)
		return NULL;
	j->next = NULL;
	j->argv = (char **)(j + 1);
	j->env = j->argv + na + 1;
	s = (char *)(j->env + ne + 1);
	for (size_t i = 0; i < na; i++)
		s = stpcpy(j->argv[i] = s, argv[i]) + 1;
	for (size_t i = 0; i < ne; i++)
		s = stpcpy(j->env[i] = s, env[i]) + 1;
	j->argv[na] = NULL;
	j->env[ne] = NULL;
	j->what = strcpy(s, what);
	return j;
}

static int64_t secs_ns(double s)
{
	if (!(s > 0))
		return 0;
	return s > 1e9 ? (int64_t)1e18 : (int64_t)(s * NS_PER_S);
}

/* What systemd tells the daemon alone: a command that inherited it could
 * ping the watchdog or notify in the daemon's name. */
static bool daemons_own(const char *var)
{
	static const char *const own[] = {
		"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", NULL,
	};

	for (size_t i = 0; own[i]; i++)
		if (!strncmp(var, own[i], strlen(own[i])))
			return true;
	return false;
}

/* The daemon's environment with the job's strings, the job's winning for
 * the same NAME. Points into both; only the array is allocated. */
static char **env_merge(char **add)
{
	size_t ne = 0, na = 0, n = 0;
	char **e;

	while (environ && environ[ne])
		ne++;
	while (add[na])
		na++;
	e = calloc(ne + na + 1, sizeof(*e));
	if (!e)
		return NULL;
	for (size_t i = 0; i < ne; i++) {
		size_t len = strcspn(environ[i], "=") + 1;
		bool replaced = false;

		for (size_t k = 0; k < na && !replaced; k++)
			replaced = strncmp(environ[i], add[k], len) == 0;
		if (!replaced && !daemons_own(environ[i]))
			e[n++] = environ[i];
	}
	for (size_t k = 0; k < na; k++)
		e[n++] = add[k];
	return e;
}

/* The child: no shell, stdin /dev/null, stdout and stderr into our pipe,
 * its own process group (a timeout kills its children too), and neither
 * the daemon's blocked signals nor its ignored SIGPIPE (both survive exec).
 * A positive errno when it could not be started. */
static int spawn_job(struct run *run, struct job *job)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	char **envp;
	int p[2], err;
	pid_t pid;

	envp = env_merge(job->env);
	if (!envp)
		return ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		err = errno;
		free(envp);
		return err;
	}
	(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	err = posix_spawn_file_actions_init(&fa);
	if (err)
		goto out;
	err = posix_spawnattr_init(&at);
	if (err) {
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	if (!(err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
						      O_RDONLY, 0)) &&
	    !(err = posix_spawn_file_actions_adddup2(&fa, p[1], 1)) &&
	    !(err = posix_spawn_file_actions_adddup2(&fa, p[1], 2)) &&
	    !(err = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(err = posix_spawnattr_setsigdefault(&at, &dfl)) &&
	    !(err = posix_spawnattr_setpgroup(&at, 0)) &&
	    !(err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
					     POSIX_SPAWN_SETSIGDEF |
					     POSIX_SPAWN_SETPGROUP)))
		err = posix_spawn(&pid, job->argv[0], &fa, &at, job->argv, envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
out:
	close(p[1]);
	free(envp);
	if (err) {
		close(p[0]);
		return err;
	}
	*run = (struct run){ .job = job, .pid = pid, .fd = p[0],
			     .start_ns = pm_mono_ns() };
	return 0;
}

/* Takes queued jobs while a slot is free and starts them. */
static void start_queued(struct pm_alarm_runner *r)
{
	while (r->n_running < r->max_running) {
		struct run *run = r->runs;
		struct job *job;
		int err;

		pthread_mutex_lock(&r->lock);
		job = r->head;
		if (job) {
			r->head = job->next;
			if (!r->head)
				r->tail = NULL;
			r->st.queued--;
		}
		pthread_mutex_unlock(&r->lock);
		if (!job)
			return;
		while (run->job)
			run++;
		err = spawn_job(run, job);
		pthread_mutex_lock(&r->lock);
		if (err) {
			r->st.spawn_failed++;
		} else {
			r->st.started++;
			r->st.running++;
		}
		pthread_mutex_unlock(&r->lock);
		if (!err) {
			r->n_running++;
			continue;
		}
		/* a wrong path, no x bit, a script without #!: the config */
		log_err("cannot run alarm command %s (%s): %s%s", job->argv[0],
			job->what, strerror(err), err == ENOENT ||
			err == EACCES || err == ENOEXEC || err == ENOTDIR ?
			" (check alarms.command in the config)" : "");
		free(job);
	}
}

static void read_output(struct run *run)
{
	char drop[4096];

	for (int i = 0; run->fd >= 0 && i < READS_MAX; i++) {
		bool keep = run->out_len < OUT_MAX;
		ssize_t n = keep ? read(run->fd, run->out + run->out_len,
					OUT_MAX - run->out_len) :
				   read(run->fd, drop, sizeof(drop));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(run->fd);
			run->fd = -1;
			return;
		}
		if (keep)
			run->out_len += (size_t)n;
		else
			run->cut = true;
	}
}

/* What it printed, for a log line: ": first | second ..." or "". */
static void out_text(const struct run *run, unsigned max_lines, char *buf,
		     size_t size)
{
	size_t len = run->out_len, n, i;
	unsigned lines = 1;

	buf[0] = '\0';
	while (len > 0 && (unsigned char)run->out[len - 1] <= ' ')
		len--;
	if (len == 0)
		return;
	n = (size_t)snprintf(buf, size, ": ");
	/* n + 8 < size: room for " | ", " ..." and the NUL */
	for (i = 0; i < len && n + 8 < size; i++) {
		unsigned char c = (unsigned char)run->out[i];

		if (c == '\n') {
			if (++lines > max_lines)
				break;
			memcpy(buf + n, " | ", 3);
			n += 3;
		} else {
			buf[n++] = c < ' ' || c == 0x7f ? ' ' : (char)c;
		}
	}
	if (i < len || run->cut) {
		memcpy(buf + n, " ...", 4);
		n += 4;
	}
	buf[n] = '\0';
}

static void finish_run(struct pm_alarm_runner *r, struct run *run,
		       int status, bool reaped)
{
	const char *cmd = run->job->argv[0], *what = run->job->what;
	bool ok = reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	char out[OUT_MAX + 64];

	pthread_mutex_lock(&r->lock);
	r->st.running--;
	if (run->term_ns)
		r->st.timed_out++;
	else if (ok)
		r->st.succeeded++;
	else
		r->st.failed++;
	pthread_mutex_unlock(&r->lock);

	/* all of it at debug, the start of it in a warning */
	out_text(run, ok || run->term_ns ? OUT_MAX : 3, out,
		 ok || run->term_ns ? sizeof(out) : 300);
	if (ok || run->term_ns)
		log_debug("alarm command %s (%s) %s after %.1f s%s", cmd, what,
			  run->term_ns ? "stopped" : "done",
			  (double)(pm_mono_ns() - run->start_ns) / NS_PER_S, out);
	else if (!reaped)
		log_warning("alarm command %s (%s) ended, how is unknown (was "
			    "it reaped elsewhere?)", cmd, what);
	else if (WIFEXITED(status))
		log_warning("alarm command %s (%s) failed with exit status %d%s",
			    cmd, what, WEXITSTATUS(status), out);
	else
		log_warning("alarm command %s (%s) killed by signal %d (%s)%s",
			    cmd, what, WTERMSIG(status),
			    strsignal(WTERMSIG(status)), out);
	if (run->fd >= 0)
		close(run->fd);
	free(run->job);
	run->job = NULL;
	r->n_running--;
}

/* Reaps a run that ended, times out one that did not. Only its own pid:
 * the daemon may have other children. */
static void check_run(struct pm_alarm_runner *r, struct run *run, int64_t now)
{
	siginfo_t si = { 0 };
	int status = 0;

	/* WNOWAIT: while the zombie stays, its pid (our process group id)
	 * cannot be reused, so killing the group's stragglers is safe */
	if (waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
		if (errno == ECHILD)
			finish_run(r, run, 0, false);
		return;
	}
	if (si.si_pid == run->pid) {
		if (run->term_ns)
			(void)kill(-run->pid, SIGKILL);
		read_output(run);
		while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR)
			;
		finish_run(r, run, status, true);
	} else if (!run->term_ns && now - run->start_ns >= r->timeout_ns) {
		char out[300];

		(void)kill(-run->pid, SIGTERM);
		run->term_ns = now;
		out_text(run, 3, out, sizeof(out));
		log_warning("alarm command %s (%s) still running after %g s: "
			    "killed%s", run->job->argv[0], run->job->what,
			    (double)r->timeout_ns / NS_PER_S, out);
	} else if (run->term_ns && !run->killed &&
		   now - run->term_ns >= KILL_AFTER_NS) {
		(void)kill(-run->pid, SIGKILL);
		run->killed = true;
	}
}

static void watch_runs(struct pm_alarm_runner *r)
{
	for (unsigned i = 0; i < r->max_running; i++)
		r->pfds[i] = (struct pollfd){
			.fd = r->runs[i].job ? r->runs[i].fd : -1,
			.events = POLLIN };
	if (poll(r->pfds, r->max_running, POLL_MS) > 0)
		for (unsigned i = 0; i < r->max_running; i++)
			if (r->pfds[i].revents)
				read_output(&r->runs[i]);
	for (unsigned i = 0; i < r->max_running; i++)
		if (r->runs[i].job)
			check_run(r, &r->runs[i], pm_mono_ns());
}

/* Here, not in submit: submit does no I/O. */
static void log_drops(struct pm_alarm_runner *r, int64_t now, bool force)
{
	uint64_t dropped;

	pthread_mutex_lock(&r->lock);
	dropped = r->st.dropped;
	pthread_mutex_unlock(&r->lock);
	if (dropped == r->drops_logged ||
	    (!force && now - r->drop_log_ns < DROP_LOG_NS))
		return;
	log_warning("alarm command: %" PRIu64 " run(s) dropped, the queue of "
		    "%zu was full (alarms change faster than the command "
		    "finishes)", dropped - r->drops_logged, r->max_queued);
	r->drops_logged = dropped;
	r->drop_log_ns = now;
}

/* At the end of the grace: what still runs is killed, what waits dropped. */
static void runner_stop(struct pm_alarm_runner *r)
{
	size_t left = 0;
	int status;

	for (struct run *run = r->runs; run < r->runs + r->max_running; run++) {
		if (!run->job)
			continue;
		(void)kill(-run->pid, SIGKILL);
		while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR)
			;
		log_warning("alarm command %s (%s) still running at shutdown: "
			    "killed", run->job->argv[0], run->job->what);
		if (run->fd >= 0)
			close(run->fd);
		free(run->job);
	}
	pthread_mutex_lock(&r->lock);
	for (struct job *j; (j = r->head); left++) {
		r->head = j->next;
		free(j);
	}
	r->tail = NULL;
	r->st.queued = 0;
	pthread_mutex_unlock(&r->lock);
	if (left)
		log_warning("alarm command: %zu queued run(s) not started: "
			    "stopping", left);
	log_drops(r, pm_mono_ns(), true);
}

static void *runner_main(void *arg)
{
	struct pm_alarm_runner *r = arg;

	for (;;) {
		bool stop;
		int64_t grace_end, now;

		atomic_fetch_add_explicit(&r->progress, 1, memory_order_relaxed);
		start_queued(r);
		pthread_mutex_lock(&r->lock);
		stop = r->stop;
		grace_end = r->grace_end_ns;
		if (r->n_running == 0 && !stop && !r->head) {
			struct timespec ts = pm_mono_timespec(pm_mono_ns() +
							      IDLE_NS);

			(void)pthread_cond_timedwait(&r->wake, &r->lock, &ts);
		}
		pthread_mutex_unlock(&r->lock);
		now = pm_mono_ns();
		log_drops(r, now, false);
		/* start_queued() leaves a slot free only with the queue empty */
		if (stop && (r->n_running == 0 || now >= grace_end))
			break;
		if (r->n_running > 0)
			watch_runs(r);
	}
	runner_stop(r);
	return NULL;
}

static void runner_release(struct pm_alarm_runner *r)
{
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r->runs);
	free(r->pfds);
	free(r);
}

int pm_alarm_runner_new(struct pm_alarm_runner **out, unsigned max_running,
			size_t max_queued, double timeout)
{
	struct pm_alarm_runner *r;
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	if (max_running == 0 || max_queued == 0 || !(timeout > 0))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->max_running = max_running;
	r->max_queued = max_queued;
	r->timeout_ns = secs_ns(timeout);
	r->drop_log_ns = INT64_MIN / 2;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wake, &ca);
	pthread_condattr_destroy(&ca);
	r->runs = calloc(max_running, sizeof(*r->runs));
	r->pfds = calloc(max_running, sizeof(*r->pfds));
	if (!r->runs || !r->pfds) {
		runner_release(r);
		return -ENOMEM;
	}
	/* whatever the caller blocks: signals are main()'s business */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&r->thread, NULL, runner_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err < 0) {
		runner_release(r);
		return err;
	}
	(void)pthread_setname_np(r->thread, "alarm-command");
	*out = r;
	return 0;
}

int pm_alarm_runner_submit(struct pm_alarm_runner *r, char *const *argv,
			   char *const *env, const char *what)
{
	struct job *job;
	int err = 0;

	if (!argv || !argv[0] || argv[0][0] != '/')
		return -EINVAL;
	job = job_new(argv, env, what ? what : "");
	if (!job)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	if (r->stop) {
		err = -ESHUTDOWN;
	} else if (r->st.queued >= r->max_queued) {
		err = -ENOBUFS;
		r->st.dropped++;
	} else {
		if (r->tail)
			r->tail->next = job;
		else
			r->head = job;
		r->tail = job;
		r->st.queued++;
		r->st.submitted++;
		pthread_cond_signal(&r->wake);
	}
	pthread_mutex_unlock(&r->lock);
	if (err)
		free(job);
	return err;
}

void pm_alarm_runner_stats(struct pm_alarm_runner *r,
			   struct pm_alarm_runner_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->st;
	pthread_mutex_unlock(&r->lock);
}

uint64_t pm_alarm_runner_progress(struct pm_alarm_runner *r)
{
	return atomic_load_explicit(&r->progress, memory_order_relaxed);
}

void pm_alarm_runner_free(struct pm_alarm_runner *r, double grace)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	r->grace_end_ns = pm_mono_ns() + secs_ns(grace);
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	runner_release(r);
}
