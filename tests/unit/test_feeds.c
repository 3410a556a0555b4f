/* test_feeds.c — the figures of feeds (meter/feeds.c) against values worked
 * out by hand: per phase sums, load and power, the NEMA imbalance, the
 * neutral estimate, missing readings, and the 2N pair's redundant load. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter/feeds.h"

#define L1 0u
#define L2 1u
#define L3 2u
#define NONE (-1)

/* One configured input: its channel, feed and phase index in that feed, and
 * what its power is estimated from. Ratio 0.1 A per count. */
struct spec {
	char letter;
	int feed;
	unsigned feed_phase;
	double voltage, power_factor;
};

static void assert_close(double got, double want)
{
	if (fabs(got - want) > 1e-9)
		fail_msg("got %.17g, want %.17g", got, want);
}

static struct pm_config *config_new(size_t n_devices, size_t n_feeds)
{
	struct pm_config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	cfg->n_devices = n_devices;
	cfg->devices = calloc(n_devices ? n_devices : 1, sizeof(*cfg->devices));
	cfg->n_feeds = n_feeds;
	cfg->feeds = calloc(n_feeds ? n_feeds : 1, sizeof(*cfg->feeds));
	assert_non_null(cfg->devices);
	assert_non_null(cfg->feeds);
	for (size_t d = 0; d < n_devices; d++)
		cfg->devices[d].id = (int)d + 1;
	return cfg;
}

static void set_inputs(struct pm_config *cfg, size_t d, const struct spec *s,
		       size_t n)
{
	struct pm_device *dev = &cfg->devices[d];

	dev->n_inputs = n;
	dev->inputs = calloc(n, sizeof(*dev->inputs));
	assert_non_null(dev->inputs);
	for (size_t i = 0; i < n; i++) {
		struct pm_input *in = &dev->inputs[i];

		in->channel = (unsigned)(s[i].letter - 'a');
		in->ratio = 0.1;
		in->id = (int)cfg->n_inputs++;
		in->voltage = s[i].voltage;
		in->power_factor = s[i].power_factor;
		in->feed = s[i].feed;
		in->feed_phase = s[i].feed_phase;
	}
}

/* Feed f with 'n' phases (L1..L3 values, as listed) and its partner. */
static void set_feed(struct pm_config *cfg, size_t f, double capacity,
		     int partner, const unsigned *phases, unsigned n)
{
	struct pm_feed *feed = &cfg->feeds[f];

	feed->capacity = capacity;
	feed->voltage = NAN;
	feed->partner = partner;
	feed->n_phases = n;
	memcpy(feed->phases, phases, n * sizeof(*phases));
}

static void config_free(struct pm_config *cfg)
{
	for (size_t d = 0; d < cfg->n_devices; d++)
		free(cfg->devices[d].inputs);
	free(cfg->devices);
	free(cfg->feeds);
	free(cfg);
}

/* Sets channel 'letter' of 's' to 'amps' (at 0.1 A per count). */
static void put(struct pm_sample *s, char letter, double amps)
{
	s->current[letter - 'a'] = (uint16_t)lround(amps * 10);
}

/* ---- the formulas ------------------------------------------------------- */

static void test_imbalance(void **state)
{
	const double a[] = { 10, 12, 8 };
	const double b[] = { 10, 10, 10 };
	const double c[] = { 10, 0 };
	const double z[] = { 0, 0, 0 };

	(void)state;
	/* mean (10 + 12 + 8) / 3 = 10, max |12 - 10| = |8 - 10| = 2:
	 * 2 / 10 * 100 = 20 % */
	assert_close(pm_imbalance(a, 3), 20.0);
	assert_close(pm_imbalance(b, 3), 0.0);
	/* mean 5, max |10 - 5| = 5: 5 / 5 * 100 = 100 % */
	assert_close(pm_imbalance(c, 2), 100.0);
	assert_true(isnan(pm_imbalance(z, 3)));		/* mean 0 */
	assert_true(isnan(pm_imbalance(a, 1)));		/* one phase */
	assert_true(isnan(pm_imbalance(a, 0)));
}

static void test_neutral(void **state)
{
	const unsigned l123[] = { L1, L2, L3 };
	const unsigned l12[] = { L1, L2 };
	const unsigned l13[] = { L1, L3 };
	const unsigned l2[] = { L2 };
	const unsigned l321[] = { L3, L2, L1 };

	(void)state;
	/* |I| = sqrt(a² + b² + c² - ab - bc - ca) for L1, L2, L3 */
	/* 300 - 300 = 0 */
	assert_true(fabs(pm_neutral((double[]){ 10, 10, 10 }, l123, 3)) < 1e-9);
	/* 100 - 0 = 100 -> 10 */
	assert_close(pm_neutral((double[]){ 10, 0, 0 }, l123, 3), 10.0);
	/* 200 - 100 = 100 -> 10 */
	assert_close(pm_neutral((double[]){ 10, 10, 0 }, l123, 3), 10.0);
	/* 600 - (200 + 100 + 200) = 100 -> 10 */
	assert_close(pm_neutral((double[]){ 20, 10, 10 }, l123, 3), 10.0);
	/* 100 + 144 + 64 - (120 + 96 + 80) = 12 -> sqrt(12) */
	assert_close(pm_neutral((double[]){ 10, 12, 8 }, l123, 3),
		     3.4641016151377544);
	/* the same currents listed L3, L2, L1: the phases, not the order,
	 * place them */
	assert_close(pm_neutral((double[]){ 8, 12, 10 }, l321, 3),
		     3.4641016151377544);
	/* two phases 120 degrees apart: sqrt(a² + b² - ab) */
	/* 100 + 100 - 100 = 100 -> 10 */
	assert_close(pm_neutral((double[]){ 10, 10 }, l12, 2), 10.0);
	/* 100 + 400 - 200 = 300 -> sqrt(300) */
	assert_close(pm_neutral((double[]){ 10, 20 }, l13, 2),
		     17.320508075688775);
	/* one phase: the neutral carries its current back */
	assert_close(pm_neutral((double[]){ 7 }, l2, 1), 7.0);
	assert_close(pm_neutral(NULL, l2, 0), 0.0);
}

/* ---- one feed ----------------------------------------------------------- */

/* Feed 0: 3 phases, 32 A. Device 1: a on L1 (230 V, pf 0.9), b on L2, c on
 * L3 (120 V), d in no feed; device 2: a on L2, b in no feed. */
static struct pm_config *three_phase(void)
{
	const unsigned l123[] = { L1, L2, L3 };
	const struct spec dev1[] = {
		{ 'a', 0, 0, 230, 0.9 },
		{ 'b', 0, 1, 230, 1 },
		{ 'c', 0, 2, 120, 1 },
		{ 'd', NONE, 0, 230, 1 },
	};
	const struct spec dev2[] = {
		{ 'a', 0, 1, 230, 1 },
		{ 'b', NONE, 0, 230, 1 },
	};
	struct pm_config *cfg = config_new(2, 1);

	set_inputs(cfg, 0, dev1, 4);
	set_inputs(cfg, 1, dev2, 2);
	set_feed(cfg, 0, 32, NONE, l123, 3);
	return cfg;
}

/* L1 10 A, L2 7 + 5 A, L3 8 A; 50 A and 40 A on the inputs in no feed. */
static void three_phase_samples(struct pm_sample s[2])
{
	memset(s, 0, 2 * sizeof(*s));
	s[0].device = 0;
	s[1].device = 1;
	put(&s[0], 'a', 10);
	put(&s[0], 'b', 7);
	put(&s[0], 'c', 8);
	put(&s[0], 'd', 50);
	put(&s[1], 'a', 5);
	put(&s[1], 'b', 40);
}

static void test_three_phase(void **state)
{
	struct pm_config *cfg = three_phase();
	struct pm_sample s[2];
	const struct pm_sample *latest[2] = { &s[0], &s[1] };
	struct pm_feed_fig out[1];
	const struct pm_feed_phase_fig *p = out[0].phase;

	(void)state;
	three_phase_samples(s);
	pm_feeds_compute(cfg, latest, out);

	assert_close(p[0].current, 10.0);
	assert_close(p[1].current, 12.0);	/* 7 + 5, two devices */
	assert_close(p[2].current, 8.0);
	assert_close(p[0].power, 2070.0);	/* 10 A * 230 V * 0.9 */
	assert_close(p[1].power, 2760.0);	/* 12 A * 230 V * 1 */
	assert_close(p[2].power, 960.0);	/* 8 A * 120 V * 1 */
	assert_close(p[0].load, 31.25);		/* 10 / 32 * 100 */
	assert_close(p[1].load, 37.5);		/* 12 / 32 * 100 */
	assert_close(p[2].load, 25.0);		/* 8 / 32 * 100 */
	assert_int_equal(p[0].inputs, 1);
	assert_int_equal(p[1].inputs, 2);
	assert_int_equal(p[2].inputs, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(p[i].missing, 0);
		assert_true(isnan(p[i].redundant_load));	/* no partner */
	}
	/* the 50 A and 40 A of inputs in no feed count nowhere */
	assert_close(out[0].current, 30.0);		/* 10 + 12 + 8 */
	assert_close(out[0].power, 5790.0);		/* 2070 + 2760 + 960 */
	assert_close(out[0].imbalance, 20.0);		/* mean 10, max dev 2 */
	/* sqrt(100 + 144 + 64 - 120 - 96 - 80) = sqrt(12) */
	assert_close(out[0].neutral, 3.4641016151377544);
	assert_true(isnan(out[0].redundant_load));
	assert_int_equal(out[0].missing, 0);
	assert_true(out[0].complete);
	config_free(cfg);
}

/* A device without a sample: its inputs are missing, the sums are what the
 * others read (a lower bound), and imbalance and neutral are unknown. */
static void test_missing(void **state)
{
	struct pm_config *cfg = three_phase();
	struct pm_sample s[2];
	const struct pm_sample *latest[2] = { &s[0], NULL };
	const struct pm_sample *none[2] = { NULL, NULL };
	struct pm_feed_fig out[1];
	const struct pm_feed_phase_fig *p = out[0].phase;

	(void)state;
	three_phase_samples(s);
	pm_feeds_compute(cfg, latest, out);
	assert_close(p[0].current, 10.0);
	assert_close(p[1].current, 7.0);	/* device 2's 5 A unknown */
	assert_close(p[1].power, 1610.0);	/* 7 A * 230 V */
	assert_close(p[1].load, 21.875);	/* 7 / 32 * 100 */
	assert_int_equal(p[1].inputs, 2);
	assert_int_equal(p[1].missing, 1);
	assert_int_equal(p[0].missing, 0);
	assert_int_equal(p[2].missing, 0);
	assert_close(out[0].current, 25.0);	/* 10 + 7 + 8 */
	assert_close(out[0].power, 4640.0);	/* 2070 + 1610 + 960 */
	assert_int_equal(out[0].missing, 1);
	assert_false(out[0].complete);
	assert_true(isnan(out[0].imbalance));
	assert_true(isnan(out[0].neutral));

	pm_feeds_compute(cfg, none, out);
	for (int i = 0; i < 3; i++) {
		assert_close(p[i].current, 0.0);
		assert_close(p[i].power, 0.0);
		assert_close(p[i].load, 0.0);
		assert_int_equal(p[i].missing, p[i].inputs);
	}
	assert_int_equal(out[0].missing, 4);	/* 1 + 2 + 1 */
	assert_false(out[0].complete);
	assert_true(isnan(out[0].imbalance));
	assert_true(isnan(out[0].neutral));
	config_free(cfg);
}

/* An input past the module's 16 channels has no reading either. */
static void test_channel_out_of_range(void **state)
{
	const unsigned l1[] = { L1 };
	const struct spec in[] = { { 'a', 0, 0, 230, 1 } };
	struct pm_config *cfg = config_new(1, 1);
	struct pm_sample s = { 0 };
	const struct pm_sample *latest[1] = { &s };
	struct pm_feed_fig out[1];

	(void)state;
	set_inputs(cfg, 0, in, 1);
	cfg->devices[0].inputs[0].channel = PM_CHANNELS;
	set_feed(cfg, 0, 16, NONE, l1, 1);
	pm_feeds_compute(cfg, latest, out);
	assert_int_equal(out[0].phase[0].missing, 1);
	assert_close(out[0].current, 0.0);
	assert_false(out[0].complete);
	assert_true(isnan(out[0].neutral));
	config_free(cfg);
}

/* Feed 0 on L1 and L2 (16 A), feed 1 on L2 only (16 A). */
static void test_partial_phases(void **state)
{
	const unsigned l12[] = { L1, L2 };
	const unsigned l2[] = { L2 };
	const struct spec in[] = {
		{ 'a', 0, 0, 230, 1 },	/* feed 0 L1 */
		{ 'b', 0, 1, 230, 1 },	/* feed 0 L2 */
		{ 'c', 1, 0, 230, 1 },	/* feed 1 phases[0] = L2 */
	};
	struct pm_config *cfg = config_new(1, 2);
	struct pm_sample s = { 0 };
	const struct pm_sample *latest[1] = { &s };
	struct pm_feed_fig out[2];

	(void)state;
	set_inputs(cfg, 0, in, 3);
	set_feed(cfg, 0, 16, NONE, l12, 2);
	set_feed(cfg, 1, 16, NONE, l2, 1);
	put(&s, 'a', 10);
	put(&s, 'b', 6);
	put(&s, 'c', 7);
	pm_feeds_compute(cfg, latest, out);

	assert_close(out[0].phase[0].current, 10.0);
	assert_close(out[0].phase[1].current, 6.0);
	assert_close(out[0].phase[0].load, 62.5);	/* 10 / 16 * 100 */
	assert_close(out[0].phase[1].load, 37.5);	/* 6 / 16 * 100 */
	assert_close(out[0].current, 16.0);
	assert_close(out[0].power, 3680.0);		/* 16 A * 230 V */
	/* mean 8, max dev 2: 2 / 8 * 100 = 25 % */
	assert_close(out[0].imbalance, 25.0);
	/* sqrt(100 + 36 - 60) = sqrt(76) */
	assert_close(out[0].neutral, 8.717797887081348);
	assert_true(out[0].complete);

	assert_close(out[1].phase[0].current, 7.0);
	assert_close(out[1].phase[0].power, 1610.0);	/* 7 A * 230 V */
	assert_close(out[1].phase[0].load, 43.75);	/* 7 / 16 * 100 */
	assert_int_equal(out[1].phase[0].inputs, 1);
	assert_true(isnan(out[1].imbalance));		/* one phase */
	assert_close(out[1].neutral, 7.0);		/* one phase: itself */
	assert_true(out[1].complete);
	config_free(cfg);
}

/* ---- 2N pairs ----------------------------------------------------------- */

/* Feed 0 "A": L1, L2, L3 at 32 A; feed 1 "B": L3, L1 (in that order) at
 * 25 A; a pair. Feed 2: L1 at 32 A, alone. Feeds 3 (L1) and 4 (L2): a pair
 * without a phase in common. */
static void test_redundancy(void **state)
{
	const unsigned l123[] = { L1, L2, L3 };
	const unsigned l31[] = { L3, L1 };
	const unsigned l1[] = { L1 };
	const unsigned l2[] = { L2 };
	/* B's inputs come first: the pass over the pair must not depend on
	 * the order the feeds' inputs are read in */
	const struct spec dev1[] = {
		{ 'a', 1, 0, 230, 1 },	/* B L3 */
		{ 'b', 1, 1, 230, 1 },	/* B L1 */
		{ 'c', 2, 0, 230, 1 },	/* feed 2 L1 */
		{ 'd', 3, 0, 230, 1 },	/* feed 3 L1 */
		{ 'e', 4, 0, 230, 1 },	/* feed 4 L2 */
	};
	const struct spec dev2[] = {
		{ 'a', 0, 0, 230, 1 },	/* A L1 */
		{ 'b', 0, 1, 230, 1 },	/* A L2 */
		{ 'c', 0, 2, 230, 1 },	/* A L3 */
	};
	struct pm_config *cfg = config_new(2, 5);
	struct pm_sample s[2] = { { .device = 0 }, { .device = 1 } };
	const struct pm_sample *latest[2] = { &s[0], &s[1] };
	struct pm_feed_fig out[5];

	(void)state;
	set_inputs(cfg, 0, dev1, 5);
	set_inputs(cfg, 1, dev2, 3);
	set_feed(cfg, 0, 32, 1, l123, 3);
	set_feed(cfg, 1, 25, 0, l31, 2);
	set_feed(cfg, 2, 32, NONE, l1, 1);
	set_feed(cfg, 3, 16, 4, l1, 1);
	set_feed(cfg, 4, 16, 3, l2, 1);
	put(&s[0], 'a', 12);	/* B L3 */
	put(&s[0], 'b', 15);	/* B L1 */
	put(&s[0], 'c', 9);
	put(&s[0], 'd', 4);
	put(&s[0], 'e', 3);
	put(&s[1], 'a', 20);	/* A L1 */
	put(&s[1], 'b', 10);	/* A L2 */
	put(&s[1], 'c', 5);	/* A L3 */
	pm_feeds_compute(cfg, latest, out);

	/* A: L1 (20 + 15) / min(32, 25) * 100 = 35 / 25 * 100 = 140 % */
	assert_close(out[0].phase[0].redundant_load, 140.0);
	assert_true(isnan(out[0].phase[1].redundant_load));	/* B lacks L2 */
	/* A: L3 (5 + 12) / 25 * 100 = 68 % */
	assert_close(out[0].phase[2].redundant_load, 68.0);
	assert_close(out[0].redundant_load, 140.0);	/* max(140, 68) */
	assert_close(out[0].phase[0].load, 62.5);	/* 20 / 32 * 100 */

	/* B, phases listed L3, L1: matched by phase, not by position */
	assert_close(out[1].phase[0].redundant_load, 68.0);	/* L3 */
	assert_close(out[1].phase[1].redundant_load, 140.0);	/* L1 */
	assert_close(out[1].redundant_load, 140.0);
	assert_close(out[1].phase[1].load, 60.0);	/* 15 / 25 * 100 */
	/* L3 12, L1 15 on L3 and L1: sqrt(144 + 225 - 180) = sqrt(189) */
	assert_close(out[1].neutral, 13.74772708486752);
	/* mean 13.5, max dev 1.5: 1.5 / 13.5 * 100 = 11.11 % */
	assert_close(out[1].imbalance, 100.0 / 9);

	/* no partner */
	assert_true(isnan(out[2].phase[0].redundant_load));
	assert_true(isnan(out[2].redundant_load));
	/* a partner without this phase: NaN on every phase, so NaN */
	assert_true(isnan(out[3].phase[0].redundant_load));
	assert_true(isnan(out[3].redundant_load));
	assert_true(isnan(out[4].redundant_load));
	config_free(cfg);
}

/* The partner's readings are lower bounds when it misses some; so is the
 * redundant load built from them. */
static void test_redundancy_missing(void **state)
{
	const unsigned l1[] = { L1 };
	const struct spec dev1[] = { { 'a', 0, 0, 230, 1 } };
	const struct spec dev2[] = { { 'a', 1, 0, 230, 1 } };
	struct pm_config *cfg = config_new(2, 2);
	struct pm_sample s = { .device = 0 };
	const struct pm_sample *latest[2] = { &s, NULL };
	struct pm_feed_fig out[2];

	(void)state;
	set_inputs(cfg, 0, dev1, 1);
	set_inputs(cfg, 1, dev2, 1);
	set_feed(cfg, 0, 32, 1, l1, 1);
	set_feed(cfg, 1, 25, 0, l1, 1);
	put(&s, 'a', 20);
	pm_feeds_compute(cfg, latest, out);
	/* (20 + 0 known) / 25 * 100 = 80 % */
	assert_close(out[0].redundant_load, 80.0);
	assert_close(out[1].redundant_load, 80.0);
	assert_true(out[0].complete);
	assert_false(out[1].complete);
	/* a lower bound for both feeds: the partner's circuit is missing */
	assert_int_equal(out[0].phase[0].redundant_missing, 1);
	assert_int_equal(out[1].phase[0].redundant_missing, 1);
	assert_int_equal(out[0].redundant_missing, 1);
	/* with every reading in, nothing is missing */
	latest[1] = &s;
	pm_feeds_compute(cfg, latest, out);
	assert_int_equal(out[0].phase[0].redundant_missing, 0);
	assert_int_equal(out[1].redundant_missing, 0);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imbalance),
		cmocka_unit_test(test_neutral),
		cmocka_unit_test(test_three_phase),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_channel_out_of_range),
		cmocka_unit_test(test_partial_phases),
		cmocka_unit_test(test_redundancy),
		cmocka_unit_test(test_redundancy_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
