/* log.c — stderr logging with optional sd-daemon priority prefixes. One
 * write(2) per message so lines from several threads never interleave. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static const char *log_prog;
static int log_prefix = -1;	/* -1: decide from JOURNAL_STREAM */
static int log_level = LOG_INFO;

void pm_log_init(const char *prog, int prefix_priority)
{
	log_prog = prog;
	log_prefix = prefix_priority;
	if (log_prefix < 0)
		log_prefix = getenv("JOURNAL_STREAM") != NULL;
}

void pm_log_set_level(int max_priority)
{
	log_level = max_priority;
}

void pm_logv(int priority, const char *fmt, va_list ap)
{
	char line[1024];
	int n = 0, m;

	if (priority > log_level)
		return;
	if (log_prefix < 0)
		log_prefix = getenv("JOURNAL_STREAM") != NULL;
	if (log_prefix)
		n = snprintf(line, sizeof(line), "<%d>", priority);
	else if (log_prog)
		n = snprintf(line, sizeof(line), "%s: ", log_prog);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;	/* truncated: keep the newline */
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void pm_log(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pm_logv(priority, fmt, ap);
	va_end(ap);
}
