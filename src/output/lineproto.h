/* lineproto.h — InfluxDB line protocol for readings, in the seed's schema:
 * measurement "powermeter", tags device_id, input, name, unique_id (sorted by
 * key), field current (amperes) plus frequency (Hz) when read, timestamp in
 * ms. Each element is escaped by its own rule (InfluxDB line protocol
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

/* Appends the line of one reading (status 0) — what pm_readings_format()
 * writes. Same contract. */
int pm_lp_append_value(struct pm_buf *b, const char *measurement,
		       const struct pm_value *v);

/* The element escapers, each appending 's' escaped; 0 or an error with 'b'
 * unchanged. */
int pm_lp_measurement(struct pm_buf *b, const char *s);
int pm_lp_tag(struct pm_buf *b, const char *s);	/* tag key or value */
int pm_lp_field_key(struct pm_buf *b, const char *s);
int pm_lp_string_value(struct pm_buf *b, const char *s);	/* with quotes */

#endif
