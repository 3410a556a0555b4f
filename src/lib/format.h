/* format.h — how readings are printed: the seed's JSON exactly as Python's
 * json.dumps(values, indent=4) prints it, a table for people, and numbers in
 * Python's float repr (shortest text that reads back to the same double). */
#ifndef PM_FORMAT_H
#define PM_FORMAT_H

#include <stddef.h>

#include "buf.h"

struct pm_readings;

/* Longest pm_fmt_double() text plus NUL ("-2.2250738585072014e-308"). */
#define PM_DOUBLE_LEN 32

/* Writes 'v' as Python's repr(float) would: "0.92", "1.0", "10.1",
 * "1e-05", "1.5e+16", "-0.0", "inf", "nan". Returns the length. */
int pm_fmt_double(char buf[PM_DOUBLE_LEN], double v);

/* A measured value (raw count x ratio) for storage: rounded to 15
 * significant digits, then as pm_fmt_double(). 1020 x 0.01 is stored as
 * "10.2", not "10.200000000000001": the binary product's last bits are no
 * measurement, and 15 digits are still far finer than any module's
 * resolution. Returns the length. */
int pm_fmt_measured(char buf[PM_DOUBLE_LEN], double v);

/* Python's round(v, ndigits) for a float: the double nearest to the
 * correctly rounded decimal (ties to even on the exact binary value). */
double pm_round(double v, int ndigits);

/* Appends 's' as a JSON string the way json.dumps(ensure_ascii=True) does:
 * quotes, \" \\ \n \r \t \b \f, other control characters and every
 * non-ASCII character as \uXXXX (lowercase hex, surrogate pairs above
 * U+FFFF; invalid UTF-8 as \ufffd). 0 or an error, 'b' unchanged. */
int pm_json_string(struct pm_buf *b, const char *s);

/* The seed's array of the values with status 0, config order:
 * {"id", "device_id", "input", "name", "current": round(amps, 2)}, indented
 * by 4, "[]" when empty, no trailing newline (as json.dumps). */
int pm_format_json(struct pm_buf *b, const struct pm_readings *r);
/* One row per value with status 0: device, port/address, input, name,
 * amperes and Hz (when read). Ends with a newline. */
int pm_format_table(struct pm_buf *b, const struct pm_readings *r);
/* Line protocol of the values with status 0 (lineproto.h). */
int pm_format_influx(struct pm_buf *b, const struct pm_readings *r,
		     const char *measurement);

#endif
