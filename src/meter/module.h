/* module.h — reading one configured module: its driver's current (and
 * frequency) registers over a bus, into a sample. */
#ifndef PM_METER_MODULE_H
#define PM_METER_MODULE_H

#include <stddef.h>

#include "bus/bus.h"
#include "config/config.h"
#include "meter/sample.h"

/* Reads device 'dev': the driver's current registers (8..23 on an HDHK)
 * and, when dev->frequency, its frequency registers — in one FC 0x03
 * request when they are adjacent (8..39). Uses the device's line settings,
 * unit id and timeout, each request sent again up to 'retries' times after
 * a bad answer (dev->retries, or 0 for a module known to be down), and
 * stamps out->time_ms when the answer arrived; a late answer to an earlier
 * request is never taken for this one (pm_bus_poll_registers). Returns 0 or
 * the errors of pm_bus_read_registers; on failure *out is untouched.
 * 'device_index' is stored in out->device. */
int pm_module_read(struct pm_bus *bus, const struct pm_device *dev,
		   size_t device_index, unsigned retries,
		   struct pm_sample *out);

/* Reads the module's firmware version (its driver's info field "version",
 * as `powermeter info` shows it, without the raw register: "6.2.8") into out (n bytes). Same
 * bus settings and retries as pm_module_read(). 0, -ENOTSUP (the driver
 * has no version), -ENOSPC, or the bus's errors. */
int pm_module_read_version(struct pm_bus *bus, const struct pm_device *dev,
			   unsigned retries, char *out, size_t n);

#endif
