"""The line protocol of `powermeter read --format influx` through a real
InfluxDB 1.6: names that need every escape (space, comma, equals sign,
quotes, backslashes, non-ASCII) and a measurement that needs its own come
back exactly as configured, values exactly as read (raw x ratio), with the
seed's schema and millisecond timestamps."""
import json
import os
import time
import unittest

import common
import servers
from sim import Sim

NAMES = {
    "a": 'Rack 3, PDU "A"=left',
    "b": "back\\slash",
    "c": "\u00fcn\u00efcode \u20ac \U0001F600",
    "d": "two\\\\backslashes",
    "e": "x=y,z w",
    "f": "  padded  ",
    "g": "tab\\t, and \\\\= escaped looking",  # an even run before "="
    "h": "Input h",
}
RATIOS = {"a": 0.01, "b": 0.0245, "c": 0.01, "d": 0.03, "e": 0.01, "f": 0.01, "g": 0.01,
          "h": 0.01}


class LineProtocolRoundTrip(unittest.TestCase):
    def setUp(self):
        self.db = servers.Influx1(self)
        self.sim = Sim.single(self)
        self.dir = common.tmpdir(self)

    def config(self, measurement=None, frequency=False):
        dev = {"id": 3, "port": self.sim.path(), "timeout": 1, "baudrate": 9600,
               "frequency": frequency,
               "inputs": [{"input": k, "ratio": RATIOS[k], "name": v}
                          for k, v in NAMES.items()]}
        cfg = {"devices": [dev]}
        if measurement:
            cfg["influx"] = {"url": self.db.url, "database": self.db.database,
                             "measurement": measurement}
        path = os.path.join(self.dir, "powermeter.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def write_read(self, config, measurement):
        before = int(time.time() * 1000)
        r = common.run([common.POWERMETER, "read", "-c", config, "--format", "influx"])
        after = int(time.time() * 1000)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.db.write(r.stdout, precision="ms"), 204, r.stdout)
        rows = self.db.points(measurement)
        self.assertEqual(len(rows), len(NAMES), rows)
        for i, (letter, name) in enumerate(NAMES.items()):
            row = next(x for x in rows if x["input"] == letter)
            self.assertEqual(row["name"], name)
            self.assertEqual(row["device_id"], "3")
            self.assertEqual(row["unique_id"], str(i))
            ch = ord(letter) - ord("a")
            self.assertEqual(row["current"], common.stored(Sim.default_raw(1, ch) * RATIOS[letter]))
            self.assertTrue(before <= row["time"] <= after, (before, row["time"], after))
        return rows

    def test_names_round_trip(self):
        rows = self.write_read(self.config(), "powermeter")
        self.assertNotIn("frequency", rows[0])

    def test_measurement_and_frequency(self):
        rows = self.write_read(self.config(measurement="power meter,x", frequency=True),
                               "power meter,x")
        self.assertEqual({r["frequency"] for r in rows}, {50.0})


if __name__ == "__main__":
    common.main()
