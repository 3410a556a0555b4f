/* cmd_address.c — `powermeter address`: gives a module its own Modbus
 * address (they all ship as 1) by rewriting the address bits of its line
 * register (register 3 on an HDHK) over FC 0x06, then checks it answers. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "meter/failure.h"
#include "cli.h"
#include "config/config.h"
#include "device/driver.h"
#include "util/log.h"

#define FAILURE_TEXT_MAX 512

static void address_usage(FILE *f)
{
	fprintf(f,
		"usage: powermeter address --port PORT [--address A] [--baud B]\n"
		"                          [--framing N81|E81|O81|N82] [--timeout S] NEW\n"
		"  -p, --port PORT     the module's port\n"
		"  -a, --address A     its Modbus address now (default 1)\n"
		"  -b, --baud B        baud rate (default 9600)\n"
		"      --framing F     parity, data and stop bits (default N81)\n"
		"  -t, --timeout S     seconds to wait for an answer (default 1)\n"
		"  NEW                 the address to give it (%d..%d)\n",
		PM_ADDRESS_MIN, PM_ADDRESS_MAX);
}

/* The electrician's sentence for 'err' at unit 'address', after 'prefix'. */
static int address_fail(const struct pm_device *dev, int address,
			const char *prefix, int err,
			const struct pm_bus_fault *fault)
{
	struct pm_device at = *dev;
	char why[FAILURE_TEXT_MAX];

	at.address = address;
	pm_describe_failure(why, sizeof(why), &at, err, fault);
	log_err("%s%s", prefix, why);
	return 1;
}

/* Reads the address register of 'dev', checks nothing answers at 'to',
 * writes the new address and reads it back from 'to'. 0, or 1 when it
 * failed (said why). */
static int move_module(const struct pm_device *dev, int to)
{
	const struct pm_driver *drv = pm_driver_find(NULL);
	uint16_t mask = drv->address_mask, reg = drv->address_register;
	struct pm_bus_fault fault = { 0 };
	struct pm_bus *bus = NULL;
	uint16_t line, check;
	int r, status = 1;

	r = pm_bus_open_fault(&bus, dev->port, &dev->line, &fault);
	if (r < 0)
		return address_fail(dev, dev->address, "", r, &fault);
	pm_bus_set_retries(bus, dev->retries);
	r = pm_bus_read_registers(bus, dev->address, dev->timeout, reg, 1,
				  &line);
	if (r < 0) {
		address_fail(dev, dev->address, "", r, pm_bus_last_fault(bus));
		goto out;
	}
	/* Two modules with one address garble each other's answers: neither
	 * could be read again. Any answer at 'to', even an exception, means
	 * someone is there; only silence means the address is free. */
	r = pm_bus_read_registers(bus, to, dev->timeout, reg, 1, &check);
	if (r == 0 || r == -PM_EEXCEPTION) {
		log_err("address %d is already taken on %s", to, dev->port);
		goto out;
	}
	if (r != -ETIMEDOUT) {
		address_fail(dev, to, "", r, pm_bus_last_fault(bus));
		goto out;
	}
	line = (uint16_t)((line & ~mask) | ((unsigned)to & mask));
	/* Sent once: a module that took the write but whose echo was lost
	 * already answers at 'to', not to a repeat at its old address. */
	pm_bus_set_retries(bus, 0);
	r = pm_bus_write_register(bus, dev->address, dev->timeout, reg, line);
	pm_bus_set_retries(bus, dev->retries);
	if (r < 0) {
		struct pm_bus_fault wfault = *pm_bus_last_fault(bus);
		int wr = r;

		r = pm_bus_read_registers(bus, to, dev->timeout, reg, 1, &check);
		if (r < 0) {
			address_fail(dev, dev->address, "", wr, &wfault);
			goto out;
		}
	} else {
		r = pm_bus_read_registers(bus, to, dev->timeout, reg, 1,
					  &check);
	}
	if (r < 0) {
		char prefix[64];

		snprintf(prefix, sizeof(prefix),
			 "address %d written, but the module ", to);
		address_fail(dev, to, prefix, r, pm_bus_last_fault(bus));
		goto out;
	}
	if ((check & mask) != ((unsigned)to & mask)) {
		log_err("%s address %d: answers with address %u in register %u "
			"(0x%04x)", dev->port, to, (unsigned)(check & mask),
			(unsigned)reg, (unsigned)check);
		goto out;
	}
	printf("%s: module at address %d now answers at address %d "
	       "(%d %d%c%d)\n", dev->port, dev->address, to, dev->line.baud,
	       dev->line.data_bits, dev->line.parity, dev->line.stop_bits);
	status = fflush(stdout) == 0 ? 0 : 1;
out:
	pm_bus_close(bus);
	return status;
}

int cmd_address(int argc, char **argv)
{
	static const struct option options[] = {
		CLI_MODULE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pm_device dev;
	int c, r, to;

	cli_module_init(&dev);
	optind = 0;
	while ((c = getopt_long(argc, argv, CLI_MODULE_SHORTOPTS "h", options,
				NULL)) != -1) {
		r = cli_module_option(c, optarg, &dev);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case 'h':
			address_usage(stdout);
			return 0;
		default:
			address_usage(stderr);
			return 2;
		}
	}
	if (!dev.port || optind + 1 != argc) {
		address_usage(stderr);
		return 2;
	}
	if (cli_parse_address(argv[optind], &to) < 0) {
		log_err("invalid new address '%s' (%d..%d)", argv[optind],
			PM_ADDRESS_MIN, PM_ADDRESS_MAX);
		return 2;
	}
	if (to == dev.address) {
		printf("%s: module already at address %d, nothing to do\n",
		       dev.port, to);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (!pm_driver_find(NULL)->address_mask) {
		log_err("this module type has no address to set over the bus");
		return 1;
	}
	return move_module(&dev, to);
}
