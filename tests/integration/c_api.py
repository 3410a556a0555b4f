"""libpowermeter as an integrator meets it: the shared library exports
exactly the public API under a versioned soname, every public function is
documented in the header and the man page, the example program reads
hdhk-sim, and after `meson install --destdir` the example compiles with
`cc $(pkg-config --cflags --libs powermeter)` against the installed copy
and the installed Python package reads through the installed library."""
import json
import os
import re
import subprocess
import sys
import unittest

import common
from sim import Sim

LIB_DIR = os.path.join(common.BUILD, "src", "lib")
LIBRARY = os.path.join(LIB_DIR, "libpowermeter.so.1")
HEADER = os.path.join(common.SOURCE, "include", "powermeter", "powermeter.h")
SYMFILE = os.path.join(common.SOURCE, "src", "lib", "libpowermeter.sym")
MANPAGE = os.path.join(common.SOURCE, "man", "libpowermeter.3")
READ_ALL_SRC = os.path.join(common.SOURCE, "examples", "read_all.c")
READ_ALL = os.path.join(common.BUILD, "examples", "read_all")
LETTERS = "abcdefghijklmnop"


def header_functions():
    """The functions powermeter.h declares, in order, each with the comment
    right above its declaration ('' when there is none)."""
    with open(HEADER) as f:
        text = f.read()
    found = []
    # a declaration starts with its type in column 0, a comment does not
    for m in re.finditer(r"^[a-z][\w ]*?[ *](pm_\w+)\(", text, re.M):
        before = text[:m.start()].rstrip()
        comment = ""
        if before.endswith("*/"):
            comment = before[before.rfind("/*"):]
        found.append((m.group(1), comment))
    return found


def symfile_globals():
    with open(SYMFILE) as f:
        text = f.read()
    body = text[text.index("global:") + len("global:"):text.index("local:")]
    return [s.strip().rstrip(";") for s in body.split() if s.strip()]


def sanitizer_flags(library):
    """The library of a sanitizer build needs programs built the same way."""
    out = common.run(["ldd", library]).stdout
    flags = []
    if "libasan.so" in out:
        flags.append("-fsanitize=address")
    if "libubsan.so" in out:
        flags.append("-fsanitize=undefined")
    return flags


def asan_runtime(library):
    for line in common.run(["ldd", library]).stdout.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libasan.so") and len(parts) > 2:
            return parts[2]
    return None


def write_config(testcase, devices):
    d = common.tmpdir(testcase, "pm-capi-")
    path = os.path.join(d, "powermeter.json")
    with open(path, "w") as f:
        json.dump({"snapshot": os.path.join(d, "values.json"),
                   "state_directory": os.path.join(d, "state"),
                   "runtime_directory": d,
                   "devices": devices}, f, indent=4)
    return path


def shared_bus(testcase):
    """Two modules on one bus: device 1 (address 1, all 16 inputs, frequency
    read) and device 2 (address 2, inputs b and c)."""
    sim = Sim.single(testcase, n_modules=2)
    for ch in range(16):
        sim.setfreq(0, 1, ch, 499 + ch)
    path = write_config(testcase, [
        {"id": 1, "port": sim.path(), "address": 1, "frequency": True, "timeout": 0.3,
         "inputs": [{"input": c, "ratio": 0.01, "name": "Input %s" % c} for c in LETTERS]},
        {"id": 2, "port": sim.path(), "address": 2, "timeout": 0.3,
         "inputs": [{"input": "b", "ratio": 0.05, "name": "Pitch 1"},
                    {"input": "c", "ratio": 0.05, "name": "Pitch 2"}]},
    ])
    return sim, path


def expected_rows(sim, failed=()):
    """read_all's tab-separated rows, as shared_bus() configures them."""
    rows = []
    for ch, c in enumerate(LETTERS):
        rows.append(["%d" % ch, "1", sim.path(), "1", c, "%d" % (ch + 1), "Input %s" % c,
                     "%.2f" % (Sim.default_raw(1, ch) * 0.01), "%.1f" % ((499 + ch) / 10)])
    for i, ch in enumerate((1, 2)):
        rows.append(["%d" % (16 + i), "2", sim.path(), "2", LETTERS[ch], "%d" % (ch + 1),
                     "Pitch %d" % (i + 1), "%.2f" % (Sim.default_raw(2, ch) * 0.05), "-"])
    for row in rows:
        if int(row[1]) in failed:
            row[7:9] = ["-", "-"]
    return rows


class Exports(unittest.TestCase):
    def test_header_symfile_and_exports_agree(self):
        nm = common.require_tool("nm")
        declared = [name for name, _ in header_functions()]
        self.assertIn("pm_read", declared)
        self.assertEqual(sorted(symfile_globals()), sorted(declared))
        p = common.run([nm, "-D", "--defined-only", LIBRARY], check=True)
        exported = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            name = parts[-1]
            if parts[-2] == "A" and name == "POWERMETER_1":
                continue		# the version node itself
            base, _, version = name.partition("@")
            exported[base] = version.lstrip("@")
        self.assertEqual(sorted(exported), sorted(declared))
        for name, version in exported.items():
            self.assertIn(version, ("", "POWERMETER_1"), name)
        # each is a function (T), not data
        types = {l.split()[-1].split("@")[0]: l.split()[-2] for l in p.stdout.splitlines()}
        for name in declared:
            self.assertEqual(types[name], "T", name)

    def test_soname_is_versioned(self):
        readelf = common.require_tool("readelf")
        p = common.run([readelf, "-d", LIBRARY], check=True)
        self.assertRegex(p.stdout, r"\(SONAME\)\s+Library soname: \[libpowermeter\.so\.1\]")
        self.assertTrue(os.path.islink(os.path.join(LIB_DIR, "libpowermeter.so")))
        self.assertEqual(os.path.basename(os.path.realpath(LIBRARY)), "libpowermeter.so.1.1.0")

    def test_every_public_function_is_documented(self):
        with open(MANPAGE) as f:
            man = f.read()
        for name, comment in header_functions():
            self.assertGreater(len(comment), 40, "%s has no comment in powermeter.h" % name)
            # in the SYNOPSIS and described under Functions
            self.assertGreaterEqual(len(re.findall(r"\b%s\b" % name, man)), 3,
                                    "%s is not documented in libpowermeter.3" % name)
        for code in ("PM_ECONFIG", "PM_ECRC", "PM_EFRAME", "PM_EUNIT", "PM_EEXCEPTION",
                     "PM_ESTALE", "PM_ENOSNAPSHOT", "PM_ETOOBIG", "PM_ENOTREG"):
            self.assertIn(".B %s\n" % code, man)


class Example(unittest.TestCase):
    def run_read_all(self, exe, *args, env=None):
        return common.run([exe] + list(args), env=env)

    def rows(self, stdout):
        lines = stdout.splitlines()
        self.assertEqual(lines[0].split("\t")[:3], ["id", "device", "port"])
        return [l.split("\t") for l in lines[1:]]

    def test_reads_every_input(self):
        sim, path = shared_bus(self)
        p = self.run_read_all(READ_ALL, "-c", path, "-s", "bus")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        rows = self.rows(p.stdout)
        self.assertEqual([r[:9] for r in rows], expected_rows(sim))
        self.assertEqual({r[10] for r in rows}, {"ok"})

    def test_failed_device_is_reported_and_others_read(self):
        sim, path = shared_bus(self)
        sim.fault(0, 1, "badcrc")
        p = self.run_read_all(READ_ALL, "-c", path, "-s", "bus")
        self.assertEqual(p.returncode, 1)
        self.assertIn("device 1 on %s address 1" % sim.path(), p.stderr)
        self.assertIn("CRC", p.stderr)
        rows = self.rows(p.stdout)
        self.assertEqual([r[:9] for r in rows], expected_rows(sim, failed=(1,)))
        self.assertEqual({r[10] for r in rows[:16]}, {"CRC error in the answer"})

    def test_json_is_the_seeds(self):
        sim, path = shared_bus(self)
        p = self.run_read_all(READ_ALL, "-c", path, "-f", "json", "-d", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        want = [{"id": 16, "device_id": 2, "input": "b", "name": "Pitch 1",
                 "current": round(Sim.default_raw(2, 1) * 0.05, 2)},
                {"id": 17, "device_id": 2, "input": "c", "name": "Pitch 2",
                 "current": round(Sim.default_raw(2, 2) * 0.05, 2)}]
        self.assertEqual(p.stdout, json.dumps(want, indent=4) + "\n")

    def test_bad_config_exits_78_with_every_problem(self):
        path = write_config(self, [{"id": 1, "port": "/dev/null", "address": 0,
                                    "inputs": [{"input": "q", "ratio": 0.01, "name": "x"}]}])
        p = self.run_read_all(READ_ALL, "-c", path)
        self.assertEqual(p.returncode, 78)
        self.assertIn("devices[0].address", p.stderr)
        self.assertIn("devices[0].inputs[0].input", p.stderr)
        self.assertIn("powermeter.json", p.stderr)

    def test_installed_library_header_pkgconfig_and_python_package(self):
        """meson install --destdir, then build read_all.c as a user would,
        with nothing from the build tree."""
        pkgconf = common.require_tool("pkg-config")
        cc = common.require_tool("cc")
        dest = common.tmpdir(self, "pm-destdir-")
        p = common.run(["meson", "install", "-C", common.BUILD, "--no-rebuild", "--quiet",
                        "--destdir", dest], timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(common.BUILD, "meson-info", "intro-installed.json")) as f:
            installed = json.load(f)
        by_name = {os.path.basename(src): dst for src, dst in installed.items()}

        def staged(dst):
            return os.path.join(dest, dst.lstrip("/"))

        header = staged(by_name["powermeter.h"])
        pc = staged(by_name["powermeter.pc"])
        lib = staged(by_name["libpowermeter.so.1.1.0"])
        libdir = os.path.dirname(lib)
        self.assertTrue(header.endswith("/include/powermeter/powermeter.h"))
        self.assertTrue(os.path.isfile(header))
        self.assertEqual(os.readlink(os.path.join(libdir, "libpowermeter.so.1")),
                         "libpowermeter.so.1.1.0")
        self.assertEqual(os.readlink(os.path.join(libdir, "libpowermeter.so")),
                         "libpowermeter.so.1")
        self.assertTrue(os.path.isfile(staged(by_name["libpowermeter.3"])))

        env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=dest,
                   PKG_CONFIG_LIBDIR=os.path.dirname(pc), PKG_CONFIG_PATH="")
        flags = common.run([pkgconf, "--cflags", "--libs", "powermeter"], env=env, check=True)
        words = flags.stdout.split()
        self.assertIn("-lpowermeter", words)
        self.assertIn("-I" + os.path.dirname(os.path.dirname(header)), words)
        self.assertIn("-L" + libdir, words)
        # a user needs none of the library's own -dev packages
        self.assertEqual(common.run([pkgconf, "--print-requires", "--print-requires-private",
                                     "powermeter"], env=env, check=True).stdout.strip(), "")

        exe = os.path.join(common.tmpdir(self), "read_all")
        p = common.run([cc, "-std=c17", "-Wall", "-Wextra", "-pedantic", "-Werror",
                        READ_ALL_SRC, "-o", exe] + words + sanitizer_flags(LIBRARY))
        self.assertEqual(p.returncode, 0, p.stderr)

        sim, path = shared_bus(self)
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        p = self.run_read_all(exe, "-c", path, "-s", "bus", env=run_env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r[:9] for r in self.rows(p.stdout)], expected_rows(sim))
        ldd = common.run(["ldd", exe], env=run_env, check=True).stdout
        self.assertIn("libpowermeter.so.1 => %s/libpowermeter.so.1" % libdir, ldd)

        # the Python package, from where it was installed
        init = staged(by_name["__init__.py"])
        self.assertEqual(os.path.basename(os.path.dirname(init)), "powermeter")
        py_env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(init)),
                      POWERMETER_LIBRARY=os.path.join(libdir, "libpowermeter.so.1"))
        runtime = asan_runtime(LIBRARY)
        if runtime:
            py_env["LD_PRELOAD"] = runtime
            py_env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        p = common.run([sys.executable, "-c",
                        "import json, powermeter; print(powermeter.__file__); "
                        "print(json.dumps(powermeter.get_values(%r)))" % path],
                       env=py_env, cwd=dest)
        self.assertEqual(p.returncode, 0, p.stderr)
        where, values = p.stdout.splitlines()
        self.assertEqual(where, init)
        self.assertEqual(json.loads(values)[16],
                         {"id": 16, "device_id": 2, "input": "b", "name": "Pitch 1",
                          "current": round(Sim.default_raw(2, 1) * 0.05, 2)})
        self.assertEqual(len(json.loads(values)), 18)

    def test_python_package_goes_to_pythons_site_directory(self):
        with open(os.path.join(common.BUILD, "meson-info", "intro-installed.json")) as f:
            installed = json.load(f)
        with open(os.path.join(common.BUILD, "meson-info", "intro-buildoptions.json")) as f:
            options = {o["name"]: o["value"] for o in json.load(f)}
        init = [dst for src, dst in installed.items()
                if src.endswith(os.path.join("src", "python", "powermeter", "__init__.py"))]
        self.assertEqual(len(init), 1)
        site = os.path.dirname(os.path.dirname(init[0]))
        prefix = options["prefix"]
        if options["pythondir"]:
            self.assertEqual(site, options["pythondir"])
        elif prefix == "/usr":
            self.assertEqual(site, "/usr/lib/python3/dist-packages")
        else:
            # Debian's python3 looks there for prefix /usr/local
            want = common.run(["/usr/bin/python3", "-c",
                               "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              check=True).stdout.strip()
            if want.startswith(prefix + "/"):
                self.assertEqual(site, want)
            else:
                self.assertTrue(site.startswith(prefix + "/"), site)


if __name__ == "__main__":
    common.main()
