/* rtuframe.c — the Modbus RTU frame's CRC and silence (rtuframe.h). */
#include "bus/rtuframe.h"

#define RTU_SILENCE_CHARS	3.5
#define RTU_SILENCE_FAST_NS	1750000
#define RTU_FAST_BAUD		19200
#define NS_PER_SEC		1000000000LL

int64_t pm_rtu_char_ns(const struct pm_line *line)
{
	int bits = 1 + line->data_bits + (line->parity != 'N') +
		   line->stop_bits;

	return (int64_t)bits * NS_PER_SEC / line->baud;
}

int64_t pm_rtu_silence_ns(const struct pm_line *line)
{
	if (line->baud > RTU_FAST_BAUD)
		return RTU_SILENCE_FAST_NS;
	return (int64_t)(RTU_SILENCE_CHARS * (double)pm_rtu_char_ns(line));
}

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
