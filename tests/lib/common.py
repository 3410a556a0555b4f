"""Shared helpers for the integration tests: where the binaries are, free
loopback ports, temporary directories, tools that must exist in CI, and a
unittest runner that speaks TAP (so meson counts every case).

A test whose tool is missing is skipped (exit 77) on a developer's machine,
but fails when CI=true: CI never skips silently.
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("PM_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("PM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

POWERMETER = os.path.join(BUILD, "src", "cli", "powermeter")
POWERMETERD = os.path.join(BUILD, "src", "daemon", "powermeterd")
HDHK_SIM = os.path.join(BUILD, "src", "sim", "hdhk-sim")
LIBPOWERMETER = os.path.join(BUILD, "src", "lib", "libpowermeter.so")


def stored(amps):
    """What the line protocol carries for a measured value: raw x ratio
    rounded to 15 significant digits (format.h, pm_fmt_measured)."""
    return float("%.15g" % amps)


# Servers' ports come from below the kernel's ephemeral range (32768 and
# up, /proc/sys/net/ipv4/ip_local_port_range): a port the kernel handed out
# there may be taken by any client's connection (the daemon's to a database
# of another test running in parallel) before the server binds it, or
# while it is stopped for an outage.
PORT_RANGE = (20000, 32000)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now, outside
    the ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(*PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in %d-%d" % PORT_RANGE)


def tmpdir(testcase, prefix="pm-"):
    """A temporary directory removed when 'testcase' finishes."""
    d = tempfile.mkdtemp(prefix=prefix)
    testcase.addCleanup(shutil.rmtree, d, True)
    return d


def require_tool(path_or_name):
    """The tool's full path; skips the test (or fails in CI) when missing."""
    found = path_or_name if os.path.isabs(path_or_name) else shutil.which(path_or_name)
    if not found or not os.access(found, os.X_OK):
        if IN_CI:
            raise AssertionError("required tool missing in CI: %s" % path_or_name)
        raise unittest.SkipTest("tool not installed: %s" % path_or_name)
    return found


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls predicate() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def run(args, timeout=30, check=False, **kw):
    """subprocess.run with text output captured."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          check=check, **kw)


class _TapResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.n = 0

    def _line(self, ok, test, extra=""):
        self.n += 1
        name = test.id().split(".", 1)[-1]
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, name, extra), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        self._diag(self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test)
        self._diag(self.errors[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, " # SKIP %s" % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(False, test, " # unexpected success")

    @staticmethod
    def _diag(text):
        for line in text.rstrip().splitlines():
            print("# " + line, flush=True)


def main():
    """Runs the calling module's unittest cases, reporting in TAP."""
    module = sys.modules["__main__"]
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    if len(sys.argv) > 1:
        suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1:], module)
    print("1..%d" % suite.countTestCases(), flush=True)
    runner = unittest.TextTestRunner(stream=open(os.devnull, "w"), resultclass=_TapResult,
                                     verbosity=0)
    result = runner.run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


class BenchContext:
    """Just enough of a TestCase for the test helpers (Sim, Daemon, tmpdir)
    in a benchmark script: cleanups, close() runs them; fail and
    assertEqual raise AssertionError."""

    def __init__(self):
        self.cleanups = []

    def addCleanup(self, fn, *a, **kw):
        self.cleanups.append((fn, a, kw))

    def close(self):
        while self.cleanups:
            fn, a, kw = self.cleanups.pop()
            try:
                fn(*a, **kw)
            except Exception as e:  # keep cleaning
                print("cleanup: %s" % e, file=sys.stderr)

    def fail(self, msg=None):
        raise AssertionError(msg)

    def assertEqual(self, a, b, msg=None):
        if a != b:
            raise AssertionError(msg or "%r != %r" % (a, b))
