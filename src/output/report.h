/* report.h — billing figures from the ledger (ledger.h) for a period of
 * local time: energy, peak demand, coverage and cost per group of circuits
 * (`powermeter report`). Computes only; the caller prints.
 *
 * What a figure means (powermeter(1), report):
 *   energy    a circuit's rows with boundary time in (from, to], each the
 *             counter minus the counter of the circuit's row before it (which
 *             may lie at or before 'from'); a circuit's very first row, or a
 *             row whose counter went down, has no such difference: it only
 *             starts a new baseline. Circuits are identities (device id,
 *             channel), whatever their names.
 *   peak      the group's highest average power over a clock-aligned 15
 *             minutes: each row's energy is spread evenly over its interval
 *             and summed per window (rows of intervals over 15 minutes give
 *             their interval's average: 'peak_resolution_s').
 *   coverage  each circuit of a group is expected for the whole period (a
 *             moment belonging to the group of the row that closes it, or of
 *             its last row after that); metered is what its rows' intervals
 *             cover less their unmetered seconds. Boundaries missing (no
 *             daemon), time before a circuit's first row or after its last,
 *             and its baseline rows count as unmetered.
 *   cost      each row's energy at the price of its interval's local start
 *             (the rates for that circuit's tags), a standing charge per
 *             group per local calendar day of the period (fractions for
 *             parts of days), VAT on the sum; money rounded to 0.01 per
 *             group, the total the sum of the groups' rounded figures. */
#ifndef PM_OUTPUT_REPORT_H
#define PM_OUTPUT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/tariff.h"
#include "output/ledger.h"

/* Peak demand is the highest average over this many seconds. */
#define PM_REPORT_PEAK_WINDOW 900

enum pm_report_by {
	PM_REPORT_BY_CIRCUIT,
	PM_REPORT_BY_PHASE,
	PM_REPORT_BY_FEED,
	PM_REPORT_BY_TAG,
};

struct pm_report_query {
	int64_t from, to;		/* Unix s: [from, to), from < to */
	enum pm_report_by by;
	const char *tag;		/* PM_REPORT_BY_TAG: the tag's key */
	const struct pm_tariff *tariff;	/* NULL: no cost */
};

struct pm_report_cost {
	double energy;			/* each rounded to 0.01 */
	double standing;
	double net;			/* energy + standing */
	double vat;
	double total;			/* net + vat */
};

struct pm_report_group {
	char *label;			/* NULL: circuits without the phase,
					 * feed or tag ("(none)") */
	int device_id;			/* PM_REPORT_BY_CIRCUIT: the identity; */
	char channel;			/* label is its newest name in the period */
	size_t n_circuits;		/* identities with rows in the group */
	double energy_kwh;
	double peak_kw;			/* NaN: no window had an energy */
	int64_t peak_start;		/* Unix s: the window's start */
	double expected_s;		/* circuit-seconds of the period */
	double metered_s;		/* of those, metered */
	double standing_days;		/* calendar days of the period */
	double standing_charge;		/* per day: the group's rates' */
	struct pm_report_cost cost;	/* zeros without a tariff */
};

struct pm_report {
	int64_t from, to;
	size_t n_rows;			/* readings in (from, to] */
	size_t n_resets;		/* rows whose counter went down */
	unsigned peak_resolution_s;	/* PM_REPORT_PEAK_WINDOW, or the longest
					 * interval of a row when over it */
	size_t n_groups;
	struct pm_report_group *groups;	/* circuit: by device id and channel;
					 * else by label, "(none)" last */
	struct pm_report_group total;	/* label NULL; its peak is that of all
					 * circuits together */
};

/* The report for 'q' from the ledger 'l' (opened PM_LEDGER_READ), read in
 * one transaction (a consistent view while the daemon writes). 0 with *out
 * set, or, with 'err' (size bytes) saying why in a line for a person:
 *   -ENODATA    no readings in the period ("no ledger rows between ...")
 *   -ENOKEY     PM_REPORT_BY_TAG and no circuit of the ledger had that tag
 *   -PM_EFRAME  the ledger is damaged (a reading without its boundary or
 *               description, a query SQLite refuses)
 *   -EBUSY      locked for longer than the busy timeout
 *   -ENOMEM, -EINVAL (a bad query) */
int pm_report_run(struct pm_ledger *l, const struct pm_report_query *q,
		  struct pm_report **out, char *err, size_t size);
void pm_report_free(struct pm_report *r);

/* Local time (TZ or the system zone) "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM" or
 * "YYYY-MM-DDTHH:MM:SS" into Unix s. A time that falls twice (daylight
 * saving ends) is its first; one that does not exist is -ERANGE. 0, or
 * -EINVAL (malformed, or no such date), *t untouched on failure. */
int pm_report_parse_time(const char *s, int64_t *t);
/* "YYYY-MM" into its local [first midnight, next month's first midnight).
 * 0 or -EINVAL. */
int pm_report_parse_month(const char *s, int64_t *from, int64_t *to);

#endif
