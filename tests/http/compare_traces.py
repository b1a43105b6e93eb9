#!/usr/bin/env python3
"""`track compare` of runs with LLM traces (README "Side by side", "Traces"): a real trackd
with --http, runs made with the real CLI, OTLP JSON posted to /v1/traces tied to each run by
`track.run_id` (as a resource attribute and as a span attribute), then the rollups compare
prints beside the metrics, in every format: the trace count, latency p50 and p95 by nearest
rank (of n durations sorted ascending, the one at rank ceil(p * n / 100)), tokens in, out and
in all and cost summed, the error rate; a run without traces has "-" cells and null in JSON,
and runs without any have no trace rows at all. Also: a run of more traces than one page
(10,000) whose page edge falls inside a group of traces that started in the same
nanosecond is counted exactly, and one of more than a page in one nanosecond is an error.

Run: TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/compare_traces.py -v
"""

import csv
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlflow_replay import Http, Trackd  # noqa: E402
from otlp_traces import T0, js_export, js_span, sid  # noqa: E402

MS = 10**6  # ns
TRACE_ROWS = ["traces", "latency p50", "latency p95", "tokens in", "tokens out", "tokens total",
              "cost", "error rate"]
CSV_ROWS = ["traces.count", "traces.latency_p50_ms", "traces.latency_p95_ms",
            "traces.tokens_in", "traces.tokens_out", "traces.tokens_total", "traces.cost",
            "traces.error_rate"]


def nearest_rank(durations, p):
    v = sorted(durations)
    return v[max(1, math.ceil(p * len(v) / 100)) - 1]


def tid(run_no, n):
    return f"{run_no:08x}{n:024x}"


class CompareTraces(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cmptrace-")
        cls.trackd = Trackd(cls.tmp).start()
        cls.http = Http(cls.trackd.port)
        # A: five traces, the run named by the resource; durations 10, 20, 30, 40, 100 ms
        # (nearest rank: p50 30, p95 100; a linear interpolation would give p95 88);
        # costs exact in binary, so their sum is the same in any order; one trace fails
        cls.a = cls.start_run("with-traces-a", "lr=0.1")
        cls.a_dur = [10, 20, 30, 40, 100]
        cls.a_tok = [(100, 20), (200, 40), (300, 60), (50, 5), (1000, 250)]
        cls.a_cost = [0.25, 0.5, 0.125, 0.0625, 1.0]
        spans = []
        for n, (d, (ti, to), c) in enumerate(zip(cls.a_dur, cls.a_tok, cls.a_cost)):
            t, start = tid(1, n), T0 + n * 1000 * MS
            spans.append(js_span(t, sid(1), "answer", start, start + d * MS))
            spans.append(js_span(t, sid(2), "llm", start + MS, start + 2 * MS, parent=sid(1),
                                 attrs={"gen_ai.request.model": "gpt-4o-mini",
                                        "gen_ai.usage.input_tokens": ti,
                                        "gen_ai.usage.output_tokens": to,
                                        "llm.cost.total": c},
                                 status=2 if n == 3 else 1, msg="rate limited" if n == 3 else ""))
        cls.post(js_export(spans, {"service.name": "cmp", "track.run_id": cls.a}))
        # B: two traces, the run named on the root span; 7 and 3 ms; no error
        cls.b = cls.start_run("with-traces-b", "lr=0.2")
        spans = []
        for n, d in enumerate([7, 3]):
            t, start = tid(2, n), T0 + n * 1000 * MS
            spans.append(js_span(t, sid(1), "answer", start, start + d * MS,
                                 attrs={"track.run_id": cls.b, "gen_ai.usage.input_tokens": 10,
                                        "gen_ai.usage.output_tokens": 1 + n,
                                        "llm.cost.total": 0.5}))
        cls.post(js_export(spans, {"service.name": "cmp"}))
        # C and D: metrics only
        cls.c = cls.start_run("no-traces-c", "lr=0.3")
        cls.d = cls.start_run("no-traces-d", "lr=0.4")

    @classmethod
    def tearDownClass(cls):
        cls.trackd.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def start_run(cls, name, param):
        p = cls.trackd.cli("run", "start", "--experiment", "cmp", "--name", name,
                           "--param", param)
        assert p.returncode == 0, p.stderr
        run = p.stdout.split()[-1]
        for step, v in enumerate([0.5, 0.25]):
            q = cls.trackd.cli("log-metric", "--run", run, "loss", str(v), "--step", str(step))
            assert q.returncode == 0, q.stderr
        q = cls.trackd.cli("run", "end", "--run", run)
        assert q.returncode == 0, q.stderr
        return run

    @classmethod
    def post(cls, export):
        r = cls.http.request("POST", "/v1/traces", body=json.dumps(export).encode(),
                             headers={"Content-Type": "application/json"}, timeout=120)
        assert (r.status, r.json) == (200, {}), str(r)

    def compare(self, *args, code=0):
        p = self.trackd.cli("compare", *args, env={"COLUMNS": "200", "NO_COLOR": "1"})
        self.assertEqual(p.returncode, code, p.stderr)
        return p

    def table_rows(self, out):
        """{label: [cell per run]} of a column-per-run table (cells apart by 2+ blanks)."""
        rows = {}
        for line in out.splitlines():
            parts = re.split(r" {2,}", line.strip())
            rows[parts[0]] = parts[1:]
        return rows

    def test_table_shows_the_rollups_beside_the_metrics(self):
        p = self.compare(self.a, self.b, self.c)
        rows = self.table_rows(p.stdout)
        self.assertEqual(rows["traces"], ["5", "2", "-"], p.stdout)
        self.assertEqual(rows["latency p50"], ["30ms", "3ms", "-"])
        self.assertEqual(rows["latency p95"], ["100ms", "7ms", "-"])
        self.assertEqual(rows["tokens in"], ["1650", "20", "-"])
        self.assertEqual(rows["tokens out"], ["375", "3", "-"])
        self.assertEqual(rows["tokens total"], ["2025", "23", "-"])
        self.assertEqual(rows["cost"], ["1.9375", "1", "-"])
        self.assertEqual(rows["error rate"], ["20% (1/5)", "0% (0/2)", "-"])
        labels = [line.split("  ")[0] for line in p.stdout.splitlines()]
        # beside the metrics: right after the last metric row, in this order
        at = labels.index("traces")
        self.assertEqual(labels[at - 1], "loss trend", p.stdout)
        self.assertEqual(labels[at:at + 8], TRACE_ROWS)

    def test_the_percentiles_are_nearest_rank(self):
        self.assertEqual(nearest_rank(self.a_dur, 50), 30)
        self.assertEqual(nearest_rank(self.a_dur, 95), 100)
        self.assertEqual((nearest_rank([7, 3], 50), nearest_rank([7, 3], 95)), (3, 7))
        j = json.loads(self.compare(self.a, self.b, "--json").stdout)
        got = [(r["traces"]["latency_p50_ms"], r["traces"]["latency_p95_ms"]) for r in j["runs"]]
        self.assertEqual(got, [(30, 100), (3, 7)])

    def test_json_has_a_traces_object_per_run_null_without(self):
        for flag in (["--json"], ["--format", "json"]):
            with self.subTest(flag=flag):
                j = json.loads(self.compare(self.a, self.b, self.c, *flag).stdout)
                by = {r["run_id"]: r for r in j["runs"]}
                self.assertEqual(by[self.a]["traces"], {
                    "count": 5, "latency_p50_ms": 30, "latency_p95_ms": 100,
                    "tokens_in": 1650, "tokens_out": 375, "tokens_total": 2025,
                    "cost": 1.9375, "errors": 1, "error_rate": 0.2})
                self.assertEqual(by[self.b]["traces"], {
                    "count": 2, "latency_p50_ms": 3, "latency_p95_ms": 7,
                    "tokens_in": 20, "tokens_out": 3, "tokens_total": 23,
                    "cost": 1.0, "errors": 0, "error_rate": 0})
                self.assertIsNone(by[self.c]["traces"])
                # beside the metrics, not instead of them
                self.assertEqual(by[self.a]["metrics"]["loss"]["last"], 0.25)
                self.assertEqual(list(by[self.a])[-3:], ["metrics", "traces", "feedback"])

    def test_csv_and_markdown_have_the_same_rows(self):
        p = self.compare(self.a, self.b, self.c, "--format", "csv")
        rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(p.stdout))}
        self.assertEqual(rows["row"], [self.a, self.b, self.c])
        want = {"traces.count": ["5", "2", ""], "traces.latency_p50_ms": ["30", "3", ""],
                "traces.latency_p95_ms": ["100", "7", ""],
                "traces.tokens_in": ["1650", "20", ""], "traces.tokens_out": ["375", "3", ""],
                "traces.tokens_total": ["2025", "23", ""], "traces.cost": ["1.9375", "1", ""],
                "traces.error_rate": ["0.2", "0", ""]}
        for k, v in want.items():
            self.assertEqual(rows[k], v, k)
        names = list(rows)
        self.assertEqual(names[names.index("traces.count"):][:8], CSV_ROWS)
        p = self.compare(self.a, self.b, self.c, "--format", "markdown")
        self.assertIn("| traces | 5 | 2 | - |", p.stdout)
        self.assertIn("| latency p95 | 100ms | 7ms | - |", p.stdout)
        self.assertIn("| error rate | 20% (1/5) | 0% (0/2) | - |", p.stdout)

    def test_the_turned_table_has_a_column_per_rollup(self):
        p = self.compare(self.a, self.b, "--columns", "metrics")
        head, *lines = p.stdout.splitlines()
        cols = re.split(r" {2,}", head.strip())
        self.assertEqual(cols[-6:], ["traces", "latency p50", "latency p95", "tokens total",
                                     "cost", "error rate"], p.stdout)
        a = next(line for line in lines if line.startswith(self.a[:8]))
        self.assertTrue(re.search(r"\b5\s+30ms\s+100ms\s+2025\s+1\.9375\s+20% \(1/5\)$", a),
                        p.stdout)

    def test_runs_without_traces_show_no_trace_rows(self):
        p = self.compare(self.c, self.d)
        labels = {line.split("  ")[0] for line in p.stdout.splitlines()}
        for row in TRACE_ROWS:
            self.assertNotIn(row, labels, p.stdout)
        self.assertIn("loss last", labels)
        p = self.compare(self.c, self.d, "--format", "csv")
        self.assertNotIn("traces.", p.stdout)
        j = json.loads(self.compare(self.c, self.d, "--json").stdout)
        self.assertEqual([r["traces"] for r in j["runs"]], [None, None])

    def test_a_page_edge_inside_a_same_start_group_counts_exactly(self):
        # 10,050 traces, newest first: 9,990 with starts of their own, then 30 that start
        # in the same nanosecond (the first page of 10,000 ends inside them), then 30 older.
        # Asked for "before the last start", the next page would lose 20 of the group.
        run = self.start_run("many-traces", "lr=0.5")
        n, durs, spans = 10050, [], []
        group = T0 + 100 * 1000 * MS
        for i in range(n):  # i = 0 is the newest
            start = (group + (9990 - i) * MS if i < 9990 else
                     group if i < 10020 else group - (i - 10019) * MS)
            d = (i + 1) * MS
            durs.append(d)
            spans.append(js_span(tid(3, i), sid(1), "q", start, start + d,
                                 attrs={"gen_ai.usage.input_tokens": 1,
                                        "llm.cost.total": 0.5}, status=2 if i % 10 == 0 else 1))
        self.post(js_export(spans, {"service.name": "cmp", "track.run_id": run}))
        j = json.loads(self.compare(run, self.a, "--json").stdout)
        t = j["runs"][0]["traces"]
        self.assertEqual(t, {"count": n, "latency_p50_ms": nearest_rank(durs, 50) / MS,
                             "latency_p95_ms": nearest_rank(durs, 95) / MS,
                             "tokens_in": n, "tokens_out": 0, "tokens_total": n,
                             "cost": n * 0.5, "errors": 1005, "error_rate": 0.1})
        self.assertEqual((t["latency_p50_ms"], t["latency_p95_ms"]), (5025, 9548))
        rows = self.table_rows(self.compare(run, self.a).stdout)
        self.assertEqual(rows["traces"], ["10050", "5"])
        self.assertEqual(rows["latency p50"], ["5.025s", "30ms"])
        self.assertEqual(rows["latency p95"], ["9.548s", "100ms"])
        self.assertEqual(rows["error rate"], ["10% (1005/10050)", "20% (1/5)"])

    def test_more_than_a_page_in_one_nanosecond_is_an_error(self):
        run = self.start_run("same-start", "lr=0.6")
        start = T0 + 200 * 1000 * MS
        spans = [js_span(tid(4, i), sid(1), "q", start, start + MS) for i in range(10001)]
        self.post(js_export(spans, {"service.name": "cmp", "track.run_id": run}))
        p = self.compare(run, self.a, code=1)
        self.assertIn("more than 10000 traces start in the same nanosecond", p.stderr)
        self.assertEqual(p.stdout, "")


    def test_export_pages_through_a_shared_start_time(self):
        # `track trace export` pages by 1,000: 1,040 traces, 990 with starts of their own,
        # then 40 in one nanosecond across the first page's end, then 10 older. Each once.
        n = 1040
        group = T0 + 300 * 1000 * MS
        spans = []
        for i in range(n):
            start = (group + (990 - i) * MS if i < 990 else
                     group if i < 1030 else group - (i - 1029) * MS)
            spans.append(js_span(tid(5, i), sid(1), "q", start, start + MS))
        self.post(js_export(spans, {"service.name": "export-edge"}))
        out = os.path.join(self.tmp, "edge.jsonl")
        p = self.trackd.cli("trace", "export", "--experiment", "export-edge", "--format", "jsonl",
                            "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            ids = [json.loads(line)["trace_id"] for line in f]
        self.assertEqual(len(ids), n, "traces lost or doubled at the page's edge")
        self.assertEqual(sorted(ids), sorted(tid(5, i) for i in range(n)))


if __name__ == "__main__":
    unittest.main()
