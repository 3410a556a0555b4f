/* mqttmsg.c — topics and payloads for MQTT and Home Assistant discovery
 * (mqttmsg.h). The discovery payload follows Home Assistant's MQTT sensor
 * schema: device_class, unit and state_class as its sensor rules allow
 * (energy: Wh, total_increasing, so circuits appear in its Energy
 * dashboard). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "device/driver.h"
#include "output/mqttmsg.h"
#include "util/jsonstr.h"
#include "util/numfmt.h"

static const struct {
	const char *key;	/* in the state JSON and the object id */
	const char *name;	/* after the circuit's name */
	const char *unit;
	const char *state_class;
} kinds[PM_MQTT_KINDS] = {
	[PM_MQTT_CURRENT] = { "current", "current", "A", "measurement" },
	[PM_MQTT_POWER] = { "power", "power (estimated)", "W", "measurement" },
	[PM_MQTT_ENERGY] = { "energy", "energy (estimated)", "Wh", "total_increasing" },
	[PM_MQTT_FREQUENCY] = { "frequency", "frequency", "Hz", "measurement" },
};

bool pm_mqtt_kind_wanted(const struct pm_config *cfg,
			 const struct pm_device *dev, enum pm_mqtt_kind kind)
{
	switch (kind) {
	case PM_MQTT_ENERGY:
		return cfg->energy.enabled;
	case PM_MQTT_FREQUENCY:
		return dev->frequency;
	default:
		return kind < PM_MQTT_KINDS;
	}
}

/* The node id: the prefix with what Home Assistant ids may not hold as _. */
static int add_node_id(struct pm_buf *b, const struct pm_mqtt *m)
{
	size_t start = b->len;
	int r = 0;

	for (const char *c = m->topic_prefix; *c && r == 0; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-';

		r = pm_buf_addc(b, ok ? *c : '_');
	}
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

/* N_D_L_KIND: the sensor's unique id and object id. */
static int add_sensor_id(struct pm_buf *b, const struct pm_mqtt *m,
			 const struct pm_device *dev,
			 const struct pm_input *in, enum pm_mqtt_kind kind)
{
	size_t start = b->len;
	int r = add_node_id(b, m);

	if (r == 0)
		r = pm_buf_printf(b, "_%d_%c_%s", dev->id,
				  pm_channel_letter(in->channel),
				  kinds[kind].key);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_mqtt_topic_daemon(struct pm_buf *b, const struct pm_mqtt *m)
{
	return pm_buf_printf(b, "%s/availability", m->topic_prefix);
}

int pm_mqtt_topic_module(struct pm_buf *b, const struct pm_mqtt *m,
			 const struct pm_device *dev)
{
	return pm_buf_printf(b, "%s/%d/availability", m->topic_prefix,
			     dev->id);
}

int pm_mqtt_topic_state(struct pm_buf *b, const struct pm_mqtt *m,
			const struct pm_device *dev, const struct pm_input *in)
{
	return pm_buf_printf(b, "%s/%d/%c/state", m->topic_prefix, dev->id,
			     pm_channel_letter(in->channel));
}

int pm_mqtt_topic_discovery(struct pm_buf *b, const struct pm_mqtt *m,
			    const struct pm_device *dev,
			    const struct pm_input *in, enum pm_mqtt_kind kind)
{
	size_t start = b->len;
	int r = pm_buf_printf(b, "%s/sensor/", m->discovery_prefix);

	if (r == 0)
		r = add_node_id(b, m);
	if (r == 0)
		r = pm_buf_printf(b, "/%d_%c_%s/config", dev->id,
				  pm_channel_letter(in->channel),
				  kinds[kind].key);
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

int pm_mqtt_topic_discovery_filter(struct pm_buf *b, const struct pm_mqtt *m)
{
	size_t start = b->len;
	int r = pm_buf_printf(b, "%s/sensor/", m->discovery_prefix);

	if (r == 0)
		r = add_node_id(b, m);
	if (r == 0)
		r = pm_buf_adds(b, "/+/config");
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

/* ,"key":number — the way line protocol writes it; nothing when not
 * finite (a value that is not a number is never published). */
static int add_number(struct pm_buf *b, const char *key, double v)
{
	char num[PM_DOUBLE_LEN];

	if (!isfinite(v))
		return 0;
	(void)pm_fmt_measured(num, v);
	return pm_buf_printf(b, ",\"%s\":%s", key, num);
}

int pm_mqtt_state(struct pm_buf *b, const struct pm_device *dev,
		  const struct pm_input *in, const struct pm_sample *s)
{
	size_t start = b->len;
	time_t t = (time_t)(s->time_ms / 1000);
	double energy = s->has_energy && in->channel < PM_CHANNELS ?
			s->energy_wh[in->channel] : NAN;
	char when[32];
	struct tm tm;
	int r;

	/* no current, no reading: nothing published, as no line is written */
	if (!isfinite(pm_sample_amperes(s, in)))
		return -ERANGE;
	if (!gmtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	r = pm_buf_printf(b, "{\"time\":\"%s.%03dZ\"", when,
			  (int)(s->time_ms % 1000));
	if (r == 0)
		r = add_number(b, "current", pm_sample_amperes(s, in));
	if (r == 0)
		r = add_number(b, "power", pm_sample_power(s, in));
	if (r == 0)
		r = add_number(b, "energy", energy);
	if (r == 0)
		r = add_number(b, "frequency", pm_sample_hertz(s, dev, in));
	if (r == 0)
		r = pm_buf_adds(b, isfinite(energy) ?
				",\"estimated\":[\"power\",\"energy\"]}" :
				",\"estimated\":[\"power\"]}");
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}

/* ,"key":"string" */
static int add_string(struct pm_buf *b, const char *key, const char *v)
{
	int r = pm_buf_printf(b, ",\"%s\":", key);

	return r ? r : pm_json_string(b, v);
}

static int add_device(struct pm_buf *b, const struct pm_mqtt *m,
		      const struct pm_device *dev, const char *firmware)
{
	const struct pm_driver *drv = dev->driver ? dev->driver
						  : pm_driver_find(NULL);
	char name[48];
	int r = pm_buf_adds(b, ",\"device\":{\"identifiers\":[\"");

	if (r == 0)
		r = add_node_id(b, m);
	if (r == 0)
		r = pm_buf_printf(b, "_%d\"]", dev->id);
	(void)snprintf(name, sizeof(name), "HDHK module %d", dev->id);
	if (r == 0)
		r = add_string(b, "name", name);
	if (r == 0)
		r = add_string(b, "manufacturer", "HDHK");
	if (r == 0)
		r = add_string(b, "model", drv->description);
	if (r == 0 && firmware && *firmware)
		r = add_string(b, "sw_version", firmware);
	if (r == 0)
		r = pm_buf_addc(b, '}');
	return r;
}

int pm_mqtt_discovery(struct pm_buf *b, const struct pm_config *cfg,
		      const struct pm_device *dev, const struct pm_input *in,
		      enum pm_mqtt_kind kind, const char *firmware)
{
	const struct pm_mqtt *m = cfg->mqtt;
	size_t start = b->len;
	char name[320], tmpl[64];	/* a name is at most 256 bytes */
	const char *circuit = in->name && *in->name ? in->name : NULL;
	int r;

	if (circuit)
		(void)snprintf(name, sizeof(name), "%s %s", circuit,
			       kinds[kind].name);
	else
		(void)snprintf(name, sizeof(name), "Input %c %s",
			       pm_channel_letter(in->channel) - 'a' + 'A',
			       kinds[kind].name);
	(void)snprintf(tmpl, sizeof(tmpl), "{{ value_json.%s }}",
		       kinds[kind].key);
	r = pm_buf_adds(b, "{\"name\":");
	if (r == 0)
		r = pm_json_string(b, name);
	if (r == 0)
		r = pm_buf_adds(b, ",\"unique_id\":\"");
	if (r == 0)
		r = add_sensor_id(b, m, dev, in, kind);
	if (r == 0)
		r = pm_buf_adds(b, "\",\"object_id\":\"");
	if (r == 0)
		r = add_sensor_id(b, m, dev, in, kind);
	if (r == 0)
		r = pm_buf_adds(b, "\",\"state_topic\":\"");
	if (r == 0)
		r = pm_mqtt_topic_state(b, m, dev, in);
	if (r == 0)
		r = pm_buf_addc(b, '"');
	if (r == 0)
		r = add_string(b, "value_template", tmpl);
	if (r == 0)
		r = add_string(b, "unit_of_measurement", kinds[kind].unit);
	if (r == 0)
		r = add_string(b, "device_class", kinds[kind].key);
	if (r == 0)
		r = add_string(b, "state_class", kinds[kind].state_class);
	if (r == 0)
		r = pm_buf_adds(b, ",\"availability\":[{\"topic\":\"");
	if (r == 0)
		r = pm_mqtt_topic_daemon(b, m);
	if (r == 0)
		r = pm_buf_adds(b, "\"},{\"topic\":\"");
	if (r == 0)
		r = pm_mqtt_topic_module(b, m, dev);
	if (r == 0)
		r = pm_buf_adds(b, "\"}],\"availability_mode\":\"all\","
				"\"payload_available\":\"" PM_MQTT_ONLINE "\","
				"\"payload_not_available\":\"" PM_MQTT_OFFLINE "\"");
	if (r == 0)
		r = add_device(b, m, dev, firmware);
	if (r == 0)
		r = pm_buf_addc(b, '}');
	if (r < 0)
		pm_buf_truncate(b, b->len - start);
	return r;
}
