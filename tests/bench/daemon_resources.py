#!/usr/bin/env python3
"""Benchmark (b): peak RSS (VmHWM) and CPU time (utime + stime) of
powermeterd polling 8 converters x 4 modules at 1 s for 60 s, writing to
VictoriaMetrics (when installed) and the snapshot. Goals: <= 8 MiB and
<= 1 % of one core. Also runs tests/bench/lib-floor, the daemon's libraries
alone (linked as the daemon is, libcurl initialised): the part of the peak
RSS that no daemon on those libraries can go below.

    PM_BUILD_DIR=build python3 tests/bench/daemon_resources.py [--seconds N]
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import common  # noqa: E402
import daemonlib  # noqa: E402
from sim import Sim  # noqa: E402


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick   # utime + stime


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def smaps_rollup(pid):
    """The kB figures of /proc/PID/smaps_rollup. VmHWM also counts the
    resident pages of the shared libraries (Debian's libcurl alone brings
    ~35 of them), so the anonymous part is printed apart: that is the
    daemon's own memory."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    return out


def lib_floor():
    """{"VmHWM": kB, "RssAnon": kB} of tests/bench/lib-floor."""
    exe = os.path.join(common.BUILD, "tests", "bench", "lib-floor")
    p = common.run([exe], timeout=30)
    if p.returncode:
        raise SystemExit("%s failed:\n%s" % (exe, p.stderr))
    return {k: int(v) for k, v in (l.split() for l in p.stdout.splitlines())}


def on_off(runs, what):
    """Prints the runs of 'what' on and off (runs[True], runs[False]: dicts
    with cpu, hwm, anon) and returns the differences on - off: (CPU % of a
    core, the largest run-to-run spread of one kind, anonymous KiB, peak
    RSS KiB)."""
    def mean(xs):
        return sum(xs) / len(xs)
    for on in (True, False):
        cpus = [r["cpu"] for r in runs[on]]
        print("  %s %s: CPU %.3f %% of one core (runs %s), peak RSS %.2f MiB, "
              "anonymous %.0f KiB" % (what, "on " if on else "off", mean(cpus),
                                      " ".join("%.3f" % c for c in cpus),
                                      mean([r["hwm"] for r in runs[on]]) / 1024,
                                      mean([r["anon"] for r in runs[on]])))
    dcpu = mean([r["cpu"] for r in runs[True]]) - mean([r["cpu"] for r in runs[False]])
    noise = max(max(r["cpu"] for r in runs[on]) - min(r["cpu"] for r in runs[on])
                for on in (True, False))
    dmem = mean([r["anon"] for r in runs[True]]) - mean([r["anon"] for r in runs[False]])
    dhwm = mean([r["hwm"] for r in runs[True]]) - mean([r["hwm"] for r in runs[False]])
    return dcpu, noise, dmem, dhwm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-db", action="store_true")
    args = ap.parse_args()
    ctx = common.BenchContext()
    try:
        sim = Sim(ctx, [{"baud": 9600, "modules": [1, 2, 3, 4]} for _ in range(8)]).start()
        influx = None
        if not args.no_db and shutil.which("victoria-metrics"):
            from servers import Victoria
            vm = Victoria(ctx)
            influx = {"url": vm.url, "org": "bench", "bucket": "powermeter", "token": "x"}
        cfg = daemonlib.daemon_config(ctx, sim, interval=1.0, timeout=0.3,
                                      inputs="abcdefghijklmnop", influx=influx)
        d = daemonlib.Daemon(ctx, cfg).start()
        time.sleep(1.0)
        cpu0, t0 = proc_stat(d.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = proc_stat(d.pid), time.monotonic()
        hwm = vm_hwm_kib(d.pid)
        roll = smaps_rollup(d.pid)
        with open("/proc/%d/maps" % d.pid) as f:
            libs = {l.split()[-1] for l in f if ".so" in l}
        reads = len(daemonlib.ok_reads(sim))
        if d.stop() != 0:
            raise SystemExit("powermeterd failed:\n" + d.stderr())
        cpu = (cpu1 - cpu0) / (t1 - t0) * 100
        print("8 converters x 4 modules x 16 inputs at 1 s for %.0f s%s"
              % (t1 - t0, ", writing to VictoriaMetrics" if influx else ""))
        print("reads answered: %d (%.1f per second)" % (reads, reads / (t1 - t0 + 1)))
        print("peak RSS (VmHWM): %.2f MiB (goal <= 8): %s"
              % (hwm / 1024, "OK" if hwm <= 8 * 1024 else "MISSED"))
        print("  of which anonymous memory (heap, stacks): %.2f MiB; file pages "
              "(the binary and its %d libraries): %.2f MiB; Pss %.2f MiB"
              % (roll.get("Anonymous", 0) / 1024, len(libs),
                 (roll.get("Rss", 0) - roll.get("Anonymous", 0)) / 1024,
                 roll.get("Pss", 0) / 1024))
        floor = lib_floor()
        print("  the libraries alone (tests/bench/lib-floor): peak RSS %.2f MiB, "
              "anonymous %.2f MiB; powermeterd adds %.2f MiB to the peak"
              % (floor["VmHWM"] / 1024, floor["RssAnon"] / 1024,
                 (hwm - floor["VmHWM"]) / 1024))
        print("CPU: %.2f %% of one core (goal <= 1): %s"
              % (cpu, "OK" if cpu <= 1.0 else "MISSED"))
        return 0 if hwm <= 8 * 1024 and cpu <= 1.0 else 1
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
