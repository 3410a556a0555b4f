#!/usr/bin/env python3
"""Benchmark (issue 13): powermeterd's memory while its MQTT broker is away.
32 modules (8 simulated buses x 4, 16 inputs each, 1 s interval) publish to
an mqtt:// URL where nothing listens (with --broker-first: a broker that
takes the connection and is then SIGKILLed); every --sample seconds VmRSS
and smaps_rollup's Anonymous and Private_Dirty are read, for --seconds.
Goal: flat — after a warm-up (the first 3 minutes, or half of a shorter
run) VmRSS and anonymous memory grow less than 64 KiB, and the least-squares
line through the samples rises less than 64 KiB across the run; the open
descriptors and threads do not grow (a sample may catch the socket of a
connection attempt: the fewest at the start and at the end are compared).
The daemon keeps only the newest state of each circuit while the broker is
away (sink_mqtt.c). The warm-up covers the first two saves of the energy
counters (every 60 s): at the second the snapshot gains the energy fields
and passes 128 KiB, and its buffer moves to a mapping of its own (about
+136 KiB at 2 minutes: pm_snapshot_write, not the MQTT sink).

At the end a broker is started on that port: the daemon must connect (its
back-off is at most 10 s) and every circuit's state must reach a subscriber
within 15 s; printed beside it, how many of the first states were stamped
before the first of them arrived (the newest states kept while the broker
was away, sent at once on connection). Also printed: the daemon's CPU over
the run (and its mqtt thread's), and the reads the pollers made against
the ticks (polling goes on while the broker is away).

    tests/bench/mqtt_broker_away.py BUILD [--seconds 3600] [--sample 10]
        [--broker-first] [--ledger]
"""
import argparse
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.environ.get(
        "PM_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples")
    ap.add_argument("--buses", type=int, default=8)
    ap.add_argument("--per-bus", type=int, default=4)
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--broker-first", action="store_true",
                    help="connect to a broker first, then SIGKILL it")
    ap.add_argument("--ledger", action="store_true", help="keep the billing ledger on")
    return ap.parse_args()


ARGS = parse_args()
os.environ["PM_BUILD_DIR"] = os.path.abspath(ARGS.build)   # before common.py reads it
sys.path.insert(0, HERE)

import mqttbench as mb  # noqa: E402
import common  # noqa: E402
import daemonlib  # noqa: E402
from sim import Sim  # noqa: E402

GROWTH_KIB = 64
RECONNECT_S = 15


def at(samples, t):
    """The first sample at or after t seconds (the last one if none)."""
    for s in samples:
        if s[0] >= t:
            return s
    return samples[-1]


def main():
    args = ARGS
    mb.require_tools()
    n_modules = args.buses * args.per_bus
    n_circuits = n_modules * 16
    ctx = common.BenchContext()
    rows, ok_all = [], True
    try:
        sim = Sim(ctx, mb.sim_buses(args.buses, args.per_bus, args.baud)).start()
        broker = mb.Broker(ctx)         # its port, free; nothing listens yet
        if args.broker_first:
            broker.start()
        cfg = mb.mqtt_config(ctx, sim, broker.url, qos=1, interval=1.0, ledger=args.ledger)
        d = daemonlib.Daemon(ctx, cfg).start()
        if args.broker_first:
            d.wait_stderr(r"mqtt: connected to the broker", 15)
            time.sleep(3)
            broker.kill()
            d.wait_stderr(r"mqtt: lost the broker", 15)
            how = "a broker that took the connection, then SIGKILLed"
        else:
            d.wait_stderr(r"mqtt: cannot connect to the broker", 15)
            how = "nothing listening on its port"
        print("%d modules (%d buses x %d, %d baud), %d circuits at 1 s; mqtt at %s: %s; "
              "ledger %s" % (n_modules, args.buses, args.per_bus, args.baud, n_circuits,
                             broker.url, how, "on" if args.ledger else "off"), flush=True)
        pid = d.pid
        mqtt_tid = mb.thread_id(pid, "mqtt")
        wall0 = time.time()
        t0 = time.monotonic()
        cpu0 = mb.cpu_seconds(pid)
        tcpu0 = mb.cpu_seconds(pid, mqtt_tid) if mqtt_tid else 0.0
        log_lines0 = len(d.stderr().splitlines())
        samples = []
        next_t = t0
        print("%7s %9s %10s %14s %9s %5s %7s" % ("t s", "VmRSS", "Anonymous", "Private_Dirty",
                                                 "Pss", "fds", "threads"), flush=True)
        while True:
            now = time.monotonic()
            if not d.running():
                raise AssertionError("powermeterd exited:\n" + d.stderr())
            m = mb.memory_kib(pid)
            samples.append((now - t0, m))
            print("%7.0f %9d %10d %14d %9d %5d %7d" % (now - t0, m["VmRSS"], m["Anonymous"],
                                                      m["Private_Dirty"], m["Pss"], m["fds"],
                                                      m["Threads"]), flush=True)
            if now - t0 >= args.seconds:
                break
            next_t += args.sample
            time.sleep(max(0.0, min(next_t, t0 + args.seconds) - time.monotonic()))
        t1 = time.monotonic()
        cpu1 = mb.cpu_seconds(pid)
        tcpu1 = mb.cpu_seconds(pid, mqtt_tid) if mqtt_tid else 0.0
        wall1 = time.time()
        log_lines = len(d.stderr().splitlines()) - log_lines0

        # the broker comes back
        broker.start()
        t_up = time.time()
        sub = mb.Subscriber(ctx, broker, mb.STATE_TOPICS, qos=1).start()
        first = {}
        deadline = time.monotonic() + RECONNECT_S + 5
        while len(first) < n_circuits and time.monotonic() < deadline:
            time.sleep(0.2)
            for msg in sub.messages():
                first.setdefault(mb.circuit_of(msg.topic), msg)
        all_at = max(m.recv for m in first.values()) - t_up if len(first) == n_circuits else None
        # kept while away: stamped before the first state of all arrived
        # (the burst at connection); states polled after it come later
        t_first = min(m.recv for m in first.values()) if first else 0
        from_memory = sum(1 for m in first.values()
                          if mb.state_time_ms(m.payload) < t_first * 1000)
        again = re.findall(r"connected to the broker at \S+ again after (\d+) s", d.stderr())
        status = d.stop()
        if status != 0:
            raise AssertionError("powermeterd exited with %s:\n%s" % (status, d.stderr()))
        reads = len(daemonlib.ok_reads(sim, since_ms=wall0 * 1000, until_ms=wall1 * 1000))
    finally:
        ctx.close()

    span = t1 - t0
    warm = min(180.0, span / 2)
    post = [(t, m) for t, m in samples if t >= warm]
    print()
    print("over %.0f s (%d samples; warm-up %.0f s); daemon CPU %.3f %% of one core, of which "
          "its mqtt thread %.3f %%; %d lines logged while away"
          % (span, len(samples), warm, (cpu1 - cpu0) / span * 100,
             (tcpu1 - tcpu0) / span * 100, log_lines))
    print("reads answered: %d of %d (modules x seconds): %.1f %%"
          % (reads, int(n_modules * span), reads / (n_modules * span) * 100))
    print("%-14s %9s %9s %9s %9s %10s %12s" % ("KiB", "at 1 min", "warm-up", "end", "max",
                                               "growth", "slope KiB/h"))
    for key in ("VmRSS", "Anonymous", "Private_Dirty"):
        base = post[0][1][key]
        growth = post[-1][1][key] - base
        slope = mb.slope_per_hour([(t, m[key]) for t, m in post])
        rise = slope * (post[-1][0] - post[0][0]) / 3600
        print("%-14s %9d %9d %9d %9d %+10d %+12.1f" % (
            key, at(samples, 60)[1][key], base, samples[-1][1][key],
            max(m[key] for _, m in samples), growth, slope))
        if key in ("VmRSS", "Anonymous"):
            ok = growth < GROWTH_KIB
            rows.append(("%s growth after warm-up" % key, "%+d KiB" % growth,
                         "< %d KiB" % GROWTH_KIB, ok))
            ok2 = rise < GROWTH_KIB
            rows.append(("%s trend (fitted rise)" % key,
                         "%+.1f KiB (%+.1f KiB/h)" % (rise, slope),
                         "< %d KiB" % GROWTH_KIB, ok2))
            ok_all = ok_all and ok and ok2
    for key in ("fds", "Threads"):
        # a sample can catch the socket of a connection attempt: compare
        # the fewest at the start of the run with the fewest at its end
        vals = [m[key] for _, m in post]
        k = max(1, min(6, len(vals) // 4))
        start, end = min(vals[:k]), min(vals[-k:])
        ok = end <= start
        rows.append(("%s after warm-up (fewest at start, end; range)" % key,
                     "%d, %d; %d..%d" % (start, end, min(vals), max(vals)), "no growth", ok))
        ok_all = ok_all and ok
    got = len(first)
    ok = all_at is not None and all_at <= RECONNECT_S
    rows.append(("broker back: every circuit's state",
                 "%d/%d in %s" % (got, n_circuits,
                                  "%.1f s" % all_at if all_at is not None else "-"),
                 "all within %d s" % RECONNECT_S, ok))
    ok_all = ok_all and ok
    rows.append(("  sent at once from memory", "%d" % from_memory,
                 "(stamped before the first arrived)", None))
    rows.append(("  daemon: reconnected after", "%s s" % (again[-1] if again else "?"), "", None))
    rows.append(("daemon CPU over the run", "%.3f %%" % ((cpu1 - cpu0) / span * 100), "", None))
    mb.table(rows)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
