/* sample.h — one module's reading as it comes off the bus: its raw current
 * and frequency counts per channel and the time the answer arrived, and the
 * one place those counts become amperes, hertz and (estimated) watts. A sample does not know
 * which registers they came from: the device's driver does. */
#ifndef PM_SAMPLE_H
#define PM_SAMPLE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <powermeter/powermeter.h>

#include "config/config.h"
#include "device/driver.h"

struct pm_sample {
	size_t device;			/* index into pm_config.devices */
	int64_t time_ms;		/* CLOCK_REALTIME, Unix ms */
	uint16_t current[PM_CHANNELS];	/* current counts per channel */
	uint16_t frequency[PM_CHANNELS];/* frequency counts per channel */
	bool has_frequency;
	/* The daemon's energy counters as outputs show them (energy.h), per
	 * channel; NaN where not kept or withheld. */
	bool has_energy;
	double energy_wh[PM_CHANNELS];
	double charge_ah[PM_CHANNELS];
};

/* A current count in amperes: the count times the input's ratio (amperes
 * per count, the CT's). Every output computes this one product, so the
 * snapshot, line protocol and pm_read() give the very same double. */
static inline double pm_amperes(uint16_t raw, double ratio)
{
	return raw * ratio;
}

/* A frequency count in hertz, in the unit of the module's driver. */
static inline double pm_hertz(const struct pm_driver *drv, uint16_t raw)
{
	return pm_block_value(&(drv ? drv : pm_driver_find(NULL))->frequency,
			      raw);
}

/* Input 'in' of sample 's' in amperes (NaN past the module's channels). */
static inline double pm_sample_amperes(const struct pm_sample *s,
				       const struct pm_input *in)
{
	if (in->channel >= PM_CHANNELS)
		return NAN;
	return pm_amperes(s->current[in->channel], in->ratio);
}

/* Power in watts, estimated: the module measures current only, so this is
 * current x the circuit's configured voltage x power factor (apparent power
 * with the default factor of 1). */
static inline double pm_power(double amps, const struct pm_input *in)
{
	return amps * in->voltage * in->power_factor;
}

/* Input 'in' of sample 's' in watts (pm_power()). */
static inline double pm_sample_power(const struct pm_sample *s,
				     const struct pm_input *in)
{
	return pm_power(pm_sample_amperes(s, in), in);
}

/* Input 'in' of sample 's' of device 'dev' in hertz; NaN when the sample
 * has no frequency. */
static inline double pm_sample_hertz(const struct pm_sample *s,
				     const struct pm_device *dev,
				     const struct pm_input *in)
{
	if (!s->has_frequency || in->channel >= PM_CHANNELS)
		return NAN;
	return pm_hertz(dev->driver, s->frequency[in->channel]);
}

#endif
