#!/usr/bin/env python3
"""Benchmark (issue 13): latency from a module's answer to its state message
at an MQTT subscriber on loopback. Goal: <= 20 ms at the 99th percentile,
and no state lost on a healthy broker.

4 modules (one simulated bus at 115200 baud, wire time on, 16 inputs each)
polled every second by powermeterd, publishing to Debian's mosquitto on a
free loopback port; mosquitto_sub, subscribed at the same QoS, stamps each
message as it arrives (-F '%U ...': its own clock, no pipe in between).
Latency = that receive time - the state's "time" (the daemon's stamp right
after the answer's last byte, UTC in whole ms, rounded down: so the figure
is at most 1 ms above the truth). Each QoS (1, then 0) runs --seconds with a
fresh broker, subscriber and daemon.

Every successful read in the simulator's log within the window must have
its 16 states at the subscriber (matched by circuit and a "time" within
100 ms of the simulator's answer); also printed: "time" minus the
simulator's own answer time (it writes its log when it writes the answer),
which shows the stamp is the answer's.

The ticks with a state over 20 ms are printed as seconds after the first
state, which shows a period if there is one (e.g. the keep-alive's, 30 s).
With --broker-nodelay mosquitto runs with "set_tcp_nodelay true" (no
Nagle on its own sends), to tell the broker's hop from the daemon's.

    tests/bench/mqtt_latency.py BUILD [--seconds 60] [--qos 1,0]
        [--broker-nodelay] [--buses 1] [--per-bus 4] [--baud 115200]
"""
import bisect
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mqttbench as mb  # noqa: E402


def parse_args():
    ap = mb.arg_parser(__doc__, seconds=60, buses=1)
    ap.add_argument("--broker-nodelay", action="store_true",
                    help="mosquitto with set_tcp_nodelay true (its sends without Nagle)")
    return mb.parse_args(ap)


ARGS = parse_args()

import common  # noqa: E402   (after the arguments: it reads PM_BUILD_DIR)
import daemonlib  # noqa: E402

GOAL_P99_MS = 20.0
MATCH_MS = 100


def run(qos, nodelay, args):
    """One QoS and broker setting: returns a dict of figures."""
    ctx = common.BenchContext()
    try:
        sim, _, sub, d = mb.publishing(ctx, args, qos, 1.0, nodelay=nodelay)
        time.sleep(1.5)                 # past the connection's first burst
        a_ms = time.time() * 1000
        time.sleep(args.seconds)
        b_ms = time.time() * 1000
        time.sleep(1.0)                 # the last reads' states on their way
        msgs = mb.stop_publishing(d, sub)
        reads = daemonlib.ok_reads(sim, since_ms=a_ms, until_ms=b_ms)
    finally:
        ctx.close()

    by_circuit = {}
    for m in msgs:
        by_circuit.setdefault(mb.circuit_of(m.topic), []).append(
            (mb.state_time_ms(m.payload), m.recv * 1000))
    dups = 0
    for lst in by_circuit.values():
        lst.sort()
        dups += sum(1 for x, y in zip(lst, lst[1:]) if x[0] == y[0])
    keys = {k: [t for t, _ in lst] for k, lst in by_circuit.items()}
    lat, stamp, lost, slow = [], [], 0, set()
    for bus, addr, t_ms, _ in reads:
        dev = bus * 100 + addr
        for letter in mb.LETTERS:
            times = keys.get((dev, letter), [])
            i = bisect.bisect_left(times, t_ms - MATCH_MS)
            if i < len(times) and abs(times[i] - t_ms) <= MATCH_MS:
                state_ms, recv_ms = by_circuit[(dev, letter)][i]
                lat.append(recv_ms - state_ms)
                if recv_ms - state_ms > GOAL_P99_MS:
                    slow.add(round(t_ms / 1000 - msgs[0].recv))
                stamp.append(state_ms - t_ms)
            else:
                lost += 1
    lat.sort()
    return {"qos": qos, "nodelay": nodelay, "reads": len(reads), "expected": len(reads) * 16,
            "matched": len(lat), "lost": lost, "dups": dups, "received": len(msgs),
            "median": statistics.median(lat) if lat else float("nan"),
            "p99": mb.percentile(lat, 99), "max": lat[-1] if lat else float("nan"),
            "stamp": statistics.median(stamp) if stamp else float("nan"),
            "slow": sorted(slow),
            "seconds": (b_ms - a_ms) / 1000}


def main():
    args = ARGS
    mb.require_tools()
    levels = [int(q) for q in args.qos.split(",")]
    n = args.buses * args.per_bus
    print("%d modules (%d bus(es) x %d, %d baud, wire time on) x 16 inputs at 1 s, "
          "%.0f s per QoS; mosquitto on loopback" % (n, args.buses, args.per_bus,
                                                     args.baud, args.seconds), flush=True)
    results = [run(q, args.broker_nodelay, args) for q in levels]
    print()
    print("%4s %-8s %6s %9s %9s %5s %5s %10s %8s %8s %15s" % (
        "QoS", "broker", "reads", "expected", "received", "lost", "dups", "median ms",
        "p99 ms", "max ms", "time-answer ms"))
    for r in results:
        print("%4d %-8s %6d %9d %9d %5d %5d %10.2f %8.2f %8.2f %15.2f" % (
            r["qos"], "nodelay" if r["nodelay"] else "default", r["reads"], r["expected"],
            r["matched"], r["lost"], r["dups"], r["median"], r["p99"], r["max"], r["stamp"]))
    for r in results:
        if r["slow"]:
            print("QoS %d: states over %.0f ms in %d of %d ticks, at these seconds after the "
                  "first state: %s" % (r["qos"], GOAL_P99_MS, len(r["slow"]), r["reads"] //
                                       (args.buses * args.per_bus),
                                       " ".join(str(x) for x in r["slow"])))
    rows, ok_all = [], True
    for r in results:
        ok = r["p99"] <= GOAL_P99_MS
        what = "QoS %d, broker %s" % (r["qos"], "nodelay" if r["nodelay"] else "default")
        rows.append(("%s: answer -> subscriber, p99" % what,
                     "%.2f ms (median %.2f, max %.2f; %d msgs)"
                     % (r["p99"], r["median"], r["max"], r["matched"]),
                     "<= %.0f ms" % GOAL_P99_MS, ok))
        ok2 = r["lost"] == 0 and r["reads"] > 0
        rows.append(("%s: states lost" % what,
                     "%d of %d" % (r["lost"], r["expected"]), "0", ok2))
        ok_all = ok_all and ok and ok2
    mb.table(rows)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
