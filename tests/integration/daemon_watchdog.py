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
# A poller counts as stuck 2 intervals + its timeouts + 5 s after its last
# tick (poller.c), the writer WatchdogSec/2 after its last loop (notify.c):
# both well inside 8 s with the config below.
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
    def hang_and_recover(self, thread, stuck_name, influx=None, after_recovery=None):
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        hang = os.path.join(common.tmpdir(self, "pm-hang-"), "hang")
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, timeout=TIMEOUT,
                                      influx=influx)
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
        self.hang_and_recover("poller", "poller")

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
