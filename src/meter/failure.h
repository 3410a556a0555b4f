/* failure.h — a failed read in words an electrician can act on. */
#ifndef PM_METER_FAILURE_H
#define PM_METER_FAILURE_H

#include <stddef.h>

#include "bus/bus.h"
#include "config/config.h"

/* The sentence for an electrician (failure.c): "device 1 on /dev/ttyUSB0
 * address 1: no answer within 1.0 s (timeout) — check wiring A/B, 12 V
 * supply, address and baud rate". 'fault' may be NULL. Always
 * NUL-terminates 'buf'; returns the length it wanted (as snprintf). */
int pm_describe_failure(char *buf, size_t size, const struct pm_device *dev,
			int err, const struct pm_bus_fault *fault);

#endif
