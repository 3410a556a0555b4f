#!/usr/bin/env python3
"""powermeterd into VictoriaMetrics through the InfluxDB v2 write API with a
token (given as a systemd credential): every read arrives, once."""
import os
import unittest

import common
import daemonlib
from servers import Victoria
from sim import Sim
from daemon_outage_vm import vm_settled


class DaemonV2(unittest.TestCase):
    def test_v2_token_from_credentials(self):
        vm = Victoria(self)
        sim = Sim(self, [{"baud": 19200, "modules": [1, 2]}]).start()
        creds = common.tmpdir(self, "pm-creds-")
        with open(os.path.join(creds, "influx-token"), "w") as f:
            f.write("cr3d-t0ken\n")
        cfg = daemonlib.daemon_config(self, sim, interval=0.5, influx={
            "url": vm.url, "org": "site", "bucket": "powermeter"})
        d = daemonlib.Daemon(self, cfg, env={"CREDENTIALS_DIRECTORY": creds}).start()
        common.wait_for(lambda: len(daemonlib.ok_reads(sim)) >= 16, 20, what="reads")
        self.assertEqual(d.stop(), 0, d.stderr())
        expected = daemonlib.expected_points(sim, daemonlib.ok_reads(sim))
        rows = vm_settled(vm, len(expected))
        daemonlib.match_points(self, expected, rows, exact_once=True)
        self.assertNotIn("cr3d-t0ken", d.stderr())


if __name__ == "__main__":
    common.main()
