/* api.c — the parts of the public API that belong to no other module: the
 * library's version. */
#include <powermeter/powermeter.h>

#include "pm-build.h"

const char *pm_version(void)
{
	return PM_VERSION;
}
