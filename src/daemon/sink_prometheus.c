/* sink_prometheus.c — the daemon's output to node_exporter's textfile
 * collector (config "prometheus"): every read and the watch's feed figures
 * go into memory, every tick replaces the file atomically (a temporary in
 * the same directory, then rename), and a stop removes it. What the file
 * holds is output/promtext.h's business. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sink.h"
#include "daemon/watch.h"
#include "output/promtext.h"
#include "util/atomicfile.h"
#include "util/log.h"
#include "util/timeutil.h"

struct sink_prometheus {
	const struct pm_config *cfg;
	const char *path;

	pthread_mutex_t lock;		/* guards the fields below */
	struct pm_prom_device *devices;	/* cfg->n_devices */
	struct pm_feed_fig *feeds;	/* cfg->n_feeds, once has_feeds */
	bool has_feeds;
	bool writing;			/* a tick_done is writing the file, */
	bool pending;			/* and should write it once more */
	int last_error;			/* of the last write, 0: it worked */

	/* The writer's (whoever set 'writing'), and close()'s: */
	struct pm_prom_device *copy;
	struct pm_feed_fig *feeds_copy;
	struct pm_buf text;
	/* its temporaries ".<name>.<pid>.<n>.tmp": a dot file, which
	 * node_exporter (it reads *.prom) and ls do not show */
	struct pm_atomic_file file;
	bool has_file;
};

static bool prometheus_wanted(const struct pm_config *cfg)
{
	return cfg->prometheus != NULL && cfg->prometheus->textfile != NULL;
}

static void prometheus_free(struct sink_prometheus *s)
{
	if (s->has_file)
		pm_atomic_fini(&s->file);
	free(s->devices);
	free(s->copy);
	free(s->feeds);
	free(s->feeds_copy);
	pm_buf_free(&s->text);
	free(s);
}

static int prometheus_open(void **state, const struct pm_config *cfg)
{
	const char *path = cfg->prometheus->textfile;
	size_t nd = cfg->n_devices ? cfg->n_devices : 1;
	size_t nf = cfg->n_feeds ? cfg->n_feeds : 1;
	struct sink_prometheus *s;

	s = calloc(1, sizeof(*s));
	if (!s) {
		log_err("prometheus: out of memory");
		return -ENOMEM;
	}
	s->cfg = cfg;
	s->path = path;
	pm_buf_init(&s->text, PM_PROMTEXT_MAX);
	/* node_exporter runs as another user: 0644 whatever the umask */
	s->has_file = pm_atomic_init(&s->file, path, 0644, 0) == 0;
	s->devices = calloc(nd, sizeof(*s->devices));
	s->copy = calloc(nd, sizeof(*s->copy));
	s->feeds = calloc(nf, sizeof(*s->feeds));
	s->feeds_copy = calloc(nf, sizeof(*s->feeds_copy));
	if (!s->has_file || !s->devices || !s->copy ||
	    !s->feeds || !s->feeds_copy) {
		prometheus_free(s);
		log_err("prometheus: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	*state = s;
	return 0;
}

static void prometheus_emit(void *state, const struct pm_config *cfg,
			    size_t device, const struct pm_sample *sample,
			    const struct pm_device_state *st)
{
	struct sink_prometheus *s = state;
	struct pm_prom_device *d;

	if (device >= cfg->n_devices)
		return;
	pthread_mutex_lock(&s->lock);
	d = &s->devices[device];
	/* a failed read takes the sample away: never a stale value */
	d->has_sample = sample != NULL;
	if (sample)
		d->sample = *sample;
	if (st) {
		d->state = *st;
		d->attempted = true;
	}
	pthread_mutex_unlock(&s->lock);
}

static void prometheus_watch(void *state, const struct pm_config *cfg,
			     const struct pm_watch_tick *t)
{
	struct sink_prometheus *s = state;

	/* the figures of another config (a reload under way) are not ours */
	if (t->n_feeds != cfg->n_feeds || !cfg->n_feeds)
		return;
	pthread_mutex_lock(&s->lock);
	memcpy(s->feeds, t->feeds, cfg->n_feeds * sizeof(*s->feeds));
	s->has_feeds = true;
	pthread_mutex_unlock(&s->lock);
}

/* Formats s->copy and replaces the file with it, through a temporary of
 * our own (atomicfile.h): nothing already at its name — a symlink, a FIFO
 * — is ever written through or waited on. 0 or -errno (or -PM_ETOOBIG);
 * on failure the file is as it was and no temporary is left. No fsync: it
 * is rewritten every tick, and after a crash a reader is better off with
 * an old file than a poller waiting on the disk. */
static int write_file(struct sink_prometheus *s, bool has_feeds)
{
	int r;

	pm_buf_reset(&s->text);
	r = pm_promtext_format(&s->text, s->cfg, s->copy,
			       has_feeds ? s->feeds_copy : NULL, pm_now_ms());
	if (r)
		return r;
	return pm_atomic_write(&s->file, s->text.data, s->text.len);
}

/* Once per tick, from the poller that ends it. A poller that finds another
 * writing does not wait: it asks the writer for one more round, which
 * takes its reads too. */
static void prometheus_tick_done(void *state, const struct pm_config *cfg)
{
	struct sink_prometheus *s = state;
	size_t nd = cfg->n_devices, nf = cfg->n_feeds;

	pthread_mutex_lock(&s->lock);
	s->pending = true;
	if (s->writing) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->writing = true;
	while (s->pending) {
		bool has_feeds = s->has_feeds;
		int r, before, stuck = 0;

		s->pending = false;
		memcpy(s->copy, s->devices, nd * sizeof(*s->copy));
		if (has_feeds)
			memcpy(s->feeds_copy, s->feeds, nf * sizeof(*s->feeds));
		pthread_mutex_unlock(&s->lock);

		r = write_file(s, has_feeds);
		/* the old values must not pass for current ones */
		if (r)
			stuck = pm_atomic_remove(&s->file);

		pthread_mutex_lock(&s->lock);
		before = s->last_error;
		s->last_error = r;
		pthread_mutex_unlock(&s->lock);
		/* Once when it starts failing, once when it works again: not
		 * at every tick. */
		if (r && r != before)
			log_warning("prometheus: cannot write %s: %s (%s), will "
				    "retry every tick", s->path, pm_strerror(r),
				    stuck ? "the previous file stays, stale"
					 : "node_exporter shows none of its "
					   "values meanwhile");
		else if (r == 0 && before)
			log_notice("prometheus: %s written again", s->path);
		pthread_mutex_lock(&s->lock);
	}
	s->writing = false;
	pthread_mutex_unlock(&s->lock);
}

static void prometheus_status(void *state, struct pm_buf *out)
{
	struct sink_prometheus *s = state;
	int err;

	pthread_mutex_lock(&s->lock);
	err = s->last_error;
	pthread_mutex_unlock(&s->lock);
	if (err)
		(void)pm_buf_printf(out, "prometheus failing: %s",
				    pm_strerror(err));
	else
		(void)pm_buf_adds(out, "prometheus ok");
}

/* The pollers have stopped: nobody writes any more. The file goes at a
 * stop and at a reload alike: node_exporter would serve a stopped daemon's
 * values as current ones for ever, and a reload's new sink writes a file
 * (maybe elsewhere, maybe none) at its first tick. */
static void prometheus_close(void *state, bool final)
{
	struct sink_prometheus *s = state;
	int r;

	(void)final;
	r = pm_atomic_remove(&s->file);
	if (r)
		log_warning("prometheus: cannot remove %s: %s, ignoring",
			    s->path, pm_strerror(r));
	pthread_mutex_destroy(&s->lock);
	prometheus_free(s);
}

const struct pm_sink_ops pm_sink_prometheus = {
	.name = "prometheus",
	.wanted = prometheus_wanted,
	.open = prometheus_open,
	.emit = prometheus_emit,
	.tick_done = prometheus_tick_done,
	.watch = prometheus_watch,
	.status = prometheus_status,
	.close = prometheus_close,
};
