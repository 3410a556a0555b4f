/* feeds.c — the figures of every feed at one tick (feeds.h): one pass over
 * the configured inputs sums currents and power per feed and phase, then
 * each feed's imbalance and neutral, then the 2N pairs' redundant load. */
#include <math.h>

#include "meter/feeds.h"

/* The phasors of L1..L3 at 0, -120 and +120 degrees (cos, sin), exact to
 * the last bit so that balanced currents cancel to 0. */
static const double phase_cos[PM_PHASES] = { 1.0, -0.5, -0.5 };
static const double phase_sin[PM_PHASES] = {
	0.0,
	-0.86602540378443864676,	/* -sqrt(3)/2 */
	0.86602540378443864676,
};

double pm_imbalance(const double *current, unsigned n)
{
	double sum = 0, mean, dev = 0;

	if (n < 2)
		return NAN;
	for (unsigned i = 0; i < n; i++)
		sum += current[i];
	mean = sum / n;
	if (mean == 0)
		return NAN;
	for (unsigned i = 0; i < n; i++)
		dev = fmax(dev, fabs(current[i] - mean));
	return dev / mean * 100;
}

double pm_neutral(const double *current, const unsigned *phases, unsigned n)
{
	double x = 0, y = 0;

	for (unsigned i = 0; i < n; i++) {
		if (phases[i] >= PM_PHASES)
			return NAN;
		x += current[i] * phase_cos[phases[i]];
		y += current[i] * phase_sin[phases[i]];
	}
	return hypot(x, y);
}

/* The index among 'feed's phases of phase 'phase' (0..2), or -1. */
static int phase_index(const struct pm_feed *feed, unsigned phase)
{
	for (unsigned i = 0; i < feed->n_phases && i < PM_PHASES; i++)
		if (feed->phases[i] == phase)
			return (int)i;
	return -1;
}

/* Sums the inputs' readings into their feeds' phases. */
static void add_inputs(const struct pm_config *cfg,
		       const struct pm_sample *const *latest,
		       struct pm_feed_fig *out)
{
	for (size_t d = 0; d < cfg->n_devices; d++) {
		const struct pm_device *dev = &cfg->devices[d];
		const struct pm_sample *s = latest[d];

		for (size_t k = 0; k < dev->n_inputs; k++) {
			const struct pm_input *in = &dev->inputs[k];
			struct pm_feed_phase_fig *ph;
			double amps;

			if (in->feed < 0 || (size_t)in->feed >= cfg->n_feeds ||
			    in->feed_phase >= cfg->feeds[in->feed].n_phases ||
			    in->feed_phase >= PM_PHASES)
				continue;
			ph = &out[in->feed].phase[in->feed_phase];
			ph->inputs++;
			/* past the module's channels it reads NaN, and a
			 * current that is not a finite number is none either:
			 * no reading */
			amps = s ? pm_sample_amperes(s, in) : NAN;
			if (!isfinite(amps)) {
				ph->missing++;
				continue;
			}
			ph->current += amps;
			ph->power += pm_power(amps, in);
		}
	}
}

/* Load, totals, imbalance and neutral of feed 'feed' from its phases. */
static void finish_feed(const struct pm_feed *feed, struct pm_feed_fig *fig)
{
	double current[PM_PHASES];
	unsigned n = feed->n_phases < PM_PHASES ? feed->n_phases : PM_PHASES;

	for (unsigned i = 0; i < n; i++) {
		struct pm_feed_phase_fig *ph = &fig->phase[i];

		ph->load = ph->current / feed->capacity * 100;
		current[i] = ph->current;
		fig->current += ph->current;
		fig->power += ph->power;
		fig->missing += ph->missing;
	}
	fig->complete = fig->missing == 0;
	fig->imbalance = fig->complete && n >= 2 ? pm_imbalance(current, n)
						 : NAN;
	fig->neutral = fig->complete ? pm_neutral(current, feed->phases, n)
				     : NAN;
}

/* What feed 'f' would carry per phase if its partner failed. */
static void redundancy(const struct pm_config *cfg, size_t f,
		       struct pm_feed_fig *out)
{
	const struct pm_feed *feed = &cfg->feeds[f];
	const struct pm_feed *other;
	struct pm_feed_fig *fig = &out[f];
	double smaller;

	if (feed->partner < 0 || (size_t)feed->partner >= cfg->n_feeds)
		return;
	other = &cfg->feeds[feed->partner];
	smaller = fmin(feed->capacity, other->capacity);
	for (unsigned i = 0; i < feed->n_phases && i < PM_PHASES; i++) {
		int j = phase_index(other, feed->phases[i]);
		double load;

		if (j < 0)
			continue;
		load = (fig->phase[i].current +
			out[feed->partner].phase[j].current) / smaller * 100;
		fig->phase[i].redundant_load = load;
		fig->phase[i].redundant_missing = fig->phase[i].missing +
			out[feed->partner].phase[j].missing;
		fig->redundant_missing += fig->phase[i].redundant_missing;
		if (isnan(fig->redundant_load) || load > fig->redundant_load)
			fig->redundant_load = load;
	}
}

void pm_feeds_compute(const struct pm_config *cfg,
		      const struct pm_sample *const *latest,
		      struct pm_feed_fig *out)
{
	for (size_t f = 0; f < cfg->n_feeds; f++) {
		out[f] = (struct pm_feed_fig){
			.imbalance = NAN,
			.neutral = NAN,
			.redundant_load = NAN,
		};
		for (unsigned i = 0; i < PM_PHASES; i++)
			out[f].phase[i].load = out[f].phase[i].redundant_load =
				NAN;
	}
	add_inputs(cfg, latest, out);
	for (size_t f = 0; f < cfg->n_feeds; f++)
		finish_feed(&cfg->feeds[f], &out[f]);
	/* every feed's phase currents are final before any pair is judged */
	for (size_t f = 0; f < cfg->n_feeds; f++)
		redundancy(cfg, f, out);
}
