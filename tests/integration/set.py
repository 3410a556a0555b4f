"""`powermeter set` against hdhk-sim: each setting is written with FC 0x06
and read back; a new baud rate, framing or address (register 3) is read
back at the new settings and `powermeter info` then works there; register
7's other byte is kept; a bad value writes nothing at all; a write the
module does not confirm or refuses is reported with what to check; a port
held by powermeterd is refused naming its pid; --dry-run writes nothing."""
import os
import threading
import unittest

import common
from daemonlib import Daemon, daemon_config
from sim import Sim

TIMEOUT = "0.3"
FC_READ, FC_WRITE_SINGLE = 3, 6
EX_USAGE, EX_UNAVAILABLE = 64, 69


def set_(port, *args, timeout=TIMEOUT):
    return common.run([common.POWERMETER, "set", "--port", port, "--timeout", timeout]
                      + list(args))


def writes(sim):
    return [(e["addr"], e["start"], e["values"], e["result"])
            for e in sim.log() if e["fc"] == FC_WRITE_SINGLE]


def tried(sim):
    """The writes the module did not apply (the log has no values then)."""
    return [(a, start, result) for a, start, _, result in writes(sim)]


def info(sim, *args):
    """`powermeter info` of a module: {field: text}, or None when it fails."""
    r = common.run([common.POWERMETER, "info", "--port", sim.path(),
                    "--timeout", TIMEOUT] + list(args))
    if r.returncode != 0:
        return None
    return dict(l.split(":", 1) for l in r.stdout.splitlines()[1:])


class Writes(unittest.TestCase):
    def test_baud_is_read_back_then_info_works_there(self):
        sim = Sim.single(self, n_modules=2, wire_time=False)
        port = sim.path()
        r = set_(port, "baud=19200")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "%s address 1: line settings (register 3): 0x0001 -> "
                         "0x0501, confirmed at address 1, 19200 baud N81\n" % port)
        self.assertIn("register 3 moves the module: it answers this write at address 1, "
                      "9600 baud N81, then only at address 1, 19200 baud N81", r.stderr)
        self.assertEqual(writes(sim), [(1, 3, [0x0501], "ok")])
        # read back at the new settings: the last read of register 3
        log = sim.log()
        last = [e for e in log if e["fc"] == FC_READ and e["start"] == 3][-1]
        self.assertEqual((last["addr"], last["result"], last["values"]), (1, "ok", [0x0501]))
        self.assertGreater(log.index(last), log.index([e for e in log if e["fc"] == 6][0]))
        got = info(sim, "--baud", "19200")
        self.assertEqual(got["line settings"].strip(), "19200 baud N81 (0x0501)")
        self.assertIsNone(info(sim))                          # not at 9600 any more
        self.assertIsNotNone(info(sim, "--address", "2"))     # the other one is

    def test_framing(self):
        sim = Sim.single(self, wire_time=False)
        r = set_(sim.path(), "framing=E81")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0x0001 -> 0x1001, confirmed at address 1, 9600 baud E81", r.stdout)
        self.assertEqual(info(sim, "--framing", "E81")["line settings"].strip(),
                         "9600 baud E81 (0x1001)")
        # and back, from the new settings
        r = set_(sim.path(), "--framing", "E81", "framing=N82")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNotNone(info(sim, "--framing", "N82"))

    def test_address_baud_and_framing_at_once(self):
        sim = Sim.single(self, modules=[5], baud=19200, wire_time=False)
        r = set_(sim.path(), "--address", "5", "--baud", "19200",
                 "address=9", "baud=115200", "framing=O81")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(writes(sim), [(5, 3, [0x2809], "ok")])
        self.assertEqual(info(sim, "--address", "9", "--baud", "115200", "--framing",
                              "O81")["address"].strip(), "9")

    def test_ct_ratio(self):
        sim = Sim.single(self, wire_time=False)
        r = set_(sim.path(), "ct.c=250", "ct.p=7")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "%s address 1: CT ratio c (register 42): 1000 -> 250, confirmed\n"
                         "%s address 1: CT ratio p (register 55): 1000 -> 7, confirmed\n"
                         % (sim.path(), sim.path()))
        self.assertEqual(r.stderr, "")
        self.assertEqual(writes(sim), [(1, 42, [250], "ok"), (1, 55, [7], "ok")])
        got = info(sim)
        self.assertEqual(got["CT ratios A-H"].split()[2], "C=250")
        self.assertEqual(got["CT ratios I-P"].split()[7], "P=7")
        # each write was read back before the next
        log = [(e["fc"], e["start"]) for e in sim.log()]
        i = log.index((FC_WRITE_SINGLE, 42))
        self.assertEqual(log[i + 1], (FC_READ, 42))

    def test_threshold_keeps_frequency_selection(self):
        sim = Sim.single(self, wire_time=False)
        r = set_(sim.path(), "threshold=7", "freqdiv=2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("frequency division (register 6): 5 -> 2, confirmed", r.stdout)
        self.assertIn("threshold (register 7): 0 -> 7, confirmed", r.stdout)
        self.assertEqual(writes(sim), [(1, 6, [2], "ok"), (1, 7, [7 << 8 | 30], "ok")])
        got = info(sim)
        self.assertEqual(got["threshold"].strip(), "7")
        self.assertEqual(got["frequency selection"].strip(), "30 (actual 4.0)")

    def test_same_value_is_not_written(self):
        sim = Sim.single(self, wire_time=False)
        r = set_(sim.path(), "ct.a=1000", "address=1", "baud=9600")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CT ratio a (register 40) is 1000 already, not written", r.stdout)
        self.assertIn("line settings (register 3) is 0x0001 already, not written",
                      r.stdout)
        self.assertEqual(writes(sim), [])

    def test_dry_run(self):
        sim = Sim.single(self, wire_time=False)
        r = set_(sim.path(), "--dry-run", "ct.b=5", "address=4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "%s address 1: would write CT ratio b (register 41): 1000 -> 5\n"
                         "%s address 1: would write line settings (register 3): 0x0001 -> "
                         "0x0004 (address 4, 9600 baud N81); the module then answers "
                         "there only\n" % (sim.path(), sim.path()))
        self.assertEqual(writes(sim), [])


class Gateway(unittest.TestCase):
    def test_behind_a_gateway(self):
        # the gateway's serial side keeps its settings: a new address is
        # read back through it, a new baud rate cannot be
        env = dict(os.environ, RUNTIME_DIRECTORY=common.tmpdir(self, "pm-set-run-"))
        sim = Sim.single(self, listen="tcp://127.0.0.1:0", wire_time=False)
        url = sim.path()
        run = lambda *a: common.run([common.POWERMETER, "set", "--port", url,
                                     "--timeout", TIMEOUT] + list(a), env=env)
        r = run("ct.a=7", "address=2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0x0001 -> 0x0002, confirmed at address 2, 9600 baud N81", r.stdout)
        r = run("--address", "2", "baud=19200")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0x0002 -> 0x0502, confirmed by the module's answer (not read back: "
                      "set the gateway to 19200 baud N81, then powermeter info "
                      "--address 2)", r.stdout)
        self.assertIn("behind a gateway the module is reached at the gateway's serial "
                      "settings: set the gateway to 19200 baud N81 too", r.stderr)
        self.assertEqual(writes(sim), [(1, 40, [7], "ok"), (1, 3, [2], "ok"),
                                       (2, 3, [0x0502], "ok")])


class Refusals(unittest.TestCase):
    def test_bad_value_writes_nothing(self):
        sim = Sim.single(self, wire_time=False)
        for bad in ("address=0", "address=248", "baud=9601", "baud=", "framing=E82",
                    "framing=7E1", "ct.a=65536", "ct.a=-1", "ct.q=1", "ct.=1",
                    "threshold=256", "freqdiv=0", "freqdiv=6", "freqdiv=2.5",
                    "colour=red", "ct.a", "=5"):
            r = set_(sim.path(), "ct.b=5", bad, "threshold=3")
            self.assertEqual(r.returncode, EX_USAGE, (bad, r.stderr))
            self.assertEqual(r.stdout, "", bad)
            self.assertNotEqual(r.stderr, "", bad)
        r = set_(sim.path(), "ct.a=5", "ct.a=6")
        self.assertEqual(r.returncode, EX_USAGE)
        self.assertIn("setting 'ct.a' given twice", r.stderr)
        self.assertEqual(sim.log(), [])         # nothing was even sent

    def test_usage(self):
        for argv in (["set", "ct.a=5"],                       # no port
                     ["set", "--port", "/dev/null"],          # no setting
                     ["set", "--port", "/dev/null", "--baud", "1000", "ct.a=5"],
                     ["set", "--port", "/dev/null", "--bogus", "ct.a=5"]):
            r = common.run([common.POWERMETER] + argv)
            self.assertEqual(r.returncode, EX_USAGE, argv)

    def test_address_taken(self):
        sim = Sim.single(self, n_modules=2, wire_time=False)
        r = set_(sim.path(), "ct.a=5", "address=2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("something already answers at address 2, 9600 baud N81 \u2014 "
                      "nothing written", r.stderr)
        self.assertEqual(writes(sim), [])

    def test_no_module(self):
        sim = Sim.single(self, wire_time=False)
        r = set_(sim.path(), "--address", "3", "ct.a=5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s address 3: no answer within 0.3 s (timeout) \u2014 check wiring "
                      "A/B, 12 V supply, address and baud rate \u2014 nothing written"
                      % sim.path(), r.stderr)
        self.assertEqual(writes(sim), [])

    def fault_during_check(self, sim, kind, *settings):
        """Runs set with 'settings' (one of them address=2: set first checks
        that nothing answers at 2, which takes its whole timeout) and gives
        module 1 the fault 'kind' during that check, after set read it."""
        result = {}

        def run():
            result["r"] = set_(sim.path(), *settings, timeout="0.5")

        t = threading.Thread(target=run)
        t.start()
        sim.wait_log(lambda e: e["addr"] == 2)
        sim.fault(0, 1, kind)
        t.join(30)
        sim.clear()
        return result["r"]

    def test_write_not_confirmed(self):
        sim = Sim.single(self, wire_time=False)
        r = self.fault_during_check(sim, "noanswer", "ct.a=5", "address=2")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("%s address 1: no answer within 0.5 s (timeout) \u2014 check wiring "
                      "A/B, 12 V supply, address and baud rate \u2014 CT ratio a "
                      "(register 40) = 5 not confirmed: it may or may not be written "
                      "(powermeter info shows it)" % sim.path(), r.stderr)
        # sent three times (the bus's retries), never applied, and register
        # 3 was not touched after it
        self.assertEqual(tried(sim), [(1, 40, "noanswer")] * 3)
        self.assertEqual(info(sim)["CT ratios A-H"].split()[0], "A=1000")

    def test_write_refused(self):
        sim = Sim.single(self, wire_time=False)
        r = self.fault_during_check(sim, "exception", "address=2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s address 1: module answered Modbus exception 4 (server device "
                      "failure) \u2014 the module refused line settings (register 3) = "
                      "0x0002: is it write-protected?" % sim.path(), r.stderr)
        self.assertEqual(tried(sim), [(1, 3, "exception")])
        self.assertIsNotNone(info(sim))         # still at address 1

    def test_line_write_not_confirmed(self):
        sim = Sim.single(self, wire_time=False)
        r = self.fault_during_check(sim, "noanswer", "address=2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("line settings (register 3) = 0x0002 not confirmed, and the module "
                      "answers neither at address 1, 9600 baud N81 nor at address 2, "
                      "9600 baud N81", r.stderr)
        self.assertEqual(tried(sim), [(1, 3, "noanswer")])      # sent once

    def test_port_owned_by_the_daemon(self):
        sim = Sim(self, [{"modules": [1]}], wire_time=False).start()
        d = Daemon(self, daemon_config(self, sim)).start()
        sim.wait_log(lambda e: e["result"] == "ok")     # it has the port open
        r = set_(sim.path(), "ct.a=5")
        self.assertEqual(r.returncode, EX_UNAVAILABLE)
        self.assertIn("%s address 1: port %s busy (held by pid %d) \u2014 stop the daemon "
                      "first (systemctl stop powermeterd); nothing written"
                      % (sim.path(), sim.path(), d.pid), r.stderr)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(writes(sim), [])

    def test_answer_from_another_address(self):
        sim = Sim.single(self, wire_time=False)
        sim.fault(0, 1, "wrongaddr")
        r = set_(sim.path(), "ct.a=5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("answer came from address 2, not 1", r.stderr)
        self.assertEqual(writes(sim), [])


if __name__ == "__main__":
    common.main()
