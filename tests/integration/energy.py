#!/usr/bin/env python3
"""Energy counters with the real daemon: against the exact integral of a load
profile of steps and ramps that hdhk-sim plays; never going down in InfluxDB
or the snapshot through SIGKILL and restarts; kept per circuit through a
reordered config and a removed input; a damaged or truncated state file; a
module that is down; and a seed config whose series keep their tags."""
import json
import os
import signal
import subprocess
import time
import unittest

import common
import daemonlib
from servers import Influx1
from sim import Sim, profile_integral

RATIO = 0.01
VOLTS = 230.0
def split_unescaped(s, sep):
    """Splits line protocol at 'sep' where it is not backslash-escaped;
    the pieces keep their escapes."""
    out, cur, i = [], "", 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            cur += s[i:i + 2]
            i += 2
            continue
        if s[i] == sep:
            out.append(cur)
            cur = ""
        else:
            cur += s[i]
        i += 1
    out.append(cur)
    return out


def parse_lines(text):
    """Line protocol of --stdout into [(tags dict, fields dict, ms)]."""
    out = []
    for line in text.splitlines():
        parts = split_unescaped(line, " ")
        if len(parts) != 3 or not parts[0].startswith("powermeter,"):
            continue
        tags = dict(split_unescaped(kv, "=") for kv in split_unescaped(parts[0], ",")[1:])
        fields = {k: float(v) for k, v in (kv.split("=", 1) for kv in parts[1].split(","))}
        out.append((tags, fields, int(parts[2])))
    return out


def energy_json(config):
    r = common.run([common.POWERMETER, "energy", "-c", config, "-f", "json"])
    if r.returncode != 0:
        raise AssertionError("powermeter energy: %s" % r.stderr)
    return {(c["device_id"], c["input"]): c for c in json.loads(r.stdout)["counters"]}


def config(testcase, sim, inputs="ab", interval=0.25, extra=None, **kw):
    cfg_extra = {"energy": {"persist_interval": 1}}
    cfg_extra.update(extra or {})
    return daemonlib.daemon_config(testcase, sim, interval=interval, inputs=inputs,
                                   extra=cfg_extra, **kw)


def snapshot_energy(path, dev_id, letter):
    try:
        with open(path) as f:
            snap = json.load(f)
    except (OSError, ValueError):
        return None
    for d in snap["devices"]:
        if d["id"] == dev_id:
            for i in d["inputs"]:
                if i["input"] == letter:
                    return i["energy"]
    return None


class Integration(unittest.TestCase):
    def test_counters_match_the_exact_integral(self):
        """Steps and ramps at 4 samples a second: the counter is the exact
        integral within what the trapezoid can miss at a step (half a step
        times one interval each)."""
        sim = Sim.single(self)
        # raw counts: ramp 0 -> 1000 in 3 s, hold, step to 2500, ramp down
        points = [[0, 0], [3, 1000], [5, 1000], [5, 2500], [8, 2500], [11, 500],
                  [13, 500], [13, 0], [15, 0]]
        start = sim.profile(0, 1, "a", points, start=time.time() + 1.0)
        cfg = config(self, sim)
        d = daemonlib.Daemon(self, cfg, stdout=True).start()
        common.wait_for(lambda: time.time() > start + 16, 30, what="the profile played")
        self.assertEqual(d.stop(), 0, d.stderr())
        samples = [(f, t) for tags, f, t in parse_lines(d.stdout()) if tags["input"] == "a"]
        self.assertGreater(len(samples), 50)
        t_first, t_last = samples[0][1] / 1000, samples[-1][1] / 1000
        exact_as = profile_integral(points, start, t_first, t_last) * RATIO
        exact_wh = exact_as * VOLTS / 3600
        c = energy_json(cfg)[(1, "a")]
        # two steps of 15 A and 5 A, each misestimated by at most half the
        # step over one interval; the rest is rounding and timing
        bound_as = (15 + 5) * 0.25 / 2 + 0.02 * (t_last - t_first)
        self.assertLess(abs(c["charge_ah"] * 3600 - exact_as), bound_as,
                        (c, exact_as))
        self.assertLess(abs(c["energy_wh"] - exact_wh), bound_as * VOLTS / 3600, (c, exact_wh))
        self.assertEqual(c["unmetered_s"], 0)
        # power in every line is current x 230 V
        for f, _ in samples:
            self.assertAlmostEqual(f["power"], f["current"] * VOLTS, places=6)
        # what the lines showed never went down and never passed the count
        shown = [f["energy"] for f, _ in samples]
        self.assertEqual(shown, sorted(shown))
        # (line protocol carries 15 significant digits: rounding may add
        # a unit in the last of them, and keeps the order)
        self.assertLessEqual(shown[-1], c["energy_wh"] * (1 + 1e-14))
        self.assertGreater(shown[-1], 0)

    def test_sigkill_and_restart_never_go_down(self):
        db = Influx1(self)
        sim = Sim.single(self)
        # a gap of 0.5 s or more is not bridged: each restart is unmetered
        cfg = config(self, sim, influx={"url": db.url, "database": db.database,
                                        "flush_interval": 0.2},
                     extra={"energy": {"persist_interval": 1, "max_gap": 0.5}})
        with open(cfg) as f:
            snap_path = json.load(f)["snapshot"]
        seen = []
        for _ in range(3):
            d = daemonlib.Daemon(self, cfg).start()
            t_end = time.time() + 3.5
            while time.time() < t_end:
                e = snapshot_energy(snap_path, 1, "a")
                if e is not None:
                    seen.append(e)
                time.sleep(0.1)
            d.send(signal.SIGKILL)
            d.wait_exit()
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(3)
        self.assertEqual(d.stop(), 0, d.stderr())
        # the snapshot, polled all along: never down
        self.assertGreater(len(seen), 20)
        self.assertEqual(seen, sorted(seen))
        self.assertGreater(seen[-1], 0)
        # InfluxDB, in time order, for each circuit
        rows = db.query('SELECT "energy", "charge" FROM "powermeter" GROUP BY "input"',
                        db=db.database)
        series = rows["results"][0]["series"]
        self.assertEqual(len(series), 2)
        for s in series:
            energy = [v[1] for v in s["values"]]
            charge = [v[2] for v in s["values"]]
            self.assertEqual(energy, sorted(energy), s["tags"])
            self.assertEqual(charge, sorted(charge), s["tags"])
            self.assertGreater(energy[-1], 0)
        # the time lost to the kills and restarts is counted as unmetered
        c = energy_json(cfg)[(1, "a")]
        self.assertGreater(c["unmetered_s"], 0)

    def test_counters_follow_circuits_not_positions(self):
        sim = Sim.single(self)
        sim.set(0, 1, "a", 2000)      # 20 A
        sim.set(0, 1, "b", 100)       # 1 A
        cfg = config(self, sim)
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(3)
        self.assertEqual(d.stop(), 0, d.stderr())
        before = energy_json(cfg)
        self.assertGreater(before[(1, "a")]["energy_wh"], 15 * before[(1, "b")]["energy_wh"])

        # b first, renamed, and a gone: a's counter stays, as an orphan
        def reorder(c):
            c["devices"][0]["inputs"] = [{"input": "b", "ratio": RATIO, "name": "Kettle"}]
        daemonlib.rewrite_config(cfg, reorder)
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(3)
        self.assertEqual(d.stop(), 0, d.stderr())
        after = energy_json(cfg)
        self.assertEqual(after[(1, "a")]["energy_wh"], before[(1, "a")]["energy_wh"])
        self.assertFalse(after[(1, "a")]["configured"])
        self.assertIsNone(after[(1, "a")]["name"])
        self.assertTrue(after[(1, "b")]["configured"])
        self.assertEqual(after[(1, "b")]["name"], "Kettle")
        grown = after[(1, "b")]["energy_wh"] - before[(1, "b")]["energy_wh"]
        self.assertGreater(grown, 0)
        self.assertLess(grown, 230 * 1.0 * 4 / 3600)   # 1 A, not 20 A
        r = common.run([common.POWERMETER, "energy", "-c", cfg])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^ +1  a +\(not in the config\)")
        self.assertIn("estimates", r.stdout)

        # a again: resumed where it stopped
        def readd(c):
            c["devices"][0]["inputs"].append({"input": "a", "ratio": RATIO, "name": "A"})
        daemonlib.rewrite_config(cfg, readd)
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(2)
        self.assertEqual(d.stop(), 0, d.stderr())
        again = energy_json(cfg)
        self.assertGreater(again[(1, "a")]["energy_wh"], after[(1, "a")]["energy_wh"])
        self.assertGreater(again[(1, "a")]["unmetered_s"], 2)

    def run_then_damage(self, damage):
        """Runs the daemon long enough for several saves, then lets
        damage(state_dir) spoil files; returns (config, snapshot path,
        the last energy the snapshot showed)."""
        sim = Sim.single(self)
        cfg = config(self, sim)
        with open(cfg) as f:
            c = json.load(f)
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(4)
        last = snapshot_energy(c["snapshot"], 1, "a")
        self.assertEqual(d.stop(), 0, d.stderr())
        damage(c["state_directory"])
        return cfg, c["snapshot"], last, sim

    def test_damaged_newest_state(self):
        def flip(state):
            path = os.path.join(state, "energy.state")
            with open(path, "r+b") as f:
                f.seek(130)
                b = f.read(1)
                f.seek(130)
                f.write(b"7" if b != b"7" else b"8")
        cfg, snap, last, _ = self.run_then_damage(flip)
        self.assertGreater(last, 0)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"energy\.state was damaged .*kept as .*energy\.state\.damaged-")
        time.sleep(1.5)
        now = snapshot_energy(snap, 1, "a")
        self.assertGreaterEqual(now, last)
        self.assertEqual(d.stop(), 0, d.stderr())
        state = os.path.dirname(energy_path(cfg))
        self.assertTrue([n for n in os.listdir(state) if n.startswith("energy.state.damaged-")])

    def test_truncated_newest_state(self):
        def cut(state):
            os.truncate(os.path.join(state, "energy.state"), 40)
        cfg, snap, last, _ = self.run_then_damage(cut)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"energy\.state was damaged")
        time.sleep(1.5)
        self.assertGreaterEqual(snapshot_energy(snap, 1, "a"), last)
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_both_saves_damaged_withholds_energy(self):
        def both(state):
            for name in ("energy.state", "energy.state.prev"):
                os.truncate(os.path.join(state, name), 10)
        cfg, snap, last, _ = self.run_then_damage(both)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"no usable save .*showing no energy")
        time.sleep(2.5)
        # counting goes on, but nothing below what was shown is shown
        self.assertIsNone(snapshot_energy(snap, 1, "a"))
        self.assertEqual(d.stop(), 0, d.stderr())
        state = os.path.dirname(energy_path(cfg))
        marker = os.path.join(state, "energy.state.withheld")
        self.assertTrue(os.path.exists(marker))
        # the operator accepts the restart from 0
        os.unlink(marker)
        d = daemonlib.Daemon(self, cfg).start()
        time.sleep(2.5)
        self.assertIsNotNone(snapshot_energy(snap, 1, "a"))
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_module_down_adds_nothing(self):
        sim = Sim.single(self)
        sim.set(0, 1, "a", 1000)
        cfg = config(self, sim, extra={"energy": {"persist_interval": 1, "max_gap": 1}})
        d = daemonlib.Daemon(self, cfg, stdout=True).start()
        time.sleep(2)
        sim.fault(0, 1, "noanswer")
        time.sleep(3)
        sim.clear()
        time.sleep(2)
        self.assertEqual(d.stop(), 0, d.stderr())
        times = [t for tags, f, t in parse_lines(d.stdout()) if tags["input"] == "a"]
        gaps = [(b - a) / 1000 for a, b in zip(times, times[1:]) if b - a > 1000]
        self.assertEqual(len(gaps), 1, times)
        c = energy_json(cfg)[(1, "a")]
        self.assertAlmostEqual(c["unmetered_s"], gaps[0], places=2)
        metered = (times[-1] - times[0]) / 1000 - gaps[0]
        self.assertAlmostEqual(c["energy_wh"], 10 * VOLTS * metered / 3600, places=3)

    def test_seed_config_keeps_its_series(self):
        """The seed's array form: the points carry exactly the seed's tags,
        with power, energy and charge beside current."""
        sim = Sim.single(self)
        d = common.tmpdir(self)
        seed = [{"id": 1, "port": sim.path(), "timeout": 0.3, "stopbits": 1, "bytesize": 8,
                 "parity": "N", "baudrate": "9600",
                 "inputs": [{"input": "a", "ratio": 0.01, "name": "Input a"}]}]
        path = os.path.join(d, "powermeter_config.json")
        with open(path, "w") as f:
            json.dump(seed, f)
        env = {"STATE_DIRECTORY": os.path.join(d, "state"),
               "RUNTIME_DIRECTORY": os.path.join(d, "run")}
        dm = daemonlib.Daemon(self, path, env=env, stdout=True).start()
        common.wait_for(lambda: len(parse_lines(dm.stdout())) >= 3, 20, what="points")
        self.assertEqual(dm.stop(), 0, dm.stderr())
        for tags, fields, _ in parse_lines(dm.stdout()):
            self.assertEqual(sorted(tags), ["device_id", "input", "name", "unique_id"])
            self.assertEqual(sorted(fields), ["charge", "current", "energy", "power"])
        # and the state went where systemd's StateDirectory= says
        self.assertTrue(os.path.exists(os.path.join(d, "state", "energy.state")))


def energy_path(cfg):
    with open(cfg) as f:
        return os.path.join(json.load(f)["state_directory"], "energy.state")


if __name__ == "__main__":
    common.main()
