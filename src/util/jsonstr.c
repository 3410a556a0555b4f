/* jsonstr.c — JSON string escaping as json.dumps(ensure_ascii=True). */
#include <stddef.h>
#include <stdint.h>

#include <math.h>

#include "util/jsonstr.h"
#include "util/numfmt.h"

/* One UTF-8 sequence at s: the code point, and its length in *len; invalid
 * input yields U+FFFD for one byte. */
static uint32_t utf8_next(const unsigned char *s, size_t *len)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80) {
		*len = 1;
		return s[0];
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		*len = 1;
		return 0xfffd;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*len = 1;
			return 0xfffd;
		}
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff)) {
		*len = 1;
		return 0xfffd;
	}
	*len = n;
	return cp;
}

static int json_escape_cp(struct pm_buf *b, uint32_t cp)
{
	if (cp > 0xffff) {
		cp -= 0x10000;
		return pm_buf_printf(b, "\\u%04x\\u%04x",
				     (unsigned)(0xd800 | (cp >> 10)),
				     (unsigned)(0xdc00 | (cp & 0x3ff)));
	}
	return pm_buf_printf(b, "\\u%04x", (unsigned)cp);
}

int pm_json_string(struct pm_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = b->len, n;
	int r = pm_buf_addc(b, '"');

	while (r == 0 && *p) {
		uint32_t cp = utf8_next(p, &n);

		p += n;
		switch (cp) {
		case '"':
			r = pm_buf_adds(b, "\\\"");
			break;
		case '\\':
			r = pm_buf_adds(b, "\\\\");
			break;
		case '\n':
			r = pm_buf_adds(b, "\\n");
			break;
		case '\r':
			r = pm_buf_adds(b, "\\r");
			break;
		case '\t':
			r = pm_buf_adds(b, "\\t");
			break;
		case '\b':
			r = pm_buf_adds(b, "\\b");
			break;
		case '\f':
			r = pm_buf_adds(b, "\\f");
			break;
		default:
			/* ensure_ascii: only ' '..'~' stay as they are */
			if (cp < 0x20 || cp > 0x7e)
				r = json_escape_cp(b, cp);
			else
				r = pm_buf_addc(b, (char)cp);
		}
	}
	if (r == 0)
		r = pm_buf_addc(b, '"');
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_json_number(struct pm_buf *b, double v)
{
	char num[PM_DOUBLE_LEN];

	if (!isfinite(v))
		return pm_buf_adds(b, "null");
	(void)pm_fmt_double(num, v);
	return pm_buf_adds(b, num);
}
