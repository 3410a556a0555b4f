/* numfmt.h — numbers as text: Python's float repr (the shortest text that
 * reads back to the same double), which the seed's JSON, the snapshot and
 * line protocol all use, and Python's round(). */
#ifndef PM_UTIL_NUMFMT_H
#define PM_UTIL_NUMFMT_H

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

#endif
