/* numfmt.c — Python's float repr and round() in C (numfmt.h). */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/numfmt.h"

/* repr(float) switches to exponent notation outside 1e-4 <= |v| < 1e16. */
#define REPR_EXP_MIN	-4
#define REPR_EXP_MAX	16
#define DBL_MAX_DIGITS	17	/* always enough to round-trip a double */

/* Lays out the significant digits of 'tmp' ("[-]d[.ddd]e(+|-)xx", as %e
 * prints it) the way repr(float) does, trailing zeros dropped. */
static int repr_layout(char buf[PM_DOUBLE_LEN], const char *tmp, bool negative)
{
	char digits[DBL_MAX_DIGITS + 1];
	size_t nd = 0, pos = 0;
	const char *e;
	int exp = 0;

	for (const char *p = tmp; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && nd < DBL_MAX_DIGITS)
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	e = strchr(tmp, 'e');
	if (e)
		exp = atoi(e + 1);
	if (negative)
		buf[pos++] = '-';
	if (exp < REPR_EXP_MIN || exp >= REPR_EXP_MAX) {
		buf[pos++] = digits[0];
		if (nd > 1) {
			buf[pos++] = '.';
			memcpy(buf + pos, digits + 1, nd - 1);
			pos += nd - 1;
		}
		pos += (size_t)snprintf(buf + pos, PM_DOUBLE_LEN - pos, "e%c%02d",
					exp < 0 ? '-' : '+', abs(exp));
		return (int)pos;
	}
	if (exp < 0) {
		buf[pos++] = '0';
		buf[pos++] = '.';
		for (int i = -1; i > exp; i--)
			buf[pos++] = '0';
		memcpy(buf + pos, digits, nd);
		pos += nd;
	} else {
		for (int i = 0; i <= exp; i++)
			buf[pos++] = (size_t)i < nd ? digits[i] : '0';
		buf[pos++] = '.';
		if ((size_t)exp + 1 < nd) {
			memcpy(buf + pos, digits + exp + 1, nd - (size_t)exp - 1);
			pos += nd - (size_t)exp - 1;
		} else {
			buf[pos++] = '0';
		}
	}
	buf[pos] = '\0';
	return (int)pos;
}

int pm_fmt_double(char buf[PM_DOUBLE_LEN], double v)
{
	char tmp[40];

	if (isnan(v))
		return snprintf(buf, PM_DOUBLE_LEN, "nan");
	if (isinf(v))
		return snprintf(buf, PM_DOUBLE_LEN, "%sinf", v < 0 ? "-" : "");
	/* The fewest significant digits that read back to v; %e rounds
	 * correctly, so the first precision that round-trips is the shortest
	 * text (what Python's repr gives). For a normal double the search
	 * starts at 15 digits: a shorter text that round-trips lies within
	 * half an ulp (2^-53 relative) of v, closer than half a step of the
	 * 15-digit grid (>= 5e-16 relative), so it is the 15-digit rounding
	 * with its trailing zeros, which are stripped. That is one or three
	 * snprintf+strtod instead of up to 17: the daemon formats every input
	 * at every tick. Subnormals keep the full search. */
	for (int prec = fabs(v) >= DBL_MIN || v == 0 ? 15 : 1;
	     prec <= DBL_MAX_DIGITS; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return repr_layout(buf, tmp, signbit(v));
}

int pm_fmt_measured(char buf[PM_DOUBLE_LEN], double v)
{
	char tmp[40];

	/* Rounded to 15 significant digits, then repr() of the double that
	 * reads back: that is those 15 digits without their trailing zeros
	 * (15 digits survive a round trip through a double, DBL_DIG), so
	 * there is no need to read them back. One snprintf per value: every
	 * field of every point goes through here. */
	if (!isfinite(v))
		return pm_fmt_double(buf, v);
	snprintf(tmp, sizeof(tmp), "%.14e", v);
	if (fabs(v) < DBL_MIN && v != 0)	/* subnormal: fewer digits */
		return pm_fmt_double(buf, strtod(tmp, NULL));
	return repr_layout(buf, tmp, tmp[0] == '-');
}

double pm_round(double v, int ndigits)
{
	char tmp[64];

	/* Beyond 2^53 every double is an integer; printf's exact decimal
	 * expansion rounds half to even like Python's round(). */
	if (!isfinite(v) || fabs(v) >= 9007199254740992.0 || ndigits < 0 ||
	    ndigits > 17)
		return v;
	snprintf(tmp, sizeof(tmp), "%.*f", ndigits, v);
	return strtod(tmp, NULL);
}
