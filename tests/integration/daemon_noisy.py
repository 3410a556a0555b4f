#!/usr/bin/env python3
"""A noisy RS-485 line and a module that goes silent, under the real
powermeterd and hdhk-sim: bad answers are retried and counted, none becomes
a value; a silent module gets one attempt per tick and is down only after
"down_after" failed reads; the counters reach the snapshot, `powermeter
status` and the <measurement>_module points; the config bounds them."""
import json
import os
import re
import time
import unittest

import common
import daemonlib
from sim import Sim

CURRENT = re.compile(r"^powermeter,device_id=(\d+),input=([a-p]),.* current=([-0-9.e]+)[ ,]")
MODULE = re.compile(r"^powermeter_module,address=(\d+),device_id=(\d+),port=\S+ (\S+) (\d+)$")


def snapshot_states(cfg):
    """Each device's state in the daemon's snapshot ({} before the first)."""
    with open(cfg) as f:
        path = json.load(f)["snapshot"]
    try:
        with open(path) as f:
            return {d["id"]: d["state"] for d in json.load(f)["devices"]}
    except FileNotFoundError:
        return {}


def state_of(cfg, dev):
    return snapshot_states(cfg).get(dev, {"reads": 0, "consecutive_failures": 0, "up": False})


def status(cfg):
    return common.run([common.POWERMETER, "status", "-c", cfg])


def module_points(stdout):
    out = []
    for line in stdout.splitlines():
        m = MODULE.match(line)
        if m:
            fields = dict(kv.split("=") for kv in m.group(3).split(","))
            out.append((int(m.group(2)), fields, int(m.group(4))))
    return out


class Noisy(unittest.TestCase):
    def test_noisy_line_reads_complete_and_right(self):
        """30 % of module 1's answers spoiled at random: with 4 retries
        nearly every tick reads it, every value written is the
        simulator's, and the counters add up: each request is a read's
        first attempt or a retry, each retry follows a bad answer."""
        sim = Sim(self, [{"baud": 115200, "modules": [1, 2]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=0.2, timeout=0.05)
        daemonlib.rewrite_config(cfg, lambda c: c["devices"][0].update(retries=4))
        sim.fault(0, 1, "noisy", "0.3 7")
        d = daemonlib.Daemon(self, cfg, stdout=True).start()
        common.wait_for(lambda: state_of(cfg, 1)["reads"] >= 40, 30,
                        what="40 reads of module 1")
        p = status(cfg)
        self.assertEqual(d.stop(), 0, d.stderr())

        # every current written is the simulator's, bad frames or not
        want = {(dev, chr(97 + ch)): common.stored(Sim.default_raw(dev, ch) * daemonlib.RATIO)
                for dev in (1, 2) for ch in range(4)}
        seen = 0
        for line in d.stdout().splitlines():
            m = CURRENT.match(line)
            if m:
                key = (int(m.group(1)), m.group(2))
                self.assertEqual(float(m.group(3)), want[key], line)
                seen += 1
        self.assertGreaterEqual(seen, 40 * 8)

        # the last module points: the counters when the daemon stopped
        last = {dev: {k: v.rstrip("i") for k, v in f.items()}
                for dev, f, _ in module_points(d.stdout())}
        one = {k: int(v) if v.isdigit() else v == "true" for k, v in last[1].items()}
        two = {k: int(v) if v.isdigit() else v == "true" for k, v in last[2].items()}
        attempts = one["reads"] + one["failures"]
        self.assertGreaterEqual(one["reads"] / attempts, 0.9, one)
        self.assertGreater(one["retries"], 5, one)
        bad = one["timeouts"] + one["crc_errors"] + one["frame_errors"]
        self.assertGreater(one["crc_errors"] + one["frame_errors"], 0, one)
        self.assertEqual(one["requests"], attempts + one["retries"], one)
        # a retry after each bad answer, except the last of a failed read
        self.assertEqual(bad, one["retries"] + one["failures"], one)
        self.assertTrue(one["up"])
        # the other module on the line is read cleanly
        self.assertEqual((two["retries"], two["failures"]), (0, 0), two)
        self.assertEqual(two["requests"], two["reads"])
        # the simulator spoiled what the daemon counted as bad
        spoiled = [e for e in sim.log() if e["addr"] == 1 and e["result"] not in ("ok",)]
        self.assertEqual(len(spoiled), bad)

        # status shows the line's counters
        self.assertRegex(p.stdout, r"  module 1 \(.* address 1\): up\n    \d+ requests, "
                         r"[1-9]\d* retried \(\d+\.\d %\): \d+ timeouts, \d+ CRC errors, "
                         r"\d+ other bad frames; \d+ of \d+ reads failed\n")
        # and the module points carry them, never going down
        points = [f for dev, f, _ in module_points(d.stdout()) if dev == 1]
        self.assertGreaterEqual(len(points), 40)
        retried = [int(f["retries"].rstrip("i")) for f in points]
        self.assertEqual(retried, sorted(retried))
        self.assertEqual(retried[-1], one["retries"])
        self.assertTrue(all(f["up"] == "true" for f in points[-10:]))

    def test_silent_module_costs_one_timeout_per_tick(self):
        """Module 1 answers, then goes silent: its first failed read is
        retried (3 requests), the following ticks send it one request
        each; it is "up, last N reads failed" until down_after (3) reads
        have failed, then DOWN; module 2 keeps its cadence all along."""
        interval, timeout = 0.5, 0.1
        sim = Sim(self, [{"baud": 9600, "modules": [1, 2]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=interval, timeout=timeout)
        d = daemonlib.Daemon(self, cfg, stdout=True).start()
        common.wait_for(lambda: state_of(cfg, 1)["reads"] >= 2, 10, what="reads")
        sim.fault(0, 1, "noanswer")
        t_fault = daemonlib.time_ms()
        common.wait_for(lambda: state_of(cfg, 1)["consecutive_failures"] >= 1, 10,
                        what="a failed read")
        st = snapshot_states(cfg)[1]
        self.assertTrue(st["up"], st)
        self.assertEqual(st["retries"], 2, st)
        p = status(cfg)
        self.assertRegex(p.stdout, r"module 1 \(.*\): up, last 1 read failed: .*timeout")
        common.wait_for(lambda: not state_of(cfg, 1)["up"], 10, what="module 1 down")
        st = snapshot_states(cfg)[1]
        self.assertEqual(st["consecutive_failures"], 3, st)
        p = status(cfg)
        self.assertRegex(p.stdout, r"module 1 \(.*\): DOWN, 3 consecutive failures")
        time.sleep(4 * interval)
        self.assertEqual(d.stop(), 0, d.stderr())

        # per tick after the fault: 3 requests in the first, 1 in each later one
        per_tick = {}
        for e in sim.log():
            if e["addr"] == 1 and e["t_ms"] >= t_fault:
                per_tick.setdefault(int(e["t_ms"] // (interval * 1000)), []).append(e["result"])
        counts = [len(v) for _, v in sorted(per_tick.items())]
        self.assertEqual(counts[0], 3, per_tick)
        self.assertEqual(set(counts[1:]), {1}, per_tick)
        self.assertGreaterEqual(len(counts), 6)
        # module 2: one read per tick, none skipped, even in the retried tick
        reads = [t for b, a, t, _ in daemonlib.ok_reads(sim) if a == 2]
        gaps = [y - x for x, y in zip(reads, reads[1:])]
        self.assertTrue(all(abs(g - interval * 1000) < 80 + 3 * timeout * 1000 for g in gaps),
                        gaps)
        later = [g for x, g in zip(reads, gaps) if x > t_fault + 2 * interval * 1000]
        self.assertTrue(all(abs(g - interval * 1000) < 80 for g in later), later)
        self.assertNotIn("skipped", d.stderr())
        # the module points say when it went down, once
        ups = [f["up"] for dev, f, t in module_points(d.stdout()) if dev == 1 and t >= t_fault]
        self.assertEqual(ups[:3], ["true", "true", "false"], ups)
        self.assertEqual(set(ups[2:]), {"false"})


class Bounds(unittest.TestCase):
    def check_error(self, change, message):
        sim_path = os.path.join(common.tmpdir(self, "pm-noisy-"), "ttyUSB0")
        d = common.tmpdir(self, "pm-noisy-")
        cfg = {"devices": [{"id": 1, "port": sim_path, "inputs": [{"input": "a"}]}]}
        change(cfg["devices"][0])
        path = os.path.join(d, "powermeter.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = common.run([common.POWERMETER, "check", "-c", path])
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn(message, r.stderr)

    def test_retries_and_down_after_bounded(self):
        self.check_error(lambda d: d.update(retries=11), "devices[0].retries")
        self.check_error(lambda d: d.update(retries=-1), "devices[0].retries")
        self.check_error(lambda d: d.update(retries="2"), "devices[0].retries")
        self.check_error(lambda d: d.update(down_after=0), "devices[0].down_after")
        self.check_error(lambda d: d.update(down_after=1001), "devices[0].down_after")


if __name__ == "__main__":
    common.main()
