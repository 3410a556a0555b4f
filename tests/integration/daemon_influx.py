#!/usr/bin/env python3
"""powermeterd into InfluxDB 1.6 (v1 write API): two converters polled in
parallel for 10 s; every successful read the simulator logged is in the
database once per input with its value, tags and timestamp, the ticks keep
their cadence, and SIGTERM flushes the samples read up to the stop."""
import json
import time
import unittest

import common
import daemonlib
from servers import Influx1
from sim import Sim

INTERVAL = 0.5


class DaemonInfluxV1(unittest.TestCase):
    def test_every_sample_arrives_two_converters(self):
        db = Influx1(self)
        sim = Sim(self, [{"baud": 9600, "modules": [1, 2]},
                         {"baud": 9600, "modules": [1]}]).start()
        # A long flush interval: without the flush at SIGTERM the last
        # samples would still be in memory when the daemon exits.
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, influx={
            "url": db.url, "database": db.database, "flush_interval": 5})
        d = daemonlib.Daemon(self, cfg).start()
        started_ms = time.time() * 1000
        common.wait_for(lambda: len(daemonlib.ok_reads(sim)) >= 3 * 20, 30,
                        what="10 s of reads")
        self.assertEqual(d.stop(), 0, d.stderr())
        stopped_ms = time.time() * 1000

        reads = daemonlib.ok_reads(sim)
        self.assertGreaterEqual(len(reads), 60)
        expected = daemonlib.expected_points(sim, reads)
        rows = db.points("powermeter")
        daemonlib.match_points(self, expected, rows)
        for r in rows:
            self.assertTrue(started_ms - 1000 <= r["time"] <= stopped_ms, r)
            self.assertEqual(r["unique_id"], str(self._unique_id(cfg, r)), r)

        # Cadence: each module once per tick, ticks on multiples of the
        # interval, nothing bunched up.
        for key in {(b, a) for b, a, _, _ in reads}:
            times = sorted(t for b, a, t, _ in reads if (b, a) == key)
            gaps = [y - x for x, y in zip(times, times[1:])]
            for g in gaps:
                self.assertAlmostEqual(g, INTERVAL * 1000, delta=100,
                                       msg="module %s: gaps %s" % (key, gaps))
        # Parallel converters: the first module of each bus is read at the
        # same moment of each tick.
        first0 = sorted(t for b, a, t, _ in reads if (b, a) == (0, 1))
        first1 = sorted(t for b, a, t, _ in reads if (b, a) == (1, 1))
        pairs = 0
        for t in first0:
            near = [u for u in first1 if abs(u - t) < INTERVAL * 500]
            if near:
                pairs += 1
                self.assertLess(abs(near[0] - t), 50, "bus 0 at %s, bus 1 at %s" % (t, near[0]))
        self.assertGreaterEqual(pairs, 15)

    @staticmethod
    def _unique_id(cfg_path, row):
        """The input's position in the config (pm_input.id)."""
        with open(cfg_path) as f:
            cfg = json.load(f)
        n = 0
        for dev in cfg["devices"]:
            for inp in dev["inputs"]:
                if str(dev["id"]) == row["device_id"] and inp["input"] == row["input"]:
                    return n
                n += 1
        return None


if __name__ == "__main__":
    common.main()
