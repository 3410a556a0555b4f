#!/usr/bin/env python3
"""Feeds and alarms with the real daemon, hdhk-sim (whose currents the tests
change at run time) and a real InfluxDB 1.6: sums, load, imbalance and the
neutral estimate per feed against hand-computed values; a 2N pair's
redundancy; an overload raised only after its hold time and lowered only
past its clear margin, the alarm command run once per change with the right
environment; a hanging command that does not delay polling; load lost and a
module offline; alarm state across a reload and a restart."""
import json
import math
import os
import signal
import socket
import stat
import time
import unittest

import common
import daemonlib
from servers import Influx1
from sim import Sim

INTERVAL = 0.25
RATIO = 0.01

# Writes one JSON line per run: the POWERMETER_* environment, argv and time.
RECORDER = """#!/usr/bin/python3
import json, os, sys, time
rec = {k: v for k, v in os.environ.items() if k.startswith("POWERMETER_")}
rec["argv"] = sys.argv[1:]
rec["t"] = time.time()
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(rec) + "\\n")
"""


def recorder(testcase):
    """(command, path of the file it appends to)."""
    d = common.tmpdir(testcase, "pm-alarmcmd-")
    script = os.path.join(d, "record")
    with open(script, "w") as f:
        f.write(RECORDER)
    os.chmod(script, stat.S_IRWXU)
    out = os.path.join(d, "runs.jsonl")
    return [script, out, "extra arg"], out


def runs(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except OSError:
        return []


def feed_config(testcase, sim, feeds, circuits, alarms=None, influx=None,
                inputs="abcd"):
    """A config of sim's modules (device id = address) whose inputs get the
    keys in circuits[(address, letter)] (feed, phase, breaker, ...)."""
    extra = {"feeds": feeds, "alarms": alarms or {}}
    path = daemonlib.daemon_config(testcase, sim, interval=INTERVAL, inputs=inputs,
                                   influx=influx, extra=extra)

    def change(cfg):
        for dev in cfg["devices"]:
            for inp in dev["inputs"]:
                inp.update(circuits.get((dev["address"], inp["input"]), {}))
    daemonlib.rewrite_config(path, change)
    return path


def snapshot(path):
    with open(path) as f:
        return json.load(f)


def snapshot_path(config):
    with open(config) as f:
        return json.load(f)["snapshot"]


class Feeds(unittest.TestCase):
    def test_sums_load_imbalance_neutral_and_redundancy(self):
        """UPS A: L1 = 10 A + 5 A, L2 = 12 A, L3 = 8 A against 32 A; UPS B
        (25 A) carries 20 A on L1: the pair carries 35 A of 25 A there."""
        db = Influx1(self)
        sim = Sim.single(self, n_modules=2)
        for addr, ch, raw in ((1, "a", 1000), (1, "b", 1200), (1, "c", 800), (1, "d", 500),
                              (2, "a", 2000), (2, "b", 0), (2, "c", 0)):
            sim.set(0, addr, ch, raw)
        feeds = [{"name": "UPS A", "capacity": 32, "redundant_with": "UPS B"},
                 {"name": "UPS B", "capacity": 25, "redundant_with": "UPS A"}]
        circuits = {(1, "a"): {"feed": "UPS A", "phase": "L1"},
                    (1, "b"): {"feed": "UPS A", "phase": "L2"},
                    (1, "c"): {"feed": "UPS A", "phase": "L3"},
                    (1, "d"): {"feed": "UPS A", "phase": "L1"},
                    (2, "a"): {"feed": "UPS B", "phase": "L1"},
                    (2, "b"): {"feed": "UPS B", "phase": "L2"},
                    (2, "c"): {"feed": "UPS B", "phase": "L3"}}
        cfg = feed_config(self, sim, feeds, circuits,
                          influx={"url": db.url, "database": "powermeter"})
        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: db.count("powermeter_feed", "missing") >= 40, 20,
                        what="feed points in InfluxDB")
        self.assertEqual(d.stop(), 0, d.stderr())
        doc = db.query('SELECT last(current), last(power), last(load), last(redundant_load), '
                       'last(missing) FROM powermeter_feed WHERE phase =~ /./ '
                       'GROUP BY feed, phase')
        got = {(s["tags"]["feed"], s["tags"]["phase"]): s["values"][0][1:]
               for s in doc["results"][0]["series"]}
        # (feed, phase): current, power at 230 V, load %, redundant load %
        want = {("UPS A", "L1"): (15.0, 3450.0, 15 / 32 * 100, 35 / 25 * 100),
                ("UPS A", "L2"): (12.0, 2760.0, 12 / 32 * 100, 12 / 25 * 100),
                ("UPS A", "L3"): (8.0, 1840.0, 8 / 32 * 100, 8 / 25 * 100),
                ("UPS B", "L1"): (20.0, 4600.0, 80.0, 35 / 25 * 100),
                ("UPS B", "L2"): (0.0, 0.0, 0.0, 12 / 25 * 100),
                ("UPS B", "L3"): (0.0, 0.0, 0.0, 8 / 25 * 100)}
        self.assertEqual(sorted(got), sorted(want))
        for key, (cur, power, load, red) in want.items():
            c, p, l, r, missing = got[key]
            self.assertAlmostEqual(c, cur, places=9, msg=key)
            self.assertAlmostEqual(p, power, places=6, msg=key)
            self.assertAlmostEqual(l, load, places=9, msg=key)
            self.assertAlmostEqual(r, red, places=9, msg=key)
            self.assertEqual(missing, 0, key)
        doc = db.query('SELECT last(current), last(imbalance), last(neutral), '
                       'last(redundant_load) FROM powermeter_feed WHERE feed = \'UPS A\' '
                       'AND phase !~ /./')
        cur, imb, neutral, red = doc["results"][0]["series"][0]["values"][0][1:]
        self.assertAlmostEqual(cur, 35.0, places=9)
        # mean 35/3; the largest deviation is L3's 35/3 - 8 = 11/3 (L1's
        # is 10/3): 11/35 (NEMA)
        self.assertAlmostEqual(imb, 11 / 35 * 100, places=9)
        # phasors 120 degrees apart: sqrt(a^2+b^2+c^2-ab-bc-ca)
        self.assertAlmostEqual(neutral, math.sqrt(225 + 144 + 64 - 180 - 96 - 120), places=9)
        self.assertAlmostEqual(red, 140.0, places=9)
        # the circuits carry their feed as a tag
        doc = db.query("SHOW TAG VALUES FROM powermeter WITH KEY = \"feed\"")
        self.assertEqual(sorted(v[1] for v in doc["results"][0]["series"][0]["values"]),
                         ["UPS A", "UPS B"])

    def test_redundancy_lost_and_a_module_down(self):
        """A + B above the smaller capacity raises redundancy (critical
        above 100 %); with module 2 down the sums are a lower bound: no
        current is written for its phases, 'missing' says how many."""
        sim = Sim.single(self, n_modules=2)
        sim.set(0, 1, "a", 1000)
        sim.set(0, 2, "a", 1000)
        feeds = [{"name": "A", "capacity": 16, "phases": ["L1"], "redundant_with": "B"},
                 {"name": "B", "capacity": 16, "phases": ["L1"], "redundant_with": "A"}]
        circuits = {(1, "a"): {"feed": "A"}, (2, "a"): {"feed": "B"}}
        cmd, out = recorder(self)
        cfg = feed_config(self, sim, feeds, circuits, inputs="a", alarms={
            "redundancy": {"hold": 0.5}, "command": cmd,
            "load_lost": False, "module_offline": {"hold": 60}})
        d = daemonlib.Daemon(self, cfg, stdout=True).start()
        # 10 A + 10 A of 16 A: 125 %
        common.wait_for(lambda: runs(out), 10, what="the redundancy alarm")
        (r,) = runs(out)
        self.assertEqual(r["POWERMETER_ALARM"], "redundancy")
        self.assertEqual(r["POWERMETER_SUBJECT"], "A+B L1")
        self.assertEqual(r["POWERMETER_SEVERITY"], "critical")
        self.assertAlmostEqual(float(r["POWERMETER_VALUE"]), 125.0)
        self.assertIn("losing either would overload the other", r["POWERMETER_MESSAGE"])
        # module 2 stops answering: B's sums are lower bounds
        sim.fault(0, 2, "noanswer")
        time.sleep(6 * INTERVAL + 1)
        snap = snapshot(snapshot_path(cfg))
        b = [f for f in snap["feeds"] if f["name"] == "B"][0]
        self.assertFalse(b["complete"])
        self.assertEqual(b["missing"], 1)
        # the alarm is not cleared by a sum that misses a module
        self.assertEqual(len(runs(out)), 1, runs(out))
        self.assertEqual(d.stop(), 0, d.stderr())
        lines = [l for l in d.stdout().splitlines()
                 if l.startswith("powermeter_feed,feed=B,phase=L1 ")]
        self.assertTrue(any("current=" in l for l in lines))
        last = lines[-1].split(" ")[1]
        self.assertNotIn("current=", last)
        self.assertIn("missing=1i", last)
        self.assertIn("complete=false", last)
        # A is whole, but what it would carry without B is unknown now
        a_lines = [l for l in d.stdout().splitlines()
                   if l.startswith("powermeter_feed,feed=A,phase=L1 ")]
        self.assertIn("redundant_load=125", a_lines[0])
        self.assertIn("current=10", a_lines[-1])
        self.assertNotIn("redundant_load", a_lines[-1])


class JournalDaemon(daemonlib.Daemon):
    """powermeterd in a mount namespace whose /run/systemd/journal/socket
    is the test's datagram socket: what sd_journal_send() sends is what
    journald would get."""

    def __init__(self, testcase, config, sock_path):
        super().__init__(testcase, config, env={"JOURNAL_STREAM": "8:12345"})
        self.sock_path = sock_path

    def argv(self):
        script = ('mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
                  'ln -s "$0" /run/systemd/journal/socket && exec "$@"')
        return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script,
                self.sock_path] + super().argv()


def journal_entries(sock):
    """The datagrams received so far, as dicts of their fields."""
    out = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return out
        out.append(dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l))


class Alarms(unittest.TestCase):
    def overload_setup(self, hold=2.0, **alarms):
        self.sim = Sim.single(self)
        self.sim.set(0, 1, "a", 100)  # 1 A of a 10 A breaker
        self.cmd, self.out = recorder(self)
        rules = {"circuit_load": {"warning": 80, "critical": 100, "hold": hold, "clear": 5},
                 "command": self.cmd}
        rules.update(alarms)
        self.cfg = feed_config(self, self.sim, [], {(1, "a"): {"breaker": 10}},
                               inputs="a", alarms=rules)
        self.name = daemonlib.input_name(1, "a")

    def test_overload_hold_margin_and_command(self):
        db = Influx1(self)
        self.overload_setup()
        daemonlib.rewrite_config(self.cfg, lambda c: c.update(
            influx={"url": db.url, "database": "powermeter"}))
        d = daemonlib.Daemon(self, self.cfg).start()
        time.sleep(1)
        t0 = time.time()
        self.sim.set(0, 1, "a", 1100)  # 110 %
        time.sleep(1.5)
        self.assertEqual(runs(self.out), [], "raised before its hold time")
        common.wait_for(lambda: runs(self.out), 5, what="the overload alarm")
        r = runs(self.out)[0]
        # the hold (2 s) counts from the first sample over the threshold
        self.assertGreaterEqual(r["t"] - t0, 2.0)
        self.assertLess(r["t"] - t0, 2.0 + 2 * INTERVAL + 1.0)
        self.assertEqual(r["POWERMETER_ALARM"], "circuit_load")
        self.assertEqual(r["POWERMETER_SUBJECT"], self.name)
        self.assertEqual(r["POWERMETER_SEVERITY"], "critical")
        self.assertEqual(r["POWERMETER_STATE"], "raised")
        self.assertAlmostEqual(float(r["POWERMETER_VALUE"]), 110.0)
        self.assertEqual(float(r["POWERMETER_THRESHOLD"]), 100.0)
        self.assertIn("carries 11.0 A, 110 % of its 10 A breaker", r["POWERMETER_MESSAGE"])
        self.assertEqual(r["argv"], self.cmd[1:])
        # 96 % is inside the clear margin of 5 points: still critical
        self.sim.set(0, 1, "a", 960)
        time.sleep(1.5)
        self.assertEqual(len(runs(self.out)), 1, runs(self.out))
        # 94 %: lowered to warning at once
        self.sim.set(0, 1, "a", 940)
        common.wait_for(lambda: len(runs(self.out)) >= 2, 3, what="the lowering")
        r = runs(self.out)[1]
        self.assertEqual((r["POWERMETER_STATE"], r["POWERMETER_SEVERITY"]), ("raised", "warning"))
        # 76 % is inside the margin of warning: nothing
        self.sim.set(0, 1, "a", 760)
        time.sleep(1.5)
        self.assertEqual(len(runs(self.out)), 2, runs(self.out))
        self.sim.set(0, 1, "a", 500)
        common.wait_for(lambda: len(runs(self.out)) >= 3, 3, what="the clear")
        r = runs(self.out)[2]
        self.assertEqual((r["POWERMETER_STATE"], r["POWERMETER_SEVERITY"]), ("cleared", "warning"))
        time.sleep(1)
        self.assertEqual(len(runs(self.out)), 3, runs(self.out))
        self.assertEqual(d.stop(), 0, d.stderr())
        # logged once per change, at the right priority words
        err = d.stderr()
        self.assertEqual(err.count("alarm raised critical: circuit " + self.name), 1, err)
        self.assertEqual(err.count("alarm raised warning: circuit " + self.name), 1, err)
        self.assertEqual(err.count("alarm cleared warning: circuit " + self.name), 1, err)
        # one powermeter_alarm point per change
        pts = db.points("powermeter_alarm")
        self.assertEqual([(p["severity"], p["active"]) for p in pts],
                         [("critical", True), ("warning", True), ("warning", False)])
        self.assertEqual({p["alarm"] for p in pts}, {"circuit_load"})
        self.assertEqual({p["subject"] for p in pts}, {self.name})
        self.assertAlmostEqual(pts[0]["value"], 110.0)
        self.assertEqual(pts[0]["threshold"], 100.0)

    def test_journal_fields(self):
        """Every change reaches the journal once, with a MESSAGE_ID per rule
        and the alarm in fields, at crit for a critical raise and notice
        for a clear."""
        self.overload_setup(hold=0)
        d = common.tmpdir(self, "pm-journal-")
        path = os.path.join(d, "socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.setblocking(False)
        daemon = JournalDaemon(self, self.cfg, path).start()
        self.sim.set(0, 1, "a", 1100)
        common.wait_for(lambda: runs(self.out), 5, what="the overload alarm")
        self.sim.set(0, 1, "a", 100)
        common.wait_for(lambda: len(runs(self.out)) >= 2, 5, what="the clear")
        time.sleep(0.5)
        self.assertEqual(daemon.stop(), 0, daemon.stderr())
        alarms = [e for e in journal_entries(sock) if "POWERMETER_ALARM" in e]
        self.assertEqual(len(alarms), 2, alarms)
        raised, cleared = alarms
        for e in alarms:
            self.assertEqual(e["MESSAGE_ID"], "4b1d3a0f6c2e4f0e9a51c2d7e8f90a11")
            self.assertEqual(e["POWERMETER_ALARM"], "circuit_load")
            self.assertEqual(e["POWERMETER_SUBJECT"], self.name)
            self.assertEqual(e["SYSLOG_IDENTIFIER"], "powermeterd")
        self.assertEqual((raised["PRIORITY"], raised["POWERMETER_STATE"],
                          raised["POWERMETER_SEVERITY"]), ("2", "raised", "critical"))
        self.assertEqual(float(raised["POWERMETER_VALUE"]), 110)
        self.assertEqual(float(raised["POWERMETER_THRESHOLD"]), 100)
        self.assertIn("110 % of its 10 A breaker", raised["MESSAGE"])
        self.assertEqual((cleared["PRIORITY"], cleared["POWERMETER_STATE"]),
                         ("5", "cleared"))
        # and not a second time on stderr
        self.assertNotIn("alarm raised critical", daemon.stderr())

    def test_hanging_command_does_not_delay_polling(self):
        """A command that never ends (killed after its timeout) while the
        alarm flaps every tick: the polls keep their interval."""
        self.overload_setup(hold=0, command=["/bin/sleep", "60"],
                            command_timeout=1, command_max=1)
        d = daemonlib.Daemon(self, self.cfg).start()
        t_start = daemonlib.time_ms()
        for i in range(16):
            self.sim.set(0, 1, "a", 1100 if i % 2 == 0 else 100)
            time.sleep(INTERVAL)
        t_end = daemonlib.time_ms()
        d.wait_stderr(r"alarm command /bin/sleep .* killed", timeout=10)
        self.assertEqual(d.stop(), 0, d.stderr())
        times = sorted(t for _, _, t, _ in daemonlib.ok_reads(self.sim, t_start, t_end))
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreater(len(times), 12)
        self.assertLess(max(gaps), INTERVAL * 1000 * 1.5, gaps)
        # what could not wait in the queue was dropped and said so, or
        # waited: never more than command_max ran (one sleep at a time)
        self.assertNotIn("Segmentation", d.stderr())

    def test_state_across_reload_and_restart(self):
        self.overload_setup(hold=0.5)
        d = daemonlib.Daemon(self, self.cfg).start()
        self.sim.set(0, 1, "a", 1100)
        common.wait_for(lambda: runs(self.out), 5, what="the overload alarm")
        # a reload keeps it raised: not raised again
        d.hup()
        d.wait_stderr("configuration reloaded")
        time.sleep(1.5)
        self.assertEqual(len(runs(self.out)), 1, runs(self.out))
        self.assertEqual(d.stop(), 0, d.stderr())
        # a restart keeps it too
        d2 = daemonlib.Daemon(self, self.cfg).start()
        time.sleep(2)
        self.assertEqual(len(runs(self.out)), 1, runs(self.out))
        self.assertEqual(d2.stop(), 0, d2.stderr())
        # cleared while the daemon was down: cleared once at the next start
        self.sim.set(0, 1, "a", 100)
        d3 = daemonlib.Daemon(self, self.cfg).start()
        common.wait_for(lambda: len(runs(self.out)) >= 2, 5, what="the clear")
        time.sleep(1.5)
        self.assertEqual(d3.stop(), 0, d3.stderr())
        r = runs(self.out)
        self.assertEqual(len(r), 2, r)
        self.assertEqual(r[1]["POWERMETER_STATE"], "cleared")
        # and a start after that raises nothing, clears nothing
        d4 = daemonlib.Daemon(self, self.cfg).start()
        time.sleep(1.5)
        self.assertEqual(d4.stop(), 0, d4.stderr())
        self.assertEqual(len(runs(self.out)), 2)

    def test_rule_removed_by_reload_is_cleared_once(self):
        self.overload_setup(hold=0)
        d = daemonlib.Daemon(self, self.cfg).start()
        self.sim.set(0, 1, "a", 1100)
        common.wait_for(lambda: runs(self.out), 5, what="the overload alarm")
        daemonlib.rewrite_config(self.cfg, lambda c: c["alarms"].update(circuit_load=False))
        d.hup()
        common.wait_for(lambda: len(runs(self.out)) >= 2, 5, what="the clear")
        time.sleep(1)
        self.assertEqual(d.stop(), 0, d.stderr())
        r = runs(self.out)
        self.assertEqual(len(r), 2, r)
        self.assertEqual(r[1]["POWERMETER_STATE"], "cleared")
        self.assertIn("no longer configured", r[1]["POWERMETER_MESSAGE"])

    def test_damaged_state_file(self):
        """A damaged alarms.state is kept aside, said so, and the alarms
        whose conditions hold are raised again."""
        self.overload_setup(hold=0)
        with open(self.cfg) as f:
            state = json.load(f)["state_directory"]
        os.makedirs(state, exist_ok=True)
        with open(os.path.join(state, "alarms.state"), "w") as f:
            f.write('{"format": "powermeter-alarms", "version": 1, "alarms": [{"alar')
        self.sim.set(0, 1, "a", 1100)
        d = daemonlib.Daemon(self, self.cfg).start()
        common.wait_for(lambda: runs(self.out), 5, what="the overload alarm")
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertIn("is damaged; kept as", d.stderr())
        self.assertTrue([n for n in os.listdir(state) if n.startswith("alarms.state.damaged-")])

    def test_load_lost_and_module_offline(self):
        sim = Sim.single(self, n_modules=2)
        sim.set(0, 1, "a", 500)
        cmd, out = recorder(self)
        feeds = [{"name": "F", "capacity": 32, "phases": ["L1"]}]
        cfg = feed_config(self, sim, feeds, {(1, "a"): {"feed": "F"}}, inputs="a",
                          alarms={"load_lost": {"below": 0.2, "hold": 1},
                                  "module_offline": {"hold": 1},
                                  "command": cmd})
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(1)
        # device 2's input a (20 A default) is in no feed: not watched;
        # module 1's circuit drops to 0 (a tripped breaker)
        sim.set(0, 1, "a", 0)
        common.wait_for(lambda: runs(out), 5, what="load_lost")
        r = runs(out)[0]
        self.assertEqual((r["POWERMETER_ALARM"], r["POWERMETER_SEVERITY"]),
                         ("load_lost", "critical"))
        self.assertIn("tripped breaker", r["POWERMETER_MESSAGE"])
        sim.set(0, 1, "a", 500)
        common.wait_for(lambda: len(runs(out)) >= 2, 5, what="load_lost cleared")
        self.assertEqual(runs(out)[1]["POWERMETER_STATE"], "cleared")
        # module 2 stops answering
        sim.fault(0, 2, "noanswer")
        common.wait_for(lambda: len(runs(out)) >= 3, 10, what="module_offline")
        r = runs(out)[2]
        self.assertEqual((r["POWERMETER_ALARM"], r["POWERMETER_SUBJECT"]),
                         ("module_offline", "module 2"))
        self.assertIn("12 V supply", r["POWERMETER_MESSAGE"])
        sim.clear(0, 2)
        common.wait_for(lambda: len(runs(out)) >= 4, 10, what="module_offline cleared")
        self.assertEqual(runs(out)[3]["POWERMETER_STATE"], "cleared")
        self.assertEqual(d.stop(), 0, d.stderr())


if __name__ == "__main__":
    common.main()
