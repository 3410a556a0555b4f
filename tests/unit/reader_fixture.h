/* reader_fixture.h — configs built by hand for the reading, decoding and
 * format unit tests (they do not depend on config.c's parser). */
#ifndef PM_READER_FIXTURE_H
#define PM_READER_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "device/driver.h"

struct fixture_input {
	char letter;
	double ratio;
	const char *name;
};

/* Adds a device with the given inputs to cfg (ids run over the config). */
static inline struct pm_device *
fixture_add_device(struct pm_config *cfg, int id, const char *port, int address,
		   bool frequency, const struct fixture_input *inputs, size_t n)
{
	struct pm_device *dev;

	cfg->devices = realloc(cfg->devices, (cfg->n_devices + 1) * sizeof(*dev));
	dev = &cfg->devices[cfg->n_devices++];
	memset(dev, 0, sizeof(*dev));
	dev->id = id;
	dev->port = strdup(port);
	dev->address = address;
	dev->line = (struct pm_line){ 9600, 'N', 8, 1 };
	dev->timeout = 1.0;
	dev->frequency = frequency;
	dev->driver = pm_driver_find(NULL);
	dev->n_inputs = n;
	dev->inputs = calloc(n ? n : 1, sizeof(*dev->inputs));
	for (size_t i = 0; i < n; i++) {
		dev->inputs[i].channel = (unsigned)(inputs[i].letter - 'a');
		dev->inputs[i].ratio = inputs[i].ratio;
		dev->inputs[i].name = strdup(inputs[i].name);
		dev->inputs[i].id = (int)cfg->n_inputs++;
		dev->inputs[i].voltage = PM_DEFAULT_VOLTAGE;
		dev->inputs[i].power_factor = PM_DEFAULT_POWER_FACTOR;
	}
	return dev;
}

static inline void fixture_free(struct pm_config *cfg)
{
	for (size_t d = 0; d < cfg->n_devices; d++) {
		for (size_t i = 0; i < cfg->devices[d].n_inputs; i++)
			free(cfg->devices[d].inputs[i].name);
		free(cfg->devices[d].inputs);
		free(cfg->devices[d].port);
	}
	free(cfg->devices);
	memset(cfg, 0, sizeof(*cfg));
}

#endif
