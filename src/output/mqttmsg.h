/* mqttmsg.h — what the daemon publishes to an MQTT broker (sink_mqtt.c
 * sends it): the topics, each circuit's state as JSON, and Home Assistant
 * discovery configs. Text only: no network, no threads.
 *
 *   P/availability              the daemon: "online" / "offline" (will)
 *   P/D/availability            module D: "online" / "offline"
 *   P/D/L/state                 input L of module D: {"time", "current",
 *                               "power", "energy", "frequency", "estimated"}
 *   H/sensor/N/D_L_KIND/config  its Home Assistant sensors
 *
 * P is "topic_prefix", H "discovery_prefix", N the node id (P with every
 * character but [A-Za-z0-9_-] as '_'), D the device's "id", L the input's
 * letter. */
#ifndef PM_OUTPUT_MQTTMSG_H
#define PM_OUTPUT_MQTTMSG_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "meter/sample.h"
#include "util/buf.h"

#define PM_MQTT_ONLINE "online"
#define PM_MQTT_OFFLINE "offline"

/* The sensors Home Assistant gets per circuit. */
enum pm_mqtt_kind {
	PM_MQTT_CURRENT,
	PM_MQTT_POWER,
	PM_MQTT_ENERGY,		/* with the energy counters on */
	PM_MQTT_FREQUENCY,	/* for a device with "frequency" */
	PM_MQTT_KINDS
};

/* Does circuit 'in' of 'dev' get a sensor of this kind under 'cfg'? */
bool pm_mqtt_kind_wanted(const struct pm_config *cfg,
			 const struct pm_device *dev, enum pm_mqtt_kind kind);

/* Topics, appended to b. 0 or a pm_buf error (b unchanged). */
int pm_mqtt_topic_daemon(struct pm_buf *b, const struct pm_mqtt *m);
int pm_mqtt_topic_module(struct pm_buf *b, const struct pm_mqtt *m,
			 const struct pm_device *dev);
int pm_mqtt_topic_state(struct pm_buf *b, const struct pm_mqtt *m,
			const struct pm_device *dev, const struct pm_input *in);
int pm_mqtt_topic_discovery(struct pm_buf *b, const struct pm_mqtt *m,
			    const struct pm_device *dev,
			    const struct pm_input *in, enum pm_mqtt_kind kind);
/* H/sensor/N/+/config: where retained configs of this node are found. */
int pm_mqtt_topic_discovery_filter(struct pm_buf *b, const struct pm_mqtt *m);

/* Input 'in' of sample 's' as its state message: the same numbers as line
 * protocol (pm_fmt_measured), power and energy marked as estimates, energy
 * only where the sample has the counters, frequency only where read; a
 * figure that is not a finite number is left out. -ERANGE (nothing
 * written) when the current is not one: no reading to publish. */
int pm_mqtt_state(struct pm_buf *b, const struct pm_device *dev,
		  const struct pm_input *in, const struct pm_sample *s);

/* The discovery config of one sensor; 'firmware' ("" when not read yet)
 * becomes the device's sw_version. */
int pm_mqtt_discovery(struct pm_buf *b, const struct pm_config *cfg,
		      const struct pm_device *dev, const struct pm_input *in,
		      enum pm_mqtt_kind kind, const char *firmware);

#endif
