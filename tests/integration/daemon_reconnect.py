#!/usr/bin/env python3
"""A converter that vanishes (sim disconnect) is closed and reopened when it
is back, without restarting the daemon, while the other converter keeps its
cadence; a port held by another process is reported with the holder's pid
and taken once it is free."""
import fcntl
import os
import unittest

import common
import daemonlib
from sim import Sim

INTERVAL = 0.25


class Reconnect(unittest.TestCase):
    def test_disconnect_and_return(self):
        sim = Sim(self, [{"baud": 19200, "modules": [1]},
                         {"baud": 19200, "modules": [1]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, timeout=0.2)
        d = daemonlib.Daemon(self, cfg).start()
        sim.wait_log(lambda e: e["result"] == "ok" and e["bus"] == sim.path(0), count=3)
        sim.disconnect(0, 2)
        gone_ms = daemonlib.time_ms()
        d.wait_stderr(r"device 1 on .*: ")
        # back after 2 s: reopened within a few ticks
        sim.wait_log(lambda e: e["result"] == "ok" and e["bus"] == sim.path(0)
                     and e["t_ms"] > gone_ms + 2000, count=3, timeout=10)
        d.wait_stderr(r"device 1 on .* answering again")
        self.assertTrue(d.running())
        # the other converter never missed a tick
        other = [t for b, a, t, _ in daemonlib.ok_reads(sim) if b == 1]
        gaps = [y - x for x, y in zip(other, other[1:])]
        self.assertLess(max(gaps), INTERVAL * 1000 + 150, gaps)
        self.assertEqual(d.stop(), 0)

    def test_one_converter_under_two_names(self):
        """A udev symlink and the tty it names are one bus: one poller reads
        both modules in turn, and never finds the port busy with itself."""
        sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        d = common.tmpdir(self)
        link = os.path.join(d, "ttyUSBPWR1")
        os.symlink(sim.path(0), link)
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, timeout=0.2)
        daemonlib.rewrite_config(cfg, lambda c: c["devices"][1].update(port=link))
        dm = daemonlib.Daemon(self, cfg).start()
        sim.wait_log(lambda e: e["result"] == "ok" and e["addr"] == 2, count=4)
        sim.wait_log(lambda e: e["result"] == "ok" and e["addr"] == 1, count=4)
        self.assertEqual(dm.stop(), 0)
        self.assertNotIn("busy", dm.stderr())
        self.assertIn("on 1 port", dm.stderr())

    def test_busy_port_names_holder(self):
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        fd = os.open(sim.path(0), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"busy \(held by pid %d\)" % os.getpid())
        self.assertEqual(daemonlib.ok_reads(sim), [])
        fcntl.flock(fd, fcntl.LOCK_UN)
        sim.wait_log(lambda e: e["result"] == "ok", count=2, timeout=10)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    common.main()
