/* sink_stdout.c — every reading as InfluxDB line protocol on stdout, one
 * write(2) per module so lines of concurrent pollers never interleave. For
 * demos and pipes (powermeterd --stdout | ...). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/sink.h"
#include "daemon/sink_stdout.h"
#include "daemon/watch.h"
#include "output/lineproto.h"
#include "output/lineproto_feeds.h"
#include "util/fileio.h"

/* 16 inputs x (tags + fields) stays far below this. */
#define STDOUT_SAMPLE_MAX (64 * 1024)

struct stdout_sink {
	pthread_mutex_t lock;	/* one writer at a time */
	bool broken;		/* stdout closed: stop trying */
};

static atomic_bool stdout_enabled;

void pm_sink_stdout_enable(bool on)
{
	atomic_store(&stdout_enabled, on);
}

static bool stdout_wanted(const struct pm_config *cfg)
{
	(void)cfg;
	return atomic_load(&stdout_enabled);
}

static int stdout_open(void **state, const struct pm_config *cfg)
{
	struct stdout_sink *s = calloc(1, sizeof(*s));

	(void)cfg;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	*state = s;
	return 0;
}

static void stdout_emit(void *state, const struct pm_config *cfg,
			size_t device, const struct pm_sample *sample,
			const struct pm_device_state *st)
{
	struct stdout_sink *s = state;
	const char *measurement = cfg->influx ? cfg->influx->measurement : NULL;
	struct pm_buf b;

	pm_buf_init(&b, STDOUT_SAMPLE_MAX);
	if (pm_lp_append_read(&b, cfg, measurement, device, sample, st) == 0 &&
	    b.len > 0) {
		pthread_mutex_lock(&s->lock);
		if (!s->broken && pm_write_all(STDOUT_FILENO, b.data, b.len) < 0)
			s->broken = true;
		pthread_mutex_unlock(&s->lock);
	}
	pm_buf_free(&b);
}

static void stdout_watch(void *state, const struct pm_config *cfg,
			 const struct pm_watch_tick *t)
{
	struct stdout_sink *s = state;
	const char *measurement = cfg->influx ? cfg->influx->measurement : NULL;
	struct pm_buf b;

	if (t->n_feeds == 0 && t->n_events == 0)
		return;
	pm_buf_init(&b, STDOUT_SAMPLE_MAX);
	if (pm_lp_append_watch(&b, cfg, measurement, t->feeds, t->time_ms,
			       t->events, t->n_events) == 0 && b.len > 0) {
		pthread_mutex_lock(&s->lock);
		if (!s->broken && pm_write_all(STDOUT_FILENO, b.data, b.len) < 0)
			s->broken = true;
		pthread_mutex_unlock(&s->lock);
	}
	pm_buf_free(&b);
}

static void stdout_close(void *state, bool final)
{
	struct stdout_sink *s = state;

	(void)final;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const struct pm_sink_ops pm_sink_stdout = {
	.name = "stdout",
	.wanted = stdout_wanted,
	.open = stdout_open,
	.emit = stdout_emit,
	.watch = stdout_watch,
	.close = stdout_close,
};
