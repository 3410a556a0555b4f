/* sinks.c — the registry of outputs (sink.h). A new output is one file with
 * a 'struct pm_sink_ops' and one line here. */
#include <stddef.h>

#include "daemon/sink.h"

extern const struct pm_sink_ops pm_sink_influx;	/* sink_influx.c */
extern const struct pm_sink_ops pm_sink_mqtt;	/* sink_mqtt.c */
extern const struct pm_sink_ops pm_sink_prometheus;	/* sink_prometheus.c */
extern const struct pm_sink_ops pm_sink_snapshot;	/* sink_snapshot.c */
extern const struct pm_sink_ops pm_sink_stdout;	/* sink_stdout.c */

const struct pm_sink_ops *const pm_sinks[] = {
	&pm_sink_influx,
	&pm_sink_mqtt,
	&pm_sink_prometheus,
	&pm_sink_snapshot,
	&pm_sink_stdout,
	NULL
};
