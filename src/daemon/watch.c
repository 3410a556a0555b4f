/* watch.c — feeds and alarms in the daemon (watch.h): which alarms exist
 * for a config, what each one observes every tick, the words of every
 * change, and where changes go: the journal, the alarm command, the sinks
 * and the state file. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include <powermeter/powermeter.h>

#include "daemon/alarm_command.h"
#include "daemon/sinkset.h"
#include "daemon/watch.h"
#include "util/log.h"
#include "util/timeutil.h"

#define NS_PER_S 1000000000LL
/* How often the main thread looks for a state to save. */
#define SAVE_CHECK_NS NS_PER_S
/* A sample older than this many intervals is no reading of this tick. */
#define FRESH_INTERVALS 2
#define RUNNER_QUEUE 256
#define RUNNER_GRACE 5.0
#define MB (1024.0 * 1024.0)
#define EVENTS_MAX 4096

struct dev_seen {
	bool attempted;			/* a read was tried since start */
	bool has_sample;
	struct pm_sample sample;	/* the latest good one */
	struct pm_device_state st;	/* after the latest attempt */
	int64_t failing_since_ms;	/* first failure of the streak, 0 */
};

/* What an alarm observes: its kind says which of these it uses. */
struct alarm_slot {
	struct pm_alarm a;
	size_t device;			/* circuit, module alarms */
	const struct pm_input *input;	/* circuit alarms */
	int feed;			/* feed alarms, -1 */
	unsigned phase;			/* feed_load, redundancy: index */
};

struct pm_watch {
	pthread_mutex_t lock;		/* everything below */
	const struct pm_config *cfg;
	int64_t configured_ms;
	struct dev_seen *devs;		/* cfg->n_devices */
	struct alarm_slot *slots;
	size_t n_slots;
	/* alarms raised under an earlier config (or restored) whose subject
	 * or rule is gone: cleared at the next tick */
	struct pm_alarm *gone;
	size_t n_gone;
	struct pm_feed_fig *figs;	/* cfg->n_feeds */
	const struct pm_sample **latest;	/* cfg->n_devices */
	struct pm_alarm_event *events;
	size_t events_cap;
	const struct pm_alarm **active;
	bool restored;			/* the state file was read */
	bool dirty;			/* the state file is behind */
	struct pm_alarm_runner *runner;
	unsigned runner_max;
	double runner_timeout;
	size_t n_raised, n_critical;
};

/* ---- building the alarms of a config ------------------------------------ */

static int slot_add(struct alarm_slot **slots, size_t *n, size_t *cap,
		    enum pm_alarm_kind kind, char *subject)
{
	struct alarm_slot *s;

	if (!subject)
		return -ENOMEM;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		void *m = realloc(*slots, ncap * sizeof(**slots));

		if (!m) {
			free(subject);
			return -ENOMEM;
		}
		*slots = m;
		*cap = ncap;
	}
	s = &(*slots)[(*n)++];
	memset(s, 0, sizeof(*s));
	s->a.kind = kind;
	s->a.subject = subject;
	s->a.value = s->a.threshold = NAN;
	s->feed = -1;
	return 0;
}

static int build_slots(const struct pm_config *cfg, struct alarm_slot **out,
		       size_t *n_out)
{
	const struct pm_alarms *al = &cfg->alarms;
	struct alarm_slot *slots = NULL;
	char subject[PM_ALARM_SUBJECT_MAX];
	size_t n = 0, cap = 0;
	int r = 0;

	*out = NULL;
	*n_out = 0;
	if (!al->enabled)
		return 0;
	for (size_t d = 0; d < cfg->n_devices && !r; d++) {
		const struct pm_device *dev = &cfg->devices[d];

		for (size_t k = 0; k < dev->n_inputs && !r; k++) {
			const struct pm_input *in = &dev->inputs[k];

			if (al->circuit_load.enabled && in->breaker > 0 &&
			    !(r = slot_add(&slots, &n, &cap, PM_ALARM_CIRCUIT_LOAD,
					   strdup(in->subject)))) {
				slots[n - 1].device = d;
				slots[n - 1].input = in;
			}
			if (!r && in->load_lost &&
			    !(r = slot_add(&slots, &n, &cap, PM_ALARM_LOAD_LOST,
					   strdup(in->subject)))) {
				slots[n - 1].device = d;
				slots[n - 1].input = in;
			}
		}
		if (!r && al->module_offline.enabled &&
		    !(r = slot_add(&slots, &n, &cap, PM_ALARM_MODULE_OFFLINE,
				   strdup(pm_alarm_subject_module(subject,
						sizeof(subject), dev->id)))))
			slots[n - 1].device = d;
		if (!r && al->stale.enabled &&
		    !(r = slot_add(&slots, &n, &cap, PM_ALARM_STALE,
				   strdup(pm_alarm_subject_module(subject,
						sizeof(subject), dev->id)))))
			slots[n - 1].device = d;
	}
	for (size_t f = 0; f < cfg->n_feeds && !r; f++) {
		const struct pm_feed *fd = &cfg->feeds[f];

		for (unsigned p = 0; p < fd->n_phases && !r; p++) {
			if (al->feed_load.enabled &&
			    !(r = slot_add(&slots, &n, &cap, PM_ALARM_FEED_LOAD,
					   strdup(pm_alarm_subject_phase(
						subject, sizeof(subject), fd, p))))) {
				slots[n - 1].feed = (int)f;
				slots[n - 1].phase = p;
			}
			/* a pair is judged once, from its first feed */
			if (!r && al->redundancy.enabled && fd->partner > (int)f &&
			    pm_alarm_subject_pair(subject, sizeof(subject), cfg,
						  f, p) &&
			    !(r = slot_add(&slots, &n, &cap, PM_ALARM_REDUNDANCY,
					   strdup(subject)))) {
				slots[n - 1].feed = (int)f;
				slots[n - 1].phase = p;
			}
		}
		if (!r && fd->n_phases >= 2 && al->imbalance.enabled &&
		    !(r = slot_add(&slots, &n, &cap, PM_ALARM_IMBALANCE,
				   strdup(fd->name))))
			slots[n - 1].feed = (int)f;
	}
	if (!r && al->spool_backlog.enabled && cfg->influx)
		r = slot_add(&slots, &n, &cap, PM_ALARM_SPOOL_BACKLOG,
			     strdup(PM_ALARM_SUBJECT_SPOOL));
	if (r) {
		for (size_t i = 0; i < n; i++)
			free(slots[i].a.subject);
		free(slots);
		return r;
	}
	*out = slots;
	*n_out = n;
	return 0;
}

static struct pm_alarm *slot_find(struct alarm_slot *slots, size_t n,
				  enum pm_alarm_kind kind, const char *subject)
{
	for (size_t i = 0; i < n; i++)
		if (slots[i].a.kind == kind && !strcmp(slots[i].a.subject, subject))
			return &slots[i].a;
	return NULL;
}

/* Carries one earlier alarm into the new slots, or into 'gone'. */
static int carry(struct alarm_slot *slots, size_t n,
		 const struct pm_alarm *old, struct pm_alarm *gone,
		 size_t *n_gone)
{
	struct pm_alarm *a = slot_find(slots, n, old->kind, old->subject);

	if (a) {
		char *subject = a->subject;

		*a = *old;
		a->subject = subject;
		a->judged = false;
		return 0;
	}
	if (old->level == PM_SEVERITY_OK)
		return 0;
	gone[*n_gone] = *old;
	gone[*n_gone].subject = strdup(old->subject);
	if (!gone[*n_gone].subject)
		return -ENOMEM;
	(*n_gone)++;
	return 0;
}

static void restore(struct pm_watch *w, const struct pm_config *cfg,
		    struct pm_alarm **olds, size_t *n_old)
{
	struct pm_alarm_file f = { 0 };
	char aside[4096];
	int r;

	w->restored = true;
	if (!cfg->state_dir)
		return;
	r = pm_alarm_file_load(cfg->state_dir, &f);
	if (r == -PM_EFRAME) {
		if (pm_alarm_file_set_aside(cfg->state_dir, pm_now_ms(), aside,
					    sizeof(aside)) == 0)
			log_warning("alarms: %s/%s is damaged; kept as %s, starting without raised alarms (they are raised again if their conditions hold)",
				    cfg->state_dir, PM_ALARM_STATE_FILE, aside);
		return;
	}
	if (r < 0) {
		if (r != -ENOENT)
			log_warning("alarms: cannot read %s/%s: %s; starting without raised alarms",
				    cfg->state_dir, PM_ALARM_STATE_FILE,
				    pm_strerror(r));
		return;
	}
	*olds = calloc(f.n ? f.n : 1, sizeof(**olds));
	if (!*olds) {
		pm_alarm_file_free(&f);
		return;
	}
	for (size_t i = 0; i < f.n; i++) {
		struct pm_alarm *a = &(*olds)[i];

		a->kind = f.alarms[i].kind;
		a->subject = f.alarms[i].subject;
		f.alarms[i].subject = NULL;
		a->level = f.alarms[i].level;
		a->changed_ms = f.alarms[i].changed_ms;
		a->value = f.alarms[i].value;
		a->threshold = f.alarms[i].threshold;
		a->armed = f.alarms[i].armed;
	}
	*n_old = f.n;
	if (f.n)
		log_info("alarms: %zu raised or armed alarms restored from %s/%s",
			 f.n, cfg->state_dir, PM_ALARM_STATE_FILE);
	pm_alarm_file_free(&f);
}

int pm_watch_new(struct pm_watch **out)
{
	struct pm_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	*out = w;
	return 0;
}

static void free_alarms(struct pm_alarm *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i].subject);
	free(a);
}

static void free_slots(struct alarm_slot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].a.subject);
	free(s);
}

/* Frees what belongs to one config: the alarms, the modules' readings and
 * the figures of a tick. */
static void release_tables(struct pm_watch *w)
{
	free_slots(w->slots, w->n_slots);
	free_alarms(w->gone, w->n_gone);
	free(w->devs);
	free(w->figs);
	free(w->latest);
	free(w->active);
}

static int runner_configure(struct pm_watch *w, const struct pm_config *cfg)
{
	const struct pm_alarms *al = &cfg->alarms;
	int r;

	if (w->runner && (!al->n_command || w->runner_max != al->command_max ||
			  w->runner_timeout != al->command_timeout)) {
		pm_alarm_runner_free(w->runner, RUNNER_GRACE);
		w->runner = NULL;
	}
	if (w->runner || !al->n_command || !al->enabled)
		return 0;
	r = pm_alarm_runner_new(&w->runner, al->command_max, RUNNER_QUEUE,
				al->command_timeout);
	if (r < 0) {
		log_err("alarms: cannot start the thread for alarms.command: %s",
			pm_strerror(r));
		return r;
	}
	w->runner_max = al->command_max;
	w->runner_timeout = al->command_timeout;
	return 0;
}

int pm_watch_configure(struct pm_watch *w, const struct pm_config *cfg)
{
	struct alarm_slot *slots = NULL;
	struct pm_alarm *olds = NULL, *gone = NULL;
	size_t n_slots = 0, n_old = 0, n_gone = 0;
	struct dev_seen *devs;
	int r;

	r = build_slots(cfg, &slots, &n_slots);
	if (r < 0)
		return r;
	devs = calloc(cfg->n_devices + 1, sizeof(*devs));
	pthread_mutex_lock(&w->lock);
	if (!w->restored)
		restore(w, cfg, &olds, &n_old);
	gone = calloc(w->n_slots + w->n_gone + n_old + 1, sizeof(*gone));
	if (!devs || !gone) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < w->n_slots && !r; i++)
		r = carry(slots, n_slots, &w->slots[i].a, gone, &n_gone);
	for (size_t i = 0; i < w->n_gone && !r; i++)
		r = carry(slots, n_slots, &w->gone[i], gone, &n_gone);
	for (size_t i = 0; i < n_old && !r; i++)
		r = carry(slots, n_slots, &olds[i], gone, &n_gone);
	if (r)
		goto fail;
	/* what the modules said carries over: same ports, same devices */
	for (size_t d = 0; d < cfg->n_devices && w->cfg; d++) {
		const struct pm_device *nd = &cfg->devices[d];

		for (size_t e = 0; e < w->cfg->n_devices; e++) {
			const struct pm_device *od = &w->cfg->devices[e];

			if (od->id == nd->id && !strcmp(od->port, nd->port) &&
			    od->address == nd->address) {
				devs[d] = w->devs[e];
				devs[d].has_sample = false;
				break;
			}
		}
	}
	release_tables(w);
	w->slots = slots;
	w->n_slots = n_slots;
	w->gone = gone;
	w->n_gone = n_gone;
	w->devs = devs;
	w->figs = calloc(cfg->n_feeds + 1, sizeof(*w->figs));
	w->latest = calloc(cfg->n_devices + 1, sizeof(*w->latest));
	w->active = calloc(n_slots + n_gone + 1, sizeof(*w->active));
	w->cfg = cfg;
	w->configured_ms = pm_now_ms();
	w->dirty = w->dirty || n_old > 0;
	free_alarms(olds, n_old);
	r = w->figs && w->latest && w->active ? runner_configure(w, cfg)
					       : -ENOMEM;
	pthread_mutex_unlock(&w->lock);
	return r;
fail:
	pthread_mutex_unlock(&w->lock);
	free_slots(slots, n_slots);
	free_alarms(gone, n_gone);
	free_alarms(olds, n_old);
	free(devs);
	return r;
}

/* ---- recording ---------------------------------------------------------- */

void pm_watch_record(struct pm_watch *w, size_t device,
		     const struct pm_sample *s, const struct pm_device_state *st)
{
	struct dev_seen *d;

	pthread_mutex_lock(&w->lock);
	if (w->cfg && device < w->cfg->n_devices) {
		d = &w->devs[device];
		d->attempted = true;
		d->st = *st;
		if (s) {
			d->sample = *s;
			d->has_sample = true;
			d->failing_since_ms = 0;
		} else if (!d->failing_since_ms) {
			d->failing_since_ms = st->last_attempt_ms;
		}
	}
	pthread_mutex_unlock(&w->lock);
}

/* ---- the words of a change ---------------------------------------------- */

static void describe(const struct pm_watch *w, const struct alarm_slot *s,
		     const struct pm_alarm *a, bool lower_bound, char *buf,
		     size_t size)
{
	const struct pm_config *cfg = w->cfg;
	const struct pm_feed *f = s && s->feed >= 0 ? &cfg->feeds[s->feed] : NULL;
	const struct pm_feed_fig *fig = f ? &w->figs[s->feed] : NULL;
	const char *ph = f ? pm_phase_names[f->phases[s->phase]] : "";
	int n = 0;

	if (!s) {
		(void)snprintf(buf, size, "%s %s: no longer configured",
			       pm_alarm_kind_name(a->kind), a->subject);
		return;
	}
	switch (a->kind) {
	case PM_ALARM_CIRCUIT_LOAD:
		n = snprintf(buf, size, "circuit %s carries %.1f A, %.0f %% of its %g A breaker",
			     a->subject, a->value * s->input->breaker / 100,
			     a->value, s->input->breaker);
		break;
	case PM_ALARM_LOAD_LOST:
		n = snprintf(buf, size, "circuit %s carries %.2f A (it had load; below %g A for %g s): a tripped breaker, a blown fuse or an open CT?",
			     a->subject, a->value, s->input->load_lost_below,
			     s->input->load_lost_hold);
		break;
	case PM_ALARM_FEED_LOAD:
		n = snprintf(buf, size, "feed %s phase %s carries %.1f A, %.0f %% of its %g A capacity",
			     f->name, ph, fig->phase[s->phase].current, a->value,
			     f->capacity);
		break;
	case PM_ALARM_REDUNDANCY:
		n = snprintf(buf, size, "feeds %s and %s carry %.0f %% of %g A together on %s: losing either would overload the other",
			     f->name, cfg->feeds[f->partner].name, a->value,
			     fmin(f->capacity, cfg->feeds[f->partner].capacity),
			     ph);
		break;
	case PM_ALARM_IMBALANCE:
		n = snprintf(buf, size, "feed %s is %.0f %% imbalanced:", f->name,
			     a->value);
		for (unsigned p = 0; p < f->n_phases && n > 0 && (size_t)n < size; p++)
			n += snprintf(buf + n, size - (size_t)n, " %s %.1f A",
				      pm_phase_names[f->phases[p]],
				      fig->phase[p].current);
		break;
	case PM_ALARM_MODULE_OFFLINE: {
		const struct pm_device *dev = &cfg->devices[s->device];

		n = snprintf(buf, size, "module %d (%s, address %d) has not answered for %.0f s: check its 12 V supply, the RS-485 wiring (A/B, termination) and its address",
			     dev->id, dev->port, dev->address, a->value);
		break;
	}
	case PM_ALARM_STALE: {
		const struct pm_device *dev = &cfg->devices[s->device];

		n = snprintf(buf, size, "module %d (%s) has not been read for %.0f s: the bus is too slow for the interval, or its poller is stuck",
			     dev->id, dev->port, a->value);
		break;
	}
	case PM_ALARM_SPOOL_BACKLOG:
		n = snprintf(buf, size, "%.1f MB of readings wait in the spool for the database: is InfluxDB reachable?",
			     a->value);
		break;
	default:
		n = snprintf(buf, size, "%s %s", pm_alarm_kind_name(a->kind),
			     a->subject);
	}
	if (lower_bound && n > 0 && (size_t)n < size)
		(void)snprintf(buf + n, size - (size_t)n,
			       " (at least: some circuits have no reading)");
}

/* An alarm change as "POWERMETER_NAME=value" strings: the journal carries
 * the first EVENT_JOURNAL_FIELDS of them, the command's environment all. */
#define EVENT_FIELDS 8
#define EVENT_JOURNAL_FIELDS 6
#define EVENT_FIELD_MAX (PM_ALARM_MESSAGE_MAX + 64)

static void event_fields(const struct pm_alarm_event *e,
			 char f[EVENT_FIELDS][EVENT_FIELD_MAX])
{
	int n = 0;

	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_ALARM=%s",
		       pm_alarm_kind_name(e->kind));
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_SUBJECT=%s",
		       e->subject);
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_SEVERITY=%s",
		       pm_severity_name(e->severity));
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_STATE=%s",
		       e->active ? "raised" : "cleared");
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_VALUE=%g", e->value);
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_THRESHOLD=%g",
		       e->threshold);
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_MESSAGE=%s",
		       e->message);
	(void)snprintf(f[n++], EVENT_FIELD_MAX, "POWERMETER_TIME=%lld",
		       (long long)(e->time_ms / 1000));
}

static void journal(const struct pm_alarm_event *e,
		    char f[EVENT_FIELDS][EVENT_FIELD_MAX])
{
	int prio = !e->active ? LOG_NOTICE
		 : e->severity == PM_SEVERITY_CRITICAL ? LOG_CRIT : LOG_WARNING;
	const char *state = e->active ? "raised" : "cleared";
	char message[PM_ALARM_MESSAGE_MAX + 64], priority[16], id[48];
	struct iovec iov[4 + EVENT_JOURNAL_FIELDS];
	int n = 0;

	(void)snprintf(message, sizeof(message), "MESSAGE=alarm %s %s: %s",
		       state, pm_severity_name(e->severity), e->message);
	(void)snprintf(priority, sizeof(priority), "PRIORITY=%d", prio);
	(void)snprintf(id, sizeof(id), "MESSAGE_ID=%s",
		       pm_alarm_message_id(e->kind));
	iov[n++] = (struct iovec){ message, strlen(message) };
	iov[n++] = (struct iovec){ priority, strlen(priority) };
	iov[n++] = (struct iovec){ id, strlen(id) };
	iov[n++] = (struct iovec){ "SYSLOG_IDENTIFIER=powermeterd",
				   strlen("SYSLOG_IDENTIFIER=powermeterd") };
	for (int i = 0; i < EVENT_JOURNAL_FIELDS; i++)
		iov[n++] = (struct iovec){ f[i], strlen(f[i]) };
	/* Under systemd, the fields go to the journal with the message; by
	 * hand, the message alone to stderr. */
	if (getenv("JOURNAL_STREAM") && sd_journal_sendv(iov, n) == 0)
		return;
	pm_log(prio, "alarm %s %s: %s", state, pm_severity_name(e->severity),
	       e->message);
}

static void run_command(struct pm_watch *w, const struct pm_alarm_event *e,
			char f[EVENT_FIELDS][EVENT_FIELD_MAX])
{
	char *envp[EVENT_FIELDS + 1], what[256];

	if (!w->runner)
		return;
	for (int i = 0; i < EVENT_FIELDS; i++)
		envp[i] = f[i];
	envp[EVENT_FIELDS] = NULL;
	(void)snprintf(what, sizeof(what), "%s %s %s",
		       pm_alarm_kind_name(e->kind), e->subject,
		       e->active ? "raised" : "cleared");
	(void)pm_alarm_runner_submit(w->runner, w->cfg->alarms.command, envp,
				     what);
}

static struct pm_alarm_event *event_new(struct pm_watch *w, size_t *n)
{
	if (*n == w->events_cap) {
		size_t ncap = w->events_cap ? w->events_cap * 2 : 16;
		void *m;

		if (ncap > EVENTS_MAX)
			return NULL;
		m = realloc(w->events, ncap * sizeof(*w->events));
		if (!m)
			return NULL;
		w->events = m;
		w->events_cap = ncap;
	}
	return &w->events[(*n)++];
}

/* Sets a's level to 'level' and tells everyone, when it changed. */
static void change(struct pm_watch *w, const struct alarm_slot *s,
		   struct pm_alarm *a, enum pm_severity level,
		   bool lower_bound, int64_t time_ms, size_t *n_events)
{
	struct pm_alarm_event *e;

	if (level == a->level)
		return;
	w->dirty = true;
	e = event_new(w, n_events);
	if (e) {
		e->kind = a->kind;
		e->subject = a->subject;
		e->active = level != PM_SEVERITY_OK;
		e->severity = e->active ? level : a->level;
		e->previous = a->level;
		e->value = a->value;
		e->threshold = a->threshold;
		e->time_ms = time_ms;
		describe(w, s, a, lower_bound, e->message, sizeof(e->message));
	}
	a->level = level;
	a->changed_ms = time_ms;
	if (e) {
		char fields[EVENT_FIELDS][EVENT_FIELD_MAX];

		event_fields(e, fields);
		journal(e, fields);
		run_command(w, e, fields);
	}
}

/* ---- judging a tick ----------------------------------------------------- */

/* The start of the tick 'ms' falls in: the pollers' ticks fall on multiples
 * of the interval of the wall clock, and a hold is counted in whole ticks,
 * so that a reply a few ms quicker than the one before does not cost a
 * whole interval. */
static int64_t on_grid(const struct pm_config *cfg, int64_t ms)
{
	int64_t iv = (int64_t)llround(cfg->interval * 1000);

	return iv > 1 ? ms - ms % iv : ms;
}

static void judge_slot(struct pm_watch *w, struct alarm_slot *s,
		       int64_t now_ms, uint64_t backlog, bool has_backlog,
		       size_t *n_events)
{
	const struct pm_config *cfg = w->cfg;
	const struct pm_alarms *al = &cfg->alarms;
	struct pm_alarm *a = &s->a;
	enum pm_severity level = a->level;
	bool lower = false;
	int64_t t = on_grid(cfg, now_ms);

	switch (a->kind) {
	case PM_ALARM_CIRCUIT_LOAD:
	case PM_ALARM_LOAD_LOST: {
		const struct pm_sample *smp = w->latest[s->device];
		double amps;

		if (!smp)
			return;
		t = on_grid(cfg, smp->time_ms);
		amps = pm_sample_amperes(smp, s->input);
		if (!isfinite(amps))
			return;		/* no reading to judge */
		if (a->kind == PM_ALARM_CIRCUIT_LOAD) {
			level = pm_alarm_judge(a, &al->circuit_load,
					       amps / s->input->breaker * 100,
					       false, t);
			break;
		}
		if (amps >= s->input->load_lost_below && !a->armed) {
			a->armed = true;
			w->dirty = true;
		}
		a->value = amps;
		a->threshold = s->input->load_lost_below;
		level = pm_alarm_judge_condition(a, a->armed &&
				amps < s->input->load_lost_below,
				al->load_lost.critical ? PM_SEVERITY_CRITICAL
						       : PM_SEVERITY_WARNING,
				s->input->load_lost_hold, t);
		break;
	}
	case PM_ALARM_FEED_LOAD: {
		const struct pm_feed_phase_fig *ph = &w->figs[s->feed].phase[s->phase];

		if (ph->inputs == 0)
			return;
		lower = ph->missing > 0;
		level = pm_alarm_judge(a, &al->feed_load, ph->load, lower, t);
		break;
	}
	case PM_ALARM_REDUNDANCY: {
		const struct pm_feed_phase_fig *ph = &w->figs[s->feed].phase[s->phase];

		if (isnan(ph->redundant_load))
			return;
		lower = ph->redundant_missing > 0;
		level = pm_alarm_judge(a, &al->redundancy, ph->redundant_load,
				       lower, t);
		break;
	}
	case PM_ALARM_IMBALANCE: {
		const struct pm_feed *f = &cfg->feeds[s->feed];
		const struct pm_feed_fig *fig = &w->figs[s->feed];
		double mean = fig->current / f->n_phases;

		if (!fig->complete)
			return;
		/* a lightly loaded feed is not judged: 1 A against 2 A is no
		 * imbalance worth a call */
		level = pm_alarm_judge(a, &al->imbalance,
				       mean < al->imbalance_min_load / 100 * f->capacity
				       || isnan(fig->imbalance) ? 0 : fig->imbalance,
				       false, t);
		break;
	}
	case PM_ALARM_MODULE_OFFLINE: {
		const struct dev_seen *d = &w->devs[s->device];
		int64_t since = d->st.last_success_ms ? d->st.last_success_ms
						      : d->failing_since_ms;

		if (!d->attempted)
			return;
		a->value = d->failing_since_ms ? (now_ms - since) / 1000.0 : 0;
		a->threshold = al->module_offline.hold;
		/* the hold runs from the first failed read, not from now */
		if (d->failing_since_ms && !a->since_ms[PM_SEVERITY_CRITICAL])
			a->since_ms[PM_SEVERITY_CRITICAL] = d->failing_since_ms;
		level = pm_alarm_judge_condition(a, d->failing_since_ms != 0,
						 PM_SEVERITY_CRITICAL,
						 al->module_offline.hold, now_ms);
		break;
	}
	case PM_ALARM_STALE: {
		const struct dev_seen *d = &w->devs[s->device];
		int64_t last = d->attempted ? d->st.last_attempt_ms
					    : w->configured_ms;

		a->value = (now_ms - last) / 1000.0;
		a->threshold = al->stale.hold;
		level = pm_alarm_judge_condition(a, a->value >= al->stale.hold,
						 PM_SEVERITY_WARNING, 0, t);
		break;
	}
	case PM_ALARM_SPOOL_BACKLOG:
		if (!has_backlog)
			return;
		level = pm_alarm_judge(a, &al->spool_backlog, backlog / MB,
				       false, t);
		break;
	default:
		return;
	}
	change(w, s, a, level, lower, t, n_events);
}

static int active_cmp(const void *x, const void *y)
{
	const struct pm_alarm *a = *(const struct pm_alarm *const *)x;
	const struct pm_alarm *b = *(const struct pm_alarm *const *)y;

	if (a->level != b->level)
		return a->level > b->level ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return strcmp(a->subject, b->subject);
}

void pm_watch_tick(struct pm_watch *w, const struct pm_sinkset *sinks)
{
	struct pm_watch_tick t = { 0 };
	const struct pm_config *cfg;
	int64_t now_ms = pm_now_ms(), newest = 0, fresh;
	size_t n_events = 0, n_active = 0;
	bool has_backlog = false;
	uint64_t backlog = pm_sinkset_backlog(sinks, &has_backlog);

	pthread_mutex_lock(&w->lock);
	cfg = w->cfg;
	if (!cfg) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	fresh = now_ms - (int64_t)(FRESH_INTERVALS * cfg->interval * 1000);
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct dev_seen *ds = &w->devs[d];
		bool ok = ds->has_sample && ds->st.up &&
			  ds->sample.time_ms >= fresh;

		w->latest[d] = ok ? &ds->sample : NULL;
		if (ok && ds->sample.time_ms > newest)
			newest = ds->sample.time_ms;
	}
	pm_feeds_compute(cfg, w->latest, w->figs);
	for (size_t i = 0; i < w->n_slots; i++)
		judge_slot(w, &w->slots[i], now_ms, backlog, has_backlog,
			   &n_events);
	/* alarms of an earlier config: cleared once */
	for (size_t i = 0; i < w->n_gone; i++) {
		w->gone[i].value = NAN;
		change(w, NULL, &w->gone[i], PM_SEVERITY_OK, false, now_ms,
		       &n_events);
	}
	w->n_raised = w->n_critical = 0;
	for (size_t i = 0; i < w->n_slots; i++) {
		if (w->slots[i].a.level == PM_SEVERITY_OK)
			continue;
		w->active[n_active++] = &w->slots[i].a;
		w->n_raised++;
		w->n_critical += w->slots[i].a.level == PM_SEVERITY_CRITICAL;
	}
	qsort(w->active, n_active, sizeof(*w->active), active_cmp);
	t.time_ms = newest ? newest : now_ms;
	t.n_feeds = cfg->n_feeds;
	t.feeds = w->figs;
	t.n_events = n_events;
	t.events = w->events;
	t.n_active = n_active;
	t.active = w->active;
	pm_sinkset_watch(sinks, &t);
	/* the events pointed into 'gone': only now may it go */
	if (w->n_gone) {
		free_alarms(w->gone, w->n_gone);
		w->gone = NULL;
		w->n_gone = 0;
	}
	pthread_mutex_unlock(&w->lock);
}

/* ---- the main thread ----------------------------------------------------- */

static void save(struct pm_watch *w)
{
	const struct pm_alarm **list;
	const struct pm_config *cfg = w->cfg;
	int r;

	if (!cfg || !cfg->state_dir)
		return;
	list = calloc(w->n_slots + 1, sizeof(*list));
	if (!list)
		return;
	for (size_t i = 0; i < w->n_slots; i++)
		list[i] = &w->slots[i].a;
	r = pm_alarm_file_save(cfg->state_dir, list, w->n_slots, pm_now_ms());
	free(list);
	if (r < 0)
		log_warning("alarms: cannot save %s/%s: %s (a restart would raise the active alarms again)",
			    cfg->state_dir, PM_ALARM_STATE_FILE, pm_strerror(r));
	else
		w->dirty = false;
}

int64_t pm_watch_run(struct pm_watch *w, int64_t now_ns)
{
	(void)now_ns;
	pthread_mutex_lock(&w->lock);
	if (w->dirty)
		save(w);
	pthread_mutex_unlock(&w->lock);
	return SAVE_CHECK_NS;
}

uint64_t pm_watch_progress(struct pm_watch *w, bool *has)
{
	uint64_t p = 0;

	pthread_mutex_lock(&w->lock);
	*has = w->runner != NULL;
	if (w->runner)
		p = pm_alarm_runner_progress(w->runner);
	pthread_mutex_unlock(&w->lock);
	return p;
}

void pm_watch_status(struct pm_watch *w, struct pm_buf *out)
{
	size_t raised, critical;

	pthread_mutex_lock(&w->lock);
	raised = w->n_raised;
	critical = w->n_critical;
	pthread_mutex_unlock(&w->lock);
	if (!raised)
		return;
	(void)pm_buf_printf(out, "%zu alarm%s", raised, raised == 1 ? "" : "s");
	if (critical)
		(void)pm_buf_printf(out, " (%zu critical)", critical);
}

void pm_watch_free(struct pm_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->dirty)
		save(w);
	pthread_mutex_unlock(&w->lock);
	pm_alarm_runner_free(w->runner, RUNNER_GRACE);
	release_tables(w);
	free(w->events);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
