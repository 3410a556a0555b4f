/* rtuframe.h — what every Modbus RTU frame keeps to, for the transports
 * that carry RTU frames (serial.c, rtutcp.c): the CRC at its end and the
 * silence around it. */
#ifndef PM_BUS_RTUFRAME_H
#define PM_BUS_RTUFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/line.h"

/* Modbus over serial line v1.02, 6.2.2: CRC-16, polynomial 0xA001
 * (reflected 0x8005), initial value 0xFFFF, low byte sent first. */
uint16_t pm_rtu_crc16(const uint8_t *p, size_t n);

/* Appends the CRC of frame[0..n) at frame[n], frame[n + 1]; returns n + 2. */
size_t pm_rtu_append_crc(uint8_t *frame, size_t n);

/* One character of 'line' on the wire (start, data, parity, stop bits),
 * in ns. */
int64_t pm_rtu_char_ns(const struct pm_line *line);

/* Modbus over serial line v1.02, 2.5.1.1: frames are separated by at least
 * 3.5 character times; above 19200 baud a fixed 1.750 ms is recommended.
 * In ns. */
int64_t pm_rtu_silence_ns(const struct pm_line *line);

/* Does the frame of 'len' bytes (at least 4: address, function, CRC) end
 * with its CRC? */
bool pm_rtu_crc_ok(const uint8_t *frame, size_t len);

#endif
