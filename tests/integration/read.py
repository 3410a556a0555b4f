"""`powermeter read` and `powermeter info` against hdhk-sim: the seed's
JSON byte for byte, several modules and buses, inputs in any order,
frequency; every fault kind (no wrong value is ever printed, the message
names device, port and address, the other modules are still read, exit
status 1); the port lock; the info registers decoded."""
import fcntl
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import termios
import time
import unittest

import common
from sim import Sim

TIMEOUT = 0.3   # seconds per module in the configs below: faults stay quick
LETTERS = "abcdefghijklmnop"


def device(dev_id, port, address=1, inputs=None, **extra):
    """A config device in the seed's form (plus address, frequency, ...)."""
    d = {"id": dev_id, "port": port, "timeout": TIMEOUT, "stopbits": 1,
         "bytesize": 8, "parity": "N", "baudrate": "9600",
         "inputs": inputs if inputs is not None else
         [{"input": ch, "ratio": 0.01, "name": "Input %s" % ch} for ch in LETTERS]}
    if address != 1:
        d["address"] = address
    d.update(extra)
    return d


def write_config(testcase, devices, directory=None):
    path = os.path.join(directory or common.tmpdir(testcase, "pm-read-"), "powermeter.json")
    with open(path, "w") as f:
        json.dump({"devices": devices} if any("address" in d or "frequency" in d
                                              for d in devices) else devices, f, indent=1)
    return path


def expected(devices, seed=False):
    """What `read` prints for the simulator's default values: the seed's
    (id, device id, input, name, rounded amps) of every input and, unless
    'seed', the estimated power at the config's voltage and power factor
    (230 V and 1 unless the device or input says otherwise)."""
    out, next_id = [], 0
    for d in devices:
        addr = d.get("address", 1)
        for inp in d["inputs"]:
            ch = LETTERS.index(inp["input"])
            amps = Sim.default_raw(addr, ch) * inp["ratio"]
            v = {"id": next_id, "device_id": d["id"], "input": inp["input"],
                 "name": inp["name"]}
            if "phase" in inp and not seed:
                v["phase"] = inp["phase"]
            v["current"] = round(amps, 2)
            if not seed:
                volts = inp.get("voltage", d.get("voltage", 230))
                pf = inp.get("power_factor", d.get("power_factor", 1))
                v["power"] = round(amps * volts * pf, 1)
            out.append(v)
            next_id += 1
    return out


def read(config, *args, timeout=30, user=None):
    argv = [common.POWERMETER, "read", "-c", config] + list(args)
    if user:
        pw = pwd.getpwnam(user)
        argv = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--clear-groups"] + argv
    return common.run(argv, timeout=timeout)


class ReadValues(unittest.TestCase):
    def test_one_module_byte_for_byte(self):
        sim = Sim.single(self)
        devs = [device(1, sim.path())]
        r = read(write_config(self, devs), "--format", "seed")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        # exactly what the seed printed: print(json.dumps(values, indent=4))
        self.assertEqual(r.stdout, json.dumps(expected(devs, seed=True), indent=4) + "\n")
        self.assertEqual(json.loads(r.stdout)[0]["current"], 10.1)   # 1010 x 0.01
        # one FC 0x03 request for registers 8..23
        reqs = sim.log()
        self.assertEqual([(e["addr"], e["fc"], e["start"], e["count"]) for e in reqs],
                         [(1, 3, 8, 16)])

    def test_json_carries_estimated_power(self):
        # the default json: the seed's keys in its style, plus the circuit's
        # phase and power at its voltage and power factor
        sim = Sim.single(self)
        inputs = [{"input": "a", "ratio": 0.01, "name": "Kettle", "phase": "L2"},
                  {"input": "b", "ratio": 0.01, "name": "Motor", "voltage": 400,
                   "power_factor": 0.8},
                  {"input": "c", "ratio": 0.01, "name": "Lights"}]
        devs = [device(1, sim.path(), inputs=inputs)]
        devs[0]["voltage"] = 120
        r = read(write_config(self, devs))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, json.dumps(expected(devs), indent=4) + "\n")
        got = json.loads(r.stdout)
        self.assertEqual(got[0]["phase"], "L2")
        self.assertEqual(got[0]["power"], 1212.0)          # 10.1 A x 120 V
        self.assertEqual(got[1]["power"], 3264.0)          # 10.2 A x 400 V x 0.8
        self.assertNotIn("energy", got[0])                  # only the daemon counts
        # the table marks the estimates and says what they are
        r = read(write_config(self, devs), "--format", "table")
        self.assertIn("WATTS*", r.stdout)
        self.assertIn("3264", r.stdout)
        self.assertIn("estimates", r.stdout.splitlines()[-1])

    def test_two_modules_one_bus(self):
        sim = Sim.single(self, n_modules=2)
        devs = [device(1, sim.path()), device(2, sim.path(), address=2)]
        r = read(write_config(self, devs))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), expected(devs))
        self.assertEqual(sorted(e["addr"] for e in sim.log()), [1, 2])

    def test_two_buses(self):
        sim = Sim(self, buses=[{"path": "ttyUSB0", "modules": [1]},
                               {"path": "ttyUSB1", "modules": [1, 3]}]).start()
        devs = [device(1, sim.path(0)), device(2, sim.path(1)),
                device(3, sim.path(1), address=3)]
        r = read(write_config(self, devs))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, json.dumps(expected(devs), indent=4) + "\n")

    def test_inputs_subset_out_of_order_and_names(self):
        sim = Sim.single(self)
        inputs = [{"input": "p", "ratio": 0.0245, "name": "Rack 3, PDU \"A\"=left"},
                  {"input": "a", "ratio": 0.01, "name": "\u00fcn\u00efcode \U0001F600"},
                  {"input": "c", "ratio": 0.02, "name": "back\\slash"}]
        devs = [device(4, sim.path(), inputs=inputs)]
        r = read(write_config(self, devs))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, json.dumps(expected(devs), indent=4) + "\n")
        got = json.loads(r.stdout)
        self.assertEqual([v["input"] for v in got], ["p", "a", "c"])
        self.assertEqual([v["id"] for v in got], [0, 1, 2])
        self.assertEqual(got[0]["current"], round(1160 * 0.0245, 2))

    def test_frequency_and_formats(self):
        sim = Sim.single(self, n_modules=2)
        sim.setfreq(0, 1, "c", 499)
        devs = [device(1, sim.path(), frequency=True), device(2, sim.path(), address=2)]
        cfg = write_config(self, devs)
        r = read(cfg, "--format", "influx")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 32)
        self.assertRegex(lines[2], r"^powermeter,device_id=1,input=c,name=Input\\ c,unique_id=2 "
                                   r"current=10\.3,frequency=49\.9,power=2369\.0 \d{13}$")
        self.assertRegex(lines[16], r"^powermeter,device_id=2,input=a,name=Input\\ a,unique_id=16 "
                                    r"current=20\.1,power=4623\.0 \d{13}$")
        # currents and frequencies in one request: registers 8..39
        self.assertIn((1, 8, 32), [(e["addr"], e["start"], e["count"]) for e in sim.log()])
        r = read(cfg, "-f", "table")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()
        self.assertEqual(rows[0].split(), ["DEVICE", "PORT/ADDRESS", "INPUT", "NAME", "AMPS", "HZ",
                                           "WATTS*"])
        self.assertEqual(rows[3].split()[-4:], ["c", "10.30", "49.9", "2369"])
        self.assertEqual(rows[17].split()[-3:], ["20.10", "-", "4623"])
        self.assertEqual(len(rows), 34)     # and the line saying what * means

    def test_one_device_option(self):
        sim = Sim.single(self, n_modules=2)
        devs = [device(1, sim.path()), device(2, sim.path(), address=2)]
        cfg = write_config(self, devs)
        r = read(cfg, "-d", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), expected(devs)[16:])
        self.assertEqual([e["addr"] for e in sim.log()], [2])
        r = read(cfg, "-d", "9")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no device with id 9", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_config_errors_exit_78(self):
        d = common.tmpdir(self)
        path = os.path.join(d, "powermeter.json")
        with open(path, "w") as f:
            f.write('[{"id": 1, "port": "/dev/null", "inputs": [{"input": "a", "ratio": "x"}]}]')
        r = read(path)
        self.assertEqual(r.returncode, 78)
        self.assertIn("ratio", r.stderr)
        self.assertEqual(r.stdout, "")
        r = read(os.path.join(d, "missing.json"))
        self.assertEqual(r.returncode, 78)


class ReadFaults(unittest.TestCase):
    """Bus 0 has modules 1 and 2, bus 1 module 1; the fault is on bus 0."""

    def setUp(self):
        self.sim = Sim(self, buses=[{"path": "ttyUSB0", "modules": [1, 2]},
                                    {"path": "ttyUSB1", "modules": [1]}]).start()
        self.devs = [device(1, self.sim.path(0)), device(2, self.sim.path(0), address=2),
                     device(3, self.sim.path(1))]
        self.config = write_config(self, self.devs)

    def check_left_out(self, r, dev_id, message):
        """Exit 1; one warning naming the device; everything printed is exactly
        what the other modules hold."""
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        warnings = r.stderr.splitlines()
        self.assertEqual(len(warnings), 1, r.stderr)
        dev = self.devs[dev_id - 1]
        prefix = "powermeter: device %d on %s address %d: " % (dev_id, dev["port"],
                                                               dev.get("address", 1))
        self.assertTrue(warnings[0].startswith(prefix), warnings[0])
        self.assertRegex(warnings[0][len(prefix):], message)
        want = [v for v in expected(self.devs) if v["device_id"] != dev_id]
        self.assertEqual(r.stdout, json.dumps(want, indent=4) + "\n")

    def fault(self, kind, message, addr=1):
        self.sim.fault(0, addr, kind)
        self.check_left_out(read(self.config), addr, message)

    def test_noanswer(self):
        self.fault("noanswer", r"^no answer within 0\.3 s \(timeout\) \u2014 check wiring A/B, "
                               r"12 V supply, address and baud rate$")

    def test_badcrc(self):
        self.fault("badcrc", r"^answer failed CRC check \(noise on the RS-485 line\? "
                             r"termination, cable length\)$")

    def test_truncate(self):
        self.fault("truncate", r"^short or malformed answer")

    def test_garbage(self):
        self.fault("garbage", r"^(short or malformed answer|answer failed CRC check)")

    def test_garbage_on_the_first_does_not_spoil_the_second(self):
        self.fault("garbage", r"^(short or malformed answer|answer failed CRC check)", addr=2)

    def test_wrongaddr(self):
        self.fault("wrongaddr", r"^answer came from address 2, not 1 \u2014 two modules "
                                r"share an address\?$")

    def test_exception(self):
        self.fault("exception", r"^module answered Modbus exception \d+ \([a-z ]+\)$")

    def test_stall(self):
        self.sim.fault(0, 2, "stall", 5)
        start = time.monotonic()
        self.check_left_out(read(self.config), 2, r"^no answer within 0\.3 s \(timeout\)")
        self.assertLess(time.monotonic() - start, 3.0)

    def test_disconnect(self):
        self.sim.disconnect(1, 3)
        r = read(self.config)
        self.assertEqual(r.returncode, 1)
        self.assertIn("device 3 on %s address 1: port %s does not exist \u2014 is the "
                      "USB\u2013RS-485 converter plugged in?" % (self.devs[2]["port"],
                                                                  self.devs[2]["port"]),
                      r.stderr)
        self.assertEqual(json.loads(r.stdout), expected(self.devs)[:32])

    def test_missing_port(self):
        self.devs[0]["port"] = self.devs[1]["port"] = "/nonexistent/ttyUSB7"
        self.config = write_config(self, self.devs)
        r = read(self.config)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertIn("device 1 on /nonexistent/ttyUSB7 address 1: port /nonexistent/ttyUSB7 "
                      "does not exist", lines[0])
        self.assertIn("device 2 on /nonexistent/ttyUSB7 address 2: port", lines[1])
        self.assertEqual(json.loads(r.stdout), expected(self.devs)[32:])

    def test_permission_denied(self):
        if os.geteuid() == 0:
            # root passes every permission check: read as nobody (the pty's
            # slave is root's, mode 0600)
            common.require_tool("setpriv")
            os.chmod(self.sim.dir, 0o755)     # the link is reachable, the tty not
            d = common.tmpdir(self)
            os.chmod(d, 0o755)
            config = write_config(self, self.devs, directory=d)
            os.chmod(config, 0o644)
            r = read(config, user="nobody")
        else:
            d = common.tmpdir(self)
            closed = os.path.join(d, "ttyUSB9")
            open(closed, "w").close()
            os.chmod(closed, 0)
            self.devs[0]["port"] = self.devs[1]["port"] = closed
            r = read(write_config(self, self.devs))
        self.assertEqual(r.returncode, 1)
        port = self.devs[0]["port"]
        self.assertIn("device 1 on %s address 1: permission denied on %s \u2014 add the user "
                      "to group dialout" % (port, port), r.stderr)


class PortLock(unittest.TestCase):
    def setUp(self):
        self.sim = Sim(self, buses=[{"path": "ttyUSB0", "modules": [1]},
                                    {"path": "ttyUSB1", "modules": [1]}]).start()
        self.devs = [device(1, self.sim.path(0)), device(2, self.sim.path(1))]
        self.config = write_config(self, self.devs)

    def hold(self, exclusive_tty=False):
        fd = os.open(self.sim.path(0), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if exclusive_tty:
            fcntl.ioctl(fd, termios.TIOCEXCL)
            self.addCleanup(fcntl.ioctl, fd, termios.TIOCNXCL)
        return fd

    def check_busy(self, r, pid, start):
        self.assertLess(time.monotonic() - start, 1.0)   # at once, no timeout
        self.assertEqual(r.returncode, 1)
        port = self.sim.path(0)
        self.assertIn("device 1 on %s address 1: port %s busy (held by pid %d)"
                      % (port, port, pid), r.stderr)
        # the other bus is still read
        self.assertEqual(json.loads(r.stdout), expected(self.devs)[16:])

    def test_busy_port_names_the_holder(self):
        self.hold()
        start = time.monotonic()
        self.check_busy(read(self.config), os.getpid(), start)
        # nothing reached the module
        self.assertEqual([e["bus"] for e in self.sim.log()], [self.sim.path(1)])

    def test_two_readers(self):
        self.sim.fault(0, 1, "stall", 10)
        slow_cfg = write_config(self, [dict(self.devs[0], timeout=3)])
        first = subprocess.Popen([common.POWERMETER, "read", "-c", slow_cfg],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(first.wait)
        self.addCleanup(first.kill)
        self.sim.wait_log(lambda e: e["result"] == "stall")
        start = time.monotonic()
        self.check_busy(read(self.config), first.pid, start)

    def test_exclusive_tty_for_other_users(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a reader as another user")
        common.require_tool("setpriv")
        pts = os.path.realpath(self.sim.path(0))
        mode = os.stat(pts).st_mode
        os.chmod(pts, 0o666)
        self.addCleanup(os.chmod, pts, stat.S_IMODE(mode))
        os.chmod(os.path.realpath(self.sim.path(1)), 0o666)
        os.chmod(self.sim.dir, 0o755)
        self.hold(exclusive_tty=True)
        d = common.tmpdir(self)
        os.chmod(d, 0o755)
        config = write_config(self, self.devs, directory=d)
        os.chmod(config, 0o644)
        start = time.monotonic()
        # open() itself fails with EBUSY (TIOCEXCL); the holder is still found
        self.check_busy(read(config, user="nobody"), os.getpid(), start)


class Info(unittest.TestCase):
    def test_info_from_config_and_port(self):
        sim = Sim.single(self, n_modules=2)
        sim.setreg(0, 2, 0, 700)
        sim.setreg(0, 2, 4, 23 << 8 | 11)
        sim.setreg(0, 2, 42, 2000)
        devs = [device(1, sim.path()), device(2, sim.path(), address=2)]
        r = common.run([common.POWERMETER, "info", "-c", write_config(self, devs), "-d", "2"])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "device 2 on %s address 2 (HDHK 16-channel AC current module)"
                         % sim.path())
        fields = dict(re.split(r":\s+", l, maxsplit=1) for l in lines[1:])
        self.assertEqual(fields["version"], "7.0.0 (700)")
        self.assertEqual(fields["address"], "2")
        self.assertEqual(fields["line settings"], "9600 baud N81 (0x0002)")
        self.assertEqual(fields["factory date"], "2023-11")
        self.assertEqual(fields["range A-H"], "40 A")
        self.assertEqual(fields["frequency division"], "5")
        self.assertEqual(fields["frequency selection"], "30 (actual 4.0)")
        self.assertTrue(fields["CT ratios A-H"].startswith("A=1000 B=1000 C=2000 D=1000"))
        # registers 0..7 and 40..55, nothing else
        self.assertEqual([(e["start"], e["count"]) for e in sim.log()], [(0, 8), (40, 16)])

        r = common.run([common.POWERMETER, "info", "--port", sim.path(), "--address", "1",
                        "--baud", "9600", "--framing", "N81"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("address:              1\n", r.stdout)
        self.assertIn("version:              6.2.8 (628)\n", r.stdout)

    def test_info_no_answer(self):
        sim = Sim.single(self)
        r = common.run([common.POWERMETER, "info", "--port", sim.path(), "--address", "9",
                        "--timeout", "0.2"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("%s address 9: no answer within 0.2 s (timeout)" % sim.path(), r.stderr)


if __name__ == "__main__":
    common.main()
