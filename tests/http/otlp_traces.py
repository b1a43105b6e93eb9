#!/usr/bin/env python3
"""OTLP/HTTP trace export into a real trackd (README "Traces"): requests built from the
OpenTelemetry specification in both encodings (protobuf encoded by hand below from the
field numbers of opentelemetry-proto's trace.proto, common.proto and trace_service.proto;
JSON with hex ids, lowerCamelCase keys, int64 as strings), gzip, the body limits, partial
success, both attribute conventions (GenAI, OpenInference), spans out of order across
requests with exact rollups, re-sent spans not counted twice, the experiment and run
mapping, the caps, and `track traces` / `track trace show` on what was stored.

Run: TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/otlp_traces.py -v
"""

import gzip
import json
import os
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlflow_replay import Http, Trackd  # noqa: E402

T0 = 1_700_000_000_000_000_000  # ns


# ---- protobuf, by hand ------------------------------------------------------------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def vint(field, n):
    return varint(field << 3) + varint(n & 0xFFFFFFFFFFFFFFFF)


def fixed64(field, n):
    return varint(field << 3 | 1) + struct.pack("<Q", n)


def any_value(v):
    if isinstance(v, bool):
        return vint(2, int(v))
    if isinstance(v, int):
        return vint(3, v)
    if isinstance(v, float):
        return varint(4 << 3 | 1) + struct.pack("<d", v)
    return ld(1, v.encode())


def kv(key, value):
    return ld(1, key.encode()) + ld(2, any_value(value))


def pb_span(tid, sid, name, start, end, parent=None, attrs=None, kind=1, status=0, msg=""):
    b = ld(1, bytes.fromhex(tid)) + ld(2, bytes.fromhex(sid))
    if parent:
        b += ld(4, bytes.fromhex(parent))
    b += ld(5, name.encode()) + vint(6, kind) + fixed64(7, start) + fixed64(8, end)
    for k, v in (attrs or {}).items():
        b += ld(9, kv(k, v))
    if status or msg:
        b += ld(15, ld(2, msg.encode()) + vint(3, status))
    return b


def pb_export(spans, resource=None):
    res = b"".join(ld(1, kv(k, v)) for k, v in (resource or {}).items())
    scope = ld(1, ld(1, b"test-scope")) + b"".join(ld(2, s) for s in spans)
    return ld(1, ld(1, res) + ld(2, scope))


def pb_fields(buf):
    """Top-level fields of a protobuf message: {field: [values]} (varints and bytes)."""
    out, i = {}, 0
    while i < len(buf):
        k, i = read_varint(buf, i)
        f, wt = k >> 3, k & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wt}")
        out.setdefault(f, []).append(v)
    return out


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


# ---- JSON ---------------------------------------------------------------------------------
def js_value(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": v}


def js_span(tid, sid, name, start, end, parent=None, attrs=None, kind=1, status=0, msg=""):
    s = {"traceId": tid, "spanId": sid, "name": name, "kind": kind,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
         "attributes": [{"key": k, "value": js_value(v)} for k, v in (attrs or {}).items()]}
    if parent:
        s["parentSpanId"] = parent
    if status or msg:
        s["status"] = {"code": status, "message": msg}
    return s


def js_export(spans, resource=None):
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": js_value(v)}
                                    for k, v in (resource or {}).items()]},
        "scopeSpans": [{"scope": {"name": "test-scope"}, "spans": spans}]}]}


def tid(n):
    return f"{n:032x}"


def sid(n):
    return f"{n:016x}"


class OtlpTraces(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="otlp-")
        cls.trackd = Trackd(cls.tmp).start()
        cls.http = Http(cls.trackd.port)

    @classmethod
    def tearDownClass(cls):
        cls.trackd.stop()

    def post_json(self, export, headers=None, gz=False):
        body = json.dumps(export).encode()
        h = {"Content-Type": "application/json"}
        if gz:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.http.request("POST", "/v1/traces", body=body, headers=h)

    def post_pb(self, body, headers=None, gz=False):
        h = {"Content-Type": "application/x-protobuf"}
        if gz:
            body = gzip.compress(body)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.http.request("POST", "/v1/traces", body=body, headers=h)

    def traces(self, *args):
        p = self.trackd.cli("traces", "--json", "--limit", "10000", *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return {t["trace_id"]: t for t in json.loads(p.stdout)}

    def show(self, trace, *args):
        p = self.trackd.cli("trace", "show", trace, *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_filter_terms(self):
        # three traces in one experiment: slow and expensive; fast and failing; mid
        def trace(n, dur_ms, tok_in, tok_out, cost, model, err=False, attrs=None):
            t = tid(400 + n)
            a = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": tok_in,
                 "gen_ai.usage.output_tokens": tok_out, "llm.cost.total": cost}
            a.update(attrs or {})
            return [js_span(t, sid(1), f"req-{n}", T0 + n, T0 + n + dur_ms * 10**6),
                    js_span(t, sid(2), "llm", T0 + n, T0 + n + 10**6, parent=sid(1), attrs=a,
                            status=2 if err else 1, msg="boom" if err else "")]
        spans = (trace(1, 5000, 3000, 900, 0.25, "gpt-4o", attrs={"user.tier": "pro"}) +
                 trace(2, 40, 10, 2, 0.001, "gpt-4o-mini", err=True,
                       attrs={"user.tier": "free", "retries": 3}) +
                 trace(3, 800, 500, 100, 0.02, "llama-3", attrs={"retries": 1}))
        r = self.post_json(js_export(spans, {"service.name": "filters"}))
        self.assertEqual((r.status, r.json), (200, {}), str(r))
        names = {tid(401): 1, tid(402): 2, tid(403): 3}

        def which(expr):
            p = self.trackd.cli("traces", "--experiment", "filters", "--filter", expr, "--json")
            self.assertEqual(p.returncode, 0, f"{expr}: {p.stderr}")
            return sorted(names[t["trace_id"]] for t in json.loads(p.stdout))

        cases = {
            "duration > 1s": [1], "duration < 100": [2], "duration >= 800ms": [1, 3],
            "tokens.total > 1000": [1], "tokens.input <= 500": [2, 3], "tokens.output = 2": [2],
            "cost > 0.01": [1, 3], "status = 'error'": [2], "status != 'error'": [1, 3],
            "status = 'ok'": [1, 3], "model = 'gpt-4o'": [1], "model != 'gpt-4o'": [2, 3],
            "spans = 2": [1, 2, 3], "errors > 0": [2], "name = 'req-3'": [3],
            "experiment = 'filters'": [1, 2, 3], "attributes.user.tier = 'pro'": [1],
            "attributes.retries >= 2": [2], "attributes.retries < 2": [3],
            "cost > 0.01 and not status = 'error'": [1, 3],
            "(model = 'llama-3' or tokens.total > 1000) and duration > 500ms": [1, 3],
            "status = 'error' or attributes.user.tier = 'pro'": [1, 2],
        }
        for expr, want in cases.items():
            with self.subTest(filter=expr):
                self.assertEqual(which(expr), want)
        for bad, says in (("tokens.cached > 1", "tokens.input"), ("status = 'meh'", "'error'"),
                          ("duration > 'long'", "duration"), ("bogus = 1", "unknown trace term"),
                          ("cost >", "expected a value"), ("(spans = 1", "never closed")):
            with self.subTest(bad=bad):
                p = self.trackd.cli("traces", "--filter", bad)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(says, p.stderr)

    def test_feedback_on_traces_and_spans(self):
        p = self.trackd.cli("run", "start", "--experiment", "rated")
        run = p.stdout.split()[-1]
        t1, t2 = tid(500), tid(501)
        spans = [js_span(t1, sid(1), "answer", T0, T0 + 10, attrs={"track.run_id": run}),
                 js_span(t1, sid(2), "llm", T0 + 1, T0 + 5, parent=sid(1)),
                 js_span(t2, sid(1), "answer", T0 + 20, T0 + 30)]
        r = self.post_json(js_export(spans, {"service.name": "rated"}))
        self.assertEqual((r.status, r.json), (200, {}), str(r))
        for args in (["--trace", t1, "helpfulness", "4"], ["--trace", t1, "helpfulness", "2"],
                     ["--trace", t1, "--span", sid(2), "grounded", "true"],
                     ["--trace", t2, "helpfulness", "5", "--source", "llm_judge", "--by", "j"]):
            with self.subTest(args=args):
                q = self.trackd.cli("feedback", "add", *args)
                self.assertEqual(q.returncode, 0, q.stderr)
        # the trace tied to a run: its scores are that run's, by target
        q = self.trackd.cli("feedback", "list", run, "--json")
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(q.stdout.count("helpfulness"), 2, q.stdout)
        self.assertIn("grounded", q.stdout)

        def which(expr):
            q = self.trackd.cli("traces", "--experiment", "rated", "--filter", expr, "--json")
            self.assertEqual(q.returncode, 0, f"{expr}: {q.stderr}")
            return sorted(t["trace_id"] for t in json.loads(q.stdout))

        self.assertEqual(which("feedback.helpfulness > 3"), [t2], "t1's mean is 3, t2's 5")
        self.assertEqual(which("feedback.helpfulness >= 3"), sorted([t1, t2]))
        self.assertEqual(which("feedback.helpfulness = 3"), [t1])
        self.assertEqual(which("feedback.grounded = 1"), [t1], "a span's score is its trace's")
        self.assertEqual(which("feedback.nothing > 0"), [])
        # refused: a trace that is not there, a span without its trace, both forms of id
        for args, says in ((["--trace", tid(999), "x", "1"], "no trace"),
                           (["--span", sid(1), "x", "1"], "with its trace"),
                           (["--trace", "abc", "x", "1"], "32 hex")):
            with self.subTest(bad=args):
                q = self.trackd.cli("feedback", "add", *args)
                self.assertNotEqual(q.returncode, 0)
                self.assertIn(says, q.stderr + q.stdout)

    def test_json_genai(self):
        t = tid(1)
        spans = [js_span(t, sid(1), "chat", T0, T0 + 1_500_000_000, kind=2, status=1),
                 js_span(t, sid(2), "openai.chat", T0 + 10**8, T0 + 14 * 10**8, parent=sid(1),
                         kind=3, attrs={"gen_ai.operation.name": "chat",
                                        "gen_ai.request.model": "gpt-4o",
                                        "gen_ai.response.model": "gpt-4o-2024-08-06",
                                        "gen_ai.usage.input_tokens": 120,
                                        "gen_ai.usage.output_tokens": 42,
                                        "temperature": 0.2})]
        r = self.post_json(js_export(spans, {"service.name": "genai-app"}))
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.json, {})
        got = self.traces("--experiment", "genai-app")[t]
        self.assertEqual((got["spans"], got["errors"], got["tokens_in"], got["tokens_out"],
                          got["tokens_total"], got["root"]), (2, 0, 120, 42, 162, "chat"))
        self.assertEqual(got["models"], ["gpt-4o-2024-08-06"], "the response's model wins")
        self.assertEqual((got["start_ns"], got["end_ns"]), (T0, T0 + 1_500_000_000))
        p = self.trackd.cli("trace", "show", t, "--json")
        spans = {s["name"]: s for s in json.loads(p.stdout)["span_list"]}
        self.assertEqual(spans["openai.chat"]["operation"], "chat")
        self.assertEqual(spans["openai.chat"]["attributes"]["temperature"], 0.2)
        self.assertEqual(spans["openai.chat"]["parent_span_id"], sid(1))
        out = self.show(t)
        self.assertIn("openai.chat  [gpt-4o-2024-08-06]  162 tok (120 in, 42 out)", out)

    def test_protobuf_openinference_and_gzip(self):
        t = tid(2)
        body = pb_export([
            pb_span(t, sid(1), "rag", T0, T0 + 3 * 10**9,
                    attrs={"openinference.span.kind": "CHAIN"}),
            pb_span(t, sid(2), "llm", T0 + 10**9, T0 + 2 * 10**9, parent=sid(1),
                    attrs={"openinference.span.kind": "LLM", "llm.model_name": "llama-3-8b",
                           "llm.token_count.prompt": 1000, "llm.token_count.completion": 200,
                           "llm.token_count.total": 1200, "llm.cost.total": 0.0125,
                           "input.value": "what is the capital of France?"}),
            pb_span(t, sid(3), "retrieve", T0 + 10**8, T0 + 9 * 10**8, parent=sid(1),
                    status=2, msg="index timeout",
                    attrs={"openinference.span.kind": "RETRIEVER"})],
            {"track.experiment": "rag-app", "service.name": "ignored"})
        r = self.post_pb(body, gz=True)
        self.assertEqual(r.status, 200, str(r))
        self.assertEqual(r.headers.get("content-type"), "application/x-protobuf")
        self.assertEqual(pb_fields(r.body), {}, "no partial_success when all are taken")
        got = self.traces("--experiment", "rag-app")[t]
        self.assertEqual((got["spans"], got["errors"], got["tokens_total"], got["models"]),
                         (3, 1, 1200, ["llama-3-8b"]))
        self.assertAlmostEqual(got["cost"], 0.0125)
        out = self.show(t)
        self.assertIn("ERROR: index timeout", out)
        self.assertIn("$0.0125", out)
        self.assertIn(t, self.traces("--errors"))
        self.assertIn(t, self.traces("--min-tokens", "1000"))
        self.assertNotIn(t, self.traces("--min-tokens", "1201"))

    def test_out_of_order_in_three_requests_and_resent(self):
        t = tid(3)
        root = js_span(t, sid(1), "agent", T0, T0 + 10 * 10**9)
        kids = [js_span(t, sid(10 + i), f"step-{i}", T0 + i * 10**9, T0 + (i + 1) * 10**9,
                        parent=sid(1), attrs={"gen_ai.usage.input_tokens": 10 * (i + 1),
                                              "gen_ai.usage.output_tokens": i,
                                              "gen_ai.request.model": "m-a" if i % 2 else "m-b"})
                for i in range(6)]
        # children before their parent, over three requests, one span sent twice
        for part in (kids[3:], kids[:3] + [kids[4]], [root]):
            r = self.post_json(js_export(part, {"service.name": "agent-app"}))
            self.assertEqual((r.status, r.json), (200, {}), str(r))
        got = self.traces("--experiment", "agent-app")[t]
        self.assertEqual(got["spans"], 7, "a re-sent span is not counted twice")
        self.assertEqual(got["tokens_in"], sum(10 * (i + 1) for i in range(6)))
        self.assertEqual(got["tokens_out"], sum(range(6)))
        self.assertEqual((got["root"], got["start_ns"], got["end_ns"]),
                         ("agent", T0, T0 + 10 * 10**9))
        self.assertEqual(sorted(got["models"]), ["m-a", "m-b"])
        # the same span again with other numbers replaces it: the rollups follow exactly
        changed = js_span(t, sid(10), "step-0", T0 + 5 * 10**8, T0 + 12 * 10**9, parent=sid(1),
                          attrs={"gen_ai.usage.input_tokens": 1000})
        self.assertEqual(self.post_json(js_export([changed], {"service.name": "agent-app"})).status,
                         200)
        got = self.traces("--experiment", "agent-app")[t]
        self.assertEqual(got["spans"], 7)
        self.assertEqual(got["tokens_in"], 1000 + sum(10 * (i + 1) for i in range(1, 6)))
        self.assertEqual(got["end_ns"], T0 + 12 * 10**9, "the trace's end follows its spans")

    def test_partial_success(self):
        t = tid(4)
        good = js_span(t, sid(1), "ok", T0, T0 + 1000)
        bad_id = js_span(t, "zz", "bad id", T0, T0 + 1000)
        bad_run = js_span(t, sid(2), "bad run", T0, T0 + 1000, parent=sid(1),
                          attrs={"track.run_id": "not-a-run"})
        r = self.post_json(js_export([good, bad_id, bad_run], {"service.name": "partial"}))
        self.assertEqual(r.status, 200, str(r))
        ps = r.json["partialSuccess"]
        self.assertEqual(ps["rejectedSpans"], "2")
        self.assertIn("spanId", ps["errorMessage"])
        self.assertEqual(self.traces("--experiment", "partial")[t]["spans"], 1)
        # protobuf: the same answer as ExportTraceServiceResponse.partial_success
        body = pb_export([pb_span(tid(5), sid(1), "ok", T0, T0 + 1),
                          ld(1, b"short") + ld(2, bytes(8)) + ld(5, b"bad")])
        r = self.post_pb(body)
        self.assertEqual(r.status, 200, str(r))
        ps = pb_fields(pb_fields(r.body)[1][0])
        self.assertEqual(ps[1], [1])
        self.assertIn(b"trace_id must be 16 bytes", ps[2][0])
        # a run id of the right shape that names no run: the batch's spans are refused
        r = self.post_json(js_export([js_span(tid(6), sid(1), "x", T0, T0 + 1)],
                                     {"service.name": "partial", "track.run_id": "ab" * 16}))
        self.assertEqual(r.json["partialSuccess"]["rejectedSpans"], "1", str(r))

    def test_experiment_and_run_mapping(self):
        p = self.trackd.cli("run", "start", "--experiment", "evals")
        self.assertEqual(p.returncode, 0, p.stderr)
        run = p.stdout.split()[-1]
        self.assertEqual(len(run), 32, p.stdout)
        cases = [({"x-track-experiment": "from-header"}, {"track.experiment": "res",
                                                          "service.name": "svc"}, "from-header"),
                 ({}, {"track.experiment": "res", "service.name": "svc"}, "res"),
                 ({}, {"service.name": "svc"}, "svc"),
                 ({}, {}, "Default")]
        for n, (headers, resource, want) in enumerate(cases):
            t = tid(100 + n)
            r = self.post_json(js_export([js_span(t, sid(1), "x", T0, T0 + 5)], resource),
                               headers=headers)
            self.assertEqual(r.status, 200, str(r))
            self.assertEqual(self.traces()[t]["experiment"], want)
        t = tid(200)
        r = self.post_json(js_export([js_span(t, sid(1), "judge", T0, T0 + 5,
                                              attrs={"track.run_id": run})],
                                     {"service.name": "evals"}))
        self.assertEqual((r.status, r.json), (200, {}), str(r))
        self.assertEqual(list(self.traces("--run", run)), [t])
        self.assertEqual(self.traces()[t]["run_id"], run)

    def test_export_jsonl(self):
        ids = [tid(300 + i) for i in range(3)]
        spans = []
        for i, t in enumerate(ids):
            spans += [js_span(t, sid(1), f"q{i}", T0 + i * 10**9, T0 + i * 10**9 + 500),
                      js_span(t, sid(2), "llm", T0 + i * 10**9 + 1, T0 + i * 10**9 + 400,
                              parent=sid(1), attrs={"gen_ai.usage.input_tokens": i})]
        r = self.post_json(js_export(spans, {"service.name": "export-app"}))
        self.assertEqual(r.status, 200, str(r))
        out = os.path.join(self.tmp, "traces.jsonl")
        p = self.trackd.cli("trace", "export", "--format", "jsonl", "--experiment", "export-app",
                            "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("wrote 3 traces", p.stderr)
        with open(out) as f:
            lines = [json.loads(x) for x in f]
        self.assertEqual([x["trace_id"] for x in lines], list(reversed(ids)), "newest first")
        self.assertEqual([len(x["span_list"]) for x in lines], [2, 2, 2])
        self.assertEqual(lines[0]["span_list"][1]["tokens_in"], 2)
        self.assertFalse([f for f in os.listdir(self.tmp) if ".tmp." in f], "no temporary left")
        p = self.trackd.cli("trace", "export", "--experiment", "export-app")
        self.assertEqual(p.returncode, 2, "no --format: a usage error")

    def test_limits_and_bad_bodies(self):
        r = self.http.request("POST", "/v1/traces", body=b"{}",
                              headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415, str(r))
        r = self.post_pb(b"\xff\xff\xff\xff")
        self.assertEqual(r.status, 400, str(r))
        self.assertEqual(r.headers.get("content-type"), "application/x-protobuf")
        self.assertIn(b"not an OTLP", pb_fields(r.body)[2][0])
        r = self.http.request("POST", "/v1/traces", body=b"{not json",
                              headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400, str(r))
        self.assertEqual(r.json["code"], 3)
        # gzip that inflates past the limit (33 MiB of zeros in ~33 KB)
        bomb = gzip.compress(b"\0" * (33 << 20))
        r = self.http.request("POST", "/v1/traces", body=bomb,
                              headers={"Content-Type": "application/x-protobuf",
                                       "Content-Encoding": "gzip"})
        self.assertEqual(r.status, 413, str(r))
        r = self.http.request("POST", "/v1/traces", body=b"\x1f\x8b\x08\x00garbage",
                              headers={"Content-Type": "application/json",
                                       "Content-Encoding": "gzip"})
        self.assertEqual(r.status, 400, str(r))
        r = self.http.request("POST", "/v1/traces", body=b"{}",
                              headers={"Content-Type": "application/json",
                                       "Content-Encoding": "br"})
        self.assertEqual(r.status, 415, str(r))
        self.assertTrue(self.trackd.alive())

    def test_caps(self):
        t = tid(7)
        attrs = {f"k{i:03d}": i for i in range(300)}
        attrs["input.value"] = "é" * 20000  # 40,000 bytes: cut on a character boundary
        r = self.post_json(js_export([js_span(t, sid(1), "wide", T0, T0 + 1, attrs=attrs)]))
        self.assertEqual(r.status, 200, str(r))
        p = self.trackd.cli("trace", "show", t, "--json")
        a = json.loads(p.stdout)["span_list"][0]["attributes"]
        self.assertLessEqual(len([k for k in a if not k.startswith("@")]), 130)
        self.assertGreater(a["@dropped_attributes"], 150)
        if "input.value" in a:
            self.assertEqual(a["@truncated"]["input.value"], 40000)
            self.assertLessEqual(len(a["input.value"].encode()), 8192)

    def test_big_trace_folds(self):
        t = tid(8)
        root = js_span(t, sid(1), "batch-eval", T0, T0 + 10**10)
        self.assertEqual(self.post_json(js_export([root], {"service.name": "big"})).status, 200)
        n = 50000
        for base in range(0, n, 10000):
            spans = [js_span(t, sid(2 + i), f"call-{i}", T0 + i, T0 + i + 1000, parent=sid(1),
                             attrs={"gen_ai.usage.input_tokens": 1})
                     for i in range(base, base + 10000)]
            r = self.post_json(js_export(spans, {"service.name": "big"}), gz=True)
            self.assertEqual((r.status, r.json), (200, {}), str(r)[:300])
        got = self.traces("--experiment", "big")[t]
        self.assertEqual((got["spans"], got["tokens_in"]), (n + 1, n))
        start = time.monotonic()
        out = self.show(t)
        took = time.monotonic() - start
        self.assertIn(f"… {n - 25:,} more children".replace(",", ""), out.replace(",", ""))
        self.assertLess(len(out.splitlines()), 40)
        print(f"\n  trace show of {n + 1} spans: {took * 1000:.0f} ms", file=sys.stderr)


class Retention(unittest.TestCase):
    """--trace-retention: old traces go in the background, recent ones stay."""

    def test_old_traces_are_deleted(self):
        tmp = tempfile.mkdtemp(prefix="otlp-retention-")
        d = Trackd(tmp)
        argv = d.argv
        d.argv = lambda: argv() + ["--trace-retention", "1"]
        d.start()
        try:
            http = Http(d.port)
            now = time.time_ns()
            old = [js_span(tid(900), sid(1), "old", T0, T0 + 10),
                   js_span(tid(900), sid(2), "old-child", T0 + 1, T0 + 5, parent=sid(1),
                           attrs={"gen_ai.request.model": "m"})]
            new = [js_span(tid(901), sid(1), "new", now, now + 10)]
            body = json.dumps(js_export(old + new, {"service.name": "ret"})).encode()
            r = http.request("POST", "/v1/traces", body=body,
                             headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 200, str(r))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                p = d.cli("traces", "--json")
                got = {t["trace_id"] for t in json.loads(p.stdout)}
                if tid(900) not in got:
                    break
                time.sleep(0.5)
            self.assertEqual(got, {tid(901)}, "the 2023 trace goes, today's stays")
            p = d.cli("trace", "show", tid(900))
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("no trace", p.stderr)
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
