"""powermeter json / zabbix discovery / zabbix feeds / zabbix status /
zabbix circuits next to a running powermeterd, and Debian's real
zabbix_agent2 running the UserParameter file: values from the daemon's
snapshot equal the seed's array value by value, in well under 100 ms,
without a single request on the bus; a stale snapshot gives an error, never
old values; without a daemon the bus is read (json) or nothing is printed
(circuits, which never reads the bus). The feeds are discovered per phase,
the templates' feed items pick the daemon's figures, and their alarm items
and triggers follow the alarms the real daemon raises and clears as the
simulator's currents change.
"""
import json
import math
import os
import re
import signal
import statistics
import stat
import time
import unittest

import common
from daemonlib import Daemon, daemon_config, input_name, rewrite_config, INPUTS, RATIO
from sim import Sim
import templates

INTERVAL = 0.5


def expected_array(sim, inputs=INPUTS, values=None):
    """The seed's array for daemon_config()'s devices: default_raw x ratio
    rounded to 2, ids running over the config."""
    out = []
    i = 0
    for b, bus in enumerate(sim.buses):
        for m in bus["modules"]:
            dev_id = b * 100 + m["address"]
            for l in inputs:
                ch = ord(l) - ord("a")
                raw = (values or {}).get((m["address"], l), Sim.default_raw(m["address"], ch))
                out.append({"id": i, "device_id": dev_id, "input": l,
                            "name": input_name(dev_id, l), "current": round(raw * RATIO, 2)})
                i += 1
    return out


def seed_text(values):
    """Exactly what the seed's script printed: print(json.dumps(v, indent=4))."""
    return json.dumps(values, indent=4) + "\n"


def bus_requests(sim):
    return [e for e in sim.log() if e.get("fc") == 3]


class ZabbixBase(unittest.TestCase):
    def start(self, n_modules=2, power=False, **kw):
        """With 'power': templates.power_config()'s voltages, phases and tags,
        energy saved every second."""
        self.sim = Sim.single(self, n_modules=n_modules)
        make = templates.power_config if power else daemon_config
        self.cfg = make(self, self.sim, interval=INTERVAL, **kw)
        with open(self.cfg) as f:
            self.snapshot = json.load(f)["snapshot"]
        self.daemon = Daemon(self, self.cfg).start()
        self.wait_fresh()

    def start_feeds(self):
        """Two modules on the feeds of feed_config(), FEED_RAWS set."""
        self.sim = Sim.single(self, n_modules=2)
        for (addr, letter), raw in FEED_RAWS.items():
            self.sim.set(0, addr, letter, raw)
        self.cfg = feed_config(self, self.sim)
        with open(self.cfg) as f:
            self.snapshot = json.load(f)["snapshot"]
        self.daemon = Daemon(self, self.cfg).start()
        self.wait_fresh()

    def wait_fresh(self, timeout=15):
        """Until powermeter json answers from a snapshot with every module."""
        def fresh():
            st = self.status()
            return st["snapshot"]["fresh"] == 1 and all(d["up"] for d in st["devices"])
        common.wait_for(fresh, timeout, what="a fresh snapshot with every module up")

    def pm(self, *args):
        return common.run([common.POWERMETER] + list(args))

    def json_cmd(self):
        return self.pm("json", "-c", self.cfg)

    def status(self):
        p = self.pm("zabbix", "status", "-c", self.cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        return json.loads(p.stdout)

    def assert_only_daemon_asked(self):
        """Every request the simulator answered was one of the daemon's:
        its snapshot counts its reads up to the moment it was written, and
        the simulator logged exactly that many requests per module until
        then (one bus, one poller: no read of the daemon is in flight when
        it writes the snapshot). The simulator stamps an answer once its
        wire time is over, a little after the daemon may have it; the next
        tick's answers come an interval later."""
        with open(self.snapshot) as f:
            doc = json.load(f)
        written = doc["written_at"] + INTERVAL * 1000 * 0.4
        for d in doc["devices"]:
            self.assertEqual(d["state"]["failures"], 0)

        def past_snapshot():
            log = bus_requests(self.sim)
            return log if any(e["t_ms"] > written for e in log) else None
        log = common.wait_for(past_snapshot, 10, what="a request after the snapshot")
        for d in doc["devices"]:
            asked = [e for e in log if e["addr"] == d["address"] and e["t_ms"] <= written]
            self.assertEqual(len(asked), d["state"]["reads"],
                             "module %d: %d requests on the bus, %d of them the daemon's"
                             % (d["address"], len(asked), d["state"]["reads"]))


class Json(ZabbixBase):
    def test_snapshot_values_equal_the_seed_array(self):
        """While the daemon runs: the seed's text exactly, fast, no bus."""
        self.start()
        want = seed_text(expected_array(self.sim))
        n_before = len(bus_requests(self.sim))
        took = []
        # spread over 3 intervals, so that the daemon polls in between
        for _ in range(7):
            time.sleep(3 * INTERVAL / 7)
            start = time.monotonic()
            p = self.json_cmd()
            took.append(time.monotonic() - start)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "")
            self.assertEqual(p.stdout, want)
        self.assertLess(statistics.median(took), 0.100, "powermeter json took %s s" % took)
        # the daemon kept polling meanwhile (so the check below means something)
        self.assertGreater(len(bus_requests(self.sim)), n_before)
        self.assert_only_daemon_asked()

    def test_config_path_as_argument(self):
        """The seed's script took the config path as its argument."""
        self.start(n_modules=1)
        p = self.pm("json", self.cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), expected_array(self.sim))

    def test_snapshot_file(self):
        """0644 for the agent's user, written by the daemon, gone on stop."""
        self.start(n_modules=1)
        st = os.stat(self.snapshot)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        with open(self.snapshot) as f:
            doc = json.load(f)
        self.assertEqual(doc["pid"], self.daemon.pid)
        self.assertEqual(doc["interval"], INTERVAL)
        self.assertEqual([d["id"] for d in doc["devices"]], [1])
        self.assertLess(abs(doc["written_at"] - time.time() * 1000), 3 * INTERVAL * 1000)
        leftovers = [n for n in os.listdir(os.path.dirname(self.snapshot)) if "tmp" in n]
        self.assertEqual(leftovers, [])
        self.assertEqual(self.daemon.stop(), 0)
        self.assertFalse(os.path.exists(self.snapshot))

    def test_stuck_daemon_gives_an_error_not_old_values(self):
        """The daemon holds the port but stops updating (SIGSTOP): after 3
        intervals json prints nothing, says why, exits 1 — and does not
        touch the port. status says the same. SIGCONT: values again."""
        self.start()
        self.daemon.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: self.daemon.running() and
                        self.daemon.proc.send_signal(signal.SIGCONT))
        time.sleep(3 * INTERVAL + 0.3)
        n = len(bus_requests(self.sim))
        p = self.json_cmd()
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("busy (held by pid %d)" % self.daemon.pid, p.stderr)
        self.assertIn("older than 3 intervals", p.stderr)
        self.assertEqual(len(bus_requests(self.sim)), n, "json touched the bus")
        st = self.status()
        self.assertEqual(st["snapshot"]["fresh"], 0)
        self.assertGreater(st["snapshot"]["age"], 3 * INTERVAL)
        self.assertEqual([d["up"] for d in st["devices"]], [0, 0])
        self.assertIn("older than 3 intervals", st["devices"][0]["error"])
        self.daemon.proc.send_signal(signal.SIGCONT)
        self.wait_fresh()
        p = self.json_cmd()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), expected_array(self.sim))

    def test_killed_daemon_then_bus(self):
        """SIGKILL leaves a stale snapshot and frees the port: json reads
        the bus (new values, not the snapshot's); with the bus gone as well,
        an error and no values."""
        self.start()
        with open(self.snapshot) as f:
            old = f.read()
        self.daemon.stop(signal.SIGKILL)
        self.assertTrue(os.path.exists(self.snapshot))
        self.sim.set(0, 1, "a", 4242)
        time.sleep(3 * INTERVAL + 0.2)
        n = len(bus_requests(self.sim))
        p = self.json_cmd()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout),
                         expected_array(self.sim, values={(1, "a"): 4242}))
        self.assertEqual(len(bus_requests(self.sim)), n + 2, "one read per module")
        with open(self.snapshot) as f:
            self.assertEqual(f.read(), old)
        self.sim.stop()
        p = self.json_cmd()
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("device 1 on %s" % self.sim.path(), p.stderr)

    def test_no_daemon_reads_the_bus(self):
        sim = Sim.single(self, n_modules=2)
        cfg = daemon_config(self, sim, interval=INTERVAL)
        p = self.pm("json", "-c", cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, seed_text(expected_array(sim)))
        self.assertEqual(sorted(e["addr"] for e in bus_requests(sim)), [1, 2])
        st = json.loads(self.pm("zabbix", "status", "-c", cfg).stdout)
        self.assertEqual(st["snapshot"]["fresh"], 0)
        self.assertIn("no snapshot", st["snapshot"]["error"])

    def test_down_module_left_out(self):
        """A module the daemon cannot read: its inputs are left out with a
        warning (exit 1), the other module's values are printed."""
        self.start()
        self.sim.fault(0, 2, "noanswer")
        common.wait_for(lambda: self.status()["devices"][1]["up"] == 0, 10,
                        what="module 2 down in the snapshot")
        p = self.json_cmd()
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout),
                         [v for v in expected_array(self.sim) if v["device_id"] == 1])
        self.assertIn("device 2 on %s address 2" % self.sim.path(), p.stderr)
        st = self.status()
        self.assertEqual(st["snapshot"]["fresh"], 1)
        d1, d2 = st["devices"]
        self.assertEqual((d1["up"], d2["up"]), (1, 0))
        self.assertGreaterEqual(d2["consecutive_failures"], 1)
        self.assertGreaterEqual(d2["timeouts"], 1)
        self.assertIn("timeout", d2["error"])
        self.assertEqual(d1["error"], "")
        self.assertLess(d1["age"], 3 * INTERVAL)

    def test_other_config_not_served(self):
        """A config that differs from the daemon's (one more input) gets no
        values from the daemon's snapshot, and does not open its port."""
        self.start(n_modules=1)
        with open(self.cfg) as f:
            other = json.load(f)
        other["devices"][0]["inputs"].append({"input": "p", "ratio": 0.01, "name": "extra"})
        path = os.path.join(common.tmpdir(self), "other.json")
        with open(path, "w") as f:
            json.dump(other, f)
        p = self.pm("json", "-c", path)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("no snapshot of this configuration", p.stderr)


class Discovery(unittest.TestCase):
    def test_discovery(self):
        """LLD rows from the config alone: no daemon, no bus."""
        sim = Sim.single(self, n_modules=2)
        cfg = daemon_config(self, sim, inputs="ap")
        p = common.run([common.POWERMETER, "zabbix", "discovery", "-c", cfg])
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = json.loads(p.stdout)
        self.assertIsInstance(rows, list)      # Zabbix 4.2+: a top-level array
        self.assertEqual(rows[1], {"{#ID}": 1, "{#DEVICE_ID}": 1, "{#INPUT}": "p",
                                   "{#NAME}": input_name(1, "p"), "{#KEY}": "1.p",
                                   "{#PORT}": sim.path(), "{#ADDRESS}": 1, "{#PHASE}": ""})
        self.assertEqual([r["{#KEY}"] for r in rows], ["1.a", "1.p", "2.a", "2.p"])
        self.assertEqual([r["{#ID}"] for r in rows], [0, 1, 2, 3])
        self.assertEqual(bus_requests(sim), [])
        # options before the subcommand work too
        q = common.run([common.POWERMETER, "zabbix", "-c", cfg, "discovery"])
        self.assertEqual(q.stdout, p.stdout)

    def test_phase_and_tag_macros(self):
        """{#PHASE} ("" when not configured) and one {#TAG.<KEY>} per tag the
        circuit's points carry (the file's and its own, its own winning),
        never one for phase."""
        sim = Sim.single(self, n_modules=2)
        cfg = templates.power_config(self, sim)
        p = common.run([common.POWERMETER, "zabbix", "discovery", "-c", cfg])
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {r["{#KEY}"]: r for r in json.loads(p.stdout)}
        self.assertEqual(len(rows), 8)
        a = rows["1.a"]
        self.assertEqual({k: v for k, v in a.items() if k in ("{#PHASE}",) or "TAG" in k},
                         {"{#PHASE}": "L1", "{#TAG.CUSTOMER}": "ACME", "{#TAG.RACK}": "B07",
                          "{#TAG.SITE}": "dc1"})
        self.assertEqual(rows["2.a"]["{#TAG.SITE}"], "hall 2")
        self.assertEqual(rows["1.d"]["{#PHASE}"], "")
        self.assertEqual([k for k in rows["1.d"] if "TAG" in k], ["{#TAG.SITE}"])
        for key, row in rows.items():
            for macro in row:
                # Zabbix LLD macro names: {#...} of A-Z, 0-9, _ and .
                self.assertRegex(macro, r"\A\{#[A-Z0-9_.]+\}\Z")
            self.assertNotIn("{#TAG.PHASE}", row)
        self.assertEqual(bus_requests(sim), [])

    def test_feeds(self):
        """One LLD row per phase of every feed, from the config alone."""
        sim = Sim.single(self, n_modules=2)
        cfg = feed_config(self, sim)
        p = common.run([common.POWERMETER, "zabbix", "feeds", "-c", cfg])
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertEqual(json.loads(p.stdout), FEED_ROWS)
        self.assertEqual(bus_requests(sim), [])
        # no feeds: an empty array
        plain = daemon_config(self, sim)
        p = common.run([common.POWERMETER, "zabbix", "feeds", "-c", plain])
        self.assertEqual((p.returncode, p.stdout), (0, "[]\n"))

    def test_usage_errors(self):
        for args in (["zabbix"], ["zabbix", "nonsense"], ["zabbix", "discovery", "extra"],
                     ["zabbix", "feeds", "extra"], ["zabbix", "circuits", "extra"],
                     ["json", "a", "b"]):
            p = common.run([common.POWERMETER] + args)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(p.stdout, "")
        for what in ("discovery", "feeds", "circuits"):
            p = common.run([common.POWERMETER, "zabbix", what, "-c", "/nonexistent.json"])
            self.assertEqual(p.returncode, 78)


def expected_circuits(sim):
    """powermeter zabbix circuits' "circuits" for templates.power_config()'s
    devices, but for the counters: the config's view of every circuit, and
    its current and power from hdhk-sim's default values."""
    out = []
    for row in expected_array(sim):
        c = templates.circuit(row["device_id"], row["input"])
        amps = templates.amps(row["device_id"], row["input"])
        out.append({"id": row["id"], "key": "%d.%s" % (row["device_id"], row["input"]),
                    "device_id": row["device_id"], "input": row["input"],
                    "name": row["name"], "phase": c["phase"], "breaker": c["breaker"],
                    "tags": c["tags"], "voltage": c["voltage"],
                    "power_factor": c["power_factor"], "current": row["current"],
                    "power": amps * c["voltage"] * c["power_factor"]})
    return out


def check_circuits(tc, sim, doc, down=()):
    """'doc' (powermeter zabbix circuits) is what the daemon's snapshot says
    of every circuit of templates.power_config(), those of the modules in
    'down' all null."""
    tc.assertEqual(doc["estimate"]["fields"], ["power", "energy"])
    tc.assertIn("voltage", doc["estimate"]["basis"])
    tc.assertEqual(doc["units"]["power"], "W")
    tc.assertEqual(doc["units"]["energy"], "Wh")
    want = expected_circuits(sim)
    tc.assertEqual(len(doc["circuits"]), len(want))
    for got, w in zip(doc["circuits"], want):
        tc.assertEqual(list(got), list(w) + ["energy", "charge"])
        for k in ("id", "key", "device_id", "input", "name", "phase", "breaker", "tags",
                  "voltage", "power_factor"):
            tc.assertEqual(got[k], w[k], (w["key"], k))
        if w["device_id"] in down:
            tc.assertEqual([got[k] for k in ("current", "power", "energy", "charge")],
                       [None] * 4, w["key"])
            continue
        tc.assertEqual(got["current"], w["current"])
        tc.assertAlmostEqual(got["power"], w["power"], delta=0.0501, msg=w["key"])
        tc.assertIsInstance(got["energy"], float)
        tc.assertIsInstance(got["charge"], float)


class Circuits(ZabbixBase):
    """powermeter zabbix circuits: only ever from the daemon's snapshot."""

    def circuits(self, code=0):
        p = self.pm("zabbix", "circuits", "-c", self.cfg)
        self.assertEqual(p.returncode, code, p.stderr)
        return p

    def test_values_while_daemon_runs(self):
        """Config, current and estimates of every circuit; the counters
        positive and never going down; no request on the bus."""
        self.start(power=True)
        common.wait_for(lambda: all(c["energy"] for c in
                                    json.loads(self.circuits().stdout)["circuits"]),
                        20, what="every circuit's energy in the snapshot")
        first = json.loads(self.circuits().stdout)
        check_circuits(self, self.sim, first)
        time.sleep(3)
        p = self.circuits()
        self.assertEqual(p.stderr, "")
        later = json.loads(p.stdout)
        check_circuits(self, self.sim, later)
        for a, b in zip(first["circuits"], later["circuits"]):
            self.assertGreater(a["energy"], 0)
            self.assertGreater(a["charge"], 0)
            self.assertGreaterEqual(b["energy"], a["energy"])
            self.assertGreaterEqual(b["charge"], a["charge"])
            # Wh over the run at most what its power gives since the start
            self.assertLess(b["energy"], b["power"] * 60 / 3600)
        self.assert_only_daemon_asked()

    def test_plain_config(self):
        """No voltage, phase or tags configured: 230 V, power factor 1,
        phase and breaker null, tags empty."""
        self.start(n_modules=1)
        doc = json.loads(self.circuits().stdout)
        for c, w in zip(doc["circuits"], expected_array(self.sim)):
            self.assertEqual((c["phase"], c["breaker"], c["tags"]), (None, None, {}))
            self.assertEqual((c["voltage"], c["power_factor"]), (230.0, 1.0))
            self.assertEqual(c["current"], w["current"])
            self.assertAlmostEqual(c["power"], w["current"] * 230, delta=0.0501)

    def test_module_down(self):
        """A module the daemon cannot read: its circuits' values null, the
        other's there, a warning and exit 1."""
        self.start(power=True)
        self.sim.fault(0, 2, "noanswer")
        common.wait_for(lambda: self.status()["devices"][1]["up"] == 0, 10,
                        what="module 2 down in the snapshot")
        p = self.circuits(code=1)
        self.assertIn("device 2 on %s address 2" % self.sim.path(), p.stderr)
        check_circuits(self, self.sim, json.loads(p.stdout), down=(2,))
        self.sim.fault(0, 1, "noanswer")
        common.wait_for(lambda: self.status()["devices"][0]["up"] == 0, 10,
                        what="module 1 down in the snapshot")
        # nothing known at all: nothing printed, as powermeter json
        p = self.circuits(code=1)
        self.assertEqual(p.stdout, "")

    def test_stale_or_missing_snapshot_prints_nothing(self):
        """A stuck daemon (SIGSTOP), then no daemon: nothing printed, exit 1,
        and never a request on the bus (unlike powermeter json)."""
        self.start()
        self.daemon.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: self.daemon.running() and
                        self.daemon.proc.send_signal(signal.SIGCONT))
        time.sleep(3 * INTERVAL + 0.3)
        p = self.circuits(code=1)
        self.assertEqual(p.stdout, "")
        self.assertIn("older than 3 intervals", p.stderr)
        self.daemon.proc.send_signal(signal.SIGCONT)
        self.wait_fresh()
        self.circuits()
        self.assertEqual(self.daemon.stop(), 0)
        n = len(bus_requests(self.sim))
        p = self.circuits(code=1)
        self.assertEqual(p.stdout, "")
        self.assertIn("no snapshot", p.stderr)
        self.assertEqual(len(bus_requests(self.sim)), n, "circuits touched the bus")


# ---- feeds and the daemon's alarms ---------------------------------------------
# UPS A (32 A): module 1's a, b, c on L1, L2, L3 (a with a 16 A breaker);
# UPS B (40 A, L1 and L2): module 2's a and b, lowered to 8 and 9 A so that
# the pair stays under its thresholds until a test raises a current. Every
# rule that matters here raises at once (hold 0).

FEEDS = [{"name": "UPS A", "capacity": 32, "redundant_with": "UPS B"},
         {"name": "UPS B", "capacity": 40, "redundant_with": "UPS A", "phases": ["L1", "L2"]}]
FEED_CIRCUITS = {(1, "a"): {"feed": "UPS A", "phase": "L1", "breaker": 16},
                 (1, "b"): {"feed": "UPS A", "phase": "L2"},
                 (1, "c"): {"feed": "UPS A", "phase": "L3"},
                 (2, "a"): {"feed": "UPS B", "phase": "L1"},
                 (2, "b"): {"feed": "UPS B", "phase": "L2"}}
FEED_RAWS = {(2, "a"): 800, (2, "b"): 900}
FEED_ALARMS = {"circuit_load": {"hold": 0}, "feed_load": {"hold": 0},
               "redundancy": {"hold": 0}, "module_offline": {"hold": 1},
               "imbalance": {"hold": 3600}}
FEED_ROWS = [{"{#FEED}": "UPS A", "{#PHASE}": p, "{#CAPACITY}": 32.0, "{#PARTNER}": "UPS B"}
             for p in ("L1", "L2", "L3")] + \
            [{"{#FEED}": "UPS B", "{#PHASE}": p, "{#CAPACITY}": 40.0, "{#PARTNER}": "UPS A"}
             for p in ("L1", "L2")]


def feed_config(testcase, sim, interval=INTERVAL):
    path = daemon_config(testcase, sim, interval=interval,
                         extra={"feeds": FEEDS, "alarms": FEED_ALARMS})

    def change(cfg):
        for dev in cfg["devices"]:
            for inp in dev["inputs"]:
                inp.update(FEED_CIRCUITS.get((dev["address"], inp["input"]), {}))
    rewrite_config(path, change)
    return path


def feed_amps(raws):
    """{(feed, phase): amperes} as the daemon sums them."""
    out = {}
    for (addr, letter), c in sorted(FEED_CIRCUITS.items()):
        raw = raws.get((addr, letter), Sim.default_raw(addr, ord(letter) - 97))
        key = (c["feed"], c["phase"])
        out[key] = out.get(key, 0.0) + raw * RATIO
    return out


def rule_of(t, key):
    return [r for r in t["discovery_rules"] if r["key"] == key][0]


def item_value(proto, row, value):
    """What Zabbix stores for prototype 'proto' with the LLD macros of
    'row' from master value 'value' (None: discarded)."""
    steps = [dict(st, parameters=[templates.substitute(x, row) for x in st["parameters"]])
             for st in proto["preprocessing"]]
    return templates.preprocess(steps, value)


def lld_rows(rule, master_value):
    """The LLD rows of a rule with preprocessing and lld_macro_paths (as
    the modules and feeds rules have), macros as Zabbix makes them."""
    rows = json.loads(templates.jsonpath(rule["preprocessing"][0]["parameters"][0],
                                         master_value))
    return [{m["lld_macro"]: templates.jsonpath(m["path"], r)
             for m in rule["lld_macro_paths"]} for r in rows]


TRIGGER = re.compile(r"last\(/[^/]+/(.+)\)=(\d+)\Z")


def triggers_firing(rule, rows, values):
    """Names of the rule's severity triggers (last(/T/key)=N) that fire,
    with 'values' {item key: stored value} and the LLD rows."""
    out = []
    for tp in rule["trigger_prototypes"]:
        m = TRIGGER.match(tp["expression"])
        if not m:
            continue
        for row in rows:
            key = templates.substitute(m.group(1), row)
            if key in values and values[key] is not None and \
                    int(values[key]) == int(m.group(2)):
                out.append(templates.substitute(tp["name"], row))
    return sorted(out)


def alarm_values(t, status_text, disc_text, feeds_text):
    """Every alarm severity item of template 't' on the status text:
    {key with macros substituted: stored value}, with the LLD rows of the
    inputs, modules, feed phases and feeds rules; and the rows by rule."""
    rows = {"powermeter.inputs": json.loads(disc_text),
            "powermeter.feed.phases": json.loads(feeds_text)}
    for key in ("powermeter.modules", "powermeter.feed.totals"):
        rows[key] = lld_rows(rule_of(t, key), status_text)
    values = {}
    for key, rws in rows.items():
        for proto in rule_of(t, key)["item_prototypes"]:
            if not proto["key"].startswith("powermeter.alarm."):
                continue
            for row in rws:
                values[templates.substitute(proto["key"], row)] = \
                    item_value(proto, row, status_text)
    for it in t["items"]:
        if it.get("valuemap", {}).get("name") == "powermeterd alarm severity":
            values[it["key"]] = templates.preprocess(it["preprocessing"], status_text)
    return values, rows


class FeedsAndAlarms(ZabbixBase):
    """The template's feed items and alarm triggers on what powermeter
    prints next to the real daemon."""

    def outputs(self):
        status = self.pm("zabbix", "status", "-c", self.cfg)
        self.assertEqual((status.returncode, status.stderr), (0, ""))
        disc = self.pm("zabbix", "discovery", "-c", self.cfg)
        feeds = self.pm("zabbix", "feeds", "-c", self.cfg)
        return status.stdout, disc.stdout, feeds.stdout

    def wait_severity(self, section, match, alarm, level):
        """Until powermeter zabbix status gives 'level' for 'alarm' of the
        row of 'section' whose fields include 'match'."""
        def reached():
            st = self.status()
            for row in st[section]:
                if all(row.get(k) == v for k, v in match.items()):
                    return st if row["severity"][alarm] == level else None
            raise AssertionError("no %s row %r in %r" % (section, match, st[section]))
        return common.wait_for(reached, 15, what="%s %r %s at %d" % (section, match, alarm,
                                                                   level))

    def test_feed_items_pick_the_daemon_figures(self):
        """Per phase: load, current, power, redundant load, circuits without
        a reading; per feed: imbalance and neutral, as hand-computed."""
        self.start_feeds()
        status, _, feeds = self.outputs()
        self.assertEqual(json.loads(feeds), FEED_ROWS)
        amps = feed_amps(FEED_RAWS)
        cap = {"UPS A": 32.0, "UPS B": 40.0}
        for version in templates.FILES:
            t = templates.load(version)["zabbix_export"]["templates"][0]
            rule = rule_of(t, "powermeter.feed.phases")
            self.assertEqual(rule["master_item"]["key"], "powermeter.feeds")
            protos = {p["key"].split("[")[0]: p for p in rule["item_prototypes"]}
            for row in FEED_ROWS:
                feed, phase = row["{#FEED}"], row["{#PHASE}"]
                cur = amps[(feed, phase)]
                other = amps.get(("UPS B" if feed == "UPS A" else "UPS A", phase))
                want = {"load": cur / cap[feed] * 100, "current": cur, "power": cur * 230,
                        "redundant_load": (cur + other) / 32 * 100 if other is not None
                        else None,
                        "missing": 0}
                for what, w in want.items():
                    got = item_value(protos["powermeter.feed." + what], row, status)
                    if w is None:
                        self.assertIsNone(got, (feed, phase, what))
                    else:
                        self.assertAlmostEqual(float(got), w, places=6,
                                               msg=(version, feed, phase, what))
            frule = rule_of(t, "powermeter.feed.totals")
            frows = lld_rows(frule, status)
            self.assertEqual(frows, [{"{#CAPACITY}": "32.0", "{#FEED}": "UPS A",
                                      "{#PARTNER}": "UPS B"},
                                     {"{#CAPACITY}": "40.0", "{#FEED}": "UPS B",
                                      "{#PARTNER}": "UPS A"}])
            fprotos = {p["key"].split("[")[0]: p for p in frule["item_prototypes"]}
            a = [amps[("UPS A", p)] for p in ("L1", "L2", "L3")]
            mean = sum(a) / 3
            imbalance = max(abs(x - mean) for x in a) / mean * 100
            neutral = math.sqrt(sum(x * x for x in a) - a[0] * a[1] - a[1] * a[2] - a[2] * a[0])
            for key, w in (("powermeter.feed.imbalance", imbalance),
                           ("powermeter.feed.neutral", neutral),
                           ("powermeter.feed.current.total", sum(a))):
                self.assertAlmostEqual(float(item_value(fprotos[key], frows[0], status)),
                                       w, places=6, msg=key)
        self.assert_only_daemon_asked()

    def test_alarm_items_follow_the_daemon(self):
        """Nothing raised: every alarm item 0 and no trigger fires. A
        circuit over its breaker, UPS B's L1 over 80 % and the pair over
        100 %: the daemon raises circuit_load critical, feed_load warning
        and redundancy critical, and exactly their triggers fire; back to
        normal, all 0 again. Without a fresh snapshot nothing is stored."""
        self.start_feeds()
        for version in templates.FILES:
            t = templates.load(version)["zabbix_export"]["templates"][0]
            values, rows = alarm_values(t, *self.outputs())
            # 4 circuits x 2 modules x 2, 2 modules x 2, 5 phases x 2, 2 feeds, spool, worst
            self.assertEqual(len(values), 16 + 4 + 10 + 2 + 2, sorted(values))
            self.assertEqual({k: v for k, v in values.items() if v != "0"}, {})

        self.sim.set(0, 1, "a", 1700)       # 17 A of 16 A: 106 %
        self.sim.set(0, 2, "a", 3400)       # UPS B L1 34 A of 40 A: 85 %; with A 138 %
        self.wait_severity("circuits", {"key": "1.a"}, "circuit_load", 2)
        self.wait_severity("feed_phases", {"feed": "UPS B", "phase": "L1"}, "feed_load", 1)
        st = self.wait_severity("feed_phases", {"feed": "UPS A", "phase": "L1"},
                                "redundancy", 2)
        self.assertEqual(st["alarms"]["worst"], 2)
        self.assertEqual(sorted((a["alarm"], a["subject"], a["severity"])
                                for a in st["alarms"]["active"]),
                         [("circuit_load", input_name(1, "a"), 2),
                          ("feed_load", "UPS B L1", 1),
                          ("redundancy", "UPS A+UPS B L1", 2)])
        for version in templates.FILES:
            t = templates.load(version)["zabbix_export"]["templates"][0]
            values, rows = alarm_values(t, *self.outputs())
            raised = {k: v for k, v in values.items() if v != "0"}
            self.assertEqual(raised, {
                "powermeter.alarm.circuit_load[1.a]": "2",
                'powermeter.alarm.feed_load["UPS B",L1]': "1",
                'powermeter.alarm.redundancy["UPS A",L1]': "2",
                'powermeter.alarm.redundancy["UPS B",L1]': "2",
                "powermeter.alarms.worst": "2"}, version)
            firing = []
            for key, rws in rows.items():
                firing += triggers_firing(rule_of(t, key), rws, values)
            self.assertEqual(sorted(firing), sorted([
                "Circuit 1.a (%s): overloaded (powermeterd: critical)" % input_name(1, "a"),
                "Feed UPS B L1: load near its capacity (powermeterd: warning)",
                "Feed UPS A L1: redundancy with UPS B lost (powermeterd: critical)",
                "Feed UPS B L1: redundancy with UPS A lost (powermeterd: critical)"]))

        self.sim.set(0, 1, "a", Sim.default_raw(1, 0))
        self.sim.set(0, 2, "a", FEED_RAWS[(2, "a")])
        self.wait_severity("circuits", {"key": "1.a"}, "circuit_load", 0)
        self.wait_severity("feed_phases", {"feed": "UPS A", "phase": "L1"}, "redundancy", 0)
        st = self.wait_severity("feed_phases", {"feed": "UPS B", "phase": "L1"},
                                "feed_load", 0)
        self.assertEqual(st["alarms"]["active"], [])
        t = templates.load("7.0")["zabbix_export"]["templates"][0]
        values, _ = alarm_values(t, *self.outputs())
        self.assertEqual({k: v for k, v in values.items() if v != "0"}, {})

        # a stuck daemon: every alarm item discarded, not cleared
        self.daemon.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: self.daemon.running() and
                        self.daemon.proc.send_signal(signal.SIGCONT))
        time.sleep(3 * INTERVAL + 0.3)
        values, _ = alarm_values(t, *self.outputs())
        self.assertEqual({k: v for k, v in values.items() if v is not None}, {})
        self.daemon.proc.send_signal(signal.SIGCONT)

    def test_module_offline_item(self):
        """A module that stops answering: its module_offline item becomes
        2 once the daemon has raised it, its feeds' phases lack readings."""
        self.start_feeds()
        self.sim.fault(0, 2, "noanswer")
        st = self.wait_severity("devices", {"device_id": 2}, "module_offline", 2)
        self.assertEqual([d["severity"]["module_offline"] for d in st["devices"]], [0, 2])
        phases = {(r["feed"], r["phase"]): r for r in st["feed_phases"]}
        self.assertEqual(phases[("UPS B", "L1")]["missing"], 1)
        self.assertEqual(phases[("UPS A", "L1")]["missing"], 0)
        feeds = {r["feed"]: r for r in st["feeds"]}
        self.assertEqual((feeds["UPS B"]["complete"], feeds["UPS B"]["missing"]), (0, 2))
        t = templates.load("6.0")["zabbix_export"]["templates"][0]
        values, rows = alarm_values(t, *self.outputs())
        self.assertEqual(values["powermeter.alarm.module_offline[2]"], "2")
        self.assertEqual(values["powermeter.alarm.module_offline[1]"], "0")
        firing = triggers_firing(rule_of(t, "powermeter.modules"),
                                 rows["powermeter.modules"], values)
        self.assertEqual(firing, ["Module 2 on %s address 2: offline alarm (powermeterd: "
                                  "critical)" % self.sim.path()])


AGENT_CONF = """# zabbix_agent2 for the test: no server, everything in a tmpdir
LogType=file
LogFile=%(d)s/agent.log
PidFile=%(d)s/agent.pid
ControlSocket=%(d)s/agent.sock
Server=127.0.0.1
Hostname=powermeter-test
Timeout=10
Include=%(d)s/userparameter_powermeter.conf
"""


class Agent(ZabbixBase):
    """zabbix_agent2 -t KEY with the UserParameter file meson generates."""

    def setUp(self):
        self.agent = common.require_tool("zabbix_agent2")

    def agent_setup(self):
        d = common.tmpdir(self, "pm-agent-")
        src = os.path.join(common.BUILD, "config", "userparameter_powermeter.conf")
        with open(src) as f:
            text = f.read()
        # the installed binary becomes the one just built, with the test config
        rx = re.compile(r"(/\S+)/powermeter (json|zabbix \w+)")
        found = rx.findall(text)
        self.assertEqual([c for _, c in found],
                         ["json", "zabbix discovery", "zabbix feeds", "zabbix status",
                          "zabbix circuits"])
        for bindir, _ in found:
            self.assertTrue(bindir.endswith("/bin"), bindir)
        text = rx.sub(lambda m: "%s %s -c %s" % (common.POWERMETER, m.group(2), self.cfg), text)
        with open(os.path.join(d, "userparameter_powermeter.conf"), "w") as f:
            f.write(text)
        conf = os.path.join(d, "zabbix_agent2.conf")
        with open(conf, "w") as f:
            f.write(AGENT_CONF % {"d": d})
        return conf

    def agent_get(self, conf, key):
        """The value zabbix_agent2 -t gives: 'key   [s|value]'."""
        p = common.run([self.agent, "-c", conf, "-t", key], timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = re.match(r"(\S+)\s+\[([a-z])\|(.*)\]\s*\Z", p.stdout, re.S)
        self.assertIsNotNone(m, "unexpected agent output: %r %r" % (p.stdout, p.stderr))
        self.assertEqual(m.group(1), key)
        self.assertEqual(m.group(2), "s", "agent says the item failed: %r" % p.stdout)
        return m.group(3)

    def test_agent_values_while_daemon_runs(self):
        self.start()
        conf = self.agent_setup()
        value = self.agent_get(conf, "powermeter.json")
        got = json.loads(value)
        want = expected_array(self.sim)
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(g, w)
            self.assertIsInstance(g["current"], float)
        self.assertEqual(value.rstrip("\n"), seed_text(want).rstrip("\n"))
        self.assert_only_daemon_asked()

        disc = json.loads(self.agent_get(conf, "powermeter.discovery"))
        self.assertEqual([(r["{#DEVICE_ID}"], r["{#INPUT}"]) for r in disc],
                         [(v["device_id"], v["input"]) for v in want])
        status_text = self.agent_get(conf, "powermeter.status")
        status = json.loads(status_text)
        self.assertEqual(status["snapshot"]["fresh"], 1)
        self.assertEqual(status["snapshot"]["pid"], self.daemon.pid)
        self.assertEqual([d["up"] for d in status["devices"]], [1, 1])

        # what the template's items make of these values
        for version in templates.FILES:
            t = templates.load(version)["zabbix_export"]["templates"][0]
            rule = [r for r in t["discovery_rules"] if r["key"] == "powermeter.inputs"][0]
            proto = rule["item_prototypes"][0]
            for row, w in zip(disc, want):
                path = templates.substitute(proto["preprocessing"][0]["parameters"][0], row)
                self.assertEqual(float(templates.jsonpath(path, value)), w["current"])
            fresh = [i for i in t["items"] if i["key"] == "powermeter.snapshot.fresh"][0]
            self.assertEqual(templates.jsonpath(fresh["preprocessing"][0]["parameters"][0],
                                                status_text), "1")

    def test_agent_circuits(self):
        """powermeter.circuits through the agent: every circuit's phase, tags
        and estimates; the template's power and energy prototypes with the
        LLD rows of powermeter.discovery ({#PHASE}, {#TAG.*}) pick them."""
        self.start(power=True)
        conf = self.agent_setup()

        def counted():
            doc = json.loads(self.agent_get(conf, "powermeter.circuits"))
            return doc if all(c["energy"] for c in doc["circuits"]) else None
        doc = common.wait_for(counted, 30, what="every circuit's energy through the agent")
        check_circuits(self, self.sim, doc)
        value = json.dumps(doc)
        disc = json.loads(self.agent_get(conf, "powermeter.discovery"))
        self.assertEqual([r["{#KEY}"] for r in disc], [c["key"] for c in doc["circuits"]])
        for row, c in zip(disc, doc["circuits"]):
            self.assertEqual(row["{#PHASE}"], c["phase"] or "")
            self.assertEqual({k[6:-1]: v for k, v in row.items() if k.startswith("{#TAG.")},
                             {k.upper(): v for k, v in c["tags"].items()})
        for version in templates.FILES:
            t = templates.load(version)["zabbix_export"]["templates"][0]
            rule = [r for r in t["discovery_rules"] if r["key"] == "powermeter.inputs"][0]
            protos = {p["key"].split("[")[0]: p for p in rule["item_prototypes"]}
            for row, c in zip(disc, doc["circuits"]):
                for what in ("power", "energy"):
                    p = protos["powermeter." + what]
                    steps = [dict(st, parameters=[templates.substitute(x, row)
                                                  for x in st["parameters"]])
                             for st in p["preprocessing"]]
                    self.assertEqual(float(templates.preprocess(steps, value)), c[what])
        self.assert_only_daemon_asked()

    def test_agent_value_stays_json_when_a_module_fails(self):
        """zabbix_agent2 appends a command's stderr to the value: json's
        warnings must not reach it."""
        self.start()
        self.sim.fault(0, 1, "noanswer")
        common.wait_for(lambda: self.status()["devices"][0]["up"] == 0, 10,
                        what="module 1 down in the snapshot")
        conf = self.agent_setup()
        value = self.agent_get(conf, "powermeter.json")
        self.assertEqual(json.loads(value),
                         [v for v in expected_array(self.sim) if v["device_id"] == 2])
        status = json.loads(self.agent_get(conf, "powermeter.status"))
        self.assertEqual([d["up"] for d in status["devices"]], [0, 1])
        circuits = json.loads(self.agent_get(conf, "powermeter.circuits"))["circuits"]
        self.assertEqual([c["current"] is None for c in circuits],
                         [v["device_id"] == 1 for v in expected_array(self.sim)])

    def test_agent_feeds_and_alarms(self):
        """powermeter.feeds and powermeter.status through the agent: the
        feed phases discovered, and the template's alarm item of a circuit
        following the daemon as it raises and clears its alarm."""
        self.start_feeds()
        conf = self.agent_setup()
        self.assertEqual(json.loads(self.agent_get(conf, "powermeter.feeds")), FEED_ROWS)
        t = templates.load("7.0")["zabbix_export"]["templates"][0]
        proto = [p for p in rule_of(t, "powermeter.inputs")["item_prototypes"]
                 if p["key"] == "powermeter.alarm.circuit_load[{#KEY}]"][0]
        fl = [p for p in rule_of(t, "powermeter.feed.phases")["item_prototypes"]
              if p["key"].startswith("powermeter.feed.load[")][0]
        row = {"{#KEY}": "1.a"}

        def severity():
            return item_value(proto, row, self.agent_get(conf, "powermeter.status"))
        self.assertEqual(severity(), "0")
        load = item_value(fl, FEED_ROWS[0], self.agent_get(conf, "powermeter.status"))
        self.assertAlmostEqual(float(load), feed_amps(FEED_RAWS)[("UPS A", "L1")] / 32 * 100,
                               places=6)
        self.sim.set(0, 1, "a", 1700)
        common.wait_for(lambda: severity() == "2", 30, what="circuit_load 2 via the agent")
        self.sim.set(0, 1, "a", 1000)
        common.wait_for(lambda: severity() == "0", 30, what="circuit_load 0 via the agent")
        self.assert_only_daemon_asked()


if __name__ == "__main__":
    common.main()
