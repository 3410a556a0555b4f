/* errlist.c — the capped list of error lines (errlist.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/errlist.h"

#define ERRORS_MAX (32 * 1024)		/* error text kept; the rest counted */

void pm_errlist_init(struct pm_errlist *e)
{
	pm_buf_init(&e->text, ERRORS_MAX + 2048);
	e->count = 0;
	e->omitted = 0;
	e->nomem = false;
}

void pm_errlist_free(struct pm_errlist *e)
{
	pm_buf_free(&e->text);
}

void pm_errlist_add(struct pm_errlist *e, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	e->count++;
	if (e->text.len > ERRORS_MAX) {
		e->omitted++;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (pm_buf_adds(&e->text, line) < 0 || pm_buf_addc(&e->text, '\n') < 0)
		e->nomem = true;
}

char *pm_errlist_take(struct pm_errlist *e)
{
	if (e->omitted)
		(void)pm_buf_printf(&e->text, "(%u more errors not shown)\n",
				    e->omitted);
	return pm_buf_take(&e->text, NULL);
}
