/* fuzz_influx_answer.c — what the InfluxDB writer parses of a server's
 * answer (src/output/influx.c): the error text of an error body (1.x
 * {"error": ...}, 2.x {"message": ...} or the body's first line) and a
 * Retry-After header's value (seconds or an HTTP date). The input is the
 * body; its first line is also taken as the header's value. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "output/influx.h"

static volatile int64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[PM_INFLUX_MESSAGE_MAX], small[8], *value;
	const char *nl = memchr(data, '\n', size);
	int64_t ms = 0;

	pm_influx_error_text((const char *)data, size, out, sizeof(out));
	pm_influx_error_text((const char *)data, size, small, sizeof(small));
	value = strndup((const char *)data, nl ? (size_t)(nl - (const char *)data)
					       : size);
	if (!value)
		return 0;
	if (pm_influx_parse_retry_after(value, 1700000000, &ms) == 0)
		sink = ms + (int64_t)strlen(out) + (int64_t)strlen(small);
	free(value);
	return 0;
}
