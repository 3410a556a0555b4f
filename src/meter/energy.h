/* energy.h — energy (Wh) and charge (Ah) counters per circuit: integrated
 * from consecutive good samples of the same input (trapezoid), with a gap
 * rule, kept per (device id, channel) so that reordering a config never moves
 * energy between circuits, and saved in a state file that survives restarts,
 * upgrades and power loss.
 *
 * What outputs show of a counter only ever goes up: it is a value already
 * durable in both generations of the state file (the newest and the one
 * before it), so neither a crash nor a damaged newest file can take a
 * shown counter back. Shown counters therefore trail the integrated ones by
 * one to two save intervals. */
#ifndef PM_METER_ENERGY_H
#define PM_METER_ENERGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "meter/sample.h"

/* The state file's first line and version; a reader refuses others. */
#define PM_ENERGY_FORMAT "powermeter-energy"
#define PM_ENERGY_VERSION 1
/* In the state directory: the newest generation, the one before it, and
 * the prefix of damaged files kept aside for inspection. */
#define PM_ENERGY_FILE "energy.state"
#define PM_ENERGY_PREVIOUS PM_ENERGY_FILE ".prev"
#define PM_ENERGY_DAMAGED PM_ENERGY_FILE ".damaged-"
/* Present while no counter is shown (no usable save was found). */
#define PM_ENERGY_WITHHELD PM_ENERGY_FILE ".withheld"
/* Counters kept, configured or not (orphans stay for a later re-add). */
#define PM_ENERGY_COUNTERS_MAX 65536

struct pm_energy_counter {
	int device_id;
	unsigned channel;		/* 0..15 */
	double energy_wh;		/* integrated */
	double charge_ah;
	double unmetered_s;		/* gaps longer than max_gap, down time */
	int64_t last_ms;		/* the last sample integrated, 0: none */
	double last_power_w;		/* at last_ms */
	double last_current_a;
	double shown_energy_wh;		/* what outputs may show */
	double shown_charge_ah;
	double saved_energy_wh;		/* integrated, in the newest file */
	double saved_charge_ah;
	bool configured;		/* an input of the running config */
	/* the highest current since pm_energy_take_peaks() (the ledger's
	 * peak per interval); has_peak false: no sample since */
	bool has_peak;
	double peak_a;
};

/* Where the counters came from when opened. */
enum pm_energy_origin {
	PM_ENERGY_NEW,		/* no state file: every counter starts at 0 */
	PM_ENERGY_LOADED,	/* the newest generation */
	PM_ENERGY_FALLBACK,	/* the newest was damaged: the one before it */
	PM_ENERGY_HELD_BACK,	/* none usable: counting from 0, not shown */
};

struct pm_energy_open_report {
	enum pm_energy_origin origin;
	size_t counters;		/* loaded */
	int newest_err;			/* why the newest was not used, 0 */
	int previous_err;		/* why the previous was not used, 0 */
	char newest_aside[4096];	/* where a damaged file was put, "" */
	char previous_aside[4096];
};

struct pm_energy;

/* Opens the counters kept in directory 'dir' (created if missing is the
 * caller's business). A damaged file is renamed aside
 * (PM_ENERGY_DAMAGED + time) and the previous generation used; with none
 * usable, counting starts at 0 and no counter is shown while the file
 * PM_ENERGY_WITHHELD exists in 'dir' (whoever removes it accepts the
 * restart from 0).
 * 0, -ENOMEM, or -errno (or -PM_ENOTREG) when a file cannot be read for
 * another reason than damage (permissions, I/O, a FIFO in its place):
 * nothing is touched then, and the report's newest_err or previous_err
 * says which. */
int pm_energy_open(struct pm_energy **e, const char *dir,
		   struct pm_energy_open_report *report);
void pm_energy_free(struct pm_energy *e);

/* Uses 'cfg' from now on (start and reload): its inputs' counters, created
 * at 0 when new; counters of inputs no longer configured are kept. The
 * config must outlive its use here. 0 or -ENOMEM. */
int pm_energy_configure(struct pm_energy *e, const struct pm_config *cfg);

/* Raises the integrated counters of (device_id, channel) to at least
 * 'energy_wh' and 'charge_ah': the billing ledger's newest row, which a
 * crash between two saves of the state file may have left ahead of it.
 * Counters only ever go up. True when one was raised. Thread-safe. */
bool pm_energy_raise(struct pm_energy *e, int device_id, unsigned channel,
		     double energy_wh, double charge_ah);

/* Integrates the good sample 's' of cfg->devices[s->device] into its
 * inputs' counters and stores what outputs show in s->energy_wh[] and
 * s->charge_ah[] (NaN where withheld); s->has_energy is set. Between two
 * samples of an input at most cfg->energy.max_gap apart the trapezoid of
 * power and current is added; a longer gap adds nothing and counts as
 * unmetered. Thread-safe. */
void pm_energy_add(struct pm_energy *e, struct pm_sample *s);

/* Writes the newest generation (temporary file, fsync, the current one
 * kept as the previous, rename, fsync of the directory) stamped 'now_ms',
 * then lets outputs show what both generations now hold. Never called on a
 * poller thread: an SD card may take a while. 0 or -errno (the files are
 * as they were). */
int pm_energy_save(struct pm_energy *e, int64_t now_ms);

/* Number of saves so far (the flash-wear benchmark counts them). */
uint64_t pm_energy_saves(const struct pm_energy *e);

/* Copies the counters (every counter, configured or not) into a malloc'd
 * array; 0 or -ENOMEM. */
int pm_energy_counters(struct pm_energy *e, struct pm_energy_counter **out,
		       size_t *n);

/* pm_energy_counters(), and every counter's peak starts again: what the
 * ledger takes at each of its boundaries. */
int pm_energy_take_peaks(struct pm_energy *e, struct pm_energy_counter **out,
			 size_t *n);

/* The counter of (device_id, channel) among c[0..n) as pm_energy_counters()
 * hands them out (sorted by both), or NULL. */
const struct pm_energy_counter *
pm_energy_counter_find(const struct pm_energy_counter *c, size_t n,
		       int device_id, unsigned channel);

/* Reads the state file at 'path' (read-only: `powermeter energy`). On 0,
 * *out holds *n counters (malloc'd) and *written_ms the time it was
 * written. -ENOENT, -PM_EFRAME for a damaged or foreign file, -PM_ETOOBIG,
 * -ENOMEM or -errno. */
int pm_energy_read_file(const char *path, struct pm_energy_counter **out,
			size_t *n, int64_t *written_ms);

#endif
