/* ledger.h — the billing ledger: a SQLite file (WAL) that powermeterd
 * appends every circuit's counters to at each boundary of "ledger.interval"
 * (aligned to the clock), and `powermeter report` reads. Its schema is a
 * public interface, documented in powermeter-ledger(5); version 1:
 *
 *   PRAGMA application_id = 0x504d4c47 ('PMLG'); PRAGMA user_version = 1;
 *   ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
 *       'schema' = '1', 'created' (Unix s), 'writer' ("powermeterd 0.3.0")
 *   circuits (id INTEGER PRIMARY KEY,       -- 0 .. PM_LEDGER_CIRCUIT_MAX
 *             device_id INTEGER NOT NULL,   -- with channel: the identity
 *             channel TEXT NOT NULL,        -- 'a'..'p'
 *             name TEXT NOT NULL, phase TEXT, feed TEXT,
 *             voltage REAL NOT NULL, power_factor REAL NOT NULL,
 *             breaker REAL, tags TEXT NOT NULL,  -- JSON object
 *             since INTEGER NOT NULL)       -- Unix s of its first boundary
 *       one row per description of a circuit: a new row when its name,
 *       phase, feed, voltage, power factor, breaker or tags change
 *   boundaries (time INTEGER PRIMARY KEY,   -- Unix s, end of the interval
 *                interval INTEGER NOT NULL) -- seconds
 *   readings (key INTEGER PRIMARY KEY,      -- time * 2^16 + circuit id
 *             energy_mwh INTEGER NOT NULL,  -- energy counter, mWh
 *             charge_mah INTEGER NOT NULL,  -- charge counter, mAh
 *             peak_ca INTEGER,              -- highest current in the
 *                                           -- interval, cA; NULL: none
 *             unmetered_s INTEGER NOT NULL) -- unmetered seconds counted
 *                                           -- in the interval
 *   VIEW ledger (time, circuit, device_id, channel, name, phase, feed,
 *                tags, energy_wh, charge_ah, peak_a, unmetered_s,
 *                interval)                  -- readings joined, in units
 *
 * The counters are the daemon's energy counters (never going down); the
 * energy of an interval is the difference to the circuit's row at the
 * boundary before. The compound key keeps a row near 27 bytes: a circuit
 * year at 15 minutes is under 1 MB. */
#ifndef PM_LEDGER_H
#define PM_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_LEDGER_APPLICATION_ID 0x504d4c47
#define PM_LEDGER_SCHEMA 1
#define PM_LEDGER_CIRCUIT_BITS 16
#define PM_LEDGER_CIRCUIT_MAX ((1 << PM_LEDGER_CIRCUIT_BITS) - 1)

struct pm_ledger;

/* What a circuit is at a boundary (its description). */
struct pm_ledger_circuit {
	int device_id;
	char channel;			/* 'a'..'p' */
	const char *name;
	const char *phase;		/* NULL: none */
	const char *feed;		/* NULL: none */
	double voltage, power_factor;
	double breaker;			/* 0: none */
	const char *tags;		/* JSON object text, "{}" when none */
};

/* One circuit's row at a boundary. */
struct pm_ledger_row {
	struct pm_ledger_circuit c;
	double energy_wh;		/* the counter */
	double charge_ah;
	double peak_a;			/* NaN: no reading in the interval */
	double unmetered_s;		/* counted in the interval */
};

enum {
	PM_LEDGER_WRITE = 1,		/* create if missing, WAL, append */
	PM_LEDGER_READ = 2,		/* read-only, never creates */
};

/* Opens the ledger at 'path'. On failure, 'err' (size bytes) says why in a
 * line for a person, e.g. "/x/ledger.sqlite: not a powermeter ledger (a
 * SQLite file of another program)". Returns 0 or:
 *   -ENOENT          PM_LEDGER_READ and no such file
 *   -PM_EFRAME       not a SQLite file, another program's, or damaged
 *   -EPROTO          written by a newer powermeter (schema above ours)
 *   -EBUSY           locked for longer than the busy timeout
 *   -errno           anything else */
int pm_ledger_open(struct pm_ledger **out, const char *path, int mode,
		   char *err, size_t size);
void pm_ledger_close(struct pm_ledger *l);

/* Writer: one transaction for a boundary at Unix second 'time' closing an
 * interval of 'interval' seconds: the boundary and rows[0..n). A boundary
 * already there is left as it is (0). 0 or a negative error with 'err'
 * filled (a full disk, a lock, damage); nothing of it is written then. */
int pm_ledger_append(struct pm_ledger *l, int64_t time, unsigned interval,
		     const struct pm_ledger_row *rows, size_t n, char *err,
		     size_t size);

/* Writer: the counters of the newest row of circuit identity (device_id,
 * channel) into *energy_wh and *charge_ah. 0, -ENOENT when it has none. */
int pm_ledger_last(struct pm_ledger *l, int device_id, char channel,
		   double *energy_wh, double *charge_ah);

/* Writer: removes boundaries and readings older than 'before' (Unix s) and
 * the descriptions no reading uses any more. 0 or a negative error. */
int pm_ledger_prune(struct pm_ledger *l, int64_t before, char *err,
		    size_t size);

/* The SQLite handle, for readers (report.c) that run their own queries. */
struct sqlite3 *pm_ledger_db(struct pm_ledger *l);

#endif
