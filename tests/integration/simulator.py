"""hdhk-sim against independent clients: mbpoll (libmodbus) and a raw RTU
client written here on termios, so the simulator is checked by code that
shares nothing with it. Covers the register map, writes, line settings,
every fault kind, disconnects, wire time and the transaction log."""
import errno
import json
import math
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
import unittest

import common
from sim import Sim, SimError, profile_integral, profile_raw, profile_value

BAUDS = {1200: termios.B1200, 2400: termios.B2400, 4800: termios.B4800, 9600: termios.B9600,
         19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600,
         115200: termios.B115200}


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(*pdu):
    body = bytes(pdu)
    return body + struct.pack("<H", crc16(body))


def read_request(addr, start, count, fc=3):
    return frame(addr, fc, start >> 8, start & 0xFF, count >> 8, count & 0xFF)


def wire_time_s(request_len, response_len, baud, bits=10):
    """hdhk-sim(1): (request + response + 3.5) characters, computed here
    independently of Sim.wire_time, which is checked against it."""
    return (request_len + response_len + 3.5) * bits / baud


class RtuPort:
    """A raw client on the pty: its own termios, no library in between."""

    def __init__(self, path, baud=9600, parity="N", stopbits=1):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        attrs = termios.tcgetattr(self.fd)
        cflag = termios.CS8 | termios.CREAD | termios.CLOCAL
        if parity in "EO":
            cflag |= termios.PARENB
        if parity == "O":
            cflag |= termios.PARODD
        if stopbits == 2:
            cflag |= termios.CSTOPB
        # a Linux pty drops PARENB: hdhk-sim reads parity from INPCK, as
        # libmodbus sets it
        attrs[0:4] = [termios.INPCK if parity in "EO" else 0, 0, cflag, 0]
        attrs[4] = attrs[5] = BAUDS[baud]
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def close(self):
        os.close(self.fd)

    def send(self, data):
        os.write(self.fd, data)

    def receive(self, n, timeout=1.0):
        """Up to n bytes, whatever arrived before the timeout."""
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                break
            data += os.read(self.fd, n - len(data))
        return data

    def transact(self, request, n, timeout=1.0):
        self.send(request)
        return self.receive(n, timeout)


def mbpoll(path, *args, values=(), baud=9600, parity="none", addr=1, timeout=0.5):
    """Runs mbpoll once (PDU addressing, -0). Returns (exit status,
    {register: value}, stderr)."""
    tool = common.require_tool("mbpoll")
    cmd = [tool, "-m", "rtu", "-b", str(baud), "-P", parity, "-a", str(addr), "-0", "-1",
           "-o", str(timeout)] + list(args) + [path] + [str(v) for v in values]
    p = common.run(cmd, timeout=30)
    regs = {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"^\[(\d+)\]:\s+(-?\d+)\s*$", p.stdout, re.M)}
    return p.returncode, regs, p.stderr + p.stdout


def read_regs(path, start, count, **kw):
    return mbpoll(path, "-t", "4", "-r", str(start), "-c", str(count), **kw)


class SimTest(unittest.TestCase):
    def assert_read(self, sim, addr, start, expected, **kw):
        rc, regs, out = read_regs(sim.path(), start, len(expected), addr=addr, **kw)
        self.assertEqual(rc, 0, out)
        self.assertEqual([regs.get(start + i) for i in range(len(expected))], list(expected))

    def assert_read_fails(self, sim, addr, start=8, count=16, message=None, **kw):
        rc, regs, out = read_regs(sim.path(), start, count, addr=addr, **kw)
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(regs, {}, "a failed read printed values: %s" % out)
        if message:
            self.assertIn(message, out)
        return out


class Registers(SimTest):
    def test_default_currents_of_two_modules(self):
        sim = Sim.single(self, n_modules=2)
        self.assert_read(sim, 1, 8, Sim.default_raws(1))
        self.assert_read(sim, 2, 8, Sim.default_raws(2))
        self.assertEqual(Sim.default_raws(2)[:3], [2010, 2020, 2030])

    def test_register_map_matches_datasheet(self):
        sim = Sim(self, [{"baud": 19200, "framing": "E81", "modules": [
            {"address": 5, "version": 700, "ranges": [80, 40], "date": [21, 3],
             "division": 4, "selection": 20, "threshold": 2, "frequency": 600,
             "ratios": [2000, 3000]}]}]).start()
        rc, regs, out = read_regs(sim.path(), 0, 56, addr=5, baud=19200, parity="even")
        self.assertEqual(rc, 0, out)
        self.assertEqual([regs[i] for i in range(8)],
                         [700, 80, 40, (1 << 12) | (5 << 8) | 5, (21 << 8) | 3, 0, 4, (2 << 8) | 20])
        self.assertEqual([regs[i] for i in range(8, 24)], Sim.default_raws(5))
        self.assertEqual([regs[i] for i in range(24, 40)], [600] * 16)
        self.assertEqual([regs[i] for i in range(40, 56)], [2000, 3000] + [1000] * 14)

    def test_default_register_3_reads_0x0001(self):
        sim = Sim.single(self)
        self.assert_read(sim, 1, 0, [628, 40, 40, 0x0001, (20 << 8) | 6, 0, 5, 30])

    def test_generators(self):
        sim = Sim.single(self, modules=[{"address": 1, "channels": [
            92,
            {"sine": {"mean": 500, "amplitude": 100, "period": 0.7}},
            {"walk": {"start": 300, "step": 5, "min": 290, "max": 310, "seed": 7}},
            {"const": 4000}]}], wire_time=False)
        seen_sine, seen_walk = set(), []
        for _ in range(12):
            rc, regs, out = read_regs(sim.path(), 8, 5)
            self.assertEqual(rc, 0, out)
            self.assertEqual((regs[8], regs[11], regs[12]), (92, 4000, Sim.default_raw(1, 4)))
            self.assertTrue(400 <= regs[9] <= 600, regs)
            self.assertTrue(290 <= regs[10] <= 310, regs)
            self.assertLessEqual(abs(regs[10] - (seen_walk[-1] if seen_walk else 300)), 5)
            seen_sine.add(regs[9])
            seen_walk.append(regs[10])
        self.assertGreater(len(seen_sine), 1, "the sine never moved")
        self.assertGreater(len(set(seen_walk)), 1, "the walk never moved")
        # the log holds exactly what was answered
        logged = [e["values"][2] for e in sim.log() if e["result"] == "ok"]
        self.assertEqual(logged, seen_walk)

    def test_walk_is_reproducible_from_its_seed(self):
        walks = []
        for _ in range(2):
            sim = Sim.single(self, modules=[{"address": 1, "channels": [
                {"walk": {"start": 1000, "step": 50, "seed": 42}}]}], wire_time=False)
            port = RtuPort(sim.path())
            self.addCleanup(port.close)
            walks.append([port.transact(read_request(1, 8, 1), 7)[3:5] for _ in range(6)])
            sim.stop()
        self.assertEqual(walks[0], walks[1])
        self.assertGreater(len(set(walks[0])), 1)

    def test_set_from_control_socket(self):
        sim = Sim.single(self, n_modules=2)
        sim.set(0, 2, "c", 777)
        sim.set(0, 2, 15, 1)
        sim.setfreq(0, 2, "a", 612)
        sim.setreg(0, 2, 0, 629)
        self.assert_read(sim, 2, 10, [777])
        self.assert_read(sim, 2, 23, [1])
        self.assert_read(sim, 2, 24, [612, 500])
        self.assert_read(sim, 2, 0, [629])
        self.assert_read(sim, 1, 10, [Sim.default_raw(1, 2)])
        with self.assertRaises(SimError):
            sim.set(0, 2, "q", 1)
        with self.assertRaises(SimError):
            sim.set(0, 9, "a", 1)
        with self.assertRaises(SimError):
            sim.set(0, 2, "a", 70000)


def read_timed(testcase, port, addr, start, count, timeout=2.0):
    """One FC 0x03 read on a raw port: (values, Unix time just before the
    request was sent, Unix time just after the whole answer arrived)."""
    t_a = time.time()
    answer = port.transact(read_request(addr, start, count), 5 + 2 * count, timeout)
    t_b = time.time()
    testcase.assertEqual(len(answer), 5 + 2 * count, answer)
    testcase.assertEqual(answer, frame(*answer[:-2]), "bad CRC")
    testcase.assertEqual(answer[:3], bytes([addr, 3, 2 * count]))
    return list(struct.unpack(">%dH" % count, answer[3:-2])), t_a, t_b


class Profiles(SimTest):
    """Load profiles read through the pty: each value must be what
    profile_value() gives at some instant between sending the request and
    receiving the answer (rounded; one count of slack for the sampling of
    the window)."""

    def assert_profile(self, raw, points, start, t_a, t_b, repeat=False, what=""):
        vals = [profile_value(points, start, t_a + (t_b - t_a) * i / 400, repeat)
                for i in range(401)]
        lo, hi = math.floor(min(vals) + 0.5), math.floor(max(vals) + 0.5)
        self.assertTrue(lo - 1 <= raw <= hi + 1,
                        "%s: read %d, the profile was %d..%d between %.3f and %.3f s"
                        % (what, raw, lo, hi, t_a - start, t_b - start))

    def test_profiles_from_scenario(self):
        s = time.time()
        ramp = [[0, 0], [100, 60000]]                        # 600 raw/s
        step = [[0, 1000], [1.2, 1000], [1.2, 3000]]
        saw = [[0, 0], [2, 2000], [2, 500], [3, 500]]        # repeats every 3 s
        late = [[0, 42], [1, 43]]
        freq = [[0, 450], [100, 550]]
        sim = Sim.single(self, wire_time=False, modules=[{"address": 4, "channels": [
            {"profile": {"start": s, "points": ramp}},
            {"profile": {"start": s, "points": step, "repeat": False}},
            {"profile": {"start": s - 3600, "points": saw, "repeat": True}},
            {"profile": {"start": s + 1000, "points": late}},
            7], "frequency": {"profile": {"start": s, "points": freq}}}])
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        seen_step, seen_saw, answers = set(), set(), []
        deadline = time.time() + 2.6
        while time.time() < deadline:
            regs, t_a, t_b = read_timed(self, port, 4, 8, 32)
            answers.append(regs)
            self.assert_profile(regs[0], ramp, s, t_a, t_b, what="ramp")
            self.assert_profile(regs[1], step, s, t_a, t_b, what="step")
            self.assert_profile(regs[2], saw, s - 3600, t_a, t_b, repeat=True, what="saw")
            self.assertEqual(regs[3], 42)            # before its first point
            self.assertEqual(regs[4], 7)
            self.assertEqual(regs[5], Sim.default_raw(4, 5))
            for ch in (0, 15):
                self.assert_profile(regs[16 + ch], freq, s, t_a, t_b, what="frequency")
            seen_step.add(regs[1])
            seen_saw.add(regs[2] // 500)
            time.sleep(0.1)
        self.assertEqual(seen_step, {1000, 3000})
        self.assertGreaterEqual(len(seen_saw), 3, "the saw did not go round")
        self.assertGreater(answers[-1][0], answers[0][0] + 600, "the ramp did not rise")
        logged = [e["values"] for e in sim.log() if e["result"] == "ok"]
        self.assertEqual(logged, answers)

    def test_profiles_by_control_command(self):
        sim = Sim.single(self, n_modules=3, wire_time=False)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        steps = [[0, 100], [0.8, 100], [0.8, 900], [1.6, 900], [1.6, 300]]
        before = time.time()
        start = sim.profile(0, "*", "c", steps)
        self.assertTrue(before - 0.001 <= start <= time.time() + 0.001, (before, start))
        ramp = [[0, 0], [10, 10000]]
        ramp_start = sim.profile(0, 2, 0, ramp, start=time.time() - 5)
        sim.profile(0, 3, "p", [[0, 612]], frequency=True)
        seen = set()
        while time.time() < start + 2.0:
            for addr in (1, 2, 3):
                regs, t_a, t_b = read_timed(self, port, addr, 8, 16)
                self.assert_profile(regs[2], steps, start, t_a, t_b,
                                    what="module %d channel c" % addr)
                seen.add(regs[2])
                if addr == 2:
                    self.assert_profile(regs[0], ramp, ramp_start, t_a, t_b, what="ramp")
                    self.assertGreater(regs[0], 4900)
                else:
                    self.assertEqual(regs[0], Sim.default_raw(addr, 0))
            time.sleep(0.05)
        self.assertEqual(seen & {100, 900, 300}, {100, 900, 300})
        regs, _, _ = read_timed(self, port, 3, 24, 16)
        self.assertEqual(regs, [500] * 15 + [612])
        # a constant replaces a profile
        sim.set(0, 1, "c", 55)
        self.assertEqual(read_timed(self, port, 1, 10, 1)[0], [55])

    def test_long_profile_and_repeat_by_command(self):
        sim = Sim.single(self, wire_time=False)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        points = [[i, (i * 50) % 65536] for i in range(1024)]     # a 14 kB line
        start = sim.profile(0, 1, 0, points, start=time.time() - 100.5)
        regs, t_a, t_b = read_timed(self, port, 1, 8, 1)
        self.assert_profile(regs[0], points, start, t_a, t_b)
        self.assertTrue(5000 <= regs[0] <= 5100, regs)
        saw = [[0, 0], [1, 1000]]
        start = sim.profile(0, 1, 1, saw, start=time.time() - 1e6 - 0.25, repeat=True)
        regs, t_a, t_b = read_timed(self, port, 1, 9, 1)
        self.assert_profile(regs[0], saw, start, t_a, t_b, repeat=True)
        self.assertTrue(200 <= regs[0] <= 400, regs)

    def test_value_is_taken_when_the_answer_goes_out(self):
        """hdhk-sim(1): with wire time the register is read at the instant
        the answer is written, (request + answer + 3.5) characters after the
        request began: 404 ms at 1200 baud, 404 counts of this ramp."""
        sim = Sim.single(self, baud=1200)
        port = RtuPort(sim.path(), 1200)
        self.addCleanup(port.close)
        ramp = [[0, 0], [60, 60000]]                          # 1000 raw/s
        start = sim.profile(0, 1, "a", ramp)
        wire = wire_time_s(8, 37, 1200)
        for _ in range(2):
            regs, t_a, t_b = read_timed(self, port, 1, 8, 16, timeout=3)
            self.assertGreaterEqual(t_b - t_a, wire - 0.001)
            self.assert_profile(regs[0], ramp, start, t_a + wire, t_b)

    def test_bad_profiles_are_refused(self):
        sim = Sim.single(self)
        for line, message in (
                ("profile 0 1 a", "usage"),
                ("profile 0 1 a {\"points\": []}", "profile.points: expected 1..1024 points"),
                ("profile 0 1 a {\"points\": [[1, 5], [0, 6]]}", "must not decrease"),
                ("profile 0 1 a {\"points\": [[0, 65536]]}", "0..65535"),
                ("profile 0 1 a {\"points\": [[0, 1], [0, 2]], \"repeat\": true}",
                 "profile.repeat: needs the last point later"),
                ("profile 0 1 a {\"points\": [[0, 1]], \"start\": \"now\"}",
                 "expected a number"),
                ("profile 0 1 a {\"points\": [[0, 1]]", "invalid JSON"),
                ("profile 0 1 q {\"points\": [[0, 1]]}", "bad channel"),
                ("profile 0 9 a {\"points\": [[0, 1]]}", "no module 9"),
                ("profile 4 1 a {\"points\": [[0, 1]]}", "no bus 4")):
            with self.assertRaises(SimError, msg=line) as cm:
                sim.command(line)
            self.assertIn(message, str(cm.exception))
        with self.assertRaises(SimError):
            sim.profile(0, 1, 0, [[0, 1], [0, 2]], repeat=True)
        self.assert_read(sim, 1, 8, Sim.default_raws(1))      # nothing was changed


class ProfileMath(unittest.TestCase):
    """tests/lib/sim.py's profile_value and profile_integral against hand
    computation and against a fine numeric integration."""
    EXAMPLE = [[0, 0], [60, 1000], [60, 500], [120, 500], [180, 2000]]

    def test_values(self):
        p = self.EXAMPLE
        self.assertEqual(profile_value(p, 1000, 1030), 500)
        self.assertEqual(profile_value(p, 1000, 1060), 500)      # at the step: the later
        self.assertAlmostEqual(profile_value(p, 1000, 1059.99), 999.8333, places=3)
        self.assertEqual(profile_value(p, 1000, 1150), 1250)
        self.assertEqual(profile_value(p, 1000, 999), 0)
        self.assertEqual(profile_value(p, 1000, 5000), 2000)
        self.assertEqual(profile_raw([[0, 0], [2, 1]], 0, 1.0), 1)    # half up
        self.assertEqual(profile_raw([[0, 0], [2, 1]], 0, 0.9), 0)
        saw = [[0, 0], [10, 100]]
        self.assertEqual(profile_value(saw, 0, 25, repeat=True), 50)
        self.assertEqual(profile_value(saw, 0, 20, repeat=True), 0)
        self.assertEqual(profile_value(saw, 0, 25), 100)
        late = [[5, 100], [15, 200]]
        self.assertEqual(profile_value(late, 0, 2, repeat=True), 100)
        self.assertEqual(profile_value(late, 0, 20, repeat=True), 150)

    def test_integral_by_hand(self):
        p = self.EXAMPLE
        # ramp 60 s averaging 500, 60 s at 500, ramp 60 s averaging 1250
        self.assertAlmostEqual(profile_integral(p, 1000, 1000, 1180), 30000 + 30000 + 75000)
        # 30 s of the first ramp (500 -> 1000), 30 s at 500
        self.assertAlmostEqual(profile_integral(p, 1000, 1030, 1090), 22500 + 15000)
        self.assertAlmostEqual(profile_integral(p, 1000, 1090, 1030), -37500)
        self.assertAlmostEqual(profile_integral(p, 1000, 900, 1000), 0)
        self.assertAlmostEqual(profile_integral(p, 1000, 1180, 1200), 40000)
        self.assertAlmostEqual(profile_integral(p, 1000, 900, 1200), 175000)
        self.assertAlmostEqual(profile_integral([[0, 300]], 50, 0, 100), 30000)
        # repeat: a saw of 10 s averages 50; two cycles and half a rise
        saw = [[0, 0], [10, 100]]
        self.assertAlmostEqual(profile_integral(saw, 0, 0, 25, repeat=True), 1000 + 125)
        self.assertAlmostEqual(profile_integral(saw, 0, 3, 13, repeat=True), 500)
        self.assertAlmostEqual(profile_integral(saw, 1e9, 1e9 + 3, 1e9 + 10003, repeat=True),
                               500000, places=3)
        late = [[5, 100], [15, 200]]       # 100 until 5 s, then 10 s cycles averaging 150
        self.assertAlmostEqual(profile_integral(late, 0, 0, 25, repeat=True), 500 + 1500 + 1500)

    def test_integral_matches_numeric_integration(self):
        p = [[0, 10], [3, 10], [3, 700], [7.5, 200], [7.5, 1200], [9, 0], [12, 65535]]
        for repeat in (False, True):
            for t_a, t_b in ((95, 130), (101, 101.5), (99, 140.25)):
                n = 200000
                dt = (t_b - t_a) / n
                numeric = sum(profile_value(p, 100, t_a + (i + 0.5) * dt, repeat)
                              for i in range(n)) * dt
                self.assertAlmostEqual(profile_integral(p, 100, t_a, t_b, repeat), numeric,
                                       delta=abs(numeric) * 1e-4 + 1, msg=(repeat, t_a, t_b))

    def test_bad_profiles(self):
        for points, repeat in (([], False), ([[1, 0], [0, 1]], False), ([[2, 0], [2, 1]], True)):
            with self.assertRaises(ValueError):
                profile_value(points, 0, 1, repeat)
            with self.assertRaises(ValueError):
                profile_integral(points, 0, 0, 1, repeat)


class Writes(SimTest):
    def test_writes_to_6_7_and_ratios_are_honoured(self):
        sim = Sim.single(self)
        for reg, vals in ((6, [3]), (7, [0x0114]), (40, [1234]), (53, [1, 2, 3])):
            rc, _, out = mbpoll(sim.path(), "-t", "4", "-r", str(reg), values=vals)
            self.assertEqual(rc, 0, out)
        self.assert_read(sim, 1, 6, [3, 0x0114])
        self.assert_read(sim, 1, 40, [1234] + [1000] * 12 + [1, 2, 3])
        fcs = [e["fc"] for e in sim.log() if e["result"] == "ok"]
        self.assertIn(6, fcs)
        self.assertIn(16, fcs)

    def test_write_to_register_3_moves_the_address_after_answering(self):
        sim = Sim.single(self)
        rc, _, out = mbpoll(sim.path(), "-t", "4", "-r", "3", values=[0x0007])
        self.assertEqual(rc, 0, out)   # answered from the old address
        self.assert_read(sim, 7, 3, [0x0007])
        self.assert_read(sim, 7, 8, Sim.default_raws(1))   # scenario stays with the module
        self.assert_read_fails(sim, 1, message="timed out")

    def test_write_to_register_3_changes_the_line(self):
        sim = Sim.single(self)
        rc, _, out = mbpoll(sim.path(), "-t", "4", "-r", "3", values=[(1 << 12) | (5 << 8) | 1])
        self.assertEqual(rc, 0, out)
        self.assert_read_fails(sim, 1, message="timed out")
        self.assert_read(sim, 1, 8, Sim.default_raws(1), baud=19200, parity="even")
        self.assertIn("line-mismatch", [e["result"] for e in sim.log()])

    def test_illegal_writes_and_reads_get_exceptions(self):
        sim = Sim.single(self)
        for reg in (0, 2, 5, 8, 23, 39):
            rc, _, out = mbpoll(sim.path(), "-t", "4", "-r", str(reg), values=[1])
            self.assertNotEqual(rc, 0, out)
            self.assertIn("Illegal data address", out)
        for reg, val in ((6, 0), (6, 6), (3, 0x0900), (3, 0x0100)):
            rc, _, out = mbpoll(sim.path(), "-t", "4", "-r", str(reg), values=[val])
            self.assertNotEqual(rc, 0, out)
            self.assertIn("Illegal data value", out)
        self.assert_read_fails(sim, 1, start=50, count=10, message="Illegal data address")
        # FC 0x04 is not in the datasheet
        rc, regs, out = mbpoll(sim.path(), "-t", "3", "-r", "8", "-c", "2")
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(regs, {})
        self.assertIn("Illegal function", out)
        # nothing was changed by the refused writes
        self.assert_read(sim, 1, 0, [628, 40, 40, 1, (20 << 8) | 6, 0, 5, 30])
        exc = [e for e in sim.log() if e["result"] == "exception"]
        self.assertEqual(sorted({e["exception"] for e in exc}), [1, 2, 3])

    def test_broadcast_write_applied_never_answered(self):
        sim = Sim.single(self, n_modules=2)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        self.assertEqual(port.transact(frame(0, 6, 0, 6, 0, 2), 8, timeout=0.3), b"")
        self.assert_read(sim, 1, 6, [2])
        self.assert_read(sim, 2, 6, [2])

    def test_write_multiple_by_raw_frame(self):
        sim = Sim.single(self)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        # the datasheet's own FC 0x10 example: 0x0002 into register 3 of device 1
        req = bytes.fromhex("01100003000102000227A2")
        self.assertEqual(port.transact(req, 8), frame(1, 0x10, 0, 3, 0, 1))
        self.assertEqual(port.transact(read_request(2, 3, 1), 7), frame(2, 3, 2, 0, 2))


class Line(SimTest):
    def test_wrong_line_settings_get_no_answer(self):
        sim = Sim.single(self)
        self.assert_read_fails(sim, 1, baud=19200, message="timed out")
        self.assert_read_fails(sim, 1, parity="even", message="timed out")
        self.assert_read(sim, 1, 8, [1010])
        results = [e["result"] for e in sim.log()]
        self.assertEqual(results, ["line-mismatch", "line-mismatch", "ok"])

    def test_other_framings(self):
        for framing, parity, stop in (("O81", "O", 1), ("N82", "N", 2)):
            sim = Sim.single(self, baud=4800, framing=framing, wire_time=False)
            port = RtuPort(sim.path(), 4800, parity, stop)
            answer = port.transact(read_request(1, 3, 1), 7)
            port.close()
            code = {"O81": 2, "N82": 3}[framing]
            self.assertEqual(answer, frame(1, 3, 2, code << 4 | 3, 1))
            wrong = RtuPort(sim.path(), 4800)
            self.assertEqual(wrong.transact(read_request(1, 3, 1), 7, timeout=0.3), b"")
            wrong.close()

    def test_absent_address_gets_no_answer(self):
        sim = Sim.single(self)
        self.assert_read_fails(sim, 9, message="timed out")
        self.assertEqual(sim.log()[-1]["result"], "absent")

    def test_garbage_then_valid_request(self):
        sim = Sim.single(self, wire_time=False)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        self.assertEqual(port.transact(b"\x01\x03\x00", 16, timeout=0.2), b"")
        bad = bytearray(read_request(1, 8, 2))
        bad[-1] ^= 0xFF
        self.assertEqual(port.transact(bytes(bad), 16, timeout=0.2), b"")
        self.assertEqual(port.transact(read_request(1, 8, 2), 9),
                         frame(1, 3, 4, 1010 >> 8, 1010 & 0xFF, 1020 >> 8, 1020 & 0xFF))
        self.assertGreaterEqual(sim.stats()["buses"][0]["discarded_bytes"], 3 + 8)

    def test_unread_answer_does_not_reach_the_next_client(self):
        sim = Sim.single(self)
        port = RtuPort(sim.path())
        port.send(read_request(1, 8, 16))
        sim.wait_log()                 # answered into the port, never read
        port.close()
        self.assert_read(sim, 1, 0, [628])


class Faults(SimTest):
    EXPECTED = {
        "noanswer": "timed out",
        "badcrc": "Invalid CRC",
        "truncate": "timed out",
        "garbage": "",
        "wrongaddr": "not from requested slave",
        "exception": "Slave device or server failure",
    }

    def test_each_fault_fails_the_read_once(self):
        sim = Sim.single(self, n_modules=2)
        for kind, message in self.EXPECTED.items():
            with self.subTest(kind=kind):
                sim.fault(0, 1, kind, 1)
                self.assert_read_fails(sim, 1, message=message)
                self.assert_read(sim, 1, 8, Sim.default_raws(1))
        results = [e["result"] for e in sim.log()]
        self.assertEqual(results, [r for k in self.EXPECTED for r in (k, "ok")])
        mod = sim.stats()["buses"][0]["modules"][0]
        self.assertEqual((mod["faults"], mod["fault"]), (len(self.EXPECTED), "none"))

    def test_raw_fault_frames(self):
        sim = Sim.single(self, wire_time=False)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        good = port.transact(read_request(1, 8, 2), 9)
        self.assertEqual(len(good), 9)
        sim.fault(0, 1, "badcrc", 1)
        bad = port.transact(read_request(1, 8, 2), 9)
        self.assertEqual(bad[:7], good[:7])
        self.assertNotEqual(bad[7:], good[7:])
        sim.fault(0, 1, "truncate", 1)
        self.assertEqual(port.transact(read_request(1, 8, 2), 9, timeout=0.3), good[:4])
        sim.fault(0, 1, "garbage", 1)
        answer = port.transact(read_request(1, 8, 2), 12)
        self.assertEqual(answer[3:], good)
        self.assertNotEqual(answer[0], 1)
        sim.fault(0, 1, "wrongaddr", 1)
        self.assertEqual(port.transact(read_request(1, 8, 2), 9), frame(2, *good[1:7]))
        sim.fault(0, 1, "exception", 1)
        self.assertEqual(port.transact(read_request(1, 8, 2), 5), frame(1, 0x83, 4))

    def test_fault_affects_only_its_module_until_cleared(self):
        sim = Sim.single(self, n_modules=2)
        sim.fault(0, 1, "noanswer")
        for _ in range(2):
            self.assert_read_fails(sim, 1, message="timed out")
            self.assert_read(sim, 2, 8, Sim.default_raws(2))
        sim.clear(0, 1)
        self.assert_read(sim, 1, 8, Sim.default_raws(1))
        sim.fault(0, "*", "badcrc")
        self.assert_read_fails(sim, 2, message="Invalid CRC")
        sim.clear()
        self.assert_read(sim, 2, 8, Sim.default_raws(2))

    def test_stall_then_normal(self):
        sim = Sim.single(self)
        sim.fault(0, 1, "stall", 1.5)
        start = time.monotonic()
        self.assert_read_fails(sim, 1, message="timed out")
        common.wait_for(lambda: read_regs(sim.path(), 8, 1)[0] == 0, timeout=10, what="stall to end")
        self.assertGreaterEqual(time.monotonic() - start, 1.4)
        self.assertIn("stall", [e["result"] for e in sim.log()])

    def test_bad_commands_are_refused(self):
        sim = Sim.single(self)
        for line in ("fault 0 1 melt", "fault 3 1 noanswer", "fault 0 2 noanswer",
                     "fault 0 1 stall", "disconnect 0 -1", "clear 0 9", "frobnicate", ""):
            with self.assertRaises(SimError, msg=line):
                sim.command(line)
        self.assertTrue(sim.command("fault %s 1 noanswer 2" % sim.path()).startswith("ok"))


class Disconnect(SimTest):
    def test_link_vanishes_and_returns(self):
        sim = Sim.single(self)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        sim.disconnect(0, 1.0)
        self.assertFalse(os.path.lexists(sim.path()))
        with self.assertRaises(OSError) as cm:
            port.send(read_request(1, 8, 16))
            port.receive(37, timeout=0.2)
            os.read(port.fd, 1)
        self.assertIn(cm.exception.errno, (errno.EIO, errno.ENODEV, errno.ENXIO))
        self.assert_read_fails(sim, 1)
        common.wait_for(lambda: os.path.lexists(sim.path()), timeout=10, what="link to return")
        self.assert_read(sim, 1, 8, Sim.default_raws(1))
        self.assertEqual(sim.stats()["buses"][0]["outages"], 1)

    def test_other_buses_keep_answering(self):
        sim = Sim(self, [{"modules": [1]}, {"modules": [1, 2]}]).start()
        sim.disconnect(0, 2)
        rc, regs, out = read_regs(sim.path(1), 8, 16, addr=2)
        self.assertEqual((rc, [regs.get(8 + i) for i in range(16)]), (0, Sim.default_raws(2)), out)


class WireTime(SimTest):
    def test_answer_not_before_the_wire_time(self):
        sim = Sim.single(self)
        port = RtuPort(sim.path())
        self.addCleanup(port.close)
        req = read_request(1, 8, 16)
        for _ in range(3):
            start = time.monotonic()
            answer = port.transact(req, 37)
            elapsed = time.monotonic() - start
            self.assertEqual(len(answer), 37)
            self.assertGreaterEqual(elapsed, wire_time_s(8, 37, 9600) - 0.001)

    def test_wire_time_follows_the_line(self):
        sim = Sim.single(self, baud=1200, framing="E81")
        port = RtuPort(sim.path(), 1200, "E")
        self.addCleanup(port.close)
        start = time.monotonic()
        self.assertEqual(len(port.transact(read_request(1, 0, 56), 117, timeout=3)), 117)
        self.assertGreaterEqual(time.monotonic() - start, wire_time_s(8, 117, 1200, bits=11) - 0.001)

    def test_wire_time_helper(self):
        self.assertAlmostEqual(Sim.wire_time(8, 37), 0.050521, places=5)
        self.assertAlmostEqual(Sim.wire_time(8, 117, 1200, "E81"), wire_time_s(8, 117, 1200, 11))
        self.assertAlmostEqual(Sim.wire_time(8, 37, 19200, "N82"), wire_time_s(8, 37, 19200, 11))

    def test_mbpoll_whole_process(self):
        sim = Sim.single(self)
        start = time.monotonic()
        self.assert_read(sim, 1, 8, Sim.default_raws(1))
        self.assertGreaterEqual(time.monotonic() - start, wire_time_s(8, 37, 9600))


class Log(SimTest):
    def test_log_records_each_request(self):
        sim = Sim.single(self, n_modules=2)
        before = time.time() * 1000
        for addr in (1, 2, 1):
            self.assert_read(sim, addr, 8, Sim.default_raws(addr))
        self.assert_read_fails(sim, 3)
        log = sim.log()
        self.assertEqual([(e["addr"], e["fc"], e["start"], e["count"], e["result"]) for e in log],
                         [(1, 3, 8, 16, "ok"), (2, 3, 8, 16, "ok"), (1, 3, 8, 16, "ok"),
                          (3, 3, 8, 16, "absent")])
        self.assertEqual(log[1]["values"], Sim.default_raws(2))
        self.assertEqual(log[3]["values"], [])
        self.assertEqual({e["bus"] for e in log}, {sim.path()})
        stamps = [e["t_ms"] for e in log]
        self.assertEqual(stamps, sorted(stamps))
        self.assertGreaterEqual(stamps[0], before)
        self.assertLessEqual(stamps[-1], time.time() * 1000)
        mods = sim.stats()["buses"][0]["modules"]
        self.assertEqual([(m["requests"], m["answers"]) for m in mods], [(2, 2), (1, 1)])


class Process(unittest.TestCase):
    def test_quick_form_and_clean_exit(self):
        d = common.tmpdir(self)
        link, ctl, log = (os.path.join(d, n) for n in ("ttyS", "ctl", "log"))
        os.symlink("/nonexistent/stale", link)   # a stale link is replaced
        p = subprocess.Popen([common.HDHK_SIM, "--pty", link, "--address", "3,4",
                              "--baud", "19200", "--no-wire-time", "--log", log,
                              "--control", ctl], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        self.assertEqual(p.stdout.readline(), b"ready\n")
        self.assertTrue(os.path.realpath(link).startswith("/dev/pts/"))
        rc, regs, out = read_regs(link, 8, 16, addr=4, baud=19200)
        self.assertEqual((rc, [regs.get(8 + i) for i in range(16)]), (0, Sim.default_raws(4)), out)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)
        self.assertFalse(os.path.lexists(link))
        self.assertFalse(os.path.lexists(ctl))
        with open(log) as f:
            self.assertEqual(json.loads(f.readline())["values"], Sim.default_raws(4))

    def test_refuses_to_replace_a_file(self):
        d = common.tmpdir(self)
        path = os.path.join(d, "ttyS")
        with open(path, "w") as f:
            f.write("keep me")
        p = common.run([common.HDHK_SIM, "--pty", path], timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(path, p.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "keep me")

    def test_config_errors_name_the_json_path(self):
        d = common.tmpdir(self)
        cfg = os.path.join(d, "sim.json")
        with open(cfg, "w") as f:
            json.dump({"buses": [{"path": os.path.join(d, "t"), "baud": 9601, "colour": 1,
                                  "modules": [{"address": 1, "channels": [{"sine": {}}]},
                                              {"address": 1}]}]}, f)
        p = common.run([common.HDHK_SIM, "-c", cfg], timeout=10)
        self.assertEqual(p.returncode, 78, p.stderr)
        for msg in ("buses[0].baud: not a baud rate", "buses[0].colour: unknown key",
                    "buses[0].modules[0].channels[0].sine: missing \"period\"",
                    "buses[0].modules[1]: address 1 is already used"):
            self.assertIn(msg, p.stderr)
        self.assertFalse(os.path.lexists(os.path.join(d, "t")))

    def test_usage_errors(self):
        self.assertEqual(common.run([common.HDHK_SIM]).returncode, 64)
        self.assertEqual(common.run([common.HDHK_SIM, "--pty", "/tmp/x", "--framing", "X81"]).returncode, 78)


if __name__ == "__main__":
    common.main()
