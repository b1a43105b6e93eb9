#!/usr/bin/env python3
"""A real OpenTelemetry SDK against trackd's /v1/traces: npm's @opentelemetry/sdk-trace-base
with @opentelemetry/exporter-trace-otlp-proto (tests/otel/, pinned by its package-lock.json),
installed here with `npm ci` into OTEL_NODE_DIR (the build tree; node_modules is never
committed), run with the machine's Node.js. Its spans must arrive whole: the trees, the
GenAI attributes as model and tokens, the error status.

Run: TRACKD=... TRACK_CLI=... OTEL_NODE_DIR=build/otel-node python3 tests/http/otel_sdk.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlflow_replay import Trackd  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "otel")


def install():
    """npm ci of tests/otel into OTEL_NODE_DIR, once per lock file; returns the dir."""
    dest = os.environ.get("OTEL_NODE_DIR") or os.path.join(tempfile.gettempdir(), "track-otel")
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(SRC, "package-lock.json"), "rb") as f:
        lock = f.read()
    stamp = os.path.join(dest, ".installed-lock")
    if os.path.exists(stamp):
        with open(stamp, "rb") as f:
            if f.read() == lock:
                return dest
    for f in ("package.json", "package-lock.json", "export.mjs"):
        shutil.copy(os.path.join(SRC, f), dest)
    npm = shutil.which("npm")
    if not npm:
        raise AssertionError("npm is not installed (scripts/test installs it)")
    p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=dest,
                       capture_output=True, text=True, timeout=600)
    if p.returncode:
        raise AssertionError(f"npm ci failed in {dest}:\n{p.stdout}\n{p.stderr}")
    with open(stamp, "wb") as f:
        f.write(lock)
    return dest


class OtelSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node_dir = install()
        shutil.copy(os.path.join(SRC, "export.mjs"), cls.node_dir)
        cls.tmp = tempfile.mkdtemp(prefix="otel-sdk-")
        cls.trackd = Trackd(cls.tmp).start()

    @classmethod
    def tearDownClass(cls):
        cls.trackd.stop()

    def test_the_sdks_traces_arrive_whole(self):
        url = f"http://127.0.0.1:{self.trackd.port}/v1/traces"
        p = subprocess.run(["node", "export.mjs", url, "rag-node"], cwd=self.node_dir,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, f"{p.stdout}\n{p.stderr}\n{self.trackd.log()}")
        ids = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(len(ids), 3)
        q = self.trackd.cli("traces", "--experiment", "rag-node", "--json")
        self.assertEqual(q.returncode, 0, q.stderr)
        got = {t["trace_id"]: t for t in json.loads(q.stdout)}
        self.assertEqual(sorted(got), sorted(ids))
        for n, tid in enumerate(ids):
            t = got[tid]
            self.assertEqual((t["spans"], t["root"], t["models"]),
                             (3, "answer-question", ["gpt-4o-mini"]))
            self.assertEqual((t["tokens_in"], t["tokens_out"]), (100 + n, 20))
            self.assertEqual(t["errors"], 1 if n == 2 else 0)
        show = self.trackd.cli("trace", "show", ids[2])
        self.assertEqual(show.returncode, 0, show.stderr)
        lines = show.stdout.splitlines()
        self.assertIn("answer-question", lines[1])
        self.assertTrue(any("retrieve" in x for x in lines[2:]), show.stdout)
        self.assertTrue(any("chat gpt-4o-mini" in x and "ERROR: rate limited" in x
                            for x in lines[2:]), show.stdout)
        print("\n" + show.stdout, file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
