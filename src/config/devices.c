/* devices.c — "devices" (or the seed's whole file, a list of devices): each
 * module, its line settings and inputs, and the checks across devices. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bus/bus.h"
#include "bus/netconn.h"
#include "config/config.h"
#include "config/parse.h"
#include "config/sections.h"
#include "device/driver.h"

#define DEVICES_MAX 1024
#define TIMEOUT_MAX 60.0
#define DEFAULT_RATIO 0.01	/* datasheet: current registers count 0.01 A */
/* What a current transformer can make of a 16-bit count: from 1 uA per
 * count (65 mA at the register's full scale, below any CT module's
 * resolution) to 1.5 A per count (98 kA at full scale, beyond any
 * building's incomer). Outside that a ratio is a typo, and one like 1e308
 * would make readings no output can carry (infinity). */
#define RATIO_MIN 0.000001
#define RATIO_MAX 1.5

static const char *const device_keys[] = {
	"id", "port", "address", "timeout", "retries", "down_after",
	"baudrate", "parity", "bytesize", "stopbits", "frequency", "model",
	"inputs", "voltage", "power_factor", NULL,
};
static const char *const input_keys[] = {
	"input", "ratio", "name", "voltage", "power_factor", "phase", "breaker",
	"tags", "feed", "load_lost", NULL,
};

/* A device's key found at the top level. */
const char *cfg_devices_elsewhere(const char *key)
{
	if (cfg_is_known(key, device_keys))
		return "a device's settings go inside \"devices\": [ { ... } ]";
	return NULL;
}

/* A key found in a device that belongs in an input or at the top level. */
static const char *device_elsewhere(const char *key)
{
	const char *top[CFG_TOP_KEYS_MAX];

	if (cfg_is_known(key, input_keys))
		return "an input's settings go inside \"inputs\": [ { ... } ]";
	cfg_top_keys(top);
	if (cfg_is_known(key, top))
		return "it belongs at the top level of the object form";
	return NULL;
}

/* What the cross-device checks need to know about each device. */
struct device_meta {
	char path[PATH_CAP];
	bool id_ok, port_ok, address_ok, address_given, line_ok;
};

static void parse_baudrate(struct parse *p, json_object *jd,
			   const char *dpath, struct pm_device *dev,
			   struct device_meta *m)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	long long baud = -1;

	if (!json_object_object_get_ex(jd, "baudrate", &v))
		return;
	cfg_path_key(path, dpath, "baudrate");
	if (json_object_is_type(v, json_type_int)) {
		baud = (long long)json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_string)) {
		/* The seed writes "9600": digits only. */
		const char *s = json_object_get_string(v);
		char *end;

		errno = 0;
		if (isdigit((unsigned char)s[0]))
			baud = strtoll(s, &end, 10);
		if (!isdigit((unsigned char)s[0]) || errno || *end) {
			cfg_err(p, path, "expected a baud rate such as 9600, got %s",
				cfg_describe(v, d));
			m->line_ok = false;
			return;
		}
	} else {
		cfg_err(p, path, "expected a baud rate such as 9600, got %s",
			cfg_describe(v, d));
		m->line_ok = false;
		return;
	}
	if (baud >= 0 && baud <= INT32_MAX && pm_line_baud_ok((long)baud)) {
		dev->line.baud = (int)baud;
		return;
	}
	cfg_err(p, path, "%s is not a baud rate the module supports (" PM_LINE_BAUD_LIST ")",
		cfg_describe(v, d));
	m->line_ok = false;
}

static void parse_line(struct parse *p, json_object *jd, const char *dpath,
		       struct pm_device *dev, struct device_meta *m)
{
	char path[PATH_CAP], d[DESC_CAP];
	json_object *v;
	int64_t x;
	int r;

	parse_baudrate(p, jd, dpath, dev, m);

	if (json_object_object_get_ex(jd, "parity", &v)) {
		const char *s = json_object_is_type(v, json_type_string) ?
			json_object_get_string(v) : NULL;
		int c = s && s[0] && !s[1] ? toupper((unsigned char)s[0]) : 0;

		cfg_path_key(path, dpath, "parity");
		if (c == 'N' || c == 'E' || c == 'O') {
			dev->line.parity = (char)c;
		} else {
			cfg_err(p, path, "%s is not a parity the module supports (\"N\", \"E\" or \"O\")",
				cfg_describe(v, d));
			m->line_ok = false;
		}
	}

	r = cfg_get_int(p, jd, dpath, "bytesize", INT64_MIN, INT64_MAX, &x);
	if (r == SET && x != 8) {
		cfg_path_key(path, dpath, "bytesize");
		cfg_err(p, path, "%lld data bits are not supported: the module uses 8",
			(long long)x);
		r = BAD;
	}
	if (r == BAD)
		m->line_ok = false;

	r = cfg_get_int(p, jd, dpath, "stopbits", INT64_MIN, INT64_MAX, &x);
	cfg_path_key(path, dpath, "stopbits");
	if (r == SET && x != 1 && x != 2) {
		cfg_err(p, path, "%lld stop bits are not supported (1 or 2)",
			(long long)x);
		r = BAD;
	}
	if (r == SET)
		dev->line.stop_bits = (int)x;
	if (r == BAD)
		m->line_ok = false;

	if (m->line_ok && !pm_line_framing(&dev->line)) {
		cfg_err(p, path, "parity %c with %d stop bits is not a framing the module supports (" PM_LINE_FRAMING_LIST ")",
			dev->line.parity, dev->line.stop_bits);
		m->line_ok = false;
	}
}

static void parse_input(struct parse *p, json_object *ji, const char *ipath,
			struct pm_device *dev, struct pm_input *in,
			int *listed_at, size_t index)
{
	char path[PATH_CAP], d[DESC_CAP];
	unsigned channels = dev->driver ? dev->driver->channels : PM_CHANNELS;
	char last = (char)('a' + channels - 1);
	json_object *v;
	int channel = -1;

	in->ratio = DEFAULT_RATIO;
	/* what cfg_circuit_input sets, for an input that never gets there */
	in->feed = -1;
	in->load_lost_given = -1;
	in->load_lost_below = in->load_lost_hold = NAN;
	if (!json_object_is_type(ji, json_type_object)) {
		cfg_err(p, ipath, "expected an input like {\"input\": \"a\", \"name\": \"Kitchen\"}, got %s",
			cfg_describe(ji, d));
		return;
	}
	cfg_check_keys(p, ji, ipath, input_keys, NULL);

	cfg_path_key(path, ipath, "input");
	if (!json_object_object_get_ex(ji, "input", &v)) {
		cfg_missing(p, ipath, "input", "the channel: a letter a..p or a number 1..16");
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		int c = tolower((unsigned char)s[0]);

		if (s[0] && !s[1] && c >= 'a' && c <= last)
			channel = c - 'a';
		else
			cfg_err(p, path, "%s is not a channel (a..%c or 1..%u)",
				cfg_describe(v, d), last, channels);
	} else if (json_object_is_type(v, json_type_int)) {
		int64_t x = json_object_get_int64(v);

		if (x >= 1 && x <= (int64_t)channels)
			channel = (int)x - 1;
		else
			cfg_err(p, path, "%s is not a channel (a..%c or 1..%u)",
				cfg_describe(v, d), last, channels);
	} else {
		cfg_err(p, path, "expected a channel letter (a..%c) or number (1..%u), got %s",
			last, channels, cfg_describe(v, d));
	}
	if (channel >= 0 && listed_at[channel] >= 0) {
		cfg_err(p, path, "channel %c is listed twice (also at inputs[%d])",
			pm_channel_letter((unsigned)channel), listed_at[channel]);
	} else if (channel >= 0) {
		listed_at[channel] = (int)index;
		in->channel = (unsigned)channel;
	}

	if (cfg_get_number(p, ji, ipath, "ratio", &in->ratio) == SET &&
	    !(in->ratio >= RATIO_MIN && in->ratio <= RATIO_MAX))
		cfg_out_of_range(p, ji, ipath, "ratio",
				 "0.000001..1.5 amperes per count, 0.01 for the stock CT");

	if (cfg_get_string(p, ji, ipath, "name", S_NAME, &in->name) == ABSENT &&
	    channel >= 0) {
		char def[16];

		(void)snprintf(def, sizeof(def), "Input %c",
			       pm_channel_letter((unsigned)channel));
		in->name = cfg_strdup(p, def);
	}
	cfg_circuit_input(p, ji, ipath, in);
}

static void parse_inputs(struct parse *p, json_object *jd, const char *dpath,
			 struct pm_device *dev)
{
	char path[PATH_CAP], d[DESC_CAP];
	unsigned channels = dev->driver ? dev->driver->channels : PM_CHANNELS;
	int listed_at[PM_CHANNELS];
	json_object *ja;
	size_t n;

	if (!json_object_object_get_ex(jd, "inputs", &ja)) {
		cfg_missing(p, dpath, "inputs", "the list of channels to read, e.g. [{\"input\": \"a\"}]");
		return;
	}
	cfg_path_key(path, dpath, "inputs");
	if (!json_object_is_type(ja, json_type_array)) {
		cfg_err(p, path, "expected a list of inputs [ {...}, ... ], got %s",
			cfg_describe(ja, d));
		return;
	}
	n = json_object_array_length(ja);
	if (n == 0) {
		cfg_err(p, path, "is empty: list at least one input");
		return;
	}
	if (n > channels) {
		cfg_err(p, path, "lists %zu inputs, but the module has %u channels",
			n, channels);
		return;
	}
	dev->inputs = calloc(n, sizeof(*dev->inputs));
	if (!dev->inputs) {
		p->nomem = true;
		return;
	}
	dev->n_inputs = n;
	for (size_t i = 0; i < PM_CHANNELS; i++)
		listed_at[i] = -1;
	for (size_t i = 0; i < n; i++) {
		char ipath[PATH_CAP];

		cfg_path_index(ipath, path, i);
		parse_input(p, json_object_array_get_idx(ja, i), ipath, dev,
			    &dev->inputs[i], listed_at, i);
	}
}

static void parse_device(struct parse *p, json_object *jd, struct pm_device *dev,
			 struct device_meta *m)
{
	const char *dpath = m->path;
	char path[PATH_CAP], d[DESC_CAP], *model = NULL, why[256];
	int64_t x;
	int r;

	dev->id = -1;
	dev->address = 1;
	dev->line = PM_LINE_DEFAULT;
	dev->timeout = PM_DEFAULT_TIMEOUT;
	dev->retries = PM_BUS_RETRIES_DEFAULT;
	dev->down_after = PM_DEFAULT_DOWN_AFTER;
	dev->driver = pm_driver_find(NULL);
	dev->voltage = dev->power_factor = NAN;
	m->line_ok = true;
	if (!json_object_is_type(jd, json_type_object)) {
		cfg_err(p, dpath, "expected a device like {\"id\": 1, \"port\": \"/dev/ttyUSB0\", \"inputs\": [...]}, got %s",
			cfg_describe(jd, d));
		return;
	}
	cfg_check_keys(p, jd, dpath, device_keys, device_elsewhere);

	r = cfg_get_int(p, jd, dpath, "id", 0, INT_MAX, &x);
	if (r == ABSENT)
		cfg_missing(p, dpath, "id", "the device's number, e.g. 1");
	if (r == SET) {
		dev->id = (int)x;
		m->id_ok = true;
	}

	r = cfg_get_string(p, jd, dpath, "port", 0, &dev->port);
	if (r == ABSENT)
		cfg_missing(p, dpath, "port", "the serial port, e.g. /dev/ttyUSB0");
	m->port_ok = r == SET;
	if (r == SET && pm_net_check(dev->port, why, sizeof(why)) < 0) {
		cfg_path_key(path, dpath, "port");
		cfg_err(p, path, "\"%s\": %s", cfg_show_key(dev->port, d), why);
		m->port_ok = false;
	}

	r = cfg_get_int(p, jd, dpath, "address", INT64_MIN, INT64_MAX, &x);
	m->address_given = r != ABSENT;
	m->address_ok = r != BAD;
	if (r == SET && (x < PM_ADDRESS_MIN || x > PM_ADDRESS_MAX)) {
		cfg_path_key(path, dpath, "address");
		cfg_err(p, path, "%lld is not a Modbus unit id (%d..%d)",
			(long long)x, PM_ADDRESS_MIN, PM_ADDRESS_MAX);
		m->address_ok = false;
	} else if (r == SET) {
		dev->address = (int)x;
	}

	(void)cfg_get_seconds(p, jd, dpath, "timeout", 0, TIMEOUT_MAX, &dev->timeout);
	if (cfg_get_int(p, jd, dpath, "retries", 0, PM_BUS_RETRIES_MAX,
			&x) == SET)
		dev->retries = (unsigned)x;
	if (cfg_get_int(p, jd, dpath, "down_after", 1, PM_DOWN_AFTER_MAX,
			&x) == SET)
		dev->down_after = (unsigned)x;
	parse_line(p, jd, dpath, dev, m);
	(void)cfg_get_bool(p, jd, dpath, "frequency", &dev->frequency);
	cfg_circuit_estimate(p, jd, dpath, &dev->voltage, &dev->power_factor);

	if (cfg_get_string(p, jd, dpath, "model", 0, &model) == SET && model) {
		dev->driver = pm_driver_find(model);
		if (!dev->driver) {
			char list[256];
			size_t len = 0;

			list[0] = '\0';
			for (size_t i = 0; pm_drivers[i] && len < sizeof(list); i++) {
				int w = snprintf(list + len, sizeof(list) - len,
						 "%s%s", i ? ", " : "",
						 pm_drivers[i]->model);

				if (w < 0)
					break;
				len += (size_t)w;
			}
			cfg_path_key(path, dpath, "model");
			cfg_err(p, path, "unknown module type \"%s\" (known: %s)",
				cfg_show_key(model, d), list);
		}
	}
	free(model);
	if (dev->driver)
		parse_inputs(p, jd, dpath, dev);
}

/* Devices sharing a port are one RS-485 bus: distinct addresses, one set
 * of line settings. Each device is compared with the first one on its port
 * (line) and every earlier one (address, id). */
static void check_devices(struct parse *p, const struct pm_config *cfg,
			  const struct device_meta *meta)
{
	for (size_t i = 0; i < cfg->n_devices; i++) {
		const struct pm_device *a = &cfg->devices[i];
		const struct device_meta *ma = &meta[i];
		bool id_done = false, addr_done = false, line_done = false;
		char path[PATH_CAP];

		for (size_t j = 0; j < i; j++) {
			const struct pm_device *b = &cfg->devices[j];
			const struct device_meta *mb = &meta[j];

			if (!id_done && ma->id_ok && mb->id_ok && a->id == b->id) {
				cfg_path_key(path, ma->path, "id");
				cfg_err(p, path, "%d is already the id of the device at %s",
					a->id, mb->path[0] ? mb->path : "the top");
				id_done = true;
			}
			/* One bus under two names (a udev symlink and the
			 * tty) is one bus. */
			if (!ma->port_ok || !mb->port_ok ||
			    !pm_bus_same(a->port, b->port))
				continue;
			if (!addr_done && ma->address_ok && mb->address_ok &&
			    a->address == b->address) {
				cfg_path_key(path, ma->path, "address");
				cfg_err(p, path, "%d is already used by device %d on %s%s",
					a->address, b->id, a->port,
					ma->address_given ? "" :
					" (the default: give each module on a shared port its own \"address\")");
				addr_done = true;
			}
			if (line_done || !ma->line_ok || !mb->line_ok)
				continue;
			line_done = true;
			if (a->line.baud != b->line.baud) {
				cfg_path_key(path, ma->path, "baudrate");
				cfg_err(p, path, "%d differs from device %d on the same port %s (%d): modules on one bus need the same line settings",
					a->line.baud, b->id, a->port, b->line.baud);
			}
			if (a->line.parity != b->line.parity) {
				cfg_path_key(path, ma->path, "parity");
				cfg_err(p, path, "\"%c\" differs from device %d on the same port %s (\"%c\"): modules on one bus need the same line settings",
					a->line.parity, b->id, a->port, b->line.parity);
			}
			if (a->line.stop_bits != b->line.stop_bits) {
				cfg_path_key(path, ma->path, "stopbits");
				cfg_err(p, path, "%d differs from device %d on the same port %s (%d): modules on one bus need the same line settings",
					a->line.stop_bits, b->id, a->port, b->line.stop_bits);
			}
		}
	}
}

/* The list of devices 'ja' at 'path': "devices", or "" for the seed's file,
 * which is that list alone. */
void cfg_devices_list(struct parse *p, struct pm_config *cfg, json_object *ja,
		      const char *path)
{
	struct device_meta *meta;
	size_t n = json_object_array_length(ja);
	int next_id = 0;

	if (n == 0) {
		cfg_err(p, path, "no devices: list at least one module");
		return;
	}
	if (n > DEVICES_MAX) {
		cfg_err(p, path, "%zu devices is more than the %d supported", n,
			DEVICES_MAX);
		return;
	}
	cfg->devices = calloc(n, sizeof(*cfg->devices));
	meta = calloc(n, sizeof(*meta));
	if (!cfg->devices || !meta) {
		free(meta);
		p->nomem = true;
		return;
	}
	cfg->n_devices = n;
	for (size_t i = 0; i < n; i++) {
		cfg_path_index(meta[i].path, path, i);
		parse_device(p, json_object_array_get_idx(ja, i),
			     &cfg->devices[i], &meta[i]);
	}
	check_devices(p, cfg, meta);
	free(meta);

	/* The seed's "id": a running index over every input, in file order. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < cfg->devices[i].n_inputs; k++)
			cfg->devices[i].inputs[k].id = next_id++;
	cfg->n_inputs = (size_t)next_id;
}

void cfg_devices_parse(struct parse *p, struct pm_config *cfg, json_object *root)
{
	char d[DESC_CAP];
	json_object *v;

	if (!json_object_object_get_ex(root, "devices", &v))
		cfg_missing(p, "", "devices", "the list of modules to read");
	else if (!json_object_is_type(v, json_type_array))
		cfg_err(p, "devices", "expected a list of devices [ {...}, ... ], got %s",
			cfg_describe(v, d));
	else
		cfg_devices_list(p, cfg, v, "devices");
}

void cfg_devices_free(struct pm_config *cfg)
{
	for (size_t i = 0; i < cfg->n_devices; i++) {
		struct pm_device *dev = &cfg->devices[i];

		for (size_t k = 0; k < dev->n_inputs; k++) {
			struct pm_input *in = &dev->inputs[k];

			free(in->name);
			free(in->phase);
			free(in->feed_name);
			free(in->subject);
			cfg_tags_free(in->n_tags, in->tags);
			free(in->point_tags);	/* its strings are others' */
		}
		free(dev->inputs);
		free(dev->port);
	}
	free(cfg->devices);
}
