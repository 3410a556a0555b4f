/* powermeter.h — libpowermeter's public API: load a config, read HDHK
 * current modules, iterate and format the readings.
 *
 * Error contract: every function returning int returns 0 on success or a
 * negative error code: -errno for system errors (-ETIMEDOUT, -ENOENT,
 * -EACCES, -EBUSY, -ENOMEM, ...) or -PM_E* below for protocol and config
 * errors. pm_strerror() turns either into text. Output parameters are left
 * untouched on failure. All functions are thread-safe on distinct objects.
 */
#ifndef POWERMETER_H
#define POWERMETER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_API_VERSION 1

/* Datasheet: 16 AC current channels A..P per module. */
#define PM_CHANNELS 16

/* Protocol and config errors, returned negated. Numbered above errno's range,
 * as libmodbus does with MODBUS_ENOBASE. */
enum pm_error {
	PM_EBASE = 0x504d00,
	PM_ECONFIG,	/* the config file is invalid (see the error text) */
	PM_ECRC,	/* an answer failed its CRC check */
	PM_EFRAME,	/* an answer was malformed, short or of the wrong length */
	PM_EUNIT,	/* an answer came from another Modbus unit id */
	PM_EEXCEPTION,	/* the module answered with a Modbus exception */
	PM_ESTALE,	/* the daemon's snapshot is older than 3 intervals */
	PM_ENOSNAPSHOT,	/* no daemon snapshot exists */
	PM_ETOOBIG,	/* a bounded buffer would exceed its cap */
};

/* Text for a negative (or positive) error code; never NULL. */
const char *pm_strerror(int err);

/* ---- config ----------------------------------------------------------- */

typedef struct pm_config pm_config;

/* Loads and validates the config at 'path' (the seed's JSON array form or
 * the object form; see powermeter.json(5)). NULL means the default,
 * /etc/powermeter/powermeter.json. On -PM_ECONFIG, if 'errors' is not NULL
 * it receives a malloc'd text with one line per problem, each naming the
 * file and JSON path; the caller frees it. */
int pm_config_load(pm_config **cfg, const char *path, char **errors);
void pm_config_free(pm_config *cfg);

/* The config's devices in file order. */
size_t pm_config_device_count(const pm_config *cfg);
int pm_config_device_id(const pm_config *cfg, size_t index);

/* ---- readings ----------------------------------------------------------- */

/* One configured input's reading. Strings stay valid as long as the
 * pm_readings they came from. */
struct pm_value {
	int id;			/* stable running index over all configured
				   inputs, the seed's "id" */
	int device_id;		/* the device's "id" from the config */
	const char *port;	/* serial port of the device */
	int address;		/* Modbus unit id of the device */
	char input;		/* channel letter 'a'..'p' */
	int channel;		/* channel number 1..16 */
	const char *name;	/* the input's name from the config */
	double current;		/* amperes: raw register x ratio */
	double frequency;	/* Hz, or NaN when not read */
	int64_t time_ms;	/* Unix time in ms when the answer arrived */
	int status;		/* 0, or the device's negative error code: then
				   current and frequency are NaN */
};

typedef struct pm_readings pm_readings;

/* Where pm_read() takes its values from. */
enum pm_source {
	PM_SOURCE_AUTO = 0,	/* the daemon's snapshot when it is fresh,
				   else the bus when no daemon holds it */
	PM_SOURCE_BUS,		/* always the serial bus */
	PM_SOURCE_SNAPSHOT,	/* only the daemon's snapshot */
};

/* Reads every device of 'cfg' (device_id < 0) or the one with that id.
 * Returns 0 when every device read was attempted, even if some failed:
 * check each pm_value's status or pm_readings_failed(). */
int pm_read(const pm_config *cfg, int device_id, enum pm_source source,
	    pm_readings **out);
void pm_readings_free(pm_readings *r);

size_t pm_readings_count(const pm_readings *r);
const struct pm_value *pm_readings_get(const pm_readings *r, size_t index);
/* Number of devices that failed; their values carry status < 0. */
size_t pm_readings_failed(const pm_readings *r);
/* A one-line description of why a device failed ("device 1 on
 * /dev/ttyUSB0 address 1: no answer within 1.0 s (timeout)"), or NULL when
 * it did not fail. */
const char *pm_readings_error(const pm_readings *r, int device_id);

enum pm_format {
	PM_FORMAT_JSON,		/* the seed's array, json.dumps(indent=4) */
	PM_FORMAT_TABLE,	/* for people */
	PM_FORMAT_INFLUX,	/* InfluxDB line protocol, ms precision */
};

/* Formats the readings that succeeded into a malloc'd, NUL-terminated text
 * (*out, caller frees). 'measurement' is used by PM_FORMAT_INFLUX (NULL for
 * "powermeter"). */
int pm_readings_format(const pm_readings *r, enum pm_format format,
		       const char *measurement, char **out);

#ifdef __cplusplus
}
#endif
#endif
