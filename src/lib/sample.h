/* sample.h — one module's reading as it comes off the bus: raw registers and
 * the time the answer arrived. Converting to amperes (x ratio) happens where
 * a sample is formatted, so a sample never depends on who formats it. */
#ifndef PM_SAMPLE_H
#define PM_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <powermeter/powermeter.h>

struct pm_sample {
	size_t device;			/* index into pm_config.devices */
	int64_t time_ms;		/* CLOCK_REALTIME, Unix ms */
	uint16_t current[PM_CHANNELS];	/* registers 8..23, 0.01 A units */
	uint16_t frequency[PM_CHANNELS];/* registers 24..39, 0.1 Hz units */
	bool has_frequency;
};

#endif
