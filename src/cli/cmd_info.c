/* cmd_info.c — `powermeter info`: reads a module's info registers (0..7 and
 * 40..55 on an HDHK) and shows them decoded: version, ranges, line settings
 * and address, factory date, frequency coefficients, CT ratios. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "meter/failure.h"
#include "util/buf.h"
#include "cli.h"
#include "config/config.h"
#include "device/driver.h"
#include "util/log.h"

#define INFO_TEXT_MAX (64u * 1024)
#define FAILURE_TEXT_MAX 512

static void info_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter info [-c CONFIG] [-d ID]\n"
		"       powermeter info --port PORT [--address A] [--baud B]\n"
		"                       [--framing N81|E81|O81|N82] [--timeout S]\n"
		"  -c, --config PATH   the devices of this config (default %s)\n"
		"  -d, --device ID     only the device with this id\n"
		"  -p, --port PORT     a module on this port instead of a config\n"
		"  -a, --address A     its Modbus address (default 1)\n"
		"  -b, --baud B        baud rate (default 9600)\n"
		"      --framing F     parity, data and stop bits (default N81)\n"
		"  -t, --timeout S     seconds to wait for an answer (default 1)\n",
		PM_DEFAULT_CONFIG);
}

/* Reads and prints one module's info. 0, or 1 when it failed. */
static int show_module(const struct pm_device *dev)
{
	const struct pm_driver *drv = dev->driver ? dev->driver
						  : pm_driver_find(NULL);
	uint16_t *map = calloc(drv->n_registers, sizeof(*map));
	struct pm_bus_fault fault = { 0 };
	char why[FAILURE_TEXT_MAX];
	struct pm_bus *bus = NULL;
	struct pm_buf out;
	int err;

	pm_buf_init(&out, INFO_TEXT_MAX);
	if (!map) {
		err = -ENOMEM;
		goto fail;
	}
	err = pm_bus_open_fault(&bus, dev->port, &dev->line, &fault);
	if (err == 0)
		pm_bus_set_retries(bus, dev->retries);
	for (size_t i = 0; err == 0 && i < drv->n_info_blocks; i++) {
		const struct pm_register_block *blk = &drv->info_blocks[i];

		err = pm_bus_read_registers(bus, dev->address, dev->timeout,
					    blk->first, blk->count,
					    map + blk->first);
		if (err < 0)
			fault = *pm_bus_last_fault(bus);
	}
	pm_bus_close(bus);
	if (err == 0 && dev->id >= 0)
		err = pm_buf_printf(&out, "device %d on %s address %d (%s)\n",
				    dev->id, dev->port, dev->address,
				    drv->description);
	else if (err == 0)
		err = pm_buf_printf(&out, "%s address %d (%s)\n", dev->port,
				    dev->address, drv->description);
	if (err == 0)
		err = pm_driver_describe(drv, map, &out);
	if (err < 0)
		goto fail;
	fputs(out.data, stdout);
	pm_buf_free(&out);
	free(map);
	return 0;

fail:
	pm_describe_failure(why, sizeof(why), dev, err, &fault);
	log_err("%s", why);
	pm_buf_free(&out);
	free(map);
	return 1;
}

int cmd_info(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "device", required_argument, NULL, 'd' },
		CLI_MODULE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pm_device manual;
	const char *path = NULL;
	struct pm_config *cfg = NULL;
	bool module_options = false;
	int device_id = -1, c, r, status = 0, shown = 0;

	cli_module_init(&manual);
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:" CLI_MODULE_SHORTOPTS "h",
				options, NULL)) != -1) {
		r = cli_module_option(c, optarg, &manual);
		if (r < 0)
			return 2;
		if (r > 0) {
			/* the port alone names the module; the others
			 * only make sense with it */
			module_options |= c != 'p';
			continue;
		}
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			if (cli_device_option(optarg, &device_id) < 0)
				return 2;
			break;
		case 'h':
			info_usage(stdout);
			return 0;
		default:
			info_usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (manual.port && (path || device_id >= 0)) ||
	    (!manual.port && module_options)) {
		info_usage(stderr);
		return 2;
	}
	if (manual.port) {
		manual.driver = pm_driver_find(NULL);
		return show_module(&manual);
	}

	status = cli_load_config(path, &cfg);
	if (status)
		return status;
	for (size_t d = 0; d < cfg->n_devices; d++) {
		if (device_id >= 0 && cfg->devices[d].id != device_id)
			continue;
		if (shown++)
			fputc('\n', stdout);
		fflush(stdout);
		if (show_module(&cfg->devices[d]))
			status = 1;
	}
	if (device_id >= 0 && !shown) {
		log_err("%s: no device with id %d", cfg->path, device_id);
		status = 2;
	}
	pm_config_free(cfg);
	return status;
}
