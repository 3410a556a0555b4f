/* poller.c — the poller threads: one per serial port, owning its pm_bus,
 * reading the port's modules in turn on ticks of absolute CLOCK_MONOTONIC
 * time, keeping each module's health and reopening a converter that went
 * away. Stop is a flag under the group's lock with a condvar broadcast. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/netconn.h"
#include "daemon/complain.h"
#include "daemon/poller.h"
#include "daemon/testfault.h"
#include "daemon/watch.h"
#include "meter/failure.h"
#include "meter/module.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* A module's firmware version is asked for at most this often after it
 * answers (its first read, and after it was down). */
#define FIRMWARE_TRIES 3

/* A converter that cannot be opened is retried after 250 ms, doubling up to
 * 5 s: cheap (open() fails at once) but keeps a replugged converter's gap
 * short. */
#define REOPEN_FIRST_NS (250 * NS_PER_MS)
#define REOPEN_MAX_NS (5 * NS_PER_S)

struct poll_dev {
	size_t index;			/* into cfg->devices */
	const struct pm_device *dev;
	struct pm_device_state st;	/* written under the group lock */
	struct pm_complaint complaint;
	/* Its last read heard nothing at all (or it was never read): it
	 * is read without retries until it answers. */
	bool silent;
	/* Reads left to ask for its firmware version along with (0: known,
	 * given up, or no output shows it). */
	unsigned firmware_tries;
	char firmware[sizeof(((struct pm_device_state *)0)->firmware)];
};

struct poller {
	struct pm_pollers *group;
	const char *port;
	pthread_t thread;
	bool running;
	/* owned by the thread */
	struct pm_bus *bus;
	int open_err;			/* 0, or why the port is closed */
	struct pm_bus_fault open_fault;
	unsigned open_failures;
	int64_t reopen_ns;
	struct pm_complaint port_complaint;
	struct pm_complaint overrun_complaint;
	size_t n_devs;
	struct poll_dev *devs;
	/* The longest one step of a tick may take without the thread being
	 * stuck: opening the port, then one module's read and its firmware
	 * read, each with all its retries. */
	int64_t step_budget_ns;
	/* under group->lock */
	bool port_down;			/* open failed, or lost */
	uint64_t ticks;
	uint64_t missed;
	bool in_tick;			/* reading, not waiting for the tick */
	int64_t alive_ns;		/* start of the tick, or its last read */
};

struct pm_pollers {
	const struct pm_config *cfg;
	const struct pm_sinkset *sinks;
	struct pm_energy *energy;	/* NULL: no counters kept */
	struct pm_watch *watch;		/* feeds and alarms, or NULL */
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* CLOCK_MONOTONIC */
	bool stop;
	int64_t interval_ns;
	int64_t first_ns;
	/* The sinks' tick_done() comes once per tick of all the pollers, not
	 * once per port: with 8 converters the snapshot is replaced once, not
	 * 8 times, per interval. */
	size_t busy;			/* pollers inside a tick */
	int64_t tick_done_ns;		/* last tick_done() */
	/* An output shows each module's firmware (Home Assistant discovery):
	 * it is read once a module answers. Other configs read nothing
	 * but the currents. */
	bool read_firmware;
	size_t n;
	struct poller *pollers;
};

int64_t pm_tick_next(int64_t deadline_ns, int64_t interval_ns, int64_t now_ns,
		     uint64_t *missed)
{
	int64_t next = deadline_ns + interval_ns;

	if (now_ns >= next) {
		int64_t late = (now_ns - next) / interval_ns + 1;

		*missed += (uint64_t)late;
		next += late * interval_ns;
	}
	return next;
}

int64_t pm_tick_first(int64_t interval_ns, int64_t real_ns, int64_t mono_ns)
{
	int64_t first_real = (real_ns / interval_ns + 1) * interval_ns;

	return mono_ns + (first_real - real_ns);
}

static bool group_stopping(struct pm_pollers *g)
{
	bool stop;

	pthread_mutex_lock(&g->lock);
	stop = g->stop;
	pthread_mutex_unlock(&g->lock);
	return stop;
}

/* Sleeps until 'deadline_ns' or the stop flag; false when stopping, else
 * the caller's tick has begun. */
static bool group_wait_until(struct pm_pollers *g, int64_t deadline_ns)
{
	struct timespec ts = pm_mono_timespec(deadline_ns);
	bool stop;

	pthread_mutex_lock(&g->lock);
	while (!g->stop && pm_mono_ns() < deadline_ns)
		if (pthread_cond_timedwait(&g->wake, &g->lock, &ts) == ETIMEDOUT)
			break;
	stop = g->stop;
	if (!stop)
		g->busy++;
	pthread_mutex_unlock(&g->lock);
	return !stop;
}

/* A poller finished its tick: the sinks hear tick_done() when no poller is
 * inside a tick any more (the ticks are aligned, so that is once per
 * interval), or when a slow port has kept them waiting 1.5 intervals. */
static void group_tick_finished(struct pm_pollers *g, int64_t now_ns)
{
	bool call;

	pthread_mutex_lock(&g->lock);
	g->busy--;
	call = g->busy == 0 ||
	       now_ns - g->tick_done_ns >= g->interval_ns * 3 / 2;
	if (call)
		g->tick_done_ns = now_ns;
	pthread_mutex_unlock(&g->lock);
	if (call && g->watch)
		pm_watch_tick(g->watch, g->sinks);
	if (call)
		pm_sinkset_tick_done(g->sinks);
}

static void poller_set_down(struct poller *p, bool down)
{
	pthread_mutex_lock(&p->group->lock);
	p->port_down = down;
	pthread_mutex_unlock(&p->group->lock);
}

/* 0 when the port is open, else why not (retrying with backoff). */
static int poller_open(struct poller *p, struct pm_bus_fault *fault)
{
	struct pm_bus_fault f = { 0 };
	struct pm_bus *bus;
	int64_t now = pm_mono_ns(), delay;
	unsigned failures, shift;
	int64_t spell_ns;
	int r;

	if (p->bus)
		return 0;
	if (p->open_err && now < p->reopen_ns) {
		*fault = p->open_fault;
		return p->open_err;
	}
	r = pm_bus_open_fault(&bus, p->port, &p->devs[0].dev->line, &f);
	if (r == 0) {
		if (pm_complain_success(&p->port_complaint, now, &failures,
					&spell_ns)) {
			char dur[32];

			pm_complain_duration(dur, sizeof(dur), spell_ns);
			log_notice("port %s: open again after %s", p->port, dur);
		}
		p->bus = bus;
		p->open_err = 0;
		p->open_failures = 0;
		poller_set_down(p, false);
		return 0;
	}
	f.err = r;
	p->open_err = r;
	p->open_fault = f;
	if (p->open_failures < UINT32_MAX)
		p->open_failures++;
	shift = p->open_failures - 1 < 5 ? p->open_failures - 1 : 5;
	delay = REOPEN_FIRST_NS << shift;
	p->reopen_ns = now + (delay < REOPEN_MAX_NS ? delay : REOPEN_MAX_NS);
	/* Each module logs the failure in its own words; this only starts
	 * the port's spell so that reopening is reported. */
	(void)pm_complain_failure(&p->port_complaint, now);
	poller_set_down(p, true);
	*fault = f;
	return r;
}

/* The converter went away (unplugged, simulator gone): close it and try to
 * reopen it from the next read on. */
static void poller_lost(struct poller *p, int err)
{
	if (pm_complain_failure(&p->port_complaint, pm_mono_ns()))
		log_warning("port %s: the converter stopped answering (%s); "
			    "closing it and reopening it when it is back",
			    p->port, pm_strerror(err));
	pm_bus_close(p->bus);
	p->bus = NULL;
	p->open_err = 0;
	p->reopen_ns = 0;
	poller_set_down(p, true);
}

/* What the bus met during one read, frame by frame (the difference of its
 * counters), into the module's state. */
static void state_count_frames(struct pm_device_state *st,
			       const struct pm_bus_counters *before,
			       const struct pm_bus_counters *after)
{
	st->requests += after->requests - before->requests;
	st->retries += after->retries - before->retries;
	st->timeouts += after->timeouts - before->timeouts;
	st->crc_errors += after->crc_errors - before->crc_errors;
	st->frame_errors += after->frame_errors - before->frame_errors;
}

/* A failed read, after its retries. */
static void state_count_failure(struct pm_device_state *st, int err)
{
	st->failures++;
	if (err == -PM_EEXCEPTION)
		st->exceptions++;
	else if (err != -ETIMEDOUT && err != -PM_ECRC && err != -PM_EFRAME &&
		 err != -PM_EUNIT)
		st->io_errors++;
}

static void poller_log_result(struct poller *p, struct poll_dev *d, int err,
			      const struct pm_bus_fault *fault)
{
	int64_t now = pm_mono_ns(), spell_ns;
	unsigned failures;
	char text[512], dur[32];

	if (err == 0) {
		if (pm_complain_success(&d->complaint, now, &failures,
					&spell_ns)) {
			pm_complain_duration(dur, sizeof(dur), spell_ns);
			log_notice("device %d on %s address %d: answering again "
				   "after %u failure%s (%s)", d->dev->id, p->port,
				   d->dev->address, failures,
				   failures == 1 ? "" : "s", dur);
		}
		return;
	}
	if (!pm_complain_failure(&d->complaint, now))
		return;
	pm_describe_failure(text, sizeof(text), d->dev, err, fault);
	if (d->complaint.episode_failures == 1) {
		log_warning("%s", text);
	} else if (d->complaint.failures > 1) {
		pm_complain_duration(dur, sizeof(dur),
				     now - d->complaint.spell_ns);
		log_warning("%s (still failing: %u reads in a row for %s)", text,
			    d->complaint.failures, dur);
	} else {
		pm_complain_duration(dur, sizeof(dur),
				     now - d->complaint.episode_ns);
		log_warning("%s (failing on and off: %u failures in %s)", text,
			    d->complaint.episode_failures, dur);
	}
}

/* A module is down after dev->down_after failed reads in a row; one bad
 * tick on a noisy line costs a sample, never the module's "up". */
static void poller_record(struct poller *p, struct poll_dev *d, int err,
			  struct pm_sample *s,
			  const struct pm_bus_fault *fault,
			  const struct pm_bus_counters *before,
			  const struct pm_bus_counters *after)
{
	struct pm_device_state st = d->st;

	st.last_attempt_ms = pm_now_ms();
	state_count_frames(&st, before, after);
	if (err == 0) {
		if (!st.up && p->group->read_firmware)
			d->firmware_tries = FIRMWARE_TRIES;	/* back up */
		memcpy(st.firmware, d->firmware, sizeof(st.firmware));
		st.up = true;
		st.reads++;
		st.last_success_ms = s->time_ms;
		st.consecutive_failures = 0;
		st.last_error = 0;
	} else {
		st.consecutive_failures++;
		if (st.consecutive_failures >= d->dev->down_after ||
		    !st.last_success_ms)
			st.up = false;
		st.last_error = err;
		state_count_failure(&st, err);
	}
	pthread_mutex_lock(&p->group->lock);
	d->st = st;
	p->alive_ns = pm_mono_ns();
	pthread_mutex_unlock(&p->group->lock);

	poller_log_result(p, d, err, fault);
	/* The counters first: every sink sees the sample with them. */
	if (err == 0 && p->group->energy)
		pm_energy_add(p->group->energy, s);
	if (p->group->watch)
		pm_watch_record(p->group->watch, d->index, err == 0 ? s : NULL,
				&st);
	pm_sinkset_emit(p->group->sinks, d->index, err == 0 ? s : NULL, &st);
}

/* After a good read: the module's firmware, for the outputs that show it.
 * Its frames count as the module's (they are); its failure costs nothing
 * but another try at a later read. */
static void poller_read_firmware(struct poller *p, struct poll_dev *d)
{
	char v[sizeof(d->firmware)];
	int r;

	d->firmware_tries--;
	r = pm_module_read_version(p->bus, d->dev, d->dev->retries, v,
				   sizeof(v));
	if (r == 0) {
		memcpy(d->firmware, v, sizeof(v));
		d->firmware_tries = 0;
	} else {
		log_debug("device %d on %s address %d: cannot read its "
			  "firmware version: %s", d->dev->id, p->port,
			  d->dev->address, pm_strerror(r));
	}
}

static void poller_tick(struct poller *p)
{
	for (size_t i = 0; i < p->n_devs; i++) {
		struct poll_dev *d = &p->devs[i];
		struct pm_bus_counters before = { 0 }, after = { 0 };
		struct pm_bus_fault fault = { 0 };
		struct pm_sample s = { 0 };
		unsigned retries;
		int err;

		/* Each read may take a module's whole timeout: stop between
		 * them rather than after the tick. */
		if (i > 0 && group_stopping(p->group))
			break;
		err = poller_open(p, &fault);
		if (err == 0) {
			/* A module that is silent gets one attempt: it costs
			 * its bus one timeout per tick, no more. */
			retries = d->silent ? 0 : d->dev->retries;
			before = *pm_bus_counters(p->bus);
			err = pm_module_read(p->bus, d->dev, d->index, retries,
					     &s);
			if (err == 0 && d->firmware_tries > 0)
				poller_read_firmware(p, d);
			after = *pm_bus_counters(p->bus);
			if (err < 0) {
				fault = *pm_bus_last_fault(p->bus);
				if (pm_bus_broken(p->bus))
					poller_lost(p, err);
			}
		}
		/* Silent: not one answer, good or bad, in this read. A noisy
		 * line's failed read had bad answers: it keeps its retries. */
		d->silent = err < 0 && after.crc_errors == before.crc_errors &&
			    after.frame_errors == before.frame_errors;
		if (err == 0)
			log_debug("device %d on %s address %d: read", d->dev->id,
				  p->port, d->dev->address);
		poller_record(p, d, err, &s, &fault, &before, &after);
	}
}

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pm_pollers *g = p->group;
	int64_t deadline = g->first_ns;

	while (group_wait_until(g, deadline)) {
		uint64_t missed = 0;
		int64_t started = pm_mono_ns(), now;

		pthread_mutex_lock(&g->lock);
		p->in_tick = true;
		p->alive_ns = started;
		pthread_mutex_unlock(&g->lock);
		pm_testfault_hang("poller");
		poller_tick(p);
		now = pm_mono_ns();
		group_tick_finished(g, now);
		deadline = pm_tick_next(deadline, g->interval_ns, now, &missed);
		pthread_mutex_lock(&g->lock);
		p->ticks++;
		p->missed += missed;
		p->in_tick = false;
		p->alive_ns = now;
		pthread_mutex_unlock(&g->lock);
		if (missed == 0) {
			(void)pm_complain_success(&p->overrun_complaint, now,
						  NULL, NULL);
		} else if (pm_complain_failure(&p->overrun_complaint, now)) {
			log_warning("port %s: reading its modules took %lld ms, "
				    "longer than the interval; %llu tick(s) "
				    "skipped", p->port,
				    (long long)((now - started) / NS_PER_MS),
				    (unsigned long long)missed);
		}
	}
	pm_bus_close(p->bus);
	p->bus = NULL;
	return NULL;
}

static void pollers_free(struct pm_pollers *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->pollers[i].devs);
	free(g->pollers);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Groups the devices by bus (pm_bus_same: a udev symlink and the tty it
 * names are one), in config order. */
static int pollers_layout(struct pm_pollers *g)
{
	const struct pm_config *cfg = g->cfg;

	g->pollers = calloc(cfg->n_devices ? cfg->n_devices : 1,
			    sizeof(*g->pollers));
	if (!g->pollers)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct pm_device *dev = &cfg->devices[i];
		struct poller *p = NULL;
		int64_t step;

		for (size_t j = 0; j < g->n; j++)
			if (pm_bus_same(g->pollers[j].port, dev->port))
				p = &g->pollers[j];
		if (!p) {
			p = &g->pollers[g->n++];
			p->group = g;
			p->port = dev->port;
			p->devs = calloc(cfg->n_devices, sizeof(*p->devs));
			if (!p->devs)
				return -ENOMEM;
		}
		p->devs[p->n_devs].index = i;
		p->devs[p->n_devs].dev = dev;
		p->devs[p->n_devs].silent = true;
		p->n_devs++;
		step = 2 * (int64_t)(dev->timeout * (dev->retries + 2) *
				     NS_PER_S);
		if (pm_net_is_url(dev->port))
			step += PM_NET_CONNECT_TIMEOUT_NS +
				PM_NET_SEND_TIMEOUT_NS;
		if (step > p->step_budget_ns)
			p->step_budget_ns = step;
	}
	return 0;
}

static void thread_name(pthread_t t, const char *port)
{
	const char *base = strrchr(port, '/');
	char name[16];

	snprintf(name, sizeof(name), "poll %s", base ? base + 1 : port);
	(void)pthread_setname_np(t, name);
}

int pm_pollers_start(struct pm_pollers **pp, const struct pm_config *cfg,
		     const struct pm_sinkset *sinks, struct pm_energy *energy,
		     struct pm_watch *watch)
{
	struct pm_pollers *g;
	pthread_condattr_t ca;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->cfg = cfg;
	g->sinks = sinks;
	g->energy = energy;
	g->watch = watch;
	g->read_firmware = cfg->mqtt && cfg->mqtt->discovery;
	g->interval_ns = (int64_t)(cfg->interval * NS_PER_S + 0.5);
	if (g->interval_ns < NS_PER_MS)
		g->interval_ns = NS_PER_MS;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);

	r = pollers_layout(g);
	if (r < 0) {
		pollers_free(g);
		return r;
	}
	{
		struct timespec real;
		int64_t mono = pm_mono_ns();

		clock_gettime(CLOCK_REALTIME, &real);
		g->first_ns = pm_tick_first(g->interval_ns,
					    (int64_t)real.tv_sec * NS_PER_S +
					    real.tv_nsec, mono);
	}
	for (size_t i = 0; i < g->n; i++) {
		struct poller *p = &g->pollers[i];

		p->alive_ns = pm_mono_ns();
		r = -pthread_create(&p->thread, NULL, poller_main, p);
		if (r < 0) {
			log_err("cannot start the poller of %s: %s", p->port,
				strerror(-r));
			pm_pollers_stop(g);
			return r;
		}
		p->running = true;
		thread_name(p->thread, p->port);
	}
	log_info("polling %zu module(s) on %zu port(s) every %g s",
		 cfg->n_devices, g->n, cfg->interval);
	*pp = g;
	return 0;
}

void pm_pollers_stop(struct pm_pollers *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_broadcast(&g->wake);
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < g->n; i++) {
		if (!g->pollers[i].running)
			continue;
		pthread_join(g->pollers[i].thread, NULL);
		g->pollers[i].running = false;
	}
	pollers_free(g);
}

/* A poller is stuck when one step of its tick (see step_budget_ns) has
 * taken 5 s longer than it may: independent of the interval and of how
 * many modules share the bus, so that a slow bus is never mistaken for a
 * stuck thread and a stuck thread is found within WatchdogSec. */
static int64_t stall_limit(const struct poller *p)
{
	return p->step_budget_ns + 5 * NS_PER_S;
}

int64_t pm_pollers_stall_limit(struct pm_pollers *g, const char **port)
{
	int64_t max = 0;

	for (size_t i = 0; i < g->n; i++)
		if (stall_limit(&g->pollers[i]) > max) {
			max = stall_limit(&g->pollers[i]);
			*port = g->pollers[i].port;
		}
	return max;
}

void pm_pollers_health(struct pm_pollers *g, int64_t now_ns,
		       struct pm_pollers_health *h)
{
	*h = (struct pm_pollers_health){ .ports = g->n, .all_recent = true };
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->n; i++) {
		const struct poller *p = &g->pollers[i];

		h->ports_down += p->port_down;
		h->ticks += p->ticks;
		h->missed_ticks += p->missed;
		if (p->in_tick && now_ns - p->alive_ns > stall_limit(p))
			h->all_recent = false;
		for (size_t j = 0; j < p->n_devs; j++) {
			h->modules++;
			h->modules_up += p->devs[j].st.up;
		}
	}
	pthread_mutex_unlock(&g->lock);
}
