#!/usr/bin/env python3
"""Benchmark (issue 13): the state messages per second powermeterd's MQTT
sink sustains. 32 modules (8 simulated buses x 4 at 115200 baud, wire time
on, 16 inputs each) polled at the shortest interval the config allows
(0.1 s): 320 reads and 5120 states a second offered to the sink, published
to Debian's mosquitto on loopback and counted by a mosquitto_sub at the same
QoS, QoS 1 then QoS 0, each for --seconds with a fresh broker and daemon.

Offered: the successful reads in the simulator's log within the window x
16 inputs. Received: the messages that reached the subscriber within the
window. Delivered: the distinct states (circuit, "time") from reads within
the window that reached it. The sink keeps only the newest state of each
circuit until it is sent (state, not history), so a state replaced before
it went out is "superseded", not lost data: offered - delivered. Past the
daemon, mosquitto logs any message it drops for a slow subscriber
("Outgoing messages are being dropped"; its queue is raised to 100000 here);
the daemon's own rate (STATUS=, "mqtt connected, N messages": what
libmosquitto confirmed, sampled every 5 s, so only roughly the window) is
printed beside the subscriber's. Also printed: the daemon's CPU time per
1000 messages (utime + stime from /proc/PID/stat), and its mqtt thread's.

Goal: the sink keeps up: >= 99 % of the offered states delivered, none
dropped by the broker. The offered rate is the simulator's: with --buses
and --per-bus (e.g. 16 x 8: ~20000 states a second) it goes higher.

    tests/bench/mqtt_throughput.py BUILD [--seconds 30] [--qos 1,0]
        [--buses 8] [--per-bus 4] [--baud 115200] [--interval 0.1]
"""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mqttbench as mb  # noqa: E402


def parse_args():
    ap = mb.arg_parser(__doc__, seconds=30, buses=8)
    ap.add_argument("--interval", type=float, default=0.1)
    return mb.parse_args(ap)


ARGS = parse_args()

import common  # noqa: E402   (after the arguments: it reads PM_BUILD_DIR)
import daemonlib  # noqa: E402

GOAL_DELIVERED = 0.99
STATUS_RE = re.compile(r"mqtt connected, (\d+) messages")


def published(d, after, before):
    """The daemon's confirmed messages from its STATUS= updates (every 5 s):
    (first after 'after', last before 'before') as (monotonic, count)."""
    pts = []
    for t, m in d.notify.all("STATUS"):
        hit = STATUS_RE.search(m["STATUS"])
        if hit and after <= t <= before:
            pts.append((t, int(hit.group(1))))
    return (pts[0], pts[-1]) if len(pts) >= 2 else None


def run(qos, args):
    ctx = common.BenchContext()
    try:
        sim, broker, sub, d = mb.publishing(ctx, args, qos, args.interval)
        time.sleep(2.0)                 # past the first ticks
        pid = d.pid
        tid = mb.thread_id(pid, "mqtt")
        a, a_mono = time.time(), time.monotonic()
        cpu0, tcpu0 = mb.cpu_seconds(pid), mb.cpu_seconds(pid, tid)
        time.sleep(args.seconds)
        cpu1, tcpu1 = mb.cpu_seconds(pid), mb.cpu_seconds(pid, tid)
        b, b_mono = time.time(), time.monotonic()
        time.sleep(1.0)                 # the window's last states on their way
        pub = published(d, a_mono, b_mono)
        msgs = mb.stop_publishing(d, sub)
        reads = daemonlib.ok_reads(sim, since_ms=a * 1000, until_ms=b * 1000)
        broker_log = open(broker.log, errors="replace").read()
    finally:
        ctx.close()

    span = b - a
    received = [m for m in msgs if a <= m.recv < b]
    per_second = [0] * int(span)
    for m in received:
        i = int(m.recv - a)
        if i < len(per_second):
            per_second[i] += 1
    delivered = set()
    for m in msgs:
        t = mb.state_time_ms(m.payload)
        if a * 1000 <= t <= b * 1000:
            delivered.add((m.topic, t))
    offered = len(reads) * 16
    r = {"qos": qos, "span": span, "offered": offered, "received": len(received),
         "delivered": len(delivered), "superseded": max(0, offered - len(delivered)),
         "per_second": per_second, "cpu": cpu1 - cpu0, "tcpu": tcpu1 - tcpu0,
         "dropped_by_broker": broker_log.count("Outgoing messages are being dropped")}
    r["pub_rate"] = (pub[1][1] - pub[0][1]) / (pub[1][0] - pub[0][0]) if pub else None
    return r


def main():
    args = ARGS
    mb.require_tools()
    levels = [int(q) for q in args.qos.split(",")]
    n = args.buses * args.per_bus
    print("%d modules (%d buses x %d, %d baud, wire time on) x 16 inputs every %g s, "
          "%.0f s per QoS; mosquitto on loopback"
          % (n, args.buses, args.per_bus, args.baud, args.interval, args.seconds), flush=True)
    results = [run(q, args) for q in levels]
    print()
    print("%4s %10s %11s %11s %12s %11s %10s %13s %12s %12s" % (
        "QoS", "offered/s", "received/s", "min/s..max", "daemon pub/s", "delivered",
        "superseded", "CPU ms/1000", "mqtt thread", "daemon CPU"))
    rows, ok_all = [], True
    for r in results:
        ps = r["per_second"] or [0]
        print("%4d %10.0f %11.0f %11s %12s %10.2f%% %10d %13.1f %12.1f %11.1f%%" % (
            r["qos"], r["offered"] / r["span"], r["received"] / r["span"],
            "%d..%d" % (min(ps), max(ps)),
            "%.0f" % r["pub_rate"] if r["pub_rate"] is not None else "?",
            r["delivered"] / r["offered"] * 100 if r["offered"] else 0, r["superseded"],
            r["cpu"] / max(r["received"], 1) * 1e6, r["tcpu"] / max(r["received"], 1) * 1e6,
            r["cpu"] / r["span"] * 100))
        share = r["delivered"] / r["offered"] if r["offered"] else 0
        ok = share >= GOAL_DELIVERED
        rows.append(("QoS %d: received per second" % r["qos"],
                     "%.0f/s of %.0f/s offered" % (r["received"] / r["span"],
                                                  r["offered"] / r["span"]), "", None))
        rows.append(("QoS %d: states delivered" % r["qos"],
                     "%.2f %% (%d superseded)" % (share * 100, r["superseded"]),
                     ">= %.0f %%" % (GOAL_DELIVERED * 100), ok))
        ok2 = r["dropped_by_broker"] == 0
        rows.append(("QoS %d: broker's drops (its log)" % r["qos"],
                     "%d" % r["dropped_by_broker"], "0", ok2))
        rows.append(("QoS %d: daemon's confirmed vs received" % r["qos"],
                     "%s/s vs %.0f/s" % ("%.0f" % r["pub_rate"] if r["pub_rate"] else "?",
                                         r["received"] / r["span"]), "", None))
        rows.append(("QoS %d: daemon CPU per 1000 messages" % r["qos"],
                     "%.1f ms (mqtt thread %.1f ms)" % (
                         r["cpu"] / max(r["received"], 1) * 1e6,
                         r["tcpu"] / max(r["received"], 1) * 1e6), "", None))
        ok_all = ok_all and ok and ok2
    mb.table(rows)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
