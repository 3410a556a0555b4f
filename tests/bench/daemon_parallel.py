#!/usr/bin/env python3
"""Benchmark (a): 8 converters x 1 module at 9600 baud with the simulator's
wire emulation. Within a tick the 8 reads must start within a few ms of each
other; goal: the tick's cycle (tick start to the last answer) at most 1.2 x
the cycle with one converter. Figures come from the simulator's log.

    PM_BUILD_DIR=build python3 tests/bench/daemon_parallel.py [--seconds N]
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import common  # noqa: E402
import daemonlib  # noqa: E402
from sim import Sim  # noqa: E402

INTERVAL = 0.5


def run(n_buses, seconds):
    ctx = common.BenchContext()
    try:
        sim = Sim(ctx, [{"baud": 9600, "modules": [1]} for _ in range(n_buses)]).start()
        cfg = daemonlib.daemon_config(ctx, sim, interval=INTERVAL, timeout=0.3)
        d = daemonlib.Daemon(ctx, cfg).start()
        ticks = int(seconds / INTERVAL)
        common.wait_for(lambda: len(daemonlib.ok_reads(sim)) >= n_buses * (ticks + 2),
                        seconds * 3 + 10, interval=0.2, what="reads")
        if d.stop() != 0:
            raise SystemExit("powermeterd failed:\n" + d.stderr())
        per_tick = {}
        for bus, addr, t_ms, _ in daemonlib.ok_reads(sim):
            tick = int(t_ms // (INTERVAL * 1000))
            per_tick.setdefault(tick, []).append(t_ms)
        cycles, spreads = [], []
        for tick, times in sorted(per_tick.items())[1:-1]:  # whole ticks only
            if len(times) != n_buses:
                continue
            start = tick * INTERVAL * 1000
            cycles.append(max(times) - start)
            spreads.append(max(times) - min(times))
        return cycles, spreads
    finally:
        ctx.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    one, _ = run(1, args.seconds)
    eight, spread = run(8, args.seconds)
    c1, c8 = statistics.median(one), statistics.median(eight)
    print("one converter:    cycle median %.1f ms (max %.1f) over %d ticks"
          % (c1, max(one), len(one)))
    print("eight converters: cycle median %.1f ms (max %.1f) over %d ticks"
          % (c8, max(eight), len(eight)))
    print("answers within a tick spread: median %.1f ms, max %.1f ms"
          % (statistics.median(spread), max(spread)))
    ratio = c8 / c1
    print("ratio %.2f (goal <= 1.2): %s" % (ratio, "OK" if ratio <= 1.2 else "MISSED"))
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
