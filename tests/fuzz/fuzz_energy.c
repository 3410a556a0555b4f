/* fuzz_energy.c — the energy counters' state file (src/meter/energy.c):
 * the input is the file. Its last line carries a CRC-32 the fuzzer cannot
 * forge, so each input is read twice: as it is, and with that line made
 * right ("end N crc32 X" recomputed over what precedes it, or appended),
 * which takes it past the check into the counters' parser. The second copy
 * is also opened as the daemon opens its state directory (newest
 * generation, the input as the previous one), configured for a small
 * config and saved again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "fuzz.h"
#include "meter/energy.h"
#include "util/crc32.h"

/* The state file's cap is 16 MiB; inputs stay far below. */
#define FIXED_MAX (1u << 20)

static struct pm_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char json[] =
		"{\"devices\": [{\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": ["
		"{\"input\": \"a\", \"ratio\": 0.01, \"name\": \"a\"},"
		"{\"input\": \"p\", \"ratio\": 0.01, \"name\": \"p\"}]},"
		"{\"id\": 2, \"port\": \"/dev/ttyUSB0\", \"address\": 2, \"inputs\": ["
		"{\"input\": \"b\", \"ratio\": 0.01, \"name\": \"b\"}]}]}";
	char *errors = NULL;

	(void)argc;
	(void)argv;
	fuzz_clean_environment();
	if (mkdir(fuzz_path("state"), 0700) < 0)
		abort();
	fuzz_write(fuzz_path("powermeter.json"), json, sizeof(json) - 1);
	if (pm_config_load_flags(&cfg, fuzz_path("powermeter.json"), 0,
				 &errors) < 0) {
		fprintf(stderr, "fuzz_energy: its config: %s\n", errors);
		abort();
	}
	return 0;
}

/* The input with its "end N crc32 X" line right: N as it says (or the
 * number of counter lines when it has none), X over the text before. */
static size_t fix_crc(const uint8_t *data, size_t size, char *out)
{
	size_t body = size, lines = 0;
	unsigned long declared;
	const char *end_line;
	char *p;

	memcpy(out, data, size);
	out[size] = '\0';
	if (body > 0 && out[body - 1] == '\n')
		out[--body] = '\0';
	p = memrchr(out, '\n', body);
	end_line = p ? p + 1 : out;
	if (!strncmp(end_line, "end ", 4) &&
	    sscanf(end_line, "end %lu", &declared) == 1) {
		body = (size_t)(end_line - out);
		lines = declared;
	} else {
		if (body > 0)
			out[body++] = '\n';	/* the last line ends */
		for (size_t i = 0; i < body; i++)
			if (out[i] == '\n' && i + 1 < body && out[i + 1] != '#')
				lines++;
		lines = lines >= 1 ? lines - 1 : 0;	/* not "written" */
	}
	return body + (size_t)sprintf(out + body, "end %zu crc32 %08" PRIx32 "\n",
				      lines, pm_crc32(0, out, body));
}

static void read_one(const char *path)
{
	struct pm_energy_counter *c = NULL;
	int64_t written;
	size_t n;

	if (pm_energy_read_file(path, &c, &n, &written) == 0)
		free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_energy_open_report report;
	struct pm_energy_counter *c;
	struct pm_energy *e;
	static char fixed[FIXED_MAX + 64];
	size_t n;

	if (size > FIXED_MAX)
		return 0;
	fuzz_clear("state");
	fuzz_write(fuzz_path("input"), data, size);
	read_one(fuzz_path("input"));
	n = fix_crc(data, size, fixed);
	fuzz_write(fuzz_path("state/" PM_ENERGY_FILE), fixed, n);
	read_one(fuzz_path("state/" PM_ENERGY_FILE));

	fuzz_write(fuzz_path("state/" PM_ENERGY_PREVIOUS), data, size);
	if (pm_energy_open(&e, fuzz_path("state"), &report) == 0) {
		if (pm_energy_configure(e, cfg) == 0 &&
		    pm_energy_counters(e, &c, &n) == 0)
			free(c);
		(void)pm_energy_raise(e, 1, 0, 1.5, 0.5);
		(void)pm_energy_save(e, 1700000000000);
		pm_energy_free(e);
	}
	return 0;
}
