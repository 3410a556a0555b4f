"""Helpers for the powermeterd integration tests (daemon*.py): a config for
a running hdhk-sim, the daemon as a child process with a test NOTIFY_SOCKET,
and checks of what reached a database against the simulator's transaction
log. Standard library only.

    sim = Sim(self, [{"modules": [1, 2]}]).start()
    cfg = daemon_config(self, sim, influx={"url": db.url, "database": "powermeter"})
    d = Daemon(self, cfg).start()          # waits for READY=1
    ...
    self.assertEqual(d.stop(), 0)          # SIGTERM, exit status
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import common
from sim import Sim

# Every test module reads channels a..d of each module with ratio 0.01.
INPUTS = "abcd"
RATIO = 0.01


def input_name(device_id, letter):
    return "Dev %d, input \"%s\"=x" % (device_id, letter)


def daemon_config(testcase, sim, interval=0.5, timeout=0.3, influx=None,
                  inputs=INPUTS, name=input_name, extra=None, frequency=False):
    """Writes an object-form config with one device per simulated module
    (device id = bus * 100 + address), its state, runtime and snapshot under
    a temporary directory; returns the config's path."""
    d = common.tmpdir(testcase, "pm-daemon-")
    devices = []
    for b, bus in enumerate(sim.buses):
        for m in bus["modules"]:
            dev_id = b * 100 + m["address"]
            dev = {
                "id": dev_id,
                "port": bus["path"],
                "address": m["address"],
                "baudrate": bus.get("baud", 9600),
                "timeout": timeout,
                "inputs": [{"input": l, "ratio": RATIO, "name": name(dev_id, l)}
                           for l in inputs],
            }
            if frequency:
                dev["frequency"] = True
            devices.append(dev)
    cfg = {
        "interval": interval,
        "state_directory": os.path.join(d, "state"),
        "runtime_directory": os.path.join(d, "run"),
        "snapshot": os.path.join(d, "run", "values.json"),
        "devices": devices,
    }
    if influx:
        cfg["influx"] = influx
    if extra:
        cfg.update(extra)
    path = os.path.join(d, "powermeter.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def rewrite_config(path, change):
    """Loads the config at 'path', lets change(cfg) edit it, writes it back."""
    with open(path) as f:
        cfg = json.load(f)
    change(cfg)
    with open(path + ".new", "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(path + ".new", path)


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET;
    every datagram is kept as (monotonic time, {key: value})."""

    def __init__(self, testcase):
        self.path = os.path.join(common.tmpdir(testcase, "pm-notify-"), "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.close)

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.closing:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def close(self):
        self.closing = True
        self.thread.join(2)
        self.sock.close()

    def all(self, key=None):
        with self.lock:
            msgs = list(self.messages)
        return [(t, m) for t, m in msgs if key is None or key in m]

    def wait(self, key, value=None, count=1, timeout=15.0, after=0.0):
        """Waits for 'count' messages carrying key (=value) sent after
        monotonic time 'after'; returns them."""
        def seen():
            found = [(t, m) for t, m in self.all(key)
                     if t >= after and (value is None or m[key] == value)]
            return found if len(found) >= count else None
        return common.wait_for(seen, timeout, what="%s=%s on NOTIFY_SOCKET" % (key, value))


class Daemon:
    """powermeterd as a child: stderr into a file, stdout piped when asked
    (--stdout), NOTIFY_SOCKET pointing at a NotifySocket."""

    def __init__(self, testcase, config, args=(), env=None, stdout=False, notify=True,
                 watchdog_usec=None, watchdog_pid="self"):
        self.testcase = testcase
        self.config = config
        self.args = list(args)
        self.want_stdout = stdout
        self.dir = common.tmpdir(testcase, "pm-powermeterd-")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        self.notify = NotifySocket(testcase) if notify else None
        self.env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                  "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "CREDENTIALS_DIRECTORY"):
            self.env.pop(k, None)
        if self.notify:
            self.env["NOTIFY_SOCKET"] = self.notify.path
        if watchdog_usec:
            self.env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.watchdog_pid = watchdog_pid if watchdog_usec else None
        if env:
            self.env.update(env)
        self.proc = None
        self.returncode = None
        self.started_at = None
        testcase.addCleanup(self.kill)

    def argv(self):
        argv = [common.POWERMETERD, "-c", self.config] + self.args
        if self.want_stdout:
            argv.append("--stdout")
        return argv

    def start(self, wait_ready=True):
        argv = self.argv()
        if self.watchdog_pid == "self":
            # WATCHDOG_PID must name powermeterd itself: the shell's pid
            # becomes powermeterd's at exec.
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"',
                    "sh"] + argv
        elif self.watchdog_pid is not None:
            self.env["WATCHDOG_PID"] = str(self.watchdog_pid)
        self.started_at = time.monotonic()
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=self.env)
        if wait_ready and self.notify:
            def ready():
                if self.proc.poll() is not None:
                    raise AssertionError("powermeterd exited with %s before READY=1:\n%s"
                                         % (self.proc.returncode, self.stderr()))
                return self.notify.all("READY") and \
                    [m for t, m in self.notify.all("READY") if t >= self.started_at]
            common.wait_for(ready, 15, what="READY=1 from powermeterd")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig):
        self.proc.send_signal(sig)

    def hup(self):
        self.send(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Sends 'sig' and waits; returns the exit status."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("powermeterd did not exit within %.0fs of signal %d:\n%s"
                                 % (timeout, sig, self.stderr()))
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def wait_exit(self, timeout=15.0):
        self.proc.wait(timeout)
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_stderr(self, pattern, timeout=15.0, count=1):
        """Waits until 'pattern' (a regex) matched 'count' lines of stderr."""
        rx = re.compile(pattern)

        def seen():
            lines = [l for l in self.stderr().splitlines() if rx.search(l)]
            return lines if len(lines) >= count else None
        try:
            return common.wait_for(seen, timeout, what="stderr line /%s/" % pattern)
        except AssertionError:
            raise AssertionError("no stderr line /%s/ within %.0fs; stderr:\n%s"
                                 % (pattern, timeout, self.stderr()))


def time_ms():
    return time.time() * 1000


def ok_reads(sim, since_ms=None, until_ms=None):
    """The simulator's successful current reads (FC 3 from register 8), as
    (bus, addr, t_ms, values), optionally limited to a time range."""
    index = {b["path"]: i for i, b in enumerate(sim.buses)}
    out = []
    for e in sim.log():
        if e.get("result") != "ok" or e.get("fc") != 3 or e.get("start") != 8:
            continue
        if since_ms is not None and e["t_ms"] < since_ms:
            continue
        if until_ms is not None and e["t_ms"] > until_ms:
            continue
        bus = index.get(e["bus"], e["bus"])
        out.append((bus, e["addr"], e["t_ms"], e.get("values")))
    return out


def expected_points(sim, reads, inputs=INPUTS, name=input_name):
    """For each successful read, one expected point per configured input:
    dicts with device_id, input, name, current, t_ms."""
    pts = []
    for bus, addr, t_ms, values in reads:
        dev_id = bus * 100 + addr
        for l in inputs:
            ch = ord(l) - ord("a")
            raw = values[ch] if values else Sim.default_raw(addr, ch)
            pts.append({"device_id": str(dev_id), "input": l, "name": name(dev_id, l),
                        "current": common.stored(raw * RATIO), "t_ms": t_ms})
    return pts


def match_points(testcase, expected, rows, tolerance_ms=100, exact_once=True):
    """Pairs every expected point with a stored row (same tags, value within
    1e-9, time within tolerance_ms after the simulator's answer). Fails on
    a missing point and, with exact_once, on any stored point left over."""
    by_series = {}
    for r in rows:
        key = (str(r.get("device_id")), r.get("input"))
        by_series.setdefault(key, []).append(r)
    for lst in by_series.values():
        lst.sort(key=lambda r: r["time"])
    missing = []
    used = set()
    for e in expected:
        cands = by_series.get((e["device_id"], e["input"]), [])
        hit = None
        for i, r in enumerate(cands):
            if (e["device_id"], e["input"], i) in used:
                continue
            if abs(r["time"] - e["t_ms"]) <= tolerance_ms:
                hit = (i, r)
                break
        if hit is None:
            missing.append(e)
            continue
        used.add((e["device_id"], e["input"], hit[0]))
        r = hit[1]
        testcase.assertEqual(r.get("name"), e["name"], "name tag of %r" % (r,))
        testcase.assertAlmostEqual(r["current"], e["current"], places=9,
                                   msg="current of %r, expected %r" % (r, e))
        testcase.assertEqual(str(r.get("unique_id")) != "", True)
    testcase.assertEqual(missing[:5], [], "%d of %d expected points missing"
                         % (len(missing), len(expected)))
    if exact_once:
        testcase.assertEqual(len(rows), len(used),
                             "%d stored points match no simulator read"
                             % (len(rows) - len(used)))
