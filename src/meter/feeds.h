/* feeds.h — what a feed carries at one tick (config "feeds"): per phase the
 * current and estimated power summed over its inputs, the load against its
 * capacity, and per feed the imbalance between phases, an estimate of the
 * neutral current and, for a 2N pair, the load one feed would carry if the
 * other failed. Pure arithmetic on the latest samples: no threads, no I/O. */
#ifndef PM_FEEDS_H
#define PM_FEEDS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "meter/sample.h"

struct pm_feed_phase_fig {
	double current;		/* A: sum over the inputs with a reading */
	double power;		/* W, estimated (pm_power of each input) */
	double load;		/* % of the feed's capacity */
	/* (this feed + its partner) on this phase in % of the smaller of the
	 * two capacities; NaN without a partner or when the partner lacks
	 * this phase */
	double redundant_load;
	/* circuits of both feeds on this phase without a reading: while not
	 * 0, redundant_load is a lower bound */
	unsigned redundant_missing;
	unsigned inputs;	/* inputs of the feed on this phase */
	unsigned missing;	/* of them, without a reading this tick */
};

struct pm_feed_fig {
	/* in the order of feed->phases */
	struct pm_feed_phase_fig phase[PM_PHASES];
	double current, power;	/* over all its phases */
	/* % : the largest deviation of a phase current from the mean of the
	 * phases, divided by the mean (NEMA). NaN with fewer than two phases,
	 * a mean of 0 or a phase missing a reading. */
	double imbalance;
	/* A: the vector sum of the phase currents at 0, -120 and +120 degrees
	 * (the same power factor on every phase, no harmonics): an estimate.
	 * NaN when a phase misses a reading. */
	double neutral;
	double redundant_load;	/* the largest over the phases, or NaN */
	unsigned redundant_missing;	/* over the phases, as above */
	unsigned missing;	/* inputs without a reading this tick */
	bool complete;		/* missing == 0: the sums are the truth;
				   else they are a lower bound */
};

/* Figures of every feed of 'cfg' into out[cfg->n_feeds]. latest[d] is the
 * good sample of cfg->devices[d] to use this tick, or NULL when the device
 * has none (its inputs count as missing). */
void pm_feeds_compute(const struct pm_config *cfg,
		      const struct pm_sample *const *latest,
		      struct pm_feed_fig *out);

/* The NEMA imbalance of n phase currents in %; NaN when n < 2 or the mean
 * is 0. */
double pm_imbalance(const double *current, unsigned n);

/* The neutral current of n phase currents on phases[i] (0..2 = L1..L3, at
 * 0, -120 and +120 degrees), in amperes. */
double pm_neutral(const double *current, const unsigned *phases, unsigned n);

#endif
