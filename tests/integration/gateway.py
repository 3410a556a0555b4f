#!/usr/bin/env python3
"""Modules behind RS-485-to-Ethernet gateways: hdhk-sim listening as a
Modbus TCP gateway ("tcp://") and as a transparent converter ("rtu+tcp://").
`powermeter read` gets the simulator's values through either; the gateway
is locked against a second powermeter process like a tty; the daemon reads
two modules behind each kind, reconnects once a killed gateway is back on
its port, and gives up on a gateway that accepts and never answers (in
bounded time, the other buses and the watchdog unaffected) until a real
one takes its place; `powermeter check` names the JSON path of a bad URL.

Every process gets RUNTIME_DIRECTORY (where the gateways' lock files go) in
a temporary directory of its test, so tests never share a lock."""
import json
import os
import re
import socket
import threading
import time
import unittest

import common
import daemonlib
from sim import Sim

TIMEOUT = 0.3
LETTERS = "abcdefghijklmnop"
LOOPBACK = "127.0.0.1"


def lock_env(testcase):
    """An environment whose RUNTIME_DIRECTORY is the test's own."""
    env = dict(os.environ)
    env["RUNTIME_DIRECTORY"] = common.tmpdir(testcase, "pm-gw-run-")
    return env


def device(dev_id, port, address, baud=9600, inputs=LETTERS):
    return {"id": dev_id, "port": port, "address": address, "baudrate": baud,
            "timeout": TIMEOUT,
            "inputs": [{"input": l, "ratio": 0.01, "name": "In %s" % l} for l in inputs]}


def write_config(testcase, devices):
    path = os.path.join(common.tmpdir(testcase, "pm-gw-"), "powermeter.json")
    with open(path, "w") as f:
        json.dump({"devices": devices}, f, indent=1)
    return path


def read(config, env, *args):
    return common.run([common.POWERMETER, "read", "-c", config] + list(args),
                      env=env, timeout=30)


def currents(stdout):
    """{(device id, input): amps} from `powermeter read`'s JSON."""
    return {(v["device_id"], v["input"]): v["current"] for v in json.loads(stdout)}


def line_protocol(text):
    """(device id, input, current) of every point the stdout sink wrote."""
    rx = re.compile(r"^powermeter,device_id=(\d+),input=(\w),.*[^\\] current=([0-9.e+-]+)")
    return [(int(m.group(1)), m.group(2), float(m.group(3)))
            for m in map(rx.match, text.splitlines()) if m]


class SilentGateway:
    """A TCP listener that accepts every connection, reads nothing and never
    answers: a gateway whose TCP stack lives on while its Modbus server is
    hung. Counts the connections; close() frees the port."""

    def __init__(self, testcase, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, port))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.close)

    def _run(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        if self.closing:
            return
        self.closing = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class ReadThroughGateway(unittest.TestCase):
    def check_read(self, listen, baud):
        sim = Sim.single(self, n_modules=2, baud=baud, listen=listen)
        url = sim.path()
        self.assertRegex(url, r"^%s:\d+$" % re.escape(listen.rsplit(":", 1)[0]))
        sim.set(0, 2, "p", 4321)
        cfg = write_config(self, [device(1, url, 1, baud), device(2, url, 2, baud)])
        r = read(cfg, lock_env(self))
        self.assertEqual(r.returncode, 0, r.stderr)
        got = currents(r.stdout)
        want = {(a, l): round(Sim.default_raw(a, i) * 0.01, 2)
                for a in (1, 2) for i, l in enumerate(LETTERS)}
        want[(2, "p")] = 43.21
        self.assertEqual(got, want)
        # one FC 3 request per module, on one connection: one bus
        self.assertEqual(sorted((e["addr"], e["fc"], e["start"], e["count"], e["result"])
                                for e in sim.log()),
                         [(1, 3, 8, 16, "ok"), (2, 3, 8, 16, "ok")])
        st = sim.stats()["buses"][0]
        self.assertEqual((st["connections"], st["refused"]), (1, 0))
        return sim, cfg

    def test_modbus_tcp(self):
        self.check_read("tcp://127.0.0.1:0", 9600)

    def test_rtu_over_tcp(self):
        self.check_read("rtu+tcp://127.0.0.1:0", 19200)

    def test_wrong_baud_behind_a_transparent_converter_times_out(self):
        # the converter's serial side runs at the bus's 9600 baud; a module
        # set to 19200 never hears it: a timeout, no value
        sim = Sim(self, [{"listen": "rtu+tcp://127.0.0.1:0", "baud": 9600,
                          "modules": [1]}]).start()
        sim.setreg(0, 1, 3, (5 << 8) | 1)   # register 3: 19200 baud (code 5), address 1
        cfg = write_config(self, [device(1, sim.path(), 1)])
        r = read(cfg, lock_env(self))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout), [])
        self.assertIn("no answer within 0.3 s through gateway 127.0.0.1:", r.stderr)

    def test_noisy_line_never_gives_a_wrong_value(self):
        # half the answers spoiled at random (seeded): over RTU the client
        # sees every kind of bad frame, retries, and prints only true values
        sim = Sim.single(self, n_modules=1, baud=115200, listen="rtu+tcp://127.0.0.1:0")
        sim.fault(0, 1, "noisy", "0.5 7")
        cfg = write_config(self, [device(1, sim.path(), 1, 115200)])
        env = lock_env(self)
        want = {(1, l): round(Sim.default_raw(1, i) * 0.01, 2) for i, l in enumerate(LETTERS)}
        ok = 0
        for _ in range(12):
            r = read(cfg, env)
            if r.returncode == 0:
                self.assertEqual(currents(r.stdout), want)
                ok += 1
            else:
                self.assertEqual(json.loads(r.stdout), [])
        mod = sim.stats()["buses"][0]["modules"][0]
        spoiled = sum(mod["noise"].values())
        self.assertGreater(spoiled, 0, mod)
        self.assertEqual(spoiled, mod["faults"])
        self.assertGreater(ok, 0)
        kinds = {e["result"] for e in sim.log()}
        self.assertTrue(kinds <= {"ok", "badcrc", "truncate", "garbage", "wrongaddr"}, kinds)


    def test_disconnect_drops_the_client_and_refuses_for_a_while(self):
        sim = Sim.single(self, listen="rtu+tcp://127.0.0.1:0")
        host, port = sim.path()[len("rtu+tcp://"):].rsplit(":", 1)
        client = socket.create_connection((host, int(port)), timeout=5)
        self.addCleanup(client.close)
        common.wait_for(lambda: sim.stats()["buses"][0]["connected"], 5, what="connected")
        sim.disconnect(0, 1)
        self.assertEqual(client.recv(16), b"")          # dropped
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=5)
        cfg = write_config(self, [device(1, sim.path(), 1)])
        time.sleep(1.2)
        r = read(cfg, lock_env(self))                   # listening again
        self.assertEqual(r.returncode, 0, r.stderr)
        st = sim.stats()["buses"][0]
        self.assertEqual((st["outages"], st["connections"], st["disconnected"]),
                         (1, 2, False))


class Daemon(unittest.TestCase):
    def test_busy_gateway_names_the_daemon(self):
        """A gateway the daemon polls is not opened by `read`, `info` or
        `address`: each says who holds it, as for a tty; a second TCP
        client is turned away by the simulated gateway itself."""
        sim = Sim(self, [{"listen": "tcp://127.0.0.1:0", "modules": [1]},
                         {"listen": "rtu+tcp://127.0.0.1:0", "modules": [1]}]).start()
        env = lock_env(self)
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, timeout=TIMEOUT)
        d = daemonlib.Daemon(self, cfg, env={"RUNTIME_DIRECTORY": env["RUNTIME_DIRECTORY"]})
        d.start()
        sim.wait_log(lambda e: e["result"] == "ok", count=4)
        busy = "busy (held by pid %d)" % d.pid
        r = read(cfg, env)
        self.assertEqual(r.returncode, 1)
        self.assertIn(busy, r.stderr)
        for bus in (0, 1):
            r = common.run([common.POWERMETER, "info", "--port", sim.path(bus)], env=env)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(busy, r.stderr)
        r = common.run([common.POWERMETER, "address", "--port", sim.path(0), "2"], env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(busy, r.stderr)
        # a client that ignores the lock: reset at once, the daemon unharmed
        host, port = sim.path(0)[len("tcp://"):].rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=5) as s:
                self.assertEqual(s.recv(16), b"")
        except ConnectionResetError:
            pass    # the reset may come before connect() returns
        common.wait_for(lambda: sim.stats()["buses"][0]["refused"] == 1, 5,
                        what="the second client refused")
        since = daemonlib.time_ms()
        sim.wait_log(lambda e: e["result"] == "ok" and e["t_ms"] > since, count=4)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(sim.stats()["buses"][0]["connections"], 1)

    def test_two_modules_behind_each_kind(self):
        sim = Sim(self, [{"listen": "tcp://127.0.0.1:0", "baud": 19200, "modules": [1, 2]},
                         {"listen": "rtu+tcp://127.0.0.1:0", "baud": 19200,
                          "modules": [1, 2]}]).start()
        sim.set(1, 2, "a", 777)
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, timeout=TIMEOUT)
        d = daemonlib.Daemon(self, cfg, stdout=True, env={
            "RUNTIME_DIRECTORY": common.tmpdir(self, "pm-gw-run-")}).start()

        def all_four():
            seen = {dev for dev, _, _ in line_protocol(d.stdout())}
            return seen >= {1, 2, 101, 102} and seen
        common.wait_for(all_four, 10, what="points of all 4 devices")
        self.assertEqual(d.stop(), 0)
        points = line_protocol(d.stdout())
        for dev, letter, amps in points:
            bus, addr = divmod(dev, 100)
            raw = 777 if (bus, addr, letter) == (1, 2, "a") else \
                Sim.default_raw(addr, "abcd".index(letter))
            self.assertAlmostEqual(amps, common.stored(raw * 0.01), places=9,
                                   msg=(dev, letter))
        self.assertIn("on 2 port", d.stderr())
        for st in sim.stats()["buses"]:
            self.assertEqual(st["connections"], 1, st)

    def test_gateway_killed_and_back_on_its_port(self):
        sim = Sim(self, [{"listen": "tcp://127.0.0.1:0", "baud": 19200,
                          "modules": [1, 2]}]).start()
        tty = Sim(self, [{"baud": 19200, "modules": [1]}]).start()   # stays on
        url = sim.path(0)
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, timeout=0.2)
        daemonlib.rewrite_config(cfg, lambda c: c["devices"].append(
            dict(c["devices"][0], id=101, port=tty.path(), address=1)))
        d = daemonlib.Daemon(self, cfg, env={
            "RUNTIME_DIRECTORY": common.tmpdir(self, "pm-gw-run-")}).start()
        sim.wait_log(lambda e: e["result"] == "ok" and e["bus"] == url, count=4)
        sim.kill()
        gone_ms = daemonlib.time_ms()
        d.wait_stderr(r"port %s: the converter stopped answering" % re.escape(url))
        time.sleep(1.5)                     # refused meanwhile: back-off
        sim.start()                         # the same port, a new process
        self.assertEqual(sim.path(0), url)
        back_ms = daemonlib.time_ms()
        sim.wait_log(lambda e: e["result"] == "ok" and e["bus"] == url
                     and e["t_ms"] > back_ms, count=4, timeout=10)
        d.wait_stderr(r"port %s: open again after" % re.escape(url))
        self.assertTrue(d.running())
        err = d.stderr()
        self.assertEqual(len(re.findall(r"port \S+: the converter stopped answering", err)),
                         1, err)
        self.assertEqual(len(re.findall(r"port \S+: open again", err)), 1, err)
        self.assertIn("connection refused by gateway 127.0.0.1:", err)
        # the pty bus was read on throughout
        other = [t for b, a, t, _ in daemonlib.ok_reads(tty) if gone_ms < t < back_ms]
        self.assertGreater(len(other), 3)
        self.assertEqual(d.stop(), 0)

    def test_gateway_that_never_answers(self):
        """Accepts, never answers: every read of its modules fails within
        its timeouts, the connection is given up after 3 silent requests
        and made again, the daemon keeps ticking and pinging the watchdog,
        the other bus keeps its cadence; a real gateway on that port is
        read at once."""
        silent = SilentGateway(self)
        url = "tcp://127.0.0.1:%d" % silent.port
        sim = Sim(self, [{"baud": 19200, "modules": [1]}]).start()
        cfg = daemonlib.daemon_config(self, sim, interval=0.25, timeout=0.1)

        def add_gateway(c):
            c["devices"] += [dict(c["devices"][0], id=201, port=url, address=1),
                             dict(c["devices"][0], id=202, port=url, address=2)]
        daemonlib.rewrite_config(cfg, add_gateway)
        d = daemonlib.Daemon(self, cfg, watchdog_usec=2000000, env={
            "RUNTIME_DIRECTORY": common.tmpdir(self, "pm-gw-run-")}).start()
        t0 = time.monotonic()
        d.wait_stderr(r"device 201 on %s address 1: no answer within 0.1 s through gateway"
                      % re.escape(url), timeout=5)
        # 3 requests per read (2 retries): the second read's first send
        # finds 3 silent ones and gives the connection up
        common.wait_for(lambda: len(silent.conns) >= 3, 10, what="reconnections")
        self.assertLess(time.monotonic() - t0, 8)
        pings = d.notify.wait("WATCHDOG", "1", count=4, timeout=10, after=t0)
        gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 1.9, gaps)   # every 1 s; 2 s would be fatal
        self.assertNotIn("not pinging", d.stderr())
        mark = daemonlib.time_ms()
        time.sleep(1.5)
        other = [t for b, a, t, _ in daemonlib.ok_reads(sim, since_ms=mark)]
        gaps = [y - x for x, y in zip(other, other[1:])]
        self.assertGreater(len(other), 3)
        self.assertLess(max(gaps), 250 + 150, gaps)
        # a real gateway takes the port over
        silent.close()
        gw = Sim(self, [{"listen": url, "baud": 19200, "modules": [1, 2]}]).start()
        since = daemonlib.time_ms()
        gw.wait_log(lambda e: e["result"] == "ok" and e["addr"] == 2 and e["t_ms"] > since,
                    count=3, timeout=10)
        d.wait_stderr(r"device 202 on %s address 2: answering again" % re.escape(url))
        self.assertTrue(d.running())
        self.assertEqual(d.stop(), 0)


class Check(unittest.TestCase):
    def test_bad_urls_name_the_json_path(self):
        bad = ["tcp://", "tcp://host:99999", "udp://x", "rtu+tcp://host", "tcp://fe80::1"]
        devs = [device(i + 1, port, 1) for i, port in enumerate(bad)]
        devs.append(device(9, "tcp://[::1]", 1))                 # fine: port 502
        devs.append(device(10, "rtu+tcp://gw.example:4001", 1))  # fine
        cfg = write_config(self, devs)
        r = common.run([common.POWERMETER, "check", cfg])
        self.assertEqual(r.returncode, 78, r.stderr)
        for i, why in enumerate(["no host", "port 99999 is not in 1..65535",
                                 "not a kind of port", "needs the converter's TCP port",
                                 "goes in brackets"]):
            self.assertRegex(r.stderr, r"%s: devices\[%d\]\.port: \"%s\": .*%s"
                             % (re.escape(cfg), i, re.escape(bad[i]), re.escape(why)))
        self.assertNotIn("devices[5]", r.stderr)
        self.assertNotIn("devices[6]", r.stderr)

    def test_two_devices_one_gateway_share_addresses(self):
        # one gateway written two ways is one bus: the duplicate address is
        # found, as on a tty
        cfg = write_config(self, [device(1, "tcp://GW.example", 1),
                                  device(2, "tcp://gw.example:502", 1)])
        r = common.run([common.POWERMETER, "check", cfg])
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("devices[1].address: 1 is already used by device 1", r.stderr)


if __name__ == "__main__":
    common.main()
