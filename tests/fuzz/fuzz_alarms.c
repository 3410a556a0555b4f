/* fuzz_alarms.c — the file raised alarms outlive a restart in
 * (src/meter/alarms.c, <state_directory>/alarms.state): the input is the
 * file. */
#include <sys/stat.h>
#include <stdlib.h>

#include "fuzz.h"
#include "meter/alarms.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (mkdir(fuzz_path("state"), 0700) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_alarm_file f;

	fuzz_write(fuzz_path("state/" PM_ALARM_STATE_FILE), data, size);
	if (pm_alarm_file_load(fuzz_path("state"), &f) == 0)
		pm_alarm_file_free(&f);
	return 0;
}
