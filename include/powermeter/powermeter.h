/* powermeter.h — libpowermeter's public API: load a config, read HDHK
 * current modules, iterate and format the readings. See libpowermeter(3).
 *
 * Build with:  cc prog.c $(pkg-config --cflags --libs powermeter)
 *
 * Error contract: every function returning int returns 0 on success (or a
 * documented non-negative value) or a negative error code: -errno for
 * system errors (-ETIMEDOUT, -ENOENT, -EACCES, -EBUSY, -ENOMEM, ...) or
 * -PM_E* below for protocol and config errors. pm_strerror() turns either
 * into text. Output parameters are left untouched on failure.
 *
 * Ownership: whatever a pm_*_load/pm_read/pm_*_format call hands out is the
 * caller's, to be released with the matching pm_*_free() or free(3);
 * pointers returned by getters borrow from the object they came from.
 *
 * Threads: these functions keep no global state, never write to stdout or
 * stderr and install no signal handlers. Objects are never changed after
 * they are built, so one pm_config or pm_readings may be read by several
 * threads at once; freeing it must wait until they are done.
 * pm_config_load() reads the environment, so it must not race setenv(3).
 */
#ifndef POWERMETER_H
#define POWERMETER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes: the soname's major, libpowermeter.so.1.
 * Later versions of ABI 1 only add functions, enum values (at the end) and
 * struct pm_value members (at its end). */
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
	PM_ENOTREG,	/* since 0.2: a file to read is not a regular file (a
			   FIFO, a device, a socket) and was not read */
};

/* A short English text for an error code, negative (as returned) or
 * positive: "CRC error in the answer", "Connection timed out", ...
 * Unknown codes give a generic text. Never NULL, never to be freed:
 * static storage, or for an errno the C library does not know, its
 * per-thread buffer that the thread's next call may reuse. Thread-safe. */
const char *pm_strerror(int err);

/* The library's version as text, e.g. "0.1.0": the version of the package
 * it was built from (not PM_API_VERSION). Static storage; thread-safe. */
const char *pm_version(void);

/* ---- config ----------------------------------------------------------- */

/* A loaded configuration: devices, their inputs and settings. Opaque. */
typedef struct pm_config pm_config;

/* Loads and validates the config at 'path': the seed's JSON array form or
 * the object form (see powermeter.json(5)). NULL means the default,
 * /etc/powermeter/powermeter.json, falling back to the seed's
 * /etc/powermeter/powermeter_config.json when that is missing. The seed's
 * influx.conf beside the file is read too. Reads the environment variables
 * STATE_DIRECTORY, RUNTIME_DIRECTORY and CREDENTIALS_DIRECTORY.
 *
 * Returns 0 with *cfg set to a new config (free it with pm_config_free()),
 * or:
 *   -PM_ECONFIG  the file is not a valid config. If 'errors' is not NULL,
 *                *errors receives a malloc'd, NUL-terminated text with one
 *                line per problem, each naming the file and the JSON path
 *                ("powermeter.json: [1].inputs[3].ratio: expected a number,
 *                got \"x\""); the caller frees it with free(3);
 *   -ENOENT, -EACCES, ...  the file could not be read;
 *   -PM_ENOTREG  the file is not a regular file (a FIFO, a device): it
 *                was neither waited on nor read;
 *   -ENOMEM.
 * On any failure *cfg is untouched, and so is *errors unless the result is
 * -PM_ECONFIG. Does not touch any serial port. Thread-safe.
 *
 * The InfluxDB secrets (token_file, password_file, systemd credentials)
 * are not read: reading modules never needs them, and a user who may not
 * read them (the Zabbix agent's) can still load the config. */
int pm_config_load(pm_config **cfg, const char *path, char **errors);

/* Frees a config from pm_config_load(). NULL is ignored. Readings taken
 * from it (pm_readings) stay valid: they hold their own copies. */
void pm_config_free(pm_config *cfg);

/* The number of devices (modules) in the config. */
size_t pm_config_device_count(const pm_config *cfg);

/* The "id" of the device at 'index' (0 .. pm_config_device_count() - 1),
 * in file order: a non-negative number. Returns -EINVAL when 'index' is
 * out of range. */
int pm_config_device_id(const pm_config *cfg, size_t index);

/* ---- readings ----------------------------------------------------------- */

/* One configured input's reading, as returned by pm_readings_get(). The
 * strings stay valid as long as the pm_readings they came from. Reach
 * values only through pm_readings_get(): the struct may grow at its end in
 * later versions of ABI 1, so do not rely on sizeof(struct pm_value). */
struct pm_value {
	int id;			/* stable running index over all configured
				   inputs, the seed's "id" */
	int device_id;		/* the device's "id" from the config */
	const char *port;	/* serial port of the device */
	int address;		/* Modbus unit id of the device */
	char input;		/* channel letter 'a'..'p' */
	int channel;		/* channel number 1..16 */
	const char *name;	/* the input's name from the config (UTF-8) */
	double current;		/* amperes: raw register x ratio, unrounded */
	double frequency;	/* Hz, or NaN when not read (the device's
				   "frequency" is not true) */
	int64_t time_ms;	/* Unix time in ms when the answer arrived
				   (or the daemon read it, for a snapshot) */
	int status;		/* 0, or the device's negative error code: then
				   current and frequency are NaN; or -ERANGE
				   when this input's current is not a finite
				   number (a config powermeter check accepts
				   never gives one), its values NaN too */
	/* Since 0.2 (appended: the struct is only ever read through
	 * pm_readings_get()). Estimates: the module measures current only. */
	double power;		/* W: current x the circuit's configured
				   voltage x power factor; NaN when failed */
	double energy;		/* Wh counter kept by powermeterd, or NaN
				   (read from the bus, or not kept) */
	double charge;		/* Ah counter kept by powermeterd, or NaN */
	const char *phase;	/* "L1", "L2", "L3", or NULL when not set */
};

/* The result of one pm_read(): a value for every configured input of the
 * devices read, in config order, plus why each failed device failed.
 * Opaque and immutable. */
typedef struct pm_readings pm_readings;

/* Where pm_read() takes its values from. */
enum pm_source {
	PM_SOURCE_AUTO = 0,	/* the daemon's snapshot when it is fresh,
				   else the bus when no daemon holds it */
	PM_SOURCE_BUS,		/* always the serial bus */
	PM_SOURCE_SNAPSHOT,	/* only the daemon's snapshot */
};

/* Reads every device of 'cfg' (device_id < 0) or only the one whose "id"
 * is 'device_id'. From the bus, it opens and locks each port (a port held
 * by powermeterd or another process fails that port's devices with -EBUSY
 * at once), reads its devices in turn and closes it again; this blocks for
 * the read, at most about each device's "timeout". From the snapshot
 * (/run/powermeter/values.json or the config's "snapshot") it does not
 * touch any port and returns in milliseconds.
 *
 * Returns 0 with *out set (free it with pm_readings_free()) when every
 * device read was attempted, even if some failed: check each value's
 * status, pm_readings_failed() and pm_readings_error(). Otherwise *out is
 * untouched and the result is -ENOENT (no device has that id), -EINVAL
 * (bad 'source'), -ENOMEM, or with PM_SOURCE_SNAPSHOT: -PM_ENOSNAPSHOT (no
 * snapshot for this config: no daemon runs), -PM_ESTALE (the daemon has
 * not written it for 3 intervals), -PM_EFRAME (the file is not a
 * snapshot), -PM_ENOTREG (not a regular file: a FIFO there is never
 * waited on) or -errno reading it. 'cfg' is only read: several threads may
 * read with one config at once, but reads of the same port from two
 * threads or processes exclude each other (-EBUSY). */
int pm_read(const pm_config *cfg, int device_id, enum pm_source source,
	    pm_readings **out);

/* Frees readings from pm_read(), with every string they handed out. NULL
 * is ignored. */
void pm_readings_free(pm_readings *r);

/* The number of values: every configured input of the devices read,
 * failed devices included. */
size_t pm_readings_count(const pm_readings *r);

/* The value at 'index' (0 .. pm_readings_count() - 1), in config order, or
 * NULL when 'index' is out of range. Borrowed from 'r'. */
const struct pm_value *pm_readings_get(const pm_readings *r, size_t index);

/* The number of devices that failed; their values carry status < 0. */
size_t pm_readings_failed(const pm_readings *r);

/* A one-line description of why the device with that "id" failed, for
 * people: "device 1 on /dev/ttyUSB0 address 1: no answer within 1.0 s
 * (timeout) — check wiring A/B, 12 V supply, address and baud rate".
 * NULL when it did not fail or was not read. Borrowed from 'r' (UTF-8). */
const char *pm_readings_error(const pm_readings *r, int device_id);

/* Text formats for pm_readings_format(). */
enum pm_format {
	PM_FORMAT_JSON,		/* the seed's array, as Python's
				   json.dumps(values, indent=4) prints it:
				   {"id", "device_id", "input", "name",
				   "current": rounded to 2 decimals} */
	PM_FORMAT_TABLE,	/* for people: one row per input */
	PM_FORMAT_INFLUX,	/* InfluxDB line protocol, ms precision: tags
				   device_id, input, name, unique_id, and the
				   circuit's phase and tags where configured;
				   fields current, frequency (when read),
				   power, energy and charge (when known) */
	PM_FORMAT_CIRCUITS,	/* since 0.2: PM_FORMAT_JSON plus "phase",
				   "power" (W), "energy" (Wh) and "charge"
				   (Ah) where known: estimates from the
				   configured voltage and power factor */
};

/* Formats the values with status 0 (failed devices are left out, as the
 * seed did) into a malloc'd, NUL-terminated text: *out, which the caller
 * frees with free(3). 'measurement' is the InfluxDB measurement for
 * PM_FORMAT_INFLUX (NULL: "powermeter") and is ignored otherwise. JSON has
 * no trailing newline ("[]" when nothing was read); the other formats end
 * each line with one. Returns 0, -EINVAL (unknown format), -ENOMEM or
 * -PM_ETOOBIG; *out is untouched on failure. */
int pm_readings_format(const pm_readings *r, enum pm_format format,
		       const char *measurement, char **out);

#ifdef __cplusplus
}
#endif
#endif
