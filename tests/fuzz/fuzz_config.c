/* fuzz_config.c — the config loader (src/config/load.c and every section):
 * the input is powermeter.json, in either form (the seed's list of devices
 * or the object), optionally followed by a line "=== influx.conf ===" and
 * the seed's influx.conf, which is then put beside it. Loaded as the daemon
 * loads it (secrets included). No buffer entry point exists: the input
 * goes through a file. */
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz.h"

#define INFLUXCONF_SEPARATOR "\n=== influx.conf ===\n"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_clean_environment();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part part[2];
	struct pm_config *cfg = NULL;
	char *errors = NULL;
	size_t n;

	n = fuzz_split(data, size, INFLUXCONF_SEPARATOR, part, 2);
	fuzz_write(fuzz_path("powermeter.json"), part[0].data, part[0].len);
	if (n == 2)
		fuzz_write(fuzz_path("influx.conf"), part[1].data, part[1].len);
	else
		(void)unlink(fuzz_path("influx.conf"));
	if (pm_config_load_flags(&cfg, fuzz_path("powermeter.json"), 0,
				 &errors) == 0)
		pm_config_free(cfg);
	free(errors);
	return 0;
}
