/* format.h — how readings are printed: the seed's JSON exactly as Python's
 * json.dumps(values, indent=4) prints it, a table for people, line
 * protocol. Numbers are util/numfmt.h's, JSON strings util/jsonstr.h's. */
#ifndef PM_FORMAT_H
#define PM_FORMAT_H

#include <stddef.h>

#include "util/buf.h"

struct pm_readings;

/* The seed's array of the values with status 0, config order:
 * {"id", "device_id", "input", "name", "current": round(amps, 2)}, indented
 * by 4, "[]" when empty, no trailing newline (as json.dumps). */
int pm_format_json(struct pm_buf *b, const struct pm_readings *r);
/* pm_format_json() with, after "name", the circuit's "phase" and after
 * "current" its "power", "energy" and "charge", each only where known. */
int pm_format_circuits(struct pm_buf *b, const struct pm_readings *r);
/* One row per value with status 0: device, port/address, input, name,
 * amperes, Hz (when read), watts and kWh (when known, marked as the
 * estimates they are, with a footnote saying so). Ends with a newline. */
int pm_format_table(struct pm_buf *b, const struct pm_readings *r);
/* Line protocol of the values with status 0 (lineproto.h). */
int pm_format_influx(struct pm_buf *b, const struct pm_readings *r,
		     const char *measurement);

#endif
