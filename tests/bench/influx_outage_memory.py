#!/usr/bin/env python3
"""The InfluxDB writer's memory during a long outage (issue 14 item 7), run
by hand after a build:

    PM_BUILD_DIR=build python3 tests/bench/influx_outage_memory.py \
        [--seconds 3600] [--mode spool|bound|full|all] [--every 10]

lp_load feeds the sink (sink_influx.c: ring, batches, spool) with samples
of 64 modules x 16 inputs every 250 ms, 4096 points/s, as the pollers of a
large installation would, while the database is down (a loopback port
nobody listens on: every request and probe is refused). Its resident set
(VmRSS) is sampled every few seconds; at the end it gets SIGTERM and its
counters must account for every point (written + rejected + dropped +
what is left in the spool = pushed: nothing left in memory uncounted).

Modes:
  spool  the spool works, its bound (1 GiB) not reached within the run
  bound  the spool at its bound (16 MiB): the oldest segments go
  full   the spool cannot be written (RLIMIT_FSIZE 0, as a full disk):
         the points are kept in memory, up to the bound, then dropped

Reported per mode: RSS at 30 s (warm), at the end, the peak, and the
slope over the second half of the run (KiB per minute; flat is ~0).
"""
import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import common  # noqa: E402

LP_LOAD = os.path.join(common.BUILD, "tests", "lp_load")
DEVICES = 64
PACE_MS = 250
POINTS_PER_S = DEVICES * 16 * 1000 // PACE_MS


class _Case(unittest.TestCase):
    def runTest(self):
        pass


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope_kib_per_min(samples):
    """Least-squares slope of (seconds, KiB) pairs, in KiB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    sxx = sum((t - mx) ** 2 for t, _ in samples)
    sxy = sum((t - mx) * (v - my) for t, v in samples)
    return 60.0 * sxy / sxx if sxx else 0.0


def run(case, mode, seconds, every, out=sys.stdout):
    spool = common.tmpdir(case, "pm-outage-mem-")
    url = "http://127.0.0.1:%d" % common.free_port()   # down: refused
    spool_max = {"spool": 1 << 30, "bound": 16 << 20, "full": 1 << 30}[mode]
    ticks = int(seconds * 1000 / PACE_MS)
    argv = [LP_LOAD, "--url", url, "--api", "v2", "--org", "o", "--bucket", "b",
            "--token", "t", "--spool", spool, "--spool-max", str(spool_max),
            "--devices", str(DEVICES), "--ticks", str(ticks), "--pace-ms", str(PACE_MS),
            "--step-ms", str(PACE_MS), "--flush", "1", "--hold",
            "--start-ms", str((int(time.time()) - 7200) * 1000)]

    def limit():
        if mode == "full":
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    # stderr through a pipe: with RLIMIT_FSIZE 0 lp_load could not write a file
    err_path = os.path.join(common.tmpdir(case, "pm-outage-log-"), "stderr")
    err = open(err_path, "w")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, preexec_fn=limit)

    def copy_stderr():
        for line in proc.stderr:
            err.write(line)
            err.flush()
    copier = threading.Thread(target=copy_stderr, daemon=True)
    copier.start()
    case.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
    case.addCleanup(err.close)
    began = time.monotonic()
    samples = []
    last_tick = 0
    os.set_blocking(proc.stdout.fileno(), False)
    buf = ""
    while True:
        now = time.monotonic() - began
        try:
            chunk = proc.stdout.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            buf += chunk
            lines = buf.split("\n")
            buf = lines.pop()
            for line in lines:
                if line.startswith("tick "):
                    last_tick = int(line.split()[1])
        if proc.poll() is not None:
            raise AssertionError("lp_load exited early:\n" + open(err_path).read()[-2000:])
        if not samples or now - samples[-1][0] >= every:
            samples.append((now, rss_kib(proc.pid)))
            if len(samples) % max(1, int(60 / every)) == 0:
                print("  %s %5.0f s  RSS %6.1f MiB  tick %d" % (mode, now, samples[-1][1] / 1024,
                                                             last_tick), file=out, flush=True)
        if last_tick >= ticks - 1 or now > seconds + 60:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    os.set_blocking(proc.stdout.fileno(), True)
    rest = buf + proc.stdout.read()
    code = proc.wait(60)
    copier.join(10)
    result = None
    for line in rest.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
    with open(err_path) as f:
        stderr = f.read()
    if code != 0 or result is None:
        raise AssertionError("lp_load: exit %s\n%s" % (code, stderr[-2000:]))
    warm = [v for t, v in samples if t >= 30] or [samples[-1][1]]
    second_half = [(t, v) for t, v in samples if t >= seconds / 2]
    accounted = (result["written"] + result["rejected"] + result["dropped"] +
                 result["spool_points"])
    print("%-5s %5.0f s at %d points/s: RSS %.1f MiB at 30 s, %.1f MiB at the end, "
          "peak %.1f MiB; slope over the second half %+.1f KiB/min; "
          "pushed %d = written %d + rejected %d + dropped %d + left in the spool %d "
          "(%s; %d went through the spool)"
          % (mode, seconds, POINTS_PER_S, warm[0] / 1024, samples[-1][1] / 1024,
             max(v for _, v in samples) / 1024, slope_kib_per_min(second_half),
             result["pushed"], result["written"], result["rejected"], result["dropped"],
             result["spool_points"], "all accounted for" if accounted == result["pushed"]
             else "MISSING %d" % (result["pushed"] - accounted),
             result["spooled"]), file=out, flush=True)
    losses = [l for l in stderr.splitlines() if "dropped" in l or "lost" in l]
    for l in losses[-4:]:
        print("    log: " + l, file=out)
    return samples, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--mode", default="all")
    ap.add_argument("--every", type=float, default=5)
    a = ap.parse_args()
    common.require_tool(LP_LOAD)
    modes = ["spool", "bound", "full"] if a.mode == "all" else [a.mode]
    case = _Case()
    try:
        for m in modes:
            run(case, m, a.seconds, a.every)
    finally:
        case.doCleanups()


if __name__ == "__main__":
    main()
