/* test_mqttmsg.c — what the daemon publishes over MQTT (output/mqttmsg.h):
 * topics and the node id, a circuit's state (the same numbers as line
 * protocol, estimates marked, nothing that is not a number), and Home
 * Assistant discovery configs that follow its sensor rules. (The broker
 * round trip is tests/integration/mqtt.py.) */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "output/mqttmsg.h"
#include "util/buf.h"
#include "reader_fixture.h"

struct world {
	struct pm_config cfg;
	struct pm_mqtt m;
};

static int setup(void **state)
{
	static const struct fixture_input in1[] = {
		{ 'a', 0.01, "Kitchen \"oven\"" },
		{ 'p', 0.02, "" },
	};
	static const struct fixture_input in2[] = { { 'c', 0.01, "Pump" } };
	struct world *w = calloc(1, sizeof(*w));

	w->m.topic_prefix = "home/power meter";
	w->m.discovery_prefix = "homeassistant";
	w->m.discovery = true;
	w->cfg.mqtt = &w->m;
	w->cfg.energy.enabled = true;
	fixture_add_device(&w->cfg, 7, "/dev/ttyUSB0", 1, false, in1, 2);
	fixture_add_device(&w->cfg, -3, "/dev/ttyUSB0", 2, true, in2, 1);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	fixture_free(&w->cfg);
	free(w);
	return 0;
}

static void test_topics(void **state)
{
	struct world *w = *state;
	const struct pm_device *d7 = &w->cfg.devices[0];
	struct pm_buf b;

	pm_buf_init(&b, 1024);
	assert_int_equal(pm_mqtt_topic_daemon(&b, &w->m), 0);
	assert_string_equal(b.data, "home/power meter/availability");
	pm_buf_reset(&b);
	assert_int_equal(pm_mqtt_topic_module(&b, &w->m, d7), 0);
	assert_string_equal(b.data, "home/power meter/7/availability");
	pm_buf_reset(&b);
	assert_int_equal(pm_mqtt_topic_state(&b, &w->m, d7, &d7->inputs[1]), 0);
	assert_string_equal(b.data, "home/power meter/7/p/state");
	/* the node id keeps what Home Assistant allows in ids, no more */
	pm_buf_reset(&b);
	assert_int_equal(pm_mqtt_topic_discovery(&b, &w->m, d7, &d7->inputs[0],
						 PM_MQTT_ENERGY), 0);
	assert_string_equal(b.data, "homeassistant/sensor/home_power_meter/"
				    "7_a_energy/config");
	pm_buf_reset(&b);
	assert_int_equal(pm_mqtt_topic_discovery_filter(&b, &w->m), 0);
	assert_string_equal(b.data, "homeassistant/sensor/home_power_meter/+/config");
	pm_buf_free(&b);
}

static json_object *state_of(const struct pm_device *dev,
			     const struct pm_input *in,
			     const struct pm_sample *s, struct pm_buf *b)
{
	json_object *j;

	pm_buf_reset(b);
	assert_int_equal(pm_mqtt_state(b, dev, in, s), 0);
	j = json_tokener_parse(b->data);
	assert_non_null(j);
	return j;
}

static void test_state(void **state)
{
	struct world *w = *state;
	const struct pm_device *d7 = &w->cfg.devices[0], *d3 = &w->cfg.devices[1];
	struct pm_sample s = { .device = 0, .time_ms = 1764558245005LL };
	struct pm_buf b;
	json_object *j, *v;

	pm_buf_init(&b, 1024);
	s.current[0] = 1020;	/* 10.2 A, not 10.200000000000001 */
	j = state_of(d7, &d7->inputs[0], &s, &b);
	assert_string_equal(b.data,
			    "{\"time\":\"2025-12-01T03:04:05.005Z\",\"current\":10.2,"
			    "\"power\":2346.0,\"estimated\":[\"power\"]}");
	json_object_put(j);

	/* energy from the daemon's counters: then it is an estimate too */
	s.has_energy = true;
	for (int k = 0; k < PM_CHANNELS; k++)
		s.energy_wh[k] = s.charge_ah[k] = NAN;
	s.energy_wh[0] = 1234.5;
	j = state_of(d7, &d7->inputs[0], &s, &b);
	assert_true(json_object_object_get_ex(j, "energy", &v));
	assert_true(json_object_get_double(v) == 1234.5);
	assert_true(json_object_object_get_ex(j, "estimated", &v));
	assert_int_equal(json_object_array_length(v), 2);
	assert_false(json_object_object_get_ex(j, "frequency", NULL));
	json_object_put(j);

	/* a withheld counter (NaN) is left out, never "nan" or null */
	j = state_of(d7, &d7->inputs[1], &s, &b);
	assert_false(json_object_object_get_ex(j, "energy", NULL));
	assert_null(strstr(b.data, "nan"));
	assert_null(strstr(b.data, "null"));
	json_object_put(j);

	/* frequency where the device reads it, in its driver's unit */
	s.device = 1;
	s.has_frequency = true;
	s.frequency[2] = 499;
	s.current[2] = 5;
	j = state_of(d3, &d3->inputs[0], &s, &b);
	assert_true(json_object_object_get_ex(j, "frequency", &v));
	assert_true(json_object_get_double(v) == 49.9);
	assert_true(json_object_object_get_ex(j, "current", &v));
	assert_true(json_object_get_double(v) == 0.05);
	json_object_put(j);
	pm_buf_free(&b);
}

/* A current that is not a finite number (a ratio no config accepts): no
 * state message at all, as no line is written; a counter that is not
 * finite is left out alone. */
static void test_state_not_finite(void **state)
{
	struct world *w = *state;
	struct pm_device *d7 = &w->cfg.devices[0];
	struct pm_sample s = { .device = 0, .time_ms = 1764558245005LL };
	double ratio = d7->inputs[0].ratio;
	struct pm_buf b;
	json_object *j;

	pm_buf_init(&b, 1024);
	assert_int_equal(pm_buf_adds(&b, "before"), 0);
	s.current[0] = 1020;
	d7->inputs[0].ratio = 1e308;
	assert_int_equal(pm_mqtt_state(&b, d7, &d7->inputs[0], &s), -ERANGE);
	assert_string_equal(b.data, "before");
	d7->inputs[0].ratio = ratio;
	s.has_energy = true;
	for (int k = 0; k < PM_CHANNELS; k++)
		s.energy_wh[k] = s.charge_ah[k] = INFINITY;
	j = state_of(d7, &d7->inputs[0], &s, &b);
	assert_false(json_object_object_get_ex(j, "energy", NULL));
	assert_null(strstr(b.data, "inf"));
	assert_null(strstr(b.data, "Infinity"));
	json_object_put(j);
	pm_buf_free(&b);
}

static const char *get_s(json_object *j, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(j, key, &v));
	return json_object_get_string(v);
}

static json_object *config_of(struct world *w, size_t dev, size_t in,
			      enum pm_mqtt_kind kind, const char *fw,
			      struct pm_buf *b)
{
	const struct pm_device *d = &w->cfg.devices[dev];
	json_object *j;

	pm_buf_reset(b);
	assert_int_equal(pm_mqtt_discovery(b, &w->cfg, d, &d->inputs[in],
					   kind, fw), 0);
	j = json_tokener_parse(b->data);
	assert_non_null(j);
	return j;
}

static void test_discovery(void **state)
{
	static const struct {
		enum pm_mqtt_kind kind;
		const char *dc, *unit, *sc, *name;
	} want[] = {
		{ PM_MQTT_CURRENT, "current", "A", "measurement", "Kitchen \"oven\" current" },
		{ PM_MQTT_POWER, "power", "W", "measurement", "Kitchen \"oven\" power (estimated)" },
		{ PM_MQTT_ENERGY, "energy", "Wh", "total_increasing", "Kitchen \"oven\" energy (estimated)" },
		{ PM_MQTT_FREQUENCY, "frequency", "Hz", "measurement", "Kitchen \"oven\" frequency" },
	};
	struct world *w = *state;
	struct pm_buf b;
	json_object *j, *v, *dev;

	pm_buf_init(&b, 8192);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char uid[128];

		j = config_of(w, 0, 0, want[i].kind, "6.2.8", &b);
		assert_string_equal(get_s(j, "name"), want[i].name);
		assert_string_equal(get_s(j, "device_class"), want[i].dc);
		assert_string_equal(get_s(j, "unit_of_measurement"), want[i].unit);
		assert_string_equal(get_s(j, "state_class"), want[i].sc);
		snprintf(uid, sizeof(uid), "home_power_meter_7_a_%s", want[i].dc);
		assert_string_equal(get_s(j, "unique_id"), uid);
		assert_string_equal(get_s(j, "object_id"), uid);
		assert_string_equal(get_s(j, "state_topic"), "home/power meter/7/a/state");
		assert_non_null(strstr(get_s(j, "value_template"), want[i].dc));
		assert_string_equal(get_s(j, "availability_mode"), "all");
		assert_true(json_object_object_get_ex(j, "availability", &v));
		assert_int_equal(json_object_array_length(v), 2);
		assert_string_equal(get_s(json_object_array_get_idx(v, 0), "topic"),
				    "home/power meter/availability");
		assert_string_equal(get_s(json_object_array_get_idx(v, 1), "topic"),
				    "home/power meter/7/availability");
		assert_true(json_object_object_get_ex(j, "device", &dev));
		assert_true(json_object_object_get_ex(dev, "identifiers", &v));
		assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)),
				    "home_power_meter_7");
		assert_string_equal(get_s(dev, "manufacturer"), "HDHK");
		assert_string_equal(get_s(dev, "sw_version"), "6.2.8");
		json_object_put(j);
	}
	/* firmware not read yet: no sw_version rather than an empty one;
	 * an unnamed input is named by its letter; a negative id is kept */
	j = config_of(w, 0, 1, PM_MQTT_CURRENT, "", &b);
	assert_true(json_object_object_get_ex(j, "device", &dev));
	assert_false(json_object_object_get_ex(dev, "sw_version", NULL));
	assert_string_equal(get_s(j, "name"), "Input P current");
	json_object_put(j);
	j = config_of(w, 1, 0, PM_MQTT_POWER, "", &b);
	assert_string_equal(get_s(j, "unique_id"), "home_power_meter_-3_c_power");
	json_object_put(j);
	pm_buf_free(&b);
}

static void test_kinds(void **state)
{
	struct world *w = *state;
	const struct pm_device *d7 = &w->cfg.devices[0], *d3 = &w->cfg.devices[1];

	assert_true(pm_mqtt_kind_wanted(&w->cfg, d7, PM_MQTT_CURRENT));
	assert_true(pm_mqtt_kind_wanted(&w->cfg, d7, PM_MQTT_POWER));
	assert_false(pm_mqtt_kind_wanted(&w->cfg, d7, PM_MQTT_FREQUENCY));
	assert_true(pm_mqtt_kind_wanted(&w->cfg, d3, PM_MQTT_FREQUENCY));
	assert_true(pm_mqtt_kind_wanted(&w->cfg, d7, PM_MQTT_ENERGY));
	w->cfg.energy.enabled = false;	/* "energy": false: no energy sensor */
	assert_false(pm_mqtt_kind_wanted(&w->cfg, d7, PM_MQTT_ENERGY));
	w->cfg.energy.enabled = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topics),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_state_not_finite),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_kinds),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
