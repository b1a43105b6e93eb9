#!/usr/bin/env python3
"""runs/log-batch's fast path (daemon/mlflow_batch.c) against its general path, on a real trackd.

The fast path reads a body of run_id and metrics in place; any other body goes through jansson
and mlflow_run.c's log_batch. The fast path must be invisible: for every body, the answer
(status, error_code, message) and what was stored must be what the general path gives. Each
case sends the same metrics twice, each time to a fresh run: as the body the fast path takes,
and with `"params": []` added, which the fast path leaves to the general path. Then every
key's history is read back from both runs and compared, values bit for bit (repr, so -0.0 is
not 0.0), and each value also against Python's own reading of the text (float() is correctly
rounded, as strtod is; an integer goes through int, as jansson reads it).

Values: random doubles of every exponent and a training loop's values, printed as repr,
%.17g, %.15g and %g; integers up to 20 digits; the subnormal and overflow edges; "-0";
malformed numbers. Steps and timestamps as integers, digit strings, reals, negative, too
large. Keys good, bad, non-ASCII, escaped; fields missing, repeated, unknown, reordered.

Run:  TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/mlflow_batch_fast.py
"""

import json
import math
import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlflow_replay import API, ReplayCase, now_ms  # noqa: E402

T = 1700000000000  # an explicit timestamp, so both runs store the same one

VALUES = [
    "0", "-0", "0.0", "-0.0", "7", "-123", "1.5", "0.1", "1E5", "1e+5", "1e-5", "2.5e-3",
    "123456789012345678", "-123456789012345678", "1234567890123456789",
    "9223372036854775807", "9223372036854775808", "12345678901234567890",
    "1e308", "1.7976931348623157e308", "1.7976931348623159e308", "1e400", "-1e400",
    "1e-400", "4.9406564584124654e-324", "2.4703282292062328e-324", "2.2250738585072011e-308",
    "2.2250738585072014e-308", "9007199254740993", "9007199254740993.0",
    "1.00000000000000011102230246251565404236316680908203125",
    "3.14159265358979323846264338327950288419716939937510582097494459",
    "0.000000000000000000000000000000000000000000000000000000000000000000000001",
    "01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "1.5.5", "--1", "true", "null", "[1]",
    '"NaN"', '"Infinity"', '"-Infinity"', '"nan"', '"inf"', '"1.5"', '"x"', '""',
]
INTS = ["0", "1", "42", '"17"', '"0"', '"123456789012345678"', '"1234567890123456789"',
        "-1", '"-1"', '"+5"', '" 5"', "1.0", "1e3", "1.5", "9000000000000000",
        "9000000000000001", "-9000000000000000", "12345678901234567", "0123", '""', "null"]
KEYS = ["loss", "train/loss", "a b:c", "m.1-x_y", "bad!key", "../up", "/abs", "a//b", "",
        "x" * 250, "x" * 251, "\u00e9t\u00e9", "a\\u0062", "tab\\there", "k" * 16, "k" * 17]


def random_double(rng):
    while True:
        d = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(d):
            return d


def random_value(rng):
    if rng.random() < 0.5:
        d = random_double(rng)
    else:  # what a training loop logs
        d = 1.0 / (1.0 + rng.random() * 1e3) + 0.05 * rng.random()
    return rng.choice([repr(d), "%.17g" % d, "%.15g" % d, "%g" % d])


def expected(text):
    """Python's reading of a value's text: the double a correct strtod gives."""
    v = json.loads(text)
    if isinstance(v, str):
        return {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}.get(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class FastPathIsInvisible(ReplayCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.http.api("POST", "experiments/create", {"name": "fast path"})
        cls.exp_id = r.json["experiment_id"]

    def run_id(self):
        return self.ok(self.http.api("POST", "runs/create", {
            "experiment_id": self.exp_id, "start_time": now_ms()}))["run"]["info"]["run_id"]

    def post_raw(self, body):
        if isinstance(body, str):
            body = body.encode()
        return self.http.request("POST", API + "runs/log-batch", body=body,
                                 headers={"Content-Type": "application/json"})

    def histories(self, run, keys):
        out = {}
        for k in keys:
            r = self.http.api("GET", "metrics/get-history", {"run_id": run, "metric_key": k})
            if r.status == 200:
                # a point without a timestamp gets the time it came: the two runs' differ
                out[k] = [(m["key"], repr(m["value"]),
                           m["timestamp"] if m["timestamp"] < T + 10**9 else "now", m["step"])
                          for m in r.json.get("metrics", [])]
        return out

    def same(self, items, keys, what, run_field="run_id", run=None, extra=""):
        """items: the metric objects' JSON texts. Both paths answer and store alike."""
        a, b = run or self.run_id(), run or self.run_id()
        body = lambda r, tail: ('{"%s":"%s","metrics":[%s]%s%s}'
                                % (run_field, r, ",".join(items), extra, tail))
        fast, slow = self.post_raw(body(a, "")), self.post_raw(body(b, ',"params":[]'))
        self.assertEqual(fast.status, slow.status, f"{what}: fast {fast}\nslow {slow}")
        if fast.status != 200:
            self.assertEqual((fast.json or {}).get("error_code"),
                             (slow.json or {}).get("error_code"), f"{what}: {fast} / {slow}")
            self.assertEqual((fast.json or {}).get("message"), (slow.json or {}).get("message"),
                             f"{what}: {fast} / {slow}")
        if run is None:
            self.assertEqual(self.histories(a, keys), self.histories(b, keys), what)
        return fast

    def test_values(self):
        rng = random.Random(15)
        texts = VALUES + [random_value(rng) for _ in range(400)]
        for text in texts:
            with self.subTest(value=text[:40]):
                item = '{"key":"v","value":%s,"timestamp":%d,"step":3}' % (text, T)
                r = self.same([item], ["v"], f"value {text[:40]}")
                want = None
                try:
                    want = expected(text)
                except ValueError:
                    pass
                if r.status == 200 and want is not None:
                    got = self.histories_of_last(text)
                    self.assertEqual(got, want if isinstance(want, str) else repr(want), text)

    def histories_of_last(self, text):
        """The stored value of one point, logged through the fast path alone."""
        run = self.run_id()
        item = '{"key":"v","value":%s,"timestamp":%d,"step":3}' % (text, T)
        self.assertEqual(self.post_raw('{"run_id":"%s","metrics":[%s]}' % (run, item)).status,
                         200)
        return self.histories(run, ["v"])["v"][0][1].strip("'")

    def test_steps_and_timestamps(self):
        for text in INTS:
            with self.subTest(int=text):
                self.same(['{"key":"s","value":1.5,"timestamp":%d,"step":%s}' % (T, text)],
                          ["s"], f"step {text}")
                self.same(['{"key":"t","value":1.5,"timestamp":%s,"step":1}' % text], ["t"],
                          f"timestamp {text}")

    def test_keys(self):
        for key in KEYS:
            with self.subTest(key=key[:20]):
                self.same(['{"key":"%s","value":2.5,"timestamp":%d,"step":0}' % (key, T),
                           '{"key":"ok","value":1,"timestamp":%d,"step":1}' % T],
                          [key, "ok", json.loads('"%s"' % key)], f"key {key[:20]}")

    def test_shapes(self):
        shapes = {
            "no step nor timestamp": ['{"key":"a","value":1.25}'],
            "fields reordered, spaced": [' { "step" : 4 ,"value":\t2.5e0,\n"key":"a" , '
                                         '"timestamp":%d }' % T],
            "a repeated field": ['{"key":"a","value":1,"value":2,"timestamp":%d}' % T],
            "an unknown field": ['{"key":"a","value":1,"timestamp":%d,"x":1}' % T],
            "no value": ['{"key":"a","timestamp":%d}' % T],
            "no key": ['{"value":1,"timestamp":%d}' % T],
            "empty object": ["{}"],
            "not an object": ["1"],
            "a negative step later": ['{"key":"a","value":1,"timestamp":%d,"step":1}' % T,
                                      '{"key":"b","value":1,"timestamp":%d,"step":-2}' % T],
            "a bad key after a negative step": [
                '{"key":"a","value":1,"timestamp":%d,"step":-1}' % T,
                '{"key":"b!","value":1,"timestamp":%d,"step":1}' % T],
            "keys interleaved": ['{"key":"%s","value":%d.5,"timestamp":%d,"step":%d}'
                                 % ("ab"[i % 2], i, T + i, i // 2) for i in range(50)],
            "a trailing comma": ['{"key":"a","value":1,"timestamp":%d}' % T, ""],
        }
        for what, items in shapes.items():
            with self.subTest(what):
                self.same(items, ["a", "b", "b!"], what)
        self.same([], [], "no metrics")
        self.same(['{"key":"a","value":1}'], ["a"], "run_uuid", run_field="run_uuid")
        run = self.run_id()
        self.same(['{"key":"a","value":1}'], ["a"], "both ids", extra=',"run_uuid":"%s"' % run,
                  run=run)
        self.same(['{"key":"a","value":1}'], ["a"], "a bad run id", run="zz" * 16)
        self.same(['{"key":"a","value":1}'], ["a"], "an unknown run", run="ab" * 16)
        self.same(['{"key":"a","value":1}'], ["a"], "a short run id", run="ab" * 15)

    def test_run_id_not_utf8(self):
        """32 bytes, one of them not UTF-8: jansson's error, not the run id's (fuzz_batch)."""
        item = b'{"key":"a","value":1,"timestamp":%d}' % T
        for tail in (b"", b',"params":[]'):
            r = self.post_raw(b'{"run_id":"0123\xb456789abcdef0123456789abcdef","metrics":[%s]%s}'
                              % (item, tail))
            self.err(r, 400, "BAD_REQUEST")

    def test_random_batches(self):
        """Whole batches as a training loop sends them, through both paths."""
        rng = random.Random(1518)
        for n in range(30):
            keys = [rng.choice(["loss", "acc", "lr", "train/loss", "k" * rng.randint(1, 40)])
                    for _ in range(rng.randint(1, 5))]
            items = ['{"key":"%s","value":%s,"timestamp":%d,"step":%d}'
                     % (rng.choice(keys), random_value(rng), T + i, i)
                     for i in range(rng.randint(1, 1000))]
            with self.subTest(batch=n):
                self.assertEqual(self.same(items, set(keys), f"batch {n}").status, 200)


if __name__ == "__main__":
    unittest.main()
