/* line.h — the RS-485 line settings a module can be set to (datasheet
 * register 0x0003: 1200..115200 baud; framings N81, E81, O81, N82) and the
 * Modbus unit ids it answers to. The config, the bus, the CLI and `powermeter
 * info` all ask here, so they accept and print the same settings. */
#ifndef PM_DEVICE_LINE_H
#define PM_DEVICE_LINE_H

#include <stdbool.h>
#include <stddef.h>

/* Datasheet: Modbus unit ids; 0 is broadcast, the module accepts up to 0xFF
 * but Modbus RTU reserves 248..255. */
#define PM_ADDRESS_MIN 1
#define PM_ADDRESS_MAX 247

/* What error messages list. */
#define PM_LINE_BAUD_LIST "1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200"
#define PM_LINE_FRAMING_LIST "N81, E81, O81, N82"

/* Serial line settings. */
struct pm_line {
	int baud;
	char parity;		/* 'N', 'E' or 'O' */
	int data_bits;		/* 8 */
	int stop_bits;		/* 1 or 2 */
};

/* The factory setting: 9600 baud, N81. */
#define PM_LINE_DEFAULT ((struct pm_line){ 9600, 'N', 8, 1 })

/* The baud rates a module can be set to, ascending. */
extern const int pm_line_bauds[];
extern const size_t pm_line_n_bauds;

/* The framings, in the datasheet's code order (register 3, framing code
 * 0..3). */
extern const char *const pm_line_framings[];
extern const size_t pm_line_n_framings;

bool pm_line_baud_ok(long baud);

/* The framing's name ("N81") when the module supports it, else NULL. */
const char *pm_line_framing(const struct pm_line *line);

/* Sets parity, data and stop bits from "N81" (the datasheet's spelling) or
 * "8N1", case-insensitive for the parity. 0, or -EINVAL (line untouched)
 * for anything but the module's four framings. */
int pm_line_parse_framing(const char *s, struct pm_line *line);

/* A baud rate and framing the module supports. */
bool pm_line_valid(const struct pm_line *line);

#endif
