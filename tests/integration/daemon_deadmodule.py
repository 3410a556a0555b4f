#!/usr/bin/env python3
"""A dead module on a shared bus costs the others nothing but its own
timeout: the live module keeps its cadence, the dead one is retried every
tick, its failure is logged once and then with backoff, and its recovery in
one line."""
import re
import time
import unittest

import common
import daemonlib
from sim import Sim

INTERVAL = 0.5
TIMEOUT = 0.2


class DeadModule(unittest.TestCase):
    def test_dead_module_costs_nothing(self):
        # The dead module is read first in each tick, so the live one waits
        # for its timeout every time.
        sim = Sim(self, [{"baud": 9600, "modules": [1, 2]}]).start()
        sim.fault(0, 1, "noanswer")
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, timeout=TIMEOUT)
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: len([r for r in daemonlib.ok_reads(sim) if r[1] == 2]) >= 12,
                        20, what="12 reads of module 2")
        d.wait_stderr(r"device 1 on .* address 1: no answer within 0\.2 s")
        reads = [t for b, a, t, _ in daemonlib.ok_reads(sim) if a == 2]
        gaps = [y - x for x, y in zip(reads, reads[1:])]
        for g in gaps:
            self.assertAlmostEqual(g, INTERVAL * 1000, delta=80, msg="gaps %s" % gaps)
        # Within its tick the live module comes right after the dead one's
        # timeout: tick start + timeout + its own wire time (~50 ms).
        phase = [t % (INTERVAL * 1000) for t in reads]
        for p in phase:
            self.assertLess(p, TIMEOUT * 1000 + 200, "phases %s" % phase)
        # Retried at every tick.
        tries = [e for e in sim.log() if e["addr"] == 1 and e["result"] == "noanswer"]
        self.assertGreaterEqual(len(tries), len(reads) - 1)

        # Logged once, then at 2, 4, 8, ... failures, not every tick.
        dead_lines = [l for l in d.stderr().splitlines()
                      if re.search(r"device 1 on .* address 1:", l)]
        failures = len(tries)
        self.assertLessEqual(len(dead_lines), failures.bit_length() + 1, dead_lines)
        self.assertGreaterEqual(len(dead_lines), 2, dead_lines)

        sim.clear(0, 1)
        lines = d.wait_stderr(r"device 1 on .* address 1: answering again after \d+ failures")
        n = int(re.search(r"after (\d+) failures", lines[0]).group(1))
        self.assertGreaterEqual(n, failures)
        self.assertEqual(d.stop(), 0)
        # the live module never missed a tick
        self.assertNotIn("skipped", d.stderr())


if __name__ == "__main__":
    common.main()
