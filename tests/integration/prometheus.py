#!/usr/bin/env python3
"""powermeterd's Prometheus textfile ("prometheus": {"textfile": PATH}) with
two simulated modules: promtool check metrics finds nothing to say and
node_exporter serves it; values are the simulator's (raw x ratio, the
snapshot's very doubles), energy counters only go up, every module counter
is there; a module that stops answering loses its circuits' lines and says
up 0, and gets them back; readers never see a partial file, no temporary is
left, SIGHUP and SIGTERM remove it; a write that fails is logged once, shown
in STATUS= and logged again once it works; bad configs exit 78 naming the
file and the key; a symlink or FIFO at a temporary's name is never written
through nor waited on."""
import json
import math
import os
import re
import stat
import subprocess
import threading
import time
import unittest
import urllib.request

import common
import daemonlib
from sim import Sim

INTERVAL = 0.5
RATIO = daemonlib.RATIO
PROM_NAME = "powermeter.prom"

CIRCUIT_FAMILIES = {
    "powermeter_current_amperes": "gauge",
    "powermeter_power_watts": "gauge",
    "powermeter_frequency_hertz": "gauge",
    "powermeter_load_ratio": "gauge",
    "powermeter_energy_joules_total": "counter",
}
MODULE_COUNTERS = ["reads", "failures", "requests", "retries", "timeouts",
                   "crc_errors", "frame_errors", "exceptions", "io_errors"]
MODULE_FAMILIES = dict(
    [("powermeter_module_up", "gauge"),
     ("powermeter_module_last_success_timestamp_seconds", "gauge")] +
    [("powermeter_module_%s_total" % c, "counter") for c in MODULE_COUNTERS])
FEED_FAMILIES = {
    "powermeter_feed_current_amperes": "gauge",
    "powermeter_feed_load_ratio": "gauge",
}
ALL_FAMILIES = dict(CIRCUIT_FAMILIES, **MODULE_FAMILIES, **FEED_FAMILIES)

# ---- the exposition format, read strictly ---------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class Malformed(Exception):
    pass


def parse_labels(s):
    labels, i = {}, 0
    while i < len(s):
        m = LABEL.match(s, i)
        if not m:
            raise Malformed("bad label at %r" % s[i:])
        name, i, value = m.group(1), m.end(), []
        while True:
            if i >= len(s):
                raise Malformed("unterminated label value in %r" % s)
            c = s[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in ESCAPES:
                    raise Malformed("bad escape in %r" % s)
                value.append(ESCAPES[s[i + 1]])
                i += 2
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise Malformed("label %s twice in %r" % (name, s))
        labels[name] = "".join(value)
        if i < len(s):
            if s[i] != ",":
                raise Malformed("expected ',' at %r" % s[i:])
            i += 1
    return labels


def parse(text):
    """{family: {"type", "help", "samples": [(labels, value)]}}; raises
    Malformed unless every family has HELP then TYPE once, before all its
    lines, which are together, each with one finite value and no time."""
    if not text.endswith("\n"):
        raise Malformed("does not end in a line feed: %r" % text[-80:])
    fams, current, done = {}, None, set()
    lines = text[:-1].split("\n") if text else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            if name in fams:
                raise Malformed("family %s twice" % name)
            if i + 1 >= len(lines) or not lines[i + 1].startswith("# TYPE %s " % name):
                raise Malformed("HELP of %s without its TYPE" % name)
            if current:
                done.add(current)
            current = name
            fams[name] = {"help": help_, "type": lines[i + 1].split(" ")[3], "samples": []}
            i += 2
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Malformed("bad line %r" % line)
        name, labels, value = m.group(1), m.group(2), m.group(3)
        if name != current:
            raise Malformed("line of %s outside its family (%s): %r" % (name, current, line))
        v = float(value)
        if not math.isfinite(v):
            raise Malformed("not finite: %r" % line)
        fams[name]["samples"].append((parse_labels(labels or ""), v))
        i += 1
    for name, f in fams.items():
        if not f["samples"]:
            raise Malformed("family %s without lines" % name)
    return fams


def values(fams, family, *keys):
    """{(label values of keys): value} of one family ({} when absent); with
    one key, {label value: value}."""
    out = {}
    for labels, v in fams.get(family, {"samples": []})["samples"]:
        k = tuple(labels.get(x) for x in keys)
        k = k[0] if len(keys) == 1 else k
        if k in out:
            raise AssertionError("%s: series %r twice" % (family, k))
        out[k] = v
    return out


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- the setup -------------------------------------------------------------

def setup(testcase, interval=INTERVAL, prom_dir=None, sim=None):
    """Two modules on one simulated bus: device 1 reads frequency, its input
    a has a breaker, phase L1, feed "UPS A" and a tag; device 2's input c
    a breaker and a tag. Energy counters shown within a second or two.
    Returns (sim, config path, textfile path)."""
    sim = sim or Sim.single(testcase, n_modules=2)
    prom_dir = prom_dir or common.tmpdir(testcase, "pm-prom-")
    prom = os.path.join(prom_dir, PROM_NAME)
    cfg = daemonlib.daemon_config(testcase, sim, interval=interval, extra={
        "prometheus": {"textfile": prom},
        "energy": {"persist_interval": 1},
        "feeds": [{"name": "UPS A", "capacity": 32, "phases": ["L1"]}],
    })

    def change(c):
        c["devices"][0]["frequency"] = True
        c["devices"][0]["inputs"][0].update(
            {"breaker": 16, "phase": "L1", "feed": "UPS A", "tags": {"rack": "R1"}})
        c["devices"][1]["inputs"][2].update({"breaker": 32, "tags": {"customer": "ACME"}})
    daemonlib.rewrite_config(cfg, change)
    return sim, cfg, prom


def stop_clean(testcase, d):
    """SIGTERM: exit 0, and nothing in the log from the sink (it logs only
    failures) or from a sanitizer."""
    testcase.assertEqual(d.stop(), 0, d.stderr())
    for bad in ("prometheus:", "runtime error:", "Sanitizer"):
        testcase.assertNotIn(bad, d.stderr())


def wait_parsed(path, predicate=lambda f: True, timeout=15.0, what="the textfile"):
    def ready():
        try:
            fams = parse(read_text(path))
        except FileNotFoundError:
            return None
        return fams if predicate(fams) else None
    return common.wait_for(ready, timeout, interval=0.05, what=what)


def has_energy(fams):
    e = values(fams, "powermeter_energy_joules_total", "device_id", "input")
    return len(e) == 8 and all(v > 0 for v in e.values())


def circuit_series(fams, device_id):
    """Lines of any circuit family for device_id."""
    return [(f, labels) for f in CIRCUIT_FAMILIES
            for labels, _ in fams.get(f, {"samples": []})["samples"]
            if labels["device_id"] == device_id]


class Textfile(unittest.TestCase):
    def test_lint_clean_and_values_are_the_simulators(self):
        promtool = common.require_tool("promtool")
        sim, cfg, prom = setup(self)
        d = daemonlib.Daemon(self, cfg).start()
        first = wait_parsed(prom, has_energy, what="energy counters in the textfile")

        text = read_text(prom)
        r = common.run([promtool, "check", "metrics"], input=text)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""), text)
        fams = parse(text)
        self.assertEqual({f: fams[f]["type"] for f in fams}, ALL_FAMILIES)
        self.assertIn("ESTIMATED", fams["powermeter_power_watts"]["help"])
        self.assertIn("ESTIMATED", fams["powermeter_energy_joules_total"]["help"])

        # the snapshot of the same daemon: raw x ratio, the very double
        with open(os.path.join(os.path.dirname(cfg), "run", "values.json")) as f:
            snap = json.load(f)
        snap_in = {(str(dev["id"]), i["input"]): i for dev in snap["devices"] for i in dev["inputs"]}

        current = values(fams, "powermeter_current_amperes", "device_id", "input")
        power = values(fams, "powermeter_power_watts", "device_id", "input")
        self.assertEqual(set(current), {(str(a), l) for a in (1, 2) for l in "abcd"})
        for (dev, l), amps in current.items():
            raw = Sim.default_raw(int(dev), ord(l) - ord("a"))
            self.assertEqual(amps, raw * RATIO, (dev, l))
            s = snap_in[(dev, l)]
            self.assertEqual(amps, s["raw"] * s["ratio"], (dev, l))
            self.assertEqual(power[(dev, l)], amps * 230.0 * 1.0, (dev, l))
        # frequency only where read, the snapshot's value
        freq = values(fams, "powermeter_frequency_hertz", "device_id", "input")
        self.assertEqual(set(freq), {("1", l) for l in "abcd"})
        for (dev, l), hz in freq.items():
            self.assertEqual(hz, snap_in[(dev, l)]["frequency"])
            self.assertTrue(40 <= hz <= 70, hz)
        # load against the breaker, only where there is one
        load = values(fams, "powermeter_load_ratio", "device_id", "input")
        self.assertEqual(load, {("1", "a"): current[("1", "a")] / 16,
                                ("2", "c"): current[("2", "c")] / 32})
        # labels: name (quotes, comma, '=' escaped and back), phase, feed, tags
        by_input = {(lb["device_id"], lb["input"]): lb
                    for lb, _ in fams["powermeter_current_amperes"]["samples"]}
        self.assertEqual(by_input[("1", "a")], {
            "device_id": "1", "input": "a", "name": daemonlib.input_name(1, "a"),
            "phase": "L1", "feed": "UPS A", "rack": "R1"})
        self.assertEqual(by_input[("2", "c")], {
            "device_id": "2", "input": "c", "name": daemonlib.input_name(2, "c"),
            "customer": "ACME"})
        self.assertEqual(by_input[("2", "b")], {
            "device_id": "2", "input": "b", "name": daemonlib.input_name(2, "b")})
        # the feed: one circuit on L1
        self.assertEqual(values(fams, "powermeter_feed_current_amperes", "feed", "phase"),
                         {("UPS A", "L1"): current[("1", "a")]})
        self.assertEqual(values(fams, "powermeter_feed_load_ratio", "feed", "phase"),
                         {("UPS A", "L1"): current[("1", "a")] / 32})
        # modules: up, recent success, every counter with port and address
        for fam in MODULE_FAMILIES:
            self.assertEqual(set(values(fams, fam, "device_id", "port", "address")),
                             {("1", sim.path(), "1"), ("2", sim.path(), "2")}, fam)
        self.assertEqual(set(values(fams, "powermeter_module_up", "device_id").values()), {1.0})
        for t in values(fams, "powermeter_module_last_success_timestamp_seconds",
                        "device_id").values():
            self.assertLess(abs(t - time.time()), 5)

        # several ticks: energy never goes back and grows, reads grow
        history = [first, fams]
        for _ in range(6):
            time.sleep(INTERVAL)
            history.append(parse(read_text(prom)))
        for a, b in zip(history, history[1:]):
            ea = values(a, "powermeter_energy_joules_total", "device_id", "input")
            eb = values(b, "powermeter_energy_joules_total", "device_id", "input")
            for k in ea:
                self.assertGreaterEqual(eb[k], ea[k], k)
            ra = values(a, "powermeter_module_reads_total", "device_id")
            rb = values(b, "powermeter_module_reads_total", "device_id")
            for k in ra:
                self.assertGreaterEqual(rb[k], ra[k], k)
        e0 = values(history[0], "powermeter_energy_joules_total", "device_id", "input")
        e1 = values(history[-1], "powermeter_energy_joules_total", "device_id", "input")
        self.assertTrue(all(e1[k] > e0[k] for k in e0), (e0, e1))
        r0 = values(history[0], "powermeter_module_reads_total", "device_id")
        r1 = values(history[-1], "powermeter_module_reads_total", "device_id")
        self.assertTrue(all(r1[k] >= r0[k] + 4 for k in r0), (r0, r1))
        stop_clean(self, d)

    def test_node_exporter_serves_it(self):
        exporter = common.require_tool("prometheus-node-exporter")
        sim, cfg, prom = setup(self)
        d = daemonlib.Daemon(self, cfg).start()
        wait_parsed(prom, has_energy, what="energy counters in the textfile")
        port = common.free_port()
        logdir = common.tmpdir(self, "pm-node-exporter-")
        with open(os.path.join(logdir, "stderr.txt"), "w") as err:
            proc = subprocess.Popen([exporter, "--web.listen-address=127.0.0.1:%d" % port,
                                     "--collector.disable-defaults", "--collector.textfile",
                                     "--collector.textfile.directory=" + os.path.dirname(prom)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)

        def stop_exporter():
            proc.terminate()
            proc.wait(10)
        self.addCleanup(stop_exporter)

        def scrape():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                            timeout=2) as resp:
                    return resp.read().decode()
            except OSError:
                return None
        text = common.wait_for(scrape, 15, what="node_exporter's /metrics")
        self.assertIn("\nnode_textfile_scrape_error 0\n", text)
        self.assertIn('node_textfile_mtime_seconds{file="%s"}' % prom, text)
        served = {}
        for line in text.splitlines():
            m = SAMPLE.match(line)
            if m and m.group(1).startswith("powermeter_"):
                served.setdefault(m.group(1), []).append(
                    (parse_labels(m.group(2) or ""), float(m.group(3))))
        self.assertEqual(set(served), set(ALL_FAMILIES))
        for fam, kind in ALL_FAMILIES.items():
            self.assertIn("# TYPE %s %s\n" % (fam, kind), text)
        served_current = {(lb["device_id"], lb["input"]): v
                          for lb, v in served["powermeter_current_amperes"]}
        self.assertEqual(served_current,
                         {(str(a), l): Sim.default_raw(a, ord(l) - ord("a")) * RATIO
                          for a in (1, 2) for l in "abcd"})
        stop_clean(self, d)

    def test_module_that_stops_answering(self):
        sim, cfg, prom = setup(self)
        d = daemonlib.Daemon(self, cfg).start()
        fams = wait_parsed(prom, has_energy, what="energy counters in the textfile")
        failures_before = values(fams, "powermeter_module_failures_total", "device_id")["2"]
        self.assertEqual(failures_before, 0)

        sim.fault(0, 2, "noanswer")
        # From its first failed read on, never a line of its circuits;
        # its up goes to 0 once down_after reads failed.
        seen_failed = []

        def down(fams):
            failures = values(fams, "powermeter_module_failures_total", "device_id")["2"]
            if failures > failures_before:
                self.assertEqual(circuit_series(fams, "2"), [], "stale lines after a failed read")
                seen_failed.append(failures)
            return values(fams, "powermeter_module_up", "device_id")["2"] == 0
        fams = wait_parsed(prom, down, timeout=15, what="module 2 down")
        self.assertTrue(seen_failed)
        self.assertEqual(circuit_series(fams, "2"), [])
        self.assertEqual(values(fams, "powermeter_module_up", "device_id")["1"], 1)
        self.assertEqual(len(circuit_series(fams, "1")), 4 + 4 + 4 + 1 + 4)
        # its history stays: last success, counters
        self.assertIn("2", values(fams, "powermeter_module_last_success_timestamp_seconds",
                                  "device_id"))
        self.assertGreater(values(fams, "powermeter_module_timeouts_total", "device_id")["2"], 0)
        # and the feed, on device 1, is still complete
        self.assertIn(("UPS A", "L1"),
                      values(fams, "powermeter_feed_current_amperes", "feed", "phase"))

        sim.clear(0, 2)
        fams = wait_parsed(prom, lambda f: values(f, "powermeter_module_up", "device_id")["2"] == 1
                           and len(circuit_series(f, "2")) == 4 + 4 + 1 + 4,
                           timeout=15, what="module 2 back")
        current = values(fams, "powermeter_current_amperes", "device_id", "input")
        for l in "abcd":
            self.assertEqual(current[("2", l)], Sim.default_raw(2, ord(l) - ord("a")) * RATIO)
        stop_clean(self, d)

    def test_replaced_atomically_and_removed_at_stop(self):
        sim, cfg, prom = setup(self, interval=0.25)
        prom_dir = os.path.dirname(prom)
        d = daemonlib.Daemon(self, cfg).start()
        wait_parsed(prom, has_energy, what="energy counters in the textfile")

        stop = threading.Event()
        result = {"reads": 0, "contents": set(), "errors": [], "names": set()}

        def reader():
            while not stop.is_set():
                try:
                    text = read_text(prom)
                    fams = parse(text)
                    missing = set(ALL_FAMILIES) - set(fams)
                    if missing:
                        raise Malformed("families missing: %s" % sorted(missing))
                    if len(fams["powermeter_current_amperes"]["samples"]) != 8:
                        raise Malformed("not every circuit")
                    result["reads"] += 1
                    result["contents"].add(text)
                    result["names"].update(os.listdir(prom_dir))
                except Exception as e:  # every failure is reported
                    result["errors"].append("%s: %s" % (type(e).__name__, e))
        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join(10)
        self.assertEqual(result["errors"][:5], [])
        self.assertGreater(result["reads"], 200)
        self.assertGreaterEqual(len(result["contents"]), 8, "the file was not replaced every tick")
        # what else there was: our dot-file temporaries only, never *.prom
        others = result["names"] - {PROM_NAME}
        tmp = re.compile(r"^\.%s\.%d\.\d+\.tmp$" % (re.escape(PROM_NAME), d.pid))
        self.assertEqual([n for n in others if not tmp.match(n)], [])
        st = os.stat(prom)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        self.assertEqual(os.listdir(prom_dir), [PROM_NAME])

        # a reload: the old sink's file goes, the new one writes it again
        d.hup()
        d.wait_stderr(r"polling \d+ module", count=2)
        wait_parsed(prom, lambda f: "powermeter_current_amperes" in f, what="textfile after SIGHUP")
        # SIGTERM: the file goes (no daemon, no values), nothing is left
        stop_clean(self, d)
        self.assertEqual(os.listdir(prom_dir), [])

    def test_failure_logged_once_and_shown_in_status(self):
        sim, cfg, prom = setup(self)
        prom_dir = os.path.dirname(prom)
        d = daemonlib.Daemon(self, cfg).start()
        wait_parsed(prom, lambda f: "powermeter_current_amperes" in f)
        # the directory goes away (node_exporter's package purged, say)
        away = prom_dir + ".away"
        os.rename(prom_dir, away)
        self.addCleanup(lambda: os.path.isdir(away) and os.rename(away, prom_dir))
        d.wait_stderr(r"prometheus: cannot write %s: No such file or directory"
                      % re.escape(prom))
        common.wait_for(lambda: any("prometheus failing: No such file or directory"
                                    in m["STATUS"] for _, m in d.notify.all("STATUS")),
                        10, what="STATUS saying prometheus is failing")
        time.sleep(6 * INTERVAL)
        os.rename(away, prom_dir)
        d.wait_stderr(r"prometheus: %s written again" % re.escape(prom))
        back = time.monotonic()
        common.wait_for(lambda: any("prometheus ok" in m["STATUS"]
                                    for t, m in d.notify.all("STATUS") if t >= back),
                        10, what="STATUS saying prometheus is ok")
        self.assertEqual(d.stderr().count("prometheus: cannot write"), 1, d.stderr())
        self.assertEqual(d.stderr().count("written again"), 1, d.stderr())
        fams = parse(read_text(prom))
        t = values(fams, "powermeter_module_last_success_timestamp_seconds", "device_id")
        self.assertLess(abs(t["1"] - time.time()), 3)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertEqual(os.listdir(prom_dir), [])

    def test_bad_config_exits_78(self):
        sim = Sim.single(self, n_modules=1, start=False)
        d = common.tmpdir(self, "pm-prom-bad-")
        a_file = os.path.join(d, "plain")
        with open(a_file, "w") as f:
            f.write("x")
        cases = [
            ({"textfile": "node-exporter/powermeter.prom"},
             "prometheus.textfile: expected an absolute path"),
            ({"textfile": os.path.join(d, "missing", "powermeter.prom")},
             "prometheus.textfile: directory %s does not exist" % os.path.join(d, "missing")),
            ({"textfile": os.path.join(a_file, "powermeter.prom")},
             "prometheus.textfile: %s is not a directory" % a_file),
            ({"textfile": os.path.join(d, "powermeter.txt")},
             'prometheus.textfile: "%s" does not end in ".prom": node_exporter'
             % os.path.join(d, "powermeter.txt")),
            ({"textfile": os.path.join(d, "powermeter.prom"), "textfil": "x"},
             'prometheus: unknown key "textfil" (did you mean "textfile"?)'),
            ({}, 'prometheus: missing "textfile"'),
            ("/x.prom", "prometheus: expected an object"),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                cfg = daemonlib.daemon_config(self, sim, extra={"prometheus": value})
                r = common.run([common.POWERMETER, "check", "-c", cfg])
                self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
                self.assertIn("%s: %s" % (cfg, message), r.stderr)
                daemon = daemonlib.Daemon(self, cfg).start(wait_ready=False)
                self.assertEqual(daemon.wait_exit(15), 78, daemon.stderr())
                self.assertIn("%s: %s" % (cfg, message), daemon.stderr())
        # nobody created the missing directory (node_exporter's to make)
        self.assertEqual(os.listdir(d), ["plain"])

    def test_symlink_or_fifo_at_a_temporary_name(self):
        sim, cfg, prom = setup(self)
        prom_dir = os.path.dirname(prom)
        outside = common.tmpdir(self, "pm-prom-victim-")
        victim = os.path.join(outside, "victim")
        with open(victim, "w") as f:
            f.write("victim\n")
        dangling = os.path.join(outside, "created-through-a-link")
        # the target itself a symlink: replaced, never written through
        os.symlink(victim, prom)
        # The names the first writes would take: the daemon's pid is the
        # shell's, which execs it (serials count from 0 in a process).
        script = ('ln -s "$V" "$D/.$N.$$.0.tmp"; mkfifo "$D/.$N.$$.1.tmp"; '
                  'ln -s "$L" "$D/.$N.$$.2.tmp"; mkfifo "$D/.$N.$$.3.tmp"; '
                  'mkdir "$D/.$N.$$.4.tmp"; exec "$@"')

        class Trapped(daemonlib.Daemon):
            def argv(self):
                return ["/bin/sh", "-c", script, "sh"] + super().argv()
        d = Trapped(self, cfg, env={"D": prom_dir, "N": PROM_NAME, "V": victim,
                                    "L": dangling}).start()
        common.wait_for(lambda: not os.path.islink(prom), 10,
                        what="the symlink at the textfile replaced")
        fams = wait_parsed(prom, lambda f: "powermeter_current_amperes" in f,
                           timeout=10, what="the textfile beside the traps")
        reads0 = values(fams, "powermeter_module_reads_total", "device_id")["1"]
        wait_parsed(prom, lambda f: values(f, "powermeter_module_reads_total",
                                           "device_id")["1"] >= reads0 + 4,
                    what="the textfile replaced at every tick")
        self.assertFalse(os.path.islink(prom))
        self.assertTrue(stat.S_ISREG(os.lstat(prom).st_mode))
        with open(victim) as f:
            self.assertEqual(f.read(), "victim\n")
        self.assertFalse(os.path.exists(dangling))
        traps = {".%s.%d.%d.tmp" % (PROM_NAME, d.pid, i): kind for i, kind in
                 enumerate(["link", "fifo", "link", "fifo", "dir"])}
        for name, kind in traps.items():
            mode = os.lstat(os.path.join(prom_dir, name)).st_mode
            self.assertTrue({"link": stat.S_ISLNK, "fifo": stat.S_ISFIFO,
                             "dir": stat.S_ISDIR}[kind](mode), name)
        stop_clean(self, d)
        # what is left is the traps, untouched: ours are gone
        self.assertEqual(sorted(os.listdir(prom_dir)), sorted(traps))


if __name__ == "__main__":
    common.main()
