/* rtu.c — Modbus RTU framing for the simulator: CRC-16, the length of a
 * request by its function code, exception frames. */
#include <string.h>

#include "sim.h"

/* CRC-16/MODBUS: reflected polynomial 0xA001, initial value 0xFFFF. */
uint16_t rtu_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xFFFF;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

/* The CRC travels low byte first. */
bool rtu_crc_ok(const uint8_t *p, size_t n)
{
	uint16_t crc;

	if (n < RTU_MIN_FRAME)
		return false;
	crc = rtu_crc16(p, n - 2);
	return p[n - 2] == (crc & 0xFF) && p[n - 1] == (crc >> 8);
}

size_t rtu_append_crc(uint8_t *frame, size_t n)
{
	uint16_t crc = rtu_crc16(frame, n);

	frame[n] = crc & 0xFF;
	frame[n + 1] = crc >> 8;
	return n + 2;
}

/*
 * The full length of the request starting at p, known from its function
 * code: > 0 the length, 0 more bytes are needed to tell, -1 the function
 * code is one whose length we do not know (the frame ends at a silence).
 */
int rtu_request_len(const uint8_t *p, size_t n)
{
	if (n < 2)
		return 0;
	switch (p[1]) {
	case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06:
		/* address, fc, 2 bytes start, 2 bytes count/value, CRC */
		return 8;
	case 0x0F: case 0x10:
		/* address, fc, start, count, byte count, data, CRC */
		if (n < 7)
			return 0;
		return 9 + p[6];
	default:
		return -1;
	}
}

size_t rtu_exception(uint8_t *frame, int addr, int fc, int code)
{
	frame[0] = (uint8_t)addr;
	frame[1] = (uint8_t)(fc | 0x80);
	frame[2] = (uint8_t)code;
	return rtu_append_crc(frame, 3);
}
