#!/usr/bin/env python3
"""The database down for 20 s with a reload and a daemon restart in the
middle: samples wait in the spool across both and, once InfluxDB 1.6 is
back, every sample the simulator answered is there, with its original
timestamp."""
import time
import unittest

import common
import daemonlib
from servers import Influx1
from sim import Sim

INTERVAL = 0.5


class Outage(unittest.TestCase):
    def test_outage_with_restart_loses_nothing(self):
        db = Influx1(self)
        sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, influx={
            "url": db.url, "database": db.database, "timeout": 2})
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: db.count() >= 8, 20, what="first points in InfluxDB")

        db.stop()
        down = time.monotonic()
        time.sleep(4)
        # a reload while points wait: they must survive it
        d.hup()
        d.notify.wait("READY", "1", after=time.monotonic() - 0.1, timeout=15)
        d.wait_stderr("configuration reloaded")
        time.sleep(max(0.0, 10 - (time.monotonic() - down)))
        self.assertEqual(d.stop(), 0, d.stderr())
        first_stderr = d.stderr()
        d.start()
        time.sleep(max(0.0, 20 - (time.monotonic() - down)))
        db.start()

        def caught_up():
            reads = daemonlib.ok_reads(sim)
            return db.count() >= len(reads) * len(daemonlib.INPUTS) - 8
        common.wait_for(caught_up, 60, interval=0.5, what="spool replayed")
        self.assertEqual(d.stop(), 0, d.stderr())

        reads = daemonlib.ok_reads(sim)
        expected = daemonlib.expected_points(sim, reads)
        self.assertGreater(len(expected), 100)
        daemonlib.match_points(self, expected, db.points("powermeter"))
        self.assertTrue(first_stderr, "the daemon said nothing about the outage")


if __name__ == "__main__":
    common.main()
