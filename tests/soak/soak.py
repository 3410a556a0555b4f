#!/usr/bin/env python3
"""Soak harness: powermeterd against hdhk-sim for hours, with random faults
(noisy/stalled/silent modules, unplugged converters, database and broker
outages, SIGHUP with and without config changes, SIGKILL and SIGTERM with
restarts), then checks every point in VictoriaMetrics against the
simulator's transaction log. See tests/soak/README.md. Run by hand:

    tests/soak/soak.py BUILD --hours 2 [--seed S] [--modules N] [--out DIR] [--fast]

Standard library only; reuses tests/lib (Sim, Victoria, Mosquitto) and
tests/integration/daemonlib.py (Daemon).
"""
import argparse
import bisect
import heapq
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))

INTERVAL = 1.0
TIMEOUT = 0.5          # per attempt; generous for 2 shared cores
FLUSH = 1.0            # influx.flush_interval
HTTP_TIMEOUT = 2       # influx.timeout
RATIO = 0.01
# SIGKILL rule: a point answered in the KILL_WINDOW seconds before a SIGKILL
# may be lost (the batch being built: one flush interval; the request in
# flight: one HTTP timeout; the tick being handed over: one interval).
KILL_WINDOW = FLUSH + HTTP_TIMEOUT + INTERVAL
# ... or just after it: the simulator answers a request already on the
# wire while the signal is being delivered (seen: 2-28 ms after the kill).
KILL_AFTER = 0.2
# Memory: after a database outage the backlog is replayed within this
# (then the writer's buffers are given back), and what an outage may hold
# on top of the steady level: batches of 1 MiB read back, kept, gzipped.
REPLAY_S = 120
OUTAGE_KB = 6 * 1024
MATCH_MS = 100         # stored time within this of the simulator's answer
MODULE_FIELDS = ("reads", "failures", "requests", "retries", "timeouts", "crc_errors",
                 "frame_errors", "exceptions", "io_errors")


def now_ms():
    return time.time() * 1000.0


def slope_per_hour(samples):
    """Least-squares slope of (t seconds, value) in value per hour."""
    n = len(samples)
    if n < 3:
        return None
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in samples) / den * 3600.0


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))
        sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
        os.environ["PM_BUILD_DIR"] = os.path.abspath(args.build)
        import common, daemonlib  # noqa: E401
        self.common, self.daemonlib = common, daemonlib
        self.ctx = common.BenchContext()
        self.events_f = open(os.path.join(self.out, "events.jsonl"), "a")
        self.samples_f = open(os.path.join(self.out, "samples.jsonl"), "a")
        self.counts = {}
        self.kills = []            # wall ms of every SIGKILL
        self.starts = []           # wall ms of every daemon start
        self.reloads = []          # (reloading wall ms, ready wall ms)
        self.incarnation = 0
        self.crashes = []
        self.mem = []              # (incarnation, t, rss kB, anon kB, fds)
        self.energy_cli = []       # (t, {(dev, ch): Wh})
        self.energy_cli_errors = 0
        self.lock = threading.Lock()
        self.stop_flag = False
        self.daemon_down = False   # between a KILL/TERM and the restart
        self.faulted = {}          # (bus, addr) -> kind
        self.unplugged = set()
        self.db_down = False
        self.broker_down = False
        self.names = {}            # (dev, letter) -> set of names ever configured
        self.toggles = {}          # dev -> [(on, reloading ms, ready ms)]
        self.reanalyzing = False
        self.stable_settle = True

    # --- logging ---

    def event(self, kind, **kw):
        e = dict(t=round(time.time(), 3), kind=kind, **kw)
        self.events_f.write(json.dumps(e) + "\n")
        self.events_f.flush()
        self.counts[kind] = self.counts.get(kind, 0) + 1
        print("%s %-16s %s" % (time.strftime("%H:%M:%S"), kind,
                               " ".join("%s=%s" % kv for kv in kw.items())), flush=True)

    # --- set-up ---

    def setup(self):
        import servers, broker, sim  # noqa: E401
        self.vm = servers.Victoria(self.ctx)
        self.broker = broker.Mosquitto(self.ctx).start()
        self.brokermod = broker
        # 3 buses: 115200, 19200, 9600 baud; modules spread over them
        n = self.args.modules
        per = [0, 0, 0]
        for i in range(n):
            per[i % 3] += 1
        bauds = [115200, 19200, 9600]
        buses = [{"baud": bauds[b], "modules": list(range(1, per[b] + 1)),
                  "seed": self.args.seed * 7 + b} for b in range(3) if per[b]]
        self.sim = sim.Sim(self.ctx, buses).start()
        self.modules = []          # (bus, addr, dev, base letters, toggle letter)
        for b, bus in enumerate(self.sim.buses):
            for m in bus["modules"]:
                k = self.rng.randint(4, 7)
                letters = "abcdefgh"[:k]
                toggle = "abcdefgh"[k]
                self.modules.append((b, m["address"], b * 100 + m["address"], letters, toggle))
        # every channel a..i plays a repeating ramp, so that every read differs
        self.profile_starts = {}
        for b, addr, dev, letters, toggle in self.modules:
            for ch in range(9):
                base = addr * 1000 + ch * 10 + b * 3
                span = 300 + 37 * ch + 11 * addr
                t1 = 20 + ch * 3
                pts = [[0, base], [t1, base + span], [t1 + 15 + addr, base + span // 3],
                       [t1 + 40 + addr + b, base]]
                self.sim.profile(b, addr, ch, pts, repeat=True)
        d = tempfile.mkdtemp(prefix="pm-soak-daemon-")
        self.ctx.addCleanup(shutil.rmtree, d, True)
        self.cfg_path = os.path.join(d, "powermeter.json")
        self.cfg = {
            "interval": INTERVAL,
            "state_directory": os.path.join(d, "state"),
            "runtime_directory": os.path.join(d, "run"),
            "snapshot": os.path.join(d, "run", "values.json"),
            "energy": {"persist_interval": 5},
            "ledger": {"interval": 60},
            "influx": {"url": self.vm.url, "org": "site", "bucket": "powermeter",
                       "token": "soak-token", "timeout": HTTP_TIMEOUT,
                       "flush_interval": FLUSH},
            "mqtt": {"url": self.broker.url, "client_id": "powermeterd-soak",
                     "topic_prefix": "soak", "keepalive": 5},
            "devices": [],
        }
        for b, addr, dev, letters, toggle in self.modules:
            self.cfg["devices"].append({
                "id": dev, "port": self.sim.path(b), "address": addr,
                "baudrate": self.sim.buses[b]["baud"], "timeout": TIMEOUT, "retries": 2,
                "inputs": [{"input": l, "ratio": RATIO, "name": self.name(dev, l, 0)}
                           for l in letters]})
        self.write_cfg()
        self.d = self.daemonlib.Daemon(self.ctx, self.cfg_path)
        self.event("setup", seed=self.args.seed, vm=self.vm.url, broker=self.broker.url,
                   modules=[(b, a, dev, l, t) for b, a, dev, l, t in self.modules],
                   config=self.cfg_path, build=self.args.build)

    def name(self, dev, letter, gen):
        return "Dev %d input %s%s" % (dev, letter, "" if gen == 0 else " r%d" % gen)

    def write_cfg(self):
        for dv in self.cfg["devices"]:
            for i in dv["inputs"]:
                self.names.setdefault((dv["id"], i["input"]), set()).add(i["name"])
        with open(self.cfg_path + ".new", "w") as f:
            json.dump(self.cfg, f, indent=1)
        os.replace(self.cfg_path + ".new", self.cfg_path)

    # --- the daemon ---

    def start_daemon(self, why):
        self.starts.append(now_ms())
        self.incarnation += 1
        self.d.start()
        self.daemon_down = False
        self.event("daemon-start", why=why, pid=self.d.pid, incarnation=self.incarnation)

    def check_alive(self):
        if self.daemon_down or self.d.proc is None:
            return
        rc = self.d.proc.poll()
        if rc is not None:
            self.crashes.append((time.time(), rc))
            self.event("DAEMON-DIED", status=rc, stderr_tail=self.d.stderr()[-600:])
            self.kills.append(now_ms())   # as a crash: its memory is gone
            self.d.proc = None
            self.start_daemon("after unexpected exit")

    # --- fault actions (each returns the end action or None) ---

    def f_module(self):
        free = [(b, a) for b, a, _, _, _ in self.modules if (b, a) not in self.faulted]
        if not free:
            return None
        b, a = self.rng.choice(free)
        kind = self.rng.choice(["noisy", "noisy", "stall", "silent"])
        dur = self.dur(20, 180)
        if kind == "noisy":
            p = round(self.rng.uniform(0.1, 0.6), 2)
            self.sim.fault(b, a, "noisy", "%s %d" % (p, self.rng.randint(1, 10 ** 6)))
            self.event("fault-noisy", bus=b, addr=a, p=p, seconds=dur)
        elif kind == "stall":
            dur = self.dur(2, 60)
            self.sim.fault(b, a, "stall", dur)
            self.event("fault-stall", bus=b, addr=a, seconds=dur)
        else:
            self.sim.fault(b, a, "noanswer")
            self.event("fault-silent", bus=b, addr=a, seconds=dur)
        self.faulted[(b, a)] = kind

        def end():
            self.sim.clear(b, a)
            self.faulted.pop((b, a), None)
            self.event("fault-clear", bus=b, addr=a)
        return dur, end

    def f_unplug(self):
        free = [b for b in range(len(self.sim.buses)) if b not in self.unplugged]
        if not free:
            return None
        b = self.rng.choice(free)
        dur = self.dur(3, 60)
        self.unplugged.add(b)
        self.event("unplug", bus=b, seconds=dur)
        self.sim.disconnect(b, dur)

        def end():
            self.unplugged.discard(b)
            self.event("replugged", bus=b)
        return dur + 0.5, end

    def f_db(self):
        if self.db_down:
            return None
        dur = self.dur(10, 300)
        self.db_down = True
        self.event("db-stop", seconds=dur)
        self.vm.stop()

        def end():
            self.vm.start()
            self.db_down = False
            self.event("db-start")
        return dur, end

    def f_broker(self):
        if self.broker_down:
            return None
        dur = self.dur(5, 120)
        self.broker_down = True
        self.event("broker-stop", seconds=dur)
        self.broker.stop()

        def end():
            self.broker.start()
            self.broker_down = False
            self.event("broker-start")
        return dur, end

    def f_hup(self):
        if self.daemon_down:
            return None
        change = self.rng.choice(["none", "rename", "toggle"])
        what = ""
        if change != "none":
            dv = self.rng.choice(self.cfg["devices"])
            mod = [m for m in self.modules if m[2] == dv["id"]][0]
            if change == "rename":
                inp = self.rng.choice(dv["inputs"])
                gen = self.counts.get("hup-rename", 0) + 1
                inp["name"] = self.name(dv["id"], inp["input"], gen)
                what = "%d/%s -> %s" % (dv["id"], inp["input"], inp["name"])
            else:
                t = mod[4]
                if any(i["input"] == t for i in dv["inputs"]):
                    dv["inputs"] = [i for i in dv["inputs"] if i["input"] != t]
                    what = "%d/%s removed" % (dv["id"], t)
                else:
                    dv["inputs"].append({"input": t, "ratio": RATIO,
                                         "name": self.name(dv["id"], t, 0)})
                    what = "%d/%s added" % (dv["id"], t)
            self.write_cfg()
        since = time.monotonic()
        self.d.hup()
        rl_ms, rd_ms = now_ms(), None
        try:
            rl = self.d.notify.wait("RELOADING", "1", after=since, timeout=30)[0][0]
            rd = self.d.notify.wait("READY", "1", after=since, timeout=30)[0][0]
            # the wall clock may have been stepped since the start (seen:
            # 4 s in a run): the offset of now, not the start's
            off = time.time() - time.monotonic()
            rl_ms, rd_ms = (rl + off) * 1000, (rd + off) * 1000
            self.reloads.append((rl_ms, rd_ms))
        except AssertionError as e:
            self.event("HUP-NO-READY", error=str(e))
        if change == "toggle":
            self.toggles.setdefault(dv["id"], []).append(
                ("added" in what, rl_ms - 1000, (rd_ms or now_ms() + 30000) + 1000))
        self.event("hup" if change == "none" else "hup-" + change, what=what)
        return None

    def f_restart(self, sig):
        if self.daemon_down:
            return None
        delay = self.dur(1, 20)
        self.daemon_down = True
        if sig == signal.SIGKILL:
            self.kills.append(now_ms())
            self.event("sigkill", pid=self.d.pid, restart_in=delay)
            self.d.kill()
        else:
            t0 = time.monotonic()
            self.event("sigterm", pid=self.d.pid, restart_in=delay)
            try:
                rc = self.d.stop(signal.SIGTERM, timeout=20)
            except AssertionError as e:
                rc = "timeout"
                self.event("SIGTERM-HUNG", error=str(e)[:300])
            self.event("stopped", status=rc, took=round(time.monotonic() - t0, 2))
            if rc != 0:
                self.crashes.append((time.time(), rc))

        def end():
            self.start_daemon("restart")
        return delay, end

    def dur(self, lo, hi):
        if self.args.fast:
            hi = max(lo, hi / 4)
        return round(self.rng.uniform(lo, hi), 1)

    # --- sampling ---

    def sample(self):
        if self.d.proc is None or self.daemon_down:
            return
        pid = self.d.pid
        try:
            # RssAnon: the heap and stacks, where a leak shows (Private
            # counts library pages too, private whenever no other process
            # maps them at that moment)
            rss = anon = None
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon = int(line.split()[1])
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except (OSError, ValueError):
            return
        s = {"t": round(time.time(), 1), "inc": self.incarnation, "pid": pid,
             "rss_kb": rss, "anon_kb": anon, "fds": fds}
        self.mem.append(s)
        # energy counters as `powermeter energy` shows them
        try:
            r = subprocess.run([self.common.POWERMETER, "energy", "-c", self.cfg_path,
                                "-f", "json"], capture_output=True, text=True, timeout=20)
            s["energy"] = self.parse_energy(r.stdout) if r.returncode == 0 else None
            if r.returncode != 0:
                self.energy_cli_errors += 1
                s["energy_error"] = r.stderr[-300:]
        except (subprocess.TimeoutExpired, ValueError) as e:
            self.energy_cli_errors += 1
            s["energy_error"] = str(e)
        self.samples_f.write(json.dumps(s) + "\n")
        self.samples_f.flush()

    @staticmethod
    def parse_energy(text):
        """{"dev/ch": Wh} from `powermeter energy -f json`, whatever its nesting."""
        out = {}

        def walk(o):
            if isinstance(o, dict):
                dev = o.get("device_id", o.get("device"))
                ch = o.get("input", o.get("channel"))
                e = o.get("energy_wh", o.get("energy"))
                if dev is not None and ch is not None and isinstance(e, (int, float)):
                    out["%s/%s" % (dev, ch)] = e
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(json.loads(text))
        return out

    # --- the run ---

    def run(self):
        fast = self.args.fast
        # mean seconds between two occurrences of each fault category
        means = {"module": 90, "unplug": 600, "db": 900, "broker": 720, "hup": 420,
                 "sigkill": 1500, "sigterm": 1800}
        if fast:
            means = {k: max(8, v / 15) for k, v in means.items()}
        actions = {"module": self.f_module, "unplug": self.f_unplug, "db": self.f_db,
                   "broker": self.f_broker, "hup": self.f_hup,
                   "sigkill": lambda: self.f_restart(signal.SIGKILL),
                   "sigterm": lambda: self.f_restart(signal.SIGTERM)}
        self.start_daemon("first")
        t_start = time.time()
        self.t_start = t_start
        end_at = t_start + self.args.hours * 3600
        heap = []
        seq = 0
        for cat, mean in means.items():
            n_par = 2 if cat == "module" else 1
            for _ in range(n_par):
                seq += 1
                heapq.heappush(heap, (t_start + 30 + self.rng.expovariate(1 / mean), seq, cat,
                                      None))
        next_sample = t_start + 5
        next_progress = t_start + (20 if fast else 60)
        while time.time() < end_at and not self.stop_flag:
            now = time.time()
            self.check_alive()
            if now >= next_sample:
                self.sample()
                next_sample += 30 if not fast else 10
            if now >= next_progress:
                self.progress(now - t_start)
                next_progress += 20 if fast else 300
            if heap and heap[0][0] <= now:
                _, _, cat, end = heapq.heappop(heap)
                try:
                    if end is not None:
                        end()
                        seq += 1
                        heapq.heappush(heap, (time.time() + self.rng.expovariate(
                            1 / means[cat]), seq, cat, None))
                    else:
                        r = actions[cat]()
                        seq += 1
                        if r is None:
                            heapq.heappush(heap, (time.time() + self.rng.expovariate(
                                1 / means[cat]), seq, cat, None))
                        else:
                            heapq.heappush(heap, (time.time() + r[0], seq, cat, r[1]))
                except Exception as e:
                    self.event("HARNESS-ERROR", category=cat, error=repr(e)[:500])
                continue
            time.sleep(0.2)
        # wind down: every pending end action now (faults cleared, servers
        # and daemon back), then let the spool drain
        self.event("wind-down")
        for _, _, cat, end in sorted(heap):
            if end is not None:
                try:
                    end()
                except Exception as e:
                    self.event("HARNESS-ERROR", category=cat, error=repr(e)[:500])
        self.sim.clear()
        if self.unplugged:
            time.sleep(1)
        if self.d.proc is None:
            self.start_daemon("wind-down")
        self.check_alive()
        self.sample()

    def progress(self, elapsed):
        m = self.mem[-1] if self.mem else {}
        try:
            rows = int(self.vm.metric('vm_rows_inserted_total{type="influx"}')) \
                if not self.db_down else "-"
        except Exception:
            rows = "?"
        print("%s progress %5.1f min: faults %s | vm rows %s | rss %s kB fds %s | incarnation %d"
              % (time.strftime("%H:%M:%S"), elapsed / 60,
                 sum(v for k, v in self.counts.items() if k not in ("setup", "daemon-start")),
                 rows, m.get("rss_kb"), m.get("fds"), self.incarnation), flush=True)

    def drain_and_stop(self):
        """With everything up: wait until VictoriaMetrics holds as many
        current points as the simulator answered reads for (or stops
        growing for 90 s), then SIGTERM the daemon."""
        self.event("drain")
        t0 = time.time()
        last, last_change = -1, time.time()
        while time.time() - t0 < 420:
            time.sleep(10)
            self.check_alive()
            try:
                n = self.vm.count()
            except Exception:
                continue
            want = sum(1 for x in self.expected_all() if x[4])
            print("%s drain: %d of %d current points in VictoriaMetrics"
                  % (time.strftime("%H:%M:%S"), n, want), flush=True)
            pps = sum(len(m[3]) for m in self.modules) / INTERVAL
            if n >= want - 3 * pps:
                break
            if n != last:
                last, last_change = n, time.time()
            elif time.time() - last_change > 90:
                break
        time.sleep(15)     # the last seconds' points delivered while it polls
        self.sample()
        t = time.monotonic()
        rc = self.d.stop(signal.SIGTERM, timeout=30)
        self.event("final-stop", status=rc, took=round(time.monotonic() - t, 2))
        if rc != 0:
            self.crashes.append((time.time(), rc))
        self.final_mqtt = None

    # --- checks ---

    def expected_all(self):
        """Every (dev, letter, t_ms, value) the daemon should have written."""
        if self.reanalyzing:
            index = {p: i for i, p in enumerate(self.buses)}
            log = self.sim_log()
        else:
            index = {b["path"]: i for i, b in enumerate(self.sim.buses)}
            log = self.sim.log()
        mods = {(b, a): (dev, letters, toggle) for b, a, dev, letters, toggle in self.modules}
        out = []
        for e in log:
            if e.get("result") != "ok" or e.get("fc") != 3 or e.get("start") != 8:
                continue
            b = index.get(e["bus"])
            dev, letters, toggle = mods[(b, e["addr"])]
            vals = e.get("values") or []
            for l in letters + toggle:
                req = True if l != toggle else self.toggle_on(dev, e["t_ms"])
                out.append((dev, l, e["t_ms"], float("%.15g" % (vals[ord(l) - 97] * RATIO)),
                            req))
        return out

    def toggle_on(self, dev, t):
        """Whether the device's toggled input was configured at t: True,
        False, or None around a reload that changed it (either is right)."""
        on = False
        for added, a, b in self.toggles.get(dev, []):
            if a <= t <= b:
                return None
            if t > b:
                on = added
        return on

    STATE_KEYS = ("modules", "kills", "starts", "reloads", "crashes", "mem", "counts",
                  "energy_cli_errors", "t_start", "incarnation")

    def save_state(self):
        """Everything check() needs, in --out: the harness's records and the
        database's samples, so that --reanalyze can judge the run again."""
        self.settle()
        st = {k: getattr(self, k) for k in self.STATE_KEYS}
        st["names"] = [[list(k), sorted(v)] for k, v in self.names.items()]
        st["toggles"] = [[k, v] for k, v in self.toggles.items()]
        st["buses"] = [b["path"] for b in self.sim.buses]
        st["stderr"] = self.d.stderr_path
        st["stable_settle"] = True
        st["run"] = {"seed": self.args.seed, "hours": self.args.hours, "fast": self.args.fast,
                     "t_end": time.time()}
        with open(os.path.join(self.out, "state.json"), "w") as f:
            json.dump(st, f)
        matches = ['{__name__="powermeter_current"}', '{__name__="powermeter_energy"}'] + \
            ['{__name__="powermeter_module_%s"}' % fld for fld in MODULE_FIELDS]
        with open(os.path.join(self.out, "vm-export.jsonl"), "w") as f:
            for m in matches:
                for series in self.vm.export(m):
                    f.write(json.dumps(series) + "\n")

    def settle(self):
        """Waits until VictoriaMetrics shows every sample it took
        (Victoria.settle(), which counts the rows of every run of the
        server, so outages included)."""
        try:
            return self.vm.settle(timeout=180)
        except AssertionError as e:
            print("settle: %s" % e, flush=True)
            return None

    def load_state(self):
        with open(os.path.join(self.out, "state.json")) as f:
            st = json.load(f)
        for k in self.STATE_KEYS:
            setattr(self, k, st[k])
        self.modules = [tuple(m) for m in self.modules]
        self.reloads = [tuple(r) for r in self.reloads]
        self.names = {tuple(k): set(v) for k, v in st["names"]}
        self.toggles = {int(k): [tuple(x) for x in v] for k, v in st["toggles"]}
        self.buses = st["buses"]
        self.stderr_path = os.path.join(self.out, "daemon-stderr.txt")
        run = st.get("run", {})
        for k in ("seed", "hours", "fast"):
            if k in run:
                setattr(self.args, k, run[k])
        self.t_end = run.get("t_end")
        self.stable_settle = st.get("stable_settle", False)

    def export(self, match):
        name = match.split('"')[1]
        if not hasattr(self, "_export"):
            self._export = {}
            with open(os.path.join(self.out, "vm-export.jsonl")) as f:
                for line in f:
                    srs = json.loads(line)
                    self._export.setdefault(srs["metric"]["__name__"], []).append(srs)
        return self._export.get(name, [])

    def sim_log(self):
        with open(os.path.join(self.out, "sim-tx.jsonl")) as f:
            return [json.loads(l) for l in f if l.endswith("\n")]

    def check(self):
        res = []   # (check, figure, PASS/FAIL/INFO)
        vm = self
        # current points
        stored = {}
        dups = 0
        bad_names = 0
        for s in vm.export('{__name__="powermeter_current"}'):
            lab = s["metric"]
            key = (int(lab["device_id"]), lab["input"])
            if lab.get("name") not in self.names.get(key, ()):
                bad_names += len(s["timestamps"])
            stored.setdefault(key, []).extend(zip(s["timestamps"], s["values"]))
        for key, lst in stored.items():
            lst.sort()
            seen = {}
            for t, v in lst:
                seen[t] = seen.get(t, 0) + 1
            dups += sum(c - 1 for c in seen.values())
        expected = self.expected_all()
        exp = {}
        for dev, l, t, v, req in expected:
            exp.setdefault((dev, l), []).append((t, v, req))
        wrong = 0
        wrong_examples = []
        matched = 0
        missing = []
        unexpected = 0
        for key in set(exp) | set(stored):
            el = sorted(exp.get(key, []))
            sl = stored.get(key, [])
            times = [t for t, _ in sl]
            used = [False] * len(sl)
            for t, v, req in el:
                i = bisect.bisect_left(times, t - MATCH_MS)
                hit = None
                while i < len(sl) and times[i] <= t + MATCH_MS:
                    if not used[i] and (hit is None or abs(times[i] - t) < abs(times[hit] - t)):
                        hit = i
                    i += 1
                if hit is None:
                    if req:
                        missing.append((key, t, v))
                    continue
                used[hit] = True
                matched += 1
                if abs(sl[hit][1] - v) > 1e-9 * max(1.0, abs(v)):
                    wrong += 1
                    if len(wrong_examples) < 5:
                        wrong_examples.append((key, t, v, sl[hit]))
            for i, u in enumerate(used):
                if not u:
                    unexpected += 1
                    if len(wrong_examples) < 10:
                        wrong_examples.append((key, "unexpected", sl[i]))
        # classify missing points
        kills = sorted(k for k in self.kills
                       if not any(abs(k / 1000 - x) <= 5 for x in self.args.external_term))
        at_kill, late_retry, lost = [], [], []
        per_kill = {}
        stored_times = {k: [t for t, _ in v] for k, v in stored.items()}
        final_ms = None
        with open(os.path.join(self.out, "events.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                if e["kind"] == "final-stop":
                    final_ms = e["t"] * 1000
        unsettled = []
        for key, t, v in missing:
            if not self.stable_settle and final_ms and 0 <= final_ms - t <= 2000:
                unsettled.append((key, t))
                continue
            i = bisect.bisect_left(kills, t - KILL_AFTER * 1000)
            if i < len(kills) and kills[i] - t <= KILL_WINDOW * 1000:
                at_kill.append((key, t))
                per_kill[kills[i]] = per_kill.get(kills[i], 0) + 1
                continue
            # the simulator answered after the daemon gave up, and a retry
            # of the same tick was stored instead
            st = stored_times.get(key, [])
            j = bisect.bisect_left(st, t)
            if j < len(st) and 0 < st[j] - t < INTERVAL * 1000 * 0.9:
                late_retry.append((key, t))
                continue
            lost.append((key, t, v))
        evs = []
        with open(os.path.join(self.out, "events.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                if e["kind"] not in ("setup", "fault-clear", "daemon-start", "stopped"):
                    evs.append((e["t"] * 1000, e["kind"]))
        evs.sort()
        ev_t = [t for t, _ in evs]
        causes = {}
        for key, t, v in lost:
            i = bisect.bisect_left(ev_t, t)
            if i < len(evs) and evs[i][0] - t <= 5000:
                c = "%s within 5 s after" % evs[i][1]
            elif i > 0 and t - evs[i - 1][0] <= 10000:
                c = "%s within 10 s before" % evs[i - 1][1]
            else:
                c = "no harness event near"
            causes[c] = causes.get(c, 0) + 1
        n_mod = len(self.modules)
        pps = sum(len(m[3]) + 0.5 for m in self.modules) / INTERVAL
        bound = int(math.ceil(pps * KILL_WINDOW)) + n_mod
        worst_kill = max(per_kill.values()) if per_kill else 0
        res.append(("points expected (simulator answers x inputs configured)",
                    sum(1 for x in expected if x[4]), "INFO"))
        res.append(("points stored and matched (with inputs around a toggle)", matched, "INFO"))
        res.append(("wrong values (value differs)", wrong, "PASS" if wrong == 0 else "FAIL"))
        res.append(("stored points matching no simulator answer", unexpected,
                    "PASS" if unexpected == 0 else "FAIL"))
        res.append(("stored points with a name never configured", bad_names,
                    "PASS" if bad_names == 0 else "FAIL"))
        res.append(("duplicates (same device/input/timestamp twice)", dups,
                    "PASS" if dups == 0 else "FAIL"))
        res.append(("lost beyond the rules", len(lost), "PASS" if not lost else "FAIL"))
        for c, n in sorted(causes.items(), key=lambda x: -x[1]):
            res.append(("  lost, nearest event: %s" % c, n, ""))
        res.append(("lost at SIGKILL (answered <= %.0fs before a kill; %d kills)"
                    % (KILL_WINDOW, len(kills)), len(at_kill), "INFO"))
        res.append(("  worst kill: points lost (bound %d)" % bound, worst_kill,
                    "PASS" if worst_kill <= bound else "FAIL"))
        res.append(("answers the daemon had timed out on (retry stored)", len(late_retry), "INFO"))
        if not self.stable_settle:
            res.append(("not judged: last tick before the final stop (VM not settled)",
                        len(unsettled), "INFO"))
        m = None
        try:
            with open(self.stderr_path, errors="replace") as f:
                for line in f:
                    if "InfluxDB writer stopped:" in line:
                        m = line.strip()
        except OSError:
            pass
        if m:
            import re
            nums = re.findall(r"(\d+) in the spool, \d+ rejected, (\d+) dropped", m)
            left = sum(int(a) + int(b) for a, b in nums)
            res.append(("final stop: points left in the spool + dropped (daemon's count)",
                        left, "PASS" if left == 0 else "FAIL"))
        # energy in VictoriaMetrics: never down over the whole run
        edown = []
        nE = 0
        energy = {}
        for s in vm.export('{__name__="powermeter_energy"}'):
            lab = s["metric"]
            energy.setdefault((lab["device_id"], lab["input"]), []).extend(
                zip(s["timestamps"], s["values"]))
        for key, lst in energy.items():
            lst.sort()
            nE += len(lst)
            for (t1, v1), (t2, v2) in zip(lst, lst[1:]):
                if v2 < v1:
                    edown.append((key, t1, v1, t2, v2))
        res.append(("energy points in VictoriaMetrics", nE, "INFO" if nE else "FAIL"))
        res.append(("energy decreases (InfluxDB field energy)", len(edown),
                    "PASS" if not edown else "FAIL"))
        # energy via `powermeter energy`
        cdown = []
        prev = {}
        n_cli = 0
        for s in self.mem:
            for k, v in (s.get("energy") or {}).items():
                n_cli += 1
                if k in prev and v < prev[k][1]:
                    cdown.append((k, prev[k], (s["t"], v)))
                prev[k] = (s["t"], v)
        res.append(("`powermeter energy` samples (circuit x time)", n_cli,
                    "INFO" if n_cli else "FAIL"))
        res.append(("`powermeter energy` decreases", len(cdown), "PASS" if not cdown else "FAIL"))
        res.append(("`powermeter energy` failures", self.energy_cli_errors,
                    "PASS" if not self.energy_cli_errors else "FAIL"))
        # module counters: never down within an incarnation (start to the
        # next start); a reload starts them at 0 (powermeter.json(5)), so
        # points between RELOADING and READY are left out and a drop at a
        # reload is counted apart.
        bounds = sorted(self.starts)
        reloads = sorted(self.reloads)
        mdown, mreset = [], 0
        nM = 0
        for fld in MODULE_FIELDS:
            series = {}
            for s in vm.export('{__name__="powermeter_module_%s"}' % fld):
                series.setdefault(s["metric"]["device_id"], []).extend(
                    zip(s["timestamps"], s["values"]))
            for dev, lst in series.items():
                lst.sort()
                nM += len(lst)
                prev = None
                for t, v in lst:
                    if any(a <= t <= b for a, b in reloads):
                        continue
                    inc = bisect.bisect_right(bounds, t)
                    rl = bisect.bisect_right([a for a, _ in reloads], t)
                    if prev is not None and prev[0] == inc and v < prev[2]:
                        if prev[1] != rl:
                            mreset += 1
                        else:
                            mdown.append((fld, dev, prev, (t, v)))
                    prev = (inc, rl, v, t)
        res.append(("module counter points", nM, "INFO" if nM else "FAIL"))
        res.append(("module counter decreases within an incarnation", len(mdown),
                    "PASS" if not mdown else "FAIL"))
        res.append(("module counters reset by a reload (documented)", mreset, "INFO"))
        external = [c for c in self.crashes if c[1] == 0 and any(
            abs(c[0] - x) <= 5 for x in self.args.external_term)]
        crashes = [c for c in self.crashes if c not in external]
        if external:
            res.append(("clean exits after a SIGTERM from outside the harness (restarted)",
                        len(external), "INFO"))
        res.append(("daemon exits not caused by the harness / bad exit status",
                    len(crashes), "PASS" if not crashes else "FAIL"))
        herr = self.counts.get("HARNESS-ERROR", 0) + self.counts.get("HUP-NO-READY", 0)
        res.append(("harness errors / reloads without READY", herr,
                    "PASS" if not herr else "FAIL"))
        try:
            with open(self.stderr_path, errors="replace") as f:
                err = f.read()
        except OSError:
            err = ""
        flushes = [l for l in err.splitlines() if "pollers stopped; flushing:" in l]
        mq_ok = bool(flushes) and "mqtt connected" in flushes[-1]
        res.append(("MQTT connected at the final stop (%d connects logged, %d broker stops)"
                    % (err.count("mqtt: connected to the broker"), self.counts.get(
                        "broker-stop", 0)), "yes" if mq_ok else "no",
                    "PASS" if mq_ok else "FAIL"))
        san = sum(1 for l in err.splitlines() if "runtime error:" in l or "Sanitizer" in l)
        res.append(("sanitizer reports in daemon stderr", san, "PASS" if not san else "FAIL"))
        self.details = {"wrong": wrong_examples, "lost": lost[:50], "dups": dups,
                        "energy_down": edown[:20], "cli_down": cdown[:20],
                        "module_down": mdown[:20], "per_kill": per_kill,
                        "at_kill": at_kill[:50], "lost_causes": causes}
        return res

    def db_trouble(self):
        """(from, until) wall seconds of every database outage, until
        REPLAY_S after its end: the writer's backlog memory (a batch read
        back from the spool, its copy, gzip's output) is in use then."""
        spans, down = [], None
        try:
            with open(os.path.join(self.out, "events.jsonl")) as f:
                for line in f:
                    e = json.loads(line)
                    if e["kind"] == "db-stop":
                        down = e["t"]
                    elif e["kind"] == "db-start" and down is not None:
                        spans.append((down, e["t"] + REPLAY_S))
                        down = None
        except OSError:
            pass
        if down is not None:
            spans.append((down, float("inf")))
        return spans

    def memory_report(self):
        """Per incarnation: RSS, RssAnon and fds. Judged (incarnations of
        at least warm-up + 10 min): RssAnon while the database is fine
        (outside db_trouble()) after the warm-up must not grow (slope at
        most 1 MiB/h) and must come back after every outage; its peak
        during outages stays within OUTAGE_KB of its steady level; fds as
        in the README."""
        rows, verdicts = [], []
        warm = 120 if self.args.fast else 600
        trouble = self.db_trouble()
        byinc = {}
        for s in self.mem:
            s.setdefault("anon_kb", s.get("private_kb"))  # runs before RssAnon
            byinc.setdefault(s["inc"], []).append(s)
        for inc, ss in sorted(byinc.items()):
            t0 = ss[0]["t"]
            post = [s for s in ss if s["t"] - t0 >= warm]
            steady = [s for s in post if not any(a <= s["t"] <= b for a, b in trouble)]
            line = {"inc": inc, "pid": ss[0]["pid"], "minutes": round((ss[-1]["t"] - t0) / 60, 1),
                    "n": len(ss), "steady": len(steady)}
            for k in ("rss_kb", "anon_kb", "fds"):
                line[k] = (ss[0][k], ss[-1][k], max(s[k] for s in ss))
            sl = slope_per_hour([(s["t"], s["anon_kb"]) for s in steady])
            line["anon_steady_slope_h"] = None if sl is None else round(sl, 1)
            base = min((s["anon_kb"] for s in steady), default=None)
            line["anon_steady"] = (base, max((s["anon_kb"] for s in steady), default=None))
            line["anon_peak_over"] = (None if base is None
                                      else max(s["anon_kb"] for s in post) - base)
            sl = slope_per_hour([(s["t"], s["fds"]) for s in post])
            line["fds_slope_h"] = None if sl is None else round(sl, 1)
            rows.append(line)
            long_enough = (ss[-1]["t"] - t0) >= warm + (600 if not self.args.fast else 120)
            if long_enough and len(steady) >= 10:
                ok = (line["anon_steady_slope_h"] <= 1024
                      and line["anon_steady"][1] - base <= 1024
                      and line["anon_peak_over"] <= OUTAGE_KB
                      and max(s["fds"] for s in post) <= ss[0]["fds"] + 8
                      and abs(line["fds_slope_h"] or 0) <= 4)
                verdicts.append(ok)
        return rows, verdicts

    def report(self, res):
        lines = []
        lines.append("=" * 78)
        lines.append("SOAK REPORT  seed=%s hours=%s modules=%d fast=%s  %s .. %s UTC"
                     % (self.args.seed, self.args.hours, len(self.modules), self.args.fast,
                        time.strftime("%H:%M:%S", time.gmtime(self.t_start)),
                        time.strftime("%H:%M:%S", time.gmtime(getattr(self, "t_end", None)
                                                                or time.time()))))
        lines.append("-" * 78)
        for name, fig, v in res:
            lines.append(("%-62s %10s  %s" % (name, fig, v)).rstrip())
        rows, verdicts = self.memory_report()
        mem_ok = all(verdicts) if verdicts else None
        lines.append("%-62s %10s  %s" % (
            "memory/fd flat (incarnations long enough to judge)", "%d/%d" % (
                sum(verdicts), len(verdicts)),
            "INFO" if mem_ok is None else ("PASS" if mem_ok else "FAIL")))
        lines.append("-" * 78)
        lines.append("faults injected:")
        for k in sorted(self.counts):
            lines.append("  %-28s %d" % (k, self.counts[k]))
        lines.append("-" * 78)
        lines.append("memory (kB) and fds per incarnation: first/last/max, slope per hour "
                     "after %d s warm-up" % (120 if self.args.fast else 600))
        lines.append("  inc   pid     min  samples steady | VmRSS first/last/max | RssAnon "
                     "first/last/max, steady min/max slope, peak over steady | fds "
                     "first/last/max slope")
        for r in rows:
            lines.append("  %3d %6d %6.1f %7d %6d | %s | %s, %s %s, %s | %s %s" % (
                r["inc"], r["pid"], r["minutes"], r["n"], r["steady"],
                "/".join(map(str, r["rss_kb"])),
                "/".join(map(str, r["anon_kb"])), "/".join(map(str, r["anon_steady"])),
                r["anon_steady_slope_h"], r["anon_peak_over"],
                "/".join(map(str, r["fds"])), r["fds_slope_h"]))
        lines.append("-" * 78)
        fails = [n for n, f, v in res if v == "FAIL"] + ([] if mem_ok is not False else ["memory"])
        lines.append("RESULT: %s" % ("PASS" if not fails else "FAIL (%s)" % "; ".join(fails)))
        text = "\n".join(lines)
        print(text, flush=True)
        with open(os.path.join(self.out, "report.txt"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(self.out, "details.json"), "w") as f:
            json.dump(self.details, f, indent=1, default=str)
        return not fails

    def keep_files(self):
        for src, name in ((self.d.stderr_path, "daemon-stderr.txt"),
                          (self.sim.stderr_path, "sim-stderr.txt"),
                          (self.sim.log_path, "sim-tx.jsonl"),
                          (self.cfg_path, "powermeter.json"),
                          (self.broker.log, "mosquitto.log"),
                          (self.vm.log_path, "victoria-metrics.log")):
            try:
                shutil.copy(src, os.path.join(self.out, name))
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", help="meson build directory (or a copy with src/daemon, "
                    "src/cli, src/sim)")
    ap.add_argument("--hours", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modules", type=int, default=7)
    ap.add_argument("--out", default=None)
    ap.add_argument("--fast", action="store_true", help="faults far more often, shorter")
    ap.add_argument("--reanalyze", action="store_true",
                    help="judge the run saved in --out again, running nothing")
    ap.add_argument("--external-term", type=float, action="append", default=[],
                    help="with --reanalyze: Unix time of a SIGTERM someone else sent the "
                    "daemon (its clean exit status 0 is then not a failure)")
    args = ap.parse_args()
    if args.reanalyze:
        s = Soak(args)
        s.reanalyzing = True
        s.load_state()
        res = s.check()
        sys.exit(0 if s.report(res) else 1)
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="pm-soak-out-")
    s = Soak(args)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        s.setup()
        s.run()
        s.drain_and_stop()
        s.keep_files()
        s.save_state()
        s.stderr_path = s.d.stderr_path
        res = s.check()
        ok = s.report(res)
    except KeyboardInterrupt:
        print("interrupted: stopping everything", flush=True)
        s.keep_files() if hasattr(s, "d") else None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        s.ctx.close()
    print("output in %s" % args.out, flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
