"""powermeter check: the repo's sample and the seed's files pass with a
one-line summary; malformed configs fail with exit 78 and their messages on
stderr; usage errors exit 2; secrets never printed."""
import json
import os
import shutil
import unittest

import common

SAMPLE = os.path.join(common.SOURCE, "config", "powermeter.json")
SEED_DIR = os.path.join(common.SOURCE, "tests", "data", "seed")
SEED_JSON = os.path.join(SEED_DIR, "powermeter.json")
SEED_INFLUX = os.path.join(SEED_DIR, "influx-v2.conf")
DATA = os.path.join(common.SOURCE, "tests", "data", "config")


def check(*args, env=None):
    return common.run([common.POWERMETER, "check"] + list(args), env=env)


class Check(unittest.TestCase):
    def assert_ok(self, r, path):
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertTrue(r.stdout.startswith(path + ": OK \u2014 "), r.stdout)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)

    def test_sample(self):
        r = check("-c", SAMPLE)
        self.assert_ok(r, SAMPLE)
        self.assertIn("2 devices on 2 ports, 20 inputs, interval 1 s, "
                      "InfluxDB v1 http://127.0.0.1:8086 (database powermeter), "
                      "spool /var/lib/powermeter/spool (100 MB)", r.stdout)

    def test_readme_examples(self):
        # every JSON config the README shows (object form, caravan site,
        # datacenter) is one powermeter check accepts
        import re
        with open(os.path.join(common.SOURCE, "README.md")) as f:
            blocks = re.findall(r"```json\n(.*?)```", f.read(), re.S)
        self.assertGreaterEqual(len(blocks), 3)
        d = common.tmpdir(self)
        for i, block in enumerate(blocks):
            path = os.path.join(d, "readme-%d.json" % i)
            with open(path, "w") as f:
                f.write(block)
            self.assert_ok(check("-c", path), path)

    def test_one_converter_under_two_names(self):
        # a udev symlink and the tty it names, or the same path with "//":
        # one port, and the duplicate address is found across the names
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty = os.ttyname(slave)
        d = common.tmpdir(self)
        link = os.path.join(d, "ttyUSBPWR1")
        os.symlink(tty, link)
        path = os.path.join(d, "powermeter.json")

        def write(ports_addresses):
            with open(path, "w") as f:
                json.dump({"devices": [{"id": i + 1, "port": port, "address": a,
                                        "inputs": [{"input": "a"}]}
                                       for i, (port, a) in enumerate(ports_addresses)]}, f)
        write([(tty, 1), (link, 2), (tty.replace("/pts/", "/pts//"), 3)])
        r = check("-c", path)
        self.assert_ok(r, path)
        self.assertIn("3 devices on 1 port,", r.stdout)
        write([(tty, 1), (link, 1)])
        r = check("-c", path)
        self.assertEqual(r.returncode, 78, r.stdout)
        self.assertIn("%s: devices[1].address: 1 is already used by device 1 on %s"
                      % (path, link), r.stderr)
        # a converter not plugged in: the path as it reads, "//" folded
        write([("/nonexistent/ttyUSB9", 1), ("/nonexistent//ttyUSB9/", 1)])
        r = check("-c", path)
        self.assertEqual(r.returncode, 78, r.stdout)
        self.assertIn("devices[1].address: 1 is already used by device 1", r.stderr)

    def test_seed_file_positional(self):
        # The seed's scripts took the config as their first argument.
        r = check(SEED_JSON)
        self.assert_ok(r, SEED_JSON)
        self.assertIn("2 devices on 2 ports, 32 inputs, interval 1 s, no InfluxDB", r.stdout)

    def test_option_forms(self):
        for args in (["-c", SEED_JSON], ["--config", SEED_JSON], ["--config=" + SEED_JSON]):
            self.assert_ok(check(*args), SEED_JSON)

    def test_seed_install_with_influx_conf(self):
        d = common.tmpdir(self)
        path = os.path.join(d, "powermeter.json")
        shutil.copy(SEED_JSON, path)
        shutil.copy(SEED_INFLUX, os.path.join(d, "influx.conf"))
        r = check(path)
        self.assert_ok(r, path)
        self.assertIn("InfluxDB v2 https://influx.example.com (bucket powermeter, with %s/influx.conf)"
                      % d, r.stdout)
        self.assertNotIn("your_influx_api_token_here", r.stdout + r.stderr)

    def test_state_directory_from_systemd(self):
        env = dict(os.environ, STATE_DIRECTORY="/var/lib/private/powermeter:/other")
        r = check(SAMPLE, env=env)
        self.assert_ok(r, SAMPLE)
        self.assertIn("spool /var/lib/private/powermeter/spool (100 MB)", r.stdout)

    def test_credential_never_printed(self):
        d = common.tmpdir(self)
        creds = os.path.join(d, "creds")
        os.mkdir(creds)
        with open(os.path.join(creds, "influx-token"), "w") as f:
            f.write("TOKEN-FROM-CREDSTORE\n")
        path = os.path.join(d, "powermeter.json")
        with open(path, "w") as f:
            f.write('{"devices": [{"id": 1, "port": "/dev/ttyUSB0", "inputs": [{"input": "a"}]}],'
                    ' "influx": {"url": "https://db.example.com", "org": "o", "bucket": "power"}}')
        env = dict(os.environ, CREDENTIALS_DIRECTORY=creds)
        r = check(path, env=env)
        self.assert_ok(r, path)
        self.assertIn("InfluxDB v2 https://db.example.com (bucket power)", r.stdout)
        self.assertNotIn("TOKEN-FROM", r.stdout + r.stderr)
        # Without the credential the summary says so, still valid.
        r = check(path)
        self.assert_ok(r, path)
        self.assertIn("(bucket power, no token)", r.stdout)

    def test_bad_configs(self):
        cases = {
            "bad-baudrate.json": [
                "devices[0].baudrate: 14400 is not a baud rate the module supports "
                "(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)",
                'devices[1].baudrate: expected a baud rate such as 9600, got "fast"',
            ],
            "bad-ratio-string.json": ['[1].inputs[3].ratio: expected a number, got "x"'],
            "bad-address-shared.json": [
                "devices[2].address: 1 is already used by device 1 on /dev/ttyUSB0"],
            "bad-unknown-key.json": [
                'devices[0]: unknown key "baud" (did you mean "baudrate"?)'],
        }
        for name, messages in cases.items():
            path = os.path.join(DATA, name)
            r = check(path)
            self.assertEqual(r.returncode, 78, name)
            self.assertEqual(r.stdout, "", name)
            lines = r.stderr.splitlines()
            for m in messages:
                self.assertIn(path + ": " + m, lines, name)
            with open(os.path.join(DATA, name[:-5] + ".expected")) as f:
                self.assertEqual(r.stderr, f.read().replace("DIR", DATA), name)

    def test_syntax_error_has_line_and_column(self):
        path = os.path.join(DATA, "bad-syntax-trailing-comma.json")
        r = check("-c", path)
        self.assertEqual(r.returncode, 78)
        self.assertTrue(r.stderr.startswith(path + ":7:9: "), r.stderr)

    def test_missing_file(self):
        r = check("-c", "/nonexistent/powermeter.json")
        self.assertEqual(r.returncode, 78)
        self.assertIn("cannot open /nonexistent/powermeter.json: No such file or directory",
                      r.stderr)

    def test_usage_errors(self):
        for args in (["--bogus"], ["-c"], [SEED_JSON, SEED_JSON], ["-c", SEED_JSON, SEED_JSON]):
            r = check(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: powermeter check", r.stderr)
        r = check("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: powermeter check", r.stdout)


if __name__ == "__main__":
    common.main()
