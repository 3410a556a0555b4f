/* module.c — one module's sample off the bus, as its driver maps it. */
#include <errno.h>
#include <string.h>

#include "device/driver.h"
#include "meter/module.h"
#include "util/buf.h"
#include "util/timeutil.h"

int pm_module_read(struct pm_bus *bus, const struct pm_device *dev,
		   size_t device_index, unsigned retries,
		   struct pm_sample *out)
{
	const struct pm_driver *drv = dev->driver ? dev->driver
						  : pm_driver_find(NULL);
	const struct pm_register_block *cur = &drv->current, *freq = &drv->frequency;
	uint16_t regs[PM_MODBUS_MAX_READ], fregs[PM_CHANNELS];
	unsigned count = cur->count;
	bool together = dev->frequency && freq->first == cur->first + cur->count;
	struct pm_sample s;
	int r;

	r = pm_bus_set_line(bus, &dev->line);
	if (r < 0)
		return r;
	pm_bus_set_retries(bus, retries);
	if (together)
		count += freq->count;
	r = pm_bus_poll_registers(bus, dev->address, dev->timeout, cur->first,
				  count, drv->n_registers, regs);
	if (r < 0)
		return r;
	if (dev->frequency && !together) {
		r = pm_bus_read_registers(bus, dev->address, dev->timeout,
					  freq->first, freq->count, fregs);
		if (r < 0)
			return r;
	}
	memset(&s, 0, sizeof(s));
	s.device = device_index;
	s.time_ms = pm_now_ms();
	for (unsigned i = 0; i < drv->channels && i < PM_CHANNELS; i++) {
		s.current[i] = regs[i];
		if (together)
			s.frequency[i] = regs[cur->count + i];
		else if (dev->frequency)
			s.frequency[i] = fregs[i];
	}
	s.has_frequency = dev->frequency;
	*out = s;
	return 0;
}

int pm_module_read_version(struct pm_bus *bus, const struct pm_device *dev,
			   unsigned retries, char *out, size_t n)
{
	const struct pm_driver *drv = dev->driver ? dev->driver
						  : pm_driver_find(NULL);
	const struct pm_info_field *f = NULL;
	uint16_t regs[PM_MODBUS_MAX_READ];
	struct pm_buf b;
	int r;

	for (size_t i = 0; i < drv->n_info_fields && !f; i++)
		if (!strcmp(drv->info_fields[i].name, "version"))
			f = &drv->info_fields[i];
	if (!f || f->count > PM_MODBUS_MAX_READ)
		return -ENOTSUP;
	r = pm_bus_set_line(bus, &dev->line);
	if (r < 0)
		return r;
	pm_bus_set_retries(bus, retries);
	r = pm_bus_poll_registers(bus, dev->address, dev->timeout, f->first,
				  f->count, drv->n_registers, regs);
	if (r < 0)
		return r;
	pm_buf_init(&b, n);
	r = f->decode(regs, &b);
	if (r == 0 && b.len + 1 > n)
		r = -ENOSPC;
	if (r == 0) {
		/* "6.2.8 (628)": the version, without the raw register */
		memcpy(out, b.data, b.len + 1);
		out[strcspn(out, " ")] = '\0';
	}
	pm_buf_free(&b);
	return r;
}
