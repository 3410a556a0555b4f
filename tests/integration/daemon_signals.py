#!/usr/bin/env python3
"""powermeterd's process contract: SIGHUP with a broken config logs every
error and keeps running the old one, SIGHUP with a good changed config
applies it; SIGTERM and SIGINT exit 0 at once; a bad config at start exits
78 with its errors; stop is prompt even while a module times out."""
import json
import os
import re
import signal
import time
import unittest

import common
import daemonlib
from sim import Sim


def lines_with(text, needle):
    return [l for l in text.splitlines() if needle in l]


class Signals(unittest.TestCase):
    def start(self, **kw):
        self.sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        self.cfg = daemonlib.daemon_config(self, self.sim, interval=0.25, **kw)
        self.d = daemonlib.Daemon(self, self.cfg, stdout=True).start()
        common.wait_for(lambda: "powermeter," in self.d.stdout(), 10, what="line protocol")

    def test_hup_broken_config_keeps_running(self):
        self.start()
        with open(self.cfg) as f:
            good = f.read()
        broken = json.loads(good)
        broken["interval"] = "often"
        broken["devices"][0]["inputs"][0]["ratio"] = "x"
        broken["devices"][1]["address"] = 300
        with open(self.cfg, "w") as f:
            json.dump(broken, f)
        since = time.monotonic()
        self.d.hup()
        self.d.notify.wait("RELOADING", "1", after=since)
        self.d.notify.wait("READY", "1", after=since)
        err = self.d.wait_stderr("keeping the running configuration")[0]
        text = self.d.stderr()
        # every error reported, each naming the file
        self.assertTrue(re.search(r"interval", text), text)
        self.assertTrue(re.search(r"inputs\[0\]\.ratio", text), text)
        self.assertTrue(re.search(r"address", text), text)
        self.assertIn("powermeter.json", err)
        # still polling with the old config
        n = len(daemonlib.ok_reads(self.sim))
        common.wait_for(lambda: len(daemonlib.ok_reads(self.sim)) >= n + 8, 10,
                        what="reads after a failed reload")
        self.assertTrue(self.d.running())
        self.assertEqual(self.d.stop(), 0)

    def test_hup_good_config_applies(self):
        self.start()
        daemonlib.rewrite_config(self.cfg, lambda c: c["devices"][0]["inputs"][0].update(
            name="Renamed circuit"))
        since = time.monotonic()
        self.d.hup()
        self.d.notify.wait("RELOADING", "1", after=since)
        ready = self.d.notify.wait("READY", "1", after=since)
        reloading = self.d.notify.wait("RELOADING", "1", after=since)
        self.assertLess(reloading[0][0], ready[0][0])
        self.assertIn("MONOTONIC_USEC", reloading[0][1])
        common.wait_for(lambda: "name=Renamed\\ circuit" in self.d.stdout(), 10,
                        what="the renamed input in the output")
        self.d.wait_stderr("configuration reloaded")
        self.assertEqual(self.d.stop(), 0)

    def test_sigterm_and_sigint_exit_0_promptly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            sim = Sim(self, [{"baud": 9600, "modules": [1, 2]}]).start()
            # a module that never answers, with a long timeout: stop must
            # not wait for more than the read in progress
            sim.fault(0, 2, "noanswer")
            cfg = daemonlib.daemon_config(self, sim, interval=0.5, timeout=1.0)
            d = daemonlib.Daemon(self, cfg).start()
            sim.wait_log(lambda e: e["addr"] == 2, count=2, timeout=10)
            t0 = time.monotonic()
            self.assertEqual(d.stop(sig), 0, d.stderr())
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertTrue(d.notify.all("STOPPING"), "no STOPPING=1")
            self.assertIn("stopped", d.stderr())

    def test_bad_config_exits_78_with_every_error(self):
        d = common.tmpdir(self)
        path = os.path.join(d, "powermeter.json")
        with open(path, "w") as f:
            json.dump({"interval": -1, "devices": [{"id": 1, "port": "/dev/null",
                                                    "baudrate": 1234, "inputs": []}],
                       "bogus": 1}, f)
        r = common.run([common.POWERMETERD, "-c", path], timeout=10)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertGreaterEqual(len([l for l in r.stderr.splitlines() if "powermeter.json" in l]),
                                3, r.stderr)
        r = common.run([common.POWERMETERD, "-c", os.path.join(d, "missing.json")], timeout=10)
        self.assertEqual(r.returncode, 78, r.stderr)
        r = common.run([common.POWERMETERD, "--bogus"], timeout=10)
        self.assertEqual(r.returncode, 64, r.stderr)
        r = common.run([common.POWERMETERD, "--help"], timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--stdout", r.stdout)

    def test_journal_priority_prefixes(self):
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        sim.fault(0, 1, "noanswer")
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, timeout=0.1)
        d = daemonlib.Daemon(self, cfg, env={"JOURNAL_STREAM": "8:1234"}).start()
        d.wait_stderr(r"^<4>device 1 on .* no answer")
        self.assertEqual(d.stop(), 0)
        for line in d.stderr().splitlines():
            self.assertRegex(line, r"^<[0-7]>", line)


if __name__ == "__main__":
    common.main()
