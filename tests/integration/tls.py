#!/usr/bin/env python3
"""powermeterd writing to an InfluxDB 1.6 that serves HTTPS only, with a
server certificate from a throwaway private CA made here by the openssl
command: the default (certificates checked) refuses it, keeps every sample
and says why once, without the password; "ca_file" naming that CA
delivers every sample once (the spooled ones too); the host name is still
checked with it; "verify_ssl": false delivers with a warning; a ca_file
that cannot be read or holds no PEM certificate is a config error (exit
78) naming the file and the key. Everything on 127.0.0.1."""
import os
import re
import shutil
import unittest

import common
import daemonlib
from servers import Influx1, TLS
from sim import Sim

INTERVAL = 0.5
CERT_DAYS = "2"


def openssl(testcase, cwd, *args):
    r = common.run([common.require_tool("openssl")] + list(args), cwd=cwd)
    testcase.assertEqual(r.returncode, 0, "openssl %s:\n%s" % (" ".join(args), r.stderr))


def make_ca(testcase, d, name):
    """A self-signed CA: (certificate, key) paths under d."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    openssl(testcase, d, "req", "-x509", "-new", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", CERT_DAYS,
            "-subj", "/CN=powermeter test CA " + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_server_cert(testcase, d, name, ca, alt_names, serial):
    """A server certificate for alt_names (subjectAltName entries such as
    "IP:127.0.0.1"), signed by ca = (certificate, key): (cert, key)."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    csr, ext = os.path.join(d, name + ".csr"), os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = %s\n" % ", ".join(alt_names))
    openssl(testcase, d, "req", "-new", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    openssl(testcase, d, "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
            "-set_serial", str(serial), "-days", CERT_DAYS, "-extfile", ext,
            "-out", cert)
    return cert, key


class Pki:
    """The test's CA, a server certificate it signed for 127.0.0.1 and
    localhost, one for another host name only, and an unrelated CA."""

    def __init__(self, testcase):
        self.dir = common.tmpdir(testcase, "pm-pki-")
        self.ca, ca_key = make_ca(testcase, self.dir, "ca")
        self.server = make_server_cert(testcase, self.dir, "server", (self.ca, ca_key),
                                       ["IP:127.0.0.1", "DNS:localhost"], 2)
        self.elsewhere = make_server_cert(testcase, self.dir, "elsewhere", (self.ca, ca_key),
                                          ["DNS:influx.example.invalid"], 3)
        self.other_ca, _ = make_ca(testcase, self.dir, "other-ca")

    def tls(self, server=None):
        cert, key = server or self.server
        return TLS(cert, key, self.ca)


def writer_stopped(testcase, stderr):
    """(written, in spool) of the daemon's last "InfluxDB writer stopped"."""
    found = re.findall(r"InfluxDB writer stopped: (\d+) points written, (\d+) in the spool",
                       stderr)
    testcase.assertTrue(found, stderr)
    return int(found[-1][0]), int(found[-1][1])


def cert_lines(stderr):
    return [l for l in stderr.splitlines() if "certificate" in l.lower()]


# Under systemd (JOURNAL_STREAM set) each log line starts with <priority>.
JOURNAL = {"JOURNAL_STREAM": "8:1234"}


class Tls(unittest.TestCase):
    def setUp(self):
        self.pki = Pki(self)

    def influx(self, server=None):
        """HTTPS-only InfluxDB with a user and password (the secret that
        must stay out of the logs)."""
        return Influx1(self, auth=True, tls=self.pki.tls(server))

    def config(self, db, sim, **influx):
        settings = {"url": db.url, "database": db.database, "username": db.username,
                    "password": db.password, "flush_interval": 0.5}
        settings.update(influx)
        return daemonlib.daemon_config(self, sim, interval=INTERVAL, influx=settings)

    def deliver_all(self, db, sim, d):
        """Lets the daemon run for a few ticks, stops it and checks that
        every sample the simulator gave is stored once."""
        n = len(daemonlib.ok_reads(sim))
        common.wait_for(lambda: len(daemonlib.ok_reads(sim)) >= n + 6, 20,
                        what="six more reads")
        common.wait_for(lambda: db.count() >= 4 * (n + 6), 20, what="points in InfluxDB")
        self.assertEqual(d.stop(), 0, d.stderr())
        reads = daemonlib.ok_reads(sim)
        daemonlib.match_points(self, daemonlib.expected_points(sim, reads), db.points())
        written, spooled = writer_stopped(self, d.stderr())
        self.assertEqual(spooled, 0, d.stderr())
        return written

    def test_default_refuses_private_ca_keeps_data(self):
        db = self.influx()
        sim = Sim(self, [{"modules": [1]}]).start()
        cfg = self.config(db, sim)
        d = daemonlib.Daemon(self, cfg, env=JOURNAL).start()
        d.wait_stderr(r"SSL certificate problem")
        # Three attempts (influxd logs each refused handshake; the
        # backoff is 0.5..1 s, then 1..2 s), still one log line.
        common.wait_for(lambda: db.log_tail(1000).count("TLS handshake error") >= 3, 20,
                        what="three refused TLS handshakes")
        self.assertEqual(db.count(), 0)
        reads = daemonlib.ok_reads(sim)
        self.assertEqual(d.stop(), 0, d.stderr())
        err = d.stderr()
        lines = cert_lines(err)
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("<4>"), lines[0])
        self.assertIn(db.url, lines[0])
        self.assertIn("unable to get local issuer certificate", lines[0])
        self.assertIn('give that CA\'s PEM file as "ca_file"', lines[0])
        self.assertIn("keeping the data", lines[0])
        self.assertNotIn(db.password, err)
        written, spooled = writer_stopped(self, err)
        self.assertEqual(written, 0, err)
        self.assertGreaterEqual(spooled, 4 * len(reads), err)

        # Trusting the CA (an absolute path) delivers the spool and what
        # follows: every sample once, none lost while refused.
        daemonlib.rewrite_config(cfg, lambda c: c["influx"].update(ca_file=self.pki.ca))
        d2 = daemonlib.Daemon(self, cfg).start()
        written = self.deliver_all(db, sim, d2)
        self.assertEqual(cert_lines(d2.stderr()), [])
        self.assertGreaterEqual(written, spooled)

    def test_ca_file_relative_delivers_every_point_once(self):
        db = self.influx()
        sim = Sim(self, [{"modules": [1]}]).start()
        cfg = self.config(db, sim, ca_file="private-ca.pem")
        shutil.copy(self.pki.ca, os.path.join(os.path.dirname(cfg), "private-ca.pem"))
        d = daemonlib.Daemon(self, cfg).start()
        self.deliver_all(db, sim, d)
        err = d.stderr()
        self.assertEqual(cert_lines(err), [], err)
        self.assertNotIn("verify_ssl", err)
        self.assertNotIn(db.password, err)

    def test_ca_file_still_checks_host_name(self):
        # Signed by the trusted CA, but for another name than 127.0.0.1.
        db = self.influx(self.pki.elsewhere)
        sim = Sim(self, [{"modules": [1]}]).start()
        cfg = self.config(db, sim, ca_file=self.pki.ca)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"subject name .*does not match|no alternative certificate subject name")
        self.assertEqual(db.count(), 0)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertEqual(writer_stopped(self, d.stderr())[0], 0)

    def test_ca_file_of_another_ca_is_refused(self):
        # A ca_file does not switch checking off: another CA's file does
        # not vouch for this server.
        db = self.influx()
        sim = Sim(self, [{"modules": [1]}]).start()
        cfg = self.config(db, sim, ca_file=self.pki.other_ca)
        d = daemonlib.Daemon(self, cfg).start()
        d.wait_stderr(r"SSL certificate problem")
        self.assertEqual(db.count(), 0)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertEqual(writer_stopped(self, d.stderr())[0], 0)

    def test_verify_off_delivers_and_warns(self):
        db = self.influx()
        sim = Sim(self, [{"modules": [1]}]).start()
        cfg = self.config(db, sim, verify_ssl=False)
        d = daemonlib.Daemon(self, cfg, env=JOURNAL).start()
        self.deliver_all(db, sim, d)
        err = d.stderr()
        warnings = [l for l in err.splitlines() if "verify_ssl false" in l]
        self.assertEqual(len(warnings), 1, err)
        self.assertTrue(warnings[0].startswith("<4>"), warnings[0])
        self.assertIn(db.url, warnings[0])
        self.assertNotIn("SSL certificate problem", err)
        self.assertNotIn(db.password, err)

    def test_unusable_ca_file_is_a_config_error(self):
        d = common.tmpdir(self, "pm-tls-cfg-")
        path = os.path.join(d, "powermeter.json")
        not_pem = os.path.join(d, "ca.der")
        openssl(self, d, "x509", "-in", self.pki.ca, "-outform", "der", "-out", not_pem)
        cases = [
            ("missing.pem", "cannot read %s: No such file or directory"
             % os.path.join(d, "missing.pem")),
            (d, "cannot read %s: Is a directory" % d),
            (not_pem, "%s holds no PEM certificate" % not_pem),
            (self.pki.server[1], "%s holds no PEM certificate" % self.pki.server[1]),
        ]
        if os.geteuid() != 0:       # root reads any file
            locked = os.path.join(d, "locked.pem")
            shutil.copy(self.pki.ca, locked)
            os.chmod(locked, 0)
            cases.append((locked, "cannot read %s: Permission denied" % locked))
        for ca_file, message in cases:
            with self.subTest(ca_file=ca_file):
                with open(path, "w") as f:
                    f.write('{"devices": [{"id": 1, "port": "/dev/ttyUSB0", '
                            '"inputs": [{"input": "a"}]}],\n'
                            ' "influx": {"url": "https://127.0.0.1:8086", '
                            '"database": "powermeter", "ca_file": "%s"}}\n' % ca_file)
                want = "%s: influx.ca_file: %s" % (path, message)
                r = common.run([common.POWERMETERD, "-c", path])
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn(want, r.stderr)
                r = common.run([common.POWERMETER, "check", "-c", path])
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn(want, r.stderr)


if __name__ == "__main__":
    common.main()
