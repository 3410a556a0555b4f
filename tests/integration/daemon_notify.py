#!/usr/bin/env python3
"""sd_notify on a test NOTIFY_SOCKET: READY=1 with a STATUS=, STATUS=
refreshed while running, WATCHDOG=1 every WatchdogSec/2 when WATCHDOG_USEC
is set and WATCHDOG_PID names the daemon (never otherwise), STOPPING=1."""
import socket
import time
import unittest

import common
import daemonlib
from fakehttp import FakeInflux
from sim import Sim


class Notify(unittest.TestCase):
    def test_ready_status_watchdog_stopping(self):
        sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=0.25)
        d = daemonlib.Daemon(self, cfg, watchdog_usec=1000000).start()
        ready = d.notify.wait("READY", "1")
        self.assertIn("STATUS", ready[0][1])
        self.assertIn("modules", ready[0][1]["STATUS"])
        pings = d.notify.wait("WATCHDOG", "1", count=5, timeout=10)
        gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
        for g in gaps:
            self.assertLess(g, 1.0, gaps)   # every 0.5 s; 1 s would be fatal
        def all_up():
            return [m for t, m in d.notify.all("STATUS")
                    if m["STATUS"].startswith("2/2 modules up")]
        common.wait_for(all_up, 15, what="STATUS=2/2 modules up")
        self.assertEqual(d.stop(), 0)
        stopping = d.notify.all("STOPPING")
        self.assertTrue(stopping, "no STOPPING=1")
        self.assertGreater(stopping[0][0], pings[-1][0])

    def test_no_watchdog_for_another_pid(self):
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=0.25)
        d = daemonlib.Daemon(self, cfg, watchdog_usec=400000, watchdog_pid=1).start()
        time.sleep(1.5)
        self.assertEqual(d.notify.all("WATCHDOG"), [])
        self.assertEqual(d.stop(), 0)

    def test_status_counts_a_dead_module(self):
        sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        sim.fault(0, 2, "noanswer")
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, timeout=0.1)
        d = daemonlib.Daemon(self, cfg).start()

        def one_down():
            return [m for t, m in d.notify.all("STATUS") if m["STATUS"].startswith("1/2 modules up")]
        common.wait_for(one_down, 15, what="STATUS=1/2 modules up")
        self.assertEqual(d.stop(), 0)

    def test_watchdog_continues_while_database_is_down(self):
        # Nothing listens on the port, then a server that accepts but never
        # answers: the writer is failing but alive, so the pings go on.
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        for url in ("http://127.0.0.1:%d" % common.free_port(),
                    "http://127.0.0.1:%d" % silent.getsockname()[1]):
            cfg = daemonlib.daemon_config(self, sim, interval=0.25, influx={
                "url": url, "database": "powermeter", "timeout": 1})
            d = daemonlib.Daemon(self, cfg, watchdog_usec=3000000).start()
            since = time.monotonic()
            pings = d.notify.wait("WATCHDOG", "1", count=4, timeout=10, after=since)
            gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
            self.assertLess(max(gaps), 2.0, (url, gaps))
            self.assertNotIn("not pinging", d.stderr())
            self.assertEqual(d.stop(), 0)

    def assert_pings_go_on(self, d, what):
        since = time.monotonic()
        pings = d.notify.wait("WATCHDOG", "1", count=5, timeout=15, after=since)
        gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 2.0, (what, gaps))
        self.assertNotIn("not pinging", d.stderr())

    def test_watchdog_with_a_long_flush_interval(self):
        # Polls and flushes every 3 s while the watchdog wants a ping every
        # 1.5 s: the writer, idle between flushes, still shows progress.
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        fake = FakeInflux(self)
        cfg = daemonlib.daemon_config(self, sim, interval=3, influx={
            "url": fake.url, "database": "powermeter", "flush_interval": 3})
        d = daemonlib.Daemon(self, cfg, watchdog_usec=3000000).start()
        self.assert_pings_go_on(d, "idle writer")
        self.assertEqual(d.stop(), 0)
        self.assertTrue(fake.stored())

    def test_watchdog_during_a_slow_request(self):
        # A database that takes the request and never answers, with a
        # request timeout (6 s) longer than the watchdog's period: the
        # writer waits inside the request, alive, and the pings go on.
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, influx={
            "url": "http://127.0.0.1:%d" % silent.getsockname()[1],
            "database": "powermeter", "timeout": 6})
        d = daemonlib.Daemon(self, cfg, watchdog_usec=3000000).start()
        self.assert_pings_go_on(d, "slow request")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    common.main()
