#!/usr/bin/env python3
"""The InfluxDB writer (sink_influx.c with ring, spool and HTTP client),
driven by tests/lp_load with synthetic samples: real InfluxDB 1.6 (v1) and
VictoriaMetrics (v2 with a token) get every point exactly once with its
original timestamp; a scripted server gives each answer of issue 3 item 3
(400 split, 413 split, 429/503 Retry-After, 401/403/404 kept, 500 backoff,
network down → spool → replay); restarts and SIGKILL lose nothing beyond
one flush interval. Issue 14: InfluxDB 1.6's partial write is not sent
again; a database back from an outage gets live data within 10 s (the
/ping probe); every point a damaged, torn or deleted spool loses is counted
once under its cause; memory stays within its bounds."""
import json
import os
import re
import resource
import signal
import struct
import subprocess
import threading
import time
import unittest

import common
from fakehttp import Answer, FakeInflux
from servers import Influx1, Victoria

LP_LOAD = os.path.join(common.BUILD, "tests", "lp_load")
INPUTS = 16


def lp_value(tick, dev, ch):
    """The raw count lp_load gives input ch of device index dev at tick."""
    return (tick * 7 + dev * 101 + ch * 13) % 5000


def expected_points(ticks, devices, start_ms, step_ms=1000):
    """{(device_id, input letter, time ms): current} for those ticks."""
    out = {}
    for t in ticks:
        for d in range(devices):
            for c in range(INPUTS):
                # amperes = raw x ratio (0.01), as lineproto computes it
                out[(str(d + 1), chr(ord("a") + c), start_ms + t * step_ms)] = \
                    lp_value(t, d, c) * 0.01
    return out


def rounded(points):
    """Values to 9 decimals: VictoriaMetrics stores a float as a decimal
    mantissa and exponent, so 57 x 0.01 comes back as 0.57."""
    return {k: round(v[0] if isinstance(v, list) else v, 9) for k, v in points.items()}


def line_key(line):
    """(device_id, input, time) of a line lp_load formatted."""
    head, _, rest = line.partition(" ")
    tags = dict(kv.split("=", 1) for kv in head.split(",")[1:] if "=" in kv)
    return tags.get("device_id"), tags.get("input"), int(rest.rsplit(" ", 1)[1])


def start_ms():
    """A start time: whole seconds, a minute back (the points are stamped
    start + tick * step)."""
    return (int(time.time()) - 60) * 1000


class Load:
    """One lp_load process. 'args' are its options besides --url; the
    spool is 'spool' (a directory kept by the test across runs)."""

    def __init__(self, testcase, url, spool, *args, quick=True, fsize=None):
        """'fsize': the largest file lp_load may write (RLIMIT_FSIZE), as
        on a full disk: its stderr then goes through a pipe."""
        common.require_tool(LP_LOAD)
        self.testcase = testcase
        argv = [LP_LOAD, "--url", url, "--spool", spool]
        if quick:
            argv += ["--backoff-min-ms", "100", "--backoff-max-ms", "400",
                     "--auth-retry-ms", "500"]
        argv += [str(a) for a in args]
        self.stderr_path = os.path.join(common.tmpdir(testcase, "pm-lp-"), "stderr")
        self.err = open(self.stderr_path, "w")
        self.err_copier = None
        preexec = None
        if fsize is not None:
            def preexec():
                # a write past the limit fails with EFBIG instead of a signal
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE,
                                   (fsize, resource.RLIM_INFINITY))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=self.err if fsize is None else subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=preexec)
        if fsize is not None:
            self.err_copier = threading.Thread(target=self._copy_stderr, daemon=True)
            self.err_copier.start()
        self.ticks = []         # (tick, stamp ms, monotonic time printed)
        self.result = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        testcase.addCleanup(self._cleanup)

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line == "ready":
                self.ready.set()
            elif line.startswith("tick "):
                _, i, stamp = line.split()
                self.ticks.append((int(i), int(stamp), time.monotonic()))
            elif line.startswith("{"):
                self.result = json.loads(line)

    def _copy_stderr(self):
        for line in self.proc.stderr:
            self.err.write(line)
            self.err.flush()

    def _cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.err_copier:
            self.err_copier.join(5)
        self.err.close()

    def wait_ticks(self, n, timeout=30):
        common.wait_for(lambda: len(self.ticks) >= n, timeout, what="%d ticks" % n)

    def wait(self, timeout=60):
        """Waits for the exit; returns the final counters."""
        code = self.proc.wait(timeout)
        self.reader.join(5)
        if self.err_copier:
            self.err_copier.join(5)
        self.testcase.assertEqual(code, 0, self.stderr())
        self.testcase.assertIsNotNone(self.result, self.stderr())
        return self.result

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.reader.join(5)

    def stderr(self):
        self.err.flush()
        with open(self.stderr_path) as f:
            return f.read()


def samples_args(ticks, devices=1, start=None, first_tick=0, pace_ms=0, flush=0.2,
                 drain=30, extra=(), step_ms=1000):
    args = ["--devices", devices, "--ticks", ticks, "--first-tick", first_tick,
            "--start-ms", start, "--pace-ms", pace_ms, "--flush", flush,
            "--step-ms", step_ms]
    if drain:
        args += ["--drain", drain]
    return args + list(extra)


def sanitized(program):
    """Whether a program is built with a sanitizer (its memory use is then
    the sanitizer's: shadow memory, quarantine)."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    return "libasan" in out or "libtsan" in out


def vmhwm_kib(pid):
    """Peak resident set (VmHWM) of a process, KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def spool_records(spool):
    """The records of a spool's segments (spool.h: "PMS1", length, lines,
    CRC-32, u32 little-endian, then the payload): [(segment path, [(offset,
    length, lines, payload)])], oldest first."""
    out = []
    for name in sorted(n for n in os.listdir(spool) if n.endswith(".seg")):
        path = os.path.join(spool, name)
        with open(path, "rb") as f:
            data = f.read()
        recs, off = [], 0
        while off + 16 <= len(data):
            magic, length, lines, _ = struct.unpack_from("<IIII", data, off)
            assert magic == 0x31534d50, (path, off)
            recs.append((off, length, lines, data[off + 16:off + 16 + length]))
            off += 16 + length
        out.append((path, recs))
    return out


def overwrite(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def vm_points(vm):
    """{(device_id, input, time): [values]} of powermeter_current in VM
    (a list, so a duplicate shows up as two values)."""
    out = {}
    for labels, ts, v in vm.samples('{__name__="powermeter_current"}'):
        out.setdefault((labels.get("device_id"), labels.get("input"), ts), []).append(v)
    return out


class RealServers(unittest.TestCase):
    def test_influx1_every_point_once(self):
        db = Influx1(self)
        spool = common.tmpdir(self)
        t0 = start_ms()
        load = Load(self, db.url, spool, "--api", "v1", "--db", db.database,
                    *samples_args(20, devices=2, start=t0))
        res = load.wait()
        want = expected_points(range(20), 2, t0)
        self.assertEqual(res["written"], len(want), load.stderr())
        self.assertEqual(res["dropped"] + res["rejected"] + res["spooled"], 0)
        rows = db.points("powermeter")
        got = {(r["device_id"], r["input"], r["time"]): r["current"] for r in rows}
        self.assertEqual(len(rows), len(want))
        self.assertEqual(rounded(got), rounded(want))
        # the seed's schema: tags name and unique_id too
        r0 = [r for r in rows if r["device_id"] == "2" and r["input"] == "c"][0]
        self.assertEqual(r0["name"], "Input c")
        self.assertEqual(r0["unique_id"], str(16 + 2))
        # one request per batch, not per value
        self.assertLessEqual(res["requests"], 3)

    def test_influx1_basic_auth_kept_until_fixed(self):
        db = Influx1(self, auth=True)
        spool = common.tmpdir(self)
        t0 = start_ms()
        bad = Load(self, db.url, spool, "--api", "v1", "--db", db.database,
                   "--username", db.username, "--password", "wrong",
                   *samples_args(5, start=t0, drain=0))
        res = bad.wait()
        self.assertEqual(res["written"], 0)
        self.assertEqual(res["spool_points"], 5 * INPUTS, bad.stderr())
        err = bad.stderr()
        self.assertIn("HTTP 401", err)
        self.assertIn("check the token (v2) or username and password (v1)", err)
        self.assertNotIn("wrong", err.replace("wrong password", ""))
        self.assertEqual(db.count(), 0)

        good = Load(self, db.url, spool, "--api", "v1", "--db", db.database,
                    "--username", db.username, "--password", db.password,
                    *samples_args(5, start=t0, first_tick=5))
        res = good.wait()
        self.assertEqual(res["written"], 10 * INPUTS, good.stderr())
        self.assertEqual(res["replayed"], 5 * INPUTS)
        self.assertEqual(res["spool_points"], 0)
        got = {(r["device_id"], r["input"], r["time"]): r["current"]
               for r in db.points("powermeter")}
        self.assertEqual(rounded(got), rounded(expected_points(range(10), 1, t0)))

    def test_victoria_v2_token_exactly_once(self):
        vm = Victoria(self)
        spool = common.tmpdir(self)
        t0 = start_ms()
        load = Load(self, vm.url, spool, "--api", "v2", "--org", "site",
                    "--bucket", "powermeter", "--token", "t0ken-s3cret",
                    *samples_args(15, devices=2, start=t0))
        res = load.wait()
        self.assertNotIn("t0ken-s3cret", load.stderr())
        want = expected_points(range(15), 2, t0)
        self.assertEqual(res["written"], len(want))
        vm.settle()
        got = vm_points(vm)
        self.assertEqual(rounded(got), rounded(want))
        self.assertEqual([k for k, v in got.items() if len(v) != 1], [])

    def test_influx1_partial_write_not_sent_again(self):
        """Issue 14, defect 5: a field type conflict in one shard. InfluxDB
        1.6 stores the other lines and answers 400 "partial write: ...
        dropped=16": the 16 are counted as rejected and logged, and no line
        is sent again (influxd's own count of points sent to it shows each
        once; a split resend would send the good ones twice or more)."""
        db = Influx1(self)
        day = 86400 * 1000
        # whole days 60 back; ticks 10 days apart, each in its own shard
        # (InfluxDB 1.x keeps field types per shard: 7 days here)
        t0 = (int(time.time()) // 86400 - 60) * day
        self.assertEqual(db.write("powermeter,input=zz current=1i %d" % (t0 + 20 * day)), 204)
        before = db.write_stats()
        load = Load(self, db.url, common.tmpdir(self), "--api", "v1", "--db", db.database,
                    *samples_args(6, start=t0, flush=1, step_ms=10 * day))
        res = load.wait()
        after = db.write_stats()
        self.assertEqual(res["rejected"], INPUTS, load.stderr())
        self.assertEqual(res["written"], 5 * INPUTS)
        self.assertEqual(res["dropped"] + res["spool_points"], 0)
        self.assertEqual(after["pointReq"] - before["pointReq"], 6 * INPUTS,
                         "points sent again: %s" % load.stderr())
        self.assertEqual(after["pointsWrittenOK"] - before["pointsWrittenOK"], 5 * INPUTS)
        self.assertEqual(after["writeReq"] - before["writeReq"], res["requests"])
        for k in (0, 1, 3, 4, 5):
            stamp = t0 + k * 10 * day
            rows = db.points(where="time = %dms" % stamp)
            self.assertEqual(len(rows), INPUTS, k)
        err = load.stderr()
        self.assertIn("refused 16 (HTTP 400: partial write: field type conflict", err)
        self.assertIn("the rest is not sent again", err)

    def test_back_within_10_s_of_the_database(self):
        """Issue 14, defect 8: backing off for 15..30 s after a failure, the
        writer sees VictoriaMetrics back through its /ping probe: live data
        arrives within 10 s of its return, the spool follows, every point
        once."""
        vm = Victoria(self)
        spool = common.tmpdir(self)
        t0 = start_ms()
        auth = ["--api", "v2", "--org", "site", "--bucket", "b", "--token", "x"]
        load = Load(self, vm.url, spool, *auth, "--backoff-min-ms", 30000,
                    "--backoff-max-ms", 60000,
                    *samples_args(600, start=t0, pace_ms=100, step_ms=100, flush=0.2,
                                  drain=0, extra=["--hold"]), quick=False)
        load.wait_ticks(10)
        common.wait_for(lambda: vm.count() >= 5 * INPUTS, 20, what="first points")
        vm.stop()
        time.sleep(3)   # a failure, then 15..30 s of backoff
        vm.start()
        back = time.monotonic()
        load.wait_ticks(len(load.ticks) + 1)
        first_after = [stamp for i, stamp, when in load.ticks if when >= back][0]

        def live():
            return any(ts >= first_after for _, ts, _ in
                       vm.samples('{__name__="powermeter_current"}'))
        common.wait_for(live, 15, interval=0.25, what="live data after the outage")
        took = time.monotonic() - back
        self.assertLess(took, 10.0, load.stderr())
        self.assertIn("answers its health probe again", load.stderr())
        res = load.terminate()
        ticks = len(load.ticks)
        self.assertEqual(res["dropped"] + res["spool_points"], 0, load.stderr())
        self.assertGreater(res["replayed"], 0)
        self.assertEqual(res["written"], ticks * INPUTS)
        vm.settle()
        got = vm_points(vm)
        want = expected_points(range(ticks), 1, t0, step_ms=100)
        self.assertEqual([k for k, v in got.items() if len(v) != 1][:5], [])
        self.assertEqual(rounded(got), rounded(want))

    def test_outage_with_restart_exactly_once(self):
        """The database goes away, the writer is restarted in the middle
        of the outage, the database comes back: every point is there once,
        with its original timestamp (VictoriaMetrics keeps duplicates, so
        they would show)."""
        vm = Victoria(self)
        spool = common.tmpdir(self)
        t0 = start_ms()
        auth = ["--api", "v2", "--org", "site", "--bucket", "b", "--token", "x"]
        first = Load(self, vm.url, spool, *auth,
                     *samples_args(40, devices=2, start=t0, pace_ms=50, flush=0.1,
                                   drain=0, extra=["--hold"]))
        first.wait_ticks(10)
        vm.stop()
        first.wait_ticks(40)
        r1 = first.terminate()
        self.assertGreater(r1["spool_points"], 0, first.stderr())
        self.assertEqual(r1["dropped"], 0)

        second = Load(self, vm.url, spool, *auth,
                      *samples_args(40, devices=2, start=t0, first_tick=40, pace_ms=50,
                                    flush=0.1, drain=0, extra=["--hold"]))
        second.wait_ticks(20)
        vm.start()
        second.wait_ticks(40)
        common.wait_for(lambda: second.proc.poll() is None and
                        vm.count() >= 80 * 2 * INPUTS, 60, interval=0.3,
                        what="the spool replayed")
        r2 = second.terminate()
        self.assertEqual(r2["dropped"], 0, second.stderr())
        self.assertEqual(r2["spool_points"], 0)
        self.assertGreater(r2["replayed"], 0)
        vm.settle()
        got = vm_points(vm)
        want = expected_points(range(80), 2, t0)
        self.assertEqual(sorted(set(want) - set(got))[:5], [])
        self.assertEqual([k for k, v in got.items() if len(v) != 1][:5], [])
        self.assertEqual(rounded(got), rounded(want))


class Answers(unittest.TestCase):
    """Each answer of issue 3 item 3, from the scripted server."""

    def run_load(self, fake, ticks=5, devices=1, spool=None, extra=(), **kw):
        spool = spool or common.tmpdir(self)
        t0 = kw.pop("start", None) or start_ms()
        load = Load(self, fake.url, spool, "--api", "v2", "--org", "o", "--bucket", "b",
                    "--token", "tok", *samples_args(ticks, devices=devices, start=t0,
                                                    extra=extra, **kw))
        return load, t0

    def assert_stored_once(self, fake, want_keys):
        stored = [line_key(l) for l in fake.stored()]
        self.assertEqual(len(stored), len(set(stored)), "a point was stored twice")
        self.assertEqual(set(stored), set(want_keys))

    def test_400_split_keeps_good_lines(self):
        fake = FakeInflux(self)
        fake.refuse_lines(lambda l: ",input=c," in l)
        load, t0 = self.run_load(fake, ticks=6, pace_ms=100, flush=0.25)
        res = load.wait()
        want = [k for k in expected_points(range(6), 1, t0) if k[1] != "c"]
        self.assert_stored_once(fake, want)
        self.assertEqual(res["rejected"], 6)
        self.assertEqual(res["written"], 6 * 15)
        self.assertEqual(res["spooled"] + res["dropped"], 0)
        # never resent as is: no body answered 400 goes out again unchanged
        refused = [r.raw for r in fake.writes() if r.status == 400]
        self.assertTrue(refused)
        bodies = [tuple(r.lines) for r in fake.writes()]
        self.assertEqual(len(bodies), len(set(bodies)))
        self.assertIn("refused a point (HTTP 400", load.stderr())

    def test_413_split(self):
        fake = FakeInflux(self)
        fake.max_lines = 10
        load, t0 = self.run_load(fake, ticks=5, flush=1)
        res = load.wait()
        self.assert_stored_once(fake, expected_points(range(5), 1, t0))
        self.assertEqual(res["rejected"], 0)
        self.assertTrue(any(r.status == 413 for r in fake.writes()))
        self.assertTrue(all(len(r.lines) <= 10 for r in fake.writes() if r.status == 204))

    def test_429_retry_after_seconds(self):
        fake = FakeInflux(self)
        fake.queue(Answer(429, body='{"code":"too many requests"}', retry_after="2"))
        load, t0 = self.run_load(fake, ticks=3)
        res = load.wait()
        self.assert_stored_once(fake, expected_points(range(3), 1, t0))
        w = fake.writes()
        self.assertEqual(w[0].status, 429)
        # the backoff alone would retry after 0.1..0.4 s
        self.assertGreaterEqual(w[1].time - w[0].time, 1.9)
        self.assertEqual(res["retries"], 1)

    def test_503_retry_after_date(self):
        fake = FakeInflux(self)
        when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
        fake.queue(Answer(503, retry_after=when))
        load, t0 = self.run_load(fake, ticks=3)
        load.wait()
        self.assert_stored_once(fake, expected_points(range(3), 1, t0))
        w = fake.writes()
        self.assertEqual(w[0].status, 503)
        # an HTTP date has whole seconds: at least 2 s of the 3
        self.assertGreaterEqual(w[1].time - w[0].time, 1.9)

    def check_config_error(self, status, hint):
        fake = FakeInflux(self)
        fake.set_default(Answer(status, body='{"error":"nope"}'))
        spool = common.tmpdir(self)
        load, t0 = self.run_load(fake, ticks=20, spool=spool, pace_ms=100, flush=0.2,
                                 drain=0, extra=["--hold"])
        common.wait_for(lambda: len(fake.writes()) >= 3, 20, what="retries")
        load.wait_ticks(20)
        fake.set_default(Answer(204))   # fixed
        common.wait_for(lambda: len(fake.stored()) >= 20 * INPUTS, 20,
                        what="delivery once fixed")
        res = load.terminate()
        self.assert_stored_once(fake, expected_points(range(20), 1, t0))
        failing = [r for r in fake.writes() if r.status == status]
        # retried slowly (every 0.5 s here), not once per batch
        gaps = [b.time - a.time for a, b in zip(failing, failing[1:])]
        self.assertTrue(all(g >= 0.2 for g in gaps), gaps)
        err = load.stderr()
        self.assertIn("HTTP %d" % status, err)
        self.assertIn(hint, err)
        self.assertIn("answers again", err)
        self.assertNotIn("tok\n", err)
        self.assertEqual(res["dropped"] + res["rejected"], 0)

    def test_401_kept_until_fixed(self):
        self.check_config_error(401, "check the token (v2) or username and password")

    def test_403_kept_until_fixed(self):
        self.check_config_error(403, "no permission to write")

    def test_404_kept_until_fixed(self):
        self.check_config_error(404, 'bucket "b" in org "o"')

    def test_500_backoff_then_delivered(self):
        fake = FakeInflux(self)
        fake.queue(Answer(500), Answer(500), Answer(500), Answer(502))
        load, t0 = self.run_load(fake, ticks=3)
        res = load.wait()
        self.assert_stored_once(fake, expected_points(range(3), 1, t0))
        w = fake.writes()
        self.assertEqual([r.status for r in w[:4]], [500, 500, 500, 502])
        gaps = [b.time - a.time for a, b in zip(w, w[1:5])]
        # 0.1 s doubling up to 0.4 s, each with jitter over its upper half
        for gap, step in zip(gaps, [0.1, 0.2, 0.4, 0.4]):
            self.assertGreaterEqual(gap, step / 2 - 0.01, gaps)
        self.assertEqual(res["retries"], 4)

    def test_network_down_spool_replay(self):
        fake = FakeInflux(self, start=False)
        load, t0 = self.run_load(fake, ticks=10, pace_ms=50, flush=0.1, drain=0,
                                 extra=["--hold"])
        load.wait_ticks(10)
        time.sleep(0.5)
        fake.start()
        fake.wait_stored(10 * INPUTS)
        res = load.terminate()
        self.assert_stored_once(fake, expected_points(range(10), 1, t0))
        self.assertEqual(res["replayed"], res["spooled"])
        self.assertGreater(res["replayed"], 0)
        self.assertIn("answers again", load.stderr())

    def test_slow_server_close_is_quick(self):
        fake = FakeInflux(self)
        fake.set_default(Answer(204, delay=30, store=False))
        spool = common.tmpdir(self)
        load, t0 = self.run_load(fake, ticks=5, spool=spool, pace_ms=100, flush=0.2,
                                 drain=0, extra=["--hold", "--timeout", "20"])
        load.wait_ticks(5)
        common.wait_for(lambda: fake.writes(), 10, what="a request")
        began = time.monotonic()
        res = load.terminate()
        self.assertLess(time.monotonic() - began, 8.0)
        self.assertEqual(res["spool_points"] + res["written"], 5 * INPUTS, load.stderr())
        # the next run delivers what was spooled
        fake.set_default(Answer(204))
        again = Load(self, fake.url, spool, "--api", "v2", "--org", "o", "--bucket", "b",
                     "--token", "tok", *samples_args(0, start=t0))
        again.wait()
        self.assert_stored_once(fake, expected_points(range(5), 1, t0))

    def test_close_is_quick_with_a_batch_waiting(self):
        """SIGTERM while the writer waits to fill a batch (the queue is
        empty) and the database hangs: the last attempt keeps to the
        close budget, not the request timeout, and the batch is spooled."""
        fake = FakeInflux(self)
        fake.queue(Answer(204))
        fake.set_default(Answer(204, delay=30, store=False))
        spool = common.tmpdir(self)
        load, t0 = self.run_load(fake, ticks=5, spool=spool, pace_ms=100, flush=60,
                                 drain=0, extra=["--hold", "--timeout", "20",
                                                 "--final-budget-ms", "2000"])
        load.wait_ticks(5)
        time.sleep(0.3)     # taken from the queue into the batch
        began = time.monotonic()
        res = load.terminate()
        self.assertLess(time.monotonic() - began, 5.0)
        self.assertEqual(res["written"], INPUTS)    # the first tick
        self.assertEqual(res["spool_points"], 4 * INPUTS, load.stderr())
        self.assertEqual(res["dropped"], 0)

    def test_reload_close_spools_then_replays(self):
        fake = FakeInflux(self)
        spool = common.tmpdir(self)
        # Ticks 300 ms apart: the first tick is sent at once (no tick period
        # known yet), the later ones wait for the 60 s flush. Pushed back to
        # back they could reach the writer as one tick and all be sent.
        load, t0 = self.run_load(fake, ticks=4, spool=spool, flush=60, drain=0,
                                 pace_ms=300, extra=["--reload-close"])
        res = load.wait()
        # what was not sent yet went to the spool at close, without a try
        sent = len(fake.writes())
        self.assertGreater(res["spool_points"], 0)
        self.assertEqual(res["written"] + res["spool_points"], 4 * INPUTS)
        self.assertEqual(res["requests"], sent)
        self.assertEqual(sum(len(r.lines) for r in fake.writes()), res["written"])
        again = Load(self, fake.url, spool, "--api", "v2", "--org", "o", "--bucket", "b",
                     "--token", "tok", *samples_args(0, start=t0))
        spooled = res["spool_points"]
        res = again.wait()
        self.assertEqual(res["replayed"], spooled)
        self.assert_stored_once(fake, expected_points(range(4), 1, t0))

    def test_one_batch_per_tick(self):
        fake = FakeInflux(self)
        load, t0 = self.run_load(fake, ticks=12, devices=2, pace_ms=250, flush=0.25)
        load.wait()
        # 12 ticks of 32 values, the flush interval as long as a tick: one
        # request per tick (tick_done() closes the batch)
        n = len(fake.writes())
        self.assertGreaterEqual(n, 11)
        self.assertLessEqual(n, 13)
        self.assertEqual(sum(len(r.lines) for r in fake.writes()), 12 * 2 * INPUTS)
        self.assertTrue(all(len(r.lines) % INPUTS == 0 for r in fake.writes()))


class SpoolUnwritable(unittest.TestCase):
    """A spool that cannot be written (a full disk; here RLIMIT_FSIZE 0,
    so every append fails with EFBIG): the points stay in memory, bounded,
    and the failure is logged once, not at every flush."""

    AUTH = ["--api", "v2", "--org", "o", "--bucket", "b", "--token", "tok"]

    def assert_stored_once(self, fake, want_keys):
        stored = [line_key(l) for l in fake.stored()]
        self.assertEqual(len(stored), len(set(stored)), "a point was stored twice")
        self.assertEqual(sorted(set(want_keys) - set(stored))[:5], [])
        self.assertEqual(set(stored), set(want_keys))

    def test_kept_in_memory_until_the_database_answers(self):
        fake = FakeInflux(self, start=False)
        t0 = start_ms()
        load = Load(self, fake.url, common.tmpdir(self), *self.AUTH,
                    *samples_args(30, start=t0, pace_ms=50, flush=0.1, drain=0,
                                  extra=["--hold"]), fsize=0)
        load.wait_ticks(30)
        time.sleep(1.0)     # more flushes and spool retries (every 0.4 s)
        fake.start()
        fake.wait_stored(30 * INPUTS)
        res = load.terminate()
        self.assert_stored_once(fake, expected_points(range(30), 1, t0))
        self.assertEqual(res["dropped"], 0, load.stderr())
        self.assertEqual(res["spooled"], 0)
        err = load.stderr()
        self.assertEqual(len([l for l in err.splitlines()
                              if "cannot write to the spool" in l]), 1, err)
        self.assertIn("keeping the points in memory", err)

    def test_spool_writable_again(self):
        fake = FakeInflux(self, start=False)
        spool = common.tmpdir(self)
        t0 = start_ms()
        load = Load(self, fake.url, spool, *self.AUTH,
                    *samples_args(30, start=t0, pace_ms=50, flush=0.1, drain=0,
                                  extra=["--hold"]), fsize=0)
        load.wait_ticks(5)
        common.wait_for(lambda: "cannot write to the spool" in load.stderr(), 10,
                        what="the spool failure logged")
        resource.prlimit(load.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        common.wait_for(lambda: "writable again" in load.stderr(), 10,
                        what="the spool working again")
        load.wait_ticks(30)
        fake.start()
        fake.wait_stored(30 * INPUTS)
        res = load.terminate()
        self.assert_stored_once(fake, expected_points(range(30), 1, t0))
        self.assertEqual(res["dropped"], 0, load.stderr())
        # what memory held went to the spool, and from there to the database
        self.assertGreater(res["spooled"], 0)
        self.assertEqual(res["replayed"], res["spooled"])
        self.assertEqual(res["spool_points"], 0)

    def test_read_position_failure_logged_once(self):
        """Replaying from a spool whose read position cannot be saved: the
        points go out once each, and that is said once, not per batch."""
        fake = FakeInflux(self, start=False)
        spool = common.tmpdir(self)
        t0 = start_ms()
        first = Load(self, fake.url, spool, *self.AUTH,
                     *samples_args(20, start=t0, pace_ms=50, flush=0.1, drain=0))
        r1 = first.wait()
        self.assertEqual(r1["spool_points"], 20 * INPUTS, first.stderr())
        fake.start()
        second = Load(self, fake.url, spool, *self.AUTH,
                      *samples_args(0, start=t0, extra=["--batch-lines", 16]),
                      fsize=10)
        r2 = second.wait()
        self.assert_stored_once(fake, expected_points(range(20), 1, t0))
        self.assertEqual(r2["replayed"], 20 * INPUTS)
        self.assertGreater(len(fake.writes()), 5)   # several batches
        err = second.stderr()
        complaints = [l for l in err.splitlines()
                      if re.search("cannot update the .*read position", l)]
        self.assertEqual(len(complaints), 1, err)

    def test_memory_bound_drops_the_oldest(self):
        fake = FakeInflux(self, start=False)
        t0 = start_ms()
        load = Load(self, fake.url, common.tmpdir(self), *self.AUTH,
                    *samples_args(40, start=t0, pace_ms=20, flush=0.1, drain=0,
                                  extra=["--hold", "--ring-bytes", 16384]), fsize=0)
        load.wait_ticks(40)
        time.sleep(0.5)
        fake.start()
        common.wait_for(lambda: len(fake.stored()) >= 100, 20, what="delivery")
        res = load.terminate()
        pushed = 40 * INPUTS
        stored = [line_key(l) for l in fake.stored()]
        self.assertEqual(len(stored), len(set(stored)))
        self.assertEqual(res["written"], len(stored))
        self.assertGreater(res["dropped"], 0)
        self.assertEqual(res["written"] + res["dropped"], pushed)
        # about 16 KiB of line protocol kept: the newest points, in order
        self.assertLess(len(stored), pushed // 2)
        order = sorted(expected_points(range(40), 1, t0), key=lambda k: (k[2], k[1]))
        self.assertEqual(set(stored), set(order[-len(stored):]))
        losses = [l for l in load.stderr().splitlines() if "dropped the oldest" in l]
        self.assertTrue(1 <= len(losses) <= 2, losses)


class SpoolLosses(unittest.TestCase):
    """Issue 14, defect 6: what a damaged spool loses is counted once, under
    its cause, logged once, and the stop summary is the sum."""

    AUTH = ["--api", "v2", "--org", "o", "--bucket", "b", "--token", "tok"]

    def test_every_loss_counted_once_with_its_cause(self):
        fake = FakeInflux(self, start=False)
        spool = common.tmpdir(self)
        t0 = start_ms()
        # segments of 16 KiB, records of about two ticks
        first = Load(self, fake.url, spool, *self.AUTH, "--spool-max", 1 << 20,
                     *samples_args(60, start=t0, pace_ms=50, flush=0.1, drain=0))
        r1 = first.wait()
        self.assertEqual(r1["spool_points"], 60 * INPUTS, first.stderr())
        segs = spool_records(spool)
        self.assertGreaterEqual(len(segs), 4, segs)
        lost = {"damaged": [], "torn": [], "deleted": []}
        # a damaged header in the middle of the oldest segment
        path, recs = segs[0]
        self.assertGreaterEqual(len(recs), 3)
        overwrite(path, recs[1][0], b"XXXX")
        lost["damaged"].append(recs[1])
        # a damaged payload in the next one
        path, recs = segs[1]
        overwrite(path, recs[0][0] + 16 + 10, b"#")
        lost["damaged"].append(recs[0])
        # a segment deleted while the writer was stopped
        path, recs = segs[2]
        os.unlink(path)
        lost["deleted"].extend(recs)
        # the last record torn, as by a crash while it was written
        path, recs = segs[-1]
        with open(path, "r+b") as f:
            f.truncate(recs[-1][0] + 16 + recs[-1][1] // 2)
        lost["torn"].append(recs[-1])

        fake.start()
        second = Load(self, fake.url, spool, *self.AUTH, "--spool-max", 1 << 20,
                      *samples_args(0, start=t0))
        res = second.wait()
        n = {k: sum(r[2] for r in v) for k, v in lost.items()}
        total = sum(n.values())
        err = second.stderr()
        self.assertEqual(res["dropped_damaged"], n["damaged"], err)
        self.assertEqual(res["dropped_torn"], n["torn"], err)
        self.assertEqual(res["dropped_deleted"], n["deleted"], err)
        self.assertEqual(res["dropped"], total, err)
        self.assertEqual(res["written"] + res["dropped"], 60 * INPUTS, err)
        self.assertEqual(res["spool_points"], 0)
        # every point not in a lost record is there, once
        gone = {line_key(l) for v in lost.values() for r in v
                for l in r[3].decode().splitlines()}
        self.assertEqual(len(gone), total)
        stored = [line_key(l) for l in fake.stored()]
        self.assertEqual(len(stored), len(set(stored)), "a point was stored twice")
        self.assertEqual(set(stored), set(expected_points(range(60), 1, t0)) - gone)
        # each cause said once, and the summary is the sum
        for pattern, count in (("points lost in damaged records", n["damaged"]),
                               ("points lost in records a crash tore", n["torn"]),
                               ("points lost with segment files deleted", n["deleted"])):
            said = [l for l in err.splitlines() if pattern in l]
            self.assertEqual(len(said), 1, (pattern, err))
            self.assertIn(": %d %s" % (count, pattern), said[0])
        self.assertRegex(err, r"writer stopped: %d points written, 0 in the spool, "
                         r"0 rejected, %d dropped \(0 queue overflow, 0 memory bound "
                         r"or unsaved at stop, 0 spool bound, %d damaged, %d torn and "
                         r"%d deleted spool records\)"
                         % (res["written"], total, n["damaged"], n["torn"], n["deleted"]))


class Memory(unittest.TestCase):
    """Issue 14, defect 7: the writer's memory during an outage stays
    within its bounds (tests/bench/influx_outage_memory.py measures it
    over an hour), and what it holds at SIGTERM goes to the spool or is
    counted as lost, and said."""

    AUTH = ["--api", "v2", "--org", "o", "--bucket", "b", "--token", "tok"]
    RING = 4 << 20

    def test_spool_unwritable_memory_bounded(self):
        """The database down and the spool unwritable: points are kept in
        memory up to the bound (the ring's size), then the oldest go. Its
        peak stays near the bound, not twice it (retrying them held a
        second copy)."""
        fake = FakeInflux(self, start=False)
        load = Load(self, fake.url, common.tmpdir(self), *self.AUTH,
                    "--ring-bytes", self.RING, "--batch-bytes", 256 << 10,
                    *samples_args(120, devices=64, pace_ms=20, flush=0.1, drain=0,
                                  extra=["--hold"]), fsize=0)
        load.ready.wait(10)
        base = vmhwm_kib(load.proc.pid)
        load.wait_ticks(120)
        time.sleep(1.0)     # a retry of what memory holds (every 0.4 s)
        peak = vmhwm_kib(load.proc.pid)
        res = load.terminate()
        grown = (peak - base) / 1024.0
        # held (4 MiB), a batch and its copy for the spool (256 KiB each),
        # the ring's chunks in passing
        if not sanitized(LP_LOAD):
            self.assertLess(grown, self.RING / (1 << 20) + 2.5, "grew %.1f MiB" % grown)
        pushed = 120 * 64 * INPUTS
        self.assertEqual(res["dropped"], pushed, load.stderr())
        self.assertEqual(res["dropped_memory"], pushed)
        self.assertIn("lost with this process", load.stderr())

    def test_at_stop_memory_goes_to_the_spool(self):
        """The database down: at SIGTERM what is in memory (the queue, the
        batch) is in the spool, every point."""
        fake = FakeInflux(self, start=False)
        load = Load(self, fake.url, common.tmpdir(self), *self.AUTH,
                    *samples_args(200, devices=8, pace_ms=5, flush=60, drain=0,
                                  extra=["--hold"]))
        load.wait_ticks(200)
        res = load.terminate()
        self.assertEqual(res["spool_points"], 200 * 8 * INPUTS, load.stderr())
        self.assertEqual(res["dropped"], 0)


class Crash(unittest.TestCase):
    def test_sigkill_loses_at_most_one_flush_interval(self):
        """While the database is up, a SIGKILL loses only what arrived
        within the last flush interval."""
        fake = FakeInflux(self)
        spool = common.tmpdir(self)
        t0 = start_ms()
        load = Load(self, fake.url, spool, "--api", "v1", "--db", "d",
                    *samples_args(1000, start=t0, pace_ms=50, flush=0.5, drain=0))
        load.wait_ticks(40)
        killed = time.monotonic()
        load.kill()
        stored = {line_key(l) for l in fake.stored()}
        for i, stamp, when in load.ticks:
            if when < killed - 0.5 - 0.5:  # one flush interval and slack
                self.assertIn(("1", "a", stamp), stored, "tick %d lost" % i)

    def test_sigkill_during_outage_keeps_spool(self):
        """What went to the spool survives SIGKILL and is delivered by the
        next run, with its original timestamps."""
        fake = FakeInflux(self, start=False)
        spool = common.tmpdir(self)
        t0 = start_ms()
        load = Load(self, fake.url, spool, "--api", "v1", "--db", "d",
                    *samples_args(1000, start=t0, pace_ms=50, flush=0.25, drain=0))
        load.wait_ticks(40)
        killed = time.monotonic()
        load.kill()
        before = [(i, stamp) for i, stamp, when in load.ticks if when < killed - 0.25 - 0.5]
        fake.start()
        again = Load(self, fake.url, spool, "--api", "v1", "--db", "d",
                     *samples_args(0, start=t0))
        res = again.wait()
        self.assertGreater(res["replayed"], 0)
        stored = [line_key(l) for l in fake.stored()]
        self.assertEqual(len(stored), len(set(stored)))
        for i, stamp in before:
            self.assertIn(("1", "a", stamp), set(stored), "tick %d lost" % i)


if __name__ == "__main__":
    common.main()
