"""Real time-series databases for the integration tests: InfluxDB 1.6
(`influxd`, v1 write API) and VictoriaMetrics (`victoria-metrics`, which also
takes the v2 write API), each started by the test on a free 127.0.0.1 port
with its data in a temporary directory of the test case, and stopped at its
cleanup. Standard library only.

    db = Influx1(self)                     # started; db.url, db.database
    ... write with url=db.url, database=db.database ...
    rows = db.points("powermeter")         # [{"time": ms, "device_id": "1", ...}]
    db.stop(); db.start()                  # same port and data: an outage
    tls = Influx1(self, tls=TLS(cert, key, ca))  # HTTPS only; tls.url is https://

    vm = Victoria(self)                    # started; vm.url (v2 write, any token)
    vm.settle()                            # wait until accepted rows are searchable
    series = vm.export('{__name__="powermeter_current"}')
    # [{"metric": {"__name__": "powermeter_current", "device_id": "1", ...},
    #   "values": [0.92, ...], "timestamps": [ms, ...]}, ...]

How VictoriaMetrics maps line protocol: measurement "powermeter" with field
"current" becomes the metric "powermeter_current" (measurement, "_", field
key); tags become labels. It keeps every sample it is sent, duplicates
included (no -dedup.minScrapeInterval here), so its export shows a point
written twice; InfluxDB overwrites an identical point instead, so it cannot.
"""
import collections
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import common

START_TIMEOUT = 30.0


# A server's certificate and private key (PEM files) and the CA file that
# verifies it (the test's own client trusts only that CA).
TLS = collections.namedtuple("TLS", "certificate private_key ca_file")


def _http(method, url, body=None, headers=None, timeout=10.0, context=None):
    """(status, body bytes) of one request; HTTP errors are returned too.
    'context' is the ssl.SSLContext for an https:// url."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class _Server:
    """A child process on a fixed loopback port that survives stop()/start()
    with its data (so a test can take the database down and back up)."""
    name = "server"

    def __init__(self, testcase):
        self.testcase = testcase
        self.dir = common.tmpdir(testcase, "pm-%s-" % self.name)
        self.port = common.free_port()
        self.host = "127.0.0.1"
        self.url = "http://%s:%d" % (self.host, self.port)
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = None
        testcase.addCleanup(self.stop)

    def _argv(self):
        raise NotImplementedError

    def _ready(self):
        raise NotImplementedError

    def start(self):
        """Starts the server (again) and waits until it answers."""
        if self.proc is not None:
            return self
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._argv(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                self._log.close()
                raise AssertionError("%s exited with %s at start:\n%s"
                                     % (self.name, code, self.log_tail()))
            try:
                if self._ready():
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("%s did not answer within %.0fs:\n%s"
                                     % (self.name, START_TIMEOUT, self.log_tail()))
            time.sleep(0.05)

    def stop(self, kill=False):
        """Stops the server (SIGTERM, or SIGKILL with kill=True); data stays."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._log.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


class Influx1(_Server):
    """InfluxDB 1.6 with a database created (self.database). With
    auth=True, HTTP auth is on and self.username / self.password is an admin
    (so a wrong password gives a real 401). With tls=TLS(...), it serves
    HTTPS only (https-enabled) with that certificate; self.url is https://
    and the helpers here check its chain against tls.ca_file."""
    name = "influxd"

    def __init__(self, testcase, database="powermeter", auth=False, start=True, tls=None):
        common.require_tool("influxd")
        super().__init__(testcase)
        self.tls = tls
        self._ssl = None
        if tls:
            self.url = "https://%s:%d" % (self.host, self.port)
            self._ssl = ssl.create_default_context(cafile=tls.ca_file)
            # the chain only: a test may give a certificate for another
            # name on purpose, and this client knows whom it started
            self._ssl.check_hostname = False
        self.database = database
        self.auth = auth
        self.username = "pmadmin" if auth else None
        self.password = "s3cret pass&word" if auth else None
        self.rpc_port = common.free_port()
        self.conf_path = os.path.join(self.dir, "influxdb.conf")
        self._write_conf()
        if start:
            self.start()
            self._setup()

    def _write_conf(self):
        d = self.dir
        conf = """reporting-disabled = true
bind-address = "127.0.0.1:%(rpc)d"

[meta]
  dir = "%(d)s/meta"
  logging-enabled = false

[data]
  dir = "%(d)s/data"
  wal-dir = "%(d)s/wal"
  query-log-enabled = false
  index-version = "inmem"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%(port)d"
  auth-enabled = %(auth)s
  log-enabled = false
  pprof-enabled = false
%(https)s
[logging]
  level = "warn"
  suppress-logo = true
""" % {"rpc": self.rpc_port, "d": d, "port": self.port,
       "auth": "true" if self.auth else "false",
       "https": ('  https-enabled = true\n  https-certificate = "%s"\n'
                 '  https-private-key = "%s"\n' % (self.tls.certificate, self.tls.private_key)
                 if self.tls else "")}
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def _argv(self):
        return [common.require_tool("influxd"), "run", "-config", self.conf_path]

    def _ready(self):
        status, _ = _http("GET", self.url + "/ping", timeout=2.0, context=self._ssl)
        return status == 204

    def _setup(self):
        if self.auth:
            self.query("CREATE USER \"%s\" WITH PASSWORD '%s' WITH ALL PRIVILEGES"
                       % (self.username, self.password), method="POST", db=None)
        if self.database:
            self.query('CREATE DATABASE "%s"' % self.database, method="POST", db=None)

    def query(self, q, db="", method="GET", epoch="ms"):
        """The JSON answer of one InfluxQL query; raises on an error."""
        params = {"q": q, "epoch": epoch}
        if db == "":
            db = self.database
        if db:
            params["db"] = db
        if self.auth:
            params["u"] = self.username
            params["p"] = self.password
        url = self.url + "/query?" + urllib.parse.urlencode(params)
        if method == "POST":
            status, body = _http("POST", url, body=b"", context=self._ssl)
        else:
            status, body = _http("GET", url, context=self._ssl)
        if status != 200:
            raise AssertionError("influxd query %r: HTTP %d %s" % (q, status, body[:300]))
        doc = json.loads(body)
        for res in doc.get("results", []):
            if "error" in res:
                raise AssertionError("influxd query %r: %s" % (q, res["error"]))
        return doc

    def write(self, lines, precision="ms", db=None):
        """Writes line protocol directly (for seeding a test); HTTP status."""
        params = {"db": db or self.database, "precision": precision}
        if self.auth:
            params["u"] = self.username
            params["p"] = self.password
        status, _ = _http("POST", self.url + "/write?" + urllib.parse.urlencode(params),
                          body=lines.encode() if isinstance(lines, str) else lines,
                          context=self._ssl)
        return status

    def points(self, measurement="powermeter", db=None, where=""):
        """Every point of 'measurement' as dicts of column -> value, tags
        included (strings), "time" in Unix ms, sorted by time."""
        q = 'SELECT * FROM "%s"%s' % (measurement.replace('"', '\\"'),
                                     (" WHERE " + where) if where else "")
        doc = self.query(q, db=db or self.database)
        rows = []
        for res in doc.get("results", []):
            for series in res.get("series", []) or []:
                cols = series["columns"]
                tags = series.get("tags", {})
                for values in series["values"]:
                    row = dict(zip(cols, values))
                    row.update(tags)
                    rows.append(row)
        rows.sort(key=lambda r: r["time"])
        return rows

    def write_stats(self):
        """influxd's own write counters (/debug/vars "write" and "httpd"
        values, merged): "pointReq" counts every point it was sent (a
        point sent twice counts twice), "pointsWrittenOK" those it took."""
        status, body = _http("GET", self.url + "/debug/vars", context=self._ssl)
        if status != 200:
            raise AssertionError("influxd /debug/vars: HTTP %d" % status)
        out = {}
        for key, v in json.loads(body).items():
            if key == "write" or key.startswith("httpd"):
                out.update(v.get("values", {}))
        return out

    def count(self, measurement="powermeter", field="current", db=None):
        """Number of stored points of 'measurement' (0 when none)."""
        doc = self.query('SELECT count("%s") FROM "%s"' % (field, measurement),
                         db=db or self.database)
        for res in doc.get("results", []):
            for series in res.get("series", []) or []:
                return series["values"][0][1]
        return 0


class Victoria(_Server):
    """Single-node VictoriaMetrics. Its /api/v2/write takes any token (VM
    checks none unless -httpAuth.* is set); extra_args go to its command
    line."""
    name = "victoria-metrics"

    def __init__(self, testcase, extra_args=(), start=True):
        common.require_tool("victoria-metrics")
        super().__init__(testcase)
        self.extra_args = list(extra_args)
        # rows accepted by earlier runs of this server: its counter
        # vm_rows_inserted_total starts again at 0 with every start
        self.rows_before = 0
        if start:
            self.start()

    def stop(self, kill=False):
        """As _Server.stop(), remembering how many rows this run accepted
        (a SIGKILL may lose some of them: settle() would then wait in vain,
        so a killed run adds nothing)."""
        if self.running() and not kill:
            self.rows_before += self.metric('vm_rows_inserted_total{type="influx"}')
        super().stop(kill=kill)

    def _argv(self):
        return [common.require_tool("victoria-metrics"),
                "-httpListenAddr=%s:%d" % (self.host, self.port),
                "-storageDataPath=" + os.path.join(self.dir, "data"),
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
                "-search.latencyOffset=0s",
                "-search.disableCache"] + self.extra_args

    def _ready(self):
        status, _ = _http("GET", self.url + "/health", timeout=2.0)
        return status == 200

    def flush(self):
        """Makes every accepted sample visible to queries and exports."""
        status, body = _http("GET", self.url + "/internal/force_flush")
        if status != 200:
            raise AssertionError("VM force_flush: HTTP %d %s" % (status, body[:200]))

    def export(self, match='{__name__=~"powermeter.*"}', start=None, end=None):
        """Raw samples of every matching series (after flush())."""
        self.flush()
        params = [("match[]", match)]
        if start is not None:
            params.append(("start", str(start)))
        if end is not None:
            params.append(("end", str(end)))
        status, body = _http("POST", self.url + "/api/v1/export",
                             body=urllib.parse.urlencode(params).encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=60.0)
        if status != 200:
            raise AssertionError("VM export: HTTP %d %s" % (status, body[:300]))
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def settle(self, timeout=30.0):
        """Waits until every row VM has accepted (vm_rows_inserted_total,
        influx, over every run of the server) is visible to exports: VM
        answers a write before the rows are searchable, and
        /internal/force_flush does not wait for them. Returns the number of
        rows."""
        def caught_up():
            inserted = self.rows_before + self.metric('vm_rows_inserted_total{type="influx"}')
            seen = sum(len(s["timestamps"]) for s in self.export('{__name__=~".+"}'))
            return (True, seen) if seen >= inserted else None
        return common.wait_for(caught_up, timeout=timeout, interval=0.1,
                               what="VictoriaMetrics to make its rows searchable")[1]

    def samples(self, match='{__name__=~"powermeter.*"}'):
        """Every exported sample as (labels dict, timestamp ms, value), one
        tuple per stored sample (duplicates show up twice)."""
        out = []
        for s in self.export(match):
            for ts, v in zip(s["timestamps"], s["values"]):
                out.append((s["metric"], ts, v))
        return out

    def count(self, match='{__name__="powermeter_current"}'):
        """Points stored: samples of the field every point has (each field
        of a point is a series of its own in VictoriaMetrics)."""
        return sum(len(s["timestamps"]) for s in self.export(match))

    def metric(self, name):
        """Sum of VM's own /metrics lines whose name (with labels) starts
        with 'name', e.g. 'vm_http_requests_total{path="/api/v2/write"'."""
        status, body = _http("GET", self.url + "/metrics")
        if status != 200:
            raise AssertionError("VM /metrics: HTTP %d" % status)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name):
                try:
                    total += float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
        return total
