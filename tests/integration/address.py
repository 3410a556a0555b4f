"""`powermeter address` against hdhk-sim: a module moved from address 1 to
another keeps its line settings and is then read at its new address; an
address already taken, out of range, or a module that does not answer is
refused without writing anything."""
import fcntl
import json
import os
import unittest

import common
from sim import Sim

TIMEOUT = "0.3"     # seconds per request: the refusals stay quick
LETTERS = "abcdefghijklmnop"
FC_READ, FC_WRITE_SINGLE = 3, 6


def address(port, *args):
    return common.run([common.POWERMETER, "address", "--port", port,
                       "--timeout", TIMEOUT] + list(args))


def writes(sim):
    return [e for e in sim.log() if e["fc"] != FC_READ]


def line_register(sim, addr, baud="9600", framing="N81"):
    """Register 3 of the module now at 'addr', through `powermeter info`;
    None when nothing answers there."""
    r = common.run([common.POWERMETER, "info", "--port", sim.path(), "--address",
                    str(addr), "--baud", baud, "--framing", framing,
                    "--timeout", TIMEOUT])
    if r.returncode != 0:
        return None
    line = [l for l in r.stdout.splitlines() if l.startswith("line settings:")][0]
    return int(line.rsplit("(", 1)[1].rstrip(")"), 16)


class MoveModule(unittest.TestCase):
    def test_moved_module_is_read_at_new_address(self):
        sim = Sim.single(self, n_modules=2)
        port = sim.path()
        r = address(port, "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "%s: module at address 1 now answers at "
                         "address 3 (9600 8N1)\n" % port)
        self.assertEqual(r.stderr, "")
        # one FC 0x06 to unit 1, register 3, low byte the new address
        w = writes(sim)
        self.assertEqual([(e["addr"], e["fc"], e["start"], e["values"]) for e in w],
                         [(1, FC_WRITE_SINGLE, 3, [0x0003])])
        # checked first that nobody answers at 3, confirmed at 3 afterwards
        log = sim.log()
        i = log.index(w[0])
        self.assertTrue(any(e["addr"] == 3 and e["fc"] == FC_READ for e in log[:i]))
        self.assertTrue(any(e["addr"] == 3 and e["fc"] == FC_READ and
                            e["result"] == "ok" for e in log[i + 1:]))

        # the config now lists it at address 3: its values are read there
        # (the simulator's values stay those of the module first at 1)
        inputs = [{"input": ch, "ratio": 0.01, "name": "Input %s" % ch} for ch in "ap"]
        devices = [{"id": 1, "port": port, "address": 3, "timeout": float(TIMEOUT),
                    "baudrate": "9600", "inputs": inputs},
                   {"id": 2, "port": port, "address": 2, "timeout": float(TIMEOUT),
                    "baudrate": "9600", "inputs": inputs}]
        cfg = os.path.join(common.tmpdir(self, "pm-address-"), "powermeter.json")
        with open(cfg, "w") as f:
            json.dump({"devices": devices}, f)
        r = common.run([common.POWERMETER, "read", "-c", cfg])
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [(v["device_id"], v["input"], v["current"]) for v in json.loads(r.stdout)]
        self.assertEqual(got, [
            (1, "a", round(Sim.default_raw(1, 0) * 0.01, 2)),
            (1, "p", round(Sim.default_raw(1, 15) * 0.01, 2)),
            (2, "a", round(Sim.default_raw(2, 0) * 0.01, 2)),
            (2, "p", round(Sim.default_raw(2, 15) * 0.01, 2)),
        ])
        # nothing answers at 1 any more
        self.assertIsNone(line_register(sim, 1))

    def test_line_settings_are_kept(self):
        sim = Sim.single(self, baud=19200, framing="E81")
        before = line_register(sim, 1, "19200", "E81")
        self.assertNotEqual(before & 0xff00, 0)     # a line setting to keep
        r = address(sim.path(), "--baud", "19200", "--framing", "E81", "247")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "%s: module at address 1 now answers at "
                         "address 247 (19200 8E1)\n" % sim.path())
        self.assertEqual([e["values"] for e in writes(sim)], [[before & 0xff00 | 247]])
        self.assertEqual(line_register(sim, 247, "19200", "E81"),
                         before & 0xff00 | 247)

    def test_from_other_address(self):
        sim = Sim.single(self, modules=[{"address": 5}])
        r = address(sim.path(), "--address", "5", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("module at address 5 now answers at address 1", r.stdout)
        self.assertEqual(line_register(sim, 1) & 0xff, 1)


class Refusals(unittest.TestCase):
    def test_address_taken(self):
        sim = Sim.single(self, n_modules=2)
        r = address(sim.path(), "2")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("address 2 is already taken on %s" % sim.path(), r.stderr)
        self.assertEqual(writes(sim), [])
        self.assertEqual(line_register(sim, 1) & 0xff, 1)

    def test_address_taken_by_module_answering_exception(self):
        # a module that answers at all is there, even with an exception
        sim = Sim.single(self, n_modules=2)
        sim.fault(0, 2, "exception")
        r = address(sim.path(), "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("address 2 is already taken", r.stderr)
        self.assertEqual(writes(sim), [])

    def test_out_of_range(self):
        sim = Sim.single(self)
        for new in ["0", "248", "255", "2x", "", "-1"]:
            r = address(sim.path(), new)
            self.assertEqual(r.returncode, 2, new)
            # "-1" reads as an option: usage, still refused
            self.assertIn("invalid new address" if new != "-1" else "usage:",
                          r.stderr, new)
        self.assertEqual(sim.log(), [])     # nothing was even sent

    def test_same_address(self):
        sim = Sim.single(self)
        r = address(sim.path(), "--address", "1", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("already at address 1, nothing to do", r.stdout)
        self.assertEqual(sim.log(), [])

    def test_no_module_at_address(self):
        sim = Sim.single(self)
        r = address(sim.path(), "--address", "4", "9")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("%s address 4: no answer within 0.3 s (timeout)" % sim.path(),
                      r.stderr)
        self.assertEqual(writes(sim), [])

    def test_usage(self):
        for argv in [["address", "2"],                                  # no port
                     ["address", "--port", "/dev/null"],                # no NEW
                     ["address", "--port", "/dev/null", "2", "3"],
                     ["address", "--port", "/dev/null", "--baud", "1000", "2"]]:
            r = common.run([common.POWERMETER] + argv)
            self.assertEqual(r.returncode, 2, argv)

    def test_line_settings_as_the_config_takes_them(self):
        # One list of framings and baud rates (device/line.c): what the
        # config refuses (7 data bits, parity with 2 stop bits) the
        # command line refuses too, naming the ones that exist.
        for opt, bad in (("--framing", "7E1"), ("--framing", "E82"),
                         ("--framing", "8O2"), ("--baud", "14400")):
            r = common.run([common.POWERMETER, "info", "--port", "/dev/null", opt, bad])
            self.assertEqual(r.returncode, 2, (opt, bad))
            self.assertIn("N81, E81, O81, N82" if opt == "--framing"
                          else "1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200",
                          r.stderr)
        for good in ("N81", "e81", "8O1", "N82"):
            r = common.run([common.POWERMETER, "info", "--port", "/nonexistent/tty",
                            "--framing", good])
            self.assertEqual(r.returncode, 1, good)     # parsed; the port is missing
            self.assertIn("does not exist", r.stderr, good)

    def test_port_busy(self):
        sim = Sim.single(self)
        # O_NOCTTY: the pty must not become this process's terminal
        held = os.open(sim.path(), os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = address(sim.path(), "2")
        finally:
            os.close(held)
        self.assertEqual(r.returncode, 1)
        self.assertIn("busy", r.stderr)
        self.assertEqual(writes(sim), [])


if __name__ == "__main__":
    common.main()
