/* read_bench.c — times pm_module_read() in a loop against one module (for
 * tests/bench/read_latency.py): one line per read with its duration in
 * microseconds, so the script computes the median and compares it with the
 * frames' wire time. Not a test.
 *
 * usage: read-bench PORT BAUD COUNT [ADDRESS [frequency]] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <powermeter/powermeter.h>

#include "bus/bus.h"
#include "config/config.h"
#include "device/driver.h"
#include "meter/module.h"
#include "util/timeutil.h"

/* Idle time between reads, longer than any inter-frame silence, so each
 * measured read is one request and its answer, as a poller's would be. */
#define GAP_NS 5000000

int main(int argc, char **argv)
{
	struct pm_device dev = {
		.id = 1,
		.address = 1,
		.line = { .baud = 9600, .parity = 'N', .data_bits = 8,
			  .stop_bits = 1 },
		.timeout = 1.0,
	};
	struct pm_bus *bus;
	struct pm_sample s;
	long count;
	int r;

	if (argc < 4) {
		fprintf(stderr, "usage: read-bench PORT BAUD COUNT [ADDRESS [frequency]]\n");
		return 2;
	}
	dev.port = argv[1];
	dev.line.baud = atoi(argv[2]);
	count = atol(argv[3]);
	if (argc > 4)
		dev.address = atoi(argv[4]);
	dev.frequency = argc > 5 && !strcmp(argv[5], "frequency");
	dev.driver = pm_driver_find(NULL);

	r = pm_bus_open(&bus, dev.port, &dev.line);
	if (r < 0) {
		fprintf(stderr, "read-bench: %s: %s\n", dev.port, pm_strerror(r));
		return 1;
	}
	for (long i = 0; i < count; i++) {
		int64_t t0, t1;

		pm_sleep_until_ns(pm_mono_ns() + GAP_NS);
		t0 = pm_mono_ns();
		r = pm_module_read(bus, &dev, 0, 0, &s);
		t1 = pm_mono_ns();
		if (r < 0) {
			fprintf(stderr, "read-bench: read %ld: %s\n", i, pm_strerror(r));
			pm_bus_close(bus);
			return 1;
		}
		printf("%lld %u\n", (long long)((t1 - t0) / 1000), (unsigned)s.current[0]);
	}
	pm_bus_close(bus);
	return 0;
}
