/* test_hdhk.c — the HDHK driver: register map, info register decoding
 * (version, register 3 line settings and address, date, coefficients, CT
 * ratios) and the driver registry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <powermeter/powermeter.h>

#include "../../src/device/hdhk.c"

static char *decoded(int (*decode)(const uint16_t *, struct pm_buf *),
		     uint16_t reg, struct pm_buf *b)
{
	pm_buf_reset(b);
	assert_int_equal(decode(&reg, b), 0);
	return b->data;
}

static void test_register_map(void **state)
{
	const struct pm_driver *d = &pm_driver_hdhk;

	(void)state;
	assert_string_equal(d->model, "hdhk");
	assert_int_equal(d->channels, 16);
	assert_int_equal(d->n_registers, 56);
	assert_int_equal(d->current.first, 8);
	assert_int_equal(d->current.count, 16);
	assert_true(d->current.unit == 0.01);
	assert_int_equal(d->frequency.first, 24);
	assert_int_equal(d->frequency.count, 16);
	assert_true(d->frequency.unit == 0.1);
	assert_int_equal(d->n_info_blocks, 2);
	assert_int_equal(d->info_blocks[0].first, 0);
	assert_int_equal(d->info_blocks[0].count, 8);
	assert_int_equal(d->info_blocks[1].first, 40);
	assert_int_equal(d->info_blocks[1].count, 16);
	/* currents and frequencies are adjacent: one request reads both */
	assert_int_equal(d->current.first + d->current.count, d->frequency.first);
}

static void test_registry(void **state)
{
	(void)state;
	assert_ptr_equal(pm_driver_find(NULL), &pm_driver_hdhk);
	assert_ptr_equal(pm_driver_find("hdhk"), &pm_driver_hdhk);
	assert_null(pm_driver_find("HDHK2"));
	assert_null(pm_driver_find(""));
}

static void test_version(void **state)
{
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 1024);
	assert_string_equal(decoded(hdhk_decode_version, 628, &b), "6.2.8 (628)");
	assert_string_equal(decoded(hdhk_decode_version, 700, &b), "7.0.0 (700)");
	assert_string_equal(decoded(hdhk_decode_version, 5, &b), "0.0.5 (5)");
	pm_buf_free(&b);
}

static void test_register3(void **state)
{
	static const struct {
		uint16_t reg;
		int baud;
		const char *framing;
		int address;
	} cases[] = {
		{ 0x0001, 9600, "N81", 1 },	/* the datasheet's default */
		{ 0x0002, 9600, "N81", 2 },	/* its write example */
		{ 0x0101, 1200, "N81", 1 },
		{ 0x0204, 2400, "N81", 4 },
		{ 0x0310, 4800, "N81", 16 },
		{ 0x0401, 9600, "N81", 1 },
		{ 0x1505, 19200, "E81", 5 },
		{ 0x2620, 38400, "O81", 32 },
		{ 0x3707, 57600, "N82", 7 },
		{ 0x08f7, 115200, "N81", 247 },
		{ 0x08ff, 115200, "N81", 255 },
	};
	const char *framing = "unchanged";
	int baud = -1, address = -1;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(hdhk_decode_line(cases[i].reg, &baud, &framing,
						  &address), 0);
		assert_int_equal(baud, cases[i].baud);
		assert_string_equal(framing, cases[i].framing);
		assert_int_equal(address, cases[i].address);
	}
	/* codes the datasheet does not define leave the outputs alone */
	baud = address = -1;
	framing = "unchanged";
	assert_int_equal(hdhk_decode_line(0x0901, &baud, &framing, &address),
			 -EINVAL);
	assert_int_equal(hdhk_decode_line(0x4001, &baud, &framing, &address),
			 -EINVAL);
	assert_int_equal(baud, -1);
	assert_int_equal(address, -1);
	assert_string_equal(framing, "unchanged");
}

static void test_register3_text(void **state)
{
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 1024);
	assert_string_equal(decoded(hdhk_decode_line_text, 0x0001, &b),
			    "9600 baud N81 (0x0001)");
	assert_string_equal(decoded(hdhk_decode_line_text, 0x1803, &b),
			    "115200 baud E81 (0x1803)");
	assert_string_equal(decoded(hdhk_decode_line_text, 0x0c01, &b),
			    "unknown codes (baud 12, framing 0) in 0x0c01");
	assert_string_equal(decoded(hdhk_decode_address, 0x0401, &b), "1");
	assert_string_equal(decoded(hdhk_decode_address, 0x04f7, &b), "247");
	assert_string_equal(decoded(hdhk_decode_address, 0x0400, &b),
			    "0 (broadcast)");
	pm_buf_free(&b);
}

static void test_date_and_coefficients(void **state)
{
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 1024);
	assert_string_equal(decoded(hdhk_decode_date, 20 << 8 | 5, &b), "2020-05");
	assert_string_equal(decoded(hdhk_decode_date, 23 << 8 | 12, &b), "2023-12");
	assert_string_equal(decoded(hdhk_decode_date, 20 << 8 | 13, &b),
			    "unknown (0x140d)");
	assert_string_equal(decoded(hdhk_decode_date, 0, &b), "unknown (0x0000)");
	assert_string_equal(decoded(hdhk_decode_freq_div, 5, &b), "5");
	assert_string_equal(decoded(hdhk_decode_freq_div, 0, &b), "0 (outside 1..5)");
	assert_string_equal(decoded(hdhk_decode_freq_div, 6, &b), "6 (outside 1..5)");
	/* register 7: threshold high byte, frequency selection low byte,
	 * actual = 1 + value / 10 */
	assert_string_equal(decoded(hdhk_decode_freq_sel, 30, &b), "30 (actual 4.0)");
	assert_string_equal(decoded(hdhk_decode_freq_sel, 0x0c25, &b),
			    "37 (actual 4.7)");
	assert_string_equal(decoded(hdhk_decode_threshold, 0x0c25, &b), "12");
	assert_string_equal(decoded(hdhk_decode_range, 40, &b), "40 A");
	pm_buf_free(&b);
}

static void test_describe(void **state)
{
	uint16_t map[56] = { 0 };
	struct pm_buf b;

	(void)state;
	map[0] = 628;
	map[1] = 40;
	map[2] = 80;
	map[3] = 0x0502;
	map[4] = 20 << 8 | 5;
	map[6] = 5;
	map[7] = 30;
	for (int i = 0; i < 16; i++)
		map[40 + i] = (uint16_t)(1000 + i);
	/* currents must not leak into the info text */
	map[8] = 0xdead;
	pm_buf_init(&b, 4096);
	assert_int_equal(pm_driver_describe(&pm_driver_hdhk, map, &b), 0);
	assert_string_equal(b.data,
		"version:              6.2.8 (628)\n"
		"range A-H:            40 A\n"
		"range I-P:            80 A\n"
		"line settings:        19200 baud N81 (0x0502)\n"
		"address:              2\n"
		"factory date:         2020-05\n"
		"frequency division:   5\n"
		"frequency selection:  30 (actual 4.0)\n"
		"threshold:            0\n"
		"CT ratios A-H:        A=1000 B=1001 C=1002 D=1003 E=1004 F=1005 G=1006 H=1007\n"
		"CT ratios I-P:        I=1008 J=1009 K=1010 L=1011 M=1012 N=1013 O=1014 P=1015\n");
	pm_buf_free(&b);
}

static void test_describe_too_big(void **state)
{
	uint16_t map[56] = { 0 };
	struct pm_buf b;

	(void)state;
	pm_buf_init(&b, 100);
	assert_int_equal(pm_buf_adds(&b, "keep"), 0);
	assert_int_equal(pm_driver_describe(&pm_driver_hdhk, map, &b),
			 -PM_ETOOBIG);
	assert_string_equal(b.data, "keep");	/* unchanged on failure */
	pm_buf_free(&b);
}

static void test_block_value(void **state)
{
	(void)state;
	/* 1/n units divide, so decimal counts print as decimals */
	assert_true(pm_block_value(&pm_driver_hdhk.frequency, 499) == 49.9);
	assert_true(pm_block_value(&pm_driver_hdhk.frequency, 500) == 50.0);
	assert_true(pm_block_value(&pm_driver_hdhk.current, 35) == 0.35);
	assert_true(pm_block_value(&pm_driver_hdhk.current, 65535) == 655.35);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_map),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_register3),
		cmocka_unit_test(test_register3_text),
		cmocka_unit_test(test_date_and_coefficients),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_describe_too_big),
		cmocka_unit_test(test_block_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
