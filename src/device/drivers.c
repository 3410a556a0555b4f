/* drivers.c — the registry of module types: one line per driver. */
#include <stddef.h>
#include <string.h>

#include "device/driver.h"
#include "util/buf.h"

const struct pm_driver *const pm_drivers[] = {
	&pm_driver_hdhk,	/* the default: the first entry */
	NULL,
};

const struct pm_driver *pm_driver_find(const char *model)
{
	if (!model)
		return pm_drivers[0];
	for (size_t i = 0; pm_drivers[i]; i++)
		if (!strcmp(pm_drivers[i]->model, model))
			return pm_drivers[i];
	return NULL;
}

int pm_driver_describe(const struct pm_driver *drv, const uint16_t *map,
		       struct pm_buf *out)
{
	size_t start = out->len;
	int width = 0, r = 0;

	for (size_t i = 0; i < drv->n_info_fields; i++) {
		int n = (int)strlen(drv->info_fields[i].name);

		if (n > width)
			width = n;
	}
	for (size_t i = 0; i < drv->n_info_fields && r == 0; i++) {
		const struct pm_info_field *f = &drv->info_fields[i];

		if ((unsigned)f->first + f->count > drv->n_registers)
			continue;
		r = pm_buf_printf(out, "%s:%*s", f->name,
				  width - (int)strlen(f->name) + 2, "");
		if (r == 0)
			r = f->decode(map + f->first, out);
		if (r == 0)
			r = pm_buf_addc(out, '\n');
	}
	if (r < 0)
		pm_buf_truncate(out, out->len - start);
	return r;
}
