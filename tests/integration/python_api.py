"""The Python package 'powermeter' (src/python) over the built
libpowermeter.so.1, against hdhk-sim: the seed's get_values() key for key
and type for type, failed devices skipped with a warning, ConfigError with
file and JSON path, the richer read() with frequency and status, how the
library is found ($POWERMETER_LIBRARY, the loader path), and struct
pm_value's ctypes layout against the C compiler's."""
import atexit
import ctypes
import datetime
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import common
from sim import Sim

LIBRARY = os.path.join(common.BUILD, "src", "lib", "libpowermeter.so.1")
PYTHON_SRC = os.path.join(common.SOURCE, "src", "python")


def _asan_runtime(library):
    """The ASan runtime the library was linked with (sanitizer builds), or
    None. A Python process can only load such a library with that runtime
    preloaded."""
    out = subprocess.run(["ldd", library], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libasan.so") and len(parts) > 2:
            return parts[2]
    return None


def child_env(**extra):
    """The environment for a child Python that loads the library."""
    env = dict(os.environ)
    env.update(CHILD_ENV)
    env.update(extra)
    return env


CHILD_ENV = {}
_runtime = _asan_runtime(LIBRARY) if os.path.exists(LIBRARY) else None
if _runtime:
    CHILD_ENV = {
        "LD_PRELOAD": _runtime,
        # The interpreter itself never frees everything at exit: leaks are
        # checked by the C programs (unit tests, examples), not here.
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0",
    }
    if os.environ.get("PM_TEST_ASAN_REEXEC") != "1":
        env = child_env(PM_TEST_ASAN_REEXEC="1",
                        PM_TEST_ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", ""))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    # The programs this test starts (hdhk-sim) carry their own runtime and
    # keep the caller's options, leak checks included.
    os.environ.pop("LD_PRELOAD", None)
    os.environ["ASAN_OPTIONS"] = os.environ.pop("PM_TEST_ASAN_OPTIONS", "")

os.environ["POWERMETER_LIBRARY"] = LIBRARY
# A daemon's snapshot on this machine must never stand in for the bus.
_RUNTIME = tempfile.mkdtemp(prefix="pm-pyapi-run-")
atexit.register(shutil.rmtree, _RUNTIME, True)
os.environ["RUNTIME_DIRECTORY"] = _RUNTIME
os.environ["STATE_DIRECTORY"] = _RUNTIME
sys.path.insert(0, PYTHON_SRC)
import powermeter  # noqa: E402
from powermeter import _native  # noqa: E402

LETTERS = "abcdefghijklmnop"


def seed_config(ports, timeout=1):
    """The seed's powermeter.json shape: a JSON array of devices with every
    key the seed's sample has (baudrate a string), 16 inputs each."""
    return [{
        "id": i + 1,
        "port": port,
        "timeout": timeout,
        "stopbits": 1,
        "bytesize": 8,
        "parity": "N",
        "baudrate": "9600",
        "inputs": [{"input": c, "ratio": 0.01, "name": "Input %s" % c} for c in LETTERS],
    } for i, port in enumerate(ports)]


def write_json(testcase, obj, name="powermeter.json"):
    d = common.tmpdir(testcase, "pm-pyapi-")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=4)
    return path


def object_config(testcase, devices):
    """The object form, with snapshot and state kept in a tmpdir so that
    no daemon's snapshot on this machine is ever read."""
    d = common.tmpdir(testcase, "pm-pyapi-")
    cfg = {
        "snapshot": os.path.join(d, "values.json"),
        "state_directory": os.path.join(d, "state"),
        "runtime_directory": d,
        "devices": devices,
    }
    path = os.path.join(d, "powermeter.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=4)
    return path


def two_bus_sim(testcase):
    """Two buses, one module (address 1) each, as the seed's two
    converters; bus 1's channels read other values than bus 0's."""
    sim = Sim(testcase, [{"path": "ttyUSB0", "baud": 9600, "modules": [{"address": 1}]},
                         {"path": "ttyUSB1", "baud": 9600, "modules": [{"address": 1}]}])
    sim.start()
    for ch in range(16):
        sim.set(1, 1, ch, bus1_raw(ch))
    return sim


def bus1_raw(ch):
    return 3 * ch * ch + 7 * ch + 1  # 1, 11, 27, ..., 781: 0.01 .. 7.81 A


def expected_values(raws_by_device, first_id=0):
    """The seed's list: running id, device_id, input, name, current =
    round(raw x 0.01, 2)."""
    values = []
    i = first_id
    for device_id, raws in raws_by_device:
        for ch, raw in enumerate(raws):
            values.append({"id": i, "device_id": device_id, "input": LETTERS[ch],
                           "name": "Input %s" % LETTERS[ch], "current": round(raw * 0.01, 2)})
            i += 1
    return values


class GetValues(unittest.TestCase):
    def test_seed_config_gives_the_seeds_list(self):
        sim = two_bus_sim(self)
        path = write_json(self, seed_config([sim.path(0), sim.path(1)]))
        values = powermeter.get_values(path)
        want = expected_values([(1, Sim.default_raws(1)),
                                (2, [bus1_raw(ch) for ch in range(16)])])
        self.assertEqual(values, want)
        for v in values:
            self.assertEqual(list(v), ["id", "device_id", "input", "name", "current"])
            self.assertEqual([type(v[k]) for k in v], [int, int, str, str, float])
        # what the seed printed is what the library's own JSON prints
        self.assertEqual(json.dumps(values, indent=4), library_json(path))

    def test_current_is_rounded_as_pythons_round(self):
        # ratios whose products are not 2-decimal numbers: 0.015 is a
        # little below 0.015 as a double, so round() gives 0.01 where
        # rounding the decimal text half-up would give 0.02
        raws = [1, 3, 5, 7, 9, 11, 13, 15, 101, 1001, 12345, 65535, 0, 2, 4, 6]
        ratios = [0.005] * 8 + [0.0245] * 8
        sim = Sim.single(self)
        for ch, raw in enumerate(raws):
            sim.set(0, 1, ch, raw)
        cfg = seed_config([sim.path()])
        for inp, ratio in zip(cfg[0]["inputs"], ratios):
            inp["ratio"] = ratio
        path = write_json(self, cfg)
        values = powermeter.get_values(path)
        self.assertEqual([v["current"] for v in values],
                         [round(raw * ratio, 2) for raw, ratio in zip(raws, ratios)])
        self.assertEqual(values[1]["current"], 0.01)
        self.assertEqual(json.dumps(values, indent=4), library_json(path))

    def test_failed_device_is_skipped_with_a_warning(self):
        sim = two_bus_sim(self)
        sim.fault(0, 1, "noanswer")
        path = write_json(self, seed_config([sim.path(0), sim.path(1)], timeout=0.3))
        with self.assertLogs("powermeter", logging.WARNING) as logs:
            values = powermeter.get_values(path)
        # the ids stay the inputs' positions in the config: device 2's
        # inputs are 16..31 whether or not device 1 answered
        self.assertEqual(values, expected_values([(2, [bus1_raw(ch) for ch in range(16)])],
                                                 first_id=16))
        self.assertEqual(len(logs.records), 1)
        message = logs.records[0].getMessage()
        self.assertIn("device 1", message)
        self.assertIn(sim.path(0), message)
        self.assertIn("skipping", message)

    def test_all_devices_failing_gives_an_empty_list(self):
        path = write_json(self, seed_config([os.path.join(common.tmpdir(self), "ttyNONE")]))
        with self.assertLogs("powermeter", logging.WARNING) as logs:
            self.assertEqual(powermeter.get_values(path), [])
        self.assertIn("device 1", logs.output[0])

    def test_bad_config_raises_config_error_with_file_and_json_path(self):
        cfg = seed_config(["/dev/null"])
        cfg[0]["inputs"][3]["ratio"] = "x"
        cfg[0]["parity"] = "Q"
        path = write_json(self, cfg, "broken.json")
        with self.assertRaises(powermeter.ConfigError) as cm:
            powermeter.get_values(path)
        e = cm.exception
        self.assertIsInstance(e, ValueError)
        self.assertEqual(e.code, -_native.PM_ECONFIG)
        self.assertEqual(e.path, path)
        text = str(e)
        self.assertIn("broken.json", text)
        self.assertIn("[0].inputs[3].ratio", text)
        self.assertIn("[0].parity", text)
        # every problem, one per line, each naming the file
        self.assertGreaterEqual(len(e.errors), 2)
        for line in e.errors:
            self.assertIn("broken.json", line)

    def test_missing_config_raises_file_not_found(self):
        path = os.path.join(common.tmpdir(self), "nope.json")
        with self.assertRaises(FileNotFoundError) as cm:
            powermeter.get_values(path)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertEqual(cm.exception.filename, path)

    def test_module_main_prints_the_seeds_json(self):
        sim = two_bus_sim(self)
        path = write_json(self, seed_config([sim.path(0), sim.path(1)]))
        p = common.run([sys.executable, "-m", "powermeter", path],
                       env=child_env(PYTHONPATH=PYTHON_SRC))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, library_json(path) + "\n")


def library_json(path):
    """PM_FORMAT_JSON straight from the library, for comparison."""
    lib = _native.lib()
    cfg, r, text = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.pm_config_load(ctypes.byref(cfg), os.fsencode(path), None) == 0
    try:
        assert lib.pm_read(cfg, -1, _native.PM_SOURCE_BUS, ctypes.byref(r)) == 0
        try:
            assert lib.pm_readings_format(r, _native.PM_FORMAT_JSON, None,
                                          ctypes.byref(text)) == 0
            return _native.take_text(text)
        finally:
            lib.pm_readings_free(r)
    finally:
        lib.pm_config_free(cfg)


class Read(unittest.TestCase):
    def shared_bus(self, **dev1):
        """Modules 1 and 2 on one bus: device 10 (address 1, frequency
        read) and device 20 (address 2, not)."""
        sim = Sim.single(self, n_modules=2)
        for ch in range(16):
            sim.setfreq(0, 1, ch, 500 + ch)		# 50.0 .. 51.5 Hz
        d1 = {"id": 10, "port": sim.path(), "address": 1, "baudrate": 9600,
              "frequency": True, "timeout": 0.3,
              "inputs": [{"input": "a", "ratio": 0.01, "name": "L1"},
                         {"input": "d", "ratio": 0.02, "name": "Rack 3, PDU \"A\"=left"}]}
        d1.update(dev1)
        d2 = {"id": 20, "port": sim.path(), "address": 2, "baudrate": 9600, "timeout": 0.3,
              "inputs": [{"input": "p", "ratio": 0.01, "name": "Pitch 16"}]}
        return sim, object_config(self, [d1, d2])

    def test_read_gives_every_field_and_frequency_when_enabled(self):
        sim, path = self.shared_bus()
        before = time.time()
        readings = powermeter.read(path, source="bus")
        after = time.time()
        self.assertEqual([(r.id, r.device_id, r.input) for r in readings],
                         [(0, 10, "a"), (1, 10, "d"), (2, 20, "p")])
        a, d, p = readings
        self.assertEqual((a.port, a.address, a.channel, a.name), (sim.path(), 1, 1, "L1"))
        self.assertEqual((d.channel, d.name), (4, "Rack 3, PDU \"A\"=left"))
        self.assertEqual((p.port, p.address, p.channel), (sim.path(), 2, 16))
        self.assertAlmostEqual(a.current, Sim.default_raw(1, 0) * 0.01, places=9)
        self.assertAlmostEqual(d.current, Sim.default_raw(1, 3) * 0.02, places=9)
        self.assertAlmostEqual(p.current, Sim.default_raw(2, 15) * 0.01, places=9)
        self.assertAlmostEqual(a.frequency, 50.0, places=9)
        self.assertAlmostEqual(d.frequency, 50.3, places=9)
        self.assertIsNone(p.frequency)		# device 20 has no "frequency"
        for r in readings:
            self.assertTrue(r.ok)
            self.assertEqual(r.status, 0)
            self.assertIsNone(r.error)
            self.assertIsInstance(r.current, float)
            self.assertIsInstance(r.time, datetime.datetime)
            self.assertEqual(r.time.tzinfo, datetime.timezone.utc)
            self.assertEqual(r.time.timestamp(), r.time_ms / 1000)
            self.assertGreaterEqual(r.time_ms, int(before * 1000) - 1)
            self.assertLessEqual(r.time_ms, int(after * 1000) + 1)
        self.assertEqual(a.as_dict()["name"], "L1")
        # estimated power at the default 230 V and power factor 1; the
        # counters are the daemon's, so none from the bus
        for r in readings:
            self.assertAlmostEqual(r.power, r.current * 230, places=9)
            self.assertIsNone(r.energy)
            self.assertIsNone(r.charge)

    def test_failed_device_has_status_and_error_text(self):
        sim, path = self.shared_bus()
        sim.fault(0, 2, "noanswer")
        a, d, p = powermeter.read(path, source="bus")
        self.assertTrue(a.ok and d.ok)
        self.assertEqual(p.status, -errno.ETIMEDOUT)
        self.assertFalse(p.ok)
        self.assertIsNone(p.current)
        self.assertIsNone(p.frequency)
        self.assertIsNone(p.time)
        self.assertIn("device 20", p.error)
        self.assertIn("address 2", p.error)
        self.assertIn("timeout", p.error)

    def test_one_device(self):
        sim, path = self.shared_bus()
        readings = powermeter.read(path, source="bus", device_id=20)
        self.assertEqual([(r.id, r.device_id) for r in readings], [(2, 20)])
        with self.assertRaises(ValueError):
            powermeter.read(path, device_id=99)

    def test_config_object_reads_repeatedly(self):
        sim, path = self.shared_bus()
        with powermeter.Config(path) as cfg:
            self.assertEqual(cfg.device_ids, [10, 20])
            first = cfg.read(source="bus")
            sim.set(0, 1, 0, 4321)
            second = cfg.read(source="bus")
        self.assertAlmostEqual(first[0].current, Sim.default_raw(1, 0) * 0.01)
        self.assertAlmostEqual(second[0].current, 43.21)
        with self.assertRaises(ValueError):
            cfg.read()

    def test_snapshot_source_without_a_daemon(self):
        sim, path = self.shared_bus()
        with self.assertRaises(powermeter.PowermeterError) as cm:
            powermeter.read(path, source="snapshot")
        self.assertEqual(cm.exception.code, -_native.PM_ENOSNAPSHOT)
        with self.assertRaises(ValueError):
            powermeter.read(path, source="serial")
        # "auto" falls back to the bus when there is no snapshot
        self.assertTrue(all(r.ok for r in powermeter.read(path, source="auto")))


class Daemon(unittest.TestCase):
    def test_values_come_from_the_daemons_snapshot_while_it_holds_the_port(self):
        sim = Sim.single(self, n_modules=2)
        devices = [{"id": a, "port": sim.path(), "address": a, "timeout": 0.5,
                    "inputs": [{"input": c, "ratio": 0.01, "name": "Input %s" % c}
                               for c in "abc"]} for a in (1, 2)]
        path = object_config(self, devices)
        with open(path) as f:
            cfg = json.load(f)
        cfg["interval"] = 0.2
        cfg["voltage"] = 120
        cfg["energy"] = {"persist_interval": 1}
        cfg["devices"][0]["inputs"][0]["phase"] = "L3"
        with open(path, "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(os.path.dirname(path), "daemon.log"), "w+")
        self.addCleanup(log.close)
        daemon = subprocess.Popen([common.POWERMETERD, "-c", path], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT)

        def stop():
            daemon.terminate()
            daemon.wait(15)
        self.addCleanup(stop)
        snapshot = cfg["snapshot"]
        common.wait_for(lambda: os.path.exists(snapshot) or daemon.poll() is not None,
                        timeout=15, what="the daemon's snapshot")
        self.assertIsNone(daemon.poll(), "powermeterd exited")

        values = powermeter.get_values(path)
        want = [{"id": i * 3 + ch, "device_id": a, "input": "abc"[ch],
                 "name": "Input %s" % "abc"[ch],
                 "current": round(Sim.default_raw(a, ch) * 0.01, 2)}
                for i, a in enumerate((1, 2)) for ch in range(3)]
        self.assertEqual(values, want)
        # the bus itself is the daemon's: a direct read is refused at once
        started = time.monotonic()
        direct = powermeter.read(path, source="bus")
        self.assertLess(time.monotonic() - started, 0.5)
        self.assertEqual({r.status for r in direct}, {-errno.EBUSY})
        self.assertIn("busy", direct[0].error)
        via_snapshot = powermeter.read(path, source="snapshot")
        self.assertTrue(all(r.ok for r in via_snapshot))
        self.assertLess(time.time() - via_snapshot[0].time_ms / 1000, 3 * 0.2 + 1)
        # the daemon's estimates: power at 120 V, its energy counters
        self.assertEqual(via_snapshot[0].phase, "L3")
        self.assertIsNone(via_snapshot[1].phase)
        for r in via_snapshot:
            self.assertAlmostEqual(r.power, r.current * 120, places=6)
            self.assertIsInstance(r.energy, float)
            self.assertIsInstance(r.charge, float)
        common.wait_for(lambda: powermeter.read(path, source="snapshot")[0].energy > 0, 10,
                        what="energy counted and saved twice")


class Library(unittest.TestCase):
    def run_child(self, code, **env):
        return common.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=child_env(PYTHONPATH=PYTHON_SRC, **env))

    def test_powermeter_library_is_honoured(self):
        copy = os.path.join(common.tmpdir(self), "libpm-copy.so.1")
        shutil.copy(LIBRARY, copy)
        p = self.run_child("""
            import powermeter
            print(powermeter.library_path())
            print(powermeter.library_version())
            print(any(l.rstrip().endswith("libpm-copy.so.1") for l in open("/proc/self/maps")))
            """, POWERMETER_LIBRARY=copy)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split("\n")[:3],
                         [copy, powermeter.library_version(), "True"])

    def test_wrong_powermeter_library_is_an_error_not_a_fallback(self):
        p = self.run_child("""
            import powermeter
            try:
                powermeter.get_values("/nonexistent.json")
            except OSError as e:
                print(e)
            """, POWERMETER_LIBRARY="/nonexistent/libpowermeter.so.1",
            LD_LIBRARY_PATH=os.path.dirname(LIBRARY))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("cannot load libpowermeter", p.stdout)
        self.assertIn("/nonexistent/libpowermeter.so.1", p.stdout)
        self.assertIn("POWERMETER_LIBRARY", p.stdout)

    def test_found_by_the_loader_path(self):
        env = child_env(PYTHONPATH=PYTHON_SRC, LD_LIBRARY_PATH=os.path.dirname(LIBRARY))
        env.pop("POWERMETER_LIBRARY", None)
        p = common.run([sys.executable, "-c", textwrap.dedent("""
            import os, powermeter
            print(powermeter.library_path())
            build = os.path.realpath(os.environ["LD_LIBRARY_PATH"])
            print(any(build in l for l in open("/proc/self/maps")))
            """)], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split("\n")[:2], ["libpowermeter.so.1", "True"])

    def test_version(self):
        with open(os.path.join(common.BUILD, "meson-info", "intro-projectinfo.json")) as f:
            self.assertEqual(powermeter.library_version(), json.load(f)["version"])

    def test_struct_pm_value_layout_matches_the_header(self):
        cc = common.require_tool("cc")
        d = common.tmpdir(self)
        src = os.path.join(d, "layout.c")
        fields = [name for name, _ in _native.Value._fields_]
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <stdio.h>\n"
                    "#include <powermeter/powermeter.h>\nint main(void)\n{\n"
                    "\tprintf(\"size %zu\\n\", sizeof(struct pm_value));\n")
            for name in fields:
                f.write("\tprintf(\"%s %%zu %%zu\\n\", offsetof(struct pm_value, %s), "
                        "sizeof(((struct pm_value *)0)->%s));\n" % (name, name, name))
            f.write("\treturn 0;\n}\n")
        exe = os.path.join(d, "layout")
        p = common.run([cc, "-std=c17", "-Wall", "-Werror", "-I",
                        os.path.join(common.SOURCE, "include"), src, "-o", exe])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = common.run([exe], check=True).stdout.split("\n")
        self.assertEqual(out[0], "size %d" % ctypes.sizeof(_native.Value))
        for name, line in zip(fields, out[1:]):
            member = getattr(_native.Value, name)
            self.assertEqual(line, "%s %d %d" % (name, member.offset, member.size))


if __name__ == "__main__":
    common.main()
