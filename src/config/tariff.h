/* tariff.h — a tariff file for `powermeter report` (JSON): currency, VAT,
 * a standing charge per day and prices per kWh, with time-of-use windows
 * in local time and per-tag overrides (one customer's contract price):
 *
 *   {"currency": "EUR", "vat": 21, "standing_charge": 0.30,
 *    "rates": [{"price": 0.25, "days": "mon-fri", "from": "07:00",
 *               "to": "22:00"},
 *              {"price": 0.12}],
 *    "overrides": {"customer=ACME": {"rates": [{"price": 0.20}]}}}
 *
 * A rate with "days", "from" or "to" is a window: "days" a list like
 * "mon-fri", "sat,sun" or "fri-mon" (default every day), "from"/"to" local
 * "HH:MM" (default 00:00..24:00; "to" at or before "from" crosses midnight,
 * belonging to the day it starts on, so "to" equal to "from" is a whole
 * day from that time, not an empty window). At most one rate has none of
 * them: it covers the rest of the week. Windows that overlap, or leave time
 * uncovered, are errors naming the file and the JSON path, as are unknown
 * keys and values out of range (price >= 0, vat 0..100, standing_charge
 * >= 0). An override may also set its own "standing_charge". */
#ifndef PM_TARIFF_H
#define PM_TARIFF_H

#include <stdbool.h>
#include <stddef.h>

#define PM_TARIFF_WEEK_MINUTES (7 * 24 * 60)

struct pm_tariff_rates {
	/* the price per kWh of every minute of the week, Monday 00:00 first
	 * (local time): what the windows and the default rate say */
	float *price;			/* PM_TARIFF_WEEK_MINUTES entries */
	double standing_charge;		/* per day */
};

struct pm_tariff_override {
	char *key, *value;		/* "customer=ACME" */
	struct pm_tariff_rates rates;
};

struct pm_tariff {
	char *path;
	char *currency;			/* default "" */
	double vat;			/* % */
	struct pm_tariff_rates rates;
	size_t n_overrides;
	struct pm_tariff_override *overrides;	/* in file order */
};

/* Loads 'path'. 0, or -PM_ECONFIG with every problem in *errors (malloc'd,
 * one per line, "file: path: message"), or -errno (*errors says why). */
int pm_tariff_load(struct pm_tariff **out, const char *path, char **errors);
void pm_tariff_free(struct pm_tariff *t);

/* The rates for a circuit with these tags: the first override (in file
 * order) whose key has that value among the tags, else the tariff's. */
const struct pm_tariff_rates *pm_tariff_rates_for(const struct pm_tariff *t,
						  size_t n_tags,
						  const char *const *keys,
						  const char *const *values);

/* The price per kWh at local weekday 'wday' (0 = Sunday, as struct tm) and
 * minute of the day 'minute' (0..1439); NaN outside those ranges. */
double pm_tariff_price(const struct pm_tariff_rates *r, int wday, int minute);

#endif
