#!/usr/bin/env python3
"""The watchdog, proven: a poller or the InfluxDB writer really hangs (the
test-only fault point PM_TEST_HANG=THREAD:FILE, src/daemon/testfault.h,
holds it while FILE exists) and powermeterd stops sending WATCHDOG=1 within
WatchdogSec of the hang, so systemd would restart it; the log names the
stuck thread; once the thread goes on, so do the pings.

Times are CLOCK_MONOTONIC on both sides: the test's notify socket stamps
each datagram with time.monotonic(), the fault point logs the instant the
thread stopped and went on. Each case prints its figures as TAP comments."""
import os
import re
import time
import unittest

import common
import daemonlib
from fakehttp import FakeInflux
from sim import Sim

# WatchdogSec: systemd restarts the daemon this long after its last ping.
# A poller counts as stuck when one step of its tick (one module's read and
# its firmware read, with every retry: 2 x timeout x (retries + 2)) has
# taken 5 s longer than that (poller.c), whatever the interval and however
# many modules share its bus; the writer WatchdogSec/2 after its last loop
# (notify.c): both well inside 8 s with the config below.
WATCHDOG_SEC = 8.0
INTERVAL = 0.25
TIMEOUT = 0.1
# The main thread samples progress every 0.5 s (notify.c): allowed on top
# of a ping period when the pings resume.
SAMPLE_SEC = 0.5


def monotonic_in(line):
    m = re.search(r"\(monotonic ([0-9.]+) s\)", line)
    if not m:
        raise AssertionError("no monotonic time in %r" % line)
    return float(m.group(1))


class Watchdog(unittest.TestCase):
    def hang_and_recover(self, thread, stuck_name, influx=None, after_recovery=None,
                         modules=(1,), retries=None):
        sim = Sim(self, [{"baud": 115200, "modules": list(modules)}]).start()
        hang = os.path.join(common.tmpdir(self, "pm-hang-"), "hang")
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, timeout=TIMEOUT,
                                      influx=influx)
        if retries is not None:
            daemonlib.rewrite_config(cfg, lambda c: [dev.update(retries=retries)
                                                     for dev in c["devices"]])
        d = daemonlib.Daemon(self, cfg, watchdog_usec=int(WATCHDOG_SEC * 1e6),
                             env={"PM_TEST_HANG": "%s:%s" % (thread, hang)}).start()
        # steady first: pings every WatchdogSec/2
        d.notify.wait("WATCHDOG", "1", count=2, timeout=3 * WATCHDOG_SEC)

        with open(hang, "w"):
            pass
        hung_at = monotonic_in(d.wait_stderr(r"test fault: the %s thread hangs" % thread,
                                             timeout=10)[0])
        d.wait_stderr(r"watchdog: the %s thread makes no progress; not pinging" % stuck_name,
                      timeout=2 * WATCHDOG_SEC)
        # logged when the first ping is withheld (seen within 20 ms)
        withheld = time.monotonic()
        # Held until the silence is longer than WatchdogSec: systemd would
        # have killed it by now.
        last = max(t for t, m in d.notify.all("WATCHDOG"))
        while time.monotonic() < last + WATCHDOG_SEC + 1.0:
            time.sleep(0.1)
        pings = [t for t, m in d.notify.all("WATCHDOG")]
        last = max(pings)
        released = time.monotonic()
        os.unlink(hang)
        self.assertTrue(d.running(), "powermeterd died while its %s thread hung" % thread)

        went_on_at = monotonic_in(d.wait_stderr(r"test fault: the %s thread goes on" % thread,
                                                timeout=10)[0])
        resumed = d.notify.wait("WATCHDOG", "1", count=1, after=released,
                                timeout=WATCHDOG_SEC)[0][0]
        d.wait_stderr(r"watchdog: every thread makes progress again", timeout=5)
        if after_recovery:
            after_recovery(went_on_at)
        self.assertEqual(d.stop(), 0)

        stop_after = last - hung_at
        silent = released - last
        resume_after = resumed - went_on_at
        print("# %s hung: last WATCHDOG=1 %.2f s after the hang, the next one withheld "
              "%.2f s after it (WatchdogSec %.0f s); no ping for %.2f s while hung; "
              "first ping %.2f s after it went on"
              % (thread, stop_after, withheld - hung_at, WATCHDOG_SEC, silent, resume_after),
              flush=True)
        # the pings stop within WatchdogSec of the hang ...
        self.assertLess(stop_after, WATCHDOG_SEC)
        # ... and none comes while it hangs, however long
        self.assertFalse([t for t in pings if hung_at + WATCHDOG_SEC <= t <= released])
        self.assertGreater(silent, WATCHDOG_SEC)
        # once it goes on, the next sample pings (the period is over)
        self.assertLess(resume_after, SAMPLE_SEC + 1.0)

    def test_poller_hangs(self):
        # 16 modules with 3 retries on its bus: a rule of "2 intervals +
        # every module's timeouts" (13.5 s here) would ping for more than
        # WatchdogSec after the hang; one read's (6 s) does not
        self.hang_and_recover("poller", "poller", modules=range(1, 17), retries=3)

    def test_slow_bus_is_not_stuck(self):
        """15 of 16 modules silent: a tick takes longer than WatchdogSec,
        but every read ends within its timeout, so the pings go on."""
        sim = Sim(self, [{"baud": 115200, "modules": list(range(1, 17))}]).start()
        for addr in range(2, 17):
            sim.fault(0, addr, "noanswer")
        cfg = daemonlib.daemon_config(self, sim, interval=1.0, timeout=0.6)
        d = daemonlib.Daemon(self, cfg, watchdog_usec=int(WATCHDOG_SEC * 1e6)).start()
        start = time.monotonic()
        # a whole tick of 15 silent modules: 9 s of timeouts
        d.wait_stderr(r"reading its modules took [0-9]+ ms, longer than the interval",
                      timeout=3 * WATCHDOG_SEC)
        while time.monotonic() < start + 12:
            time.sleep(0.2)
        pings = sorted(t for t, m in d.notify.all("WATCHDOG") if t >= start)
        gaps = [b - a for a, b in zip([start] + pings, pings + [time.monotonic()])]
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("makes no progress", d.stderr())
        self.assertLess(max(gaps), WATCHDOG_SEC / 2 + SAMPLE_SEC + 0.5,
                        "pings at %s" % ["%.1f" % (t - start) for t in pings])

    def test_warns_when_a_read_may_outlast_watchdogsec(self):
        sim = Sim(self, [{"baud": 115200, "modules": [1]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=1.0, timeout=1.5)
        d = daemonlib.Daemon(self, cfg, watchdog_usec=int(WATCHDOG_SEC * 1e6)).start()
        # 2 x 1.5 s x (2 retries + 2) + 5 s
        d.wait_stderr(r"watchdog: a read on %s may take up to 17 s .* WatchdogSec is 8 s"
                      % re.escape(sim.path(0)), timeout=10)
        self.assertEqual(d.stop(), 0)
        # the same module with the unit's WatchdogSec=30: no warning
        d = daemonlib.Daemon(self, cfg, watchdog_usec=30 * 1000000).start()
        d.notify.wait("READY", "1", timeout=10)
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("watchdog: a read on", d.stderr())

    def test_writer_hangs(self):
        fake = FakeInflux(self)

        def writes_again(went_on_at):
            # what piled up while it hung, and new points, reach the database
            common.wait_for(lambda: [r for r in fake.requests
                                     if r.time > went_on_at and r.status == 204],
                            10, what="a write after the writer went on")
        self.hang_and_recover("writer", "influx", after_recovery=writes_again, influx={
            "url": fake.url, "database": "powermeter", "flush_interval": 0.5})


if __name__ == "__main__":
    common.main()
