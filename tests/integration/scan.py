"""`powermeter scan` against hdhk-sim: modules at mixed addresses, baud
rates and framings on one bus are found with --baud all and listed in a
table; --config prints a fragment `powermeter check` loads; a silent
address is probed once, a garbled one again; a device that answers but
not as an HDHK is listed as such; a port held by another process or by
powermeterd is refused naming its pid; bad arguments send nothing."""
import fcntl
import json
import os
import re
import signal
import subprocess
import unittest

import common
from daemonlib import Daemon, daemon_config
from sim import Sim

TIMEOUT = "0.05"    # per probe: the simulator answers at once (no wire time)
FC_READ = 3
EX_USAGE, EX_UNAVAILABLE = 64, 69
# register 3: framing << 12 | baud code << 8 | address (datasheet)
BAUD_CODE = {9600: 0, 1200: 1, 2400: 2, 4800: 3, 19200: 5, 38400: 6, 57600: 7,
             115200: 8}
FRAMING_CODE = {"N81": 0, "E81": 1, "O81": 2, "N82": 3}


def line_register(addr, baud=9600, framing="N81"):
    return FRAMING_CODE[framing] << 12 | BAUD_CODE[baud] << 8 | addr


def scan(port, *args, timeout=TIMEOUT, env=None):
    argv = [common.POWERMETER, "scan"]
    if port:
        argv += ["--port", port]
    if timeout:
        argv += ["--timeout", timeout]
    return common.run(argv + list(args), timeout=120, env=env)


def rows(stdout):
    out = []
    for l in stdout.splitlines()[1:]:
        f = l.split()
        out.append((f[0], int(f[1]), int(f[2]), f[3], f[4]))
    return out


def probes(sim, addr):
    return [e for e in sim.log() if e["addr"] == addr and e["fc"] == FC_READ]


class Finds(unittest.TestCase):
    def test_mixed_addresses_baud_rates_framings(self):
        sim = Sim.single(self, modules=[1, 17, 200], wire_time=False)
        sim.setreg(0, 17, 3, line_register(17, 19200))
        sim.setreg(0, 200, 3, line_register(200, 115200, "E81"))
        port = sim.path()
        r = scan(port, "--baud", "all", "--framing", "N81,E81",
                 "--address", "1-3,17,200")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(rows(r.stdout), [
            (port, 1, 9600, "N81", "6.2.8"),
            (port, 17, 19200, "N81", "6.2.8"),
            (port, 200, 115200, "E81", "6.2.8"),
        ])
        for l in r.stdout.splitlines()[1:]:
            self.assertIn("40/40 A", l)
            self.assertIn("2020-06", l)
        # plain progress (stderr is no terminal): the ports and settings,
        # one line per module found, a summary
        err = r.stderr.splitlines()
        self.assertEqual(err[0], "powermeter: scanning %s: addresses 1-3,17,200 at "
                         "16 line settings, 80 probes, about %s s"
                         % (port, err[0].rsplit(" ", 2)[1]))
        self.assertEqual(sorted(err[1:4]), sorted([
            "powermeter: found %s address 1: HDHK 6.2.8 at 9600 N81" % port,
            "powermeter: found %s address 17: HDHK 6.2.8 at 19200 N81" % port,
            "powermeter: found %s address 200: HDHK 6.2.8 at 115200 E81" % port,
        ]))
        self.assertRegex(err[4], r"^powermeter: 3 HDHK modules, 0 other Modbus "
                         r"devices, 0 garbled addresses on 1 port \(80 probes in "
                         r"[0-9.]+ s\)$")
        self.assertEqual(len(err), 5, r.stderr)
        self.assertNotIn("\r", r.stderr)
        # each found module's registers 0..7 were read once, and only theirs
        info = [e["addr"] for e in sim.log() if e["start"] == 0 and e["count"] == 8]
        self.assertEqual(sorted(info), [1, 17, 200])

    def test_silent_address_is_probed_once_per_line(self):
        sim = Sim.single(self, modules=[2], wire_time=False)
        r = scan(sim.path(), "--address", "1-3", "--baud", "9600,19200")
        self.assertEqual(r.returncode, 0, r.stderr)
        for addr in (1, 3):
            self.assertEqual(len(probes(sim, addr)), 2, addr)   # two baud rates
            self.assertTrue(all(e["start"] == 3 and e["count"] == 1
                                for e in probes(sim, addr)))

    def test_nothing_found(self):
        sim = Sim.single(self, modules=[5], wire_time=False)
        r = scan(sim.path(), "--address", "1-4")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("0 HDHK modules, 0 other Modbus devices", r.stderr)
        self.assertIn("nothing answered", r.stderr)

    def test_interrupt_prints_what_was_found(self):
        sim = Sim.single(self, modules=[2, 200], wire_time=False)
        p = subprocess.Popen([common.POWERMETER, "scan", "--port", sim.path(),
                              "--timeout", TIMEOUT], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            for line in p.stderr:
                if "found" in line:
                    break
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 130, err)
        self.assertEqual(rows(out), [(sim.path(), 2, 9600, "N81", "6.2.8")])
        self.assertRegex(err, r"interrupted after \d+ of 247 probes\n")
        self.assertIn("1 HDHK module, 0 other Modbus devices", err)
        self.assertLess(len([e for e in sim.log() if e["count"] == 1]), 100)

    def test_timeout_from_the_line(self):
        # no --timeout: wire time + margin at each baud rate (the whole
        # range 1-247 is tests/bench/scan_bench.py's)
        sim = Sim.single(self, modules=[1, 247], wire_time=False)
        sim.setreg(0, 247, 3, line_register(247, 1200))
        r = scan(sim.path(), "--address", "1-8,247", "--baud", "9600,1200", timeout=None)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([x[1:3] for x in rows(r.stdout)], [(1, 9600), (247, 1200)])
        self.assertEqual(len([e for e in sim.log() if e["count"] == 1]), 18)


class Gateways(unittest.TestCase):
    """Behind a gateway the line is the gateway's: addresses only. Most
    probes meet silence, after which a gateway connection is dropped
    (bus/netconn.h) and the scan connects again."""

    def check(self, listen):
        env = dict(os.environ, RUNTIME_DIRECTORY=common.tmpdir(self, "pm-scan-run-"))
        sim = Sim.single(self, modules=[2, 9], listen=listen, wire_time=False)
        url = sim.path()
        r = scan(url, "--address", "1-12", "--baud", "all", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(rows(r.stdout), [(url, 2, 9600, "N81", "6.2.8"),
                                          (url, 9, 9600, "N81", "6.2.8")])
        self.assertIn("%s is a gateway: its serial side has settings of its own, so "
                      "only addresses are probed (--baud and --framing ignored)" % url,
                      r.stderr)
        self.assertIn("addresses 1-12 through the gateway, 12 probes", r.stderr)
        # each address once (the one a dropped connection cut off again)
        self.assertEqual(sorted({e["addr"] for e in sim.log() if e["count"] == 1}),
                         list(range(1, 13)))
        r = scan(url, "--address", "1-12", "--config", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        devs = json.loads(r.stdout)["devices"]
        self.assertEqual([(d["port"], d["address"], "baudrate" in d) for d in devs],
                         [(url, 2, False), (url, 9, False)])
        path = os.path.join(common.tmpdir(self, "pm-scan-"), "powermeter.json")
        with open(path, "w") as f:
            f.write(r.stdout)
        c = common.run([common.POWERMETER, "check", "-c", path])
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)

    def test_modbus_tcp(self):
        self.check("tcp://127.0.0.1:0")

    def test_rtu_over_tcp(self):
        self.check("rtu+tcp://127.0.0.1:0")


class NotHdhk(unittest.TestCase):
    def test_exception_is_another_device(self):
        sim = Sim.single(self, modules=[1, 4], wire_time=False)
        sim.fault(0, 4, "exception")
        r = scan(sim.path(), "--address", "1-5")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()[1:]
        self.assertEqual(len(lines), 2)
        self.assertIn("6.2.8", lines[0])
        self.assertRegex(lines[1], r"^%s +4 +9600 +N81 +- +- +- +not an HDHK: Modbus "
                         r"exception 4 to a read of register 3$" % re.escape(sim.path()))
        self.assertIn("found %s address 4 at 9600 N81: a Modbus device that is not "
                      "an HDHK" % sim.path(), r.stderr)
        self.assertIn("1 HDHK module, 1 other Modbus device", r.stderr)

    def test_garbled_answers_are_probed_again_and_listed(self):
        sim = Sim.single(self, modules=[1, 3], wire_time=False)
        sim.fault(0, 3, "badcrc")
        r = scan(sim.path(), "--address", "1-5")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()[1:]
        self.assertEqual(len(lines), 2)
        self.assertIn("garbled: answers fail their CRC check", lines[1])
        self.assertEqual(len(probes(sim, 3)), 3)    # once, then twice again
        self.assertEqual(len(probes(sim, 2)), 1)

    def test_config_leaves_out_other_devices(self):
        sim = Sim.single(self, modules=[1, 4], wire_time=False)
        sim.fault(0, 4, "exception")
        r = scan(sim.path(), "--address", "1-5", "--config")
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = json.loads(r.stdout)
        self.assertEqual([d["address"] for d in cfg["devices"]], [1])


class Config(unittest.TestCase):
    def check(self, text):
        path = os.path.join(common.tmpdir(self, "pm-scan-"), "powermeter.json")
        with open(path, "w") as f:
            f.write(text)
        return common.run([common.POWERMETER, "check", "-c", path])

    def test_fragment_loads(self):
        sim = Sim.single(self, modules=[1, 2, 9], wire_time=False)
        port = sim.path()
        r = scan(port, "--address", "1-10", "--config")
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = json.loads(r.stdout)
        self.assertEqual(list(cfg), ["devices"])
        self.assertEqual([(d["id"], d["port"], d["address"], d["baudrate"])
                          for d in cfg["devices"]],
                         [(1, port, 1, 9600), (2, port, 2, 9600), (3, port, 9, 9600)])
        for d in cfg["devices"]:
            self.assertNotIn("parity", d)
            self.assertNotIn("stopbits", d)
            self.assertEqual([i["input"] for i in d["inputs"]], list("abcdefghijklmnop"))
            self.assertEqual(d["inputs"][2]["name"], "Device %d input c" % d["id"])
        c = self.check(r.stdout)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        self.assertIn("OK \u2014 3 devices on 1 port, 48 inputs", c.stdout)
        # and the config reads those modules
        path = os.path.join(common.tmpdir(self, "pm-scan-"), "powermeter.json")
        with open(path, "w") as f:
            f.write(r.stdout)
        rd = common.run([common.POWERMETER, "read", "-c", path])
        self.assertEqual(rd.returncode, 0, rd.stderr)
        got = json.loads(rd.stdout)
        self.assertEqual(len(got), 48)
        self.assertEqual(got[16]["current"], round(Sim.default_raw(2, 0) * 0.01, 2))

    def test_parity_and_stop_bits_when_not_n81(self):
        sim = Sim.single(self, modules=[3, 4], framing="O81", wire_time=False)
        r = scan(sim.path(), "--address", "1-5", "--framing", "all", "--config")
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = json.loads(r.stdout)
        self.assertEqual([(d["address"], d["parity"], d.get("stopbits"))
                          for d in cfg["devices"]], [(3, "O", None), (4, "O", None)])
        self.assertEqual(self.check(r.stdout).returncode, 0)
        sim = Sim.single(self, modules=[3], framing="N82", wire_time=False)
        r = scan(sim.path(), "--address", "3", "--framing", "N82", "--config")
        self.assertEqual(r.returncode, 0, r.stderr)
        dev = json.loads(r.stdout)["devices"][0]
        self.assertEqual((dev["stopbits"], "parity" in dev), (2, False))
        self.assertEqual(self.check(r.stdout).returncode, 0)

    def test_one_line_setting_per_port(self):
        # the daemon reads one port at one setting: the module at another
        # is left out, with the command that brings it in line
        sim = Sim.single(self, modules=[1, 2, 3], wire_time=False)
        sim.setreg(0, 3, 3, line_register(3, 19200))
        r = scan(sim.path(), "--address", "1-3", "--baud", "9600,19200", "--config")
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = json.loads(r.stdout)
        self.assertEqual([d["address"] for d in cfg["devices"]], [1, 2])
        self.assertIn("left out of the config: %s address 3 at 19200 N81 (the other "
                      "modules on the port use 9600 N81; `powermeter set --port %s "
                      "--address 3 --baud 19200 --framing N81 baud=9600` brings it "
                      "in line)" % (sim.path(), sim.path()), r.stderr)
        self.assertEqual(self.check(r.stdout).returncode, 0)


class Refusals(unittest.TestCase):
    def test_port_held_names_the_pid(self):
        sim = Sim.single(self, wire_time=False)
        held = os.open(sim.path(), os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = scan(sim.path(), "--address", "1")
        finally:
            os.close(held)
        self.assertEqual(r.returncode, EX_UNAVAILABLE)
        self.assertEqual(r.stdout, "")
        self.assertIn("%s is busy (held by pid %d, python3)" % (sim.path(), os.getpid()),
                      r.stderr)
        self.assertEqual(sim.log(), [])

    def test_port_owned_by_the_daemon(self):
        sim = Sim(self, [{"modules": [1]}], wire_time=False).start()
        d = Daemon(self, daemon_config(self, sim)).start()
        sim.wait_log(lambda e: e["result"] == "ok")     # it has the port open
        r = scan(sim.path(), "--address", "1")
        self.assertEqual(r.returncode, EX_UNAVAILABLE)
        self.assertIn("%s is busy: powermeterd (pid %d) owns it \u2014 stop the daemon "
                      "first (systemctl stop powermeterd)" % (sim.path(), d.pid),
                      r.stderr)
        self.assertEqual(d.stop(), 0)

    def test_missing_port(self):
        r = scan("/nonexistent/ttyUSB9", "--address", "1")
        self.assertEqual(r.returncode, EX_UNAVAILABLE)
        self.assertIn("/nonexistent/ttyUSB9 does not exist", r.stderr)

    def test_usage(self):
        sim = Sim.single(self, wire_time=False)
        for args in (["--address", "0-3"], ["--address", "1-248"], ["--address", "5-2"],
                     ["--address", "1,"], ["--address", "x"], ["--baud", "9601"],
                     ["--baud", "9600,"], ["--framing", "E82"], ["--framing", "N81,"],
                     ["--timeout", "0"], ["--timeout", "61"], ["operand"],
                     ["--nonsense"]):
            r = scan(sim.path(), *args)
            self.assertEqual(r.returncode, EX_USAGE, args)
            self.assertEqual(r.stdout, "", args)
        self.assertEqual(sim.log(), [])
        r = common.run([common.POWERMETER, "scan", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: powermeter scan", r.stdout)


if __name__ == "__main__":
    common.main()
