"""Where powermeterd writes: in a directory another user may write, they
could put a FIFO at the snapshot's temporary name (a poller waiting for
ever, SIGTERM ignored), a symlink (our text written through it), or a
snapshot of their own (false currents for Zabbix). The temporaries are
created exclusively, a name already taken is skipped, and a directory that
others may write is refused at start-up unless it is sticky (as /tmp is)
and what is already there is ours: exit 78 with what to do, and a reload
into such a directory keeps the running configuration."""
import json
import os
import stat
import subprocess
import unittest

import common
import daemonlib
from sim import Sim

NOBODY = 65534


def config_doc(path):
    with open(path) as f:
        return json.load(f)


class Temporaries(unittest.TestCase):
    def test_traps_at_the_snapshot_temporaries(self):
        sim = Sim.single(self, n_modules=1)
        cfg = daemonlib.daemon_config(self, sim)
        snap = config_doc(cfg)["snapshot"]
        run = os.path.dirname(snap)
        os.makedirs(run)
        outside = common.tmpdir(self, "pm-victim-")
        victim = os.path.join(outside, "victim")
        with open(victim, "w") as f:
            f.write("victim\n")
        # The names a writer might take first, the daemon's pid being the
        # shell's that execs it: this version's (.values.json.PID.N.tmp)
        # and the earlier one's (values.json.PID.0.tmp). FIFOs, a symlink
        # to a victim, a snapshot of someone else's.
        script = ('mkfifo "$S.$$.0.tmp"; mkfifo "$R/.values.json.$$.0.tmp"; '
                  'ln -s "$V" "$R/.values.json.$$.1.tmp"; '
                  'echo \'{"forged": true}\' > "$R/.values.json.$$.2.tmp"; '
                  'mkfifo "$R/.values.json.$$.3.tmp"; exec "$@"')

        class Trapped(daemonlib.Daemon):
            def argv(self):
                return ["/bin/sh", "-c", script, "sh"] + super().argv()
        d = Trapped(self, cfg, env={"S": snap, "R": run, "V": victim}).start()

        def written():
            try:
                with open(snap) as f:
                    s = json.load(f)
            except (OSError, ValueError):
                return None
            return s["devices"][0]["state"]["reads"] >= 2
        common.wait_for(written, 15, what="the snapshot written beside the traps")
        self.assertTrue(stat.S_ISREG(os.lstat(snap).st_mode))
        self.assertEqual(os.lstat(snap).st_uid, os.geteuid())
        with open(victim) as f:
            self.assertEqual(f.read(), "victim\n")
        r = common.run([common.POWERMETER, "json", "-c", cfg])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("forged", r.stdout)
        # SIGTERM still stops it, at once
        pid = d.pid
        self.assertEqual(d.stop(timeout=15), 0, d.stderr())
        traps = {"values.json.%d.0.tmp" % pid: stat.S_ISFIFO,
                 ".values.json.%d.0.tmp" % pid: stat.S_ISFIFO,
                 ".values.json.%d.1.tmp" % pid: stat.S_ISLNK,
                 ".values.json.%d.2.tmp" % pid: stat.S_ISREG,
                 ".values.json.%d.3.tmp" % pid: stat.S_ISFIFO}
        for name, kind in traps.items():
            self.assertTrue(kind(os.lstat(os.path.join(run, name)).st_mode), name)
        # ours are gone with the snapshot, the traps stay untouched
        self.assertEqual(sorted(os.listdir(run)), sorted(traps))


class Directories(unittest.TestCase):
    def setUp(self):
        self.sim = Sim.single(self, n_modules=1)

    def config(self, **dirs):
        """A config whose snapshot, state or textfile lives in the given
        directories (made here, with their modes)."""
        cfg = daemonlib.daemon_config(self, self.sim)
        doc = config_doc(cfg)
        base = os.path.dirname(cfg)
        made = {}
        for key, mode in dirs.items():
            d = os.path.join(base, key)
            os.makedirs(d)
            os.chmod(d, mode)
            made[key] = d
        if "run" in made:
            doc["snapshot"] = os.path.join(made["run"], "values.json")
        if "state" in made:
            doc["state_directory"] = made["state"]
        if "textfiles" in made:
            doc["prometheus"] = {"textfile": os.path.join(made["textfiles"], "pm.prom")}
        with open(cfg, "w") as f:
            json.dump(doc, f)
        return cfg, made

    def refused(self, cfg, *messages):
        d = daemonlib.Daemon(self, cfg).start(wait_ready=False)
        try:
            status = d.wait_exit(20)
        except subprocess.TimeoutExpired:
            raise AssertionError("powermeterd started:\n" + d.stderr())
        self.assertEqual(status, 78, d.stderr())
        for m in messages:
            self.assertIn(m, d.stderr())
        self.assertIn("not starting: a directory to write in is not safe", d.stderr())
        return d

    def test_world_writable_refused(self):
        cfg, made = self.config(run=0o777, state=0o777, textfiles=0o777)
        self.refused(
            cfg,
            "snapshot: %s may be written by everybody and is not sticky: another "
            "user could put other files in the place of ours; chmod go-w it, or "
            "chmod +t it as /tmp is" % made["run"],
            "prometheus.textfile: %s may be written by everybody" % made["textfiles"],
            "state_directory: %s may be written by everybody" % made["state"],
            "ledger.path: %s may be written by everybody" % made["state"])
        # nothing was written there
        for d in made.values():
            self.assertEqual(os.listdir(d), [])

    def test_group_writable_refused(self):
        cfg, made = self.config(run=0o775)
        self.refused(cfg, "snapshot: %s may be written by its group and is not sticky"
                     % made["run"])

    def test_sticky_accepted(self):
        cfg, made = self.config(run=0o1777, textfiles=0o1777)
        d = daemonlib.Daemon(self, cfg).start()
        snap = os.path.join(made["run"], "values.json")
        common.wait_for(lambda: os.path.exists(snap), 10, what="the snapshot in /tmp's mode")
        self.assertEqual(os.lstat(snap).st_uid, os.geteuid())
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_sticky_with_another_users_file_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a file of another user")
        cfg, made = self.config(run=0o1777)
        forged = os.path.join(made["run"], "values.json")
        with open(forged, "w") as f:
            f.write('{"forged": true}\n')
        os.chown(forged, NOBODY, NOBODY)
        self.refused(cfg, "snapshot: %s is there already and is a file of another user "
                     "(uid %d) in a directory others may write: another user may have "
                     "put it there; remove it" % (forged, NOBODY))

    def test_textfile_directory_as_documented(self):
        # powermeter.json(5): node_exporter's directory, its group may
        # write, sticky
        if os.geteuid() != 0:
            self.skipTest("needs root to make a directory of another user")
        cfg, made = self.config(textfiles=0o1775)
        os.chown(made["textfiles"], NOBODY, NOBODY)
        d = daemonlib.Daemon(self, cfg).start()
        prom = os.path.join(made["textfiles"], "pm.prom")
        common.wait_for(lambda: os.path.exists(prom), 10, what="the textfile")
        self.assertEqual(d.stop(), 0, d.stderr())
        # without the sticky bit: refused, with what to do
        os.chmod(made["textfiles"], 0o775)
        self.refused(cfg, "prometheus.textfile: %s may be written by its group and is "
                     "not sticky" % made["textfiles"], "chmod +t")

    def test_reload_into_unsafe_directory_keeps_running(self):
        cfg, made = self.config()
        d = daemonlib.Daemon(self, cfg).start()
        unsafe = os.path.join(os.path.dirname(cfg), "unsafe")
        os.makedirs(unsafe)
        os.chmod(unsafe, 0o777)
        daemonlib.rewrite_config(cfg, lambda c: c.update(
            snapshot=os.path.join(unsafe, "values.json")))
        d.hup()
        d.wait_stderr("names directories that are not safe to write in; keeping "
                      "the running configuration")
        self.assertIn("snapshot: %s may be written by everybody" % unsafe, d.stderr())
        self.assertTrue(d.running())
        self.assertEqual(os.listdir(unsafe), [])
        self.assertEqual(d.stop(), 0, d.stderr())


if __name__ == "__main__":
    common.main()
