/* fuzz_influxconf.c — the seed's influx.conf on its own
 * (src/config/influxconf.c): the input is the file. */
#include <powermeter/powermeter.h>

#include "config/influxconf.h"
#include "fuzz.h"
#include "util/errlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_influxconf ic = { 0 };
	struct pm_errlist errs;
	int r;

	fuzz_write(fuzz_path("influx.conf"), data, size);
	pm_errlist_init(&errs);
	r = pm_influxconf_load(&ic, fuzz_path("influx.conf"), &errs);
	if (r == 0 || r == -PM_ECONFIG)
		pm_influxconf_free(&ic);
	pm_errlist_free(&errs);
	return 0;
}
