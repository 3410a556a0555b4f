#!/usr/bin/env python3
"""The outage scenario against VictoriaMetrics through the v2 write API with
a token: VictoriaMetrics keeps every sample it is sent, duplicates included,
so here "exactly once" is checked, not only "at least once"."""
import time
import unittest

import common
import daemonlib
from servers import Victoria
from sim import Sim

INTERVAL = 0.5


def vm_rows(vm):
    rows = []
    for labels, ts, v in vm.samples('{__name__="powermeter_current"}'):
        row = dict(labels)
        row["time"] = ts
        row["current"] = v
        rows.append(row)
    return rows


def vm_settled(vm, n, timeout=10.0):
    """The rows once at least n are visible: VictoriaMetrics shows the
    last samples it took a moment after force_flush, so a shortfall is
    waited out (an excess is returned at once, for the caller to see)."""
    try:
        return common.wait_for(lambda: (lambda r: r if len(r) >= n else None)(vm_rows(vm)),
                               timeout, interval=0.25, what="%d samples in VictoriaMetrics" % n)
    except AssertionError:
        return vm_rows(vm)


class OutageVM(unittest.TestCase):
    def test_outage_with_restart_exactly_once(self):
        vm = Victoria(self)
        sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=INTERVAL, influx={
            "url": vm.url, "org": "site", "bucket": "powermeter",
            "token": "t0ken-s3cret", "timeout": 2})
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: vm.count() >= 8, 20, what="first points in VictoriaMetrics")

        vm.stop()
        down = time.monotonic()
        time.sleep(8)
        self.assertEqual(d.stop(), 0, d.stderr())
        d.start()
        time.sleep(max(0.0, 16 - (time.monotonic() - down)))
        vm.start()

        def caught_up():
            return vm.count() >= len(daemonlib.ok_reads(sim)) * len(daemonlib.INPUTS) - 8
        common.wait_for(caught_up, 60, interval=0.5, what="spool replayed")
        self.assertEqual(d.stop(), 0, d.stderr())

        reads = daemonlib.ok_reads(sim)
        expected = daemonlib.expected_points(sim, reads)
        daemonlib.match_points(self, expected, vm_settled(vm, len(expected)), exact_once=True)
        self.assertNotIn("t0ken-s3cret", d.stderr())


if __name__ == "__main__":
    common.main()
