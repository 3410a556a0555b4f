/* test_sim.c — hdhk-sim's protocol core without a pty: CRC and request
 * lengths (the datasheet's example frames), the register file, register 3,
 * write rules, generators and how each fault spoils a frame. */
#include <math.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/sim/fault.c"
#include "../../src/sim/module.c"
#include "../../src/sim/rtu.c"

static const struct sim_line line_9600_n81 = { 9600, SIM_N81 };

static void test_crc_of_datasheet_frames(void **state)
{
	/* datasheet, "Modbus function codes": CRC last, low byte first */
	static const uint8_t read56[] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x38, 0x44, 0x18 };
	static const uint8_t write3[] = { 0x01, 0x06, 0x00, 0x03, 0x00, 0x02, 0xF8, 0x0B };
	static const uint8_t write3_fc16[] = { 0x01, 0x10, 0x00, 0x03, 0x00, 0x01, 0x02,
					       0x00, 0x02, 0x27, 0xA2 };
	uint8_t copy[sizeof(read56)];

	(void)state;
	assert_true(rtu_crc_ok(read56, sizeof(read56)));
	assert_true(rtu_crc_ok(write3, sizeof(write3)));
	assert_true(rtu_crc_ok(write3_fc16, sizeof(write3_fc16)));
	memcpy(copy, read56, sizeof(copy));
	copy[5] ^= 1;
	assert_false(rtu_crc_ok(copy, sizeof(copy)));
	assert_false(rtu_crc_ok(read56, 3));
	assert_int_equal(rtu_append_crc(copy, 6), 8);
	assert_true(rtu_crc_ok(copy, sizeof(copy)));
	copy[5] ^= 1;
	assert_int_equal(rtu_append_crc(copy, 6), 8);
	assert_memory_equal(copy, read56, sizeof(read56));
}

static void test_request_lengths(void **state)
{
	static const uint8_t fc16[] = { 0x01, 0x10, 0x00, 0x03, 0x00, 0x02, 0x04 };
	static const uint8_t fc3[] = { 0x01, 0x03 };
	static const uint8_t fc_unknown[] = { 0x01, 0x2B };

	(void)state;
	assert_int_equal(rtu_request_len(fc3, 1), 0);
	assert_int_equal(rtu_request_len(fc3, 2), 8);
	assert_int_equal(rtu_request_len(fc16, 6), 0);
	assert_int_equal(rtu_request_len(fc16, 7), 9 + 4);
	assert_int_equal(rtu_request_len(fc_unknown, 2), -1);
}

static void test_exception_frame(void **state)
{
	uint8_t f[8];

	(void)state;
	assert_int_equal(rtu_exception(f, 7, 0x03, MB_EX_ILLEGAL_ADDRESS), 5);
	assert_int_equal(f[0], 7);
	assert_int_equal(f[1], 0x83);
	assert_int_equal(f[2], 2);
	assert_true(rtu_crc_ok(f, 5));
}

static void test_defaults_and_register_map(void **state)
{
	struct sim_module m;
	uint16_t r[HDHK_NREGS];

	(void)state;
	sim_module_init(&m, 2, &line_9600_n81);
	assert_int_equal(sim_module_read(&m, 0, HDHK_NREGS, r, 0), 0);
	assert_int_equal(r[0], 628);
	assert_int_equal(r[1], 40);
	assert_int_equal(r[2], 40);
	assert_int_equal(r[3], 0x0002);		/* 9600 N81 is code 0, address 2 */
	assert_int_equal(r[4], (20 << 8) | 6);
	assert_int_equal(r[5], 0);
	assert_int_equal(r[6], 5);
	assert_int_equal(r[7], 30);
	for (int ch = 0; ch < HDHK_NCHANNELS; ch++) {
		assert_int_equal(r[8 + ch], 2000 + (ch + 1) * 10);
		assert_int_equal(r[24 + ch], 500);
		assert_int_equal(r[40 + ch], 1000);
	}
	assert_int_equal(sim_default_raw(1, 15), 1160);
	assert_int_equal(sim_default_raw(66, 0), (66010) & 0xFFFF);
}

static void test_register_3_encoding(void **state)
{
	const struct sim_line l = { 115200, SIM_O81 };
	struct sim_module m;
	struct sim_line got;
	uint16_t v;

	(void)state;
	sim_module_init(&m, 0x21, &l);
	assert_int_equal(sim_module_read(&m, 3, 1, &v, 0), 0);
	assert_int_equal(v, (2 << 12) | (8 << 8) | 0x21);
	sim_module_line(&m, &got);
	assert_int_equal(got.baud, 115200);
	assert_int_equal(got.framing, SIM_O81);
	assert_int_equal(sim_module_address(&m), 0x21);
	/* code 4 is 9600 too */
	assert_int_equal(sim_baud_from_code(4), 9600);
	assert_int_equal(sim_baud_code(9600), 0);
	assert_true(sim_baud_code(9601) < 0);
	assert_int_equal(sim_char_ns(&l), 11 * 1000000000LL / 115200);
	assert_int_equal(sim_char_ns(&line_9600_n81), 1041666);
}

static void test_read_limits(void **state)
{
	struct sim_module m;
	uint16_t r[MB_MAX_READ];

	(void)state;
	sim_module_init(&m, 1, &line_9600_n81);
	assert_int_equal(sim_module_read(&m, 55, 1, r, 0), 0);
	assert_int_equal(sim_module_read(&m, 55, 2, r, 0), MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(sim_module_read(&m, 56, 1, r, 0), MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(sim_module_read(&m, 0, 0, r, 0), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(sim_module_read(&m, 0, 126, r, 0), MB_EX_ILLEGAL_VALUE);
}

static void test_writes(void **state)
{
	const uint16_t ratios[] = { 11, 12, 13 };
	const uint16_t two[] = { 3, 0x0114 };
	const uint16_t bad_span[] = { 1, 2 };
	struct sim_module m;
	uint16_t v, one;

	(void)state;
	sim_module_init(&m, 1, &line_9600_n81);
	assert_int_equal(sim_module_write(&m, 6, 2, two, true), 0);
	assert_int_equal(sim_module_write(&m, 53, 3, ratios, true), 0);
	assert_int_equal(sim_module_read(&m, 7, 1, &v, 0), 0);
	assert_int_equal(v, 0x0114);
	assert_int_equal(sim_module_read(&m, 55, 1, &v, 0), 0);
	assert_int_equal(v, 13);
	/* read-only registers refuse, and nothing of the write is applied */
	one = 9;
	for (int reg = 0; reg < HDHK_NREGS; reg++) {
		bool writable = reg == 3 || reg == 6 || reg == 7 || reg >= 40;

		if (!writable)
			assert_int_equal(sim_module_write(&m, reg, 1, &one, true),
					 MB_EX_ILLEGAL_ADDRESS);
	}
	assert_int_equal(sim_module_write(&m, 5, 2, bad_span, true), MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(sim_module_read(&m, 6, 1, &v, 0), 0);
	assert_int_equal(v, 3);
	/* values out of range */
	one = 0;
	assert_int_equal(sim_module_write(&m, 6, 1, &one, true), MB_EX_ILLEGAL_VALUE);
	one = 6;
	assert_int_equal(sim_module_write(&m, 6, 1, &one, true), MB_EX_ILLEGAL_VALUE);
	one = 0x0100;	/* address 0 */
	assert_int_equal(sim_module_write(&m, 3, 1, &one, true), MB_EX_ILLEGAL_VALUE);
	one = 0x0901;	/* baud code 9 */
	assert_int_equal(sim_module_write(&m, 3, 1, &one, true), MB_EX_ILLEGAL_VALUE);
	one = 0x4001;	/* framing code 4 */
	assert_int_equal(sim_module_write(&m, 3, 1, &one, true), MB_EX_ILLEGAL_VALUE);
}

static void test_register_3_write_is_deferred(void **state)
{
	struct sim_module m;
	struct sim_line l;
	uint16_t v = (1 << 12) | (5 << 8) | 9;

	(void)state;
	sim_module_init(&m, 1, &line_9600_n81);
	assert_int_equal(sim_module_write(&m, 3, 1, &v, true), 0);
	assert_int_equal(sim_module_address(&m), 1);	/* the answer still goes out as 1 */
	sim_module_apply_pending(&m);
	assert_int_equal(sim_module_address(&m), 9);
	sim_module_line(&m, &l);
	assert_int_equal(l.baud, 19200);
	assert_int_equal(l.framing, SIM_E81);
	/* channels stay with the module, whatever its address */
	assert_int_equal(sim_module_read(&m, 8, 1, &v, 0), 0);
	assert_int_equal(v, 1010);
}

static void test_generators(void **state)
{
	struct sim_gen sine = { .kind = SIM_GEN_SINE, .mean = 500, .amplitude = 100, .period = 8 };
	struct sim_gen walk = { .kind = SIM_GEN_WALK, .value = 100, .step = 7, .min = 90,
				.max = 120, .rng = 42 };
	struct sim_gen again = walk;
	struct sim_gen low = { .kind = SIM_GEN_SINE, .mean = 10, .amplitude = 100, .period = 4 };
	int prev = walk.value, moved = 0;

	(void)state;
	assert_int_equal(sim_gen_value(&sine, 0, true), 500);
	assert_int_equal(sim_gen_value(&sine, 2, true), 600);
	assert_int_equal(sim_gen_value(&sine, 6, true), 400);
	assert_int_equal(sim_gen_value(&low, 3, true), 0);	/* clamped */
	for (int i = 0; i < 200; i++) {
		int v = sim_gen_value(&walk, 0, true);

		assert_true(v >= 90 && v <= 120);
		assert_true(abs(v - prev) <= 7);
		assert_int_equal(sim_gen_value(&again, 0, true), v);	/* same seed, same walk */
		moved += v != prev;
		prev = v;
	}
	assert_true(moved > 50);
	/* reading without advancing does not move it */
	assert_int_equal(sim_gen_value(&walk, 0, false), prev);
}

static void test_fault_mangling(void **state)
{
	uint8_t good[16] = { 0x01, 0x03, 0x02, 0x03, 0xF2 }, f[RTU_MAX_ADU + 8];
	uint64_t rng = 1;
	size_t len = rtu_append_crc(good, 5), n;

	(void)state;
	assert_int_equal(sim_fault_parse("badcrc"), SIM_FAULT_BADCRC);
	assert_int_equal(sim_fault_parse("stall"), SIM_FAULT_STALL);
	assert_true(sim_fault_parse("none") < 0);
	assert_true(sim_fault_parse("melt") < 0);
	assert_string_equal(sim_fault_name(SIM_FAULT_WRONGADDR), "wrongaddr");

	memcpy(f, good, len);
	assert_int_equal(sim_fault_mangle(SIM_FAULT_BADCRC, f, len, 1, &rng), len);
	assert_memory_equal(f, good, len - 2);
	assert_false(rtu_crc_ok(f, len));

	memcpy(f, good, len);
	assert_int_equal(sim_fault_mangle(SIM_FAULT_TRUNCATE, f, len, 1, &rng), len / 2);

	for (int i = 0; i < 50; i++) {
		memcpy(f, good, len);
		n = sim_fault_mangle(SIM_FAULT_GARBAGE, f, len, 1, &rng);
		assert_int_equal(n, len + 3);
		assert_int_not_equal(f[0], 1);
		assert_memory_equal(f + 3, good, len);
	}

	memcpy(f, good, len);
	assert_int_equal(sim_fault_mangle(SIM_FAULT_WRONGADDR, f, len, 1, &rng), len);
	assert_int_equal(f[0], 2);
	assert_memory_equal(f + 1, good + 1, len - 3);
	assert_true(rtu_crc_ok(f, len));
	memcpy(f, good, len);
	f[0] = 255;
	sim_fault_mangle(SIM_FAULT_WRONGADDR, f, len, 255, &rng);
	assert_int_equal(f[0], 1);	/* never broadcast */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_of_datasheet_frames),
		cmocka_unit_test(test_request_lengths),
		cmocka_unit_test(test_exception_frame),
		cmocka_unit_test(test_defaults_and_register_map),
		cmocka_unit_test(test_register_3_encoding),
		cmocka_unit_test(test_read_limits),
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_register_3_write_is_deferred),
		cmocka_unit_test(test_generators),
		cmocka_unit_test(test_fault_mangling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
