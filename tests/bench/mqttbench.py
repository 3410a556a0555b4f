"""What the MQTT benchmarks share (mqtt_latency.py, mqtt_throughput.py,
mqtt_broker_away.py): Debian's mosquitto started on a loopback port with
its own temporary directory, a mosquitto_sub that stamps every message as
it arrives (-F '%U %t %p': its own receive time, Unix seconds with
nanoseconds, so no pipe or Python latency is measured), a daemon config
with an "mqtt" section, the arguments and the set-up the benchmarks have
in common, and readings of /proc. Standard library only; everything
started here is stopped by the BenchContext's cleanups.

    ARGS = parse_args(arg_parser(__doc__, 60, 1))  # then: import common
    broker = Broker(ctx).start()                 # mqtt://127.0.0.1:PORT
    sub = Subscriber(ctx, broker, "powermeter/+/+/state", qos=1).start()
    cfg = mqtt_config(ctx, sim, broker.url, qos=1, interval=1.0)
    ... sub.messages()                           # [Message], in arrival order
"""
import argparse
import calendar
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

# common and daemonlib are imported where they are used: a benchmark imports
# this module to parse its arguments, and common.py takes the build
# directory from PM_BUILD_DIR once, when it is first imported.

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
LETTERS = "abcdefghijklmnop"
STATE_TOPICS = "powermeter/+/+/state"
PROBE_TOPIC = "pm-bench/probe"


def arg_parser(doc, seconds, buses):
    """The arguments of mqtt_latency.py and mqtt_throughput.py: the build
    directory, --seconds (default 'seconds'), --qos, --buses (default
    'buses'), --per-bus, --baud; each adds its own, then parse_args()."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=os.environ.get(
        "PM_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
    ap.add_argument("--seconds", type=float, default=seconds)
    ap.add_argument("--qos", default="1,0", help="QoS levels to run, e.g. 1,0")
    ap.add_argument("--buses", type=int, default=buses)
    ap.add_argument("--per-bus", type=int, default=4)
    ap.add_argument("--baud", type=int, default=115200)
    return ap


def parse_args(ap):
    """The command line, its build directory exported as PM_BUILD_DIR:
    import common after this, not before (it reads it once)."""
    args = ap.parse_args()
    os.environ["PM_BUILD_DIR"] = os.path.abspath(args.build)
    return args


def _terminate(proc):
    """SIGTERM, up to 10 s, then SIGKILL; waits. None: nothing to do."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

def require_tools():
    import common
    for tool in (MOSQUITTO, MOSQUITTO_SUB, MOSQUITTO_PUB, common.POWERMETERD,
                 common.HDHK_SIM):
        if not os.access(tool, os.X_OK):
            sys.exit("missing %s (install mosquitto and mosquitto-clients, or "
                     "build first)" % tool)


def _tail(path, n=30):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(no file: %s)" % e


class Broker:
    """mosquitto on 127.0.0.1:port (a free one unless given), its config,
    log and stderr in a temporary directory. max_queued_messages is raised
    from 1000 so that a subscriber a few ticks behind in a burst is not a
    loss the benchmark would blame on the daemon."""

    def __init__(self, ctx, port=None, nodelay=False):
        import common
        self.ctx = ctx
        self.port = port or common.free_port()
        self.dir = tempfile.mkdtemp(prefix="pm-bench-mosq-")
        ctx.addCleanup(shutil.rmtree, self.dir, True)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log = os.path.join(self.dir, "mosquitto.log")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        lines = ["listener %d 127.0.0.1" % self.port,
                 "allow_anonymous true",
                 "persistence false",
                 "max_queued_messages 100000",
                 "log_dest file %s" % self.log]
        if nodelay:
            lines.append("set_tcp_nodelay true")   # no Nagle on its sends
        if os.geteuid() == 0:
            lines.append("user root")   # else it becomes "mosquitto": no access here
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        ctx.addCleanup(self.stop)

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                raise AssertionError("mosquitto exited with %s at start:\n%s%s"
                                     % (rc, _tail(self.log), _tail(self.stderr_path)))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("mosquitto not listening on %d after %.0f s:\n%s"
                                         % (self.port, timeout, _tail(self.log)))
                time.sleep(0.02)

    def stop(self):
        _terminate(self.proc)
        self.proc = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class Message:
    __slots__ = ("recv", "topic", "payload")

    def __init__(self, recv, topic, payload):
        self.recv, self.topic, self.payload = recv, topic, payload


class Subscriber:
    """mosquitto_sub on 'topics' at 'qos', one line per message into a file:
    its receive time (%U), the topic, the payload. start() returns once a
    probe published through the broker came back, so the subscription is
    in place before the daemon publishes."""

    def __init__(self, ctx, broker, topics, qos=1):
        self.broker = broker
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.qos = qos
        self.dir = tempfile.mkdtemp(prefix="pm-bench-sub-")
        ctx.addCleanup(shutil.rmtree, self.dir, True)
        self.out = os.path.join(self.dir, "messages.txt")
        self.err = os.path.join(self.dir, "stderr.txt")
        self.proc = None
        ctx.addCleanup(self.stop)

    def start(self, probe=True, timeout=10.0):
        argv = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(self.broker.port),
                "-q", str(self.qos), "-i", "pm-bench-sub-%d" % os.getpid(),
                "-F", "%U %t %p"]
        for t in self.topics + ([PROBE_TOPIC] if probe else []):
            argv += ["-t", t]
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        if probe:
            deadline = time.monotonic() + timeout
            while not self._probed():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("mosquitto_sub did not subscribe (status %s): %s"
                                         % (self.proc.poll(), _tail(self.err)))
                subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.broker.port),
                                "-q", "1", "-t", PROBE_TOPIC, "-m", "probe"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10)
                time.sleep(0.05)
        return self

    def _probed(self):
        with open(self.out, "rb") as f:
            return (" %s " % PROBE_TOPIC).encode() in f.read()

    def stop(self):
        _terminate(self.proc)
        self.proc = None

    def count(self, prefix="powermeter/"):
        """Messages so far whose topic starts with 'prefix' (cheap)."""
        n = 0
        needle = (" " + prefix).encode()
        with open(self.out, "rb") as f:
            for line in f:
                if needle in line[:40]:
                    n += 1
        return n

    def messages(self, prefix="powermeter/"):
        """Every complete message line so far with topics under 'prefix'."""
        out = []
        with open(self.out, "rb") as f:
            data = f.read()
        for line in data.split(b"\n")[:-1]:   # the last one may be partial
            parts = line.decode("utf-8", "replace").split(" ", 2)
            if len(parts) < 2 or not parts[1].startswith(prefix):
                continue
            out.append(Message(float(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
        return out


def state_time_ms(payload):
    """The state's "time" ("2026-12-01T03:04:05.123Z") as Unix ms, without
    a JSON parse (fast enough for a million messages)."""
    i = payload.index('"time":"') + 8
    s = payload[i:i + 24]
    secs = calendar.timegm((int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]),
                            int(s[14:16]), int(s[17:19]), 0, 0, 0))
    return secs * 1000 + int(s[20:23])


def circuit_of(topic):
    """powermeter/D/L/state -> (D, L)."""
    parts = topic.split("/")
    return int(parts[1]), parts[2]


def mqtt_config(ctx, sim, url, qos=1, interval=1.0, timeout=0.3, ledger=False, extra=None):
    """daemonlib's config (one device per simulated module, id bus*100+addr,
    all 16 inputs) with mqtt → url. The ledger is off unless asked: its
    SQLite writes at the 15-minute boundaries are not what is measured."""
    import daemonlib
    x = {"mqtt": {"url": url, "qos": qos, "client_id": "pm-bench-%d" % os.getpid()}}
    if not ledger:
        x["ledger"] = False
    x.update(extra or {})
    return daemonlib.daemon_config(ctx, sim, interval=interval, timeout=timeout,
                                   inputs=LETTERS, extra=x)


def sim_buses(n_buses, per_bus, baud):
    return [{"baud": baud, "modules": list(range(1, per_bus + 1))} for _ in range(n_buses)]


def publishing(ctx, args, qos, interval, nodelay=False):
    """The simulator with args' buses, a broker, a subscriber to the states
    at 'qos' and powermeterd polling every 'interval' s and publishing to
    the broker, once the first state reached the subscriber: (sim, broker,
    sub, daemon)."""
    import common
    import daemonlib
    from sim import Sim
    sim = Sim(ctx, sim_buses(args.buses, args.per_bus, args.baud)).start()
    broker = Broker(ctx, nodelay=nodelay).start()
    sub = Subscriber(ctx, broker, STATE_TOPICS, qos=qos).start()
    cfg = mqtt_config(ctx, sim, broker.url, qos=qos, interval=interval)
    d = daemonlib.Daemon(ctx, cfg).start()
    common.wait_for(lambda: sub.count() > 0, 20, interval=0.1, what="a first state message")
    return sim, broker, sub, d


def stop_publishing(d, sub):
    """Stops the daemon, which must exit with 0, then the subscriber:
    every message it received."""
    status = d.stop()
    if status != 0:
        raise AssertionError("powermeterd exited with %s:\n%s" % (status, d.stderr()))
    sub.stop()
    return sub.messages()


# ---- /proc -------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, tid=None):
    """utime + stime of the process (or of one of its threads)."""
    path = "/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_id(pid, name):
    """The id of the thread called 'name' (pthread_setname_np), or None."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == name:
                    return int(tid)
        except OSError:
            pass
    return None


def memory_kib(pid):
    """VmRSS, VmHWM and the threads (from status) and smaps_rollup's
    Anonymous, Private_Dirty, Rss, Pss, in KiB; fds: open descriptors."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    return out


# ---- figures -----------------------------------------------------------

def percentile(sorted_values, q):
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def slope_per_hour(points):
    """Least-squares slope of [(seconds, value)] in value per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx * 3600


def table(rows):
    """Prints [(figure, value, goal, ok or None)] as the closing table."""
    w = max(len(r[0]) for r in rows)
    wv = max(len(r[1]) for r in rows)
    wg = max(len(r[2]) for r in rows)
    print()
    print("%-*s  %-*s  %-*s  %s" % (w, "figure", wv, "value", wg, "goal", "result"))
    for fig, val, goal, ok in rows:
        print("%-*s  %-*s  %-*s  %s" % (w, fig, wv, val, wg, goal,
                                        "" if ok is None else ("OK" if ok else "MISSED")))
