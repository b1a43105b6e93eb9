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
    """Sends data on a new connection and reads until `want` answers came, the server closed,
    or timeout seconds passed (then closed=False and fewer answers: the server hung)."""
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
        while len(answers) < want:
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
            answers += [a for a in got if a[0] != 100 or want == 0]
            if want == 0 and got:
                break
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
HOSTILE = [  # values of any type, for any field
    0, -1, 1, 1.5, -0.0, True, False, None, [], {}, [1, "a"], {"a": 1}, "", " ", "x",
    "-1", "0", "1e3", "NaN", "Infinity", "-Infinity", "nan", "inf", "0x10", "1_000",
    2**31, 2**63 - 1, -2**63, 2**64, -9.3e18,
    Raw("1e400"), Raw("-1e400"), Raw("99999999999999999999"), Raw("-99999999999999999999"),
    Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e-400"), Raw("0.1e+999"),
    Raw('"\\u0000"'), Raw('"a\\u0000b"'), Raw('"\\ud800"'), Raw('"\\udc00x"'),
    Raw('"\\ud800\\u0000"'), Raw(b'"\xff\xfe"'), Raw(b'"\xc0\xaf"'), Raw(b'"\xed\xa0\x80"'),
    Raw(b'"a\x00b"'), Raw('"\\"\'`;--"'),
    "a" * 100_000, "\u00e9" * 50_000, "/" * 5000, "../" * 300, "%2e%2e/" * 100,
    Raw("[" * DEEP + "]" * DEEP), Raw('{"a":' * DEEP + "1" + "}" * DEEP),
    [None] * 2000, [{"key": "k", "value": "v"}] * 3, [[[]]],
]
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
            return [{"key": rng.choice(HOSTILE), "value": rng.choice(HOSTILE),
                     "timestamp": rng.choice(HOSTILE), "step": rng.choice(HOSTILE)}
                    for _ in range(rng.randrange(1, 4))]
        return rng.choice(HOSTILE)

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
                fields[rng.choice(["", "x", "\u0000", "run_id ", "a" * 1000])] = self.value()
        return enc(fields)

    def query(self, route):
        """A query string: the route's fields, some values hostile (as text), some raw
        garbage that is not valid percent-encoding, repeated and empty keys."""
        rng = self.rng
        parts = []
        for k, v in self.base("GET", route).items():
            if rng.random() < 0.5:
                v = rng.choice(HOSTILE)
                v = v.text.decode("latin-1") if isinstance(v, Raw) else \
                    (v if isinstance(v, str) else json.dumps(v))
                v = v[:20_000]
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
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


if __name__ == "__main__":
    unittest.main()
