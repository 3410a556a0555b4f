"""An MQTT broker (Debian's mosquitto) and subscribers (mosquitto_sub) for
the integration tests. Standard library only; each broker has its own
mosquitto.conf, log and files in a temporary directory of the test case and
listens on a free loopback port; everything is stopped at cleanup.

    broker = Mosquitto(self).start()                   # anonymous
    broker = Mosquitto(self, "password").start()       # broker.user, broker.password
    broker = Mosquitto(self, "tls").start()            # broker.ca_file, mqtts://localhost
    sub = Sub(broker, ["powermeter/#"])                # collects in a thread
    sub.wait_for(lambda msgs: ..., 10)
    sub.last("powermeter/availability")["payload"]    # "online"
    retained(broker, "homeassistant/sensor/+/+/config")   # what is retained now
    broker.stop(); broker.start()                      # the same port again

Subscribers speak MQTT v5 with "retain as published", so a message's
"retain" says whether the publisher set the retain flag, also for messages
that arrive live; retained() subscribes without it, so there the flag
means "delivered from the broker's store". A missing tool skips the test,
or fails it with CI=true (common.require_tool).
"""
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time

import common

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
OPENSSL = "openssl"


def _tail(path, n=60):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(no log: %s)" % e


class CA:
    """A throwaway certificate authority made with openssl in 'directory':
    ca.key and ca.pem (file), and server certificates it signs."""

    def __init__(self, testcase, directory, name="powermeter test CA"):
        self.openssl = common.require_tool(OPENSSL)
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.key = os.path.join(directory, "ca.key")
        self.file = os.path.join(directory, "ca.pem")
        self._ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                   "-out", self.file, "-days", "2", "-subj", "/CN=%s" % name,
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def _ssl(self, args):
        r = common.run([self.openssl] + args, timeout=60)
        if r.returncode != 0:
            raise AssertionError("openssl %s failed (%d): %s"
                                 % (" ".join(args[:2]), r.returncode, r.stderr))
        return r

    def server_cert(self, name="server", cn="localhost", dns=("localhost",),
                    ips=("127.0.0.1",)):
        """A key and a certificate for cn, with subjectAltNames dns and ips,
        signed by this CA; returns (certfile, keyfile)."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        san = ["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % ",".join(san))
        self._ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                   "-subj", "/CN=%s" % cn])
        self._ssl(["x509", "-req", "-in", csr, "-CA", self.file, "-CAkey", self.key,
                   "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        return cert, key


class Mosquitto:
    """mosquitto on 127.0.0.1:port. mode "plain" (anonymous), "password"
    (user/password from a mosquitto_passwd file, anonymous refused) or
    "tls" (a throwaway CA, a server certificate for localhost and
    127.0.0.1; clients need no certificate)."""

    USER = "powermeter"
    PASSWORD = "s3cret-Br0ker-pw"

    def __init__(self, testcase, mode="plain", port=None):
        if mode not in ("plain", "password", "tls"):
            raise ValueError("mode %r" % mode)
        self.testcase = testcase
        self.mode = mode
        self.exe = common.require_tool(MOSQUITTO)
        self.dir = common.tmpdir(testcase, "pm-mosquitto-")
        self.port = port or common.free_port()
        self.host = "127.0.0.1"
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log = os.path.join(self.dir, "mosquitto.log")
        self.user = self.password = None
        self.ca = self.ca_file = None
        self.proc = None
        self.starts = 0
        lines = ["listener %d 127.0.0.1" % self.port,
                 "persistence false",
                 "log_dest file %s" % self.log,
                 "log_type all",
                 "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                 "connection_messages true"]
        if os.geteuid() == 0:
            # mosquitto 2.0 started as root switches to the user mosquitto,
            # which cannot read this test's private directory.
            lines.append("user root")
        lines.append("allow_anonymous %s" % ("false" if mode == "password" else "true"))
        if mode == "password":
            self.user, self.password = self.USER, self.PASSWORD
            pwfile = os.path.join(self.dir, "passwd")
            r = common.run([common.require_tool(MOSQUITTO_PASSWD), "-b", "-c", pwfile,
                            self.user, self.password])
            if r.returncode != 0:
                raise AssertionError("mosquitto_passwd failed: %s%s" % (r.stdout, r.stderr))
            lines.append("password_file %s" % pwfile)
        if mode == "tls":
            self.ca = CA(testcase, os.path.join(self.dir, "ca"))
            self.ca_file = self.ca.file
            cert, key = self.ca.server_cert()
            lines += ["cafile %s" % self.ca.file, "certfile %s" % cert,
                      "keyfile %s" % key, "require_certificate false"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        testcase.addCleanup(self.kill)

    # --- where it is ---

    @property
    def url(self):
        """The URL a client configures: mqtts://localhost:PORT for TLS
        (the certificate's name), mqtt://127.0.0.1:PORT otherwise."""
        if self.mode == "tls":
            return "mqtts://localhost:%d" % self.port
        return "mqtt://127.0.0.1:%d" % self.port

    def client_args(self, user=None, password=None, ca_file=None):
        """The mosquitto_sub/mosquitto_pub options to reach this broker,
        as its own user (or 'user'/'password') and CA (or 'ca_file')."""
        args = ["-p", str(self.port)]
        if self.mode == "tls":
            args += ["-h", "localhost", "--cafile", ca_file or self.ca_file]
        else:
            args += ["-h", "127.0.0.1"]
        user = user if user is not None else self.user
        password = password if password is not None else self.password
        if user:
            args += ["-u", user]
            if password is not None:
                args += ["-P", password]
        return args

    def other_ca(self, name="unrelated"):
        """A second CA that has nothing to do with this broker's; returns
        its certificate file (a client trusting only it must refuse the
        broker)."""
        return CA(self.testcase, os.path.join(self.dir, name),
                  name="unrelated test CA %s" % name).file

    # --- running it ---

    def start(self, timeout=10.0):
        """Starts mosquitto and waits until its port accepts connections;
        returns self. Fails with its log when it does not come up."""
        if self.running():
            return self
        self.starts += 1
        with open(os.path.join(self.dir, "stderr.txt"), "ab") as err:
            self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError("mosquitto exited with %s at start:\n%s\n%s"
                                     % (rc, _tail(self.log), self.stderr()))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("mosquitto not listening on %d after %.0fs:\n%s\n%s"
                                     % (self.port, timeout, _tail(self.log), self.stderr()))
            time.sleep(0.05)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, then waits; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self):
        """Stops and starts again on the same port (no persistence: the
        retained messages are gone)."""
        self.stop()
        return self.start()

    def log_text(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr.txt"), encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def publish(self, topic, payload, retain=False, qos=1, args=None):
        """mosquitto_pub one message (for self-tests and clearing topics)."""
        args = [common.require_tool(MOSQUITTO_PUB)] + (args or self.client_args()) + \
            ["-t", topic, "-q", str(qos)]
        args += ["-n"] if payload in ("", None) else ["-m", payload]
        if retain:
            args.append("-r")
        r = common.run(args, timeout=15)
        if r.returncode != 0:
            raise AssertionError("mosquitto_pub %s failed (%d): %s"
                                 % (topic, r.returncode, r.stderr))


class DeadPort:
    """A TCP listener on 127.0.0.1:port that accepts every connection and
    closes it at once (a broker that hangs up), keeping the monotonic time
    of each attempt: shows a client's reconnect back-off."""

    def __init__(self, testcase, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.attempts = []
        self._closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.close)

    def _run(self):
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.attempts.append(time.monotonic())
            conn.close()

    def close(self):
        if not self._closing:
            self._closing = True
            self.thread.join(2)
            self.sock.close()


class Sub:
    """mosquitto_sub as a child (MQTT v5, retain as published, QoS 1),
    each message kept as a dict: topic, payload (text), retain (bool, as
    the publisher set it), qos, t (time.monotonic() at receipt) and wall
    (time.time() at receipt)."""

    _ids = itertools.count(1)

    def __init__(self, broker, topics, qos=1, user=None, password=None, ca_file=None,
                 client_id=None, as_published=True, start=True, wait=True):
        self.broker = broker
        self.testcase = broker.testcase
        self.exe = common.require_tool(MOSQUITTO_SUB)
        if isinstance(topics, str):
            topics = [topics]
        args = [self.exe, "-V", "mqttv5", "-q", str(qos), "-F", "%j", "-k", "60"]
        if as_published:
            args.append("--retain-as-published")
        args += broker.client_args(user, password, ca_file)
        if client_id:
            args += ["-i", client_id]
        # A private topic that start() publishes to until the message comes
        # back: then the subscriptions are in place (and the broker has sent
        # what it had retained for them, which it does before that).
        self.probe = "pm-test-probe/%d-%d" % (os.getpid(), next(Sub._ids))
        for t in list(topics) + [self.probe]:
            args += ["-t", t]
        self.credentials = (user, password, ca_file)
        self.args = args
        self.topics = topics
        self._msgs = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._errors = []
        self._probed = False
        self.proc = None
        self.thread = None
        self.testcase.addCleanup(self.close)
        if start:
            self.start(wait)

    def start(self, wait=True, timeout=10.0):
        """Starts mosquitto_sub; with 'wait', returns once it is subscribed
        (fails if it cannot connect)."""
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.err_thread = threading.Thread(target=self._read_err, daemon=True)
        self.err_thread.start()
        if wait:
            self._wait_subscribed(timeout)
        return self

    def _wait_subscribed(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                time.sleep(0.1)
                raise AssertionError("mosquitto_sub %s exited with %s: %s"
                                     % (" ".join(self.topics), self.proc.returncode,
                                        "; ".join(self.errors())))
            self.broker.publish(self.probe, "probe", qos=0, args=self.broker.client_args(
                *self.credentials))
            with self._cond:
                if self._cond.wait_for(lambda: self._probed, 0.5):
                    return
            if time.monotonic() > deadline:
                raise AssertionError("mosquitto_sub not subscribed after %.0fs: %s"
                                     % (timeout, "; ".join(self.errors())))

    def _read(self):
        for line in self.proc.stdout:
            t, wall = time.monotonic(), time.time()
            line = line.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                j = json.loads(line)
            except ValueError:
                with self._lock:
                    self._errors.append(line)
                continue
            # an empty payload (a deleted retained message) is null in %j
            payload = j.get("payload")
            m = {"topic": j.get("topic"), "payload": "" if payload is None else payload,
                 "retain": bool(j.get("retain")), "qos": j.get("qos"), "t": t, "wall": wall}
            with self._cond:
                if m["topic"] == self.probe:
                    self._probed = True
                else:
                    self._msgs.append(m)
                self._cond.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            with self._lock:
                self._errors.append(line.decode("utf-8", "replace").rstrip())

    def errors(self):
        with self._lock:
            return list(self._errors)

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.thread.join(5)
            self.err_thread.join(5)
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # --- what arrived ---

    def messages(self, topic=None, since=None):
        """Messages so far (on 'topic' only, received at or after the
        monotonic time 'since')."""
        with self._lock:
            msgs = list(self._msgs)
        return [m for m in msgs if (topic is None or m["topic"] == topic)
                and (since is None or m["t"] >= since)]

    def last(self, topic):
        msgs = self.messages(topic)
        return msgs[-1] if msgs else None

    def retained(self, topic):
        """The last message on 'topic' if the publisher retained it."""
        m = self.last(topic)
        return m if m is not None and m["retain"] else None

    def json(self, topic, since=None):
        """The payloads on 'topic' parsed as JSON."""
        return [json.loads(m["payload"]) for m in self.messages(topic, since)]

    def wait_for(self, predicate, timeout=10.0, what="MQTT messages"):
        """Waits until predicate(self.messages()) is true; returns its value.
        Fails with what arrived (and mosquitto_sub's errors) otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = predicate(list(self._msgs))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
        msgs = self.messages()
        shown = "\n".join("%s %s%s" % (m["topic"], m["payload"][:200], " (retained)"
                                       if m["retain"] else "") for m in msgs[-15:])
        raise AssertionError("timed out after %.1fs waiting for %s; %d messages, the last:\n%s"
                             "\nmosquitto_sub: %s" % (timeout, what, len(msgs), shown,
                                                      "; ".join(self.errors()) or "-"))

    def wait_topic(self, topic, predicate=lambda m: True, timeout=10.0, since=None):
        """Waits for a message on 'topic' (received at or after 'since')
        that satisfies predicate(message); returns it."""
        def seen(msgs):
            for m in msgs:
                if m["topic"] == topic and (since is None or m["t"] >= since) and predicate(m):
                    return m
            return None
        return self.wait_for(seen, timeout, what="a message on %s" % topic)


def retained(broker, topic_filter, seconds=0.3, **sub_args):
    """What the broker holds retained now under topic_filter: subscribes
    afresh (without "retain as published", so the retain flag means "from
    the broker's store"), collects until subscribed and 'seconds' more,
    returns {topic: payload}.
    An empty retained message deletes a topic, so none is returned."""
    sub = Sub(broker, [topic_filter], as_published=False, **sub_args)
    time.sleep(seconds)     # the retained ones came before the probe; stragglers
    msgs = sub.messages()
    sub.close()
    out = {m["topic"]: m["payload"] for m in msgs if m["retain"]}
    return {t: p for t, p in out.items() if p != ""}
