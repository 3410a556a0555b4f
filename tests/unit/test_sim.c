/* test_sim.c — hdhk-sim's protocol core without a pty: CRC and request
 * lengths (the datasheet's example frames), the register file, register 3,
 * write rules, generators (load profiles and their parsing among them) and
 * how each fault spoils a frame. */
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
#include "../../src/sim/scenario.c"

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
	assert_int_equal(sim_module_read(&m, 0, HDHK_NREGS, r, 0, 0), 0);
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
	assert_int_equal(sim_module_read(&m, 3, 1, &v, 0, 0), 0);
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
	assert_int_equal(sim_module_read(&m, 55, 1, r, 0, 0), 0);
	assert_int_equal(sim_module_read(&m, 55, 2, r, 0, 0), MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(sim_module_read(&m, 56, 1, r, 0, 0), MB_EX_ILLEGAL_ADDRESS);
	assert_int_equal(sim_module_read(&m, 0, 0, r, 0, 0), MB_EX_ILLEGAL_VALUE);
	assert_int_equal(sim_module_read(&m, 0, 126, r, 0, 0), MB_EX_ILLEGAL_VALUE);
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
	assert_int_equal(sim_module_read(&m, 7, 1, &v, 0, 0), 0);
	assert_int_equal(v, 0x0114);
	assert_int_equal(sim_module_read(&m, 55, 1, &v, 0, 0), 0);
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
	assert_int_equal(sim_module_read(&m, 6, 1, &v, 0, 0), 0);
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
	assert_int_equal(sim_module_read(&m, 8, 1, &v, 0, 0), 0);
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
	assert_int_equal(sim_gen_value(&sine, 0, 0, true), 500);
	assert_int_equal(sim_gen_value(&sine, 2, 0, true), 600);
	assert_int_equal(sim_gen_value(&sine, 6, 0, true), 400);
	assert_int_equal(sim_gen_value(&low, 3, 0, true), 0);	/* clamped */
	for (int i = 0; i < 200; i++) {
		int v = sim_gen_value(&walk, 0, 0, true);

		assert_true(v >= 90 && v <= 120);
		assert_true(abs(v - prev) <= 7);
		assert_int_equal(sim_gen_value(&again, 0, 0, true), v);	/* same seed, same walk */
		moved += v != prev;
		prev = v;
	}
	assert_true(moved > 50);
	/* reading without advancing does not move it */
	assert_int_equal(sim_gen_value(&walk, 0, 0, false), prev);
}

/* The example of hdhk-sim(1): ramp 0 -> 1000 in a minute, step down to
 * 500, hold a minute, ramp to 2000 in another. */
#define EXAMPLE_POINTS "[[0, 0], [60, 1000], [60, 500], [120, 500], [180, 2000]]"

static struct sim_gen profile_gen(const char *json)
{
	struct sim_gen g;
	char err[256];

	sim_gen_const(&g, 0);
	if (sim_profile_from_json(json, &g, err, sizeof(err)) != 0)
		fail_msg("%s: %s", json, err);
	assert_int_equal(g.kind, SIM_GEN_PROFILE);
	return g;
}

static void test_profile_ramps_and_steps(void **state)
{
	struct sim_gen g = profile_gen("{\"start\": 1000.5, \"points\": " EXAMPLE_POINTS "}");
	const struct sim_profile *p = g.profile;

	(void)state;
	assert_int_equal(p->n, 5);
	assert_false(p->repeat);
	assert_true(p->start == 1000.5);
	/* ramp midpoints and an arbitrary ramp point */
	assert_true(fabs(sim_profile_value(p, 1000.5 + 30) - 500) < 1e-9);
	assert_true(fabs(sim_profile_value(p, 1000.5 + 150) - 1250) < 1e-9);
	assert_true(fabs(sim_profile_value(p, 1000.5 + 6) - 100) < 1e-9);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 30, true), 500);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 165, true), 1625);
	/* the step: just before it the ramp's end, at it and after the new value */
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 59.9994, true), 1000);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 59.5, true), 992);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 60, true), 500);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 90, true), 500);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 120, true), 500);
	/* before the first point, after the last */
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 - 1, true), 0);
	assert_int_equal(sim_gen_value(&g, 0, 0, true), 0);
	assert_int_equal(sim_gen_value(&g, 0, 1000.5 + 180, true), 2000);
	assert_int_equal(sim_gen_value(&g, 0, 1e9, true), 2000);
	/* the simulator's own clock (t_s) plays no part */
	assert_int_equal(sim_gen_value(&g, 12345, 1000.5 + 30, true), 500);
	sim_gen_clear(&g);
	assert_int_equal(g.kind, SIM_GEN_CONST);
	assert_null(g.profile);

	/* a profile that starts late holds its first value until then */
	g = profile_gen("{\"start\": 0, \"points\": [[10, 300], [20, 400]]}");
	assert_int_equal(sim_gen_value(&g, 0, 9.99, true), 300);
	assert_int_equal(sim_gen_value(&g, 0, 15, true), 350);
	assert_int_equal(sim_gen_value(&g, 0, 25, true), 400);
	sim_gen_clear(&g);

	/* a single point is a constant */
	g = profile_gen("{\"start\": 0, \"points\": [[5, 77]]}");
	assert_int_equal(sim_gen_value(&g, 0, 0, true), 77);
	assert_int_equal(sim_gen_value(&g, 0, 100, true), 77);
	sim_gen_clear(&g);
}

static void test_profile_repeat(void **state)
{
	struct sim_gen saw = profile_gen("{\"start\": 100, \"repeat\": true, "
					 "\"points\": [[0, 0], [10, 100]]}");
	struct sim_gen late = profile_gen("{\"start\": 0, \"repeat\": true, "
					  "\"points\": [[5, 100], [15, 200], [15, 50]]}");
	struct sim_gen once = profile_gen("{\"start\": 100, \"points\": [[0, 0], [10, 100]]}");

	(void)state;
	assert_true(saw.profile->repeat);
	for (int k = 0; k < 1000; k += 37) {
		assert_int_equal(sim_gen_value(&saw, 0, 100 + 10 * k + 5, true), 50);
		assert_int_equal(sim_gen_value(&saw, 0, 100 + 10 * k + 2.5, true), 25);
		assert_int_equal(sim_gen_value(&saw, 0, 100 + 10 * k, true), 0);
		assert_int_equal(sim_gen_value(&saw, 0, 100 + 10 * k + 9.9, true), 99);
	}
	assert_int_equal(sim_gen_value(&saw, 0, 99, true), 0);		/* before: first value */
	assert_int_equal(sim_gen_value(&once, 0, 125, true), 100);	/* no repeat: last value */
	/* the period runs from the first point's time (5) to the last's (15);
	 * the step at the period's end is never seen */
	assert_int_equal(sim_gen_value(&late, 0, 0, true), 100);
	assert_int_equal(sim_gen_value(&late, 0, 10, true), 150);
	assert_int_equal(sim_gen_value(&late, 0, 15, true), 100);
	assert_int_equal(sim_gen_value(&late, 0, 20, true), 150);
	assert_int_equal(sim_gen_value(&late, 0, 24.9, true), 199);
	assert_int_equal(sim_gen_value(&late, 0, 1005 + 2.5, true), 125);
	sim_gen_clear(&saw);
	sim_gen_clear(&late);
	sim_gen_clear(&once);
}

static void test_profile_rounding_and_clamping(void **state)
{
	struct sim_gen g = profile_gen("{\"start\": 0, \"points\": [[0, 0], [2, 1]]}");
	struct sim_profile *wild;

	(void)state;
	assert_int_equal(sim_gen_value(&g, 0, 0.5, true), 0);	/* 0.25 */
	assert_int_equal(sim_gen_value(&g, 0, 0.9, true), 0);	/* 0.45 */
	assert_int_equal(sim_gen_value(&g, 0, 1.0, true), 1);	/* 0.5: half up */
	assert_int_equal(sim_gen_value(&g, 0, 1.4, true), 1);	/* 0.7 */
	sim_gen_clear(&g);
	g = profile_gen("{\"start\": 0, \"points\": [[0, 65535], [10, 65534], [20, 0]]}");
	assert_int_equal(sim_gen_value(&g, 0, 0, true), 65535);
	assert_int_equal(sim_gen_value(&g, 0, 4, true), 65535);	/* 65534.6 */
	assert_int_equal(sim_gen_value(&g, 0, 6, true), 65534);	/* 65534.4 */
	sim_gen_clear(&g);

	/* values beyond the register (no scenario makes them) are clamped */
	wild = malloc(sizeof(*wild) + 2 * sizeof(wild->points[0]));
	assert_non_null(wild);
	*wild = (struct sim_profile){ .start = 0, .n = 2 };
	wild->points[0] = (struct sim_point){ 0, -100 };
	wild->points[1] = (struct sim_point){ 10, 70000 };
	sim_gen_const(&g, 0);
	g.kind = SIM_GEN_PROFILE;
	g.profile = wild;
	assert_int_equal(sim_gen_value(&g, 0, 0, true), 0);
	assert_int_equal(sim_gen_value(&g, 0, 9.9, true), 65535);
	assert_int_equal(sim_gen_value(&g, 0, 0.2, true), 1302);	/* -100 + 1402 */
	sim_gen_clear(&g);
}

static void test_profile_in_module(void **state)
{
	struct sim_gen g = profile_gen("{\"start\": 500, \"points\": [[0, 100], [10, 200]]}");
	struct sim_module m;
	uint16_t r[HDHK_NREGS];

	(void)state;
	sim_module_init(&m, 1, &line_9600_n81);
	assert_int_equal(sim_gen_copy(&m.current[2], &g), 0);
	assert_int_equal(sim_gen_copy(&m.frequency[15], &g), 0);
	assert_ptr_not_equal(m.current[2].profile, g.profile);	/* each owns its copy */
	sim_gen_clear(&g);
	assert_int_equal(sim_module_read(&m, 8, 32, r, 0, 505), 0);
	assert_int_equal(r[0], 1010);
	assert_int_equal(r[2], 150);
	assert_int_equal(r[31], 150);
	assert_int_equal(r[30], 500);
	assert_int_equal(sim_module_read(&m, 10, 1, r, 0, 510), 0);
	assert_int_equal(r[0], 200);
	/* setreg makes it a constant again, releasing the profile */
	assert_int_equal(sim_module_setreg(&m, 10, 7), 0);
	assert_int_equal(m.current[2].kind, SIM_GEN_CONST);
	assert_int_equal(sim_module_read(&m, 10, 1, r, 0, 505), 0);
	assert_int_equal(r[0], 7);
	sim_module_free(&m);
}

static void test_profile_default_start_is_now(void **state)
{
	struct sim_gen g = profile_gen("{\"points\": [[0, 1]]}");
	struct timespec ts;
	double now;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	assert_true(g.profile->start <= now && g.profile->start > now - 5);
	sim_gen_clear(&g);
}

static void test_profile_parse_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "{}", "profile: missing \"points\"" },
		{ "{\"points\": []}", "profile.points: expected 1..1024 points" },
		{ "{\"points\": {}}", "profile.points: expected array, got object" },
		{ "{\"points\": [5]}", "profile.points[0]: expected array, got int" },
		{ "{\"points\": [[0]]}", "profile.points[0]: expected [seconds, raw]" },
		{ "{\"points\": [[0, 1, 2]]}", "profile.points[0]: expected [seconds, raw]" },
		{ "{\"points\": [[\"0\", 1]]}", "profile.points[0][0]: expected a number, got string" },
		{ "{\"points\": [[-1, 1]]}", "profile.points[0][0]: expected seconds in 0..1000000000" },
		{ "{\"points\": [[0, 65536]]}", "profile.points[0][1]: expected an integer in 0..65535" },
		{ "{\"points\": [[0, -1]]}", "profile.points[0][1]: expected an integer in 0..65535" },
		{ "{\"points\": [[0, 1.5]]}", "profile.points[0][1]: expected an integer in 0..65535" },
		{ "{\"points\": [[0, null]]}", "profile.points[0][1]: expected an integer, got null" },
		{ "{\"points\": [[0, 1], [10, 2], [9.5, 3]]}",
		  "profile.points[2]: seconds must not decrease (9.5 after 10)" },
		{ "{\"points\": [[0, 1], [0, 2]], \"repeat\": true}",
		  "profile.repeat: needs the last point later than the first" },
		{ "{\"points\": [[7, 1]], \"repeat\": true}",
		  "profile.repeat: needs the last point later than the first" },
		{ "{\"points\": [[0, 1]], \"repeat\": 1}", "profile.repeat: expected boolean, got int" },
		{ "{\"points\": [[0, 1]], \"start\": \"now\"}",
		  "profile.start: expected a number, got string" },
		{ "{\"points\": [[0, 1]], \"start\": -1}", "profile.start: expected a Unix time" },
		{ "{\"points\": [[0, 1]], \"colour\": 1}", "profile.colour: unknown key" },
		{ "[[0, 1]]", "profile: expected object, got array" },
		{ "null", "profile: expected object, got null" },
		{ "{\"points\": [[0, 1]]", "invalid JSON" },
		{ "{\"points\": [[0, 1]]} x", "invalid JSON: text after the object" },
		{ "", "invalid JSON" },
	};
	char err[256], *big;
	struct sim_gen g;
	size_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sim_gen_const(&g, 5);
		assert_int_equal(sim_profile_from_json(cases[i][0], &g, err, sizeof(err)), -EINVAL);
		if (strncmp(err, cases[i][1], strlen(cases[i][1])) != 0)
			fail_msg("%s: got \"%s\", expected \"%s...\"", cases[i][0], err, cases[i][1]);
		assert_int_equal(g.kind, SIM_GEN_CONST);
		assert_null(g.profile);
	}

	/* 1024 points are fine, 1025 are not */
	big = malloc(32 * 1100);
	if (!big) {		/* not assert_non_null: the compiler sees this */
		fail();
		return;
	}
	for (int n = 1024; n <= 1025; n++) {
		len = (size_t)sprintf(big, "{\"points\": [");
		for (int i = 0; i < n; i++)
			len += (size_t)sprintf(big + len, "%s[%d, %d]", i ? ", " : "", i, i % 7);
		sprintf(big + len, "]}");
		sim_gen_const(&g, 0);
		if (n == 1024) {
			assert_int_equal(sim_profile_from_json(big, &g, err, sizeof(err)), 0);
			assert_int_equal(g.profile->n, 1024);
			assert_int_equal(sim_gen_value(&g, 0, g.profile->start + 1023, true), 1023 % 7);
			sim_gen_clear(&g);
		} else {
			assert_int_equal(sim_profile_from_json(big, &g, err, sizeof(err)), -EINVAL);
			assert_string_equal(err, "profile.points: expected 1..1024 points");
		}
	}
	free(big);
}

/* SIM.json's "profile" generators, for a channel and for all frequencies. */
static void test_profile_in_scenario(void **state)
{
	char file[] = "/tmp/test-sim-XXXXXX";
	static const char good[] =
		"{\"buses\": [{\"path\": \"/tmp/x\", \"modules\": [{\"address\": 3,"
		" \"channels\": [1, {\"profile\": {\"start\": 10, \"points\": [[0, 0], [4, 8]]}}],"
		" \"frequency\": {\"profile\": {\"start\": 20, \"repeat\": true,"
		"                 \"points\": [[0, 490], [2, 510]]}}}]}]}";
	static const char bad[] =
		"{\"buses\": [{\"path\": \"/tmp/x\", \"modules\": [{"
		" \"channels\": [{\"profile\": {\"points\": [[5, 0], [4, 8]]}},"
		"                {\"profile\": {\"start\": 0, \"points\": [[0, 0]]}}],"
		" \"frequency\": {\"profile\": {\"points\": [], \"repeat\": true}}}]}]}";
	struct sim sim;
	struct sim_module *m;
	int fd;

	(void)state;
	fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
	close(fd);
	memset(&sim, 0, sizeof(sim));
	assert_int_equal(sim_config_load(&sim, file), 0);
	m = &sim.buses[0].modules[0];
	assert_int_equal(m->current[0].kind, SIM_GEN_CONST);
	assert_int_equal(m->current[1].kind, SIM_GEN_PROFILE);
	assert_int_equal(sim_gen_value(&m->current[1], 0, 13, true), 6);
	assert_int_equal(m->current[2].kind, SIM_GEN_CONST);
	for (int i = 0; i < HDHK_NCHANNELS; i++) {
		assert_int_equal(m->frequency[i].kind, SIM_GEN_PROFILE);
		assert_int_equal(sim_gen_value(&m->frequency[i], 0, 20 + 4 * i + 1, true), 500);
		if (i)
			assert_ptr_not_equal(m->frequency[i].profile, m->frequency[0].profile);
	}
	sim_config_free(&sim);

	fd = open(file, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	memset(&sim, 0, sizeof(sim));
	assert_int_equal(sim_config_load(&sim, file), -EINVAL);
	sim_config_free(&sim);
	unlink(file);
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
		cmocka_unit_test(test_profile_ramps_and_steps),
		cmocka_unit_test(test_profile_repeat),
		cmocka_unit_test(test_profile_rounding_and_clamping),
		cmocka_unit_test(test_profile_in_module),
		cmocka_unit_test(test_profile_default_start_is_now),
		cmocka_unit_test(test_profile_parse_errors),
		cmocka_unit_test(test_profile_in_scenario),
		cmocka_unit_test(test_fault_mangling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
