#!/usr/bin/env python3
"""`powermeter report` on ledgers written here through the documented schema
(powermeter-ledger(5), src/output/ledger.h) with known energies, in
Europe/Prague: a spring-forward and a fall-back day and month, a month
boundary, a time-of-use window across midnight, a module down and a daemon
stopped (coverage, no energy invented), a circuit renamed or moved
mid-month, tags with a customer's override price, peaks at 5 and 60 minute
intervals, the csv and json shapes, the estimate wording in every format,
each bad input with its exit status, and one end-to-end case with the
daemon writing the ledger."""
import csv
import io
import json
import os
import sqlite3
import unittest
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import common
from servers import Influx1

TZ = "Europe/Prague"
ZONE = ZoneInfo(TZ)
ESTIMATE = "estimates: current x configured voltage x power factor"

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_CONFIG = 64, 65, 66, 78

SCHEMA = """
PRAGMA application_id = 1347243079;
PRAGMA user_version = %d;
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE circuits (id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL,
    channel TEXT NOT NULL, name TEXT NOT NULL, phase TEXT, feed TEXT,
    voltage REAL NOT NULL, power_factor REAL NOT NULL, breaker REAL,
    tags TEXT NOT NULL, since INTEGER NOT NULL);
CREATE TABLE boundaries (time INTEGER PRIMARY KEY, interval INTEGER NOT NULL);
CREATE TABLE readings (key INTEGER PRIMARY KEY, energy_mwh INTEGER NOT NULL,
    charge_mah INTEGER NOT NULL, peak_ca INTEGER, unmetered_s INTEGER NOT NULL);
CREATE VIEW ledger AS SELECT
    b.time AS time, c.id AS circuit, c.device_id AS device_id,
    c.channel AS channel, c.name AS name, c.phase AS phase, c.feed AS feed,
    c.tags AS tags, r.energy_mwh / 1000.0 AS energy_wh,
    r.charge_mah / 1000.0 AS charge_ah, r.peak_ca / 100.0 AS peak_a,
    r.unmetered_s AS unmetered_s, b.interval AS interval
FROM boundaries AS b
JOIN readings AS r ON r.key >= (b.time << 16) AND r.key < ((b.time + 1) << 16)
JOIN circuits AS c ON c.id = (r.key & 65535);
INSERT INTO ledger_meta VALUES ('schema', '%d'), ('created', '0'),
    ('writer', 'tests/integration/report.py');
"""


def local(*args):
    """Unix seconds of a local time in Europe/Prague."""
    return int(datetime(*args, tzinfo=ZONE).timestamp())


class Ledger:
    """A ledger written row by row as the daemon would: a description row
    whenever a circuit's name, phase, feed or tags change, one boundary per
    interval with one reading per described circuit."""

    def __init__(self, testcase, name="ledger.sqlite", schema=1, wal=False):
        self.path = os.path.join(common.tmpdir(testcase, "pm-report-"), name)
        self.db = sqlite3.connect(self.path)
        if wal:
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA % (schema, schema))
        self.desc = {}          # (device_id, channel) -> (id, description)
        self.counter = {}       # (device_id, channel) -> mWh
        self.next_id = 0
        testcase.addCleanup(self.db.close)

    def describe(self, dev, ch, name, since, phase=None, feed=None, tags=None):
        key = (dev, ch)
        d = (name, phase, feed, json.dumps(tags or {}, sort_keys=True))
        if key in self.desc and self.desc[key][1] == d:
            return
        cid = self.next_id
        self.next_id += 1
        self.db.execute("INSERT INTO circuits VALUES (?,?,?,?,?,?,230.0,1.0,NULL,?,?)",
                        (cid, dev, ch, name, phase, feed, d[3], since))
        self.desc[key] = (cid, d)
        self.counter.setdefault(key, 0)

    def remove(self, dev, ch):
        """The circuit leaves the config: no rows from now on."""
        del self.desc[(dev, ch)]

    def boundary(self, t, interval, wh=None, unmetered=None):
        """A boundary at t: each described circuit's counter grows by
        wh.get(key, 0) Wh; unmetered.get(key, 0) seconds."""
        wh, unmetered = wh or {}, unmetered or {}
        self.db.execute("INSERT INTO boundaries VALUES (?,?)", (t, interval))
        for key, (cid, _) in self.desc.items():
            self.counter[key] += round(wh.get(key, 0) * 1000)
            self.db.execute("INSERT INTO readings VALUES (?,?,0,NULL,?)",
                            ((t << 16) | cid, self.counter[key], unmetered.get(key, 0)))

    def run(self, start, end, interval, power, unmetered=None):
        """Boundaries after 'start' up to 'end': power(key, t0, t1) gives each
        circuit's average W over the interval (t0, t1]; unmetered(key, t0, t1)
        its unmetered seconds (and then no energy)."""
        t = start + interval
        while t <= end:
            wh, um = {}, {}
            for key in self.desc:
                u = unmetered(key, t - interval, t) if unmetered else 0
                um[key] = u
                wh[key] = 0 if u else power(key, t - interval, t) * interval / 3600
            self.boundary(t, interval, wh, um)
            t += interval

    def commit(self):
        self.db.commit()
        return self.path


def report(*args, env=None):
    e = dict(os.environ, TZ=TZ)
    e.update(env or {})
    return common.run([common.POWERMETER, "report"] + list(args), env=e, timeout=60)


def report_json(testcase, *args):
    r = report(*args, "--format", "json")
    testcase.assertEqual(r.returncode, 0, r.stderr)
    return json.loads(r.stdout)


def groups(doc):
    return {g["group"]: g for g in doc["groups"]}


def flat(kw):
    return lambda key, t0, t1: kw[key] if isinstance(kw, dict) else kw


def write_tariff(testcase, doc):
    path = os.path.join(common.tmpdir(testcase, "pm-tariff-"), "tariff.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


A, B, C, D = (1, "a"), (1, "b"), (1, "c"), (2, "d")


class Periods(unittest.TestCase):
    def test_month_across_spring_forward(self):
        """March 2025 in Prague has 743 hours; 1 kW flat for it is 743 kWh,
        all metered, peak 1 kW; April's first rows are not March's."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 2, 28))
        led.run(local(2025, 2, 28, 22), local(2025, 4, 1, 2), 900, flat(1000))
        doc = report_json(self, "--ledger", led.commit(), "--month", "2025-03")
        self.assertEqual(doc["hours"], 743)
        self.assertEqual(doc["from"], "2025-03-01T00:00:00+01:00")
        self.assertEqual(doc["to"], "2025-04-01T00:00:00+02:00")
        g = groups(doc)["Pitch 1"]
        self.assertAlmostEqual(g["energy_kwh"], 743.0, places=3)
        self.assertAlmostEqual(g["peak_kw"], 1.0, places=3)
        self.assertEqual(g["coverage_percent"], 100.0)
        self.assertEqual(g["unmetered_h"], 0.0)

    def test_spring_forward_day_has_23_hours(self):
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 3, 29))
        # 2 kW before the change, 1 kW after: the day is 2 h x 2 + 21 h x 1
        change = local(2025, 3, 30, 3)
        led.run(local(2025, 3, 29, 12), local(2025, 3, 31, 12), 900,
                lambda key, t0, t1: 2000 if t1 <= change else 1000)
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-03-30",
                          "--to", "2025-03-31")
        self.assertEqual(doc["hours"], 23)
        g = groups(doc)["Pitch 1"]
        self.assertAlmostEqual(g["energy_kwh"], 2 * 2 + 21 * 1, places=3)
        self.assertEqual(g["coverage_percent"], 100.0)
        self.assertEqual(g["peak_start"], "2025-03-30T00:00:00+01:00")

    def test_fall_back_day_has_25_hours(self):
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 10, 25))
        led.run(local(2025, 10, 25, 12), local(2025, 10, 27, 12), 900, flat(1000))
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--from", "2025-10-26",
                          "--to", "2025-10-27")
        self.assertEqual(doc["hours"], 25)
        self.assertAlmostEqual(groups(doc)["Pitch 1"]["energy_kwh"], 25.0, places=3)
        # the repeated hour: 02:30 is its first occurrence (CEST)
        doc = report_json(self, "--ledger", path, "--from", "2025-10-26T02:30",
                          "--to", "2025-10-26T04:00")
        self.assertEqual(doc["from"], "2025-10-26T02:30:00+02:00")
        self.assertEqual(doc["hours"], 2.5)
        self.assertAlmostEqual(groups(doc)["Pitch 1"]["energy_kwh"], 2.5, places=3)

    def test_rows_at_midnight_belong_to_the_month_they_close(self):
        """The interval 23:45..00:00 of 31 March has 4 kWh (16 kW): March has
        it, with its peak at 23:45; April starts after it."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 3, 1))
        midnight = local(2025, 4, 1)
        led.run(local(2025, 3, 28), local(2025, 4, 3), 900,
                lambda key, t0, t1: 16000 if t1 == midnight else 1000)
        path = led.commit()
        march = groups(report_json(self, "--ledger", path, "--from", "2025-03-31",
                                   "--to", "2025-04-01"))["Pitch 1"]
        april = groups(report_json(self, "--ledger", path, "--from", "2025-04-01",
                                   "--to", "2025-04-02"))["Pitch 1"]
        self.assertAlmostEqual(march["energy_kwh"], 23.75 + 4, places=3)
        self.assertAlmostEqual(march["peak_kw"], 16.0, places=3)
        self.assertEqual(march["peak_start"], "2025-03-31T23:45:00+02:00")
        self.assertAlmostEqual(april["energy_kwh"], 24.0, places=3)
        self.assertAlmostEqual(april["peak_kw"], 1.0, places=3)
        self.assertEqual(april["coverage_percent"], 100.0)

    def test_period_between_boundaries(self):
        """--from 10:07 with 15-minute rows: the row at 10:15 counts whole
        (the ledger's resolution), its coverage only from 10:07."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 6, 1))
        led.run(local(2025, 6, 2), local(2025, 6, 2, 12), 900, flat(1000))
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-06-02T10:07",
                          "--to", "2025-06-02T11:00")
        g = groups(doc)["Pitch 1"]
        self.assertAlmostEqual(g["energy_kwh"], 1.0, places=3)
        self.assertEqual(g["coverage_percent"], 100.0)
        self.assertEqual(g["unmetered_h"], 0)

    def test_first_row_is_a_baseline(self):
        """A circuit's very first row has no energy before it: the period
        starting there counts it as unmetered, never as energy."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 5, 1))
        led.counter[A] = 5_000_000          # a counter already running
        led.run(local(2025, 5, 1), local(2025, 5, 2), 900, flat(1000))
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-05-01",
                          "--to", "2025-05-02")
        g = groups(doc)["Pitch 1"]
        self.assertAlmostEqual(g["energy_kwh"], 23.75, places=3)
        self.assertAlmostEqual(g["unmetered_h"], 0.25, places=2)
        self.assertEqual(g["coverage_percent"], 98.95)   # 23.75 / 24, floored


class Gaps(unittest.TestCase):
    def test_module_down_and_daemon_stopped(self):
        """1 kW for a day; the module down 10:00..12:00 (rows with their
        interval unmetered, counter still) and the daemon stopped 14:00..15:00
        (no boundaries): 21 kWh, 3 unmetered hours, coverage 87.5 %."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 6, 1))
        down0, down1 = local(2025, 6, 2, 10), local(2025, 6, 2, 12)
        stop0, stop1 = local(2025, 6, 2, 14), local(2025, 6, 2, 15)
        t = local(2025, 6, 1, 12)
        while t < local(2025, 6, 3, 12):
            t += 900
            if stop0 < t <= stop1:
                continue
            down = down0 < t <= down1
            led.boundary(t, 900, {A: 0 if down else 250}, {A: 900 if down else 0})
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-06-02",
                          "--to", "2025-06-03")
        g = groups(doc)["Pitch 1"]
        self.assertAlmostEqual(g["energy_kwh"], 21.0, places=3)
        self.assertAlmostEqual(g["unmetered_h"], 3.0, places=2)
        self.assertEqual(g["coverage_percent"], 87.5)
        self.assertAlmostEqual(doc["total"]["unmetered_h"], 3.0, places=2)

    def test_partly_unmetered_interval(self):
        """An interval with 300 of its 900 s unmetered counts 600 s metered."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 6, 1))
        led.run(local(2025, 6, 1, 23), local(2025, 6, 3, 1), 900, flat(1000))
        led.db.execute("UPDATE readings SET unmetered_s = 300 WHERE key = ?",
                       ((local(2025, 6, 2, 8) << 16) | 0,))
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-06-02",
                          "--to", "2025-06-03")
        self.assertAlmostEqual(groups(doc)["Pitch 1"]["unmetered_h"], 300 / 3600, places=2)
        self.assertEqual(groups(doc)["Pitch 1"]["coverage_percent"], 99.65)

    def test_circuit_added_mid_period(self):
        """A circuit whose ledger starts on the 16th: the time before counts
        as unmetered, its energy only from then on."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 4, 1))
        led.run(local(2025, 3, 31, 23), local(2025, 4, 16), 900, flat(1000))
        led.describe(*B, "Pitch 2", local(2025, 4, 16))
        led.run(local(2025, 4, 16), local(2025, 5, 1, 1), 900, flat({A: 1000, B: 2000}))
        doc = report_json(self, "--ledger", led.commit(), "--month", "2025-04")
        g = groups(doc)
        self.assertAlmostEqual(g["Pitch 1"]["energy_kwh"], 720.0, places=3)
        # Pitch 2's first row (16th 00:15) is its baseline
        self.assertAlmostEqual(g["Pitch 2"]["energy_kwh"], 2 * (15 * 24 - 0.25), places=3)
        self.assertAlmostEqual(g["Pitch 2"]["unmetered_h"], 15 * 24 + 0.25, places=2)
        self.assertEqual(doc["total"]["circuits"], 2)


    def test_circuit_removed_mid_period(self):
        """A circuit leaving the config at 18:00 (or the daemon's last rows
        before the period ends): the rest of the period is unmetered."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 6, 1))
        led.describe(*B, "Pitch 2", local(2025, 6, 1))
        led.run(local(2025, 6, 1, 23), local(2025, 6, 2, 18), 900, flat(1000))
        led.remove(*B)
        led.run(local(2025, 6, 2, 18), local(2025, 6, 3, 1), 900, flat(1000))
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-06-02",
                          "--to", "2025-06-03")
        g = groups(doc)
        self.assertAlmostEqual(g["Pitch 2"]["energy_kwh"], 18.0, places=3)
        self.assertAlmostEqual(g["Pitch 2"]["unmetered_h"], 6.0, places=2)
        self.assertEqual(g["Pitch 2"]["coverage_percent"], 75.0)
        self.assertEqual(g["Pitch 1"]["coverage_percent"], 100.0)
        self.assertEqual(doc["total"]["coverage_percent"], 87.5)


    def test_counter_going_down_is_a_new_baseline(self):
        """A counter lower than the row before (a lost energy state): that
        interval's energy is unknown, never negative; a warning says so."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 6, 1))
        led.run(local(2025, 6, 1, 23), local(2025, 6, 2, 12), 900, flat(1000))
        led.counter[A] = 0
        led.run(local(2025, 6, 2, 12), local(2025, 6, 3, 1), 900, flat(1000))
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--from", "2025-06-02", "--to", "2025-06-03")
        g = groups(doc)["Pitch 1"]
        self.assertAlmostEqual(g["energy_kwh"], 23.75, places=3)
        self.assertAlmostEqual(g["unmetered_h"], 0.25, places=2)
        self.assertEqual(doc["counter_resets"], 1)
        r = report("--ledger", path, "--from", "2025-06-02", "--to", "2025-06-03")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 ledger row with a counter lower than the row before", r.stderr)


class Grouping(unittest.TestCase):
    def test_renamed_input_stays_one_circuit(self):
        """Input 1.a renamed on the 15th: one circuit, labelled with its
        newest name, its energy across both names; the interval closing at
        the rename counts."""
        led = Ledger(self)
        led.describe(*A, "Pitch 12", local(2025, 5, 1))
        led.describe(*B, "Pitch 13", local(2025, 5, 1))
        led.run(local(2025, 4, 30, 23), local(2025, 5, 15, 12), 900, flat({A: 1000, B: 500}))
        led.describe(*A, "Pitch 12 (Novák)", local(2025, 5, 15, 12, 15))
        led.run(local(2025, 5, 15, 12), local(2025, 6, 1, 1), 900, flat({A: 3000, B: 500}))
        doc = report_json(self, "--ledger", led.commit(), "--month", "2025-05")
        g = groups(doc)
        self.assertEqual(sorted(g), ["Pitch 12 (Novák)", "Pitch 13"])
        a = g["Pitch 12 (Novák)"]
        self.assertEqual((a["device_id"], a["input"]), (1, "a"))
        hours_before = (local(2025, 5, 15, 12) - local(2025, 5, 1)) / 3600
        hours_after = (local(2025, 6, 1) - local(2025, 5, 15, 12)) / 3600
        self.assertAlmostEqual(a["energy_kwh"], hours_before * 1 + hours_after * 3, places=3)
        self.assertEqual(a["coverage_percent"], 100.0)
        self.assertEqual(a["circuits"], 1)
        self.assertAlmostEqual(doc["total"]["energy_kwh"],
                               a["energy_kwh"] + g["Pitch 13"]["energy_kwh"], places=3)
        # from the rename on: the row before the period has the old name
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-05-15T12:00",
                          "--to", "2025-05-16T12:00")
        self.assertAlmostEqual(groups(doc)["Pitch 12 (Novák)"]["energy_kwh"], 72.0, places=3)
        self.assertEqual(groups(doc)["Pitch 12 (Novák)"]["coverage_percent"], 100.0)

    def test_by_phase_and_feed(self):
        led = Ledger(self)
        led.describe(*A, "a", local(2025, 5, 1), phase="L1", feed="UPS A")
        led.describe(*B, "b", local(2025, 5, 1), phase="L1", feed="UPS B")
        led.describe(*C, "c", local(2025, 5, 1), phase="L2")
        led.run(local(2025, 5, 1), local(2025, 5, 3), 900, flat({A: 1000, B: 2000, C: 4000}))
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--from", "2025-05-02",
                          "--to", "2025-05-03", "--by", "phase")
        self.assertEqual([g["group"] for g in doc["groups"]], ["L1", "L2"])
        self.assertAlmostEqual(groups(doc)["L1"]["energy_kwh"], 72.0, places=3)
        self.assertEqual(groups(doc)["L1"]["circuits"], 2)
        self.assertAlmostEqual(groups(doc)["L1"]["peak_kw"], 3.0, places=3)
        self.assertAlmostEqual(doc["total"]["peak_kw"], 7.0, places=3)
        doc = report_json(self, "--ledger", path, "--from", "2025-05-02",
                          "--to", "2025-05-03", "--by", "feed")
        # circuits without a feed: the group null ("(none)"), listed last
        self.assertEqual([g["group"] for g in doc["groups"]], ["UPS A", "UPS B", None])
        self.assertAlmostEqual(doc["groups"][2]["energy_kwh"], 96.0, places=3)

    def test_by_tag_with_override_and_a_move(self):
        """customer ACME pays 0.20 (override, standing 1.00/day), others 0.30
        (standing 0.50/day), VAT 10 %. 1.d moves from Beta to ACME at noon
        on the 2nd: its energy splits there. One circuit has no customer."""
        led = Ledger(self)
        since = local(2025, 5, 1)
        led.describe(*A, "a", since, tags={"customer": "ACME", "site": "dc1"})
        led.describe(*B, "b", since, tags={"customer": "Beta"})
        led.describe(*C, "c", since, tags={"site": "dc1"})
        led.describe(*D, "d", since, tags={"customer": "Beta"})
        power = flat({A: 1000, B: 2000, C: 500, D: 4000})
        led.run(since, local(2025, 5, 2, 12), 900, power)
        led.describe(*D, "d", local(2025, 5, 2, 12, 15), tags={"customer": "ACME"})
        led.run(local(2025, 5, 2, 12), local(2025, 5, 4), 900, power)
        tariff = write_tariff(self, {
            "currency": "EUR", "vat": 10, "standing_charge": 0.50,
            "rates": [{"price": 0.30}],
            "overrides": {"customer=ACME": {"rates": [{"price": 0.20}],
                                            "standing_charge": 1.00}}})
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-05-02",
                          "--to", "2025-05-03", "--by", "tag:customer",
                          "--tariff", tariff)
        g = groups(doc)
        self.assertEqual([x["group"] for x in doc["groups"]], ["ACME", "Beta", None])
        acme, beta, none = g["ACME"], g["Beta"], g[None]
        self.assertAlmostEqual(acme["energy_kwh"], 24 * 1 + 12 * 4, places=3)
        self.assertAlmostEqual(beta["energy_kwh"], 24 * 2 + 12 * 4, places=3)
        self.assertAlmostEqual(none["energy_kwh"], 12.0, places=3)
        self.assertEqual(acme["circuits"], 2)
        self.assertEqual(beta["circuits"], 2)
        # coverage: 1.d's day splits between the two customers, all metered
        self.assertEqual(acme["coverage_percent"], 100.0)
        self.assertAlmostEqual(acme["unmetered_h"], 0, places=2)
        # ACME: 72 kWh x 0.20 = 14.40 + 1.00 standing = 15.40, VAT 1.54
        self.assertEqual(acme["cost"], {"energy": 14.40, "standing_charge": 1.00,
                                        "net": 15.40, "vat": 1.54, "total": 16.94})
        # Beta: 96 x 0.30 = 28.80 + 0.50 = 29.30, VAT 2.93
        self.assertEqual(beta["cost"], {"energy": 28.80, "standing_charge": 0.50,
                                        "net": 29.30, "vat": 2.93, "total": 32.23})
        # (none): 12 x 0.30 = 3.60 + 0.50 = 4.10, VAT 0.41
        self.assertEqual(none["cost"]["total"], 4.51)
        self.assertAlmostEqual(doc["total"]["cost"]["total"], 16.94 + 32.23 + 4.51, places=2)
        self.assertEqual(doc["tariff"]["currency"], "EUR")
        # by circuit, the override follows each circuit's own tags
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-05-02",
                          "--to", "2025-05-03", "--tariff", tariff)
        self.assertEqual(groups(doc)["a"]["cost"]["energy"], 4.80)    # 24 x 0.20
        self.assertEqual(groups(doc)["b"]["cost"]["energy"], 14.40)   # 48 x 0.30
        # d: 12 h at 4 kW as Beta (0.30) and 12 h as ACME (0.20)
        self.assertEqual(groups(doc)["d"]["cost"]["energy"], 24.00)

    def test_tag_value_missing_is_none_group_and_unknown_tag_fails(self):
        led = Ledger(self)
        led.describe(*A, "a", local(2025, 5, 1), tags={"pitch": "12"})
        led.describe(*B, "b", local(2025, 5, 1))
        led.run(local(2025, 5, 1), local(2025, 5, 2, 1), 900, flat(1000))
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--from", "2025-05-01T12:00",
                          "--to", "2025-05-02", "--by", "tag:pitch")
        self.assertEqual([g["group"] for g in doc["groups"]], ["12", None])
        r = report("--ledger", path, "--from", "2025-05-01T12:00", "--to",
                   "2025-05-02", "--by", "tag:customer")
        self.assertEqual(r.returncode, EX_DATAERR, r.stderr)
        self.assertIn('no circuit in the ledger has the tag "customer"', r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


class Tariffs(unittest.TestCase):
    def test_time_of_use_window_across_midnight(self):
        """Night 22:00..06:00 at 0.10, else 0.30, 1.00 a day, VAT 20 %.
        Monday 5 May 2025: 1 kW, plus 2 kW 21:00..23:00. Day: 06..21 15 kWh
        + 21..22 3 kWh = 18 x 0.30 = 5.40; night: 00..06 6 + 22..23 3 +
        23..24 1 = 10 x 0.10 = 1.00; net 6.40 + 1.00 = 7.40, VAT 1.48."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 5, 4))
        extra0, extra1 = local(2025, 5, 5, 21), local(2025, 5, 5, 23)
        led.run(local(2025, 5, 4, 12), local(2025, 5, 6, 12), 900,
                lambda key, t0, t1: 3000 if extra0 < t1 <= extra1 else 1000)
        tariff = write_tariff(self, {
            "currency": "CZK", "vat": 20, "standing_charge": 1.00,
            "rates": [{"price": 0.10, "from": "22:00", "to": "06:00"},
                      {"price": 0.30}]})
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--from", "2025-05-05",
                          "--to", "2025-05-06", "--tariff", tariff)
        self.assertEqual(groups(doc)["Pitch 1"]["cost"],
                         {"energy": 6.40, "standing_charge": 1.00, "net": 7.40,
                          "vat": 1.48, "total": 8.88})
        self.assertEqual(doc["total"]["cost"]["total"], 8.88)
        # 18:00 Monday .. 06:00 Tuesday: 3 h x 1 + 1 h x 3 kWh at 0.30 = 1.80,
        # night 22..06: 3 + 1 + 6 = 10 kWh = 1.00; standing 6 h + 6 h = 0.5 day
        doc = report_json(self, "--ledger", path, "--from", "2025-05-05T18:00",
                          "--to", "2025-05-06T06:00", "--tariff", tariff)
        cost = groups(doc)["Pitch 1"]["cost"]
        self.assertEqual(cost["energy"], 2.80)
        self.assertEqual(cost["standing_charge"], 0.50)
        self.assertEqual(cost["vat"], 0.66)
        self.assertAlmostEqual(doc["tariff"]["standing_days"], 0.5, places=6)

    def test_standing_charge_counts_calendar_days(self):
        """March has 31 standing-charge days though 743 hours; the 23-hour
        day is one day."""
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 2, 28))
        led.run(local(2025, 2, 28, 22), local(2025, 4, 1, 2), 900, flat(0))
        tariff = write_tariff(self, {"vat": 0, "standing_charge": 0.10,
                                     "rates": [{"price": 0.5}]})
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--month", "2025-03", "--tariff", tariff)
        self.assertEqual(groups(doc)["Pitch 1"]["cost"]["standing_charge"], 3.10)
        self.assertEqual(groups(doc)["Pitch 1"]["energy_kwh"], 0)
        doc = report_json(self, "--ledger", path, "--from", "2025-03-30",
                          "--to", "2025-03-31", "--tariff", tariff)
        self.assertAlmostEqual(doc["tariff"]["standing_days"], 1.0, places=6)

    def test_tariff_errors_print_every_line(self):
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 5, 1))
        led.run(local(2025, 5, 1), local(2025, 5, 2), 900, flat(1000))
        tariff = write_tariff(self, {"vat": 150, "standing_charge": -1,
                                     "rates": [{"price": 0.1}]})
        r = report("--ledger", led.commit(), "--month", "2025-05", "--tariff", tariff)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(all(l.startswith(tariff + ": ") for l in lines), r.stderr)
        self.assertIn("vat", lines[0] + lines[1])
        self.assertIn("standing_charge", lines[0] + lines[1])
        self.assertEqual(r.stdout, "")
        r = report("--ledger", led.commit(), "--month", "2025-05", "--tariff",
                   tariff + ".missing")
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn(tariff + ".missing", r.stderr)


class Peaks(unittest.TestCase):
    def test_five_minute_rows_fill_fifteen_minute_windows(self):
        """Rows every 5 minutes: the window 10:15..10:30 holds 3 + 6 + 3 kW
        x 5 min = 1 kWh: 4 kW, though one 5-minute row was at 6 kW; the
        total's peak sums both circuits in the same window."""
        led = Ledger(self)
        led.describe(*A, "a", local(2025, 7, 1))
        led.describe(*B, "b", local(2025, 7, 1))
        spike = {local(2025, 7, 1, 10, 20): 3000, local(2025, 7, 1, 10, 25): 6000,
                 local(2025, 7, 1, 10, 30): 3000}
        led.run(local(2025, 7, 1), local(2025, 7, 2), 300,
                lambda key, t0, t1: spike.get(t1, 500) if key == A else 1000)
        doc = report_json(self, "--ledger", led.commit(), "--from", "2025-07-01T06:00",
                          "--to", "2025-07-01T18:00")
        a = groups(doc)["a"]
        self.assertAlmostEqual(a["peak_kw"], 4.0, places=3)
        self.assertEqual(a["peak_start"], "2025-07-01T10:15:00+02:00")
        self.assertEqual(doc["peak_resolution_s"], 900)
        self.assertAlmostEqual(doc["total"]["peak_kw"], 5.0, places=3)
        self.assertEqual(doc["total"]["peak_start"], "2025-07-01T10:15:00+02:00")

    def test_hourly_ledger_says_so(self):
        led = Ledger(self)
        led.describe(*A, "a", local(2025, 7, 1))
        led.run(local(2025, 7, 1), local(2025, 7, 2), 3600,
                lambda key, t0, t1: 8000 if t1 == local(2025, 7, 1, 11) else 1000)
        path = led.commit()
        doc = report_json(self, "--ledger", path, "--from", "2025-07-01T06:00",
                          "--to", "2025-07-01T18:00")
        a = groups(doc)["a"]
        self.assertEqual(doc["peak_resolution_s"], 3600)
        self.assertAlmostEqual(a["peak_kw"], 8.0, places=3)
        self.assertEqual(a["peak_start"], "2025-07-01T10:00:00+02:00")
        r = report("--ledger", path, "--from", "2025-07-01T06:00", "--to", "2025-07-01T18:00")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("peaks are averages over 60 minutes", r.stdout)
        r = report("--ledger", path, "--from", "2025-07-01T06:00", "--to", "2025-07-01T18:00",
                   "--format", "csv")
        self.assertIn("# the ledger's interval is 60 minutes: peaks are averages over 60 "
                      "minutes", r.stdout.splitlines()[1])


class Formats(unittest.TestCase):
    def ledger(self):
        led = Ledger(self)
        led.describe(*A, "Pitch 1, north", local(2025, 5, 1), tags={"customer": "ACME"})
        led.describe(*B, 'Pitch "2"', local(2025, 5, 1), tags={"customer": "Beta"})
        led.run(local(2025, 4, 30, 23), local(2025, 6, 1, 1), 900, flat({A: 1000, B: 250}))
        return led.commit()

    def tariff(self):
        self.tariff_path = write_tariff(self, {"currency": "EUR", "vat": 21, "standing_charge": 0.30,
                                   "rates": [{"price": 0.25}]})
        return self.tariff_path

    def test_table(self):
        r = report("--ledger", self.ledger(), "--month", "2025-05", "--tariff", self.tariff())
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("2025-05-01 00:00 CEST .. 2025-06-01 00:00 CEST (744 h)", lines[0])
        self.assertIn(ESTIMATE, lines[1])
        head = lines[2].split()
        self.assertEqual(head[:3], ["CIRCUIT", "ID", "KWH*"])
        self.assertIn("NET", head)
        self.assertIn("EUR*", head)
        self.assertTrue(lines[3].startswith("Pitch 1, north"), lines[3])
        self.assertIn(" 1.a ", lines[3])
        self.assertIn("744.000", lines[3])
        self.assertTrue(lines[4].startswith('Pitch "2"'), lines[4])
        self.assertTrue(lines[5].startswith("TOTAL"), lines[5])
        self.assertIn("930.000", lines[5])
        self.assertIn(ESTIMATE, lines[6])
        self.assertIn("peak: the highest 15-minute average power", lines[7])
        self.assertIn("standing charge for 31 days", lines[8])
        self.assertIn("100.00 %", lines[3])

    def test_csv(self):
        r = report("--ledger", self.ledger(), "--month", "2025-05", "--tariff",
                   self.tariff(), "--format", "csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        first, rest = r.stdout.split("\n", 1)
        self.assertTrue(first.startswith("# " + ESTIMATE), first)
        rows = list(csv.DictReader(io.StringIO(rest)))
        self.assertEqual(list(rows[0]), [
            "group", "device_id", "input", "circuits", "energy_kwh", "peak_kw",
            "peak_start", "coverage_percent", "unmetered_h", "energy_cost",
            "standing_charge", "net", "vat", "total", "currency"])
        self.assertEqual([x["group"] for x in rows], ["Pitch 1, north", 'Pitch "2"', "(total)"])
        self.assertEqual((rows[0]["device_id"], rows[0]["input"]), ("1", "a"))
        self.assertEqual(rows[0]["energy_kwh"], "744.000")
        self.assertEqual(rows[0]["peak_start"], "2025-05-01T00:00:00+02:00")
        self.assertEqual(rows[1]["energy_kwh"], "186.000")
        self.assertEqual(rows[2]["energy_kwh"], "930.000")
        # 744 x 0.25 = 186.00 + 31 x 0.30 = 9.30: 195.30, VAT 41.01
        self.assertEqual((rows[0]["net"], rows[0]["vat"], rows[0]["total"]),
                         ("195.30", "41.01", "236.31"))
        self.assertEqual(rows[0]["currency"], "EUR")
        self.assertEqual(rows[2]["device_id"], "")
        # without a tariff: no cost columns
        r = report("--ledger", self.ledger(), "--month", "2025-05", "--format", "csv")
        header = r.stdout.splitlines()[1].split(",")
        self.assertEqual(header[-1], "unmetered_h")

    def test_json(self):
        doc = report_json(self, "--ledger", self.ledger(), "--month", "2025-05",
                          "--tariff", self.tariff(), "--by", "tag:customer")
        self.assertEqual(doc["estimate"]["basis"],
                         "current x configured voltage x power factor")
        self.assertIn("energy_kwh", doc["estimate"]["fields"])
        self.assertEqual(doc["by"], "tag")
        self.assertEqual(doc["tag"], "customer")
        self.assertEqual(doc["hours"], 744)
        self.assertEqual(set(doc["groups"][0]), {
            "group", "circuits", "energy_kwh", "peak_kw", "peak_start",
            "coverage_percent", "unmetered_h", "cost"})
        self.assertEqual(set(doc["total"]), set(doc["groups"][0]) - {"group"})
        self.assertEqual(doc["tariff"], {"file": self.tariff_path,
                                         "currency": "EUR", "vat_percent": 21,
                                         "standing_days": 31.0})
        self.assertEqual(doc["rows"], 2 * 744 * 4)

    def test_estimate_in_every_format(self):
        path = self.ledger()
        for fmt in ("table", "csv", "json"):
            r = report("--ledger", path, "--month", "2025-05", "--format", fmt)
            self.assertEqual(r.returncode, 0, r.stderr)
            text = r.stdout if fmt != "json" else json.loads(r.stdout)["estimate"]["basis"]
            self.assertIn("current x configured voltage x power factor", text, fmt)


class BadInput(unittest.TestCase):
    def good(self):
        led = Ledger(self)
        led.describe(*A, "Pitch 1", local(2025, 5, 1))
        led.run(local(2025, 5, 1), local(2025, 5, 3), 900, flat(1000))
        return led.commit()

    def assertFails(self, r, status, text):
        self.assertEqual(r.returncode, status, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn(text, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_missing_ledger(self):
        path = os.path.join(common.tmpdir(self), "nothing.sqlite")
        r = report("--ledger", path, "--month", "2025-05")
        self.assertFails(r, EX_NOINPUT, path)
        self.assertIn("is powermeterd running with a ledger? see powermeter.json(5)", r.stderr)
        self.assertFalse(os.path.exists(path), "report created the ledger")

    def test_not_a_ledger(self):
        d = common.tmpdir(self)
        other = os.path.join(d, "other.sqlite")
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
        self.assertFails(report("--ledger", other, "--month", "2025-05"), EX_DATAERR, other)
        text = os.path.join(d, "text.sqlite")
        with open(text, "w") as f:
            f.write("hello, this is not SQLite at all\n" * 100)
        self.assertFails(report("--ledger", text, "--month", "2025-05"), EX_DATAERR, text)

    def test_newer_schema(self):
        led = Ledger(self, schema=2)
        led.describe(*A, "Pitch 1", local(2025, 5, 1))
        led.run(local(2025, 5, 1), local(2025, 5, 2), 900, flat(1000))
        path = led.commit()
        self.assertFails(report("--ledger", path, "--month", "2025-05"), EX_DATAERR, path)

    def test_damaged_rows(self):
        """A reading whose circuit has no description, and one without its
        boundary."""
        path = self.good()
        db = sqlite3.connect(path)
        db.execute("INSERT INTO readings VALUES (?, 1, 0, NULL, 0)",
                   ((local(2025, 5, 2) << 16) | 77,))
        db.commit()
        self.assertFails(report("--ledger", path, "--month", "2025-05"), EX_DATAERR,
                         "circuit 77, which has no description")
        db.execute("DELETE FROM readings WHERE key & 65535 = 77")
        db.execute("DELETE FROM boundaries WHERE time = ?", (local(2025, 5, 2),))
        db.commit()
        db.close()
        self.assertFails(report("--ledger", path, "--month", "2025-05"), EX_DATAERR,
                         "without their boundary")

    def test_empty_period(self):
        path = self.good()
        r = report("--ledger", path, "--month", "2025-07")
        self.assertFails(r, EX_DATAERR, "no ledger rows between 2025-07-01 00:00 CEST "
                         "and 2025-08-01 00:00 CEST")
        self.assertIn("the ledger has rows from 2025-05-01 00:15 CEST to 2025-05-03 00:00 CEST",
                      r.stderr)
        # a period ending exactly at the first boundary is empty too
        self.assertFails(report("--ledger", path, "--from", "2025-04-30",
                                "--to", "2025-05-01T00:14"), EX_DATAERR, "no ledger rows")

    def test_usage_errors(self):
        path = self.good()
        cases = [
            (["--from", "2025-05-02", "--to", "2025-05-01"], "is not before --to"),
            (["--from", "2025-05-02", "--to", "2025-05-02"], "is not before --to"),
            (["--from", "2025-02-30", "--to", "2025-05-01"], "--from '2025-02-30'"),
            (["--from", "2025-5-1", "--to", "2025-05-02"], "expected a local date"),
            (["--from", "2025-05-01T25:00", "--to", "2025-05-02"], "expected a local date"),
            (["--from", "2025-05-01 10:00", "--to", "2025-05-02"], "expected a local date"),
            (["--from", "2025-03-30T02:30", "--to", "2025-05-02"], "does not exist"),
            (["--month", "2025-13"], "--month '2025-13'"),
            (["--month", "2025-05", "--from", "2025-05-01"], "not both"),
            ([], "give the period"),
            (["--from", "2025-05-01"], "give the period"),
            (["--month", "2025-05", "--by", "customer"], "--by must be"),
            (["--month", "2025-05", "--by", "tag:"], "--by must be"),
            (["--month", "2025-05", "--format", "xml"], "--format must be"),
            (["--month", "2025-05", "--bogus"], "unknown option --bogus"),
            (["--month"], "needs a value"),
            (["--month", "2025-05", "extra"], "unexpected argument"),
        ]
        for args, text in cases:
            with self.subTest(args=args):
                self.assertFails(report("--ledger", path, *args), EX_USAGE, text)

    def test_config_gives_the_ledger(self):
        """Without --ledger: the config's "ledger.path"; a broken config is
        78; the config's default path when missing is 66 naming it."""
        d = common.tmpdir(self)
        path = self.good()
        cfg = os.path.join(d, "powermeter.json")
        base = {"state_directory": os.path.join(d, "state"),
                "devices": [{"id": 1, "port": "/dev/ttyUSB0",
                             "inputs": [{"input": "a", "name": "Pitch 1"}]}]}
        with open(cfg, "w") as f:
            json.dump(dict(base, ledger={"path": path}), f)
        r = report("-c", cfg, "--month", "2025-05", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        # May 1 00:15 is the circuit's first row: 191 intervals of 0.25 kWh
        self.assertAlmostEqual(json.loads(r.stdout)["total"]["energy_kwh"], 47.75, places=3)
        with open(cfg, "w") as f:
            json.dump(base, f)
        r = report("-c", cfg, "--month", "2025-05")
        self.assertFails(r, EX_NOINPUT, os.path.join(d, "state", "ledger.sqlite"))
        with open(cfg, "w") as f:
            json.dump(dict(base, ledger={"intervall": 60}), f)
        r = report("-c", cfg, "--month", "2025-05")
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn("intervall", r.stderr)

    def test_read_only_copy(self):
        """A WAL ledger copied to another machine, the file read-only: the
        report reads it and changes nothing in it."""
        led = Ledger(self, wal=True)
        led.describe(*A, "Pitch 1", local(2025, 5, 1))
        led.run(local(2025, 5, 1), local(2025, 5, 3), 900, flat(1000))
        led.commit()
        led.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        led.db.close()
        copy = os.path.join(common.tmpdir(self), "ledger.sqlite")
        with open(led.path, "rb") as src, open(copy, "wb") as dst:
            dst.write(src.read())
        os.chmod(copy, 0o444)
        with open(copy, "rb") as f:
            before = f.read()
        r = report("--ledger", copy, "--from", "2025-05-02", "--to", "2025-05-03",
                   "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertAlmostEqual(json.loads(r.stdout)["total"]["energy_kwh"], 24.0, places=3)
        with open(copy, "rb") as f:
            self.assertEqual(f.read(), before)


class EndToEnd(unittest.TestCase):
    def test_daemon_ledger_and_report_agree(self):
        """powermeterd writes its ledger every 2 s against hdhk-sim (10 A
        and 5 A at 230 V): a report while it runs reads it; afterwards the
        report over its boundaries has each circuit's counter difference,
        the currents' energy, and everything metered."""
        import daemonlib
        from sim import Sim
        interval, boundary, volts = 0.25, 2, 230.0
        sim = Sim.single(self)
        sim.set(0, 1, "a", 1000)
        sim.set(0, 1, "b", 500)
        influx = Influx1(self)
        cfg = daemonlib.daemon_config(self, sim, interval=interval, inputs="ab", extra={
            "energy": {"persist_interval": 1}, "ledger": {"interval": boundary}},
            influx={"url": influx.url, "database": "powermeter"})
        with open(cfg) as f:
            path = os.path.join(json.load(f)["state_directory"], "ledger.sqlite")

        def times():
            try:
                db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
                try:
                    return [t for (t,) in db.execute("SELECT time FROM boundaries ORDER BY time")]
                finally:
                    db.close()
            except sqlite3.Error:
                return []

        def text(t):
            return datetime.fromtimestamp(t, ZONE).strftime("%Y-%m-%dT%H:%M:%S")

        d = daemonlib.Daemon(self, cfg).start()
        common.wait_for(lambda: len(times()) >= 3, 30, what="3 boundaries")
        # while the daemon writes
        r = report("-c", cfg, "--from", text(times()[0]), "--to",
                   text(times()[0] + 3600), "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(json.loads(r.stdout)["total"]["circuits"], 2)
        common.wait_for(lambda: len(times()) >= 10, 40, what="10 boundaries")
        self.assertEqual(d.stop(), 0, d.stderr())

        ts = times()
        t1, tn = ts[1], ts[-1]
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        counter = {(ch, t): wh for ch, t, wh in db.execute(
            "SELECT channel, time, energy_wh FROM ledger")}
        db.close()
        doc = report_json(self, "-c", cfg, "--from", text(t1), "--to", text(tn))
        g = {x["input"]: x for x in doc["groups"]}
        self.assertEqual(sorted(g), ["a", "b"])
        self.assertEqual(doc["rows"], 2 * (len(ts) - 2))
        for ch, amps in (("a", 10.0), ("b", 5.0)):
            kwh = g[ch]["energy_kwh"]
            self.assertAlmostEqual(kwh, (counter[(ch, tn)] - counter[(ch, t1)]) / 1000,
                                   places=6)
            self.assertAlmostEqual(kwh * 1000, amps * volts * (tn - t1) / 3600,
                                   delta=2 * amps * volts * interval / 3600 + 0.001)
            self.assertEqual(g[ch]["coverage_percent"], 100.0)
            self.assertEqual(g[ch]["group"], daemonlib.input_name(1, ch))
        # and InfluxDB agrees: the integral of the power it stored over the
        # same stretch, and the difference of its energy counters (which
        # trail the ledger's by one to two saves, the same at both ends)
        common.wait_for(lambda: influx.count() > 0, 10, what="points in InfluxDB")
        for ch, amps in (("a", 10.0), ("b", 5.0)):
            q = ("SELECT integral(power, 1h) FROM powermeter WHERE input = '%s' "
                 "AND time > %ds AND time <= %ds" % (ch, t1, tn))
            series = influx.query(q)["results"][0]["series"]
            wh = series[0]["values"][0][1]
            self.assertAlmostEqual(g[ch]["energy_kwh"] * 1000, wh,
                                   delta=2 * amps * volts * interval / 3600 + 0.001)
            q = ("SELECT last(energy) FROM powermeter WHERE input = '%s' AND time <= %ds"
                 % (ch, tn))
            e_n = influx.query(q)["results"][0]["series"][0]["values"][0][1]
            q = ("SELECT last(energy) FROM powermeter WHERE input = '%s' AND time <= %ds"
                 % (ch, t1))
            e_1 = influx.query(q)["results"][0]["series"][0]["values"][0][1]
            self.assertAlmostEqual(g[ch]["energy_kwh"] * 1000, e_n - e_1,
                                   delta=2 * amps * volts * 1.0 / 3600 + 0.002)


if __name__ == "__main__":
    common.main()
