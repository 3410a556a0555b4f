/* energy_bench.c — benchmark (issue "From amperes to watts"): the energy
 * counter's error against the exact integral of a 10-minute profile of steps
 * and ramps sampled every second, through the daemon's own integrator
 * (meter/energy.c), beside a left Riemann sum of the very same samples.
 *
 * The samples are what a module gives: the current rounded to its 0.01 A
 * counts, stamped when the answer arrived (here: the tick plus 50 ms of wire
 * time and a few ms of jitter).
 *
 *   build/tests/bench/energy-bench [--seconds 600] [--interval 1]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meter/energy.h"

#define RATIO 0.01
#define VOLTS 230.0
#define PF 0.93
#define GOAL_PERCENT 0.2

/* The profile in amperes over [0, 600) s, repeated beyond: idle, a ramp up,
 * a kettle switched on and off, a slow ramp down, a motor start, steps.
 * Loads switch at any instant, not on the poller's ticks. */
static const double prof_t[] = {
	0, 30, 90.37, 90.37, 150.81, 150.81, 240, 300.52, 300.52, 301.24,
	301.24, 360, 420.09, 420.09, 480.66, 480.66, 540.45, 540.45, 600,
};
static const double prof_a[] = {
	0.5, 0.5, 6, 15, 15, 6, 2, 2, 28, 28, 9, 9, 3, 12, 12, 1, 1, 7, 0.5,
};
#define PROF_N (sizeof(prof_t) / sizeof(prof_t[0]))
#define PERIOD 600.0

static double amps_at(double t)
{
	t = fmod(t, PERIOD);
	for (size_t i = 1; i < PROF_N; i++)
		if (t < prof_t[i])
			return prof_a[i - 1] + (prof_a[i] - prof_a[i - 1]) *
			       (t - prof_t[i - 1]) / (prof_t[i] - prof_t[i - 1]);
	return prof_a[PROF_N - 1];
}

/* Exact integral of the profile in ampere-seconds over [a, b]. */
static double amp_seconds(double a, double b)
{
	double sum = 0;
	double t0 = floor(a / PERIOD) * PERIOD;

	for (double base = t0; base < b; base += PERIOD) {
		for (size_t i = 1; i < PROF_N; i++) {
			double s = base + prof_t[i - 1], e = base + prof_t[i];
			double lo = s > a ? s : a, hi = e < b ? e : b;

			if (hi <= lo)
				continue;
			sum += (amps_at(lo - base) + amps_at(hi - base - 1e-12)) / 2 *
			       (hi - lo);
		}
	}
	return sum;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' },
		{ 0 }
	};
	double seconds = 600, interval = 1;
	struct pm_energy_open_report rep;
	struct pm_energy_counter *c;
	struct pm_config cfg;
	struct pm_device dev;
	struct pm_input in;
	struct pm_energy *e;
	char dir[] = "/tmp/pm-energy-bench-XXXXXX";
	double riemann = 0, prev_amps = 0, prev_t = 0, first_t = 0, last_t = 0;
	size_t n;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:i:", options, NULL)) != -1) {
		if (opt == 's')
			seconds = atof(optarg);
		else if (opt == 'i')
			interval = atof(optarg);
		else
			return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	memset(&dev, 0, sizeof(dev));
	memset(&in, 0, sizeof(in));
	in = (struct pm_input){ .channel = 0, .ratio = RATIO, .name = "bench",
				.id = 0, .voltage = VOLTS, .power_factor = PF };
	dev.id = 1;
	dev.n_inputs = 1;
	dev.inputs = &in;
	dev.driver = pm_driver_find(NULL);
	cfg.devices = &dev;
	cfg.n_devices = 1;
	cfg.n_inputs = 1;
	cfg.interval = interval;
	cfg.energy.enabled = true;
	cfg.energy.max_gap = 10 * interval;
	if (!mkdtemp(dir) || pm_energy_open(&e, dir, &rep) < 0 ||
	    pm_energy_configure(e, &cfg) < 0) {
		perror("setup");
		return 1;
	}
	srand(1);
	for (long k = 0; k * interval <= seconds; k++) {
		/* stamped on arrival: tick + 50 ms wire time + 0..5 ms */
		double t = k * interval + 0.050 + (rand() % 5000) / 1e6;
		double amps = amps_at(t);
		long counts = lround(amps / RATIO);
		struct pm_sample s = { .device = 0 };

		s.time_ms = (int64_t)llround(1.7e12 + t * 1000);
		s.current[0] = (uint16_t)(counts < 0 ? 0 : counts > 65535 ? 65535 : counts);
		t = (double)(s.time_ms - (int64_t)1.7e12) / 1000;
		pm_energy_add(e, &s);
		if (k > 0)
			riemann += prev_amps * (t - prev_t);
		else
			first_t = t;
		prev_amps = s.current[0] * RATIO;
		prev_t = last_t = t;
	}
	if (pm_energy_counters(e, &c, &n) < 0 || n != 1)
		return 1;
	{
		double exact_wh = amp_seconds(first_t, last_t) * VOLTS * PF / 3600;
		double trap_wh = c[0].energy_wh;
		double riem_wh = riemann * VOLTS * PF / 3600;
		double trap_err = 100 * (trap_wh - exact_wh) / exact_wh;
		double riem_err = 100 * (riem_wh - exact_wh) / exact_wh;

		printf("a %.0f s profile of steps and ramps (0.5..28 A), sampled every "
		       "%.3g s, 230 V x pf 0.93\n", last_t - first_t, interval);
		printf("exact integral:        %.4f Wh\n", exact_wh);
		printf("powermeterd (trapezoid): %.4f Wh, error %+.4f %% (goal <= %.1f %%): %s\n",
		       trap_wh, trap_err, GOAL_PERCENT,
		       fabs(trap_err) <= GOAL_PERCENT ? "met" : "MISSED");
		printf("left Riemann sum:      %.4f Wh, error %+.4f %%\n", riem_wh,
		       riem_err);
		printf("unmetered: %.0f s\n", c[0].unmetered_s);
		free(c);
		pm_energy_free(e);
		{
			char cmd[64];

			snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
			(void)!system(cmd);
		}
		return fabs(trap_err) <= GOAL_PERCENT ? 0 : 1;
	}
}
