#!/usr/bin/env python3
"""The dashboard's JSON API (/api/track/v1/, README "Dashboard") against a real trackd, with
runs, artifacts, models, traces and feedback made by the real CLI and OTLP exporter's JSON.

Run:  TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/web_api.py -v

What it holds the API to: the shapes of the CLI's --json (a run from the API is the run
`track runs --json` prints, key for key); a filter's syntax error names its field and column;
a curve of 20,000 points in 100 buckets keeps its one spike; a download is the bytes put; the
rating queue shrinks as samples are rated and the scores are the person's (source human, who the
caller); and the edges: CSRF on every write, the Host check on a loopback bind, the cookie only
on the dashboard's routes, HttpOnly/SameSite=Strict/Secure behind TLS, a reader refused, bad ids
and bounds answered 400 naming the field.
"""

import gzip
import http.client
import json
import os
import random
import re
import socket
import subprocess
import tempfile
import unittest
import urllib.parse

from mlflow_replay import Http, ReplayCase
from mlflow_auth import add_user
from otlp_traces import js_export, js_span, sid, tid

V1 = "/api/track/v1/"


class WebCase(ReplayCase):
    def get(self, endpoint, query=None, http=None, headers=None):
        return (http or self.http).request("GET", V1 + endpoint, query=query, headers=headers)

    def post(self, endpoint, body, csrf=True, http=None, headers=None):
        h = dict(headers or {})
        if csrf is True:
            h["X-Track-CSRF"] = self.csrf
        elif csrf:
            h["X-Track-CSRF"] = csrf
        return (http or self.http).request("POST", V1 + endpoint, json_body=body, headers=h)

    def cli_json(self, *args):
        p = self.trackd.cli(*args, "--json")
        self.assertEqual(p.returncode, 0, f"track {' '.join(args)}: {p.stderr}")
        return json.loads(p.stdout)

    def cli_ok(self, *args, stdin=None):
        e = dict(os.environ, TRACK_SERVER=self.trackd.sock, TRACK_NO_AUTOSTART="1")
        p = subprocess.run([os.environ["TRACK_CLI"], *args], env=e, input=stdin,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, f"track {' '.join(args)}: {p.stderr}")
        return p.stdout


class WebLoopback(WebCase):
    """A loopback bind: every request is the owner's; writes still need the CSRF token."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.http.request("GET", V1 + "session")
        cls.csrf = r.json["csrf_token"]

    def start_run(self, exp, name, params=(), parent=None):
        args = ["run", "start", "--experiment", exp, "--name", name]
        if parent:
            args += ["--parent", parent]
        run = self.cli_ok(*args).strip().splitlines()[-1]
        if params:
            self.cli_ok("--run", run, "log-param", *params)
        return run

    # -- session and the page -------------------------------------------------------------------
    def test_session_is_the_owner_with_a_csrf_token(self):
        r = self.get("session")
        self.assertEqual(r.status, 200, str(r))
        s = r.json
        self.assertTrue(s["local"])
        self.assertEqual(s["role"], "admin")
        self.assertRegex(s["csrf_token"], r"^[0-9a-f]{64}$")
        h = r.headers  # (lowercase keys)
        self.assertIn("default-src 'none'", h.get("content-security-policy", ""), str(r))
        self.assertEqual(h.get("x-content-type-options"), "nosniff")
        self.assertEqual(h.get("x-frame-options"), "DENY")

    def test_page_and_assets_are_served_with_the_policy(self):
        r = self.http.request("GET", "/")
        self.assertEqual(r.status, 200, str(r))
        h = r.headers
        self.assertTrue(h["content-type"].startswith("text/html"), str(h))
        self.assertIn("script-src 'self'", h["content-security-policy"])
        self.assertNotIn(b"<script>", r.body, "an inline script in index.html")
        for name, ctype in (("uPlot.iife.min.js", "text/javascript"),
                            ("uPlot.min.css", "text/css"), ("app.js", "text/javascript")):
            a = self.http.request("GET", "/ui/" + name)
            self.assertEqual(a.status, 200, f"/ui/{name}: {a}")
            self.assertTrue(a.headers["content-type"].startswith(ctype), str(a.headers))
            etag = a.headers["etag"]
            again = self.http.request("GET", "/ui/" + name, headers={"If-None-Match": etag})
            self.assertEqual(again.status, 304, f"/ui/{name} with its ETag: {again}")
            self.assertEqual(again.body, b"")
        for bad in ("/ui/../trackd.log", "/ui/%2e%2e/sock", "/ui/", "/ui/nope.js", "/index.html",
                    "/api/track/v1/nothing"):
            r = self.http.request("GET", bad)
            self.assertEqual(r.status, 404, f"{bad}: {r}")

    def test_a_foreign_host_is_refused(self):
        # a page on another site whose name rebinds to 127.0.0.1 is same-origin to the
        # browser: its Host header gives it away
        for host in ("evil.example", "evil.example:%d" % self.trackd.port, "127.0.0.1.evil.example",
                     "[::2]:80"):
            for path in ("/", V1 + "session"):
                r = self.http.request("GET", path, headers={"Host": host})
                self.err(r, 403, "PERMISSION_DENIED")
                self.assertIn("Host", r.json["message"])
        for host in ("[::1", "[::1]x", "[", ":", "", "a" * 400, "127.0.0.1:" + "9" * 300,
                     "localhost.", "LOCALHOST:1", "127.0.0.1\t"):
            r = self.http.request("GET", V1 + "session", headers={"Host": host})
            self.assertIn(r.status, (200, 400, 403), f"Host {host!r}: {r}")
            if host not in ("LOCALHOST:1",):
                self.assertNotEqual(r.status, 200, f"Host {host!r} taken as loopback: {r}")
        for host in ("localhost:%d" % self.trackd.port, "127.0.0.1", "127.1.2.3:9", "[::1]:5000"):
            r = self.http.request("GET", V1 + "session", headers={"Host": host})
            self.assertEqual(r.status, 200, f"Host {host}: {r}")

    def test_another_sites_page_is_refused_on_every_route(self):
        # what a page on evil.example can make the browser send to a loopback trackd
        evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
        body = json.dumps({"name": "from-a-page"}).encode()
        for method, path in (("POST", "/api/2.0/mlflow/experiments/create"),
                             ("POST", "/v1/traces"), ("GET", V1 + "session"),
                             ("POST", V1 + "feedback"), ("GET", "/")):
            r = self.http.request(method, path, body=body if method == "POST" else None,
                                  headers=evil)
            self.err(r, 403, "PERMISSION_DENIED")
            self.assertIn("Origin", r.json["message"])
        # rebinding: same-origin by name, but not a loopback name
        r = self.http.request("POST", "/api/2.0/mlflow/experiments/create", body=body,
                              headers={"Origin": "http://evil.example:%d" % self.trackd.port,
                                       "Host": "evil.example:%d" % self.trackd.port})
        self.err(r, 403, "PERMISSION_DENIED")
        for origin in ("null", "file://", "http://127.0.0.1:1"):
            r = self.http.request("GET", V1 + "session", headers={"Origin": origin})
            self.err(r, 403, "PERMISSION_DENIED")
        self.err(self.http.api("GET", "experiments/get-by-name",
                               {"experiment_name": "from-a-page"}), 404, "RESOURCE_DOES_NOT_EXIST")
        # the page's own requests (same origin) and clients that send no Origin pass
        host = "127.0.0.1:%d" % self.trackd.port
        r = self.http.request("GET", V1 + "session",
                              headers={"Origin": "http://" + host, "Host": host})
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(self.http.api("POST", "experiments/create",
                                       {"name": "from-a-client"}).status, 200)

    def test_seeded_fuzz_of_every_route(self):
        """Random values for every field of every route: each answer is JSON with a status
        trackd means (never a 500, never a crash), and trackd stays up."""
        rnd = random.Random(int(os.environ.get("HOSTILE_SEED", "20261204")))
        run = self.start_run("fuzz", "target")

        def junk():
            return rnd.choice([
                "", "0", "-1", "1e309", "NaN", "9" * 40, "x" * rnd.randint(1, 5000), "\u00e9\u6f22",
                "' or 1=1 --", "params.a = 'b' and", "metrics.m < 0.5 order", "../../etc/passwd",
                "%00", "\x00", run, run[:4], "a" * 32, "samples/", "NAME@ALIAS", "m/1",
                str(rnd.randint(-10**12, 10**12)), "<script>", "%ff%fe"])

        gets = {"runs": ["experiment", "filter", "order_by", "limit"], "experiments": [],
                "traces": ["experiment", "run", "filter", "limit"], "models": [],
                "queue": ["run", "name", "prefix", "limit"], "model-file": ["ref"],
                f"runs/{run}/curve": ["key", "buckets"], f"runs/{run}": [],
                f"runs/{run}/artifacts": [], f"runs/{run}/lineage": [],
                f"runs/{run}/feedback": []}
        for _ in range(40):
            for path, fields in gets.items():
                q = {f: junk() for f in fields if rnd.random() < 0.8}
                r = self.get(path, q)
                self.assertIn(r.status, (200, 400, 403, 404, 413), f"{path} {q!r}: {r}")
                self.assertIsInstance(r.json, dict, f"{path}: not JSON: {r}")
            for path in ("runs/" + junk()[:60], "traces/" + junk()[:60], "models/" + junk()[:60],
                         f"runs/{run}/artifact/" + junk()[:60]):
                r = self.http.request("GET", V1 + urllib.parse.quote(path, safe="/%"))
                self.assertIn(r.status, (200, 400, 404), f"{path}: {r}")
            body = {k: rnd.choice([junk(), rnd.random(), True, None, [1], {"a": 1}])
                    for k in ("run", "target", "trace_id", "span_id", "name", "value", "comment")
                    if rnd.random() < 0.7}
            r = self.post("feedback", body)
            self.assertIn(r.status, (200, 400, 403, 404, 409), f"feedback {body!r}: {r}")
            self.assertIsInstance(r.json, dict)
        self.assertTrue(self.trackd.alive(), self.trackd.log())

    # -- runs -------------------------------------------------------------------------------------
    def test_runs_are_the_cli_json(self):
        parent = self.start_run("shape", "base", ["lr=0.1", "opt=adam"])
        child = self.start_run("shape", "child", ["lr=0.01", "opt=sgd"], parent=parent)
        for run, loss in ((parent, "0.5"), (child, "0.25")):
            for step in range(3):
                self.cli_ok("--run", run, "log-metric", "loss", loss, "--step", str(step))
            self.cli_ok("--run", run, "tag", "team=nlp")
        self.cli_ok("run", "end", "--run", parent)
        api = self.get("runs", {"experiment": "shape"})
        self.assertEqual(api.status, 200, str(api))
        cli = self.cli_json("runs", "--experiment", "shape")
        self.assertEqual(api.json["runs"], cli, "the API's runs are not `track runs --json`'s")
        self.assertFalse(api.json["more"])
        one = self.get("runs/" + child)
        self.assertEqual(one.status, 200, str(one))
        body = one.json
        for k in ("artifacts", "artifact_bytes", "deleted"):
            self.assertIn(k, body)
            body.pop(k)
        self.assertEqual(body, [r for r in cli if r["run_id"] == child][0])
        # a unique prefix, as the CLI takes
        self.assertEqual(self.get("runs/" + child[:12]).json["run_id"], child)
        lin = self.get(f"runs/{child}/lineage").json
        self.assertEqual([a["run_id"] for a in lin["ancestors"]], [parent])
        self.assertEqual(self.get(f"runs/{parent}/lineage").json["children"][0]["run_id"], child)

    def test_filter_order_and_limit(self):
        for i in range(5):
            run = self.start_run("search", f"r{i}", [f"i={i}"])
            self.cli_ok("--run", run, "log-metric", "acc", str(i / 10))
        r = self.get("runs", {"experiment": "search", "filter": "metrics.acc >= 0.2",
                              "order_by": "metrics.acc DESC", "limit": "2"})
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual([x["name"] for x in r.json["runs"]], ["r4", "r3"])
        self.assertTrue(r.json["more"])
        r = self.get("runs", {"experiment": "search", "filter": "metrics.acc >= 0.2",
                              "limit": "3"})
        self.assertEqual(len(r.json["runs"]), 3)
        self.assertFalse(r.json["more"])

    def test_a_filter_error_names_its_column(self):
        self.start_run("syntax", "one", ["opt=adam"])
        text = "params.opt = 'adam' and metrics.loss << 1"
        r = self.get("runs", {"experiment": "syntax", "filter": text})
        body = self.err(r, 400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(body["field"], "filter")
        cli = self.trackd.cli("runs", "--experiment", "syntax", "--filter", text)
        m = re.search(r"column (\d+)", cli.stderr)
        self.assertIsNotNone(m, cli.stderr)
        self.assertEqual(body["column"], int(m.group(1)))
        self.assertEqual(text[body["column"] - 1], "<", f"column {body['column']} of {text!r}")
        r = self.get("runs", {"order_by": "metrics.loss SIDEWAYS"})
        self.assertEqual(self.err(r, 400, "INVALID_PARAMETER_VALUE")["field"], "order_by")

    def test_a_curve_keeps_its_spike(self):
        run = self.start_run("curves", "long")
        n, spike = 20000, 12345
        lines = "".join(f"loss {100.0 if i == spike else 1.0 / (1 + i)} {i}\n" for i in range(n))
        self.cli_ok("--run", run, "log-metric", "--stdin", stdin=lines)
        r = self.get(f"runs/{run}/curve", {"key": "loss", "buckets": "100"})
        self.assertEqual(r.status, 200, str(r))
        c = r.json
        self.assertEqual(c["count"], n)
        self.assertLessEqual(len(c["first_steps"]), 100)
        for k in ("firsts", "mins", "maxs", "lasts", "min_steps", "max_steps", "last_steps",
                  "first_times", "min_times", "max_times", "last_times"):
            self.assertEqual(len(c[k]), len(c["first_steps"]), k)
        top = max(range(len(c["maxs"])), key=lambda i: c["maxs"][i])
        self.assertEqual(c["maxs"][top], 100.0)
        self.assertEqual(c["max_steps"][top], spike)
        self.assertEqual(c["first_steps"][0], 0)
        self.assertEqual(c["last_steps"][-1], n - 1)
        self.assertLess(len(r.body), 40000, "100 buckets of a 20,000-point curve")

    # -- artifacts and the queue ----------------------------------------------------------------
    def test_download_is_the_bytes_put(self):
        run = self.start_run("files", "weights")
        d = tempfile.mkdtemp(dir=self.tmp)
        data = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
        with open(os.path.join(d, 'we"ird\nname.bin'), "wb") as f:
            f.write(data)
        with open(os.path.join(d, "plain.bin"), "wb") as f:
            f.write(data[:1000])
        self.cli_ok("artifact", "put", "--run", run, os.path.join(d, "plain.bin"), "--as",
                    "model/plain.bin")
        lst = self.get(f"runs/{run}/artifacts").json["artifacts"]
        self.assertEqual([(a["path"], a["size"]) for a in lst], [("model/plain.bin", 1000)])
        self.assertRegex(lst[0]["digest"], r"^[0-9a-f]{64}$")
        r = self.http.request("GET", V1 + f"runs/{run}/artifact/model/plain.bin")
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(r.body, data[:1000])
        self.assertEqual(r.headers["content-disposition"],
                         'attachment; filename="plain.bin"')
        # 3 MiB in the daemon's 1 MiB reads; a name no header may carry as it is
        self.cli_ok("artifact", "put", "--run", run, os.path.join(d, 'we"ird\nname.bin'), "--as",
                    'big/we"ird name.bin')
        r = self.http.request("GET", V1 + f"runs/{run}/artifact/big/we%22ird%20name.bin")
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["content-disposition"],
                         'attachment; filename="we_ird_name.bin"')
        self.err(self.http.request("GET", V1 + f"runs/{run}/artifact/nope.bin"), 404,
                 "RESOURCE_DOES_NOT_EXIST")
        self.err(self.http.request("GET", V1 + f"runs/{run}/artifact/../x"), 400,
                 "INVALID_PARAMETER_VALUE")

    def test_the_queue_and_rating_a_sample(self):
        run = self.start_run("rating", "lm")
        d = tempfile.mkdtemp(dir=self.tmp)
        os.mkdir(os.path.join(d, "samples"))
        for i in range(5):
            with open(os.path.join(d, "samples", f"{i:03d}.txt"), "w") as f:
                f.write(f"answer {i} <b>bold</b>" + ("é" * 3000 if i == 4 else ""))
        self.cli_ok("artifact", "put", "--run", run, os.path.join(d, "samples"), "--as",
                    "samples")
        q = self.get("queue", {"run": run, "name": "helpful"}).json
        self.assertEqual((q["total"], q["rated"], len(q["items"])), (5, 0, 5))
        self.assertEqual(q["items"][0]["text"], "answer 0 <b>bold</b>")
        long = q["items"][4]
        self.assertTrue(long["text_truncated"])
        self.assertLessEqual(len(long["text"].encode()), 4096)
        self.assertNotIn("\ufffd", long["text"], "a cut in the middle of a UTF-8 character")
        body = {"run": run, "target": "samples/001.txt", "name": "helpful", "value": True,
                "comment": "clear"}
        self.err(self.post("feedback", body, csrf=None), 403, "PERMISSION_DENIED")
        self.err(self.post("feedback", body, csrf="0" * 64), 403, "PERMISSION_DENIED")
        self.err(self.post("feedback", body, csrf=self.csrf[:63]), 403, "PERMISSION_DENIED")
        r = self.post("feedback", body)
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(r.json, {"added": 1})
        self.assertEqual(self.post("feedback", dict(body, target="samples/002.txt",
                                                    value=False)).status, 200)
        q = self.get("queue", {"run": run, "name": "helpful", "limit": "2"}).json
        self.assertEqual((q["total"], q["rated"]), (5, 2))
        self.assertEqual([i["target"] for i in q["items"]], ["samples/000.txt", "samples/003.txt"])
        listed = self.cli_json("feedback", "list", run)
        mine = [s for s in listed if s["target"] == "samples/001.txt"][0]
        self.assertEqual((mine["value"], mine["source"], mine["comment"]), (True, "human", "clear"))
        self.assertEqual(mine["source_id"], self.get("session").json["user"])
        api = self.get(f"runs/{run}/feedback").json["scores"]
        self.assertEqual(sorted(s["target"] for s in api), ["samples/001.txt", "samples/002.txt"])
        self.assertEqual(api, listed, "the API's scores are not `track feedback list --json`'s")
        # what the daemon refuses, named
        for bad, field in (({"run": run, "name": "x", "value": {"a": 1}}, "value"),
                           ({"run": run, "value": True}, "name"),
                           ({"run": run, "name": "x", "trace_id": "zz"}, "trace_id"),
                           ({"run": run, "name": "x", "span_id": "00" * 8}, "span_id")):
            e = self.err(self.post("feedback", bad), 400, "INVALID_PARAMETER_VALUE")
            self.assertIn(field, e["message"])
        r = self.http.request("POST", V1 + "feedback", body=b"{not json",
                              headers={"X-Track-CSRF": self.csrf})
        self.err(r, 400, "BAD_REQUEST")

    # -- models and traces --------------------------------------------------------------------
    def test_models_and_aliases(self):
        run = self.start_run("reg", "trained")
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, "m.bin"), "wb") as f:
            f.write(b"weights")
        self.cli_ok("artifact", "put", "--run", run, os.path.join(d, "m.bin"), "--as", "m.bin")
        self.cli_ok("model", "register", "clf", "--run", run, "--path", "m.bin")
        self.cli_ok("model", "register", "clf", "--run", run, "--path", "m.bin")
        self.cli_ok("model", "alias", "clf", "production", "1")
        self.cli_ok("model", "alias", "clf", "production", "2")
        ms = self.get("models").json["models"]
        clf = [m for m in ms if m["name"] == "clf"][0]
        self.assertEqual((clf["versions"], clf["latest_version"], clf["aliases"]),
                         (2, 2, {"production": 2}))
        show = self.get("models/clf").json
        self.assertEqual([v["version"] for v in show["versions"]], [1, 2])
        self.assertEqual(show["versions"][1]["aliases"], ["production"])
        self.assertEqual(show["versions"][0]["run_id"], run)
        self.assertEqual([(h["from_version"], h["to_version"]) for h in show["history"]],
                         [(0, 1), (1, 2)])
        self.err(self.get("models/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
        # a version's file is the one pinned at register time, even after the run's artifact
        # at that path changed
        with open(os.path.join(d, "m2.bin"), "wb") as f:
            f.write(b"other weights")
        self.cli_ok("artifact", "put", "--run", run, os.path.join(d, "m2.bin"), "--as", "m.bin")
        for ref in ("clf/1", "clf@production"):
            r = self.get("model-file", {"ref": ref})
            self.assertEqual(r.status, 200, str(r))
            self.assertEqual(r.body, b"weights", ref)
            self.assertEqual(r.headers["content-disposition"], 'attachment; filename="m.bin"')
        self.assertEqual(self.http.request("GET", V1 + f"runs/{run}/artifact/m.bin").body,
                         b"other weights")
        self.err(self.get("model-file", {"ref": "clf@nothing"}), 404, "RESOURCE_DOES_NOT_EXIST")
        self.err(self.get("model-file", {"ref": "clf/9"}), 404, "RESOURCE_DOES_NOT_EXIST")
        e = self.err(self.get("model-file"), 400, "INVALID_PARAMETER_VALUE")
        self.assertIn("ref", e["message"])

    def test_traces_and_a_rated_trace(self):
        spans = [js_span(tid(77), sid(1), "chat", 1_000_000, 9_000_000,
                         attrs={"gen_ai.request.model": "m-1", "gen_ai.usage.input_tokens": 40,
                                "gen_ai.usage.output_tokens": 2}),
                 js_span(tid(77), sid(2), "retrieve <script>", 2_000_000, 3_000_000,
                         parent=sid(1), status=2, msg="timeout")]
        r = self.http.request("POST", "/v1/traces",
                              body=json.dumps(js_export(spans, {"service.name": "bot"})).encode(),
                              headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, str(r))
        lst = self.get("traces", {"experiment": "bot", "filter": "tokens.total > 10"}).json
        self.assertEqual([t["trace_id"] for t in lst["traces"]], [tid(77)])
        t = lst["traces"][0]
        self.assertEqual((t["spans"], t["errors"], t["tokens_total"], t["models"]),
                         (2, 1, 42, ["m-1"]))
        cli = self.cli_json("traces", "--experiment", "bot")
        self.assertEqual(lst["traces"], cli)
        one = self.get("traces/" + tid(77)).json
        self.assertEqual([s["name"] for s in one["span_list"]], ["chat", "retrieve <script>"])
        self.assertEqual(one["span_list"][1]["parent_span_id"], sid(1))
        self.assertEqual(one["span_list"][1]["status"], "error")
        self.assertNotIn("attributes", one["span_list"][0])
        e = self.err(self.get("traces", {"filter": "tokens.total >"}), 400,
                     "INVALID_PARAMETER_VALUE")
        self.assertEqual(e["field"], "filter")
        self.assertGreater(e["column"], 0)
        self.err(self.get("traces/" + "0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")
        self.err(self.get("traces/xyz"), 400, "INVALID_PARAMETER_VALUE")
        r = self.post("feedback", {"trace_id": tid(77), "span_id": sid(2), "name": "good",
                                   "value": False, "comment": "slow"})
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(self.post("feedback", {"trace_id": tid(77), "name": "good",
                                                "value": True}).status, 200)
        # a trace without a run: its scores are listed by the trace (the page's, the CLI's)
        fb = self.get(f"traces/{tid(77)}/feedback")
        self.assertEqual(fb.status, 200, str(fb))
        scores = fb.json["scores"]
        self.assertEqual([(x["run_id"], x["trace_id"], x.get("span_id"), x["value"])
                          for x in scores],
                         [(None, tid(77), sid(2), False), (None, tid(77), None, True)])
        self.assertEqual(scores, self.cli_json("feedback", "list", "--trace", tid(77)))
        self.err(self.get(f"traces/{tid(99)}/feedback"), 404, "RESOURCE_DOES_NOT_EXIST")
        self.err(self.get(f"traces/{tid(77)}/other"), 404, "ENDPOINT_NOT_FOUND")
        p = self.trackd.cli("feedback", "list", "--trace", "xyz")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--trace", p.stderr)
        # a trace tied to a run: its scores are the run's, listed with the trace and span
        run = self.start_run("bot-runs", "evaluated")
        spans = [js_span(tid(78), sid(1), "chat", 1_000_000, 2_000_000,
                         attrs={"track.run_id": run})]
        r = self.http.request("POST", "/v1/traces",
                              body=json.dumps(js_export(spans, {"service.name": "bot"})).encode(),
                              headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(self.post("feedback", {"trace_id": tid(78), "span_id": sid(1),
                                                "name": "thumbs", "value": True}).status, 200)
        api = self.get(f"runs/{run}/feedback").json["scores"]
        self.assertEqual([(s["trace_id"], s["span_id"], s["kind"]) for s in api],
                         [(tid(78), sid(1), "boolean")])
        self.assertEqual(api, self.cli_json("feedback", "list", run))

    # -- bounds -------------------------------------------------------------------------------
    def test_bad_ids_and_bounds_name_their_field(self):
        for path, query, field in (("runs/zz", None, "run"), ("runs/abc", None, "run"),
                                   ("runs", {"limit": "0"}, "limit"),
                                   ("runs", {"limit": "10001"}, "limit"),
                                   ("runs", {"limit": "x"}, "limit"),
                                   ("traces", {"limit": "-1"}, "limit"),
                                   ("queue", {"name": "x"}, "run"),
                                   ("runs/" + "a" * 32 + "/curve", {"key": "k", "buckets": "0"},
                                    "buckets"),
                                   ("runs/" + "a" * 32 + "/curve", None, "key")):
            e = self.err(self.get(path, query), 400, "INVALID_PARAMETER_VALUE")
            self.assertIn(field, e["message"], f"{path} {query}")
        self.err(self.get("runs/" + "a" * 32), 404, "RESOURCE_DOES_NOT_EXIST")
        self.err(self.get("runs/" + "a" * 32 + "/nothing"), 404, "ENDPOINT_NOT_FOUND")
        self.err(self.http.request("DELETE", V1 + "runs"), 405, "ENDPOINT_NOT_FOUND")


class WebToken(WebCase):
    """A non-loopback bind: the page logs in with a token kept in an HttpOnly cookie, which
    only the dashboard's routes accept."""

    http_addr = "0.0.0.0"

    @classmethod
    def prepare_store(cls):
        add_user(cls.tmp, "alice", "writer")
        add_user(cls.tmp, "bob", "reader")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tokens = {}
        for name in ("alice", "bob"):
            p = cls.trackd.cli("admin", "token", "create", name, "--json")
            assert p.returncode == 0, p.stderr
            cls.tokens[name] = json.loads(p.stdout)["token"]
        cls.run_id = cls.trackd.cli("run", "start", "--experiment", "team").stdout.split()[-1]

    def login(self, name, headers=None):
        r = self.http.request("POST", V1 + "login", json_body={"token": self.tokens[name]},
                              headers=headers)
        self.assertEqual(r.status, 200, str(r))
        self.assertIn("set-cookie", r.headers, str(r.headers))
        return r.json, r.headers["set-cookie"]

    def as_cookie(self, set_cookie):
        return {"Cookie": set_cookie.split(";")[0]}

    def test_no_login_is_401_without_a_browser_prompt(self):
        r = self.get("session")
        self.err(r, 401, "UNAUTHENTICATED")
        self.assertNotIn("www-authenticate", r.headers)
        self.assertIn("content-security-policy", r.headers)
        # the page itself needs no credentials (it asks for them)
        self.assertEqual(self.http.request("GET", "/").status, 200)

    def test_login_sets_a_cookie_the_script_cannot_read(self):
        bad = self.http.request("POST", V1 + "login", json_body={"token": "trk_nope"})
        self.err(bad, 401, "UNAUTHENTICATED")
        self.err(self.http.request("POST", V1 + "login", json_body={"token": "a\r\nSet-Cookie: x"}),
                 401, "UNAUTHENTICATED")
        self.err(self.http.request("POST", V1 + "login", json_body={}), 400,
                 "INVALID_PARAMETER_VALUE")
        # what another site's form can send: refused before the token is looked at
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
            body = json.dumps({"token": self.tokens["alice"]}).encode()
            r = self.http.request("POST", V1 + "login", body=body, headers={"Content-Type": ctype})
            self.err(r, 415, "BAD_REQUEST")
            self.assertNotIn("set-cookie", r.headers)
        s, cookie = self.login("alice")
        self.assertEqual((s["user"], s["role"], s["local"]), ("alice", "writer", False))
        attrs = [a.strip() for a in cookie.split(";")]
        self.assertIn("HttpOnly", attrs)
        self.assertIn("SameSite=Strict", attrs)
        self.assertIn("Path=/", attrs)
        self.assertNotIn("Secure", attrs)
        _, tls = self.login("alice", headers={"X-Forwarded-Proto": "https"})
        self.assertIn("Secure", [a.strip() for a in tls.split(";")])
        r = self.get("session", headers=self.as_cookie(cookie))
        self.assertEqual(r.json["user"], "alice")
        self.assertEqual(r.json["csrf_token"], s["csrf_token"])
        out = self.http.request("POST", V1 + "logout", json_body={})
        gone = out.headers["set-cookie"]
        self.assertIn("Max-Age=0", gone)

    def test_the_cookie_is_only_the_dashboards(self):
        _, cookie = self.login("alice")
        self.assertEqual(self.get("runs", headers=self.as_cookie(cookie)).status, 200)
        r = self.http.request("GET", "/api/2.0/mlflow/experiments/search",
                              query={"max_results": "10"}, headers=self.as_cookie(cookie))
        self.err(r, 401, "UNAUTHENTICATED")

    def test_writes_need_the_sessions_csrf_token_and_a_writer(self):
        s, cookie = self.login("alice")
        body = {"run": self.run_id, "name": "ok", "value": True}
        h = self.as_cookie(cookie)
        self.err(self.post("feedback", body, csrf=None, headers=h), 403, "PERMISSION_DENIED")
        # the owner's token of a loopback bind, or another session's, is not this one's
        _, bob_cookie = self.login("bob")
        bob = self.get("session", headers=self.as_cookie(bob_cookie)).json
        self.assertNotEqual(bob["csrf_token"], s["csrf_token"])
        self.err(self.post("feedback", body, csrf=bob["csrf_token"], headers=h), 403,
                 "PERMISSION_DENIED")
        r = self.post("feedback", body, csrf=s["csrf_token"], headers=h)
        self.assertEqual(r.status, 200, str(r))
        scores = self.cli_json("feedback", "list", self.run_id)
        self.assertEqual([(x["source"], x["source_id"]) for x in scores], [("human", "alice")])
        r = self.post("feedback", body, csrf=bob["csrf_token"], headers=self.as_cookie(bob_cookie))
        self.err(r, 403, "PERMISSION_DENIED")
        # a bearer token works as for every route, its CSRF token the same as its cookie's
        bearer = Http(self.trackd.port, token=self.tokens["alice"])
        r = bearer.request("GET", V1 + "session")
        self.assertEqual(r.json["csrf_token"], s["csrf_token"])


    def test_large_answers_are_gzipped_off_loopback(self):
        # one run whose JSON is over 64 KiB: 300 params of 300 bytes
        run = self.trackd.cli("run", "start", "--experiment", "wide").stdout.split()[-1]
        kv = [f"p{i:03d}={'v' * 290}" for i in range(300)]
        p = self.trackd.cli("--run", run, "log-param", *kv)
        self.assertEqual(p.returncode, 0, p.stderr)
        auth = {"Authorization": f"Bearer {self.tokens['alice']}", "Accept-Encoding": "gzip, br"}

        def fetch(host, headers):
            c = http.client.HTTPConnection(host, self.trackd.port, timeout=30)
            try:
                c.request("GET", V1 + "runs?experiment=wide", headers=headers)
                r = c.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            finally:
                c.close()

        status, h, body = fetch("127.0.0.1", auth)
        self.assertEqual(status, 200)
        self.assertNotIn("content-encoding", h, "compressed on loopback, where it only costs")
        plain = json.loads(body)
        # the machine's own non-loopback address (no packet is sent by a UDP connect)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("10.255.255.255", 9))
            ip = s.getsockname()[0]
        finally:
            s.close()
        self.assertFalse(ip.startswith("127."), f"no non-loopback address here ({ip})")
        status, h, body = fetch(ip, auth)
        self.assertEqual(status, 200)
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(h.get("vary"), "Accept-Encoding")
        self.assertLess(len(body), len(json.dumps(plain)) / 4)
        self.assertEqual(json.loads(gzip.decompress(body)), plain)
        for refuse in ("gzip;q=0", "identity", "br"):
            status, h, body = fetch(ip, dict(auth, **{"Accept-Encoding": refuse}))
            self.assertNotIn("content-encoding", h, refuse)
            self.assertEqual(json.loads(body), plain)
        # small answers are never compressed (nor the session and its token)
        status, h, body = fetch(ip, dict(auth, **{"Accept-Encoding": "gzip"}))
        c = http.client.HTTPConnection(ip, self.trackd.port, timeout=30)
        c.request("GET", V1 + "session", headers=auth)
        r = c.getresponse()
        self.assertIsNone(r.getheader("Content-Encoding"))
        r.read()
        c.close()


if __name__ == "__main__":
    unittest.main()
