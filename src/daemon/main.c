/* main.c — powermeterd: arguments, start-up in dependency order (config,
 * directories, sinks, pollers), signals, reload and shutdown in reverse.
 * The main thread only waits for signals and talks to systemd. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "pm-build.h"
#include "config/config.h"
#include "daemon/counters.h"
#include "daemon/ledger_writer.h"
#include "daemon/notify.h"
#include "daemon/outdirs.h"
#include "daemon/poller.h"
#include "daemon/sink_stdout.h"
#include "daemon/sinkset.h"
#include "daemon/watch.h"
#include "output/influx.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_S 1000000000LL
/* STATUS= is refreshed this often (the summary changes slowly). */
#define STATUS_EVERY_NS (5 * NS_PER_S)
#define STATUS_MAX 512
/* Until the first tick, look for it this often to replace "starting". */
#define FIRST_TICK_POLL_NS (NS_PER_S / 4)

struct daemon {
	pm_config *cfg;
	struct pm_sinkset sinks;
	struct pm_pollers *pollers;
	struct pm_counters counters;	/* kept across reloads */
	struct pm_watch *watch;		/* feeds and alarms, kept too */
	struct pm_ledger_writer *ledger;	/* NULL: no ledger */
	struct pm_watchdog watchdog;
	int64_t next_status_ns;
	bool before_first_tick;	/* STATUS= says "starting" until a tick */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: powermeterd [-c PATH] [--stdout] [-v]\n"
		"Polls the HDHK current modules of the configuration and writes\n"
		"their readings to InfluxDB and the snapshot file; runs in the\n"
		"foreground (systemd Type=notify). SIGHUP reloads, SIGTERM stops.\n"
		"\n"
		"  -c, --config PATH  configuration file (default %s)\n"
		"      --stdout       also print every reading as line protocol\n"
		"  -v, --verbose      log debug messages\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n",
		PM_DEFAULT_CONFIG);
}

static void log_lines(int priority, const char *text)
{
	const char *p = text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		if (len > 0)
			pm_log(priority, "%.*s", len, p);
		p = nl ? nl + 1 : NULL;
	}
}

static int config_load(pm_config **cfg, const char *path)
{
	char *errors = NULL;
	int r;

	r = pm_config_load_flags(cfg, path, 0, &errors);
	if (r < 0) {
		if (errors && *errors)
			log_lines(LOG_ERR, errors);
		else
			log_err("%s: %s", path ? path : PM_DEFAULT_CONFIG,
				pm_strerror(r));
	}
	free(errors);
	return r;
}

/* The directories the config writes into: made, and refused when another
 * user could put files in the place of ours (outdirs.h). 0 or -EPERM,
 * logged. */
static int config_dirs(const pm_config *cfg)
{
	pm_outdirs_prepare(cfg);
	return pm_outdirs_check(cfg);
}

/* Counters and sinks first (the pollers feed them), then the pollers. */
static int daemon_start(struct daemon *d, pm_config *cfg)
{
	int r;

	pm_counters_configure(&d->counters, cfg);
	/* before the pollers: it may raise the counters they add to */
	pm_ledger_writer_configure(&d->ledger, cfg, d->counters.energy);
	r = pm_watch_configure(d->watch, cfg);
	if (r < 0)
		return r;
	r = pm_sinkset_open(&d->sinks, cfg);
	if (r < 0)
		return r;
	r = pm_pollers_start(&d->pollers, cfg, &d->sinks, d->counters.energy,
			     d->watch);
	if (r < 0) {
		pm_sinkset_close(&d->sinks, false);
		return r;
	}
	d->cfg = cfg;
	{
		const char *port = NULL;
		int64_t limit = pm_pollers_stall_limit(d->pollers, &port);

		pm_watchdog_check_limit(&d->watchdog, limit, port);
	}
	pm_watchdog_reset(&d->watchdog, pm_mono_ns());
	d->next_status_ns = 0;
	d->before_first_tick = true;
	return 0;
}

static void daemon_status(struct daemon *d, struct pm_buf *b)
{
	struct pm_pollers_health h;

	pm_pollers_health(d->pollers, pm_mono_ns(), &h);
	if (h.ticks == 0) {
		(void)pm_buf_printf(b, "starting: %zu modules on %zu ports",
				    h.modules, h.ports);
		return;
	}
	(void)pm_buf_printf(b, "%zu/%zu modules up", h.modules_up, h.modules);
	if (h.ports_down)
		(void)pm_buf_printf(b, ", %zu/%zu ports unavailable",
				    h.ports_down, h.ports);
	if (h.missed_ticks)
		(void)pm_buf_printf(b, ", %llu ticks skipped",
				    (unsigned long long)h.missed_ticks);
	{
		size_t before = b->len;

		(void)pm_buf_adds(b, ", ");
		pm_watch_status(d->watch, b);
		if (b->len == before + 2)
			pm_buf_truncate(b, 2);
		before = b->len;
		(void)pm_buf_adds(b, ", ");
		pm_ledger_writer_status(d->ledger, b);
		if (b->len == before + 2)
			pm_buf_truncate(b, 2);
	}
	pm_sinkset_status(&d->sinks, b);
}

/* Pollers first (they feed the sinks), then the counters are saved (at a
 * stop; a reload keeps them in memory), then the sinks, which flush. */
static void daemon_halt(struct daemon *d, bool final)
{
	pm_pollers_stop(d->pollers);
	d->pollers = NULL;
	if (final)
		pm_counters_close(&d->counters);
	if (final && d->sinks.n > 0) {
		struct pm_buf b;

		pm_buf_init(&b, STATUS_MAX);
		pm_sinkset_status(&d->sinks, &b);
		if (b.len > 0)
			log_info("pollers stopped; flushing: %s", b.data);
		pm_buf_free(&b);
	}
	pm_sinkset_close(&d->sinks, final);
}

/* SIGHUP: parse into a fresh config and swap only if it is valid; the
 * sinks keep their buffered samples across close(final=false). */
static int daemon_reload(struct daemon *d)
{
	pm_config *fresh = NULL, *old = d->cfg;
	int r;

	pm_notify_reloading();
	log_info("reloading %s", old->path);
	if (config_load(&fresh, old->path) < 0) {
		log_err("%s is invalid; keeping the running configuration",
			old->path);
		pm_notify_ready(NULL);
		return 0;
	}
	if (config_dirs(fresh) < 0) {
		log_err("%s names directories that are not safe to write in; "
			"keeping the running configuration", old->path);
		pm_config_free(fresh);
		pm_notify_ready(NULL);
		return 0;
	}
	daemon_halt(d, false);
	r = daemon_start(d, fresh);
	if (r < 0) {
		log_err("cannot start with the new configuration (%s); going "
			"back to the running one", pm_strerror(r));
		pm_config_free(fresh);
		r = daemon_start(d, old);
		if (r < 0) {
			log_err("cannot restart with the old configuration "
				"either: %s", pm_strerror(r));
			return r;
		}
		pm_notify_ready(NULL);
		return 0;
	}
	pm_config_free(old);
	log_info("configuration reloaded");
	pm_notify_ready(NULL);
	return 0;
}

/* Waits for signals, refreshing STATUS= and pinging the watchdog between
 * them. Returns 0 after SIGTERM/SIGINT, or a negative error. */
static int daemon_run(struct daemon *d, const sigset_t *sigs)
{
	for (;;) {
		struct pm_pollers_health h;
		int64_t now = pm_mono_ns(), wait;
		struct timespec ts;
		siginfo_t info;
		int sig;

		pm_pollers_health(d->pollers, now, &h);
		wait = pm_watchdog_run(&d->watchdog, now, &h, &d->sinks);
		if (d->before_first_tick && h.ticks > 0) {
			d->before_first_tick = false;
			d->next_status_ns = now;
		}
		if (now >= d->next_status_ns) {
			struct pm_buf b;

			pm_buf_init(&b, STATUS_MAX);
			daemon_status(d, &b);
			if (b.len > 0)
				pm_notify_status(b.data);
			pm_buf_free(&b);
			d->next_status_ns = now + STATUS_EVERY_NS;
		}
		if (d->next_status_ns - now < wait)
			wait = d->next_status_ns - now;
		{
			int64_t save = pm_counters_run(&d->counters, now);

			if (save < wait)
				wait = save;
			save = pm_watch_run(d->watch, now);
			if (save < wait)
				wait = save;
			save = pm_ledger_writer_run(d->ledger, now);
			if (save < wait)
				wait = save;
		}
		if (d->before_first_tick && wait > FIRST_TICK_POLL_NS)
			wait = FIRST_TICK_POLL_NS;
		ts = pm_mono_timespec(wait > 0 ? wait : 0);

		sig = sigtimedwait(sigs, &info, &ts);
		if (sig < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			int err = errno;

			log_err("sigtimedwait: %s", strerror(err));
			return -err;
		}
		if (sig == SIGHUP) {
			int r = daemon_reload(d);

			if (r < 0)
				return r;
			continue;
		}
		log_info("%s received, stopping", sig == SIGINT ? "SIGINT" :
			 "SIGTERM");
		return 0;
	}
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "stdout", no_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct daemon d = { 0 };
	const char *config_path = NULL;
	pm_config *cfg = NULL;
	sigset_t sigs;
	int c, r;

	pm_log_init("powermeterd", -1);
	while ((c = getopt_long(argc, argv, "c:vhV", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			pm_sink_stdout_enable(true);
			break;
		case 'v':
			pm_log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("powermeterd %s\n", PM_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return EX_USAGE;
	}

	/* One malloc arena: the pollers allocate a few hundred bytes per read,
	 * not worth an arena (and its resident pages) per thread. Blocks of
	 * 128 KiB and more (batches replayed after an outage, their gzip
	 * output) get pages of their own, given back when freed: glibc would
	 * otherwise raise that threshold after the first such free and keep
	 * them in the heap, which only grows with them. */
	(void)mallopt(M_ARENA_MAX, 1);
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 256 * 1024);

	/* Before any thread exists: every thread inherits this mask, so the
	 * signals only ever reach sigtimedwait() below. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* A closed stdout (--stdout | head) or socket is an error to handle,
	 * not a reason to die. */
	signal(SIGPIPE, SIG_IGN);

	if (config_load(&cfg, config_path) < 0)
		return PM_EXIT_CONFIG;
	if (config_dirs(cfg) < 0) {
		log_err("not starting: a directory to write in is not safe");
		pm_config_free(cfg);
		return PM_EXIT_CONFIG;
	}
	log_info("powermeterd %s starting with %s", PM_VERSION, cfg->path);

	/* curl_global_init(): before any thread exists */
	r = pm_influx_global_init();
	if (r < 0) {
		log_err("cannot initialise the HTTP client: %s", pm_strerror(r));
		pm_config_free(cfg);
		return EXIT_FAILURE;
	}
	pm_watchdog_init(&d.watchdog);
	r = pm_watch_new(&d.watch);
	if (r == 0)
		r = daemon_start(&d, cfg);
	if (r < 0) {
		log_err("cannot start: %s", pm_strerror(r));
		pm_watch_free(d.watch);
		pm_ledger_writer_close(d.ledger);
		pm_counters_close(&d.counters);
		pm_config_free(cfg);
		pm_influx_global_cleanup();
		return EXIT_FAILURE;
	}
	{
		struct pm_buf b;

		pm_buf_init(&b, STATUS_MAX);
		daemon_status(&d, &b);
		pm_notify_ready(b.data);
		pm_buf_free(&b);
	}
	log_info("ready");

	r = daemon_run(&d, &sigs);

	pm_notify_stopping();
	if (d.pollers)
		daemon_halt(&d, true);
	pm_watch_free(d.watch);
	pm_ledger_writer_close(d.ledger);
	pm_counters_close(&d.counters);
	pm_config_free(d.cfg);
	pm_influx_global_cleanup();
	log_info("stopped");
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
