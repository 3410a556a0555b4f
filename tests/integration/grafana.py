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
import time
import unittest

import common
from daemonlib import Daemon, input_name, INPUTS, RATIO
from servers import Influx1
from sim import Sim
from templates import load_yaml, power_config, circuit, watts

GDIR = os.path.join(common.SOURCE, "grafana")
DASHBOARD = os.path.join(GDIR, "powermeter.json")
INTERVAL = 0.5
MODULES = (1, 2)


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def regex_escape(value):
    """A value in a multi-value variable's regex, escaped as Grafana does."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", value)


def tag_values(tag):
    """The values 'tag' has on the circuits of power_config()."""
    return sorted({circuit(m, l)["tags"][tag] for m in MODULES for l in INPUTS
                   if tag in circuit(m, l)["tags"]})


def substitute(query, device=None, inputs=None, interval="10s", tag="customer",
               tagvalues=None, tz="UTC"):
    """The query as Grafana sends it: $timeFilter, ${__from} and ${__to}
    (the last 5 minutes, in epoch ms), $__interval, the multi-value
    variables in regex format ("(1|2)"; All = every value), and the single
    ones as they are."""
    now = int(time.time() * 1000)
    start, end = now - 300000, now + 60000
    dev = "(%s)" % "|".join(str(d) for d in (device or MODULES))
    inp = "(%s)" % "|".join(inputs or INPUTS)
    vals = "(%s)" % "|".join(regex_escape(v) for v in (tagvalues or tag_values(tag)))
    q = query.replace("$timeFilter", "time >= %dms and time <= %dms" % (start, end))
    q = q.replace("${__from}", str(start)).replace("${__to}", str(end))
    q = q.replace("$__interval", interval)
    q = re.sub(r"\$\{?device\}?(?![a-z_])", dev, q)
    q = re.sub(r"\$\{?input\}?(?![a-z_])", inp, q)
    q = re.sub(r"\$\{?tagvalue\}?(?![a-z_])", lambda m: vals, q)
    q = re.sub(r"\$\{?tag\}?(?![a-z_])", tag, q)
    q = re.sub(r"\$\{?tz\}?(?![a-z_])", tz, q)
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
        return {p["title"]: p for p in self.dash["panels"] if p["type"] != "row"}

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
        # the tag energy is summed by: the config's tags, not the built-in ones
        tag = variables["tag"]
        self.assertEqual(tag["query"], 'SHOW TAG KEYS FROM "powermeter"')
        self.assertFalse(tag["multi"] or tag["includeAll"])
        rx = re.compile(tag["regex"].strip("/"))
        self.assertEqual([k for k in ("customer", "pitch", "rack", "device_id", "input", "name",
                                      "unique_id", "phase", "phase2") if rx.search(k)],
                         ["customer", "pitch", "rack", "phase2"])
        self.assertEqual(rx.groups, 0)    # Grafana would take a group as the value
        self.assertTrue(variables["tagvalue"]["multi"] and variables["tagvalue"]["includeAll"])
        self.assertEqual(variables["tz"]["type"], "textbox")
        self.assertEqual(variables["tz"]["query"], "UTC")
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        types = {p["type"] for p in d["panels"]}
        self.assertLessEqual({"timeseries", "bargauge", "table", "row"}, types)
        for p in d["panels"]:
            if p["type"] == "row":
                self.assertNotIn("targets", p)
                continue
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
        over_time = [t["query"] for p in d["panels"] for t in p.get("targets", [])
                     if "GROUP BY time($__interval)" in t["query"]]
        self.assertGreaterEqual(len(over_time), 3)
        # power and energy say they are estimates, in W and Wh
        estimated = [p for p in d["panels"] if p["type"] != "row" and
                     re.search(r'"(power|energy)"', p["targets"][0]["query"])]
        self.assertEqual(len(estimated), 4)
        for p in estimated:
            self.assertIn("estimated", p["title"].lower())
            self.assertIn("voltage x power factor", p["description"])
            self.assertEqual(p["fieldConfig"]["defaults"]["unit"],
                             "watth" if '"energy"' in p["targets"][0]["query"] else "watt")

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
        # voltages, power factors, phases and tags; energy saved every second
        cls.cfg = power_config(cls.holder, cls.sim, interval=INTERVAL, frequency=True,
                               influx={"url": cls.db.url, "database": cls.db.database,
                                       "flush_interval": 0.2})
        daemon = Daemon(cls.holder, cls.cfg).start()
        want = len(MODULES) * len(INPUTS) * 4
        common.wait_for(lambda: cls.db.count() >= want, 30,
                        what="%d points in InfluxDB" % want)

        def counted():
            shown = {}
            for r in cls.db.points():
                shown.setdefault((r["device_id"], r["input"]), set()).add(r.get("energy"))
            return len(shown) == want // 4 and all(len(e - {0, None}) >= 3
                                                   for e in shown.values())
        common.wait_for(counted, 40, interval=0.3,
                        what="three energy counts of every circuit in InfluxDB")
        if daemon.stop() != 0:
            raise AssertionError("powermeterd failed: %s" % daemon.stderr())
        cls.points = cls.db.points()

    @classmethod
    def tearDownClass(cls):
        cls.holder.doCleanups()

    def setUp(self):
        self.dash = load_dashboard()
        self.panels = {p["title"]: p for p in self.dash["panels"] if p["type"] != "row"}

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

    # ---- power and energy: estimates from the configured voltages ---------------

    def all_circuits(self):
        return {(str(m), l) for m in MODULES for l in INPUTS}

    def counter_increase(self, dev, letter, field="energy", interval_ms=1000):
        """What a counter rose by in the stored points, as the energy
        queries see it with 1 s intervals: from the last value of its first
        interval (the first difference needs one before it) to its last."""
        rows = [(r["time"], r[field]) for r in self.points
                if (r["device_id"], r["input"]) == (dev, letter)]
        first = rows[0][0] // interval_ms
        base = [v for t, v in rows if t // interval_ms == first][-1]
        return rows[-1][1] - base

    def test_tag_variables(self):
        """$tag offers the config's tags, $tagvalue their values."""
        v = {x["name"]: x for x in self.dash["templating"]["list"]}
        rows = series_of(self.db.query(substitute(v["tag"]["query"])))
        rx = re.compile(v["tag"]["regex"].strip("/"))
        keys = [x[0] for x in rows[0]["values"] if rx.search(x[0])]
        self.assertEqual(keys, ["customer", "rack", "site"])
        for tag in keys:
            rows = series_of(self.db.query(substitute(v["tagvalue"]["query"], tag=tag)))
            self.assertEqual(sorted(x[1] for x in rows[0]["values"]), tag_values(tag))

    def test_power_per_circuit(self):
        """amps x the circuit's voltage x power factor, every interval."""
        for kw in ({}, {"device": [2], "inputs": "ac"}):
            series, t = self.run_query("Estimated power per circuit", **kw)
            self.assertEqual(t["alias"], "$tag_device_id.$tag_input $tag_name")
            got = {(s["tags"]["device_id"], s["tags"]["input"]): s for s in series}
            self.assertEqual(set(got), {(str(m), l) for m in kw.get("device", MODULES)
                                        for l in kw.get("inputs", INPUTS)})
            for (dev, l), s in got.items():
                self.assertEqual(s["tags"]["name"], input_name(int(dev), l))
                vals = [row[1] for row in s["values"] if row[1] is not None]
                self.assertTrue(vals, (dev, l))
                for x in vals:
                    self.assertAlmostEqual(x, watts(int(dev), l), places=6)

    def test_power_per_phase(self):
        """Per interval, the sum of the estimated power of the phase's
        circuits that have a point in it; circuits without a phase left
        out."""
        phases = {}
        for m in MODULES:
            for l in INPUTS:
                if circuit(m, l)["phase"]:
                    phases.setdefault(circuit(m, l)["phase"], []).append((str(m), l))
        self.assertEqual(sorted(phases), ["L1", "L2", "L3"])
        for device in (MODULES, [2]):
            series, t = self.run_query("Estimated power per phase", device=device)
            self.assertEqual(t["alias"], "$tag_phase")
            want_phases = sorted(p for p, members in phases.items()
                                 if any(int(d) in device for d, _ in members))
            self.assertEqual(sorted(s["tags"]["phase"] for s in series), want_phases)
            for s in series:
                members = [(d, l) for d, l in phases[s["tags"]["phase"]] if int(d) in device]
                checked = 0
                for start, value in s["values"]:
                    if value is None:
                        continue
                    present = {(r["device_id"], r["input"]) for r in self.points
                               if start <= r["time"] < start + 10000}
                    want = sum(watts(int(d), l) for d, l in members if (d, l) in present)
                    self.assertAlmostEqual(value, want, places=6)
                    checked += 1
                self.assertTrue(checked, s["tags"])
        # L1 over both modules: 1.a, 2.a and 2.c
        self.assertEqual(len(phases["L1"]), 3)

    def energy_per_circuit(self, **kw):
        series, t = self.run_query("Estimated energy per day per circuit", interval="1s", **kw)
        self.assertEqual(t["alias"], "$tag_device_id.$tag_input $tag_name")
        got = {}
        for s in series:
            key = (s["tags"]["device_id"], s["tags"]["input"])
            self.assertEqual(s["tags"]["name"], input_name(int(key[0]), key[1]))
            days = [row for row in s["values"] if row[1] is not None]
            self.assertIn(len(days), (1, 2), key)     # the run may cross midnight
            got[key] = days
        return got

    def test_energy_per_day_per_circuit(self):
        """Each circuit's increases of its counter summed per day: the whole
        rise of the counter in the data, and energy / charge = its voltage x
        power factor (the known value of the estimate); no more than its
        power over the time it was measured."""
        got = self.energy_per_circuit()
        self.assertEqual(set(got), self.all_circuits())
        for (dev, l), days in got.items():
            for start, _ in days:
                self.assertEqual(start % 86400000, 0, "a UTC day")
            total = sum(v for _, v in days)
            self.assertGreater(total, 0)
            self.assertAlmostEqual(total, self.counter_increase(dev, l), places=6)
            c = circuit(int(dev), l)
            charge = self.counter_increase(dev, l, "charge")
            self.assertGreater(charge, 0)
            self.assertAlmostEqual(total / charge / (c["voltage"] * c["power_factor"]), 1,
                                   places=6)
            times = [r["time"] for r in self.points if (r["device_id"], r["input"]) == (dev, l)]
            self.assertLessEqual(total, watts(int(dev), l) * ((times[-1] - times[0]) / 1000 + 0.5)
                                 / 3600)
        # another time zone cuts other days, and counts the same
        prague = self.energy_per_circuit(tz="Europe/Prague")
        for key, days in prague.items():
            for start, _ in days:
                self.assertIn(start % 86400000, (22 * 3600000, 23 * 3600000))
            self.assertAlmostEqual(sum(v for _, v in days), sum(v for _, v in got[key]),
                                   places=6)
        # the module and input filters
        self.assertEqual(set(self.energy_per_circuit(device=[2], inputs="b")), {("2", "b")})

    def test_energy_per_day_per_tag(self):
        """Per value of the chosen tag: the sum of its circuits' energy, as
        the per-circuit panel shows it; circuits without the tag left out."""
        per_circuit = {k: sum(v for _, v in days) for k, days in self.energy_per_circuit().items()}
        title = "Estimated energy per day per $tag"
        for tag, values in (("customer", None), ("site", None), ("rack", None),
                            ("site", ["hall 2"]), ("customer", ["Beta"])):
            series, t = self.run_query(title, interval="1s", tag=tag, tagvalues=values)
            self.assertEqual(t["alias"], "$tag_${tag}")
            got = {}
            for s in series:
                self.assertEqual(list(s["tags"]), [tag])
                days = [row for row in s["values"] if row[1] is not None]
                self.assertIn(len(days), (1, 2))
                got[s["tags"][tag]] = sum(v for _, v in days)
            self.assertEqual(sorted(got), values or tag_values(tag), tag)
            for value, total in got.items():
                members = [(str(m), l) for m in MODULES for l in INPUTS
                           if circuit(m, l)["tags"].get(tag) == value]
                self.assertTrue(members)
                self.assertAlmostEqual(total, sum(per_circuit[k] for k in members), places=6)
                self.assertAlmostEqual(total, sum(self.counter_increase(*k) for k in members),
                                       places=6)
        self.assertEqual(tag_values("customer"), ["ACME", "Beta"])
        self.assertEqual(tag_values("site"), ["dc1", "hall 2"])

    def test_every_panel_returns_data(self):
        """No panel is left unchecked: each one's query gives series."""
        for title in self.panels:
            series, _ = self.run_query(title, interval="1s")
            self.assertTrue(series, title)


if __name__ == "__main__":
    common.main()
