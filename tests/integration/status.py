#!/usr/bin/env python3
"""powermeter status next to the real powermeterd and hdhk-sim, whose
currents the tests change at run time: the monitoring-plugin exit statuses
(3 without a daemon, 0, 1 once a circuit has stayed above 80 % of its
breaker for the hold time, 2 above 100 %, 0 again once it drops), the
first line with its perfdata, the detail lines (modules, feeds per phase,
"at least" while a module is down, active alarms), UNKNOWN for a stale
snapshot left by a killed daemon and for one of another configuration,
and never a request on the bus."""
import json
import os
import re
import signal
import time
import unittest

import common
from daemonlib import Daemon, daemon_config, input_name, rewrite_config, RATIO
from sim import Sim

INTERVAL = 0.3
HOLD = 2.0              # circuit_load's hold time: long enough to see it wait
CAPACITY = 63
WARN, CRIT = 90, 100    # feed_load's thresholds (not the defaults)
BREAKER = 16

# UPS A: modules 1 and 2, inputs a, b, c on L1, L2, L3; d of each on no feed
PHASES = {"a": "L1", "b": "L2", "c": "L3"}
CIRCUIT = input_name(1, "a")        # module 1 input a, with a breaker


def feed_config(testcase, sim, alarms=None):
    alarm_rules = {
        "circuit_load": {"warning": 80, "critical": 100, "hold": HOLD, "clear": 5},
        "feed_load": {"warning": WARN, "critical": CRIT, "hold": 0, "clear": 5},
        "imbalance": False,
        "module_offline": {"hold": 1},
    }
    alarm_rules.update(alarms or {})
    path = daemon_config(testcase, sim, interval=INTERVAL, extra={
        "feeds": [{"name": "UPS A", "capacity": CAPACITY}],
        "alarms": alarm_rules})

    def change(cfg):
        for dev in cfg["devices"]:
            for inp in dev["inputs"]:
                if inp["input"] in PHASES:
                    inp.update({"feed": "UPS A", "phase": PHASES[inp["input"]]})
                if (dev["id"], inp["input"]) == (1, "a"):
                    inp["breaker"] = BREAKER
    rewrite_config(path, change)
    return path


def amps(address, letter, raws=None):
    raw = (raws or {}).get((address, letter), Sim.default_raw(address, ord(letter) - 97))
    return raw * RATIO


def phase_load(phase, raws=None, modules=(1, 2)):
    """The feed's load on 'phase' in %, summed as the daemon sums it."""
    total = 0.0
    for address in modules:
        for letter, ph in PHASES.items():
            if ph == phase:
                total += amps(address, letter, raws)
    return total / CAPACITY * 100


def num(v, decimals=1):
    """As powermeter status writes a figure: rounded, trailing zeros
    dropped."""
    text = "%.*f" % (decimals, v)
    return text.rstrip("0").rstrip(".") if "." in text else text


def breaker_load(raw):
    return raw * RATIO / BREAKER * 100


def bus_requests(sim):
    return [e for e in sim.log() if e.get("fc") == 3]


PERF = re.compile(r"'UPS A (L[123]) load'=([0-9.]+|U)%?;([0-9.]*);([0-9.]*);0")


class Status(unittest.TestCase):
    def setUp(self):
        self.sim = Sim.single(self, n_modules=2)
        self.cfg = feed_config(self, self.sim)
        with open(self.cfg) as f:
            self.snapshot = json.load(f)["snapshot"]

    def status(self, cfg=None):
        p = common.run([common.POWERMETER, "status", "-c", cfg or self.cfg])
        self.assertEqual(p.stderr, "")
        return p

    def first_line(self, p):
        return p.stdout.split("\n", 1)[0]

    def start(self):
        self.daemon = Daemon(self, self.cfg).start()
        return common.wait_for(lambda: self.status_is(0), 15, what="status OK")

    def status_is(self, code):
        p = self.status()
        return p if p.returncode == code else None

    def perfdata(self, line):
        """{phase: (load or None, warning, critical)} after the '|'."""
        self.assertIn(" | ", line)
        perf = line.split(" | ", 1)[1]
        found = PERF.findall(perf)
        self.assertEqual(len(found), 3, perf)
        self.assertEqual(PERF.sub("", perf).strip(), "", "other perfdata: %r" % perf)
        return {ph: (None if v == "U" else float(v), w, c) for ph, v, w, c in found}

    def check_loads(self, line, raws=None, modules=(1, 2)):
        for phase, (load, w, c) in self.perfdata(line).items():
            self.assertEqual((w, c), (str(WARN), str(CRIT)))
            self.assertAlmostEqual(load, phase_load(phase, raws, modules), delta=0.0051,
                                   msg=phase)

    def wait_read(self, address, letter, raw):
        """Until the daemon's snapshot carries 'raw' for the input."""
        def seen():
            try:
                with open(self.snapshot) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                return None
            for d in doc["devices"]:
                for i in d["inputs"]:
                    if (d["address"], i["input"]) == (address, letter) and i["raw"] == raw:
                        return time.monotonic()
            return None
        return common.wait_for(seen, 10, what="raw %d of %d.%s in the snapshot"
                               % (raw, address, letter))

    def test_no_daemon_is_unknown(self):
        """No snapshot: UNKNOWN, where to look, and no request on the bus."""
        p = self.status()
        self.assertEqual(p.returncode, 3, p.stdout)
        self.assertEqual(p.stdout,
                         "POWERMETER UNKNOWN - no snapshot at %s: is powermeterd running? "
                         "(systemctl status powermeterd)\n" % self.snapshot)
        self.assertEqual(bus_requests(self.sim), [])

    def test_ok_warning_critical_and_back(self):
        p = self.start()
        line = self.first_line(p)
        self.assertRegex(line, r"\APOWERMETER OK - 2/2 modules up, 1 feed, no alarms \| ")
        self.check_loads(line)
        text = p.stdout
        self.assertIn("modules: 2 of 2 up\n", text)
        self.assertIn("  module 1 (%s address 1): up\n" % self.sim.path(), text)
        self.assertIn("  UPS A: 63 A per phase\n", text)
        l1 = amps(1, "a") + amps(2, "a")
        self.assertIn("    L1: %.2f A, %.1f %% of 63 A, %.0f W\n"
                      % (l1, l1 / CAPACITY * 100, l1 * 230), text)
        self.assertIn("alarms: none\n", text)
        self.assertTrue(text.endswith("power: estimated from configured voltage and power "
                                      "factor (the modules measure current only)\n"), text)

        # 13 A of a 16 A breaker: 81.25 %, a warning once it held HOLD s
        self.sim.set(0, 1, "a", 1300)
        seen = self.wait_read(1, "a", 1300)
        p = self.status()
        self.assertEqual(p.returncode, 0, "raised before its hold time:\n" + p.stdout)
        p = common.wait_for(lambda: self.status_is(1), 10, what="status WARNING")
        self.assertGreater(time.monotonic() - seen, HOLD - 2 * INTERVAL)
        line = self.first_line(p)
        self.assertEqual(line.split(" | ")[0],
                         "POWERMETER WARNING - 1 alarm: circuit_load %s warning "
                         "(%s %% >= 80 %%); 2/2 modules up, 1 feed"
                         % (CIRCUIT, num(breaker_load(1300))))
        self.check_loads(line, {(1, "a"): 1300})
        self.assertRegex(p.stdout, r"\nalarms:\n  WARNING circuit_load %s: %s %% >= 80 %%, "
                         r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ s\)\n"
                         % (re.escape(CIRCUIT), re.escape(num(breaker_load(1300)))))

        # 17 A: 106.25 %, critical after the hold
        self.sim.set(0, 1, "a", 1700)
        p = common.wait_for(lambda: self.status_is(2), 10, what="status CRITICAL")
        line = self.first_line(p)
        crit = num(breaker_load(1700))
        self.assertTrue(line.startswith("POWERMETER CRITICAL - 1 alarm: circuit_load %s "
                                        "critical (%s %% >= 100 %%); " % (CIRCUIT, crit)), line)
        self.check_loads(line, {(1, "a"): 1700})
        self.assertIn("\n  CRITICAL circuit_load %s: %s %% >= 100 %%, since " % (CIRCUIT, crit),
                      p.stdout)

        # back to 5 A: cleared at once (below 80 % - 5)
        self.sim.set(0, 1, "a", 500)
        p = common.wait_for(lambda: self.status_is(0), 10, what="status OK again")
        self.assertTrue(self.first_line(p).startswith(
            "POWERMETER OK - 2/2 modules up, 1 feed, no alarms | "))
        self.assertIn("alarms: none\n", p.stdout)

    def test_feed_critical_and_a_module_down(self):
        """The feed over its capacity on L2 is critical at once (hold 0);
        module 2 down: its circuits lack readings, the sums are lower
        bounds, module_offline is raised after its hold."""
        self.start()
        self.sim.set(0, 1, "b", 5000)           # L2: 50 + 20.2 A of 63 A
        p = common.wait_for(lambda: self.status_is(2), 10, what="feed_load critical")
        line = self.first_line(p)
        l2 = phase_load("L2", {(1, "b"): 5000})
        self.assertTrue(line.startswith("POWERMETER CRITICAL - 1 alarm: feed_load UPS A L2 "
                                        "critical (%s %% >= 100 %%); " % num(l2)), line)
        self.check_loads(line, {(1, "b"): 5000})
        self.sim.set(0, 1, "b", 1020)
        common.wait_for(lambda: self.status_is(0), 10, what="feed_load cleared")

        self.sim.fault(0, 2, "noanswer")
        p = common.wait_for(lambda: self.status_is(2), 15, what="module_offline")
        line = self.first_line(p)
        self.assertTrue(line.startswith("POWERMETER CRITICAL - 1 alarm: module_offline "
                                        "module 2 critical ("), line)
        self.assertIn("1/2 modules up", line)
        self.check_loads(line, modules=(1,))
        self.assertIn("modules: 1 of 2 up\n", p.stdout)
        self.assertRegex(p.stdout, r"  module 2 \(%s address 2\): DOWN, \d+ consecutive "
                         r"failures?: .*timeout" % re.escape(self.sim.path()))
        l1 = amps(1, "a")
        self.assertIn("    L1: at least %.2f A, %.1f %% of 63 A, %.0f W (1 of 2 circuits "
                      "without a reading)\n" % (l1, l1 / CAPACITY * 100, l1 * 230), p.stdout)
        self.assertIn("    imbalance and neutral unknown: 3 circuits without a reading\n",
                      p.stdout)
        self.sim.clear(0, 2)
        common.wait_for(lambda: self.status_is(0), 15, what="module 2 back")

    def test_redundant_pair_with_a_module_down(self):
        """Module 2's circuits on UPS B, the partner of UPS A: the pair's
        load per phase; with module 2 down it is a lower bound on UPS A's
        lines too, whose own sums are complete."""
        def pair(cfg):
            cfg["feeds"] = [{"name": "UPS A", "capacity": CAPACITY, "redundant_with": "UPS B"},
                            {"name": "UPS B", "capacity": CAPACITY, "redundant_with": "UPS A"}]
            for inp in cfg["devices"][1]["inputs"]:
                if "feed" in inp:
                    inp["feed"] = "UPS B"
        rewrite_config(self.cfg, pair)
        p = self.start()
        self.assertIn("  UPS A: 63 A per phase, redundant with UPS B\n", p.stdout)
        l1 = amps(1, "a")
        self.assertIn("    L1: %.2f A, %.1f %% of 63 A, %.0f W, redundant load %.1f %%\n"
                      % (l1, l1 / CAPACITY * 100, l1 * 230,
                         (l1 + amps(2, "a")) / CAPACITY * 100), p.stdout)
        self.sim.fault(0, 2, "noanswer")
        p = common.wait_for(lambda: self.status_is(2), 15, what="module_offline")
        self.assertIn("    L1: %.2f A, %.1f %% of 63 A, %.0f W, redundant load at least "
                      "%.1f %%\n" % (l1, l1 / CAPACITY * 100, l1 * 230, l1 / CAPACITY * 100),
                      p.stdout)
        self.assertIn("  UPS B: 63 A per phase, redundant with UPS A\n    L1: at least 0.00 A",
                      p.stdout)

    def test_killed_daemon_leaves_a_stale_snapshot(self):
        """SIGKILL: the file stays; past 3 intervals it is UNKNOWN, with the
        dead daemon's pid and where to look; never read from the bus."""
        self.start()
        pid = self.daemon.pid
        self.daemon.stop(signal.SIGKILL)
        self.assertTrue(os.path.exists(self.snapshot))
        n = len(bus_requests(self.sim))
        time.sleep(3 * INTERVAL + 0.2)
        p = self.status()
        self.assertEqual(p.returncode, 3, p.stdout)
        self.assertRegex(p.stdout, r"\APOWERMETER UNKNOWN - powermeterd's snapshot %s is "
                         r"stale: written \S+ \S+ \(\d+ s ago\) by pid %d, more than 3 "
                         r"intervals of 0\.3 s: is powermeterd stopped or stuck\? "
                         r"\(systemctl status powermeterd\)\n\Z"
                         % (re.escape(self.snapshot), pid))
        self.assertEqual(len(bus_requests(self.sim)), n, "status touched the bus")

    def test_other_configuration_is_unknown(self):
        """A config with one more input, or other feeds, than the daemon's."""
        self.start()
        for what, change, want in (
                ("input", lambda c: c["devices"][0]["inputs"].append(
                    {"input": "p", "ratio": 0.01, "name": "extra"}),
                 "is of another configuration"),
                ("capacity", lambda c: c["feeds"][0].update(capacity=80),
                 "has other feeds than")):
            path = os.path.join(common.tmpdir(self), "other-%s.json" % what)
            with open(self.cfg) as f:
                other = json.load(f)
            change(other)
            with open(path, "w") as f:
                json.dump(other, f)
            p = self.status(path)
            self.assertEqual(p.returncode, 3, p.stdout)
            self.assertTrue(p.stdout.startswith("POWERMETER UNKNOWN - "), p.stdout)
            self.assertIn(want, p.stdout)
            self.assertIn("systemctl reload powermeterd", p.stdout)

    def test_alarms_disabled(self):
        """"alarms": {"enabled": false}: OK whatever the load, and it says so."""
        rewrite_config(self.cfg, lambda c: c["alarms"].update(enabled=False))
        self.sim.set(0, 1, "a", 3000)
        p = self.start()
        self.assertTrue(self.first_line(p).startswith(
            "POWERMETER OK - 2/2 modules up, 1 feed, alarms disabled | "), p.stdout)
        self.assertIn("alarms: disabled in the config\n", p.stdout)
        # no thresholds to give with the rule off
        for load, w, c in self.perfdata(self.first_line(p)).values():
            self.assertEqual((w, c), ("", ""))

    def test_usage_and_config_errors(self):
        p = common.run([common.POWERMETER, "status", "-c", self.cfg, "extra"])
        self.assertEqual(p.returncode, 3)
        p = common.run([common.POWERMETER, "status", "--nonsense"])
        self.assertEqual(p.returncode, 3)
        p = common.run([common.POWERMETER, "status", "-c", "/nonexistent.json"])
        self.assertEqual(p.returncode, 78)
        p = common.run([common.POWERMETER, "status", "--help"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: powermeter status", p.stdout)


if __name__ == "__main__":
    common.main()
