"""The Grafana dashboard (grafana/powermeter.json) against what powermeterd
really writes: the daemon polls hdhk-sim into a real InfluxDB 1.6 for a few
seconds, then every panel query, variable query and annotation query, with
Grafana's macros and variables substituted as Grafana would, runs on
influxd's /query and must return the series it is for, with the right tags
and values. A second run into another database raises and clears an alarm
and takes a module offline while it runs (hdhk-sim's currents and faults
changed live), for the alarm annotations, the alarm table and the feed
panels' gaps. Also the dashboard's structure and the provisioning examples.
"""
import json
import math
import os
import re
import time
import unittest

import common
from daemonlib import Daemon, input_name, rewrite_config, INPUTS, RATIO
from servers import Influx1
from sim import Sim
from templates import load_yaml, power_config, circuit, watts

GDIR = os.path.join(common.SOURCE, "grafana")
DASHBOARD = os.path.join(GDIR, "powermeter.json")
INTERVAL = 0.5
MODULES = (1, 2)

# Two feeds backing each other up (2N) over CIRCUITS' phases: UPS A takes
# module 1's L1..L3, UPS B module 2's two L1 circuits (its L2 and L3 carry
# nothing). The pair carries 10.1 + 40.4 A of the smaller 32 A on L1.
CAPACITY = {"UPS A": 32, "UPS B": 63}
FEEDS = [{"name": "UPS A", "capacity": CAPACITY["UPS A"], "redundant_with": "UPS B"},
         {"name": "UPS B", "capacity": CAPACITY["UPS B"], "redundant_with": "UPS A"}]
FEED_OF = {(1, "a"): "UPS A", (1, "b"): "UPS A", (1, "c"): "UPS A",
           (2, "a"): "UPS B", (2, "c"): "UPS B"}
PHASES = ("L1", "L2", "L3")
# Raised at once (hold 0): circuit load (1.a has a 16 A breaker) and the
# pair's redundancy on L1; rules that could fire by timing are off.
ALARMS = {"circuit_load": {"hold": 0}, "redundancy": {"hold": 0},
          "feed_load": False, "imbalance": False}
ALARM_DB = "alarms"
ALARM_CIRCUIT = (1, "a")


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def regex_escape(value):
    """A value in a multi-value variable's regex, escaped as Grafana does."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", value)


def circuit_tags(m, l):
    """The tags of a circuit's points: its and the file's, and its feed."""
    tags = dict(circuit(m, l)["tags"])
    if (m, l) in FEED_OF:
        tags["feed"] = FEED_OF[(m, l)]
    return tags


def tag_values(tag):
    """The values 'tag' has on the circuits of feeds_config()."""
    return sorted({circuit_tags(m, l)[tag] for m in MODULES for l in INPUTS
                   if tag in circuit_tags(m, l)})


def feeds_config(testcase, sim, db, database):
    """power_config() with FEEDS, ALARMS and each circuit's feed, writing
    to 'database' of influxd 'db'; its own state directory."""
    path = power_config(testcase, sim, interval=INTERVAL, frequency=True,
                        influx={"url": db.url, "database": database, "flush_interval": 0.2},
                        extra={"feeds": FEEDS, "alarms": ALARMS})

    def join(cfg):
        for dev in cfg["devices"]:
            for inp in dev["inputs"]:
                if (dev["id"], inp["input"]) in FEED_OF:
                    inp["feed"] = FEED_OF[(dev["id"], inp["input"])]
    rewrite_config(path, join)
    return path


def members(feed, phase=None):
    """(module, letter) of the circuits on 'feed' (and 'phase')."""
    return [k for k, f in sorted(FEED_OF.items())
            if f == feed and (phase is None or circuit(*k)["phase"] == phase)]


def phase_current(feed, phase):
    return sum(expected_current(m, l) for m, l in members(feed, phase))


def nema_imbalance(currents):
    """Largest deviation from the mean, in % of the mean (by hand)."""
    mean = sum(currents) / len(currents)
    return max(abs(c - mean) for c in currents) / mean * 100


def neutral(currents):
    """|I1 + I2 + I3| for phasors 120 degrees apart (L2 lagging L1)."""
    x = sum(c * math.cos(math.radians(a)) for c, a in zip(currents, (0, -120, 120)))
    y = sum(c * math.sin(math.radians(a)) for c, a in zip(currents, (0, -120, 120)))
    return math.hypot(x, y)


def substitute(query, device=None, inputs=None, interval="10s", tag="customer",
               tagvalues=None, tz="UTC", feed=None):
    """The query as Grafana sends it: $timeFilter, ${__from} and ${__to}
    (the last 5 minutes, in epoch ms), $__interval, the multi-value
    variables in regex format ("(1|2)"; All = every value), and the single
    ones as they are."""
    now = int(time.time() * 1000)
    start, end = now - 300000, now + 60000
    dev = "(%s)" % "|".join(str(d) for d in (device or MODULES))
    inp = "(%s)" % "|".join(inputs or INPUTS)
    vals = "(%s)" % "|".join(regex_escape(v) for v in (tagvalues or tag_values(tag)))
    feeds = "(%s)" % "|".join(regex_escape(v) for v in (feed or sorted(CAPACITY)))
    q = query.replace("$timeFilter", "time >= %dms and time <= %dms" % (start, end))
    q = q.replace("${__from}", str(start)).replace("${__to}", str(end))
    q = q.replace("$__interval", interval)
    q = re.sub(r"\$\{?device\}?(?![a-z_])", dev, q)
    q = re.sub(r"\$\{?input\}?(?![a-z_])", inp, q)
    q = re.sub(r"\$\{?tagvalue\}?(?![a-z_])", lambda m: vals, q)
    q = re.sub(r"\$\{?tag\}?(?![a-z_])", tag, q)
    q = re.sub(r"\$\{?tz\}?(?![a-z_])", tz, q)
    q = re.sub(r"\$\{?feed\}?(?![a-z_])", lambda m: feeds, q)
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


# ---- Grafana's two ways of turning an InfluxQL annotation query into events ----

def _split_tags(row, indexes):
    """Tag columns' values, empty ones left out, each split at commas (as
    Grafana does: a value with a comma becomes two tags)."""
    tags = []
    for i in indexes:
        if row[i]:
            if not isinstance(row[i], str):
                raise AssertionError("Grafana calls split() on a tag column: %r" % row[i])
            tags.extend(row[i].split(","))
    return tags


def annotations_browser(doc, anno):
    """InfluxSeries.getAnnotations(): the answer's own column names; a
    column is a tag column when it is one of tagsColumn's names (Grafana
    removes only the first space of tagsColumn)."""
    tag_names = anno["tagsColumn"].replace(" ", "", 1).split(",")
    events = []
    for s in series_of(doc):
        time_i = title_i = text_i = None
        tag_i = []
        for i, col in enumerate(s["columns"]):
            if col == "time":
                time_i = i
            elif col == "sequence_number":
                pass
            elif col == anno["titleColumn"]:
                title_i = i
            elif col in tag_names:
                tag_i.append(i)
            elif col == anno["textColumn"]:
                text_i = i
            elif col == anno["timeEndColumn"]:
                pass
            elif not title_i and text_i != i:
                title_i = i
        for row in s["values"]:
            events.append({"time": row[time_i], "text": None if text_i is None else row[text_i],
                           "tags": _split_tags(row, tag_i),
                           "title": None if title_i is None else row[title_i]})
    return events


def annotations_server(doc, anno):
    """Grafana's server-side InfluxQL (proxy access, Grafana 10 and later):
    one frame per column named "<measurement>.<column>", made into a table
    by ResponseParser.transformAnnotationResponse(), which drops a row with
    a null in any column and takes as a tag column every column whose name
    CONTAINS one of tagsColumn's names, and as text the one containing
    textColumn."""
    tag_names = [t for t in anno["tagsColumn"].replace(" ", "", 1).split(",") if t]
    events = []
    for s in series_of(doc):
        if s.get("tags"):
            raise AssertionError("GROUP BY in an annotation query: %r" % s["tags"])
        names = ["Time"] + ["%s.%s" % (s["name"], c) for c in s["columns"] if c != "time"]
        cols = [i for i, c in enumerate(s["columns"]) if c != "time"]
        time_i = title_i = text_i = 0
        tag_i = []
        for i, name in enumerate(names):
            if name.lower() == "time":
                time_i = i
            elif name == anno["titleColumn"]:
                title_i = i
            elif any(t in name for t in tag_names):
                tag_i.append(i)
            elif anno["textColumn"] and anno["textColumn"] in name:
                text_i = i
            elif name == anno["timeEndColumn"]:
                pass
            elif not title_i and text_i != i:
                title_i = i
        for values in s["values"]:
            row = [values[0]] + [values[i] for i in cols]
            if None in row[1:]:
                continue
            events.append({"time": row[time_i], "text": row[text_i] if text_i else None,
                           "tags": _split_tags(row, tag_i),
                           "title": row[title_i] if title_i else None})
    return events


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
                                      "unique_id", "phase", "phase2", "feed") if rx.search(k)],
                         ["customer", "pitch", "rack", "phase2", "feed"])
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
                self.assertRegex(t["query"], r'FROM "powermeter(_feed|_alarm|_module)?"')
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
        self.assertEqual(len(estimated), 5)
        for p in estimated:
            self.assertIn("estimated", p["title"].lower())
            self.assertIn("voltage x power factor", p["description"])
            self.assertEqual(p["fieldConfig"]["defaults"]["unit"],
                             "watth" if '"energy"' in p["targets"][0]["query"] else "watt")

    def test_capacity_row(self):
        """The feeds row: its variable, every feed panel filtered by it,
        load against the feed_load defaults, 2N against 100 %."""
        d = self.dash
        variables = {v["name"]: v for v in d["templating"]["list"]}
        feed = variables["feed"]
        self.assertEqual(feed["query"], 'SHOW TAG VALUES FROM "powermeter_feed" WITH KEY = "feed"')
        self.assertEqual(feed["definition"], feed["query"])
        self.assertTrue(feed["multi"] and feed["includeAll"])
        self.assertEqual(feed["datasource"]["uid"], "${datasource}")
        rows = [p for p in d["panels"] if p["type"] == "row"]
        row = [r for r in rows if "capacity" in r["title"].lower()]
        self.assertEqual(len(row), 1)
        self.assertIn("estimated", row[0]["title"].lower())
        below = [p for p in d["panels"] if p["gridPos"]["y"] > row[0]["gridPos"]["y"]]
        on_feeds = [p for p in below if '"powermeter_feed"' in p["targets"][0]["query"]]
        self.assertEqual(len(on_feeds), 8)
        for p in on_feeds:
            self.assertIn('"feed" =~ /^$feed$/', p["targets"][0]["query"], p["title"])
        # no feed query above the row
        for p in d["panels"]:
            for t in p.get("targets", []):
                if '"powermeter_feed"' in t["query"]:
                    self.assertIn(p, below)

        def steps(p):
            return [(s["color"], s["value"]) for s in
                    p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        panels = {p["title"]: p for p in below}
        for title in ("Load per feed and phase", "Latest load per feed and phase",
                      "Redundant load of 2N pairs"):
            p = panels[title]
            self.assertEqual(p["fieldConfig"]["defaults"]["unit"], "percent")
            self.assertEqual(steps(p)[1:], [("orange", 80), ("red", 100)], title)
        for title in ("Load per feed and phase", "Redundant load of 2N pairs"):
            style = panels[title]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]
            self.assertIn(style["mode"], ("line", "dashed", "line+area", "dashed+area"))
        self.assertEqual(panels["Latest load per feed and phase"]["type"], "bargauge")
        self.assertEqual(panels["Imbalance per feed"]["fieldConfig"]["defaults"]["unit"],
                         "percent")
        self.assertEqual(panels["Estimated neutral current per feed"]["fieldConfig"]
                         ["defaults"]["unit"], "amp")
        self.assertIn("estimate", panels["Estimated neutral current per feed"]["description"])
        self.assertEqual(panels["Alarm changes"]["targets"][0]["resultFormat"], "table")

    def test_alarm_annotations(self):
        """Raises by severity and clears, each an InfluxQL annotation of
        the dashboard's data source, in the legacy fields and the target
        Grafana 10+ migrates them into, alike."""
        annos = {a["name"]: a for a in self.dash["annotations"]["list"]}
        self.assertEqual(sorted(annos), ["Alarms cleared", "Critical alarms raised",
                                         "Warnings raised"])
        wheres = {"Critical alarms raised": '"active" = true AND "severity" = \'critical\'',
                  "Warnings raised": '"active" = true AND "severity" = \'warning\'',
                  "Alarms cleared": '"active" = false'}
        for name, a in annos.items():
            self.assertEqual(a["datasource"], {"type": "influxdb", "uid": "${datasource}"})
            self.assertTrue(a["enable"])
            q = a["query"]
            self.assertIn("$timeFilter", q)
            self.assertIn('FROM "powermeter_alarm"', q)
            self.assertTrue(q.endswith(wheres[name]), q)
            self.assertNotIn("GROUP BY", q)
            t = a["target"]
            self.assertTrue(t["fromAnnotations"] and t["rawQuery"])
            for key in ("query", "textColumn", "tagsColumn", "titleColumn", "timeEndColumn"):
                self.assertEqual(t[key], a[key], key)
            self.assertEqual(a["textColumn"], "message")
            # no spaces: Grafana strips only the first one
            self.assertEqual(a["tagsColumn"], "kind,subject,severity")
        self.assertEqual(len({a["iconColor"] for a in annos.values()}), 3)

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
    """Two daemon runs feed every query check (setUpClass): one with
    the simulator's default currents into database powermeter, and one into
    database alarms during which an alarm is raised and cleared and a
    module goes offline for a while."""

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
        # voltages, power factors, phases, feeds and tags; energy saved every second
        cls.cfg = feeds_config(cls.holder, cls.sim, cls.db, cls.db.database)
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
        common.wait_for(lambda: cls.complete_feeds(cls.db.database) >= 2, 15, interval=0.2,
                        what="two complete points of each feed")
        common.wait_for(lambda: cls.db.count("powermeter_alarm", "message") >= 1, 10,
                        interval=0.2, what="the redundancy alarm in InfluxDB")
        if daemon.stop() != 0:
            raise AssertionError("powermeterd failed: %s" % daemon.stderr())
        cls.points = cls.db.points()
        cls.run_alarms()

    @classmethod
    def complete_feeds(cls, database):
        """How many complete points the feed with the fewest has."""
        rows = cls.db.points("powermeter_feed", db=database, where="\"phase\" = ''")
        return min(len([r for r in rows if r["feed"] == f and r["complete"]]) for f in CAPACITY)

    @classmethod
    def run_alarms(cls):
        """The second run: circuit 1.a goes to 14 A (88 % of its 16 A
        breaker: a warning), then 17 A (critical), then back to its 10.1 A
        (cleared); then module 2, all of UPS B, stops answering for a
        while. Unix ms of each change in cls.changes."""
        cls.db.query('CREATE DATABASE "%s"' % ALARM_DB, method="POST", db=None)
        cfg = feeds_config(cls.holder, cls.sim, cls.db, ALARM_DB)
        daemon = Daemon(cls.holder, cfg).start()
        common.wait_for(lambda: cls.complete_feeds(ALARM_DB) >= 1, 15, interval=0.1,
                        what="a complete point of each feed in database alarms")
        m, letter = ALARM_CIRCUIT
        cls.changes = {}

        def alarm_points():
            return [r for r in cls.db.points("powermeter_alarm", db=ALARM_DB)
                    if r["alarm"] == "circuit_load"]
        for step, raw in (("warning", 1400), ("critical", 1700), ("cleared", None)):
            cls.changes[step] = time.time() * 1000
            cls.sim.set(0, m, letter, raw if raw else Sim.default_raw(m, ord(letter) - ord("a")))
            n = len(cls.changes)
            common.wait_for(lambda: len(alarm_points()) >= n, 10, interval=0.1,
                            what="circuit_load %s in InfluxDB" % step)
        cls.changes["offline"] = time.time() * 1000
        cls.sim.fault(0, 2, "noanswer")

        def incomplete_b():
            where = "\"feed\" = 'UPS B' AND \"phase\" = 'L1' AND time >= %dms" % \
                cls.changes["offline"]
            return [r["time"] for r in cls.db.points("powermeter_feed", db=ALARM_DB, where=where)
                    if r["missing"]]
        # more than 2 s without UPS B's L1: a whole 1 s interval of none
        common.wait_for(lambda: (lambda t: t and t[-1] - t[0] > 2200)(incomplete_b()), 20,
                        interval=0.2, what="UPS B incomplete for 2 s")
        cls.changes["online"] = time.time() * 1000
        cls.sim.clear(0, 2)
        where = "\"phase\" = '' AND \"feed\" = 'UPS B' AND time > %dms" % cls.changes["online"]
        common.wait_for(lambda: len([r for r in cls.db.points("powermeter_feed", db=ALARM_DB,
                                                             where=where)
                                     if r["complete"]]) >= 2,
                        15, interval=0.2, what="UPS B complete again")
        if daemon.stop() != 0:
            raise AssertionError("powermeterd failed: %s" % daemon.stderr())

    @classmethod
    def tearDownClass(cls):
        cls.holder.doCleanups()

    def setUp(self):
        self.dash = load_dashboard()
        self.panels = {p["title"]: p for p in self.dash["panels"] if p["type"] != "row"}

    def run_query(self, title, db=None, **kw):
        p = self.panels[title]
        self.assertEqual(len(p["targets"]), 1)
        q = substitute(p["targets"][0]["query"], **kw)
        return series_of(self.db.query(q, db=db or self.db.database)), p["targets"][0]

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

    def bus_health(self, db):
        """Per module, the sums of the bus health panel's columns."""
        series, t = self.run_query("Bus health: retried requests and bad answers", db=db,
                                  interval="1s")
        self.assertEqual(t["alias"], "Module $tag_device_id $col")
        got = {}
        for s in series:
            self.assertEqual(s["columns"],
                             ["time", "retries", "timeouts", "CRC errors", "bad frames"])
            got[s["tags"]["device_id"]] = [sum(r[i] or 0 for r in s["values"])
                                           for i in range(1, 5)]
        self.assertEqual(sorted(got), [str(m) for m in MODULES])
        return got

    def test_bus_health(self):
        """A clean line: nothing retried. In the second run module 2 went
        silent for a while: its timeouts show (one attempt per tick once
        silent, so fewer retries than timeouts), module 1's line stays
        clean."""
        for dev, sums in self.bus_health(self.db.database).items():
            self.assertEqual(sums, [0, 0, 0, 0], dev)
        got = self.bus_health(ALARM_DB)
        self.assertEqual(got["1"], [0, 0, 0, 0])
        retries, timeouts, crc, frames = got["2"]
        self.assertGreaterEqual(timeouts, 3)
        self.assertLess(retries, timeouts)
        self.assertEqual((crc, frames), (0, 0))

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
        # the circuit's feed too: energy per feed is a question worth asking
        self.assertEqual(keys, ["customer", "feed", "rack", "site"])
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
                            ("site", ["hall 2"]), ("customer", ["Beta"]), ("feed", None),
                            ("feed", ["UPS B"])):
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
                tagged = [(str(m), l) for m in MODULES for l in INPUTS
                          if circuit_tags(m, l).get(tag) == value]
                self.assertTrue(tagged)
                self.assertAlmostEqual(total, sum(per_circuit[k] for k in tagged), places=6)
                self.assertAlmostEqual(total, sum(self.counter_increase(*k) for k in tagged),
                                       places=6)
        self.assertEqual(tag_values("customer"), ["ACME", "Beta"])
        self.assertEqual(tag_values("site"), ["dc1", "hall 2"])
        self.assertEqual(tag_values("feed"), ["UPS A", "UPS B"])

    # ---- feeds and capacity: UPS A and UPS B -----------------------------------

    def feed_series(self, title, db=None, per_phase=True, **kw):
        """{(feed, phase) or feed: [non-null values]} of a feed panel."""
        series, t = self.run_query(title, db=db, **kw)
        got = {}
        for s in series:
            if per_phase:
                self.assertEqual(set(s["tags"]), {"feed", "phase"}, title)
                self.assertEqual(t["alias"], "$tag_feed $tag_phase")
                key = (s["tags"]["feed"], s["tags"]["phase"])
            else:
                self.assertEqual(list(s["tags"]), ["feed"], title)
                self.assertEqual(t["alias"], "$tag_feed")
                key = s["tags"]["feed"]
            self.assertNotIn(key, got)
            got[key] = [row[1] for row in s["values"] if row[1] is not None]
            self.assertTrue(got[key], (title, key))
        return got

    def all_phases(self, feeds=None):
        return {(f, p) for f in (feeds or CAPACITY) for p in PHASES}

    def test_feed_variable(self):
        v = {x["name"]: x for x in self.dash["templating"]["list"]}["feed"]
        rows = series_of(self.db.query(substitute(v["query"])))
        self.assertEqual(sorted(x[1] for x in rows[0]["values"]), ["UPS A", "UPS B"])

    def test_current_per_feed_and_phase(self):
        """The sum of the currents the simulator serves the phase's
        circuits; 0 on UPS B's empty L2 and L3."""
        got = self.feed_series("Current per feed and phase")
        self.assertEqual(set(got), self.all_phases())
        self.assertEqual(len(members("UPS B", "L1")), 2)      # 2.a and 2.c
        self.assertEqual(phase_current("UPS B", "L2"), 0)
        for (feed, phase), values in got.items():
            for x in values:
                self.assertAlmostEqual(x, phase_current(feed, phase), places=9, msg=(feed, phase))

    def test_load_per_feed_and_phase(self):
        """current / capacity x 100; $feed picks the feeds."""
        for feeds in (None, ["UPS B"]):
            got = self.feed_series("Load per feed and phase", feed=feeds)
            self.assertEqual(set(got), self.all_phases(feeds))
            for (feed, phase), values in got.items():
                for x in values:
                    self.assertAlmostEqual(x, phase_current(feed, phase) / CAPACITY[feed] * 100,
                                           places=9, msg=(feed, phase))
        self.assertAlmostEqual(phase_current("UPS B", "L1") / 63 * 100, 64.126984127, places=6)

    def test_latest_load_per_feed_and_phase(self):
        got = self.feed_series("Latest load per feed and phase")
        self.assertEqual(set(got), self.all_phases())
        for (feed, phase), values in got.items():
            self.assertEqual(len(values), 1)
            self.assertAlmostEqual(values[0], phase_current(feed, phase) / CAPACITY[feed] * 100,
                                   places=9)

    def test_redundant_load(self):
        """Per phase, both feeds of the pair over the smaller capacity
        (32 A), the same on either feed: 157.8 % on L1."""
        got = self.feed_series("Redundant load of 2N pairs")
        self.assertEqual(set(got), self.all_phases())
        for (feed, phase), values in got.items():
            want = (phase_current("UPS A", phase) + phase_current("UPS B", phase)) / 32 * 100
            for x in values:
                self.assertAlmostEqual(x, want, places=9, msg=(feed, phase))
        self.assertAlmostEqual(got[("UPS B", "L1")][0], 157.8125, places=9)

    def test_imbalance_per_feed(self):
        """NEMA, by hand: UPS A 10.1, 10.2, 10.3 A (0.98 %); UPS B 40.4,
        0, 0 A (200 %)."""
        got = self.feed_series("Imbalance per feed", per_phase=False)
        self.assertEqual(set(got), set(CAPACITY))
        for feed, values in got.items():
            want = nema_imbalance([phase_current(feed, p) for p in PHASES])
            for x in values:
                self.assertAlmostEqual(x, want, places=9, msg=feed)
        self.assertAlmostEqual(got["UPS B"][0], 200, places=9)
        self.assertAlmostEqual(got["UPS A"][0], 0.1 / 10.2 * 100, places=6)

    def test_neutral_per_feed(self):
        got = self.feed_series("Estimated neutral current per feed", per_phase=False)
        self.assertEqual(set(got), set(CAPACITY))
        for feed, values in got.items():
            want = neutral([phase_current(feed, p) for p in PHASES])
            for x in values:
                self.assertAlmostEqual(x, want, places=9, msg=feed)
        self.assertAlmostEqual(got["UPS B"][0], 40.4, places=9)   # one phase: all of it
        self.assertAlmostEqual(got["UPS A"][0], math.sqrt(0.03), places=9)

    def test_power_per_feed(self):
        """The estimated power of the feed's circuits (each its voltage x
        power factor) summed; one feed chosen."""
        for feeds in (None, ["UPS A"]):
            got = self.feed_series("Estimated power per feed", per_phase=False, feed=feeds)
            self.assertEqual(sorted(got), feeds or sorted(CAPACITY))
            for feed, values in got.items():
                want = sum(watts(m, l) for m, l in members(feed))
                for x in values:
                    self.assertAlmostEqual(x, want, places=6, msg=feed)

    def test_missing_circuits_first_run(self):
        """Nothing missing once both modules were read: the last interval
        is 0 for both feeds."""
        got = self.feed_series("Feed circuits without a reading", per_phase=False)
        self.assertEqual(set(got), set(CAPACITY))
        for feed, values in got.items():
            self.assertEqual(values[-1], 0, feed)
            self.assertTrue(all(x in range(0, len(members(feed)) + 1) for x in values), values)

    # ---- alarms: annotations and the table ----------------------------------

    def annotations(self, name, db):
        anno = {a["name"]: a for a in self.dash["annotations"]["list"]}[name]
        doc = self.db.query(substitute(anno["target"]["query"]), db=db)
        browser = annotations_browser(doc, anno["target"])
        server = annotations_server(doc, anno["target"])
        # both of Grafana's paths make the same events of it
        self.assertEqual(browser, server, name)
        for e in server:
            self.assertIsNone(e["title"])
        return server

    def stored_alarms(self, db):
        return self.db.points("powermeter_alarm", db=db)

    def test_annotations_first_run(self):
        """The 2N pair over 100 % on L1 from the start: one critical
        raise, nothing else."""
        crit = self.annotations("Critical alarms raised", self.db.database)
        self.assertEqual(len(crit), 1, crit)
        self.assertEqual(crit[0]["tags"], ["redundancy", "UPS A+UPS B L1", "critical"])
        stored = self.stored_alarms(self.db.database)
        self.assertEqual(len(stored), 1)
        self.assertEqual(crit[0]["text"], stored[0]["message"])
        self.assertEqual(crit[0]["time"], stored[0]["time"])
        self.assertTrue(crit[0]["text"].startswith("feeds UPS A and UPS B carry "), crit[0])
        self.assertEqual(self.annotations("Warnings raised", self.db.database), [])
        self.assertEqual(self.annotations("Alarms cleared", self.db.database), [])

    def test_annotations_of_raised_and_cleared_alarm(self):
        """Second run: circuit load raised as a warning at 14 A, critical at
        17 A, cleared at 10.1 A, each after its change in the simulator;
        text the daemon's message, tags kind, subject (the circuit's name
        'Dev 1, input "a"=x', which Grafana splits at its comma) and
        severity."""
        name = input_name(*ALARM_CIRCUIT)
        subject_tags = name.split(",")
        self.assertEqual(len(subject_tags), 2)
        rows = self.stored_alarms(ALARM_DB)
        stored = {(r["alarm"], r["severity"], r["active"]): r for r in rows}
        self.assertEqual(sorted((r["alarm"], r["severity"], r["active"]) for r in rows),
                         [("circuit_load", "critical", False),
                          ("circuit_load", "critical", True),
                          ("circuit_load", "warning", True),
                          ("redundancy", "critical", True)])
        warn = self.annotations("Warnings raised", ALARM_DB)
        crit = self.annotations("Critical alarms raised", ALARM_DB)
        clear = self.annotations("Alarms cleared", ALARM_DB)
        self.assertEqual([e["tags"] for e in warn], [["circuit_load"] + subject_tags + ["warning"]])
        self.assertEqual(sorted(e["tags"][0] for e in crit), ["circuit_load", "redundancy"])
        crit = [e for e in crit if e["tags"][0] == "circuit_load"]
        self.assertEqual([e["tags"] for e in crit], [["circuit_load"] + subject_tags + ["critical"]])
        self.assertEqual([e["tags"] for e in clear], [["circuit_load"] + subject_tags + ["critical"]])
        steps = (("warning", warn[0], stored[("circuit_load", "warning", True)], "14.0 A"),
                 ("critical", crit[0], stored[("circuit_load", "critical", True)], "17.0 A"),
                 ("cleared", clear[0], stored[("circuit_load", "critical", False)], "10.1 A"))
        following = ("critical", "cleared", "offline")
        for (step, event, point, amps), after in zip(steps, following):
            self.assertEqual(event["text"], point["message"], step)
            self.assertIn(name, event["text"])
            self.assertIn(amps, event["text"])
            # read after the change (a read already under way may have
            # started up to one interval before it), before the next one
            self.assertGreaterEqual(event["time"], self.changes[step] - INTERVAL * 1000, step)
            self.assertLess(event["time"], self.changes[after], step)

    def test_alarm_table(self):
        """Newest first, with value and threshold in % of the breaker."""
        series, t = self.run_query("Alarm changes", db=ALARM_DB)
        self.assertEqual(len(series), 1)
        rows = [dict(zip(series[0]["columns"], v)) for v in series[0]["values"]]
        times = [r["time"] for r in rows]
        self.assertEqual(times, sorted(times, reverse=True))
        renamed = self.panels["Alarm changes"]["transformations"][0]["options"]["renameByName"]
        self.assertLessEqual(set(series[0]["columns"]) - {"time"}, set(renamed))
        circuit_rows = [r for r in reversed(rows) if r["alarm"] == "circuit_load"]
        name = input_name(*ALARM_CIRCUIT)
        # 14 A, 17 A and 10.1 A of the 16 A breaker
        want = [("warning", True, 87.5, 80), ("critical", True, 106.25, 100),
                ("critical", False, 63.125, 100)]
        self.assertEqual([(r["severity"], r["active"]) for r in circuit_rows],
                         [w[:2] for w in want])
        for r, (_, _, value, threshold) in zip(circuit_rows, want):
            self.assertEqual(r["subject"], name)
            self.assertAlmostEqual(r["value"], value, places=9)
            self.assertEqual(r["threshold"], threshold)
        self.assertEqual([r["subject"] for r in rows if r["alarm"] == "redundancy"],
                         ["UPS A+UPS B L1"])
        for r in rows:
            self.assertTrue(r["message"])

    # ---- the second run's feeds: a live change, and a module offline ---------

    def feed_points(self, where):
        return self.db.points("powermeter_feed", db=ALARM_DB, where=where)

    def test_load_follows_live_change_and_leaves_gap(self):
        """Per 1 s interval, the highest load written in it, and a gap
        (null) in the intervals where module 2 was offline throughout:
        UPS B's L1 was never a low sum. UPS A's L1 reached 17 A / 32 A."""
        series, _ = self.run_query("Load per feed and phase", db=ALARM_DB, interval="1s")
        got = {(s["tags"]["feed"], s["tags"]["phase"]): dict(s["values"]) for s in series}
        self.assertEqual(set(got), self.all_phases())
        gaps = 0
        for (feed, phase), buckets in got.items():
            points = self.feed_points("\"feed\" = '%s' AND \"phase\" = '%s'" % (feed, phase))
            by_bucket = {}
            for r in points:
                by_bucket.setdefault(r["time"] // 1000 * 1000, []).append(r.get("load"))
            for start, loads in by_bucket.items():
                present = [x for x in loads if x is not None]
                self.assertIn(start, buckets)
                if present:
                    self.assertAlmostEqual(buckets[start], max(present), places=9)
                else:
                    self.assertIsNone(buckets[start], (feed, phase, start))
                    gaps += (feed, phase) == ("UPS B", "L1")
        self.assertGreaterEqual(gaps, 1)
        a_l1 = [x for x in got[("UPS A", "L1")].values() if x is not None]
        self.assertAlmostEqual(max(a_l1), 17 / 32 * 100, places=9)
        self.assertAlmostEqual(min(a_l1), 10.1 / 32 * 100, places=9)

    def missing_per_interval(self, seconds):
        """{feed: {interval start: value}} of the panel, each checked
        against the most circuits missing in the points of the interval."""
        series, _ = self.run_query("Feed circuits without a reading", db=ALARM_DB,
                                   interval="%ds" % seconds)
        got = {s["tags"]["feed"]: dict(s["values"]) for s in series}
        self.assertEqual(set(got), set(CAPACITY))
        for feed, buckets in got.items():
            points = self.feed_points("\"feed\" = '%s' AND \"phase\" = ''" % feed)
            by_bucket = {}
            for r in points:
                by_bucket.setdefault(r["time"] // (seconds * 1000) * seconds * 1000,
                                     []).append(r["missing"])
            for start, missing in by_bucket.items():
                self.assertEqual(buckets[start], max(missing), (feed, start, missing))
            if seconds == 1:
                self.assertEqual(buckets[max(by_bucket)], 0, feed)
        return got

    def test_missing_circuits_while_module_offline(self):
        """UPS B's two circuits missing while module 2 did not answer, and
        none again at the end; each interval the most written in it (10 s
        intervals hold readings from before or after the outage, too)."""
        got = self.missing_per_interval(1)
        during = [x for t, x in got["UPS B"].items()
                  if self.changes["offline"] <= t < self.changes["online"] - 1000]
        self.assertIn(2, during)
        got = self.missing_per_interval(10)
        self.assertIn(2, got["UPS B"].values())

    def test_every_panel_returns_data(self):
        """No panel is left unchecked: each one's query gives series."""
        for title in self.panels:
            series, _ = self.run_query(title, interval="1s")
            self.assertTrue(series, title)


if __name__ == "__main__":
    common.main()
