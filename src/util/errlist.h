/* errlist.h — a capped list of error lines ("file: path: message"),
 * collected rather than stopping at the first: the config loader, the seed's
 * influx.conf reader and every later file parser report through one. */
#ifndef PM_UTIL_ERRLIST_H
#define PM_UTIL_ERRLIST_H

#include <stdbool.h>

#include "util/buf.h"

/* The text is capped (32 KiB); lines past the cap are counted and
 * summarised in one last line. */
struct pm_errlist {
	struct pm_buf text;
	unsigned count;		/* lines added, including those cut off */
	unsigned omitted;	/* lines that did not fit */
	bool nomem;
};

void pm_errlist_init(struct pm_errlist *e);
void pm_errlist_free(struct pm_errlist *e);
/* Appends one line; the '\n' is added here. */
void pm_errlist_add(struct pm_errlist *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The whole text (malloc'd, caller frees; NULL on ENOMEM); empties e. */
char *pm_errlist_take(struct pm_errlist *e);

#endif
