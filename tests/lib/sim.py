"""Drives hdhk-sim for the integration tests: writes its SIM.json into a
temporary directory of the test case, starts it, talks to its control socket
and reads its transaction log. See man/hdhk-sim.1 for what the simulator does.

    sim = Sim.single(self, n_modules=2)      # started, stopped at cleanup
    port = sim.path()                        # the pty link, e.g. /tmp/pm-sim-x/ttyUSB0
    Sim.default_raw(2, 0)                    # 2010: module 2, channel a
    sim.fault(0, 1, "badcrc", 1)             # next answer of module 1 has a bad CRC
    [e for e in sim.log() if e["result"] == "ok"]
"""
import copy
import json
import os
import select
import socket
import subprocess
import time

import common


class SimError(Exception):
    """The control socket answered 'error ...'."""


class Sim:
    READY_TIMEOUT = 10.0

    def __init__(self, testcase, buses, wire_time=True, log=True):
        """buses: list of dicts like SIM.json's buses, except "path" may be a
        bare name (e.g. "ttyUSB0", the default is ttyUSB<index>), placed in a
        tmpdir of the testcase; "modules" may list plain addresses and
        defaults to one module at address 1. Starts nothing yet."""
        self.testcase = testcase
        self.dir = common.tmpdir(testcase, "pm-sim-")
        self.buses = []
        for i, bus in enumerate(buses):
            bus = copy.deepcopy(bus)
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
               start=True, **kw):
        """One bus (ttyUSB0) with modules at addresses 1..n_modules (or the
        given module dicts), started unless start=False."""
        mods = modules if modules is not None else [{"address": a + 1} for a in range(n_modules)]
        sim = cls(testcase, [{"path": "ttyUSB0", "baud": baud, "framing": framing,
                              "modules": mods}], **kw)
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
        cfg = {"control": self.control_path, "buses": self.buses}
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

    def stderr(self):
        try:
            with open(self.stderr_path) as f:
                return f.read()
        except OSError:
            return ""

    def path(self, bus=0):
        """The slave link path of bus 'bus' (what a client opens)."""
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
        (n answers, default all until cleared) or stall (n seconds)."""
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
