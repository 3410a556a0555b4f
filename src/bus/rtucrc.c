/* rtucrc.c — the Modbus RTU CRC (rtucrc.h). */
#include "bus/rtucrc.h"

uint16_t pm_rtu_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xffff;

	while (n--) {
		crc ^= *p++;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001)
					: (uint16_t)(crc >> 1);
	}
	return crc;
}

size_t pm_rtu_append_crc(uint8_t *frame, size_t n)
{
	uint16_t crc = pm_rtu_crc16(frame, n);

	frame[n] = (uint8_t)(crc & 0xff);
	frame[n + 1] = (uint8_t)(crc >> 8);
	return n + 2;
}

bool pm_rtu_crc_ok(const uint8_t *frame, size_t len)
{
	uint16_t crc;

	if (len < 4)
		return false;
	crc = pm_rtu_crc16(frame, len - 2);
	return frame[len - 2] == (crc & 0xff) && frame[len - 1] == (crc >> 8);
}
