#!/usr/bin/env python3
"""Writer benchmarks (issue 3 item 8), run by hand after a build:

    PM_BUILD_DIR=build python3 tests/bench/writer_throughput.py [c|d]

(c) throughput: lp_load pushes synthetic line protocol (1000 series, 100
    lines per chunk) through the InfluxDB sink (ring, batches of 5000 lines,
    gzip, one kept-alive connection) to VictoriaMetrics on loopback via the
    v2 API; points/s = points acknowledged / time from first push until the
    last is acknowledged. Goal: >= 200 000 points/s.
(d) requests per tick: 2 modules x 16 inputs at interval 1 s (samples
    through emit() and lineproto, flush_interval 1 s) for 20 ticks, counted
    by VictoriaMetrics' own request counter. Goal: one request per tick, not
    one per value (32).
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import common  # noqa: E402
from servers import Victoria  # noqa: E402

LP_LOAD = os.path.join(common.BUILD, "tests", "lp_load")
V2 = ["--api", "v2", "--org", "bench", "--bucket", "bench", "--token", "bench-token"]


def run_load(url, spool, *args):
    out = subprocess.run([LP_LOAD, "--url", url, "--spool", spool] + V2 + [str(a) for a in args],
                         capture_output=True, text=True, timeout=600, check=True)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError("no result from lp_load:\n" + out.stderr)


class _Case(unittest.TestCase):
    def runTest(self):
        pass


def bench_throughput(case, points=2_000_000):
    vm = Victoria(case)
    spool = common.tmpdir(case)
    # warm up: connection, VictoriaMetrics' series index
    run_load(vm.url, spool, "--mode", "raw", "--points", 100_000, "--series", 1000,
             "--chunk-lines", 100, "--drain", 60)
    res = run_load(vm.url, spool, "--mode", "raw", "--points", points, "--series", 1000,
                   "--chunk-lines", 100, "--drain", 120, "--start-ms",
                   (int(time.time()) - 3600) * 1000)
    rate = res["written"] / res["drain_s"]
    print("(c) writer throughput to VictoriaMetrics (loopback, v2, gzip): "
          "%d points in %.2f s = %.0f points/s, %d requests (%.0f points each), "
          "dropped %d, spooled %d — goal >= 200000: %s"
          % (res["written"], res["drain_s"], rate, res["requests"],
             res["written"] / max(1, res["requests"]), res["dropped"], res["spooled"],
             "met" if rate >= 200000 and res["written"] == res["pushed"] else "NOT met"))
    vm.settle(timeout=120)
    stored = vm.count('{__name__="bench_value"}')
    print("    VictoriaMetrics holds %d of %d points" % (stored, points + 100_000))
    return rate


def bench_requests_per_tick(case, ticks=20):
    vm = Victoria(case)
    spool = common.tmpdir(case)
    before = vm.metric('vm_http_requests_total{path="/influx/write"')
    res = run_load(vm.url, spool, "--devices", 2, "--ticks", ticks, "--pace-ms", 1000,
                   "--step-ms", 1000, "--flush", 1.0, "--drain", 10)
    after = vm.metric('vm_http_requests_total{path="/influx/write"')
    n = after - before
    print("(d) HTTP requests per poll tick, 2 modules x 16 inputs at 1 s, flush 1 s: "
          "%d requests for %d ticks (%d values) = %.2f per tick (sink counted %d) "
          "— goal <= 1 per tick: %s"
          % (n, ticks, res["written"], n / ticks, res["requests"],
             "met" if n <= ticks + 1 else "NOT met"))
    return n / ticks


def main():
    which = sys.argv[1:] or ["c", "d"]
    common.require_tool(LP_LOAD)
    case = _Case()
    try:
        if "c" in which:
            bench_throughput(case)
        if "d" in which:
            bench_requests_per_tick(case)
    finally:
        case.doCleanups()


if __name__ == "__main__":
    main()
