/* sink_stdout.h — the stdout sink (sink_stdout.c) is wanted only when a
 * program asks for it (powermeterd --stdout, the demo). */
#ifndef PM_SINK_STDOUT_H
#define PM_SINK_STDOUT_H

#include <stdbool.h>

/* Call before the sinks are opened. */
void pm_sink_stdout_enable(bool on);

#endif
