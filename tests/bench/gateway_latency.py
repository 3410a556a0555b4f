#!/usr/bin/env python3
"""Benchmark (not a test): how long one module read takes through an
Ethernet gateway on loopback — Modbus TCP ("tcp://") and RTU over TCP
("rtu+tcp://") — against the serial path (a pseudo-terminal), all served by
hdhk-sim with wire-time emulation, at 9600 and 115200 baud: median and p99
of pm_module_read() in a loop (tests/bench/read-bench, as read_latency.py
does), and the ratio of the median to the frames' wire time.

Wire time, as the simulator computes it: (request + response + 3.5)
characters of 10 bits (8N1) on the RS-485 side, the same for the three
paths (behind a gateway the RTU frames are what travels on the line):
8 + 37 + 3.5 = 48.5 characters for the 16 current registers. What a gateway
adds over the pty is the TCP round trip on loopback and the transport's
framing; over rtu+tcp also the 3.5-character pause kept before a request
that follows an answer (never in this loop: read-bench idles 5 ms between
reads, longer than the pause). A last table repeats the loop without wire
time: what is left is the path's own cost (syscalls, loopback TCP, the
simulator's thread wake-ups).

usage: gateway_latency.py [BUILD_DIR]   (default: $PM_BUILD_DIR or ./build)
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.environ.get("PM_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
SIM = os.path.join(BUILD, "src", "sim", "hdhk-sim")
READ_BENCH = os.path.join(BUILD, "tests", "bench", "read-bench")

REQUEST, RESPONSE, SILENCE = 8, 3 + 2 * 16 + 2, 3.5
BAUDS = (9600, 115200)
KINDS = ("pty", "tcp", "rtu+tcp")
READS = {9600: 200, 115200: 1000, 0: 2000}   # 0: no wire time (at 115200)


def wire_ms(baud):
    return (REQUEST + RESPONSE + SILENCE) * 10 / baud * 1000


def start_sim(tmp):
    """One hdhk-sim with a bus of each kind at each baud rate; returns the
    process and {(kind, baud): the port to give read-bench}."""
    buses, keys = [], []
    for baud in BAUDS + (0,):
        for kind in KINDS:
            bus = {"baud": baud or 115200, "wire_time": baud != 0,
                   "modules": [{"address": 1}]}
            if kind == "pty":
                bus["path"] = os.path.join(tmp, "tty%d" % baud)
            else:
                bus["listen"] = "%s://127.0.0.1:0" % kind
            buses.append(bus)
            keys.append((kind, baud))
    path = os.path.join(tmp, "sim.json")
    ctl = os.path.join(tmp, "ctl.sock")
    with open(path, "w") as f:
        json.dump({"control": ctl, "buses": buses}, f)
    proc = subprocess.Popen([SIM, "-c", path], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        sys.exit("hdhk-sim did not start")
    # the ports chosen: the buses' paths in the control socket's stats
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(ctl)
        s.sendall(b"stats\n")
        answer = b""
        while not answer.endswith(b"\n"):
            answer += s.recv(65536)
    stats = json.loads(answer.decode()[3:])
    return proc, {k: b["path"] for k, b in zip(keys, stats["buses"])}


def times_ms(port, baud, n, env):
    out = subprocess.run([READ_BENCH, port, str(baud), str(n)], capture_output=True,
                         text=True, check=True, env=env).stdout
    return sorted(int(line.split()[0]) / 1000 for line in out.splitlines())


def p99(values):
    return values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def main():
    for tool in (SIM, READ_BENCH):
        if not os.access(tool, os.X_OK):
            sys.exit("missing %s (build first)" % tool)
    tmp = tempfile.mkdtemp(prefix="pm-bench-gw-")
    env = dict(os.environ, RUNTIME_DIRECTORY=os.path.join(tmp, "run"))
    sim, ports = start_sim(tmp)
    rows = []
    try:
        for baud in BAUDS + (0,):
            for kind in KINDS:
                t = times_ms(ports[(kind, baud)], baud or 115200, READS[baud], env)
                rows.append((baud, kind, len(t), statistics.median(t), p99(t)))
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(tmp, True)

    print("one module read (16 registers) through each path, loopback, wire time on")
    print("%7s %9s %-8s %6s %10s %10s %8s %12s" % ("baud", "wire ms", "path", "reads",
                                                  "median ms", "p99 ms", "x wire",
                                                  "vs pty (med)"))
    pty = {baud: med for baud, kind, _, med, _ in rows if kind == "pty"}
    for baud, kind, n, med, tail in rows:
        if baud:
            wire = wire_ms(baud)
            print("%7d %9.2f %-8s %6d %10.2f %10.2f %7.2fx %+11.2f" % (
                baud, wire, kind, n, med, tail, med / wire, med - pty[baud]))
    print()
    print("the same without wire time: the path's own cost")
    print("%-8s %6s %10s %10s %12s" % ("path", "reads", "median ms", "p99 ms", "vs pty (med)"))
    for baud, kind, n, med, tail in rows:
        if not baud:
            print("%-8s %6d %10.3f %10.3f %+12.3f" % (kind, n, med, tail, med - pty[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
