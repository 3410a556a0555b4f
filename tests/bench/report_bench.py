#!/usr/bin/env python3
"""Benchmark of `powermeter report` (issue 11, item 6): a year of 512
circuits at 15 minutes (build/tests/bench/ledger-bench --write-year), then
the report of one month and of the whole year, by circuit and by phase
with a time-of-use tariff. Goals: a month <= 1 s, the year <= 5 s.

    PM_BUILD_DIR=build python3 tests/bench/report_bench.py [--ledger PATH] [--runs N]

The ledger is generated once and kept (default /var/tmp/pm-report-bench/
ledger-year.sqlite, or --ledger); a ledger there is reused. The figures
are wall-clock times of the whole command with a warm page cache: the best
and the median of --runs.
"""
import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("PM_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
POWERMETER = os.path.join(BUILD, "src", "cli", "powermeter")
LEDGER_BENCH = os.path.join(BUILD, "tests", "bench", "ledger-bench")
TARIFF = {"currency": "EUR", "vat": 21, "standing_charge": 0.30,
          "rates": [{"price": 0.25, "days": "mon-fri", "from": "07:00", "to": "22:00"},
                    {"price": 0.12}]}


def make_ledger(path):
    if os.path.exists(path):
        print("reusing %s (%.0f MB)" % (path, os.path.getsize(path) / 1e6))
        return
    if not os.access(LEDGER_BENCH, os.X_OK):
        raise SystemExit("%s is missing: build it (ninja -C %s)" % (LEDGER_BENCH, BUILD))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t0 = time.monotonic()
    r = subprocess.run([LEDGER_BENCH, "--write-year", path], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("ledger-bench --write-year failed:\n" + r.stdout + r.stderr)
    print("wrote %s in %.0f s (%.0f MB)" % (path, time.monotonic() - t0,
                                            os.path.getsize(path) / 1e6))


def span(path):
    """The ledger's first and last boundary (local datetimes) and its size."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        lo, hi = db.execute("SELECT min(time), max(time) FROM boundaries").fetchone()
        circuits = db.execute("SELECT count(DISTINCT device_id || channel) "
                              "FROM circuits").fetchone()[0]
    finally:
        db.close()
    return datetime.fromtimestamp(lo), datetime.fromtimestamp(hi), circuits


def timed(args, runs):
    times, out = [], None
    for _ in range(runs):
        t0 = time.monotonic()
        r = subprocess.run([POWERMETER, "report"] + args, capture_output=True, text=True)
        times.append(time.monotonic() - t0)
        if r.returncode != 0:
            raise SystemExit("powermeter report %s: exit %d\n%s" % (" ".join(args),
                                                                   r.returncode, r.stderr))
        out = r.stdout
    return min(times), statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ledger", default="/var/tmp/pm-report-bench/ledger-year.sqlite")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    make_ledger(a.ledger)
    first, last, circuits = span(a.ledger)
    # a whole month inside the ledger, and the ledger's whole span in days
    m = (first.replace(day=1) + timedelta(days=45)).replace(day=1)
    month = "%04d-%02d" % (m.year, m.month)
    year_from = first.strftime("%Y-%m-%d")
    year_to = (last + timedelta(days=1)).strftime("%Y-%m-%d")
    tariff = os.path.join(os.path.dirname(a.ledger), "tariff.json")
    with open(tariff, "w") as f:
        json.dump(TARIFF, f)
    print("ledger: %d circuits, %s .. %s, TZ=%s" % (circuits, first, last,
                                                     os.environ.get("TZ", "(system)")))
    cases = [
        ("report --month %s" % month, ["--month", month], 1.0),
        ("report --month %s --by phase --tariff" % month,
         ["--month", month, "--by", "phase", "--tariff", tariff], 1.0),
        ("report --from %s --to %s" % (year_from, year_to),
         ["--from", year_from, "--to", year_to], 5.0),
        ("report --from %s --to %s --by phase --tariff" % (year_from, year_to),
         ["--from", year_from, "--to", year_to, "--by", "phase", "--tariff", tariff], 5.0),
    ]
    failed = False
    print("%-62s %8s %8s %8s" % ("case", "best s", "median s", "goal s"))
    for name, args, goal in cases:
        best, median, out = timed(["--ledger", a.ledger, "--format", "json"] + args, a.runs)
        doc = json.loads(out)
        ok = median <= goal
        failed |= not ok
        print("%-62s %8.3f %8.3f %8.1f  %s  (%d rows, %.0f kWh)" % (
            name, best, median, goal, "ok" if ok else "OVER", doc["rows"],
            doc["total"]["energy_kwh"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
