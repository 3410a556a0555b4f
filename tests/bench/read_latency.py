#!/usr/bin/env python3
"""Benchmark (not a test): how long one module read takes against hdhk-sim
with wire emulation, as a ratio to the frames' computed wire time, at 9600
and 115200 baud:

  in-process    pm_module_read() in a loop (tests/bench/read-bench), median
  process       a whole `powermeter read` (what a Zabbix check costs), median
  mbpoll        `mbpoll -1` reading the same 16 registers, median

Wire time, as the simulator computes it: (request + response + 3.5)
characters of 10 bits (8N1): 8 + 37 + 3.5 = 48.5 characters for the 16
current registers. Goals (issue 2): in-process <= 1.05x at 9600 baud,
whole process <= 1.3x.

usage: read_latency.py [BUILD_DIR]   (default: $PM_BUILD_DIR or ./build)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.environ.get("PM_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
SIM = os.path.join(BUILD, "src", "sim", "hdhk-sim")
POWERMETER = os.path.join(BUILD, "src", "cli", "powermeter")
READ_BENCH = os.path.join(BUILD, "tests", "bench", "read-bench")

REQUEST, RESPONSE, SILENCE = 8, 3 + 2 * 16 + 2, 3.5
BAUDS = (9600, 115200)
IN_PROCESS_READS = {9600: 60, 115200: 300}
PROCESS_READS = {9600: 30, 115200: 60}


def wire_ms(baud):
    return (REQUEST + RESPONSE + SILENCE) * 10 / baud * 1000


def start_sim(tmp):
    cfg = {"buses": [{"path": os.path.join(tmp, "tty%d" % b), "baud": b, "wire_time": True,
                      "modules": [{"address": 1}]} for b in BAUDS]}
    path = os.path.join(tmp, "sim.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    proc = subprocess.Popen([SIM, "-c", path], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        sys.exit("hdhk-sim did not start")
    return proc


def in_process(port, baud):
    out = subprocess.run([READ_BENCH, port, str(baud), str(IN_PROCESS_READS[baud])],
                         capture_output=True, text=True, check=True).stdout
    return statistics.median(int(line.split()[0]) for line in out.splitlines()) / 1000


def whole_process(argv, n):
    """Median wall time of running argv n times (posix_spawn + waitpid)."""
    times = []
    with open(os.devnull, "wb") as null:
        for _ in range(n):
            time.sleep(0.01)
            t0 = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, null.fileno(), 1)])
            _, status = os.waitpid(pid, 0)
            times.append((time.perf_counter() - t0) * 1000)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit("%s failed" % " ".join(argv))
    return statistics.median(times)


def main():
    for tool in (SIM, POWERMETER, READ_BENCH):
        if not os.access(tool, os.X_OK):
            sys.exit("missing %s (build first)" % tool)
    mbpoll = shutil.which("mbpoll")
    tmp = tempfile.mkdtemp(prefix="pm-bench-")
    sim = start_sim(tmp)
    rows = []
    try:
        for baud in BAUDS:
            port = os.path.join(tmp, "tty%d" % baud)
            config = os.path.join(tmp, "powermeter%d.json" % baud)
            with open(config, "w") as f:
                json.dump([{"id": 1, "port": port, "baudrate": str(baud), "timeout": 1,
                            "inputs": [{"input": c, "ratio": 0.01, "name": "Input " + c}
                                       for c in "abcdefghijklmnop"]}], f)
            wire = wire_ms(baud)
            inproc = in_process(port, baud)
            proc = whole_process([POWERMETER, "read", "-c", config], PROCESS_READS[baud])
            mb = None
            if mbpoll:
                mb = whole_process([mbpoll, "-m", "rtu", "-a", "1", "-b", str(baud), "-d", "8",
                                    "-s", "1", "-P", "none", "-t", "4", "-0", "-r", "8",
                                    "-c", "16", "-1", "-o", "1", port], PROCESS_READS[baud])
            rows.append((baud, wire, inproc, proc, mb))
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(tmp, True)

    print("one module read (16 registers), median; ratio to the wire time")
    print("%7s %9s %20s %22s %20s" % ("baud", "wire ms", "in-process", "powermeter read",
                                      "mbpoll"))
    for baud, wire, inproc, proc, mb in rows:
        cell = lambda ms: "%7.2f ms %5.2fx" % (ms, ms / wire) if ms is not None else "n/a"
        print("%7d %9.2f %20s %22s %20s" % (baud, wire, cell(inproc), cell(proc), cell(mb)))
    ok = rows[0][2] / rows[0][1] <= 1.05 and rows[0][3] / rows[0][1] <= 1.3
    print("goals at 9600 baud (in-process <= 1.05x, process <= 1.3x): %s"
          % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
