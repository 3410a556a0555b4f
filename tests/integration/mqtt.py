#!/usr/bin/env python3
"""powermeterd into an MQTT broker (Debian's mosquitto, started here on a
free loopback port) with Home Assistant discovery: per circuit a state
message whose values are the simulator's, per module and for the daemon a
retained availability (the daemon's with a last will), discovery configs
that follow Home Assistant's schema and rules and are removed with their
circuit; a password file, a systemd credential and TLS with a throwaway
CA; a broker away for 20 s never costs a poll; bad settings exit 78."""
import datetime
import json
import os
import re
import signal
import socket
import time
import unittest

import common
import daemonlib
from broker import DeadPort, Mosquitto, Sub, retained
from sim import Sim

RATIO = daemonlib.RATIO
# The reconnect back-off: the first try after BACKOFF_FIRST s, each wait
# twice the one before, at most BACKOFF_MAX s.
BACKOFF_FIRST = 1
BACKOFF_MAX = 10
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Home Assistant's rules for the sensor device classes used here
# (homeassistant/components/sensor/const.py: DEVICE_CLASS_UNITS,
# DEVICE_CLASS_STATE_CLASSES).
HA_UNITS = {"current": {"A", "mA"},
            "power": {"W", "kW", "MW", "GW", "TW"},
            "energy": {"Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ", "cal",
                       "kcal", "Mcal", "Gcal", "mWh"},
            "frequency": {"Hz", "kHz", "MHz", "GHz"}}
HA_STATE_CLASSES = {"current": {"measurement"}, "power": {"measurement"},
                    "energy": {"total", "total_increasing"},
                    "frequency": {"measurement"}}
UNITS = {"current": "A", "power": "W", "energy": "Wh", "frequency": "Hz"}
VALUE_KEY = {"current": "current", "power": "power", "energy": "energy",
             "frequency": "frequency"}


def walk(seed):
    """A channel whose value moves at every read, so a stale value or a
    value of another read cannot pass for the right one."""
    return {"walk": {"start": 1500, "step": 40, "min": 100, "max": 4000, "seed": seed}}


def node_id(prefix):
    return re.sub(r"[^A-Za-z0-9_-]", "_", prefix)


def config_topic(discovery_prefix, node, dev, letter, kind):
    """Where a circuit's discovery config is: H/sensor/N/D_L_KIND/config."""
    return "%s/sensor/%s/%d_%s_%s/config" % (discovery_prefix, node, dev, letter, kind)


def parse_time_ms(s):
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000


def mqtt_config(testcase, sim, mqtt, inputs="abcd", interval=0.5, extra=None,
                change=None, **kw):
    """A daemon config for 'sim' with the mqtt section 'mqtt' and energy
    counters saved every second (an output shows a counter once two saves
    hold it); change(cfg) may edit the result."""
    cfg_extra = {"mqtt": mqtt, "energy": {"persist_interval": 1}, "ledger": False}
    cfg_extra.update(extra or {})
    path = daemonlib.daemon_config(testcase, sim, interval=interval, inputs=inputs,
                                   extra=cfg_extra, **kw)
    if change:
        daemonlib.rewrite_config(path, change)
    return path


def load(path):
    with open(path) as f:
        return json.load(f)


def snapshot_state(cfg_path, dev_id):
    try:
        with open(load(cfg_path)["snapshot"]) as f:
            snap = json.load(f)
    except (OSError, ValueError):
        return {"reads": 0}
    for d in snap["devices"]:
        if d["id"] == dev_id:
            return d["state"]
    return {"reads": 0}


def reads_by_device(sim):
    """{device id: [(t_ms, values)]} of the simulator's good reads."""
    out = {}
    for bus, addr, t_ms, values in daemonlib.ok_reads(sim):
        out.setdefault(bus * 100 + addr, []).append((t_ms, values))
    return out


def device_params(cfg_path):
    """{device id: (voltage, power factor, frequency on, [letters])}."""
    cfg = load(cfg_path)
    out = {}
    for d in cfg["devices"]:
        out[d["id"]] = (d.get("voltage", cfg.get("voltage", 230)),
                        d.get("power_factor", cfg.get("power_factor", 1)),
                        d.get("frequency", False), [i["input"] for i in d["inputs"]])
    return out


class MqttCase(unittest.TestCase):
    def daemon(self, cfg, **kw):
        return daemonlib.Daemon(self, cfg, **kw)

    def check_states(self, sub, sim, cfg_path, prefix, energy=True, freq_raw=None,
                     since=None, retain=False, qos=1):
        """Every state message (received since monotonic 'since') has the
        contract's keys and the values of the simulator's read at its time;
        energy never goes down. Returns {(dev, letter): [payloads]}."""
        reads = reads_by_device(sim)
        params = device_params(cfg_path)
        seen = {}
        rx = re.compile(r"^%s/(\d+)/([a-p])/state$" % re.escape(prefix))
        for m in sub.messages(since=since):
            mm = rx.match(m["topic"])
            if not mm:
                continue
            dev, letter = int(mm.group(1)), mm.group(2)
            self.assertIn(dev, params, m)
            volt, pf, freq_on, letters = params[dev]
            self.assertIn(letter, letters, m)
            self.assertEqual(m["retain"], retain, "retain flag of %r" % m)
            self.assertEqual(m["qos"], qos, "QoS of %r" % m)
            p = json.loads(m["payload"])
            keys = {"time", "current", "power", "estimated"}
            if "energy" in p:
                keys.add("energy")
            if freq_on:
                keys.add("frequency")
            self.assertEqual(set(p), keys, "keys of %s %s" % (m["topic"], m["payload"]))
            self.assertRegex(p["time"], TIME_RE)
            t_ms = parse_time_ms(p["time"])
            cands = [(t, v) for t, v in reads.get(dev, []) if abs(t - t_ms) <= 100]
            self.assertEqual(len(cands), 1, "%s at %s: simulator reads near it: %r"
                             % (m["topic"], p["time"], cands))
            raw = cands[0][1][ord(letter) - ord("a")]
            self.assertAlmostEqual(p["current"], raw * RATIO, places=9, msg=m["payload"])
            self.assertAlmostEqual(p["power"], raw * RATIO * volt * pf, places=6,
                                   msg=m["payload"])
            self.assertEqual(p["estimated"], ["power", "energy"] if "energy" in p else ["power"],
                             m["payload"])
            if freq_on:
                want = freq_raw[dev] * 0.1
                self.assertAlmostEqual(p["frequency"], want, places=6, msg=m["payload"])
            if "energy" in p:
                self.assertIsInstance(p["energy"], (int, float))
                self.assertGreaterEqual(p["energy"], 0)
            seen.setdefault((dev, letter), []).append(p)
        for key, payloads in seen.items():
            times = [parse_time_ms(p["time"]) for p in payloads]
            self.assertEqual(times, sorted(set(times)),
                             "%s: a state twice or out of order" % (key,))
            energies = [p["energy"] for p in payloads if "energy" in p]
            if energy:
                # once shown, shown in every later message, never lower
                first = next((i for i, p in enumerate(payloads) if "energy" in p), None)
                if first is not None:
                    self.assertTrue(all("energy" in p for p in payloads[first:]),
                                    "energy missing after it was shown: %s" % (key,))
            else:
                self.assertEqual(energies, [], "energy while the counters are off: %s" % (key,))
            self.assertEqual(energies, sorted(energies), "energy of %s went down: %s"
                             % (key, energies))
        return seen

    def check_coverage(self, sub, sim, cfg_path, prefix, from_ms, until_ms):
        """Every good read of the simulator between the two times has its
        state message, per configured input."""
        params = device_params(cfg_path)
        times = {}
        rx = re.compile(r"^%s/(\d+)/([a-p])/state$" % re.escape(prefix))
        for m in sub.messages():
            mm = rx.match(m["topic"])
            if mm:
                times.setdefault((int(mm.group(1)), mm.group(2)), []).append(
                    parse_time_ms(json.loads(m["payload"])["time"]))
        missing = []
        n = 0
        for dev, lst in reads_by_device(sim).items():
            for t, _ in lst:
                if not from_ms <= t <= until_ms:
                    continue
                for letter in params[dev][3]:
                    n += 1
                    if not any(abs(x - t) <= 100 for x in times.get((dev, letter), [])):
                        missing.append((dev, letter, t))
        self.assertGreater(n, 0)
        self.assertEqual(missing[:5], [], "%d of %d reads have no state message"
                         % (len(missing), n))

    def check_ticks(self, sim, addr, from_ms, until_ms, interval):
        times = sorted(t for b, a, t, _ in daemonlib.ok_reads(sim)
                       if a == addr and from_ms <= t <= until_ms)
        gaps = [y - x for x, y in zip(times, times[1:])]
        self.assertGreaterEqual(len(times), (until_ms - from_ms) / (interval * 1000) - 2,
                                "module %d read %d times in %.1f s" %
                                (addr, len(times), (until_ms - from_ms) / 1000))
        for g in gaps:
            self.assertAlmostEqual(g, interval * 1000, delta=150,
                                   msg="module %d: gaps %s" % (addr, gaps))

    def assert_secrets_absent(self, d, *secrets):
        err = d.stderr()
        for s in secrets:
            self.assertNotIn(s, err, "a secret in the daemon's log")


class Discovery(MqttCase):
    def test_states_availability_and_discovery(self):
        """Two modules (the second reads frequencies and has its own voltage
        and power factor): states equal the simulator's reads, availability
        retained online, every discovery config retained with Home
        Assistant's schema."""
        broker = Mosquitto(self).start()
        sim = Sim.single(self, modules=[
            {"address": 1, "channels": [walk(1), walk(2)]},
            {"address": 2, "version": 631, "frequency": 499, "channels": [walk(3)]}])
        prefix = "site-1/power.meter"
        n = node_id(prefix)
        self.assertEqual(n, "site-1_power_meter")

        def change(cfg):
            cfg["devices"][1].update(frequency=True, voltage=120, power_factor=0.8)
        cfg = mqtt_config(self, sim, {"url": broker.url, "topic_prefix": prefix,
                                      "discovery": True}, inputs="abc", change=change)
        info = common.run([common.POWERMETER, "info", "-c", cfg])
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertIn("6.3.1", info.stdout)
        sub = Sub(broker, [prefix + "/#", "homeassistant/#"])
        d = self.daemon(cfg).start()
        start_ms = time.time() * 1000

        # every config with the module's firmware, energy shown, 8 s of states
        want_cfg = {}
        for dev, kinds in ((1, ["current", "power", "energy"]),
                           (2, ["current", "power", "energy", "frequency"])):
            for letter in "abc":
                for kind in kinds:
                    want_cfg[config_topic("homeassistant", n, dev, letter, kind)] = \
                        (dev, letter, kind)

        def configs_with_firmware(msgs):
            last = {}
            for m in msgs:
                if m["topic"].startswith("homeassistant/"):
                    last[m["topic"]] = m
            ok = all(t in last and "sw_version" in json.loads(last[t]["payload"] or "{}")
                     .get("device", {}) for t in want_cfg)
            return last if ok else None
        sub.wait_for(configs_with_firmware, 15, what="discovery configs with sw_version")

        def energy_shown(msgs):
            return all(any(m["topic"] == "%s/%d/%s/state" % (prefix, dev, l)
                           and "energy" in json.loads(m["payload"]) for m in msgs)
                       for dev in (1, 2) for l in "abc")
        sub.wait_for(energy_shown, 15, what="energy in every circuit's state")
        time.sleep(max(0.0, 8 - (time.time() * 1000 - start_ms) / 1000))
        stop_ms = time.time() * 1000

        # states
        seen = self.check_states(sub, sim, cfg, prefix, freq_raw={2: 499})
        self.assertEqual(set(seen), {(dev, l) for dev in (1, 2) for l in "abc"})
        first_state = min(parse_time_ms(p["time"]) for lst in seen.values() for p in lst)
        self.check_coverage(sub, sim, cfg, prefix, first_state + 600, stop_ms - 1500)
        # energy in Wh: channel c reads a constant, so its counter is its
        # power times the time since the first read, less what the two
        # saves an output waits for (1 s each here) hold back
        reads = reads_by_device(sim)
        for dev, watts in ((1, Sim.default_raw(1, 2) * RATIO * 230),
                           (2, Sim.default_raw(2, 2) * RATIO * 120 * 0.8)):
            last = seen[(dev, "c")][-1]
            elapsed = (parse_time_ms(last["time"]) - reads[dev][0][0]) / 1000
            self.assertLessEqual(last["energy"], watts * (elapsed + 0.1) / 3600, last)
            self.assertGreaterEqual(last["energy"], watts * (elapsed - 4) / 3600, last)

        # availability: retained online, the daemon's and each module's
        now = retained(broker, prefix + "/#")
        self.assertEqual(now.get(prefix + "/availability"), "online", now)
        for dev in (1, 2):
            self.assertEqual(now.get("%s/%d/availability" % (prefix, dev)), "online", now)
        self.assertEqual([t for t in now if t.endswith("/state")], [],
                         "states retained though retain is off")
        for t in [prefix + "/availability", prefix + "/1/availability",
                  prefix + "/2/availability"]:
            self.assertTrue(sub.last(t)["retain"], t)
            self.assertEqual(sub.last(t)["payload"], "online", t)

        # discovery: exactly the expected topics, retained, HA's schema
        stored = retained(broker, "homeassistant/#")
        self.assertEqual(sorted(stored), sorted(want_cfg))
        for topic, (dev, letter, kind) in want_cfg.items():
            p = json.loads(stored[topic])
            self.assertTrue(sub.last(topic)["retain"], topic)
            self.check_ha_rules(topic, p)
            uid = "%s_%d_%s_%s" % (n, dev, letter, kind)
            name = daemonlib.input_name(dev, letter)
            suffix = {"current": " current", "power": " power (estimated)",
                      "energy": " energy (estimated)", "frequency": " frequency"}[kind]
            device = p.get("device", {})
            self.assertIsInstance(device.get("model"), str, p)
            self.assertTrue(device.get("model"), p)
            want = {
                "name": name + suffix,
                "unique_id": uid,
                "object_id": uid,
                "state_topic": "%s/%d/%s/state" % (prefix, dev, letter),
                "value_template": "{{ value_json.%s }}" % VALUE_KEY[kind],
                "unit_of_measurement": UNITS[kind],
                "device_class": kind,
                "state_class": "total_increasing" if kind == "energy" else "measurement",
                "availability": [{"topic": prefix + "/availability"},
                                 {"topic": "%s/%d/availability" % (prefix, dev)}],
                "availability_mode": "all",
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": {"identifiers": ["%s_%d" % (n, dev)],
                           "name": "HDHK module %d" % dev,
                           "manufacturer": "HDHK",
                           "model": device.get("model"),
                           "sw_version": "6.2.8" if dev == 1 else "6.3.1"},
            }
            self.assertEqual(p, want, topic)

        # the default client id, QoS 1 by default
        self.assertIn(" as powermeterd-%s " % socket.gethostname(), broker.log_text())
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertEqual(retained(broker, prefix + "/availability"),
                         {prefix + "/availability": "offline"})

    def check_ha_rules(self, topic, p):
        dc = p.get("device_class")
        self.assertIn(dc, HA_UNITS, topic)
        self.assertIn(p.get("unit_of_measurement"), HA_UNITS[dc], topic)
        self.assertIn(p.get("state_class"), HA_STATE_CLASSES[dc], topic)
        self.assertTrue(re.fullmatch(r"[A-Za-z0-9_-]+", p["unique_id"]), p["unique_id"])

    def test_removed_circuits_and_reordering(self):
        """Inputs a, b, c; without c after SIGHUP, without b after a
        restart: their configs are emptied. Devices and inputs reordered:
        the same unique ids."""
        broker = Mosquitto(self).start()
        sim = Sim.single(self, n_modules=2)
        prefix = "pm"
        hp = "ha-test"
        cfg = mqtt_config(self, sim, {"url": broker.url, "topic_prefix": prefix,
                                      "discovery": True, "discovery_prefix": hp,
                                      "client_id": "pm-removal"}, inputs="abc")
        sub = Sub(broker, [hp + "/#"])

        def topics(letters, devs=(1, 2)):
            return sorted(config_topic(hp, "pm", dev, l, k) for dev in devs for l in letters
                          for k in ("current", "power", "energy"))
        d = self.daemon(cfg).start()
        sub.wait_for(lambda msgs: {m["topic"] for m in msgs} >= set(topics("abc")), 15,
                     what="discovery configs of a, b, c")
        self.assertEqual(sorted(retained(broker, hp + "/#")), topics("abc"))

        daemonlib.rewrite_config(cfg, lambda c: [dev.update(inputs=[
            i for i in dev["inputs"] if i["input"] != "c"]) for dev in c["devices"]])
        mark = time.monotonic()
        d.hup()
        d.notify.wait("READY", "1", after=mark, timeout=15)
        for t in topics("c"):
            sub.wait_topic(t, lambda m: m["payload"] == "" and m["retain"], 10, since=mark)
        self.assertEqual(sorted(retained(broker, hp + "/#")), topics("ab"))

        self.assertEqual(d.stop(), 0, d.stderr())
        daemonlib.rewrite_config(cfg, lambda c: [dev.update(inputs=[
            i for i in dev["inputs"] if i["input"] != "b"]) for dev in c["devices"]])
        mark = time.monotonic()
        d.start()
        for t in topics("b"):
            sub.wait_topic(t, lambda m: m["payload"] == "" and m["retain"], 10, since=mark)
        self.assertEqual(sorted(retained(broker, hp + "/#")), topics("a"))
        before = {t: json.loads(p) for t, p in retained(broker, hp + "/#").items()}
        self.assertEqual(d.stop(), 0, d.stderr())

        # reordered devices and inputs (a and d now), restarted
        def reorder(c):
            c["devices"].reverse()
            for dev in c["devices"]:
                dev["inputs"].append({"input": "d", "ratio": RATIO,
                                      "name": daemonlib.input_name(dev["id"], "d")})
                dev["inputs"].reverse()
        daemonlib.rewrite_config(cfg, reorder)
        mark = time.monotonic()
        d.start()
        sub.wait_for(lambda msgs: {m["topic"] for m in msgs if m["t"] >= mark}
                     >= set(topics("ad")), 15, what="configs after the reorder")
        after = {t: json.loads(p) for t, p in retained(broker, hp + "/#").items()}
        self.assertEqual(sorted(after), topics("ad"))
        for dev in (1, 2):
            for k in ("current", "power", "energy"):
                t = config_topic(hp, "pm", dev, "a", k)
                self.assertEqual(after[t]["unique_id"], "pm_%d_a_%s" % (dev, k), t)
        for t, p in before.items():
            self.assertEqual(after[t]["unique_id"], p["unique_id"], t)
            self.assertEqual(after[t]["state_topic"], p["state_topic"], t)
            self.assertEqual(after[t]["device"]["identifiers"], p["device"]["identifiers"], t)
        self.assertEqual(d.stop(), 0, d.stderr())

        # discovery turned off removes them all (powermeter.json(5))
        daemonlib.rewrite_config(cfg, lambda c: c["mqtt"].update(discovery=False))
        mark = time.monotonic()
        d.start()
        for t in topics("ad"):
            sub.wait_topic(t, lambda m: m["payload"] == "" and m["retain"], 10, since=mark)
        self.assertEqual(retained(broker, hp + "/#"), {})
        self.assertEqual(d.stop(), 0, d.stderr())


class Credentials(MqttCase):
    def test_password_file_wrong_password_and_credential(self):
        broker = Mosquitto(self, "password").start()
        d_dir = common.tmpdir(self)
        good = os.path.join(d_dir, "mqtt.pw")
        with open(good, "w") as f:
            f.write(broker.password + "\n")
        os.chmod(good, 0o600)
        bad_pw = "wr0ng-Br0ker-pw"
        bad = os.path.join(d_dir, "bad.pw")
        with open(bad, "w") as f:
            f.write(bad_pw + "\n")
        sim_good = Sim.single(self)
        sim_bad = Sim.single(self)
        sub = Sub(broker, ["good/#", "bad/#"])

        cfg_good = mqtt_config(self, sim_good, {
            "url": broker.url, "username": broker.user, "password_file": good,
            "topic_prefix": "good", "client_id": "pm-good"}, inputs="ab")
        cfg_bad = mqtt_config(self, sim_bad, {
            "url": broker.url, "username": broker.user, "password_file": bad,
            "topic_prefix": "bad", "client_id": "pm-bad"}, inputs="ab")
        d_good = self.daemon(cfg_good).start()
        t0 = time.monotonic()
        d_bad = self.daemon(cfg_bad).start()
        self.assertLess(time.monotonic() - t0, 5, "READY waited for the broker")
        bad_start_ms = time.time() * 1000
        sub.wait_topic("good/availability", lambda m: m["payload"] == "online", 10)
        sub.wait_topic("good/1/a/state", timeout=10)

        # the refused daemon keeps polling at its interval, says so once
        time.sleep(6)
        r0 = snapshot_state(cfg_bad, 1)["reads"]
        time.sleep(2.5)
        r1 = snapshot_state(cfg_bad, 1)["reads"]
        self.assertGreaterEqual(r1 - r0, 4, "reads %d -> %d in 2.5 s" % (r0, r1))
        self.check_ticks(sim_bad, 1, bad_start_ms + 1000, time.time() * 1000 - 200, 0.5)
        # (mosquitto does not name a refused client; the bad daemon is the
        # only one refused here)
        attempts = len(re.findall(r"disconnected, not authorised", broker.log_text()))
        self.assertGreaterEqual(attempts, 2, "the refused daemon did not retry:\n"
                                + broker.log_text()[-3000:])
        lines = [l for l in d_bad.stderr().splitlines()
                 if re.search(r"(?i)mqtt|broker", l) and
                 re.search(r"(?i)auth|refus|password|denied|credential", l)]
        self.assertEqual(len(lines), 1, "refusal logged %d times:\n%s"
                         % (len(lines), d_bad.stderr()))
        self.assertEqual([m for m in sub.messages() if m["topic"].startswith("bad/")], [])
        self.assertEqual(d_bad.stop(), 0, d_bad.stderr())
        self.assertEqual(d_good.stop(), 0, d_good.stderr())
        self.assert_secrets_absent(d_bad, bad_pw, broker.password)
        self.assert_secrets_absent(d_good, broker.password)

        # the systemd credential mqtt-password (with -v: not even debug
        # lines show it)
        creds = common.tmpdir(self)
        with open(os.path.join(creds, "mqtt-password"), "w") as f:
            f.write(broker.password)
        cfg_cred = mqtt_config(self, sim_good, {
            "url": broker.url, "username": broker.user, "topic_prefix": "good",
            "client_id": "pm-cred"}, inputs="ab")
        mark = time.monotonic()
        d = self.daemon(cfg_cred, args=["-v"], env={"CREDENTIALS_DIRECTORY": creds}).start()
        sub.wait_topic("good/1/b/state", timeout=10, since=mark)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assert_secrets_absent(d, broker.password)

    def test_broker_down_at_start(self):
        """Nobody listens: ready at once, polling at its interval, logged
        once though it keeps retrying."""
        port = common.free_port()
        sim = Sim.single(self)
        cfg = mqtt_config(self, sim, {"url": "mqtt://127.0.0.1:%d" % port}, inputs="a")
        t0 = time.monotonic()
        d = self.daemon(cfg).start()
        self.assertLess(time.monotonic() - t0, 5)
        from_ms = time.time() * 1000
        time.sleep(5)
        self.check_ticks(sim, 1, from_ms, time.time() * 1000 - 200, 0.5)
        lines = [l for l in d.stderr().splitlines() if re.search(r"(?i)mqtt|broker", l)
                 and re.search(r"(?i)refused|connect", l)]
        self.assertLessEqual(len(lines), 1, d.stderr())
        self.assertEqual(d.stop(), 0, d.stderr())


class Tls(MqttCase):
    def test_tls_with_a_throwaway_ca(self):
        broker = Mosquitto(self, "tls").start()
        other = broker.other_ca()
        sim_good = Sim.single(self)
        sim_bad = Sim.single(self)
        sub = Sub(broker, ["good/#", "bad/#"])
        # (with discovery and the energy counters off: no energy anywhere)
        cfg_good = mqtt_config(self, sim_good, {
            "url": broker.url, "ca_file": broker.ca_file, "topic_prefix": "good",
            "client_id": "pm-good", "discovery": True}, inputs="a",
            extra={"energy": {"enabled": False}})
        cfg_bad = mqtt_config(self, sim_bad, {
            "url": broker.url, "ca_file": other, "topic_prefix": "bad",
            "client_id": "pm-bad"}, inputs="a")
        d_good = self.daemon(cfg_good).start()
        d_bad = self.daemon(cfg_bad).start()
        sub.wait_topic("good/availability", lambda m: m["payload"] == "online", 10)
        sub.wait_topic("good/1/a/state", timeout=10)
        d_bad.wait_stderr(r"(?i)certificate|verif", timeout=10)
        time.sleep(3)
        self.assertEqual([m for m in sub.messages() if m["topic"].startswith("bad/")], [])
        self.assertNotIn("as pm-bad", broker.log_text())
        self.assertGreater(snapshot_state(cfg_bad, 1)["reads"], 4)
        self.assertEqual(d_bad.stop(), 0, d_bad.stderr())
        seen = self.check_states(sub, sim_good, cfg_good, "good", energy=False)
        self.assertGreaterEqual(len(seen[(1, "a")]), 5)
        self.assertEqual(sorted(retained(broker, "homeassistant/#")),
                         sorted(config_topic("homeassistant", "good", 1, "a", k)
                                for k in ("current", "power")))
        self.assertEqual(d_good.stop(), 0, d_good.stderr())


class LastWill(MqttCase):
    def test_sigkill_and_sigterm_leave_offline(self):
        broker = Mosquitto(self).start()
        sim = Sim.single(self)
        cfg = mqtt_config(self, sim, {"url": broker.url}, inputs="a", interval=0.3)
        sub = Sub(broker, ["powermeter/#"])
        d = self.daemon(cfg).start()
        sub.wait_topic("powermeter/availability", lambda m: m["payload"] == "online", 10)
        sub.wait_topic("powermeter/1/a/state", timeout=10)
        mark = time.monotonic()
        d.send(signal.SIGKILL)
        d.proc.wait(5)
        d.proc = None
        m = sub.wait_topic("powermeter/availability", lambda m: m["payload"] == "offline",
                           5, since=mark)
        self.assertTrue(m["retain"], m)
        self.assertLess(m["t"] - mark, 3)
        self.assertEqual(retained(broker, "powermeter/availability"),
                         {"powermeter/availability": "offline"})
        # the will: P/availability, "offline", retained, QoS 1
        client = "powermeterd-%s" % socket.gethostname()
        log = broker.log_text()
        self.assertRegex(log, r"as %s .*\n.*Will message specified \(7 bytes\) \(r1, q1\)\.\n"
                         r".*\tpowermeter/availability\n" % re.escape(client))
        self.assertIn("Client %s closed its connection." % client, log)

        d.start()
        mark = time.monotonic()
        sub.wait_topic("powermeter/availability", lambda m: m["payload"] == "online", 10,
                       since=d.started_at)
        sub.wait_topic("powermeter/1/a/state", timeout=10, since=mark)
        self.assertEqual(d.stop(), 0, d.stderr())
        # published by the daemon itself before it exited (not the will)
        m = sub.wait_topic("powermeter/availability", lambda m: m["payload"] == "offline",
                           5, since=mark)
        self.assertTrue(m["retain"], m)
        self.assertEqual(retained(broker, "powermeter/availability"),
                         {"powermeter/availability": "offline"})
        self.assertIn("Received DISCONNECT from %s" % client,
                      broker.log_text().rsplit(" as %s " % client, 1)[-1])


class Outage(MqttCase):
    def test_broker_away_20s(self):
        """The broker stopped for 20 s and started again on its port: not a
        tick missed, at most the newest state per circuit from the outage,
        then fresh states; availability and (retain on) states retained
        again on the new broker. Meanwhile a listener that hangs up on
        every connection shows the back-off: 1 s, doubling up to 30 s."""
        interval = 0.5
        broker = Mosquitto(self).start()
        sim = Sim.single(self, modules=[{"address": 1, "channels": [walk(5)]}])
        cfg = mqtt_config(self, sim, {"url": broker.url, "retain": True,
                                      "client_id": "pm-outage", "keepalive": 5},
                          inputs="ab", interval=interval)
        sub = Sub(broker, ["powermeter/#"])
        d = self.daemon(cfg).start()
        sub.wait_topic("powermeter/1/b/state", timeout=10)
        time.sleep(1)
        sub.close()
        before_stderr = len(d.stderr().splitlines())
        down_ms = time.time() * 1000
        down = time.monotonic()
        broker.stop()
        dead = DeadPort(self, broker.port)
        r0 = snapshot_state(cfg, 1)["reads"]
        time.sleep(20)
        r1 = snapshot_state(cfg, 1)["reads"]
        outage_lines = d.stderr().splitlines()[before_stderr:]
        dead.close()
        up_ms = time.time() * 1000
        up = time.monotonic()
        broker.start()
        sub = Sub(broker, ["powermeter/#"])
        online = sub.wait_topic("powermeter/availability", lambda m: m["payload"] == "online",
                                40)
        reconnect_s = online["t"] - up
        sub.wait_for(lambda msgs: sum(1 for m in msgs if m["topic"] == "powermeter/1/a/state"
                                      and parse_time_ms(json.loads(m["payload"])["time"])
                                      > online["wall"] * 1000) >= 3, 10,
                     what="3 fresh states after the reconnect")
        end_ms = time.time() * 1000

        # polling never missed a tick
        self.assertGreaterEqual(r1 - r0, 20 / interval - 3, "reads %d -> %d" % (r0, r1))
        self.check_ticks(sim, 1, down_ms - 1000, end_ms - 200, interval)
        # at most the newest state per circuit from while the broker was away
        for letter in "ab":
            old = [json.loads(m["payload"])["time"] for m in sub.messages("powermeter/1/%s/state"
                                                                           % letter)
                   if parse_time_ms(json.loads(m["payload"])["time"]) < up_ms]
            self.assertLessEqual(len(old), 1, "states from the outage: %s" % old)
        self.check_states(sub, sim, cfg, "powermeter", retain=True)
        now = retained(broker, "powermeter/#")
        for t in ("powermeter/availability", "powermeter/1/availability"):
            self.assertEqual(now.get(t), "online", now)
        for t in ("powermeter/1/a/state", "powermeter/1/b/state"):
            self.assertIn(t, now)
            self.assertGreater(parse_time_ms(json.loads(now[t])["time"]), up_ms)
        # the outage logged once, not at every retry
        self.assertLessEqual(len(outage_lines), 2, "\n".join(outage_lines))
        self.assertNotIn("skipped", d.stderr())
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertLess(reconnect_s, 30)

        # the back-off: the tries while the broker was away (1, 3, 7, 15 s
        # after it went), then the next wait ends with the reconnect
        waits = [BACKOFF_FIRST]
        while sum(waits) < 20:
            waits.append(min(waits[-1] * 2, BACKOFF_MAX))
        want = [sum(waits[:i + 1]) for i in range(len(waits) - 1)]
        tries = [round(t - down, 2) for t in dead.attempts]
        self.assertEqual(len(tries), len(want), "connection attempts at %s s, expected "
                         "at %s s" % (tries, want))
        for got, w in zip(tries, want):
            self.assertAlmostEqual(got, w, delta=0.7, msg="attempts at %s s, expected at %s s"
                                   % (tries, want))
        self.assertAlmostEqual(online["t"] - dead.attempts[-1], waits[-1], delta=1.5,
                               msg="reconnected %.1f s after the attempt at %.1f s, expected "
                               "%d s (back-off %d s doubling up to %d s)"
                               % (online["t"] - dead.attempts[-1], tries[-1], waits[-1],
                                  BACKOFF_FIRST, BACKOFF_MAX))


class ModuleDown(MqttCase):
    def test_module_offline_after_down_after_and_back(self):
        interval = 0.5
        broker = Mosquitto(self).start()
        sim = Sim.single(self, modules=[{"address": 1, "channels": [walk(7)]},
                                        {"address": 2, "channels": [walk(8)]}])
        cfg = mqtt_config(self, sim, {"url": broker.url, "qos": 0, "client_id": "pm-down"},
                          inputs="ab", interval=interval, timeout=0.1)
        sub = Sub(broker, ["powermeter/#"])
        d = self.daemon(cfg).start()
        sub.wait_topic("powermeter/2/availability", lambda m: m["payload"] == "online", 10)
        sub.wait_topic("powermeter/2/a/state", timeout=10)

        sim.fault(0, 2, "noanswer")
        off = sub.wait_topic("powermeter/2/availability",
                             lambda m: m["payload"] == "offline", 10)
        self.assertTrue(off["retain"], off)
        fails = sorted(e["t_ms"] for e in sim.log()
                       if e["addr"] == 2 and e["result"] == "noanswer")
        # after down_after (default 3) failed reads: ticks fall on multiples
        # of the interval, a read's attempts (with retries) within its tick
        failed_reads = sorted({int(t // (interval * 1000)) for t in fails
                               if t <= off["wall"] * 1000})
        self.assertIn(len(failed_reads), (3, 4),
                      "offline after %d failed reads" % len(failed_reads))
        self.assertEqual(retained(broker, "powermeter/2/availability"),
                         {"powermeter/2/availability": "offline"})
        time.sleep(1)
        sim.clear(0, 2)
        on = sub.wait_topic("powermeter/2/availability", lambda m: m["payload"] == "online",
                            10, since=off["t"])
        sub.wait_topic("powermeter/2/a/state", since=on["t"], timeout=10)
        self.assertEqual(retained(broker, "powermeter/2/availability"),
                         {"powermeter/2/availability": "online"})
        # module 1 was never offline; no state of module 2 but its reads'
        self.assertEqual([m["payload"] for m in sub.messages("powermeter/1/availability")],
                         ["online"])
        self.check_states(sub, sim, cfg, "powermeter", qos=0)
        # availability always at QoS 1 (qos is the states')
        for m in sub.messages():
            if m["topic"].endswith("/availability"):
                self.assertEqual(m["qos"], 1, m)
        self.assertEqual(d.stop(), 0, d.stderr())


SECRET = "inline-S3cret-pw"


class BadConfig(unittest.TestCase):
    def test_errors_exit_78_with_file_and_path(self):
        d = common.tmpdir(self)
        a_dir = os.path.join(d, "a-directory")
        os.mkdir(a_dir)
        base = {"url": "mqtt://127.0.0.1:1883"}
        cases = [
            ({"url": "mqtt://"}, "mqtt.url"),
            ({"url": "mqtt://host:99999"}, "mqtt.url"),
            ({"url": "localhost:1883"}, "mqtt.url"),
            ({"url": "http://127.0.0.1:1883"}, "mqtt.url"),
            ({"username": "u", "password_file": os.path.join(d, "missing.pw")},
             "mqtt.password_file"),
            ({"username": "u", "password_file": a_dir}, "mqtt.password_file"),
            ({"topic_prefix": "a/+/b"}, "mqtt.topic_prefix"),
            ({"topic_prefix": "a/#"}, "mqtt.topic_prefix"),
            ({"qos": 2}, "mqtt.qos"),
            ({"topic_prefix": "/powermeter"}, "mqtt.topic_prefix"),
            ({"topic_prefix": "powermeter/"}, "mqtt.topic_prefix"),
            ({"keepalive": 4}, "mqtt.keepalive"),
            ({"username": "u", "password": SECRET, "qos": 2}, "mqtt.qos"),
            ({"url": "mqtts://localhost:8883", "ca_file": os.path.join(d, "missing.pem")},
             "mqtt.ca_file"),
        ]
        wrong = []
        for i, (change, where) in enumerate([({}, None)] + cases):
            m = dict(base, **change)
            path = os.path.join(d, "bad-%d.json" % i)
            with open(path, "w") as f:
                json.dump({"interval": 1, "state_directory": os.path.join(d, "state"),
                           "runtime_directory": os.path.join(d, "run"),
                           "devices": [{"id": 1, "port": os.path.join(d, "ttyUSB0"),
                                        "inputs": [{"input": "a"}]}],
                           "mqtt": m}, f)
            for argv in ([common.POWERMETER, "check", "-c", path],
                         [common.POWERMETERD, "-c", path]):
                if where is None:      # the base passes: the errors are mqtt's
                    if argv[0] == common.POWERMETER:
                        r = common.run(argv, timeout=20)
                        if r.returncode != 0:
                            wrong.append("the base config fails: %s" % r.stderr)
                    continue
                r = common.run(argv, timeout=20)
                if SECRET in r.stdout + r.stderr:
                    wrong.append("%s printed the password" % os.path.basename(argv[0]))
                if r.returncode != 78 or not re.search(
                        r"%s: .*%s\b" % (re.escape(path), re.escape(where)), r.stderr):
                    wrong.append("%s with %s: exit %d, %s" % (
                        os.path.basename(argv[0]), json.dumps(m), r.returncode,
                        (r.stdout + r.stderr).strip()))
        self.assertEqual(wrong, [], "\n".join(wrong))


if __name__ == "__main__":
    common.main()
