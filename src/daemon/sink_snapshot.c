/* sink_snapshot.c — the daemon's output to the snapshot file (snapshot.h):
 * every read and the watch's feeds and alarms go into memory, every poller
 * tick replaces the file. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sink.h"
#include "daemon/watch.h"
#include "meter/snapshot.h"
#include "util/log.h"
#include "util/timeutil.h"

struct sink_snapshot {
	struct pm_snapshot *snap;
	const char *path;
	pthread_mutex_t lock;		/* guards the fields below */
	int last_error;			/* of the last write, 0: it worked */
	uint64_t writes;
};

static bool snapshot_wanted(const struct pm_config *cfg)
{
	return cfg->snapshot && *cfg->snapshot;
}

static int snapshot_open(void **state, const struct pm_config *cfg)
{
	struct sink_snapshot *s;

	s = calloc(1, sizeof(*s));
	if (!s) {
		log_err("snapshot: out of memory");
		return -ENOMEM;
	}
	s->snap = pm_snapshot_new(cfg);
	if (!s->snap) {
		free(s);
		log_err("snapshot: out of memory");
		return -ENOMEM;
	}
	s->path = cfg->snapshot;
	pthread_mutex_init(&s->lock, NULL);
	*state = s;
	return 0;
}

static void snapshot_emit(void *state, const struct pm_config *cfg,
			  size_t device, const struct pm_sample *sample,
			  const struct pm_device_state *st)
{
	struct sink_snapshot *s = state;

	(void)cfg;
	pm_snapshot_update(s->snap, device, sample, st);
}

static void snapshot_watch(void *state, const struct pm_config *cfg,
			   const struct pm_watch_tick *t)
{
	struct sink_snapshot *s = state;

	/* the figures of another config (a reload under way) are not ours */
	if (t->n_feeds != cfg->n_feeds)
		return;
	/* A failure (out of memory) makes the next write fail, which
	 * tick_done reports: the file goes stale rather than wrong. */
	(void)pm_snapshot_watch(s->snap, t->time_ms,
				t->n_feeds ? t->feeds : NULL, t->active,
				t->n_active);
}

static void snapshot_tick_done(void *state, const struct pm_config *cfg)
{
	struct sink_snapshot *s = state;
	int r, before;

	(void)cfg;
	r = pm_snapshot_write(s->snap, pm_now_ms());
	pthread_mutex_lock(&s->lock);
	before = s->last_error;
	s->last_error = r;
	if (!r)
		s->writes++;
	pthread_mutex_unlock(&s->lock);
	/* Once when it starts failing (a missing runtime directory when run
	 * by hand), once when it works again: not at every tick. */
	if (r && r != before)
		log_warning("snapshot: cannot write %s: %s (powermeter json "
			    "and Zabbix will not see current values), will "
			    "retry every tick", s->path, pm_strerror(r));
	else if (!r && before)
		log_notice("snapshot: %s written again", s->path);
}

static void snapshot_status(void *state, struct pm_buf *out)
{
	struct sink_snapshot *s = state;
	int err;

	pthread_mutex_lock(&s->lock);
	err = s->last_error;
	pthread_mutex_unlock(&s->lock);
	if (err)
		(void)pm_buf_printf(out, "snapshot failing: %s",
				    pm_strerror(err));
	else
		(void)pm_buf_adds(out, "snapshot ok");
}

static void snapshot_close(void *state, bool final)
{
	struct sink_snapshot *s = state;
	int r;

	/* On shutdown the file goes: readers then know no daemon runs and
	 * may read the bus. A reload keeps it; the new sink replaces it. */
	if (final) {
		r = pm_snapshot_remove(s->snap);
		if (r)
			log_warning("snapshot: cannot remove %s: %s, ignoring",
				    s->path, pm_strerror(r));
	}
	pm_snapshot_free(s->snap);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const struct pm_sink_ops pm_sink_snapshot = {
	.name = "snapshot",
	.wanted = snapshot_wanted,
	.open = snapshot_open,
	.emit = snapshot_emit,
	.tick_done = snapshot_tick_done,
	.watch = snapshot_watch,
	.progress = NULL,
	.status = snapshot_status,
	.close = snapshot_close,
};
