/* line.c — the module's line settings: which baud rates and framings exist
 * (datasheet register 0x0003), and their names. */
#include <errno.h>
#include <string.h>

#include "device/line.h"

const int pm_line_bauds[] = {
	1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
};
const size_t pm_line_n_bauds = sizeof(pm_line_bauds) / sizeof(pm_line_bauds[0]);

const char *const pm_line_framings[] = { "N81", "E81", "O81", "N82" };
const size_t pm_line_n_framings =
	sizeof(pm_line_framings) / sizeof(pm_line_framings[0]);

bool pm_line_baud_ok(long baud)
{
	for (size_t i = 0; i < pm_line_n_bauds; i++)
		if (baud == pm_line_bauds[i])
			return true;
	return false;
}

const char *pm_line_framing(const struct pm_line *line)
{
	for (size_t i = 0; i < pm_line_n_framings; i++) {
		const char *f = pm_line_framings[i];

		if (line->parity == f[0] && line->data_bits == f[1] - '0' &&
		    line->stop_bits == f[2] - '0')
			return f;
	}
	return NULL;
}

int pm_line_parse_framing(const char *s, struct pm_line *line)
{
	struct pm_line l = *line;
	char parity, data;

	if (strlen(s) != 3)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		data = s[0];
		parity = s[1];
	} else {
		parity = s[0];
		data = s[1];
	}
	if (parity >= 'a' && parity <= 'z')
		parity = (char)(parity - 'a' + 'A');
	l.parity = parity;
	l.data_bits = data - '0';
	l.stop_bits = s[2] - '0';
	if (!pm_line_framing(&l))
		return -EINVAL;
	*line = l;
	return 0;
}

bool pm_line_valid(const struct pm_line *line)
{
	return pm_line_baud_ok(line->baud) && pm_line_framing(line);
}
