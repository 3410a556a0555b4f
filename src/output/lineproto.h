/* lineproto.h — InfluxDB line protocol for readings, in the seed's schema:
 * measurement "powermeter", tags device_id, input, name, unique_id, and only
 * where configured the circuit's phase and tags (all sorted by key, so a
 * seed user's series keep their identity); fields current (amperes),
 * frequency (Hz) when read, power (W, estimated) and the energy (Wh) and
 * charge (Ah) counters where the daemon keeps them; timestamp in ms. Each element is escaped by its own rule (InfluxDB line protocol
 * reference):
 *   measurement        comma, space
 *   tag key and value  comma, equals sign, space
 *   field key          comma, equals sign, space
 *   string field value double quote, backslash
 * A line feed or any other control character cannot be represented in a
 * tag; it is written as a space. Backslashes are written so that InfluxDB
 * (1.x and 2.x) reads them back as they were, except a backslash at the end
 * of an element (left out: InfluxDB rejects it) and an odd run of them right
 * before a space, comma or equals sign (read back one longer). An empty tag
 * value is left out (InfluxDB rejects it). Numbers are written in the
 * shortest form that reads back to the same double.
 */
#ifndef PM_LINEPROTO_H
#define PM_LINEPROTO_H

#include <stdint.h>

#include "config/config.h"
#include "meter/sample.h"
#include "util/buf.h"

#define PM_LP_MEASUREMENT "powermeter"

/* Appends one line per configured input of the sample's device. 'measurement'
 * NULL means "powermeter". Returns 0, -EINVAL (empty measurement), -ENOMEM or
 * -PM_ETOOBIG; on failure 'b' is as it was (never half a sample). */
int pm_lp_append_sample(struct pm_buf *b, const struct pm_config *cfg,
			const char *measurement, const struct pm_sample *s);

/* One point: a circuit at one instant. NaN fields are left out; a NaN
 * current writes no line at all. */
struct pm_lp_point {
	int device_id;
	char input;			/* 'a'..'p' */
	const char *name;
	int unique_id;
	size_t n_tags;			/* besides the four above, sorted by key */
	const struct pm_tag *tags;
	double current, frequency, power, energy, charge;
	int64_t time_ms;
};

/* Appends one point's line. Same contract. */
int pm_lp_append_point(struct pm_buf *b, const char *measurement,
		       const struct pm_lp_point *pt);

/* Appends the line of one reading (status 0) with the circuit's point tags
 * (sorted by key) — what pm_readings_format() writes. Same contract. */
int pm_lp_append_value(struct pm_buf *b, const char *measurement,
		       const struct pm_value *v, size_t n_tags,
		       const struct pm_tag *tags);

/* The element escapers, each appending 's' escaped; 0 or an error with 'b'
 * unchanged. */
int pm_lp_measurement(struct pm_buf *b, const char *s);
int pm_lp_tag(struct pm_buf *b, const char *s);	/* tag key or value */
int pm_lp_field_key(struct pm_buf *b, const char *s);
int pm_lp_string_value(struct pm_buf *b, const char *s);	/* with quotes */

#endif
