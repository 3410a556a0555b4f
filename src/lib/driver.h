/* driver.h — a module type: its register map and how registers become
 * values and facts. hdhk.c is the only driver today; a new module type is one
 * new file with a 'struct pm_driver' plus one line in drivers.c.
 * (Filled in by the reading work; config.c needs only pm_driver_find.) */
#ifndef PM_DRIVER_H
#define PM_DRIVER_H

struct pm_driver;

/* The driver for a config "model" name (NULL: the default, "hdhk"), or NULL
 * when unknown. */
const struct pm_driver *pm_driver_find(const char *model);

#endif
