"""A scripted InfluxDB stand-in for answers real servers won't give on
demand: 400 for some lines, 413 above a size, 429/503 with Retry-After,
401/403/404, 500, slow answers, or no server at all. It records every
request (path, headers, gunzipped lines, arrival time) and keeps the lines
of the writes it answered with 2xx as "stored". Standard library only.

    fake = FakeInflux(self)                 # started on a free loopback port
    fake.url                                # http://127.0.0.1:PORT
    fake.queue(Answer(503, retry_after="2"), Answer(503))   # next answers
    fake.refuse_lines(lambda line: "bad" in line)  # 400 for a batch with one
    fake.max_lines = 100                    # 413 for batches above 100 lines
    fake.set_default(Answer(401, body='{"error":"authorization failed"}'))
    fake.stored()                           # lines accepted, in order
    fake.requests                           # every Request seen
    fake.stop(); fake.start()               # down and up on the same port
"""
import gzip
import http.server
import json
import socket
import threading
import time

import common


class Answer:
    """One scripted answer. 'body' a str (JSON for InfluxDB-like errors),
    'retry_after' the Retry-After header's text, 'delay' seconds to wait
    before answering (a slow server), 'store' whether the lines count as
    stored (default: for 2xx)."""

    def __init__(self, status=204, body="", retry_after=None, delay=0.0, store=None,
                 headers=None):
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.delay = delay
        self.store = (200 <= status < 300) if store is None else store
        self.headers = headers or {}

    def __repr__(self):
        return "Answer(%d)" % self.status


class Request:
    def __init__(self, method, path, headers, raw, lines, when):
        self.method = method
        self.path = path
        self.headers = headers
        self.raw = raw              # the body as received (gzipped)
        self.lines = lines          # line protocol, decoded
        self.time = when            # time.monotonic() at arrival
        self.status = None          # what it was answered


class FakeInflux:
    def __init__(self, testcase, start=True):
        self.testcase = testcase
        self.port = common.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.requests = []
        self._stored = []
        self._queue = []
        self.default = Answer(204)
        self.refuse = None          # predicate on a line: 400 for its batch
        self.max_lines = None       # 413 above this many lines
        self.max_bytes = None       # 413 above this many (decoded) bytes
        self.server = None
        self.thread = None
        testcase.addCleanup(self.stop)
        if start:
            self.start()

    # -- script ---------------------------------------------------------

    def queue(self, *answers):
        """Answers for the next requests, in order (before any rule)."""
        with self.lock:
            self._queue.extend(answers)

    def set_default(self, answer):
        with self.lock:
            self.default = answer

    def refuse_lines(self, predicate):
        """A write with a line for which predicate(line) is true is refused
        as a whole with 400, as InfluxDB does on a field type conflict."""
        with self.lock:
            self.refuse = predicate

    def _decide(self, lines, nbytes):
        with self.lock:
            if self._queue:
                return self._queue.pop(0)
            if self.max_lines is not None and len(lines) > self.max_lines:
                return Answer(413, body='{"error":"Request Entity Too Large"}')
            if self.max_bytes is not None and nbytes > self.max_bytes:
                return Answer(413, body='{"error":"Request Entity Too Large"}')
            if self.refuse is not None:
                bad = [l for l in lines if self.refuse(l)]
                if bad:
                    return Answer(400, body=json.dumps(
                        {"error": "unable to parse '%s': bad line" % bad[0][:60]}))
            return self.default

    # -- what happened --------------------------------------------------

    def stored(self):
        """Lines of the writes answered as stored, in arrival order."""
        with self.lock:
            return list(self._stored)

    def writes(self):
        """The write requests seen so far."""
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    def wait_stored(self, n, timeout=30.0):
        return common.wait_for(lambda: len(self.stored()) >= n and self.stored(),
                               timeout=timeout, what="%d stored lines" % n)

    # -- server ---------------------------------------------------------

    def start(self):
        if self.server is not None:
            return self
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, like InfluxDB

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._reply(Answer(204) if self.path.startswith("/ping") else Answer(404))

            def do_POST(self):
                when = time.monotonic()
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                data = raw
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    data = gzip.decompress(raw)
                text = data.decode("utf-8", "replace")
                lines = [l for l in text.split("\n") if l]
                req = Request("POST", self.path, dict(self.headers.items()), raw, lines,
                              when)
                answer = fake._decide(lines, len(data))
                req.status = answer.status
                with fake.lock:
                    fake.requests.append(req)
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.store:
                    with fake.lock:
                        fake._stored.extend(lines)
                self._reply(answer)

            def _reply(self, answer):
                body = answer.body.encode() if isinstance(answer.body, str) else answer.body
                try:
                    self.send_response(answer.status)
                    if answer.retry_after is not None:
                        self.send_header("Retry-After", answer.retry_after)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    if body:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if body:
                        self.wfile.write(body)
                except OSError:
                    pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True
            open_sockets = set()

            def get_request(self):
                sock, addr = super().get_request()
                with fake.lock:
                    self.open_sockets.add(sock)
                return sock, addr

            def shutdown_request(self, request):
                with fake.lock:
                    self.open_sockets.discard(request)
                super().shutdown_request(request)

            def drop_connections(self):
                with fake.lock:
                    socks = list(self.open_sockets)
                    self.open_sockets.clear()
                for sock in socks:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stops listening and closes the open connections: the client sees
        the server gone (connection refused from then on)."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server.drop_connections()
        self.thread.join(5)
        self.server = None
        self.thread = None
