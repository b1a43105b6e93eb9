#!/usr/bin/env python3
"""trackd's HTTP front against hostile and broken clients: fuzzed fields, malformed HTTP,
connection floods.

Whatever a client sends, trackd must not crash (the sanitizer build's exit status at SIGTERM
is checked by the fixture), must not answer 5xx to the client's own mistake (MLflow's client
retries 500/502/503/504 for about a minute: rest_utils _TRANSIENT_FAILURE_RESPONSE_CODES),
must not hang, and must keep serving everyone else. Crashes of trackd or of its client in
the middle of an upload, umask and full disk are in mlflow_hostile_disk.py.

Run:  TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/mlflow_hostile.py -v
HOSTILE_SEED=N replays another fuzz run (the seed is printed); HOSTILE_ROUNDS=N sets the
requests per route (default 300).

Choices where HTTP leaves one open, asserted as such:
- a request that is valid HTTP, only large (a 100 KB header line, 2000 headers), is answered
  normally; past libmicrohttpd's 256 KiB per connection it is 431 or 414 (its HTML page);
- past the connection limits (64 in all, 32 from one address) a new connection is closed at
  once; after the flood is gone a new one is served at once;
- a client silent mid-request (half a line, half a body, a TLS hello, blank lines, which
  HTTP lets a server skip) is waited for, then closed at HTTP_IDLE_SECONDS (30 s: that test
  takes that long);
- answers made by libmicrohttpd itself (400 malformed, 431, 414, 505) are HTML, not JSON: the
  client maps them by status; every answer trackd makes is a JSON {"error_code", "message"}.
"""

import json
import os
import random
import re
import socket
import sys
import time
import unittest
import urllib.parse
import http.client

from mlflow_replay import API, ART, NoAnswer, ReplayCase, Resp

DAEMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "daemon")
SEED = int(os.environ.get("HOSTILE_SEED", "20261203"))
ROUNDS = int(os.environ.get("HOSTILE_ROUNDS", "300"))


# ---- raw HTTP ---------------------------------------------------------------------------------

def parse_answers(buf):
    """The complete HTTP/1.x answers at the start of buf: [(status, headers, body)], rest."""
    out = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf
        lines = buf[:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise AssertionError(f"not an HTTP answer: {buf[:200]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(m.group(1))
        n = 0 if status in (100, 204, 304) else int(headers.get("content-length", "0"))
        if len(buf) < end + 4 + n:
            return out, buf
        out.append((status, headers, buf[end + 4:end + 4 + n]))
        buf = buf[end + 4 + n:]


class Exchange:
    """What came back on one raw connection: the answers, whether it was closed, how long."""

    def __init__(self, answers, closed, elapsed, rest):
        self.answers, self.closed, self.elapsed, self.rest = answers, closed, elapsed, rest

    @property
    def statuses(self):
        return [a[0] for a in self.answers]

    def __str__(self):
        shown = [(s, b[:200]) for s, _, b in self.answers]
        return (f"answers {shown}, closed={self.closed}, {self.elapsed:.2f}s, "
                f"left {self.rest[:100]!r}")


def connect(port, src="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def exchange(port, data, want=1, timeout=5, shut=False, sock=None):
    """Sends data on a new connection (or sock) and reads until `want` answers came (0: the
    first, even a 100 Continue), the server closed, or timeout seconds passed (then
    closed=False and fewer answers: the server hung)."""
    s = sock or connect(port, timeout=timeout)
    t = time.monotonic()
    buf, answers, closed = b"", [], False
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before all was sent: what it answered is still readable
        while len(answers) < max(want, 1):
            left = timeout - (time.monotonic() - t)
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
            got, buf = parse_answers(buf)
            # want=0: stop at the first answer, 100 Continue included
            answers += [a for a in got if a[0] != 100 or want == 0]
    finally:
        s.close()
    return Exchange(answers, closed, time.monotonic() - t, buf)


def post_bytes(path, body, extra=b"", method=b"POST"):
    return (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body) + extra +
            b"\r\n" + body)


# ---- the fuzz's grammar -----------------------------------------------------------------------

class Raw:
    """JSON text put into a body as is (what json.dumps cannot or will not write)."""

    def __init__(self, text):
        self.text = text if isinstance(text, bytes) else text.encode()

    def __repr__(self):
        return f"Raw({self.text[:60]!r}{'...' if len(self.text) > 60 else ''})"


def enc(v):
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        return b"{" + b",".join(json.dumps(k).encode() + b":" + enc(x) for k, x in v.items()) + b"}"
    if isinstance(v, list):
        return b"[" + b",".join(enc(x) for x in v) + b"]"
    return json.dumps(v).encode()


DEEP = 10000
HOSTILE = [  # values of any type, for any field, that jansson parses (a handler sees them)
    0, -1, 1, 1.5, -0.0, True, False, None, [], {}, [1, "a"], {"a": 1}, "", " ", "x",
    "-1", "0", "1e3", "NaN", "Infinity", "-Infinity", "nan", "inf", "0x10", "1_000",
    2**31, 2**63 - 1, -2**63, -9.3e18, Raw("1e-400"), Raw("1e308"), Raw("-0"),
    Raw('"\\u0000"'), Raw('"a\\u0000b"'), Raw('"\\"\'`;--"'), "\u00e9\u2028\U0001F600",
    "a" * 100_000, "\u00e9" * 50_000, "/" * 5000, "../" * 300, "%2e%2e/" * 100,
    Raw("[" * 1000 + "]" * 1000), [None] * 2000, [{"key": "k", "value": "v"}] * 3, [[[]]],
]
POISON = [  # values that make the whole body fail to parse
    2**64, Raw("1e400"), Raw("-1e400"), Raw("99999999999999999999"),
    Raw("-99999999999999999999"), Raw("NaN"), Raw("Infinity"), Raw("-Infinity"),
    Raw("0.1e+999"), Raw('"\\ud800"'), Raw('"\\udc00x"'), Raw('"\\ud800\\u0000"'),
    Raw(b'"\xff\xfe"'), Raw(b'"\xc0\xaf"'), Raw(b'"\xed\xa0\x80"'), Raw(b'"a\x00b"'),
    Raw("[" * DEEP + "]" * DEEP), Raw('{"a":' * DEEP + "1" + "}" * DEEP),
]


def hostile(rng):
    return rng.choice(POISON) if rng.random() < 0.12 else rng.choice(HOSTILE)


FILTER_TOKENS = [
    "name", "attributes.name", "attributes.status", "attribute.run_name", "metrics.acc",
    "metric.`a b`", "params.lr", "tags.mlflow.runName", "tags.`x`", "run_id", "=", "!=", "<",
    ">=", "LIKE", "ILIKE", "IN", "NOT", "AND", "OR", "(", ")", "'x'", "'%'", "'_'", "'%%%'",
    "'\\'", "'", '"', "`", "1", "-1", "1e400", "NaN", "('a','b')", "()", "IS NULL", ",", "%",
    "\\", "'" + "a" * 3000 + "'", "\u00e9", "\x00",
]


def garbage_text(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return " ".join(rng.choice(FILTER_TOKENS) for _ in range(rng.randrange(0, 12)))
    if kind == 1:
        return "".join(chr(rng.randrange(1, 0x800)) for _ in range(rng.randrange(0, 40)))
    if kind == 2:
        return rng.choice(["", "x", "a" * 100_000, "-1", "%00", "eyJ9", "bm9wZQ==", "=" * 10])
    return rng.choice(FILTER_TOKENS)


class Fuzz:
    """Requests for one route: valid fields for it (an existing run, model...), then one to
    three of them replaced by a hostile value, dropped, or joined by unknown ones; now and
    then the whole body is something else entirely."""

    def __init__(self, rng, ids):
        self.rng, self.ids = rng, ids

    def kv(self):
        return [{"key": "fz", "value": "v"}]

    def base(self, method, route):
        run, exp = self.ids["run"], self.ids["exp"]
        model = {"name": self.ids["model"]}
        return {
            "experiments/get-by-name": {"experiment_name": "fuzz"},
            "experiments/create": {"name": "fz-%d" % self.rng.randrange(10**9),
                                   "artifact_location": "", "tags": self.kv()},
            "experiments/get": {"experiment_id": exp},
            "experiments/search": {"max_results": 10, "view_type": "ACTIVE_ONLY",
                                   "filter": "name LIKE 'f%'", "order_by": ["name ASC"],
                                   "page_token": ""},
            "runs/create": {"experiment_id": exp, "user_id": "fz", "start_time": 1,
                            "tags": self.kv(), "run_name": "fz"},
            "runs/get": {"run_id": run, "run_uuid": run},
            "runs/update": {"run_id": run, "run_uuid": run, "status": "RUNNING",
                            "end_time": 2, "run_name": "fz"},
            "runs/delete": {"run_id": self.ids["victim"]},
            "runs/restore": {"run_id": self.ids["victim"]},
            "runs/log-parameter": {"run_id": run, "run_uuid": run,
                                   "key": "p%d" % self.rng.randrange(10**6), "value": "v"},
            "runs/log-metric": {"run_id": run, "run_uuid": run, "key": "m", "value": 1.0,
                                "timestamp": 1, "step": 0},
            "runs/set-tag": {"run_id": run, "run_uuid": run, "key": "t", "value": "v"},
            "runs/delete-tag": {"run_id": run, "key": "t"},
            "runs/log-batch": {"run_id": run,
                               "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 1}],
                               "params": [{"key": "b%d" % self.rng.randrange(10**6),
                                           "value": "v"}],
                               "tags": self.kv()},
            "runs/search": {"experiment_ids": [exp], "filter": "metrics.m > 0",
                            "run_view_type": "ACTIVE_ONLY", "max_results": 10,
                            "order_by": ["metrics.m DESC"], "page_token": ""},
            "runs/log-model": {"run_id": run, "model_json": json.dumps(
                {"artifact_path": "m", "flavors": {}, "run_id": run})},
            "metrics/get-history": {"run_id": run, "run_uuid": run, "metric_key": "m",
                                    "max_results": 100, "page_token": ""},
            "registered-models/create": {"name": "fz-%d" % self.rng.randrange(10**9),
                                         "tags": self.kv(), "description": "d"},
            "registered-models/get": model,
            "registered-models/search": {"filter": "name LIKE 'fz%'", "max_results": 10,
                                         "order_by": ["name"], "page_token": ""},
            "registered-models/alias": dict(model, alias="champ", version="1")
            if method == "POST" else dict(model, alias="champ"),
            "model-versions/create": dict(model, source=self.ids["source"], run_id=run,
                                          tags=self.kv(), run_link="", description="d"),
            "model-versions/get": dict(model, version="1"),
            "model-versions/search": {"filter": "name='%s'" % self.ids["model"],
                                      "max_results": 10, "order_by": ["version_number DESC"],
                                      "page_token": ""},
        }[route]

    def value(self):
        rng = self.rng
        if rng.random() < 0.15:
            return garbage_text(rng)
        if rng.random() < 0.15:  # a list of records with hostile members
            return [{"key": hostile(rng), "value": hostile(rng), "timestamp": hostile(rng),
                     "step": hostile(rng)}
                    for _ in range(rng.randrange(1, 4))]
        return hostile(rng)

    def body(self, method, route):
        rng = self.rng
        if rng.random() < 0.08:
            return rng.choice([
                b"", b"null", b"[]", b"1", b'"s"', b"{", b'{"a":', b"{}" * 3, b"\xff\xfe{}",
                b'{"run_id": "x", "run_id": "y"}', b"[" * DEEP + b"]" * DEEP,
                b'{"a":' * DEEP + b"1" + b"}" * DEEP, b"{\x00}", b'{"\xff": 1}',
                b'{"\\u0000": 1}', b"\xef\xbb\xbf{}", b" " * 100_000 + b"{}"])
        fields = self.base(method, route)
        for _ in range(rng.randrange(1, 4)):
            op = rng.random()
            if op < 0.7 and fields:
                fields[rng.choice(list(fields))] = self.value()
            elif op < 0.85 and fields:
                del fields[rng.choice(list(fields))]
            else:
                fields[rng.choice(["", "x", "\u00e9", "run_id ", "a" * 1000])] = self.value()
        return enc(fields)

    def query(self, route):
        """A query string: the route's fields, some values hostile (as text), some raw
        garbage that is not valid percent-encoding, repeated and empty keys."""
        rng = self.rng
        parts = []
        for k, v in self.base("GET", route).items():
            if rng.random() < 0.5:
                v = hostile(rng)
                v = v.text.decode("latin-1") if isinstance(v, Raw) else \
                    (v if isinstance(v, str) else json.dumps(v))
                v = v[:20_000]
            for _ in range(rng.choice([1] * 8 + [2, 3])):
                parts.append(urllib.parse.quote(k) + "=" + urllib.parse.quote(str(v), safe=""))
        for _ in range(rng.randrange(0, 4)):
            parts.insert(rng.randrange(len(parts) + 1), rng.choice([
                "%zz", "%", "%0", "%00", "=", "=v", "&", "k", "%ff%fe=%c0%af", "+%2", "a=%00b",
                "run_id=%00", "max_results=%2d1", "name%00=x", ";", "%25%", "?"]))
        if rng.random() < 0.05:
            parts += ["k%d=v" % i for i in range(1200)]  # past HTTP_MAX_ARGS
        # under libmicrohttpd's 256 KiB a connection may use (past it: its own 414, HTML)
        return "&".join(parts)[:60_000]

    def artifact_path(self):
        rng = self.rng
        root = self.ids["root"]
        tail = rng.choice([
            "f.txt", "a/b/c.bin", "", "/", "..", "%2e%2e/x", "%00", "a%00b", "%zz", "%",
            "x" * 5000, "a/" * 600 + "f", "%252e%252e/x", "\\x", "#x", "a//b", "./a",
            urllib.parse.quote(garbage_text(rng)[:300], safe="/"), "%ff%fe", "~", "a%20b", "a+b"])
        prefix = rng.choice([root + "/", root + "/", "", "0/", "x/", f"{self.ids['exp']}/",
                             f"{self.ids['exp']}/{'0' * 32}/artifacts/", "99999999999999999999/"])
        return prefix + tail


def route_table():
    """(method, path) of every route in daemon/mlflow_*.c's tables."""
    found = set()
    for name in sorted(os.listdir(DAEMON)):
        if not (name.startswith("mlflow_") and name.endswith(".c")):
            continue
        with open(os.path.join(DAEMON, name)) as f:
            text = f.read()
        for table in re.findall(r"http_route ml_\w+_routes\[\] = \{(.*?)\n\};", text, re.S):
            found |= set(re.findall(r'\{"([A-Z]+)", "([^"]+)"', table))
    return found


ARTIFACT_ROUTES = {("PUT", "artifacts/"), ("GET", "artifacts/"), ("GET", "artifacts"),
                   ("DELETE", "artifacts/"), ("POST", "mpu/create/"), ("POST", "mpu/create")}


class HostileFuzz(ReplayCase):

    def setUp(self):
        exp = self.set_experiment("fuzz")
        run, info = self.start_run(exp)
        victim, _ = self.start_run(exp)
        self.log_model_file(exp, run, "m")
        self.post("registered-models/create", {"name": "fz-model"})
        self.post("model-versions/create", {"name": "fz-model", "run_id": run,
                                            "source": info["info"]["artifact_uri"] + "/m"})
        self.post("registered-models/alias", {"name": "fz-model", "alias": "champ",
                                              "version": "1"})
        self.ids = {"exp": exp, "run": run, "victim": victim, "model": "fz-model",
                    "source": info["info"]["artifact_uri"] + "/m",
                    "root": f"{exp}/{run}/artifacts"}
        self.conn = None

    def tearDown(self):
        if self.conn:
            self.conn.close()

    def send(self, method, target, body):
        """One request on a kept-alive connection (the fuzz's thousands of requests would
        otherwise spend their time in connect); reconnects after the server closed it."""
        h = {"Host": "127.0.0.1", "User-Agent": "mlflow-hostile"}
        if body is not None:
            h["Content-Type"] = "application/json" if method != "PUT" else \
                "application/octet-stream"
        for attempt in range(2):
            if not self.conn:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.trackd.port, timeout=30)
            try:
                self.conn.request(method, target, body=body, headers=h)
                r = self.conn.getresponse()
                resp = Resp(method, target, r.status, r.getheaders(), r.read())
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                return resp
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                # a kept-alive connection the server closed in between: once more, fresh
                if attempt or isinstance(e, socket.timeout):
                    raise NoAnswer(f"{method} {target[:200]}: no answer ({e!r})") from e

    def verdict(self, route, resp):
        """None when the answer is one trackd may give; else what is wrong with it."""
        method, path = route
        if resp.status == 200:
            if path in ("artifacts/",) and method == "GET":
                return None  # a download: the file's bytes
            return None if isinstance(resp.json, dict) else "200 without a JSON object"
        if resp.status == 501 and path.startswith("mpu/create"):
            return None if isinstance(resp.json, dict) else "501 without a JSON object"
        if not 400 <= resp.status < 500:
            return f"status {resp.status} (not 200 or 4xx)"
        j = resp.json
        if not isinstance(j, dict) or not isinstance(j.get("error_code"), str) or \
                not isinstance(j.get("message"), str):
            return "4xx without a JSON {error_code, message}"
        return None

    def test_fuzz_every_route(self):
        table = route_table() if os.path.isdir(DAEMON) else None
        routes = sorted(ARTIFACT_ROUTES | {
            (m, p) for m, p in [
                ("GET", "experiments/get-by-name"), ("POST", "experiments/create"),
                ("GET", "experiments/get"), ("POST", "experiments/search"),
                ("GET", "experiments/search"), ("POST", "runs/create"), ("GET", "runs/get"),
                ("POST", "runs/update"), ("POST", "runs/delete"), ("POST", "runs/restore"),
                ("POST", "runs/log-parameter"), ("POST", "runs/log-metric"),
                ("POST", "runs/set-tag"), ("POST", "runs/delete-tag"), ("POST", "runs/log-batch"),
                ("POST", "runs/search"), ("POST", "runs/log-model"),
                ("GET", "metrics/get-history"), ("POST", "registered-models/create"),
                ("GET", "registered-models/get"), ("GET", "registered-models/search"),
                ("POST", "registered-models/alias"), ("GET", "registered-models/alias"),
                ("DELETE", "registered-models/alias"), ("POST", "model-versions/create"),
                ("GET", "model-versions/get"), ("GET", "model-versions/search")]})
        # the artifact routes last, DELETE of them at the very end (it may take the model
        # version's files, which model-versions/create needs)
        routes.sort(key=lambda rt: (rt in ARTIFACT_ROUTES, rt == ("DELETE", "artifacts/"), rt))
        if table is not None:
            self.assertEqual(set(routes), table,
                             "the fuzz's routes differ from daemon/mlflow_*.c's tables: "
                             "add the new route's fields to Fuzz.base")
        print(f"\nmlflow_hostile: fuzz seed {SEED} (HOSTILE_SEED), {ROUNDS} requests per route, "
              f"{len(routes)} routes", file=sys.stderr)
        rng = random.Random(SEED)
        fz = Fuzz(rng, self.ids)
        bad, seen, t0 = [], set(), time.monotonic()
        for route in routes:
            method, path = route
            for i in range(ROUNDS):
                if route in ARTIFACT_ROUTES:
                    base = "/api/2.0/mlflow-artifacts/" + path
                    if path == "artifacts":
                        extra = rng.choice(["", "", "&path=x", "&%zz", "&path", "&=&&"])
                        target, body = base + "?path=" + fz.artifact_path() + extra, None
                    else:
                        target = base + ("" if path == "mpu/create" else fz.artifact_path())
                        body = None if method in ("GET", "DELETE") else \
                            (rng.randbytes(rng.choice([0, 1, 100, 70_000])) if method == "PUT"
                             else fz.body("POST", "runs/log-batch"))
                elif method == "GET":
                    target, body = API + path + "?" + fz.query(path), None
                else:
                    target, body = API + path, fz.body(method, path)
                try:
                    resp = self.send(method, target, body)
                    why = self.verdict(route, resp)
                except NoAnswer as e:
                    resp, why = None, str(e)
                if why:
                    key = (method, path, why)
                    if key not in seen:
                        seen.add(key)
                        bad.append(f"{method} {path} request {i}: {why}\n  sent "
                                   f"{target[:300]!r} body {(body or b'')[:300]!r}\n  got "
                                   f"{resp if resp else '(nothing)'}")
                if not self.trackd.alive():
                    self.fail(f"trackd died at {method} {target[:300]!r} body "
                              f"{(body or b'')[:300]!r} (seed {SEED})\n" + "\n".join(bad) +
                              self.trackd.log())
        print(f"mlflow_hostile: fuzz done in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        self.assertEqual(self.http.request("GET", "/health").status, 200)
        self.ok(self.http.api("GET", "runs/get", {"run_id": self.ids["run"]}))
        self.assertFalse(bad, f"seed {SEED}: {len(bad)} kinds of wrong answers:\n" +
                         "\n".join(bad[:25]))


class MalformedHttp(ReplayCase):
    """Broken HTTP on raw sockets. Each: an HTTP error status or a closed connection within a
    few seconds, never a 5xx from trackd (505 is libmicrohttpd's for an HTTP version it does
    not speak), and trackd still serving afterwards."""

    def tearDown(self):
        self.assertTrue(self.trackd.alive(), self.trackd.log())
        r = self.http.request("GET", "/health", timeout=5)
        self.assertEqual(r.status, 200, str(r))

    def send(self, data, want=1, timeout=5, **kw):
        return exchange(self.trackd.port, data, want=want, timeout=timeout, **kw)

    def refused(self, x, statuses, what):
        """Answered with one of statuses (then closed), or closed without an answer."""
        self.assertLess(x.elapsed, 5, f"{what}: no answer and not closed in 5 s: {x}")
        if x.answers:
            self.assertIn(x.statuses[0], statuses, f"{what}: {x}")
        else:
            self.assertTrue(x.closed, f"{what}: {x}")

    def test_big_but_valid_headers_are_served(self):
        for what, extra in (("a 100 KB header line", b"X-Big: " + b"a" * 100_000 + b"\r\n"),
                            ("2000 headers",
                             b"".join(b"X-H%d: v\r\n" % i for i in range(2000)))):
            with self.subTest(what):
                x = self.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n")
                self.assertEqual(x.statuses, [200], f"{what}: {x}")
                self.assertLess(x.elapsed, 3, f"{what}: {x}")

    def test_headers_past_the_memory_limit(self):
        for what, extra in (("a 300 KB header line", b"X-Big: " + b"a" * 300_000 + b"\r\n"),
                            ("20000 headers",
                             b"".join(b"X-H%d: v\r\n" % i for i in range(20000)))):
            with self.subTest(what):
                x = self.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n")
                self.refused(x, (431, 413), what)

    def test_huge_request_line(self):
        for what, target in (("1 MB", b"/health?" + b"a" * 1_000_000),
                             ("150 KB of escapes", API.encode() + b"runs/get?run_id=" +
                              b"%5B" * 50_000)):
            with self.subTest(what):
                x = self.send(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                self.refused(x, (414, 431, 400), what)

    def test_bad_methods_and_versions(self):
        cases = [
            ("unknown method", b"FOO /health HTTP/1.1\r\nHost: x\r\n\r\n", (405,)),
            ("control byte in method", b"G\x01T /health HTTP/1.1\r\nHost: x\r\n\r\n", (400, 405)),
            ("unknown method on an API route",
             b"BREW " + API.encode() + b"runs/get HTTP/1.1\r\nHost: x\r\n\r\n", (405,)),
            ("HTTP/0.9", b"GET /health\r\n", (400,)),
            ("HTTP/0.9 and a blank line", b"GET /health\r\n\r\n", (400,)),
            ("HTTP/2.0 request line", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", (505,)),
            ("a NUL in the request line", b"GET /hea\0lth HTTP/1.1\r\nHost: x\r\n\r\n",
             (400, 404)),
            ("no space in the request line", b"GET/health\r\nHost: x\r\n\r\n", (400,)),
            ("a header without a colon", b"GET /health HTTP/1.1\r\nHost x\r\n\r\n", (400,)),
        ]
        for what, data, statuses in cases:
            with self.subTest(what):
                x = self.send(data)
                self.refused(x, statuses, what)
                if x.answers and x.statuses[0] == 405:
                    self.assertEqual(json.loads(x.answers[0][2])["error_code"],
                                     "ENDPOINT_NOT_FOUND", str(x))

    def test_content_length_longer_than_the_body(self):
        run_id, _ = self.start_run("0")
        body = json.dumps({"run_id": run_id, "key": "lie", "value": "v"}).encode()
        head = (b"POST " + (API + "runs/log-parameter").encode() + b" HTTP/1.1\r\n"
                b"Host: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n")
        x = self.send(head % (len(body) + 1000) + body, shut=True)
        self.refused(x, (400,), "Content-Length 1000 past the body, then EOF")
        self.assertEqual(self.get_run(run_id)["data"].get("params", []), [])

    def test_content_length_shorter_than_the_body(self):
        """The body ends where Content-Length says; the rest is the next request's start
        (garbage here): the first is answered, then the connection refused or closed."""
        exp = json.dumps({"name": "hostile short"}).encode()
        x = self.send(post_bytes(API + "experiments/create", exp) + b"NOT HTTP AT ALL\r\n\r\n",
                      want=2)
        self.assertGreaterEqual(len(x.answers), 1, str(x))
        self.assertEqual(x.statuses[0], 200, str(x))
        self.assertIn(x.statuses[1:], ([], [400]), str(x))
        self.assertTrue(x.closed or len(x.answers) == 2, str(x))

    # Two Content-Length headers: the front refuses the request (400) and closes, so the
    # rest is never read as a second request (request smuggling; RFC 9112 6.3).
    def test_two_content_lengths(self):
        body = b'{}GET /version HTTP/1.1\r\nHost: x\r\n\r\n'
        data = (b"POST " + (API + "experiments/search").encode() + b" HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
        x = self.send(data, want=2, timeout=3)
        self.assertEqual(x.statuses[:1], [400], f"two different Content-Lengths: {x}")
        self.assertEqual(len(x.answers), 1, f"the body was read as a second request: {x}")

    def test_bad_chunk_size(self):
        for size in (b"zz", b"-1", b"fffffffffffffffffffff", b""):
            with self.subTest(size=size):
                data = (b"POST " + (API + "experiments/search").encode() + b" HTTP/1.1\r\n"
                        b"Host: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n{}\r\n0\r\n\r\n")
                self.refused(self.send(data), (400, 413), f"chunk size {size!r}")

    def expect_refused(self, method, target, length, what):
        """Expect: 100-continue with a Content-Length over the limit: the refusal comes
        before any 100 Continue, so the client never sends the body."""
        data = (method + b" " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % length)
        x = self.send(data, want=0, timeout=3)
        self.assertTrue(x.answers, f"{what}: nothing in 3 s (waiting for the body?): {x}")
        self.assertEqual(x.statuses[0], 413, f"{what}: {x} (100 means: send the body)")
        j = json.loads(x.answers[0][2])
        self.assertEqual(j["error_code"], "INVALID_PARAMETER_VALUE", str(x))

    def test_expect_continue_over_the_body_limit(self):
        self.expect_refused(b"POST", API + "runs/log-batch", (16 << 20) + 1, "log-batch 16 MiB+1")

    # An artifact PUT's declared Content-Length over ML_ARTIFACT_MAX (64 GiB) is refused at
    # its headers: no 100 Continue, no body read.
    def test_expect_continue_over_the_artifact_limit(self):
        run_id, _ = self.start_run("0")
        self.expect_refused(b"PUT", f"{ART}/0/{run_id}/artifacts/huge.bin", 100 << 30,
                            "artifact PUT of 100 GiB")

    def test_pipelined_posts_are_answered_in_order(self):
        run_id, _ = self.start_run("0")
        reqs = b"".join(post_bytes(API + "runs/log-parameter", json.dumps(
            {"run_id": run_id, "key": f"pipe{i}", "value": str(i)}).encode()) for i in range(2))
        reqs += post_bytes(API + "runs/log-parameter", json.dumps(
            {"run_id": run_id, "key": "pipe0", "value": "changed"}).encode())
        x = self.send(reqs, want=3)
        self.assertEqual(x.statuses, [200, 200, 400], str(x))
        self.assertEqual(json.loads(x.answers[2][2])["error_code"], "INVALID_PARAMETER_VALUE")
        params = self.kv(self.get_run(run_id)["data"].get("params"))
        self.assertEqual(params, {"pipe0": "0", "pipe1": "1"})


class ConnectionFlood(ReplayCase):
    """HTTP_MAX_CONNECTIONS (64) in all and HTTP_MAX_PER_IP (32) from one address: past
    them a new connection is refused at once (libmicrohttpd closes it), those within keep
    being served, and once the flood is gone a new connection is served at once. Loopback
    has 127.0.0.0/8, so the flood comes from several addresses."""

    def probe(self, s, timeout=3):
        """GET /health on s: 200, or None when the server closed it."""
        x = exchange(self.trackd.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                     timeout=timeout, sock=s)
        self.assertTrue(x.answers or x.closed, f"neither answered nor closed: {x}")
        return x.statuses[0] if x.answers else None

    def served_within(self, t, seconds):
        """A new connection's request answered 200 by t + seconds. Each closed connection's
        thread in libmicrohttpd notices the close by itself: until enough have, a new
        connection is still past the limit and closed at once (CI, under load, saw that)."""
        while True:
            try:
                return self.ok(self.http.api("GET", "experiments/get", {"experiment_id": "0"},
                                             timeout=seconds))
            except NoAnswer:
                if time.monotonic() - t > seconds:
                    raise
                time.sleep(0.05)

    def flood(self, n, sources):
        socks = []
        for i in range(n):
            socks.append(connect(self.trackd.port, src=sources[i % len(sources)]))
        time.sleep(0.5)  # accepted (or not) by libmicrohttpd
        return socks

    def test_70_idle_connections(self):
        idle = self.flood(64, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        try:
            extra = self.flood(6, ["127.0.0.5"])
            t = time.monotonic()
            got = [self.probe(s, timeout=2) for s in extra[:3]]
            self.assertEqual(got, [None] * 3, "past 64 connections a new one is closed")
            self.assertLess(time.monotonic() - t, 3)
        finally:
            for s in idle:
                s.close()
        t = time.monotonic()
        left = [self.probe(s) for s in extra[3:]]
        self.assertIn(left, ([None] * 3, [200] * 3), "refused, or queued then served")
        self.served_within(t, 3)
        self.assertLess(time.monotonic() - t, 3, "served promptly once the flood is gone")
        self.assertTrue(self.trackd.alive(), self.trackd.log())

    def test_40_connections_from_one_address(self):
        # an address of its own: the fixture's requests from 127.0.0.1 may still hold a
        # connection in libmicrohttpd's count for a moment after they closed theirs
        mine = self.flood(40, ["127.0.0.7"])
        try:
            got = [self.probe(s, timeout=2) for s in mine[30:]]
            # the first 32 were accepted (two of them probed here), the other 8 closed
            self.assertEqual(got, [200, 200] + [None] * 8)
            other = connect(self.trackd.port, src="127.0.0.6")
            self.assertEqual(self.probe(other), 200, "another address is still served")
        finally:
            for s in mine:
                s.close()
        self.served_within(time.monotonic(), 3)


    def test_stalled_connections_are_closed_at_the_idle_timeout(self):
        """Clients that stop mid-request (or never speak HTTP: a TLS hello, blank lines,
        which HTTP lets a server skip) hold a connection only until HTTP_IDLE_SECONDS (30)."""
        stalls = {
            "TLS hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,
            "blank lines": b"\r\n\n\r\n",
            "half a request line": b"GET /hea",
            "no blank line after the headers": b"GET /health HTTP/1.1\r\nHost: x\r\n",
            "half a body": post_bytes(API + "runs/search", b"{}" + b" " * 98)[:-50],
            "half a chunk": b"PUT " + ART.encode() + b"/0/" + b"a" * 32 + b"/artifacts/x "
                            b"HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab",
        }
        socks = {}
        t0 = time.monotonic()
        for what, data in stalls.items():
            socks[what] = connect(self.trackd.port)
            socks[what].sendall(data)
        closed = {}
        try:
            while len(closed) < len(socks) and time.monotonic() - t0 < 40:
                self.ok(self.http.api("GET", "experiments/get", {"experiment_id": "0"},
                                      timeout=3))
                for what, s in socks.items():
                    if what in closed:
                        continue
                    s.settimeout(0.2)
                    try:
                        data = s.recv(4096)
                    except socket.timeout:
                        continue
                    except ConnectionResetError:
                        data = b""
                    if not data or b"HTTP/1.1 4" in data:
                        closed[what] = round(time.monotonic() - t0, 1)
        finally:
            for s in socks.values():
                s.close()
        self.assertEqual(sorted(closed), sorted(stalls),
                         f"still open after 40 s: {sorted(set(stalls) - set(closed))}")
        self.assertTrue(self.trackd.alive(), self.trackd.log())


if __name__ == "__main__":
    unittest.main()
