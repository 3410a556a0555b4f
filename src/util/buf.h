/* buf.h — a growable byte buffer with a hard cap (as curl's dynbuf): it says
 * -PM_ETOOBIG instead of growing without bound. Always NUL-terminated. */
#ifndef PM_BUF_H
#define PM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct pm_buf {
	char *data;	/* NUL-terminated, NULL while empty and unused */
	size_t len;
	size_t alloc;
	size_t cap;	/* len never exceeds this */
};

void pm_buf_init(struct pm_buf *b, size_t cap);
void pm_buf_free(struct pm_buf *b);
void pm_buf_reset(struct pm_buf *b);	/* len = 0, keeps memory */
/* Hands the text over to the caller (who frees it) and empties b. */
char *pm_buf_take(struct pm_buf *b, size_t *len);

/* Each returns 0, -ENOMEM or -PM_ETOOBIG; b is unchanged on failure. */
int pm_buf_add(struct pm_buf *b, const void *data, size_t len);
int pm_buf_addc(struct pm_buf *b, char c);
int pm_buf_adds(struct pm_buf *b, const char *s);
int pm_buf_printf(struct pm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drops len bytes from the end (len <= b->len). */
void pm_buf_truncate(struct pm_buf *b, size_t len);

#endif
