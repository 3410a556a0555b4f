"""Files that are not regular files, wherever the programs read one: a FIFO
(which would block the reader for ever, a daemon with it, deaf to SIGTERM),
/dev/zero (which never ends), a socket or a directory, given as the
config, the seed's influx.conf beside it, a token, password or CA file, a
tariff, the snapshot a reader takes its values from, and the daemon's own
state files and ledger. Each is refused at once with "not a regular file"
naming the file (and the key that named it), exit 78 where it came from
the configuration; the daemon's own files are refused and it runs on."""
import json
import os
import signal
import socket
import subprocess
import time
import unittest

import common
import daemonlib
from sim import Sim

# Long enough for a loaded machine, far shorter than for ever.
PROMPT = 20


def run(*args, env=None):
    try:
        return common.run(list(args), timeout=PROMPT, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s still running after %d s: blocked on a "
                             "file that is not a regular file" % (args, PROMPT))


def check(path):
    return run(common.POWERMETER, "check", "-c", path)


def fifo(d, name):
    path = os.path.join(d, name)
    os.mkfifo(path)
    return path


def write_config(d, doc, name="powermeter.json"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


DEVICES = [{"id": 1, "port": "/dev/ttyUSB0", "inputs": [{"input": "a"}]}]


class Config(unittest.TestCase):
    def assert_refused(self, r, message):
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn(message, r.stderr)
        self.assertEqual(r.stdout, "")

    def test_config_fifo(self):
        d = common.tmpdir(self)
        path = fifo(d, "powermeter.json")
        self.assert_refused(check(path), "cannot open %s: not a regular file" % path)

    def test_config_device_socket_directory(self):
        self.assert_refused(check("/dev/zero"), "/dev/zero: not a regular file")
        self.assert_refused(check("/dev/null"), "/dev/null: not a regular file")
        d = common.tmpdir(self)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(d, "powermeter.json"))
        sock.listen(1)
        self.assert_refused(check(os.path.join(d, "powermeter.json")),
                            "powermeter.json: not a regular file")
        self.assert_refused(check(d), "%s: Is a directory" % d)

    def test_config_symlink_to_fifo(self):
        d = common.tmpdir(self)
        target = fifo(d, "elsewhere")
        link = os.path.join(d, "powermeter.json")
        os.symlink(target, link)
        self.assert_refused(check(link), "cannot open %s: not a regular file" % link)

    def test_seed_influx_conf_fifo(self):
        # the seed's form: a list of devices, influx.conf beside it
        d = common.tmpdir(self)
        path = write_config(d, DEVICES)
        conf = fifo(d, "influx.conf")
        self.assert_refused(check(path), "%s: cannot read: not a regular file" % conf)

    def test_secret_and_ca_files(self):
        d = common.tmpdir(self)
        token, password, ca = fifo(d, "token"), fifo(d, "password"), fifo(d, "ca.pem")
        cases = [
            ({"influx": {"url": "https://db.example.com", "org": "o", "bucket": "b",
                         "token_file": "token"}},
             "influx.token_file: cannot read %s: not a regular file" % token),
            ({"influx": {"url": "http://db.example.com", "database": "power",
                         "username": "pm", "password_file": "password"}},
             "influx.password_file: cannot read %s: not a regular file" % password),
            ({"influx": {"url": "https://db.example.com", "org": "o", "bucket": "b",
                         "token": "t", "ca_file": "ca.pem"}},
             "influx.ca_file: cannot read %s: not a regular file" % ca),
            ({"mqtt": {"url": "mqtt://broker.example.com", "username": "pm",
                       "password_file": "password"}},
             "mqtt.password_file: cannot read %s: not a regular file" % password),
            ({"mqtt": {"url": "mqtts://broker.example.com", "ca_file": "ca.pem"}},
             "mqtt.ca_file: cannot read %s: not a regular file" % ca),
            # a device node is refused as well, never read
            ({"influx": {"url": "https://db.example.com", "org": "o", "bucket": "b",
                         "token_file": "/dev/zero"}},
             "influx.token_file: cannot read /dev/zero: not a regular file"),
        ]
        for extra, message in cases:
            path = write_config(d, dict({"devices": DEVICES}, **extra))
            r = check(path)
            self.assert_refused(r, "%s: %s" % (path, message))

    def test_daemon_config_fifo(self):
        # powermeterd blocks every signal before it reads the config: had
        # it waited on the FIFO, SIGTERM would never have reached it
        d = common.tmpdir(self)
        path = fifo(d, "powermeter.json")
        daemon = daemonlib.Daemon(self, path).start(wait_ready=False)
        try:
            status = daemon.wait_exit(PROMPT)
        except subprocess.TimeoutExpired:
            raise AssertionError("powermeterd still running after %d s with a "
                                 "FIFO as its config" % PROMPT)
        self.assertEqual(status, 78, daemon.stderr())
        self.assertIn("%s: not a regular file" % path, daemon.stderr())


class Reader(unittest.TestCase):
    def test_tariff_and_ledger_fifo(self):
        d = common.tmpdir(self)
        tariff, ledger = fifo(d, "tariff.json"), fifo(d, "ledger.sqlite")
        r = run(common.POWERMETER, "report", "--ledger", ledger, "--month", "2025-03")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s: not a regular file" % ledger, r.stderr)
        # a ledger that is a file, the tariff a FIFO
        real = os.path.join(d, "real.sqlite")
        open(real, "w").close()
        r = run(common.POWERMETER, "report", "--ledger", real, "--tariff", tariff,
                "--month", "2025-03")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("%s: cannot read: not a regular file" % tariff, r.stderr)

    def test_snapshot_fifo(self):
        # The Zabbix agent runs these every minute: a FIFO at the snapshot's
        # path must not pile up blocked agents.
        d = common.tmpdir(self)
        snap = fifo(d, "values.json")
        path = write_config(d, {"devices": [{"id": 1, "port": os.path.join(d, "ttyNone"),
                                             "inputs": [{"input": "a"}]}],
                                "snapshot": snap, "state_directory": d})
        r = run(common.POWERMETER, "status", "-c", path)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("cannot read powermeterd's snapshot %s: not a regular file" % snap,
                      r.stdout)
        r = run(common.POWERMETER, "zabbix", "circuits", "-c", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no circuit values: not a regular file", r.stderr)
        r = run(common.POWERMETER, "zabbix", "status", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["snapshot"]["fresh"], 0)
        # without a snapshot it reads the bus itself: here, no converter
        r = run(common.POWERMETER, "json", "-c", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("does not exist", r.stderr)


class DaemonFiles(unittest.TestCase):
    """The daemon's own files in its state directory: one that is not a
    regular file is not read (nor written through); the daemon says so,
    runs, and stops on SIGTERM."""

    def start(self, prepare):
        sim = Sim.single(self, n_modules=1)
        cfg = daemonlib.daemon_config(self, sim)
        with open(cfg) as f:
            state = json.load(f)["state_directory"]
        os.makedirs(state)
        prepare(state)
        d = daemonlib.Daemon(self, cfg)
        started = time.monotonic()
        try:
            d.start()
        except AssertionError as e:
            raise AssertionError("%s\n(%.0f s after start)" % (e, time.monotonic() - started))
        return d, state

    def test_energy_state_fifo(self):
        d, state = self.start(lambda s: os.mkfifo(os.path.join(s, "energy.state")))
        d.wait_stderr(r"energy counters: cannot read %s/energy.state: not a regular file"
                      % state)
        self.assertEqual(d.stop(timeout=PROMPT), 0, d.stderr())

    def test_alarm_state_fifo(self):
        d, state = self.start(lambda s: os.mkfifo(os.path.join(s, "alarms.state")))
        d.wait_stderr(r"alarms: cannot read %s/alarms.state: not a regular file" % state)
        self.assertEqual(d.stop(timeout=PROMPT), 0, d.stderr())

    def test_ledger_fifo(self):
        d, state = self.start(lambda s: os.mkfifo(os.path.join(s, "ledger.sqlite")))
        d.wait_stderr(r"ledger.sqlite: not a regular file", timeout=PROMPT)
        self.assertEqual(d.stop(timeout=PROMPT), 0, d.stderr())


if __name__ == "__main__":
    common.main()
