#!/usr/bin/env python3
"""systemd/powermeterd.service as built: `systemd-analyze verify` is clean
(its ExecStart pointed at the built binary, its Documentation= pages found
in man/), `systemd-analyze security` rates its exposure at most 2.0, and
meson installs it where pkg-config systemd says."""
import json
import os
import re
import subprocess
import unittest

import common

UNIT = os.path.join(common.BUILD, "systemd", "powermeterd.service")


def read_unit():
    with open(UNIT) as f:
        return f.read()


class Unit(unittest.TestCase):
    def test_verify_clean(self):
        analyze = common.require_tool("systemd-analyze")
        common.require_tool("man")
        d = common.tmpdir(self)
        text = read_unit()
        m = re.search(r"^ExecStart=(\S+)", text, re.M)
        self.assertIsNotNone(m)
        self.assertTrue(m.group(1).endswith("/sbin/powermeterd"), m.group(1))
        unit = os.path.join(d, "powermeterd.service")
        with open(unit, "w") as f:
            f.write(text.replace(m.group(1), os.path.abspath(common.POWERMETERD)))
        mandir = os.path.join(d, "man")
        for sec, page in (("8", "powermeterd.8"), ("5", "powermeter.json.5")):
            os.makedirs(os.path.join(mandir, "man" + sec), exist_ok=True)
            os.symlink(os.path.join(os.path.abspath(common.SOURCE), "man", page),
                       os.path.join(mandir, "man" + sec, page))
        env = dict(os.environ, MANPATH=mandir, SYSTEMD_LOG_LEVEL="notice")
        r = common.run([analyze, "verify", "--man=yes", unit], env=env, timeout=60)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_security_exposure(self):
        analyze = common.require_tool("systemd-analyze")
        r = common.run([analyze, "security", "--offline=true", "--no-pager", UNIT], timeout=60)
        m = re.search(r"Overall exposure level for powermeterd\.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)
        # the credentials are optional: looked up by name, never a path
        self.assertRegex(read_unit(), r"(?m)^LoadCredential=influx-token$")
        for key in ("Type=notify", "WatchdogSec=", "ExecReload=", "Restart=on-failure",
                    "DynamicUser=yes", "SupplementaryGroups=dialout",
                    "StateDirectory=powermeter", "RuntimeDirectory=powermeter",
                    "ConfigurationDirectory=powermeter", "DevicePolicy=closed"):
            self.assertRegex(read_unit(), r"(?m)^" + re.escape(key), key)

    def test_installed_where_pkgconfig_says(self):
        meson = common.require_tool("meson")
        r = common.run([meson, "introspect", common.BUILD, "--installed"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        installed = json.loads(r.stdout)
        dest = [v for k, v in installed.items() if k.endswith("/powermeterd.service")]
        self.assertEqual(len(dest), 1, installed)
        r = common.run([meson, "introspect", common.BUILD, "--buildoptions"], timeout=60)
        opts = {o["name"]: o["value"] for o in json.loads(r.stdout)}
        if opts.get("systemdunitdir"):
            want = opts["systemdunitdir"]
        else:
            want = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                                  capture_output=True, text=True).stdout.strip()
        self.assertEqual(os.path.dirname(dest[0]), want)


if __name__ == "__main__":
    common.main()
