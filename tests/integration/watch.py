#!/usr/bin/env python3
"""powermeter watch in a real terminal (tmux, 120x40, its own server
socket) against hdhk-sim: every configured circuit with the simulator's
current and its estimated power, the change mark on exactly the line whose
current the test changed, the terminal exactly as it was after q, Ctrl-C,
SIGTERM and SIGHUP (the shell's screen back, `stty -a` unchanged), a new
layout and scrolling after a resize, powermeterd's snapshot instead of the
port while the daemon runs (and nothing, not the port, while it is stopped),
and --once as plain text. With CI=true a missing tmux fails the test."""
import os
import re
import signal
import stat
import time
import unittest

import common
from daemonlib import Daemon, daemon_config, input_name, rewrite_config, RATIO
from sim import Sim

INTERVAL = 0.3
MARK_S = 5              # how long a change mark stays (cmd_watch.c)
WIDTH, HEIGHT = 120, 40
VOLTAGE = 230.0
# module 1: a on 16 A and L1 of UPS A, b on L2 of UPS A without a breaker,
# c on 10 A with a power factor of 0.9; d and module 2: nothing set
CIRCUITS = {(1, "a"): {"breaker": 16, "phase": "L1", "feed": "UPS A"},
            (1, "b"): {"phase": "L2", "feed": "UPS A"},
            (1, "c"): {"breaker": 10, "power_factor": 0.9}}
MARKER = "WATCH-$((6*7))"       # what the shell prints: WATCH-42
PRINTED_MARKER = "WATCH-42"
ROW = re.compile(r"^(>>[+-]\d+\.\d\d)?\s+(\d+) ([a-p])  ")
NUMBERS = re.compile(r"(\d+\.\d\d) A\s+(\d+) W")


def watch_config(testcase, sim, extra_devices=()):
    path = daemon_config(testcase, sim, interval=INTERVAL, timeout=0.3, extra={
        "feeds": [{"name": "UPS A", "capacity": 63}]})

    def change(cfg):
        for dev in cfg["devices"]:
            for inp in dev["inputs"]:
                inp.update(CIRCUITS.get((dev["id"], inp["input"]), {}))
        cfg["devices"].extend(extra_devices)
    rewrite_config(path, change)
    return path


def expected(device_id, letter, raw=None):
    """(current, power, load text) as watch shows them."""
    if raw is None:
        raw = Sim.default_raw(device_id, ord(letter) - 97)
    current = raw * RATIO
    c = CIRCUITS.get((device_id, letter), {})
    power = current * VOLTAGE * c.get("power_factor", 1.0)
    if "breaker" in c:
        load = "%.0f %% of %g A" % (current / c["breaker"] * 100, c["breaker"])
    else:
        load = "no breaker"
    return "%.2f A" % current, "%.0f W" % power, load


def rows(screen):
    """{(device id, letter): line} of the circuits on the screen."""
    out = {}
    for line in screen.splitlines():
        m = ROW.match(line)
        if m:
            out[(int(m.group(2)), m.group(3))] = line
    return out


def marked(screen):
    return [l for l in screen.splitlines() if l.startswith(">>")]


class Pane:
    """A tmux server of its own with one WIDTH x HEIGHT window running
    /bin/sh."""

    def __init__(self, testcase):
        self.tmux = common.require_tool("tmux")
        self.dir = common.tmpdir(testcase, "pm-tmux-")
        self.sock = os.path.join(self.dir, "tmux.sock")
        self.env = dict(os.environ, LC_ALL="C.UTF-8", PS1="$ ")
        self.env.pop("TMUX", None)
        testcase.addCleanup(self.close)
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(WIDTH),
                 "-y", str(HEIGHT), "-s", "w", "/bin/sh")
        # Keys typed before the shell's first prompt are echoed by the
        # terminal first, and the prompt then lands on the line where the
        # command's output starts: type only once the prompt is there.
        self.wait(lambda s: s.strip() in ("$", "#"), "the shell's prompt")

    def run(self, *args):
        p = common.run([self.tmux, "-S", self.sock] + list(args), env=self.env, timeout=10)
        if p.returncode:
            raise AssertionError("tmux %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def type(self, text):
        self.run("send-keys", "-t", "w", "-l", text)
        self.run("send-keys", "-t", "w", "Enter")

    def keys(self, *keys):
        self.run("send-keys", "-t", "w", *keys)

    def resize(self, width, height):
        self.run("resize-window", "-t", "w", "-x", str(width), "-y", str(height))

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "w")

    def wait(self, predicate, what, timeout=10.0):
        """Polls the screen until predicate(screen) is true; the screen."""
        last = [""]

        def check():
            last[0] = self.screen()
            return last[0] if predicate(last[0]) else None
        try:
            return common.wait_for(check, timeout, 0.05, what)
        except AssertionError:
            raise AssertionError("timed out waiting for %s; the screen:\n%s" % (what, last[0]))

    def close(self):
        common.run([self.tmux, "-S", self.sock, "kill-server"], env=self.env, timeout=10)


class Watch(unittest.TestCase):
    def setUp(self):
        self.sim = Sim.single(self, n_modules=2)
        self.cfg = watch_config(self, self.sim)

    # ---- in tmux ----------------------------------------------------------

    def start(self, args=""):
        """powermeter watch in a fresh pane, after the shell printed the
        marker and saved `stty -a`; returns the first frame."""
        self.pane = Pane(self)
        d = self.pane.dir
        self.pidfile = os.path.join(d, "pid")
        self.stderr = os.path.join(d, "stderr.txt")
        self.stty_before = os.path.join(d, "stty.before")
        self.stty_after = os.path.join(d, "stty.after")
        script = os.path.join(d, "run-watch")
        with open(script, "w") as f:
            f.write('#!/bin/sh\necho $$ > %s\nexec %s watch -c %s %s 2>%s\n'
                    % (self.pidfile, common.POWERMETER, self.cfg, args, self.stderr))
        os.chmod(script, stat.S_IRWXU)
        self.pane.type("stty -a > %s; echo %s; %s; echo \"exit=$?\"; stty -a > %s"
                       % (self.stty_before, MARKER, script, self.stty_after))
        return self.pane.wait(lambda s: re.search(r"^source: (bus|snapshot)", s, re.M)
                              and len(rows(s)) == 8 and NUMBERS.search(s),
                              "the first frame")

    def watch_pid(self):
        with open(self.pidfile) as f:
            return int(f.read())

    def assert_left(self, status):
        """watch exited with 'status' and left the terminal as it was."""
        screen = self.pane.wait(lambda s: re.search(r"^exit=\d+$", s, re.M),
                                "watch to exit")
        self.assertRegex(screen, r"(?m)^exit=%d$" % status)
        # the alternate screen was left: the shell's lines are back
        self.assertIn("\n%s\n" % PRINTED_MARKER, screen)
        self.assertNotIn("powermeter watch \u00b7", screen)
        common.wait_for(lambda: os.path.exists(self.stty_after)
                        and os.path.getsize(self.stty_after), 5, what="stty -a after")
        with open(self.stty_before) as a, open(self.stty_after) as b:
            self.assertEqual(b.read(), a.read(), "stty -a changed")
        with open(self.stderr) as f:
            self.assertEqual(f.read(), "")

    def check_values(self, screen, raws=None):
        found = rows(screen)
        self.assertEqual(sorted(found), [(a, l) for a in (1, 2) for l in "abcd"])
        for (dev, letter), line in found.items():
            raw = (raws or {}).get((dev, letter))
            current, power, load = expected(dev, letter, raw)
            self.assertIn(input_name(dev, letter), line)
            m = NUMBERS.search(line)
            self.assertTrue(m, line)
            self.assertEqual((m.group(1) + " A", m.group(2) + " W"), (current, power), line)
            self.assertTrue(line.rstrip().endswith(load), line)
            c = CIRCUITS.get((dev, letter), {})
            if "phase" in c:
                self.assertRegex(line, r"\s%s\s+%s\s" % (c["phase"], c["feed"]))

    def test_circuits_and_q(self):
        """Every circuit with the simulator's values, the header; q leaves
        the terminal as it was."""
        screen = self.start()
        lines = screen.splitlines()
        self.assertEqual(lines[0][:len("powermeter watch \u00b7 " + self.cfg)],
                         "powermeter watch \u00b7 " + self.cfg)
        self.assertIn("every %g s" % INTERVAL, lines[0])
        self.assertRegex(lines[0], r"data of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
        self.assertTrue(lines[1].startswith("source: bus (no powermeterd snapshot"), lines[1])
        self.assertIn("power: estimate from configured voltage and power factor", screen)
        self.assertIn("no breaker: bar against the largest current shown", screen)
        self.assertRegex(screen, r"(?m)^device 1 on %s address 1$" % re.escape(self.sim.path()))
        self.check_values(screen)
        self.assertEqual(marked(screen), [])
        self.assertEqual(screen.splitlines()[-1], "q: quit")
        self.pane.keys("q")
        self.assert_left(0)

    def test_change_marks_that_line(self):
        """A changed current marks exactly its line within 2 ticks, and the
        mark stays over the next refreshes."""
        self.start()
        self.pane.wait(lambda s: len(rows(s)) == 8, "a second frame")
        before = rows(self.pane.screen())
        set_ms = time.time() * 1000
        self.sim.set(0, 2, "c", 2530)               # 20.30 A -> 25.30 A
        screen = self.pane.wait(lambda s: marked(s), "a change mark", timeout=5)
        seen_ms = time.time() * 1000
        reads = [e for e in self.sim.log() if e.get("result") == "ok" and e.get("fc") == 3
                 and e.get("start") == 8 and e.get("addr") == 2
                 and set_ms <= e["t_ms"] <= seen_ms]
        self.assertLessEqual(len(reads), 2, "the mark came after %d reads" % len(reads))
        marks = marked(screen)
        self.assertEqual(len(marks), 1, screen)
        self.assertTrue(marks[0].startswith(">>+5.00 "), marks[0])
        self.assertIn(input_name(2, "c"), marks[0])
        self.check_values(screen, {(2, "c"): 2530})
        # every other line's figures as they were
        after = rows(screen)
        for key in before:
            if key != (2, "c"):
                self.assertEqual(NUMBERS.search(after[key]).groups(),
                                 NUMBERS.search(before[key]).groups())
        # still marked after two more reads of the module
        n = len([e for e in self.sim.log() if e.get("addr") == 2])
        self.sim.wait_log(lambda e: e.get("addr") == 2, count=n + 2)
        time.sleep(0.1)
        self.assertEqual([m[:8] for m in marked(self.pane.screen())], [">>+5.00 "])
        # and goes after MARK_S, the value staying
        screen = self.pane.wait(lambda s: not marked(s), "the mark to go", timeout=MARK_S + 3)
        self.assertGreater(time.time() * 1000 - seen_ms, (MARK_S - 1) * 1000)
        self.check_values(screen, {(2, "c"): 2530})
        self.pane.keys("q")
        self.assert_left(0)

    def test_ctrl_c(self):
        self.start()
        self.pane.keys("C-c")
        self.assert_left(0)

    def test_sigterm_and_sighup(self):
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with self.subTest(signal=sig.name):
                self.start()
                os.kill(self.watch_pid(), sig)
                self.assert_left(128 + sig)

    def test_resize_and_scroll(self):
        """SIGWINCH lays the view out again: names cut short, a scroll hint,
        End and Home move through the circuits."""
        self.start()
        self.pane.resize(60, 14)
        screen = self.pane.wait(lambda s: "more below" in s, "a scroll hint")
        self.assertTrue(all(len(l) <= 60 for l in screen.splitlines()), screen)
        self.assertIn("Dev 1, in\u2026", screen)
        self.assertRegex(screen.splitlines()[-1], r"^lines 1-\d+ of 10, more below \u00b7 ")
        self.pane.keys("End")
        screen = self.pane.wait(lambda s: (2, "d") in rows(s) and "more below" not in s,
                                "the last circuit")
        self.assertNotIn((1, "a"), rows(screen))
        self.pane.keys("Home")
        self.pane.wait(lambda s: (1, "a") in rows(s), "the first circuit")
        self.pane.resize(WIDTH, HEIGHT)
        self.pane.wait(lambda s: len(rows(s)) == 8 and "scroll" not in s, "the whole view again")
        self.pane.keys("q")
        self.assert_left(0)

    def test_daemon_snapshot_not_the_port(self):
        """With powermeterd running: its snapshot, never the port; while it
        is stopped (SIGSTOP) and its snapshot goes stale: no numbers and
        still not the port."""
        with open(self.cfg) as f:
            snapshot = re.search(r'"snapshot": "([^"]+)"', f.read()).group(1)
        daemon = Daemon(self, self.cfg).start()
        common.wait_for(lambda: os.path.exists(snapshot), 10, what="the snapshot")
        screen = self.start()
        self.assertRegex(screen, r"(?m)^source: snapshot of powermeterd pid %d " % daemon.pid)
        self.check_values(screen)
        daemon.send(signal.SIGSTOP)
        try:
            screen = self.pane.wait(lambda s: "has not replaced its snapshot" in s,
                                    "the stale snapshot's note")
            self.assertRegex(screen, r"powermeterd \(pid %d\) has not replaced" % daemon.pid)
            self.assertIsNone(NUMBERS.search(screen), screen)
            self.assertNotRegex(screen, r"busy|held by")
        finally:
            daemon.send(signal.SIGCONT)
        screen = self.pane.wait(lambda s: NUMBERS.search(s) and "has not replaced" not in s,
                                "numbers again")
        self.assertRegex(screen, r"(?m)^source: snapshot of powermeterd pid %d " % daemon.pid)
        # stopped cleanly, it removes its snapshot: a restart's time
        # (3 of its intervals) without the port, then the bus
        self.assertEqual(daemon.stop(), 0)
        self.assertNotRegex(daemon.stderr(), r"busy|held by")
        screen = self.pane.wait(lambda s: "removed its snapshot" in s, "the daemon gone")
        self.assertIsNone(NUMBERS.search(screen), screen)
        screen = self.pane.wait(lambda s: re.search(r"(?m)^source: bus", s) and NUMBERS.search(s),
                                "the bus read")
        self.check_values(screen)
        self.pane.keys("q")
        self.assert_left(0)

    # ---- without a terminal -------------------------------------------------

    def once(self, *args):
        return common.run([common.POWERMETER, "watch", "-c", self.cfg, "--once"] + list(args))

    def test_once_plain_text(self):
        """--once: one frame, plain text; a module that does not answer shows
        its failure sentence and no numbers; --device; no terminal and no
        --once: refused."""
        self.cfg = watch_config(self, self.sim, extra_devices=[{
            "id": 9, "port": self.sim.path(), "address": 9, "timeout": 0.1,
            "inputs": [{"input": "a", "ratio": RATIO, "name": "Nobody"}]}])
        p = self.once()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertNotIn("\x1b", p.stdout)
        self.assertNotIn("\u2026", p.stdout)
        self.check_values("\n".join(l for l in p.stdout.splitlines() if "Nobody" not in l))
        self.assertRegex(p.stdout, r"(?m)^device 9 on %s address 9: no answer within 0\.1 s"
                         % re.escape(self.sim.path()))
        nobody = [l for l in p.stdout.splitlines() if "Nobody" in l]
        self.assertEqual(len(nobody), 1)
        self.assertRegex(nobody[0], r"^\s+9 a  Nobody\s+-\s+-$")

        p = self.once("--device", "2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(sorted(rows(p.stdout)), [(2, l) for l in "abcd"])

        p = common.run([common.POWERMETER, "watch", "-c", self.cfg])
        self.assertEqual((p.returncode, p.stdout), (2, ""))
        self.assertIn("not a terminal", p.stderr)
        for bad in (["--source", "port"], ["--interval", "0"], ["--device", "x"]):
            self.assertEqual(self.once(*bad).returncode, 2, bad)
        self.assertEqual(self.once("--device", "5").returncode, 2)

    def test_source_snapshot_without_daemon(self):
        """--source snapshot without a daemon: says so, shows no numbers and
        sends nothing on the bus."""
        p = self.once("--source", "snapshot")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("no snapshot of this configuration at ", p.stdout)
        self.assertIsNone(NUMBERS.search(p.stdout))
        self.assertEqual([e for e in self.sim.log() if e.get("fc") == 3], [])


if __name__ == "__main__":
    common.main()
