#!/usr/bin/env python3
"""Benchmark (not a test): how long `powermeter scan` takes over the whole
address range 1-247 at one baud rate, against hdhk-sim with wire-time
emulation and modules at 3 addresses, at 9600 and 115200 baud. Goal
(issue 12): <= 15 s at 9600 baud.

Each probe reads register 3 alone and waits for (request + answer + 3.5)
characters on the wire plus a 25 ms margin for USB converters, then the
bus keeps its 3.5-character silence; an address that answers is asked
for registers 0..7 too. What a silent address costs is printed beside
the measurement: that is the scan's floor.

usage: scan_bench.py [BUILD_DIR]   (default: $PM_BUILD_DIR or ./build)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.environ.get("PM_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
SIM = os.path.join(BUILD, "src", "sim", "hdhk-sim")
POWERMETER = os.path.join(BUILD, "src", "cli", "powermeter")

BAUDS = (9600, 115200)
MODULES = (1, 100, 247)
GOAL_S = {9600: 15.0}
# cmd_scan.c's probe: 8-byte request, 7-byte answer, the module's
# 3.5-character turnaround, a 25 ms margin; then the inter-frame silence
# (3.5 characters, 1.75 ms above 19200 baud)
REQUEST, ANSWER, TURNAROUND, MARGIN_S = 8, 7, 3.5, 0.025


def silent_probe_s(baud):
    char = 10 / baud
    silence = 0.00175 if baud > 19200 else 3.5 * char
    return (REQUEST + ANSWER + TURNAROUND) * char + MARGIN_S + silence


def start_sim(tmp):
    cfg = {"buses": [{"path": os.path.join(tmp, "tty%d" % b), "baud": b, "wire_time": True,
                      "modules": [{"address": a} for a in MODULES]} for b in BAUDS]}
    path = os.path.join(tmp, "sim.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    proc = subprocess.Popen([SIM, "-c", path], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        sys.exit("hdhk-sim did not start")
    return proc


def scan(port, baud):
    t0 = time.monotonic()
    r = subprocess.run([POWERMETER, "scan", "--port", port, "--baud", str(baud)],
                       capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    found = [int(l.split()[1]) for l in r.stdout.splitlines()[1:]]
    if r.returncode != 0 or found != list(MODULES):
        sys.exit("scan at %d baud: status %d, found %s\n%s" % (baud, r.returncode, found,
                                                                 r.stderr))
    return elapsed


def main():
    for exe in (SIM, POWERMETER):
        if not os.access(exe, os.X_OK):
            sys.exit("not built: %s" % exe)
    tmp = tempfile.mkdtemp(prefix="pm-scan-bench-")
    sim = start_sim(tmp)
    try:
        print("powermeter scan, addresses 1-247, modules at %s, hdhk-sim with wire time"
              % ", ".join(map(str, MODULES)))
        print("%8s  %9s  %-29s %s" % ("baud", "scan", "floor (silent probes)", "goal"))
        for baud in BAUDS:
            took = scan(os.path.join(tmp, "tty%d" % baud), baud)
            floor = 247 * silent_probe_s(baud)
            goal = GOAL_S.get(baud)
            verdict = ("<= %.0f s: %s" % (goal, "met" if took <= goal else "MISSED")
                       if goal else "-")
            print("%8d  %7.2f s  %7.2f s (%4.1f ms/probe)  %s"
                  % (baud, took, floor, 1000 * floor / 247, verdict))
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
