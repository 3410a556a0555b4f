#!/usr/bin/python3
"""The Debian packages, built from this tree and installed for real.

dpkg-buildpackage builds them from a copy of the tree (what git tracks or
would track: uncommitted changes included, build directories not), lintian
judges them, and a scratch Debian 12 root made by debootstrap from Debian's
archive takes them through what a user does: a fresh install, remove and
purge, an install over the previous Python tool's files (the "seed"), and
an upgrade from the previous version with a daemon that has run (spool,
energy counters, ledger). The previous version is these same packages
repacked with a lower version: there is no older release to fetch.

Needs root (chroot, mounts) and debhelper, lintian and debootstrap; under
CI=true their absence fails the test, by hand it skips. The tests run in
order, each on the root the one before left (test_NN_...). The mirror is
the host's (its apt sources), else deb.debian.org; PM_PACKAGE_KEEP=1 keeps
the work directory for a look afterwards.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import common

SOURCE = os.environ.get("PM_SOURCE_DIR",
                        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PACKAGES = ("powermeterd", "libpowermeter1", "libpowermeter-dev", "python3-powermeter",
            "hdhk-sim", "powermeter-zabbix")
SUITE = "bookworm"
# what the previous version is called (lower than any real one)
PREVIOUS_SUFFIX = "~prev1"

W = {}   # the module's state: work dir, debs, root, version


def sh(args, timeout=600, check=True, **kw):
    """Runs a command, returns CompletedProcess (text); raises with its
    output when it fails and check is set."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(args), r.returncode,
                                                    r.stdout[-3000:], r.stderr[-3000:]))
    return r


def in_root(cmd, timeout=600, check=True):
    """Runs a shell command inside the scratch root."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    return sh(["chroot", W["root"], "/bin/sh", "-c", cmd], timeout=timeout, check=check,
              env=env)


def root_path(p):
    return os.path.join(W["root"], p.lstrip("/"))


def mirror():
    """The host's Debian mirror (deb822 or one-line sources), else
    deb.debian.org."""
    for f in glob.glob("/etc/apt/sources.list.d/*.sources") + ["/etc/apt/sources.list"]:
        try:
            text = open(f).read()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or \
            re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+" + SUITE, text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def copy_tree(dst):
    """The files git tracks or would track (uncommitted changes included,
    build directories and other ignored files not)."""
    r = sh(["git", "-C", SOURCE, "ls-files", "-z", "--cached", "--others",
            "--exclude-standard"], check=False)
    if r.returncode != 0:
        shutil.copytree(SOURCE, dst, symlinks=True,
                        ignore=shutil.ignore_patterns("build*", ".git", "__pycache__"))
        return
    for rel in r.stdout.split("\0"):
        if not rel:
            continue
        src = os.path.join(SOURCE, rel)
        if not os.path.lexists(src):
            continue   # deleted, not committed yet
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel), follow_symlinks=False)


def build():
    src = os.path.join(W["dir"], "src")
    copy_tree(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=%d" % (os.cpu_count() or 2))
    for k in ("PM_BUILD_DIR", "MALLOC_PERTURB_", "LD_LIBRARY_PATH", "PYTHONPATH"):
        env.pop(k, None)
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env,
                       capture_output=True, text=True, timeout=1200)
    with open(os.path.join(W["dir"], "build.log"), "w") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise AssertionError("dpkg-buildpackage failed (exit %d):\n%s"
                             % (r.returncode, (r.stdout + r.stderr)[-4000:]))
    W["changes"] = glob.glob(os.path.join(W["dir"], "*.changes"))[0]
    W["debs"] = sorted(glob.glob(os.path.join(W["dir"], "*.deb")))
    W["version"] = sh(["dpkg-deb", "-f", W["debs"][0], "Version"]).stdout.strip()


def repack_previous():
    """The same packages as version VERSION~prev1 (and their dependencies
    on each other with it)."""
    prev = os.path.join(W["dir"], "previous")
    os.makedirs(prev)
    ver, old = W["version"], W["version"] + PREVIOUS_SUFFIX
    for deb in W["debs"]:
        tree = os.path.join(W["dir"], "repack")
        sh(["dpkg-deb", "-R", deb, tree])
        control = os.path.join(tree, "DEBIAN", "control")
        text = open(control).read()
        text = re.sub(r"(?<![\w.~+-])%s(?![\w.~+])" % re.escape(ver), old, text)
        open(control, "w").write(text)
        sh(["dpkg-deb", "-b", tree, os.path.join(prev, os.path.basename(deb).replace(
            "_%s_" % ver, "_%s_" % old))])
        shutil.rmtree(tree)
    W["previous"] = sorted(glob.glob(os.path.join(prev, "*.deb")))


def make_root():
    root = os.path.join(W["dir"], "root")
    r = subprocess.run(["debootstrap", "--variant=minbase", SUITE, root, mirror()],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise AssertionError("debootstrap failed:\n%s" % (r.stdout + r.stderr)[-3000:])
    W["root"] = root
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    for what, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"]),
                       ("dev/pts", ["--bind", "/dev/pts"])):
        sh(["mount"] + args + [os.path.join(root, what)])
        W.setdefault("mounts", []).insert(0, os.path.join(root, what))
    in_root("apt-get update", timeout=600)


def setUpModule():
    if os.geteuid() != 0:
        if common.IN_CI:
            raise AssertionError("the package test needs root (chroot, mount)")
        raise unittest.SkipTest("needs root (chroot, mount)")
    for tool in ("dpkg-buildpackage", "dh", "lintian", "debootstrap"):
        common.require_tool(tool)
    W["dir"] = tempfile.mkdtemp(prefix="pm-package-")
    try:
        build()
        repack_previous()
        make_root()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for m in W.get("mounts", []):
        subprocess.run(["umount", "-l", m], capture_output=True)
    W["mounts"] = []
    if W.get("dir") and not os.environ.get("PM_PACKAGE_KEEP"):
        # nothing may be mounted below it any more
        r = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True)
        if not any(t.startswith(W["dir"] + "/") for t in r.stdout.split()):
            shutil.rmtree(W["dir"], ignore_errors=True)
    elif W.get("dir"):
        print("# kept %s" % W["dir"], flush=True)


def apt_install(debs, extra=""):
    """apt-get install of local .debs inside the root; their output."""
    stage = root_path("/tmp/debs")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    for d in debs:
        shutil.copy(d, stage)
    names = " ".join("/tmp/debs/" + os.path.basename(d) for d in debs)
    r = in_root("apt-get install -y --no-install-recommends %s %s 2>&1" % (extra, names))
    return r.stdout


def installed(pkg):
    r = in_root("dpkg-query -W -f='${Status} ${Version}' %s" % pkg, check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def purge_all():
    in_root("dpkg -P %s 2>&1 || true" % " ".join(PACKAGES))


def tree_digest(path):
    """{relative path: sha256} of every regular file below 'path'."""
    out = {}
    for d, _, files in os.walk(path):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def energy_wh():
    """{circuit name: Wh} from `powermeter energy -f json` in the root."""
    r = in_root("powermeter energy -f json")
    return {c["name"]: c["energy_wh"] for c in json.loads(r.stdout)["counters"]}


class Package(unittest.TestCase):
    def test_01_every_package_built(self):
        names = sorted(sh(["dpkg-deb", "-f", d, "Package"]).stdout.strip() for d in W["debs"])
        self.assertEqual(names, sorted(PACKAGES))

    def test_02_lintian_has_no_error_nor_warning(self):
        r = sh(["lintian", "--fail-on", "error,warning", "--no-tag-display-limit",
                W["changes"]], check=False, timeout=900)
        tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIPX]: ", l)]
        for t in tags:
            print("# %s" % t)
        self.assertEqual([t for t in tags if t[0] in "EW"], [])
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])

    def test_03_contents_and_conffiles(self):
        def deb(name):
            return [d for d in W["debs"] if os.path.basename(d).startswith(name + "_")][0]

        def files(name):
            return sh(["dpkg-deb", "-c", deb(name)]).stdout

        def conffiles(name):
            d = tempfile.mkdtemp(dir=W["dir"])
            sh(["dpkg-deb", "-e", deb(name), d])
            p = os.path.join(d, "conffiles")
            return open(p).read().split() if os.path.exists(p) else []

        daemon = files("powermeterd")
        for f in ("./usr/sbin/powermeterd", "./usr/bin/powermeter",
                  "./lib/systemd/system/powermeterd.service",
                  "./etc/powermeter/powermeter.json.sample",
                  "./usr/share/man/man8/powermeterd.8.gz",
                  "./usr/share/man/man5/powermeter.json.5.gz",
                  "./usr/share/powermeter/grafana/powermeter.json"):
            self.assertIn(f, daemon)
        # the daemon's default config is not shipped: it would hide a
        # seed user's powermeter_config.json
        self.assertNotIn("./etc/powermeter/powermeter.json\n", daemon)
        self.assertEqual(conffiles("powermeterd"), ["/etc/powermeter/powermeter.json.sample"])
        self.assertEqual(sorted(conffiles("powermeter-zabbix")), [
            "/etc/zabbix/zabbix_agent2.d/userparameter_powermeter.conf",
            "/etc/zabbix/zabbix_agentd.conf.d/userparameter_powermeter.conf"])
        self.assertRegex(files("libpowermeter1"), r"libpowermeter\.so\.1\.")
        dev = files("libpowermeter-dev")
        self.assertIn("./usr/include/powermeter/powermeter.h", dev)
        self.assertRegex(dev, r"pkgconfig/powermeter\.pc")
        self.assertRegex(files("python3-powermeter"),
                         r"\./usr/lib/python3/dist-packages/powermeter/__init__\.py")
        self.assertIn("./usr/bin/hdhk-sim", files("hdhk-sim"))

    def test_04_fresh_install(self):
        out = apt_install(W["debs"])
        for p in PACKAGES:
            self.assertTrue(installed(p).startswith("install ok installed"), p)
        # no systemd runs in the root: the start is skipped, not an error
        self.assertFalse(os.path.exists(root_path("/run/systemd/system")))
        self.assertTrue(os.path.islink(root_path(
            "/etc/systemd/system/multi-user.target.wants/powermeterd.service")),
            "the unit is not enabled")
        cfg = root_path("/etc/powermeter/powermeter.json")
        self.assertTrue(os.path.isfile(cfg), out)
        with open(cfg, "rb") as a, open(root_path("/etc/powermeter/powermeter.json.sample"),
                                         "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertIn("/etc/powermeter/powermeter.json", out)
        r = in_root("powermeter check 2>&1", check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        r = in_root("python3 -c 'import powermeter; print(powermeter.library_version())'")
        self.assertRegex(r.stdout.strip(), r"^\d+\.\d+")
        # the agents' keys call the installed CLI (hdhk-sim runs in test 07)
        for agent in ("zabbix_agent2.d", "zabbix_agentd.conf.d"):
            with open(root_path("/etc/zabbix/%s/userparameter_powermeter.conf" % agent)) as f:
                self.assertIn("UserParameter=powermeter.json,/usr/bin/powermeter json",
                              f.read())

    def test_05_remove_keeps_purge_removes(self):
        os.makedirs(root_path("/var/lib/powermeter/spool"), exist_ok=True)
        with open(root_path("/var/lib/powermeter/energy.state"), "w") as f:
            f.write("kept until purge\n")
        in_root("dpkg -r powermeter-zabbix python3-powermeter libpowermeter-dev hdhk-sim "
                "powermeterd")
        self.assertTrue(os.path.isfile(root_path("/etc/powermeter/powermeter.json")))
        self.assertTrue(os.path.isfile(root_path("/etc/powermeter/powermeter.json.sample")))
        self.assertTrue(os.path.isfile(root_path("/var/lib/powermeter/energy.state")))
        self.assertTrue(os.path.isfile(root_path(
            "/etc/zabbix/zabbix_agent2.d/userparameter_powermeter.conf")))
        self.assertFalse(os.path.exists(root_path("/usr/sbin/powermeterd")))
        purge_all()
        for p in ("/etc/powermeter", "/var/lib/powermeter", "/var/lib/private/powermeter",
                  "/etc/zabbix/zabbix_agent2.d/userparameter_powermeter.conf",
                  "/etc/zabbix/zabbix_agentd.conf.d/userparameter_powermeter.conf",
                  "/etc/systemd/system/multi-user.target.wants/powermeterd.service"):
            self.assertFalse(os.path.lexists(root_path(p)), "%s left after purge" % p)
        for p in PACKAGES:
            self.assertEqual(installed(p), "", p)

    def test_06_seed_install_used_unchanged(self):
        seed = os.path.join(SOURCE, "tests", "data", "seed")
        etc = root_path("/etc/powermeter")
        os.makedirs(etc)
        # the seed's files under the names it installed them with
        shutil.copy(os.path.join(seed, "powermeter.json"),
                    os.path.join(etc, "powermeter_config.json"))
        shutil.copy(os.path.join(seed, "influx-v2.conf"), os.path.join(etc, "influx.conf"))
        before = tree_digest(etc)
        out = apt_install(W["debs"])
        self.assertEqual(len(re.findall(r"powermeter_config\.json", out)), 1, out)
        after = tree_digest(etc)
        self.assertEqual({k: v for k, v in after.items() if k != "powermeter.json.sample"},
                         before)
        self.assertFalse(os.path.exists(os.path.join(etc, "powermeter.json")))
        r = in_root("powermeter check 2>&1", check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("powermeter_config.json", r.stdout)
        # said once: not again at a reinstall
        out = apt_install(W["debs"], extra="--reinstall")
        self.assertNotIn("powermeter_config.json", out)
        purge_all()
        # the seed's files are the user's, not the package's
        self.assertEqual(tree_digest(etc), before)
        shutil.rmtree(etc)

    def test_07_upgrade_keeps_spool_energy_ledger(self):
        apt_install(W["previous"])
        self.assertTrue(installed("powermeterd").endswith(PREVIOUS_SUFFIX))
        sim_cfg = {"buses": [{"path": "/run/ttyPM0", "baud": 115200,
                              "modules": [{"address": 1}, {"address": 2}]}]}
        with open(root_path("/tmp/sim.json"), "w") as f:
            json.dump(sim_cfg, f)
        cfg = {"interval": 0.5,
               # a database nobody answers: every point goes to the spool
               "influx": {"url": "http://127.0.0.1:9", "database": "powermeter",
                          "flush_interval": 0.5},
               "energy": {"persist_interval": 1},
               "ledger": {"interval": 1},
               "devices": [{"id": a, "port": "/run/ttyPM0", "address": a, "baudrate": 115200,
                            "timeout": 0.3,
                            "inputs": [{"input": l, "ratio": 0.01, "name": "m%d%s" % (a, l)}
                                       for l in "abc"]} for a in (1, 2)]}
        with open(root_path("/etc/powermeter/powermeter.json"), "w") as f:
            json.dump(cfg, f)
        sim = subprocess.Popen(["chroot", W["root"], "/usr/bin/hdhk-sim", "-c", "/tmp/sim.json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (sim.kill(), sim.wait()))
        self.assertEqual(sim.stdout.readline().strip(), b"ready")

        def run_daemon(seconds):
            d = subprocess.Popen(["chroot", W["root"], "/usr/sbin/powermeterd"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 env={"PATH": "/usr/sbin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
            time.sleep(seconds)
            d.send_signal(signal.SIGTERM)
            _, err = d.communicate(timeout=60)
            self.assertEqual(d.returncode, 0, err.decode(errors="replace")[-2000:])
            return err.decode(errors="replace")

        run_daemon(5)
        state = root_path("/var/lib/powermeter")
        before = tree_digest(state)
        self.assertTrue(any(k.startswith("spool/") for k in before), before)
        self.assertIn("energy.state", before)
        self.assertIn("ledger.sqlite", before)
        wh = energy_wh()
        self.assertTrue(wh and all(v > 0 for v in wh.values()), wh)

        out = apt_install(W["debs"])
        self.assertEqual(installed("powermeterd"), "install ok installed %s" % W["version"])
        self.assertNotIn("powermeter_config.json", out)
        self.assertEqual(tree_digest(state), before, "the upgrade changed the state")
        self.assertEqual(energy_wh(), wh)

        run_daemon(3)
        after = energy_wh()
        for name, v in wh.items():
            self.assertGreater(after[name], v, name)
        # the spool only grew: the first run's points are still there
        def spool_bytes(digest):
            return sum(os.path.getsize(os.path.join(state, k)) for k in digest
                       if k.startswith("spool/") and os.path.exists(os.path.join(state, k)))
        self.assertGreater(spool_bytes(tree_digest(state)), spool_bytes(before))

if __name__ == "__main__":
    common.main()
