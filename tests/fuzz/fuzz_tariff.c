/* fuzz_tariff.c — a tariff file for reports (src/config/tariff.c): the
 * input is the file; a tariff that loads is then asked for its prices, for
 * a circuit without tags and for one with the tags an override might name. */
#include <stdlib.h>

#include "config/tariff.h"
#include "fuzz.h"

static volatile double sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "customer", "floor", "phase" };
	static const char *const values[] = { "ACME", "2", "L1" };
	const struct pm_tariff_rates *rates;
	struct pm_tariff *t = NULL;
	char *errors = NULL;
	double sum = 0;

	fuzz_write(fuzz_path("tariff.json"), data, size);
	if (pm_tariff_load(&t, fuzz_path("tariff.json"), &errors) == 0) {
		for (size_t n_tags = 0; n_tags <= 3; n_tags += 3) {
			rates = pm_tariff_rates_for(t, n_tags, keys, values);
			for (int wday = -1; wday <= 7; wday++)
				for (int minute = -1; minute <= 1440; minute += 37)
					sum += pm_tariff_price(rates, wday, minute);
			sum += rates->standing_charge;
		}
		for (size_t i = 0; i < t->n_overrides; i++)
			sum += pm_tariff_price(&t->overrides[i].rates, 1, 0);
		pm_tariff_free(t);
	}
	free(errors);
	sink = sum;	/* the prices are used: none of the work is optimised away */
	return 0;
}
