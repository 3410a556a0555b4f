"""The Grafana dashboard (grafana/powermeter.json) against what powermeterd
really writes: the daemon polls hdhk-sim into a real InfluxDB 1.6 for a few
seconds, then every panel query and variable query, with Grafana's macros
and variables substituted as Grafana would, runs on influxd's /query and
must return the series it is for, with the right tags and values.
Also the dashboard's structure and the provisioning examples.
"""
import json
import os
import re
import unittest

import common
from daemonlib import Daemon, daemon_config, input_name, INPUTS, RATIO
from servers import Influx1
from sim import Sim
from templates import load_yaml

GDIR = os.path.join(common.SOURCE, "grafana")
DASHBOARD = os.path.join(GDIR, "powermeter.json")
INTERVAL = 0.5
MODULES = (1, 2)


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def substitute(query, device=None, inputs=None):
    """The query as Grafana sends it: $timeFilter, $__interval, and the
    multi-value variables in regex format ("(1|2)"; All = every value)."""
    dev = "(%s)" % "|".join(str(d) for d in (device or MODULES))
    inp = "(%s)" % "|".join(inputs or INPUTS)
    q = query.replace("$timeFilter", "time > now() - 5m")
    q = q.replace("$__interval", "10s")
    q = re.sub(r"\$\{?device\}?(?![a-z_])", dev, q)
    q = re.sub(r"\$\{?input\}?(?![a-z_])", inp, q)
    left = re.findall(r"\$\{?[A-Za-z_]\w*", q)
    if left:
        raise AssertionError("unsubstituted %s in %s" % (left, q))
    return q


def series_of(doc):
    out = []
    for res in doc.get("results", []):
        out.extend(res.get("series", []) or [])
    return out


def expected_current(addr, letter):
    return Sim.default_raw(addr, ord(letter) - ord("a")) * RATIO


class Dashboard(unittest.TestCase):
    def setUp(self):
        self.dash = load_dashboard()

    def panels(self):
        return {p["title"]: p for p in self.dash["panels"]}

    def test_structure(self):
        d = self.dash
        self.assertIsNone(d["id"])
        self.assertTrue(d["uid"])
        self.assertNotIn("__inputs", d)   # no import-time data source input
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "influxdb")
        for name in ("device", "input"):
            v = variables[name]
            self.assertEqual(v["type"], "query")
            self.assertTrue(v["multi"] and v["includeAll"])
            self.assertEqual(v["datasource"]["uid"], "${datasource}")
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        types = {p["type"] for p in d["panels"]}
        self.assertLessEqual({"timeseries", "bargauge", "table"}, types)
        for p in d["panels"]:
            self.assertEqual(p["datasource"], {"type": "influxdb", "uid": "${datasource}"},
                             p["title"])
            self.assertTrue(set(p["gridPos"]) >= {"h", "w", "x", "y"})
            self.assertTrue(p["targets"], p["title"])
            for t in p["targets"]:
                self.assertTrue(t["rawQuery"])
                self.assertEqual(t["datasource"]["uid"], "${datasource}")
                self.assertIn("$timeFilter", t["query"])
                self.assertIn('FROM "powermeter"', t["query"])
        gauge = [p for p in d["panels"] if p["type"] == "bargauge"][0]
        steps = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]
        self.assertGreaterEqual(len(steps), 3)
        self.assertEqual(gauge["fieldConfig"]["defaults"]["unit"], "amp")
        # per-interval aggregation where time is grouped by the panel width
        over_time = [t["query"] for p in d["panels"] for t in p["targets"]
                     if "GROUP BY time($__interval)" in t["query"]]
        self.assertGreaterEqual(len(over_time), 3)

    def test_provisioning_examples(self):
        with open(os.path.join(GDIR, "provisioning", "datasources", "influxdb1.yaml")) as f:
            v1 = load_yaml(f.read())
        with open(os.path.join(GDIR, "provisioning", "datasources",
                               "influxdb2-influxql.yaml")) as f:
            v2 = load_yaml(f.read())
        for doc in (v1, v2):
            self.assertEqual(doc["apiVersion"], 1)
            ds = doc["datasources"][0]
            self.assertEqual(ds["type"], "influxdb")
            self.assertEqual(ds["access"], "proxy")
            self.assertEqual(ds["jsonData"]["dbName"], "powermeter")
        ds2 = v2["datasources"][0]
        self.assertEqual(ds2["jsonData"]["version"], "InfluxQL")
        self.assertEqual(ds2["jsonData"]["httpHeaderName1"], "Authorization")
        self.assertRegex(ds2["secureJsonData"]["httpHeaderValue1"], r"\AToken \S+\Z")
        built = os.path.join(common.BUILD, "grafana", "powermeter-dashboards.yaml")
        with open(built) as f:
            prov = load_yaml(f.read())
        p = prov["providers"][0]
        self.assertEqual(p["type"], "file")
        self.assertTrue(p["options"]["path"].endswith("/powermeter/grafana"), p["options"])


class Queries(unittest.TestCase):
    """One daemon run feeds every query check (setUpClass)."""

    @classmethod
    def setUpClass(cls):
        cls.holder = unittest.TestCase()
        try:
            cls.start()
        except BaseException:
            cls.holder.doCleanups()
            raise

    @classmethod
    def start(cls):
        cls.sim = Sim(cls.holder, [{"path": "ttyUSB0", "modules": list(MODULES)}]).start()
        cls.db = Influx1(cls.holder)
        cls.cfg = daemon_config(cls.holder, cls.sim, interval=INTERVAL, frequency=True,
                                influx={"url": cls.db.url, "database": cls.db.database,
                                        "flush_interval": 0.2})
        daemon = Daemon(cls.holder, cls.cfg).start()
        want = len(MODULES) * len(INPUTS) * 4
        common.wait_for(lambda: cls.db.count() >= want, 30,
                        what="%d points in InfluxDB" % want)
        if daemon.stop() != 0:
            raise AssertionError("powermeterd failed: %s" % daemon.stderr())
        cls.points = cls.db.points()

    @classmethod
    def tearDownClass(cls):
        cls.holder.doCleanups()

    def setUp(self):
        self.dash = load_dashboard()
        self.panels = {p["title"]: p for p in self.dash["panels"]}

    def run_query(self, title, **kw):
        p = self.panels[title]
        self.assertEqual(len(p["targets"]), 1)
        q = substitute(p["targets"][0]["query"], **kw)
        return series_of(self.db.query(q)), p["targets"][0]

    def test_data_is_there(self):
        self.assertTrue(self.points)
        self.assertEqual({(r["device_id"], r["input"]) for r in self.points},
                         {(str(m), l) for m in MODULES for l in INPUTS})
        self.assertTrue(all(r.get("frequency") is not None for r in self.points))

    def test_variables(self):
        v = {x["name"]: x for x in self.dash["templating"]["list"]}
        rows = series_of(self.db.query(substitute(v["device"]["query"])))
        self.assertEqual(sorted(x[1] for x in rows[0]["values"]), [str(m) for m in MODULES])
        rows = series_of(self.db.query(substitute(v["input"]["query"], device=[2])))
        self.assertEqual(sorted(x[1] for x in rows[0]["values"]), list(INPUTS))

    def check_per_circuit(self, series, column, device=MODULES, inputs=INPUTS):
        got = {(s["tags"]["device_id"], s["tags"]["input"]): s for s in series}
        self.assertEqual(set(got), {(str(m), l) for m in device for l in inputs})
        for (dev, l), s in got.items():
            self.assertEqual(s["tags"]["name"], input_name(int(dev), l))
            self.assertEqual(s["columns"][:2], ["time", column])
            vals = [row[1] for row in s["values"] if row[1] is not None]
            self.assertTrue(vals, (dev, l))
            for x in vals:
                self.assertAlmostEqual(x, expected_current(int(dev), l), places=9)

    def test_current_per_circuit(self):
        series, t = self.run_query("Current per circuit")
        self.check_per_circuit(series, "mean")
        self.assertEqual(t["alias"], "$tag_device_id.$tag_input $tag_name")
        # one module, two inputs selected
        series, _ = self.run_query("Current per circuit", device=[2], inputs="bd")
        self.check_per_circuit(series, "mean", device=[2], inputs="bd")

    def test_latest_current(self):
        series, _ = self.run_query("Latest current")
        self.check_per_circuit(series, "last")
        for s in series:
            self.assertEqual(len(s["values"]), 1)

    def test_total_per_module(self):
        series, _ = self.run_query("Total per module")
        self.assertEqual(sorted(s["tags"]["device_id"] for s in series),
                         [str(m) for m in MODULES])
        for s in series:
            dev = int(s["tags"]["device_id"])
            self.assertEqual(s["columns"], ["time", "sum"])
            vals = [row[1] for row in s["values"] if row[1] is not None]
            self.assertTrue(vals)
            want = sum(expected_current(dev, l) for l in INPUTS)
            for x in vals:
                self.assertAlmostEqual(x, want, places=6)
        # a module filter leaves the other module out
        series, _ = self.run_query("Total per module", device=[1])
        self.assertEqual([s["tags"]["device_id"] for s in series], ["1"])

    def test_frequency(self):
        series, _ = self.run_query("Frequency")
        self.assertEqual(sorted(s["tags"]["device_id"] for s in series),
                         [str(m) for m in MODULES])
        for s in series:
            vals = [row[1] for row in s["values"] if row[1] is not None]
            self.assertTrue(vals)
            for x in vals:
                self.assertTrue(40 <= x <= 70, x)

    def test_samples_per_minute(self):
        series, _ = self.run_query("Module health: samples per minute")
        self.assertEqual(sorted(s["tags"]["device_id"] for s in series),
                         [str(m) for m in MODULES])
        for s in series:
            dev = s["tags"]["device_id"]
            stored = len([r for r in self.points if r["device_id"] == dev and r["input"] == "a"])
            # every stored sample of the module counted once, not once per input
            self.assertEqual(sum(row[1] for row in s["values"] if row[1]), stored)

    def test_latest_values_table(self):
        p = self.panels["Latest values"]
        self.assertEqual(p["targets"][0]["resultFormat"], "table")
        series, _ = self.run_query("Latest values")
        got = {}
        for s in series:
            row = dict(zip(s["columns"], s["values"][0]))
            row.update(s["tags"])
            got[(row["device_id"], row["input"])] = row
        self.assertEqual(set(got), {(str(m), l) for m in MODULES for l in INPUTS})
        for (dev, l), row in got.items():
            self.assertAlmostEqual(row["current"], expected_current(int(dev), l), places=9)
            self.assertTrue(40 <= row["frequency"] <= 70)
            self.assertEqual(row["name"], input_name(int(dev), l))
            self.assertTrue(row["unique_id"].isdigit())
        renamed = p["transformations"][0]["options"]["renameByName"]
        self.assertLessEqual({"current", "frequency", "device_id", "input", "name"}, set(renamed))

    def test_every_panel_returns_data(self):
        """No panel is left unchecked: each one's query gives series."""
        for title in self.panels:
            series, _ = self.run_query(title)
            self.assertTrue(series, title)


if __name__ == "__main__":
    common.main()
