#!/usr/bin/env python3
"""The billing ledger with the real daemon and hdhk-sim: a row per circuit at
every clock-aligned boundary, energy per interval matching the currents the
simulator serves, counters that never go back through SIGKILL and restarts
(and are raised from the ledger when the state file is older), agreement
with the energy counters in a real InfluxDB, and a locked or damaged
database that is reported while polling and InfluxDB go on."""
import json
import os
import signal
import sqlite3
import subprocess
import time
import unittest

import common
import daemonlib
from servers import Influx1
from sim import Sim

INTERVAL = 0.25     # polls
BOUNDARY = 2        # ledger interval, seconds
VOLTS = 230.0


def config(testcase, sim, influx=None, energy=None, ledger=None):
    extra = {"energy": energy or {"persist_interval": 1},
             "ledger": {"interval": BOUNDARY} if ledger is None else ledger}
    return daemonlib.daemon_config(testcase, sim, interval=INTERVAL, inputs="ab",
                                   influx=influx, extra=extra)


def ledger_path(cfg):
    with open(cfg) as f:
        return os.path.join(json.load(f)["state_directory"], "ledger.sqlite")


def rows(path):
    """The ledger view: [(time, device_id, channel, name, energy_wh,
    charge_ah, peak_a, unmetered_s, interval)] by time, device, channel."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT time, device_id, channel, name, energy_wh, charge_ah, "
                          "peak_a, unmetered_s, interval FROM ledger "
                          "ORDER BY time, device_id, channel").fetchall()
    finally:
        db.close()


def boundaries_seen(path, n):
    try:
        return len({r[0] for r in rows(path)}) >= n
    except sqlite3.Error:
        return False


class Ledger(unittest.TestCase):
    def test_rows_at_boundaries_match_the_currents(self):
        """10 A and 5 A at 230 V: every 2 s interval holds 10 x 230 x 2 /
        3600 Wh and 5 x 230 x 2 / 3600 Wh, its peak is the current, and
        nothing is unmetered; InfluxDB's counters never pass the ledger's."""
        db = Influx1(self)
        sim = Sim.single(self)
        sim.set(0, 1, "a", 1000)
        sim.set(0, 1, "b", 500)
        cfg = config(self, sim, influx={"url": db.url, "database": "powermeter"})
        path = ledger_path(cfg)
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: boundaries_seen(path, 5), 20, what="5 boundaries")
        self.assertEqual(d.stop(), 0, d.stderr())
        r = rows(path)
        times = sorted({x[0] for x in r})
        self.assertTrue(all(t % BOUNDARY == 0 for t in times), times)
        self.assertEqual([b - a for a, b in zip(times, times[1:])],
                         [BOUNDARY] * (len(times) - 1))
        by = {}
        for t, dev, ch, name, wh, ah, peak, unmetered, interval in r:
            by.setdefault(ch, []).append((t, wh, ah, peak, unmetered, interval))
            self.assertEqual(dev, 1)
            self.assertEqual(name, daemonlib.input_name(1, ch))
            self.assertEqual(interval, BOUNDARY)
        for ch, amps in (("a", 10.0), ("b", 5.0)):
            series = by[ch]
            self.assertEqual(len(series), len(times))
            # the first interval may start with the daemon: skip it
            for (t0, wh0, ah0, *_), (t1, wh1, ah1, peak, unmetered, _) in \
                    zip(series[1:], series[2:]):
                # one poll interval of energy either way at each edge
                self.assertAlmostEqual(wh1 - wh0, amps * VOLTS * BOUNDARY / 3600,
                                       delta=amps * VOLTS * INTERVAL / 3600 + 0.001)
                # (the ledger keeps whole mAh)
                self.assertAlmostEqual(ah1 - ah0, amps * BOUNDARY / 3600,
                                       delta=amps * INTERVAL / 3600 + 0.001)
                self.assertAlmostEqual(peak, amps, places=6)
                self.assertEqual(unmetered, 0)
        # what InfluxDB showed trails the ledger's counter, never passes it
        doc = db.query("SELECT max(energy) FROM powermeter GROUP BY input")
        shown = {s["tags"]["input"]: s["values"][0][1] for s in doc["results"][0]["series"]}
        for ch in "ab":
            last_wh = by[ch][-1][1]
            self.assertLessEqual(shown[ch], last_wh + 1e-6)
            # within two save intervals (1 s) plus a boundary of energy
            self.assertGreater(shown[ch], last_wh - (2 + BOUNDARY) * 10 * VOLTS / 3600)

    def test_counters_never_go_back_through_sigkill(self):
        """Killed right after a boundary with the state file a minute old:
        the restarted daemon raises its counters to the ledger's rows, so
        no row is ever below the one before."""
        sim = Sim.single(self)
        sim.set(0, 1, "a", 2000)
        cfg = config(self, sim, energy={"persist_interval": 60})
        path = ledger_path(cfg)
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: boundaries_seen(path, 3), 20, what="3 boundaries")
        d.stop(signal.SIGKILL)
        before = rows(path)
        d2 = daemonlib.Daemon(self, cfg).start()
        d2.wait_stderr("energy counters raised to their newest ledger rows")
        n = len({x[0] for x in before})
        common.wait_for(lambda: boundaries_seen(path, n + 2), 20, what="2 more boundaries")
        self.assertEqual(d2.stop(), 0, d2.stderr())
        series = [x[4] for x in rows(path) if x[2] == "a"]
        self.assertEqual(series, sorted(series))
        self.assertGreater(series[-1], series[n - 1])

    def test_locked_database_is_reported_and_caught_up(self):
        """Another program holds the ledger locked for 5 s: the daemon
        says so, keeps polling, and writes the boundaries it kept."""
        sim = Sim.single(self)
        cfg = config(self, sim)
        path = ledger_path(cfg)
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: boundaries_seen(path, 2), 20, what="2 boundaries")
        t_lock = daemonlib.time_ms()
        holder = subprocess.Popen(["sqlite3", path], stdin=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN EXCLUSIVE;\nINSERT INTO ledger_meta VALUES ('x', 'y');\n")
        holder.stdin.flush()
        d.wait_stderr(r"ledger: .*(locked|busy)", timeout=10)
        time.sleep(3)
        holder.stdin.write("ROLLBACK;\n.quit\n")
        holder.stdin.close()
        holder.wait(10)
        t_free = daemonlib.time_ms()
        d.wait_stderr(r"ledger: .* written again", timeout=20)
        self.assertEqual(d.stop(), 0, d.stderr())
        times = sorted({x[0] for x in rows(path)})
        # every boundary of the locked stretch was kept and written
        locked = [t for t in range(int(t_lock / 1000) + 1, int(t_free / 1000))
                  if t % BOUNDARY == 0]
        self.assertTrue(set(locked) <= set(times), (locked, times))
        # polling went on all along
        reads = sorted(t for _, _, t, _ in daemonlib.ok_reads(sim, t_lock, t_free))
        gaps = [b - a for a, b in zip(reads, reads[1:])]
        self.assertLess(max(gaps), INTERVAL * 1000 * 2, gaps)

    def test_damaged_ledger_never_stops_polling(self):
        db = Influx1(self)
        sim = Sim.single(self)
        cfg = config(self, sim, influx={"url": db.url, "database": "powermeter"})
        path = ledger_path(cfg)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"this is not a database, just 4 KiB of junk\n" * 100)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"ledger: .*ledger\.sqlite", timeout=10)
        n0 = db.count()
        common.wait_for(lambda: db.count() > n0 + 8, 15, what="points in InfluxDB")
        self.assertEqual(d.stop(), 0, d.stderr())
        # the file is left for the admin, not overwritten
        with open(path, "rb") as f:
            self.assertTrue(f.read().startswith(b"this is not a database"))
        # one line about it, not one per boundary
        lines = [l for l in d.stderr().splitlines() if "ledger:" in l and "ledger.sqlite" in l]
        self.assertLessEqual(len(lines), 2, lines)

    def test_ledger_off(self):
        sim = Sim.single(self)
        cfg = config(self, sim, ledger=False)
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(2 * BOUNDARY + 0.5)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertFalse(os.path.exists(ledger_path(cfg)))


if __name__ == "__main__":
    common.main()
