/* rtucrc.h — the CRC that ends every Modbus RTU frame, for the transports
 * that carry RTU frames (serial.c, rtutcp.c). */
#ifndef PM_BUS_RTUCRC_H
#define PM_BUS_RTUCRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Modbus over serial line v1.02, 6.2.2: CRC-16, polynomial 0xA001
 * (reflected 0x8005), initial value 0xFFFF, low byte sent first. */
uint16_t pm_rtu_crc16(const uint8_t *p, size_t n);

/* Appends the CRC of frame[0..n) at frame[n], frame[n + 1]; returns n + 2. */
size_t pm_rtu_append_crc(uint8_t *frame, size_t n);

/* Does the frame of 'len' bytes (at least 4: address, function, CRC) end
 * with its CRC? */
bool pm_rtu_crc_ok(const uint8_t *frame, size_t len);

#endif
