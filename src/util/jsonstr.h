/* jsonstr.h — JSON string literals exactly as Python's json.dumps writes
 * them, and numbers or null, for every JSON this project prints by hand. */
#ifndef PM_UTIL_JSONSTR_H
#define PM_UTIL_JSONSTR_H

#include "util/buf.h"

/* Appends 's' as a JSON string the way json.dumps(ensure_ascii=True) does:
 * quotes, \" \\ \n \r \t \b \f, other control characters and every
 * non-ASCII character as \uXXXX (lowercase hex, surrogate pairs above
 * U+FFFF; invalid UTF-8 as \ufffd). 0 or an error, 'b' unchanged. */
int pm_json_string(struct pm_buf *b, const char *s);

/* Appends 'v' as a JSON number in Python's repr (pm_fmt_double()), or null
 * when it is not finite (JSON has no NaN). 0 or an error, 'b' unchanged. */
int pm_json_number(struct pm_buf *b, double v);

#endif
