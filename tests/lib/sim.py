"""Drives hdhk-sim for the integration tests: writes its SIM.json into a
temporary directory of the test case, starts it, talks to its control socket
and reads its transaction log. See man/hdhk-sim.1 for what the simulator does.

    sim = Sim.single(self, n_modules=2)      # started, stopped at cleanup
    port = sim.path()                        # the pty link, e.g. /tmp/pm-sim-x/ttyUSB0
    gw = Sim.single(self, listen="tcp://127.0.0.1:0")
    gw.path()                                # tcp://127.0.0.1:40123, the port chosen
    gw.kill(); gw.start()                    # a gateway power-cycled, same port
    Sim.default_raw(2, 0)                    # 2010: module 2, channel a
    sim.fault(0, 1, "badcrc", 1)             # next answer of module 1 has a bad CRC
    [e for e in sim.log() if e["result"] == "ok"]
    start = sim.profile(0, "*", "a", [[0, 0], [60, 1000], [60, 500]])
    profile_integral([[0, 0], [60, 1000]], start, t_a, t_b)   # raw * seconds
"""
import bisect
import copy
import json
import math
import os
import select
import socket
import subprocess
import time

import common


class SimError(Exception):
    """The control socket answered 'error ...'."""


# Load profiles (hdhk-sim(1), Generators: "profile"), computed here the way
# the simulator does: points are [seconds, raw] with non-decreasing
# seconds, counted from 'start' (Unix time); linear between two points, a
# step where two share a time (at the step's instant the later one counts),
# the first value before the first point, the last after the last point.
# With repeat, from the first point's time on the points start over every
# last - first seconds.

def _profile_check(points, repeat):
    if not points:
        raise ValueError("a profile needs at least one point")
    times = [float(t) for t, _ in points]
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError("profile times must not decrease: %r" % (times,))
    if repeat and times[-1] <= times[0]:
        raise ValueError("a repeating profile needs the last time after the first")
    return times, [float(v) for _, v in points]


def _profile_fold(times, x, repeat):
    """x (seconds since start) moved into the first cycle of a repeating
    profile, and how many whole cycles were cut off."""
    t0, period = times[0], times[-1] - times[0]
    if not repeat or x < t0:
        return x, 0
    cycles = math.floor((x - t0) / period)
    x = t0 + (x - t0 - cycles * period)
    if x >= t0 + period:     # rounding
        x, cycles = t0, cycles + 1
    return x, cycles


def _profile_at(times, values, x):
    i = bisect.bisect_right(times, x)    # points with t <= x
    if i == 0:
        return values[0]
    if i == len(times):
        return values[-1]
    ta, tb, va, vb = times[i - 1], times[i], values[i - 1], values[i]
    return va + (vb - va) * (x - ta) / (tb - ta)


def profile_value(points, start, t, repeat=False):
    """The profile's exact value (raw, a float) at Unix time t."""
    times, values = _profile_check(points, repeat)
    x, _ = _profile_fold(times, t - start, repeat)
    return _profile_at(times, values, x)


def profile_raw(points, start, t, repeat=False):
    """What the register reads at Unix time t: the value rounded half up,
    clamped to 0..65535."""
    v = profile_value(points, start, t, repeat)
    return int(min(max(math.floor(v + 0.5), 0), 65535))


def _profile_cumulative(times, values, x, repeat):
    """The integral of the profile from its first point's time to x
    (negative for x before it), raw * seconds."""
    if x < times[0]:
        return values[0] * (x - times[0])
    x, cycles = _profile_fold(times, x, repeat)
    total = 0.0
    for i in range(1, len(times)):
        ta, tb = times[i - 1], times[i]
        if x <= ta:
            break
        end = min(x, tb)
        if end > ta:
            vend = values[i - 1] + (values[i] - values[i - 1]) * (end - ta) / (tb - ta)
            total += (end - ta) * (values[i - 1] + vend) / 2
    if x > times[-1]:
        total += values[-1] * (x - times[-1])
    if cycles:
        total += cycles * _profile_cumulative(times, values, times[-1], False)
    return total


def profile_integral(points, start, t_a, t_b, repeat=False):
    """The exact integral of the profile's value over Unix times [t_a, t_b]
    in raw * seconds (divide by 100 for ampere-seconds of a current
    channel); negative when t_b < t_a."""
    times, values = _profile_check(points, repeat)
    return (_profile_cumulative(times, values, t_b - start, repeat) -
            _profile_cumulative(times, values, t_a - start, repeat))


class Sim:
    READY_TIMEOUT = 10.0

    def __init__(self, testcase, buses, wire_time=True, log=True):
        """buses: list of dicts like SIM.json's buses, except "path" may be a
        bare name (e.g. "ttyUSB0", the default is ttyUSB<index>), placed in a
        tmpdir of the testcase; "modules" may list plain addresses and
        defaults to one module at address 1. A bus with "listen" (a gateway,
        e.g. "rtu+tcp://127.0.0.1:0") has no path until started: then its
        "path" is the URL it listens on, the port chosen filled in. Starts
        nothing yet."""
        self.testcase = testcase
        self.dir = common.tmpdir(testcase, "pm-sim-")
        self.buses = []
        for i, bus in enumerate(buses):
            bus = copy.deepcopy(bus)
            if "listen" not in bus:
                path = bus.get("path", "ttyUSB%d" % i)
                bus["path"] = path if os.path.isabs(path) else os.path.join(self.dir, path)
            mods = bus.get("modules", [{"address": 1}])
            bus["modules"] = [{"address": m} if isinstance(m, int) else m for m in mods]
            if not wire_time:
                bus["wire_time"] = False
            self.buses.append(bus)
        self.log_path = os.path.join(self.dir, "tx.jsonl") if log else None
        self.control_path = os.path.join(self.dir, "ctl.sock")
        self.config_path = os.path.join(self.dir, "sim.json")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.proc = None
        self.returncode = None

    @classmethod
    def single(cls, testcase, n_modules=1, baud=9600, framing="N81", modules=None,
               start=True, listen=None, **kw):
        """One bus (ttyUSB0, or a gateway listening on 'listen') with
        modules at addresses 1..n_modules (or the given module dicts),
        started unless start=False."""
        mods = modules if modules is not None else [{"address": a + 1} for a in range(n_modules)]
        where = {"listen": listen} if listen else {"path": "ttyUSB0"}
        sim = cls(testcase, [dict(where, baud=baud, framing=framing, modules=mods)], **kw)
        if start:
            sim.start()
        return sim

    @staticmethod
    def default_raw(addr, channel):
        """What channel (0..15) of the module at addr reads when its scenario
        does not say otherwise."""
        return (addr * 1000 + (channel + 1) * 10) & 0xFFFF

    @staticmethod
    def wire_time(request_bytes, response_bytes, baud=9600, framing="N81"):
        """Seconds from a request's first byte to its complete answer, as
        hdhk-sim emulates it (hdhk-sim(1), WIRE TIME): (request + response
        + 3.5) characters of 1 start, 8 data, parity and stop bits."""
        bits = 1 + 8 + (1 if framing[0] in "EO" else 0) + int(framing[2])
        return (request_bytes + response_bytes + 3.5) * bits / baud

    @staticmethod
    def default_raws(addr):
        return [Sim.default_raw(addr, ch) for ch in range(16)]

    def config(self):
        # a gateway started before listens on its port again
        buses = [dict(b, listen=b["path"]) if "listen" in b and "path" in b else b
                 for b in self.buses]
        buses = [{k: v for k, v in b.items() if not (k == "path" and "listen" in b)}
                 for b in buses]
        cfg = {"control": self.control_path, "buses": buses}
        if self.log_path:
            cfg["log"] = self.log_path
        return cfg

    def start(self):
        """Launches hdhk-sim and waits for its 'ready' line (the links exist
        then). Stopping is registered as a cleanup of the test case."""
        if self.proc is not None:
            return self
        with open(self.config_path, "w") as f:
            json.dump(self.config(), f, indent=1)
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([common.HDHK_SIM, "-c", self.config_path],
                                         stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)
        self.testcase.addCleanup(self.stop)
        deadline = time.monotonic() + self.READY_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self._fail("not ready after %.0fs" % self.READY_TIMEOUT)
            chunk = os.read(self.proc.stdout.fileno(), 64)
            if not chunk:
                self._fail("exited before it was ready")
            line += chunk
        if line.strip() != b"ready":
            self._fail("said %r instead of ready" % line)
        for bus, st in zip(self.buses, self.stats()["buses"]):
            if "listen" in bus:
                bus["path"] = st["path"]
        return self

    def _fail(self, what):
        try:
            self.stop()
        except AssertionError:
            pass
        raise AssertionError("hdhk-sim %s (status %s): %s" % (what, self.returncode, self.stderr()))

    def stop(self):
        """SIGTERM, then waits. Raises AssertionError unless the simulator
        exits cleanly (status 0, no sanitizer report): so every test that
        uses it also checks it for leaks and undefined behaviour."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.returncode = self.proc.returncode
        self.proc = None
        err = self.stderr()
        if self.returncode != 0 or "runtime error:" in err or "Sanitizer" in err:
            raise AssertionError("hdhk-sim exited with %s: %s" % (self.returncode, err))
        return self.returncode

    def kill(self):
        """SIGKILL, as a gateway losing power: its connections vanish
        without a word from it. start() brings it back on the same ports."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def stderr(self):
        try:
            with open(self.stderr_path) as f:
                return f.read()
        except OSError:
            return ""

    def path(self, bus=0):
        """The slave link path of bus 'bus' (what a client opens), or a
        started gateway's URL."""
        return self.buses[bus]["path"]

    def command(self, line, timeout=15.0):
        """Sends one control command; returns the answer line (without the
        newline). Raises SimError when the simulator answers 'error ...'."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.control_path)
            s.sendall(line.encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        answer = answer.decode().rstrip("\n")
        if not answer.startswith("ok"):
            raise SimError("%s: %s" % (line, answer))
        return answer

    def fault(self, bus, addr, kind, n=None):
        """kind: noanswer, badcrc, truncate, garbage, wrongaddr, exception
        (n answers, default all until cleared), stall (n seconds) or noisy
        (n: "P" or "P SEED", each answer spoiled with probability P)."""
        return self.command("fault %s %s %s%s" % (bus, addr, kind, "" if n is None else " %s" % n))

    def clear(self, bus=None, addr=None):
        args = [str(a) for a in (bus, addr) if a is not None]
        return self.command(" ".join(["clear"] + args))

    def disconnect(self, bus, seconds):
        """Unplugs bus 'bus' for 'seconds': returns once the link is gone."""
        return self.command("disconnect %s %s" % (bus, seconds))

    def set(self, bus, addr, channel, raw):
        """Channel 0..15 or a..p of the module now reads constant raw."""
        return self.command("set %s %s %s %d" % (bus, addr, channel, raw))

    def setfreq(self, bus, addr, channel, raw):
        return self.command("setfreq %s %s %s %d" % (bus, addr, channel, raw))

    def setreg(self, bus, addr, reg, value):
        return self.command("setreg %s %s %d %d" % (bus, addr, reg, value))

    def profile(self, bus, addr, channel, points, start=None, repeat=False, frequency=False):
        """Channel 0..15 or a..p of the module (addr "*": every module on
        the bus) plays the load profile 'points' ([[seconds, raw], ...])
        from Unix time 'start' (default: now, as the simulator sees it).
        frequency=True sets the channel's frequency register instead.
        Returns the start the simulator used, for profile_value() and
        profile_integral()."""
        spec = {"points": [list(p) for p in points], "repeat": bool(repeat)}
        if start is not None:
            spec["start"] = start
        answer = self.command("%s %s %s %s %s" % ("profilefreq" if frequency else "profile",
                                                bus, addr, channel,
                                                json.dumps(spec, separators=(",", ":"))))
        return float(answer.rsplit(" ", 1)[1])

    def stats(self):
        return json.loads(self.command("stats")[3:])

    def log(self):
        """The transaction log so far: one dict per request handled."""
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(l) for l in f if l.endswith("\n")]

    def wait_log(self, predicate=lambda e: True, count=1, timeout=10.0):
        """Waits until 'count' log entries satisfy predicate; returns them."""
        def enough():
            found = [e for e in self.log() if predicate(e)]
            return found if len(found) >= count else None
        return common.wait_for(enough, timeout, what="%d sim log entries" % count)
