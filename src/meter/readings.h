/* readings.h — building a struct pm_readings (the public result of
 * pm_read(), include/powermeter/powermeter.h): one pm_value per configured
 * input, filled from bus samples, the daemon's snapshot or failures. */
#ifndef PM_READINGS_H
#define PM_READINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/sample.h"

/* A device's part of the readings. */
struct pm_readings_device {
	size_t index;		/* into cfg->devices */
	int device_id;
	const char *port;	/* owned by the readings */
	int address;
	int status;		/* 0 read, -ENODATA not (yet) read, or error */
	char *error;		/* malloc'd pm_describe_failure() text */
	size_t first_value;	/* its inputs: values[first_value ..] */
	size_t n_values;
	bool has_frequency;
	const struct pm_driver *driver;	/* the device's (static) */
};

struct pm_readings {
	size_t n_values;
	struct pm_value *values;	/* config order; strings owned here */
	/* per value: what the readings keep of its input (ratio, voltage,
	 * power factor, phase, point tags), for they outlive the config */
	struct pm_input *inputs;
	size_t n_devices;
	struct pm_readings_device *devices;	/* config order */
};

/* One pm_value per configured input of every device, status -ENODATA
 * until filled. NULL on ENOMEM. The readings copy every string they need:
 * they outlive 'cfg'. */
struct pm_readings *pm_readings_new(const struct pm_config *cfg);
/* Only the device with id 'device_id' (NULL: no such device or ENOMEM). */
struct pm_readings *pm_readings_new_device(const struct pm_config *cfg,
					   int device_id);

/* The readings' part for cfg->devices[device]; NULL when not included. */
struct pm_readings_device *pm_readings_device(struct pm_readings *r,
					      size_t device);

/* Fills the inputs of device s->device (index into cfg->devices) from the
 * raw counts (pm_amperes(), pm_hertz(); frequency NaN when not read);
 * status 0, or -ERANGE for an input whose current is not a finite number
 * (its values NaN; any other figure that is not finite becomes NaN).
 * Returns 0 or -ENOENT (device not in r). */
int pm_readings_add_sample(struct pm_readings *r, const struct pm_sample *s);

/* Marks device 'device' (index into cfg->devices) failed with 'err' (< 0):
 * its values get status err and NaN; 'message' (copied, may be NULL) is
 * what pm_readings_error() returns. 0, -ENOENT or -ENOMEM. */
int pm_readings_add_failure(struct pm_readings *r, size_t device, int err,
			    const char *message);

/* Sets one input (by pm_input.id) from already converted values, e.g. from
 * the daemon's snapshot (power follows from the current); frequency,
 * energy and charge NaN when not known. Not finite numbers as in
 * pm_readings_add_sample(). Its device's status becomes 0 unless it
 * failed. 0 or -ENOENT. */
int pm_readings_set_input(struct pm_readings *r, int input_id, double current,
			  double frequency, double energy, double charge,
			  int64_t time_ms);

#endif
