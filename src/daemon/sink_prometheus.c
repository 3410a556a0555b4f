/* sink_prometheus.c — (stub: being written) */
#include "daemon/sink.h"

static bool prometheus_wanted(const struct pm_config *cfg)
{
	return cfg->prometheus != NULL && false;
}

static int prometheus_open(void **state, const struct pm_config *cfg)
{
	(void)cfg;
	*state = NULL;
	return 0;
}

static void prometheus_emit(void *state, const struct pm_config *cfg, size_t device,
		      const struct pm_sample *s, const struct pm_device_state *st)
{
	(void)state; (void)cfg; (void)device; (void)s; (void)st;
}

static void prometheus_close(void *state, bool final)
{
	(void)state; (void)final;
}

const struct pm_sink_ops pm_sink_prometheus = {
	.name = "prometheus",
	.wanted = prometheus_wanted,
	.open = prometheus_open,
	.emit = prometheus_emit,
	.close = prometheus_close,
};
