"""Numbers that no installation has: a CT ratio of 1e308 made every output
carry Infinity (`powermeter read` printed it, which is not JSON: Zabbix
failed to parse it; the daemon wrote no line and null), a standing charge
of 1e308 made reports print inf and nan. The config and the tariff bound
them to physical ranges (powermeter.json(5)), exit 78 beyond; and a value
that is not a finite number, wherever it comes from (here: a snapshot with
1e999 in it), never reaches an output: the figure is left out (null where
the format has a fixed key)."""
import json
import os
import re
import unittest

import common
import daemonlib
import report
from sim import Sim


def strict_json(text):
    """json.loads that refuses NaN and Infinity, as every parser but
    Python's does."""
    def refuse(name):
        raise ValueError("not JSON: %s" % name)
    return json.loads(text, parse_constant=refuse)


def write_config(d, doc, name="powermeter.json"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class Config(unittest.TestCase):
    def test_absurd_ratio_refused(self):
        d = common.tmpdir(self)
        for ratio, shown in ((1e308, "1e308"), (1e-300, "1e-300"), (2, "2")):
            text = ('{"devices": [{"id": 1, "port": "/dev/ttyUSB0", "inputs": '
                    '[{"input": "a", "ratio": %s}]}]}' % shown)
            path = os.path.join(d, "powermeter.json")
            with open(path, "w") as f:
                f.write(text)
            r = common.run([common.POWERMETER, "check", "-c", path])
            self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
            self.assertEqual(
                r.stderr, "%s: devices[0].inputs[0].ratio: %s is out of range "
                "(0.000001..1.5 amperes per count, 0.01 for the stock CT)\n" % (path, shown))
            r = common.run([common.POWERMETERD, "-c", path], timeout=30)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("ratio: %s is out of range" % shown, r.stderr)

    def test_largest_ratio_reads_as_json(self):
        # 1.5 A per count: 98 kA at the register's full scale, still a
        # number every output carries
        sim = Sim.single(self, n_modules=1)
        d = common.tmpdir(self)
        path = write_config(d, {"devices": [{
            "id": 1, "port": sim.path(), "address": 1, "timeout": 0.5,
            "inputs": [{"input": "a", "ratio": 1.5, "breaker": 10000}]}]})
        for fmt in ("json", "seed"):
            r = common.run([common.POWERMETER, "read", "-c", path, "-f", fmt])
            self.assertEqual(r.returncode, 0, r.stderr)
            values = strict_json(r.stdout)
            self.assertEqual(values[0]["current"], round(Sim.default_raw(1, 0) * 1.5, 2))


class Report(unittest.TestCase):
    def test_absurd_standing_charge(self):
        led = report.Ledger(self)
        led.describe(*report.A, "Pitch 1", report.local(2025, 2, 28))
        led.run(report.local(2025, 2, 28, 22), report.local(2025, 4, 1, 2), 900,
                report.flat(1000))
        path = led.commit()
        tariff = report.write_tariff(self, {"currency": "EUR", "standing_charge": 1e308,
                                            "rates": [{"price": 0.2}]})
        for fmt in ("json", "csv", "table"):
            r = report.report("--ledger", path, "--month", "2025-03", "--tariff", tariff,
                              "--format", fmt)
            self.assertEqual(r.returncode, report.EX_CONFIG, r.stdout)
            self.assertEqual(r.stdout, "")
            self.assertIn("%s: standing_charge: 1e+308 is out of range (0..1e+09 per day)"
                          % tariff, r.stderr)
        # the largest a tariff takes still gives numbers
        tariff = report.write_tariff(self, {"currency": "EUR", "standing_charge": 1e9,
                                            "rates": [{"price": 1e9}]})
        r = report.report("--ledger", path, "--month", "2025-03", "--tariff", tariff,
                          "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = strict_json(r.stdout)
        self.assertEqual(doc["total"]["cost"]["standing_charge"], 31e9)
        r = report.report("--ledger", path, "--month", "2025-03", "--tariff", tariff,
                          "--format", "csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotRegex(r.stdout, r"(?i)\binf|\bnan")


class Snapshot(unittest.TestCase):
    """A snapshot whose figures are not finite numbers (1e999 reads as
    infinity): every reader's output stays JSON, the figure left out."""

    def test_readers_of_a_doctored_snapshot(self):
        sim = Sim.single(self, n_modules=1)
        cfg = daemonlib.daemon_config(self, sim, interval=10, frequency=True)
        d = daemonlib.Daemon(self, cfg).start()
        with open(cfg) as f:
            doc = json.load(f)
        snap = doc["snapshot"]

        def written():
            try:
                with open(snap) as f:
                    s = json.load(f)
            except (OSError, ValueError):
                return None
            return all(i["current"] is not None for i in s["devices"][0]["inputs"])
        common.wait_for(written, 15, what="the daemon's snapshot")
        with open(snap) as f:
            text = f.read()
        self.assertEqual(d.stop(), 0)
        # the same config reading another file: the doctored copy
        text = re.sub(r'"(frequency|energy)": [-0-9.e+]+', r'"\1": 1e999', text)
        text = re.sub(r'"charge": [-0-9.e+]+', '"charge": -1e999', text)
        self.assertIn('"energy": 1e999', text)
        other = os.path.join(os.path.dirname(cfg), "doctored.json")
        doc["snapshot"] = os.path.join(os.path.dirname(cfg), "doctored-values.json")
        with open(doc["snapshot"], "w") as f:
            f.write(text)
        with open(other, "w") as f:
            json.dump(doc, f)

        r = common.run([common.POWERMETER, "zabbix", "circuits", "-c", other])
        self.assertEqual(r.returncode, 0, r.stderr)
        circuits = strict_json(r.stdout)["circuits"]
        self.assertEqual(len(circuits), len(daemonlib.INPUTS))
        for c in circuits:
            self.assertIsNotNone(c["current"])
            self.assertIsNone(c["energy"])
            self.assertIsNone(c["charge"])
        r = common.run([common.POWERMETER, "zabbix", "status", "-c", other])
        self.assertEqual(r.returncode, 0, r.stderr)
        strict_json(r.stdout)
        r = common.run([common.POWERMETER, "json", "-c", other])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(strict_json(r.stdout)), len(daemonlib.INPUTS))
        r = common.run([common.POWERMETER, "status", "-c", other])
        self.assertNotRegex(r.stdout, r"(?i)\binf|\bnan")


if __name__ == "__main__":
    common.main()
