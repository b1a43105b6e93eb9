#!/usr/bin/env python3
"""Replays the MLflow 2.x Python client's HTTP requests against a real trackd.

No MLflow package is installed here, so this file sends, byte for byte as far as it matters,
what the client sends (mlflow/utils/rest_utils.py call_endpoint: GET fields in the query
string, every other method a JSON body; message_to_json: int64 as JSON numbers, NaN/Infinity
as the strings "NaN", "Infinity", "-Infinity") and checks the answers the client parses. The
facts and their sources in MLflow's tree are in /work/mlflow-facts.md (kept beside the repo).

Run:  TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/mlflow_replay.py -v
Each test class starts its own trackd on a temporary data directory with
`--listen ipc://DIR/sock --http 127.0.0.1:PORT`, waits for GET /health, and stops it with
SIGTERM. REPLAY_SHOW_LOG=1 prints trackd's log when a class ends.

Where MLflow leaves a choice open, these tests follow MLflow's own server (mlflow server
--serve-artifacts, SQL store):
- a malformed JSON body: MLflow reads it as {} and the missing required field answers
  400 INVALID_PARAMETER_VALUE; trackd answers 400 BAD_REQUEST naming the parse error;
- a model version pins a logged artifact: the tests log the model's MLmodel first, as
  mlflow.<flavor>.log_model does before register_model;
- an alias that is not set: 400 INVALID_PARAMETER_VALUE (MLflow's stores), not 404;
- RESOURCE_ALREADY_EXISTS is 400 (MLflow's ERROR_CODE_TO_HTTP_STATUS), not 409;
- runs/create returns exactly the tags sent plus mlflow.runName; a run created without a
  name gets a generated one, also in mlflow.runName;
- artifact paths are checked after percent-decoding: `..` segments and absolute paths are
  400 INVALID_PARAMETER_VALUE (mlflow/utils/uri.py validate_path_is_safe);
- mpu/create answers 501 NOT_IMPLEMENTED with the message the client matches on;
- an unknown /api/2.0 route answers 404 {"error_code": "ENDPOINT_NOT_FOUND"} (MLflow's Flask
  answers HTML, which the client maps to the same code);
- a body over trackd's limit (MLflow has none) may be 413 or 400, with a JSON error object.
Left open, not asserted: the user_id a run gets when the caller is authenticated.
"""

import base64
import gzip
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

UA = "mlflow-python-client/2.16.2"
API = "/api/2.0/mlflow/"
ART = "/api/2.0/mlflow-artifacts/artifacts"
MPU_MESSAGE = "Multipart upload is not supported for the current artifact repository"


def binary(var):
    path = os.environ.get(var)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"set {var} to the built binary (got {path!r})")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms():
    return int(time.time() * 1000)


class NoAnswer(AssertionError):
    """The server closed, reset or refused the connection instead of answering."""


class Resp:
    """One HTTP answer; str() says what was asked and what came back, for failure messages."""

    def __init__(self, method, target, status, headers, body):
        self.method, self.target, self.status = method, target, status
        self.headers = {k.lower(): v for k, v in headers}
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __str__(self):
        return f"{self.method} {self.target[:200]} -> {self.status} {self.body[:600]!r}"


class Http:
    """A client shaped like requests as rest_utils uses it: the same headers, one connection
    per call, auth as rest_utils builds it (Basic if user and password, else Bearer)."""

    def __init__(self, port, token=None, basic=None):
        self.port = port
        self.auth = None
        if basic:
            pair = f"{basic[0]}:{basic[1]}".encode()
            self.auth = "Basic " + base64.standard_b64encode(pair).decode()
        elif token:
            self.auth = f"Bearer {token}"

    def request(self, method, path, *, query=None, json_body=None, body=None, headers=None,
                chunked=False, timeout=30):
        target = path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
        h = {"User-Agent": UA, "Accept-Encoding": "gzip, deflate", "Accept": "*/*",
             "Connection": "keep-alive"}
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=False).encode()
            h["Content-Type"] = "application/json"
        if self.auth:
            h["Authorization"] = self.auth
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=h, encode_chunked=chunked)
            r = conn.getresponse()
            return Resp(method, target, r.status, r.getheaders(), r.read())
        except (OSError, http.client.HTTPException) as e:
            raise NoAnswer(f"{method} {target[:200]}: no HTTP answer ({e!r})") from e
        finally:
            conn.close()

    def api(self, method, endpoint, fields=None, timeout=30):
        """call_endpoint: GET puts the fields in the query string, other methods in JSON."""
        if method == "GET":
            return self.request("GET", API + endpoint, query=fields, timeout=timeout)
        return self.request(method, API + endpoint, timeout=timeout,
                            json_body=fields if fields is not None else {})


class Trackd:
    """A trackd on its own data directory: --listen ipc://DIR/sock --http ADDR:PORT."""

    def __init__(self, data_dir, http_addr="127.0.0.1"):
        self.dir = data_dir
        self.sock = f"ipc://{data_dir}/sock"
        self.port = 0  # trackd binds a free port and names it in its log (start)
        self.addr = http_addr
        self.log_path = os.path.join(data_dir, "trackd.log")
        self.proc = None

    def argv(self):
        return [binary("TRACKD"), "--data-dir", self.dir, "--listen", self.sock,
                "--http", f"{self.addr}:{self.port}"]

    def start(self, timeout=20):
        """Start trackd and wait for GET /health. The first start asks for port 0 and reads
        the port trackd bound from its log's `listening http=ADDR:PORT` line: a port picked
        here and released could be taken by another test's trackd in between, whose /health
        would then answer for ours. A restart asks for the same port again."""
        log = open(self.log_path, "ab")
        offset = log.tell()
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"trackd exited with {self.proc.returncode} before "
                                     f"GET /health answered; argv {self.argv()}\n{self.log()}")
            if not self.port:
                self.port = self.bound_port(offset)
                if not self.port:
                    time.sleep(0.05)
                    continue
            try:
                r = Http(self.port).request("GET", "/health", timeout=2)
                if r.status == 200:
                    return self
                last = str(r)
            except NoAnswer as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"GET /health did not answer 200 in {timeout}s (last: {last})\n"
                             f"{self.log()}")

    def bound_port(self, offset):
        """The port in this start's `info http: listening http=ADDR:PORT` line, or 0."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return 0
        for line in text.splitlines():
            if " listening http=" in line:
                return int(line.split(" listening http=", 1)[1].split()[0].rsplit(":", 1)[1])
        return 0

    def stop(self):
        if self.proc and self.proc.poll() is not None:
            code, self.proc = self.proc.returncode, None
            raise AssertionError(f"trackd had exited by itself (status {code}) before the "
                                 f"test stopped it\n{self.log()}")
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"trackd ignored SIGTERM for 15s\n{self.log()}")
            # a sanitizer's report (a leak, an overflow) makes the exit status non-zero
            if self.proc.returncode != 0:
                raise AssertionError(f"trackd exited with {self.proc.returncode} at SIGTERM\n"
                                     f"{self.log()}")

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "--- trackd log ---\n" + f.read()[-6000:]
        except OSError:
            return "(no trackd log)"

    def cli(self, *args, env=None):
        e = dict(os.environ, TRACK_SERVER=self.sock, TRACK_NO_AUTOSTART="1")
        e.update(env or {})
        return subprocess.run([binary("TRACK_CLI"), *args], env=e, capture_output=True,
                              text=True, timeout=60)


class ReplayCase(unittest.TestCase):
    """Base: one trackd per class, and the MLflow client's own call sequences."""

    http_addr = "127.0.0.1"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mlflow-replay-")
        cls.trackd = Trackd(cls.tmp, cls.http_addr)
        try:
            cls.prepare_store()
            cls.trackd.start()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.http = cls.client()

    @classmethod
    def prepare_store(cls):
        pass

    @classmethod
    def client(cls):
        return Http(cls.trackd.port)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.trackd.stop()
        finally:
            if os.environ.get("REPLAY_SHOW_LOG"):
                print(cls.trackd.log(), file=sys.stderr)
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- assertions ---------------------------------------------------------------------------

    def ok(self, resp):
        """200 with a JSON object (verify_rest_response refuses anything else)."""
        self.assertEqual(resp.status, 200, str(resp))
        self.assertIsInstance(resp.json, dict, f"not a JSON object: {resp}")
        return resp.json

    def err(self, resp, status, code):
        self.assertEqual(resp.status, status, str(resp))
        body = resp.json
        self.assertIsInstance(body, dict, f"error body is not a JSON object: {resp}")
        self.assertEqual(body.get("error_code"), code, str(resp))
        self.assertIsInstance(body.get("message"), str, f"no message: {resp}")
        return body

    def assertTime(self, value, what):
        self.assertIsInstance(value, int, f"{what} must be an int64 JSON number, got {value!r}")
        self.assertNotIsInstance(value, bool)
        self.assertLess(abs(value - now_ms()), 600_000, f"{what}={value} is not about now")

    # -- the client's sequences (fluent.py, rest_store.py) ------------------------------------

    def set_experiment(self, name, http=None):
        http = http or self.http
        r = http.api("GET", "experiments/get-by-name", {"experiment_name": name})
        if r.status == 200:
            return self.ok(r)["experiment"]["experiment_id"]
        self.err(r, 404, "RESOURCE_DOES_NOT_EXIST")
        exp_id = self.ok(http.api("POST", "experiments/create", {"name": name}))["experiment_id"]
        self.assertIsInstance(exp_id, str)
        self.assertTrue(exp_id.isdigit(), f"experiment_id {exp_id!r}")
        exp = self.ok(http.api("GET", "experiments/get", {"experiment_id": exp_id}))
        self.assertEqual(exp["experiment"]["lifecycle_stage"], "active")
        return exp_id

    def context_tags(self, run_name=None):
        tags = [{"key": "mlflow.user", "value": "replay"},
                {"key": "mlflow.source.name", "value": "train.py"},
                {"key": "mlflow.source.type", "value": "LOCAL"},
                {"key": "mlflow.source.git.commit", "value": "0123456789abcdef" * 2 + "01234567"}]
        if run_name:
            tags.append({"key": "mlflow.runName", "value": run_name})
        return tags

    def start_run(self, exp_id, run_name=None, http=None):
        fields = {"experiment_id": exp_id, "user_id": "replay", "start_time": now_ms(),
                  "tags": self.context_tags(run_name)}
        if run_name:
            fields["run_name"] = run_name
        run = self.ok((http or self.http).api("POST", "runs/create", fields))["run"]
        return run["info"]["run_id"], run

    def log_model_file(self, exp_id, run_id, directory):
        """What mlflow.<flavor>.log_model leaves before a version is registered: the model's
        directory with its MLmodel file (a track version pins a logged artifact)."""
        self.ok(self.http.request("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/{directory}/MLmodel",
                                  body=b"artifact_path: " + directory.encode() + b"\n",
                                  headers={"Content-Type": "application/octet-stream"}))

    def post(self, endpoint, fields, http=None):
        return self.ok((http or self.http).api("POST", endpoint, fields))

    def log_param(self, run_id, key, value):
        return self.http.api("POST", "runs/log-parameter",
                             {"run_uuid": run_id, "run_id": run_id, "key": key, "value": value})

    def log_metric(self, run_id, key, value, step=0, ts=None):
        return self.http.api("POST", "runs/log-metric",
                             {"run_uuid": run_id, "run_id": run_id, "key": key, "value": value,
                              "timestamp": ts or now_ms(), "step": step})

    def end_run(self, run_id, status="FINISHED"):
        end = now_ms()
        info = self.post("runs/update", {"run_uuid": run_id, "run_id": run_id,
                                         "status": status, "end_time": end})["run_info"]
        return end, info

    def get_run(self, run_id):
        r = self.http.api("GET", "runs/get", {"run_uuid": run_id, "run_id": run_id})
        return self.ok(r)["run"]

    def history(self, run_id, key, max_results=25000, page_token=None):
        q = {"run_uuid": run_id, "run_id": run_id, "metric_key": key, "max_results": max_results}
        if page_token:
            q["page_token"] = page_token
        return self.ok(self.http.api("GET", "metrics/get-history", q))

    @staticmethod
    def kv(items):
        return {i["key"]: i["value"] for i in items or []}


class MlflowReplay(ReplayCase):

    def test_start_run_sequence(self):
        name = "replay exp 1"   # a space: requests encodes it as '+' in the query string
        exp_id = self.set_experiment(name)
        self.assertNotEqual(exp_id, "0")
        self.assertEqual(self.set_experiment(name), exp_id, "second set_experiment finds it")

        start = now_ms()
        tags = self.context_tags("seq-run")
        created = self.ok(self.http.api("POST", "runs/create", {
            "experiment_id": exp_id, "user_id": "replay", "start_time": start,
            "tags": tags, "run_name": "seq-run"}))["run"]
        run_id = created["info"]["run_id"]
        self.assertRegex(run_id, r"^[0-9a-f]{32}$")
        self.assertEqual(created["info"]["status"], "RUNNING")
        self.assertEqual(created["info"]["start_time"], start)
        self.assertNotIn("end_time", created["info"])
        self.assertEqual(self.kv(created["data"].get("tags")), self.kv(tags))

        self.ok(self.log_param(run_id, "lr", "0.1"))
        t0 = now_ms()
        self.ok(self.log_metric(run_id, "acc", 0.9, step=0, ts=t0))
        self.post("runs/set-tag", {"run_uuid": run_id, "run_id": run_id,
                                   "key": "stage", "value": "dev"})
        self.post("runs/log-batch", {
            "run_id": run_id,
            "metrics": [{"key": "loss", "value": 0.5, "timestamp": t0 + 1, "step": 1},
                        {"key": "loss", "value": 0.4, "timestamp": t0 + 2, "step": 2}],
            "params": [{"key": "batch_size", "value": "32"}],
            "tags": [{"key": "phase", "value": "train"}]})
        # log_artifact asks for the run first, then PUTs to its artifact_uri
        art = self.get_run(run_id)["info"]["artifact_uri"]
        self.assertEqual(art, f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts")
        self.ok(self.http.request("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/f.txt",
                                  body=b"hello\n", headers={"Content-Type": "text/plain"}))
        end, info = self.end_run(run_id)
        self.assertEqual((info["status"], info["end_time"]), ("FINISHED", end))

        run = self.get_run(run_id)
        i = run["info"]
        self.assertEqual(i["run_id"], run_id)
        self.assertEqual(i["run_uuid"], run_id)
        self.assertEqual(i["run_name"], "seq-run")
        self.assertEqual(i["experiment_id"], exp_id)
        self.assertEqual(i["user_id"], "replay")
        self.assertEqual(i["status"], "FINISHED")
        self.assertEqual(i["start_time"], start)
        self.assertEqual(i["end_time"], end)
        self.assertEqual(i["artifact_uri"], f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts")
        self.assertEqual(i["lifecycle_stage"], "active")
        d = run["data"]
        self.assertEqual(self.kv(d.get("params")), {"lr": "0.1", "batch_size": "32"})
        self.assertEqual(self.kv(d.get("tags")),
                         dict(self.kv(tags), stage="dev", phase="train"))
        self.assertEqual(sorted(d.get("metrics", []), key=lambda m: m["key"]), [
            {"key": "acc", "value": 0.9, "timestamp": t0, "step": 0},
            {"key": "loss", "value": 0.4, "timestamp": t0 + 2, "step": 2}])
        self.assertEqual(self.history(run_id, "loss").get("metrics"), [
            {"key": "loss", "value": 0.5, "timestamp": t0 + 1, "step": 1},
            {"key": "loss", "value": 0.4, "timestamp": t0 + 2, "step": 2}])

    def test_run_without_name_gets_a_generated_one(self):
        run_id, run = self.start_run(self.set_experiment("replay unnamed"))
        name = run["info"].get("run_name")
        self.assertTrue(name, f"no generated run_name: {run}")
        self.assertEqual(self.kv(run["data"]["tags"]).get("mlflow.runName"), name)

    def test_experiments_get_and_search(self):
        exp_id = self.set_experiment("replay search exp")
        r = self.http.api("GET", "experiments/get", {"experiment_id": exp_id})
        e = self.ok(r)["experiment"]
        self.assertEqual(e["experiment_id"], exp_id)
        self.assertEqual(e["name"], "replay search exp")
        self.assertEqual(e["artifact_location"], f"mlflow-artifacts:/{exp_id}")
        self.assertEqual(e["lifecycle_stage"], "active")
        self.assertTime(e["creation_time"], "creation_time")
        self.assertTime(e["last_update_time"], "last_update_time")
        found = self.post("experiments/search", {"max_results": 1000, "view_type": "ACTIVE_ONLY"})
        ids = [x["experiment_id"] for x in found.get("experiments", [])]
        self.assertIn("0", ids)
        self.assertIn(exp_id, ids)
        one = self.post("experiments/search", {"max_results": 1000, "view_type": "ACTIVE_ONLY",
                                               "filter": "name = 'replay search exp'"})
        self.assertEqual([x["experiment_id"] for x in one.get("experiments", [])], [exp_id])
        self.err(self.http.api("GET", "experiments/get", {"experiment_id": "987654"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
        self.err(self.http.api("POST", "experiments/create", {"name": "replay search exp"}),
                 400, "RESOURCE_ALREADY_EXISTS")

    def test_default_experiment_is_0(self):
        e = self.ok(self.http.api("GET", "experiments/get", {"experiment_id": "0"}))["experiment"]
        self.assertEqual((e["experiment_id"], e["name"], e["lifecycle_stage"]),
                         ("0", "Default", "active"))
        self.assertEqual(e["artifact_location"], "mlflow-artifacts:/0")
        by_name = self.ok(self.http.api("GET", "experiments/get-by-name",
                                        {"experiment_name": "Default"}))["experiment"]
        self.assertEqual(by_name["experiment_id"], "0")
        run_id, run = self.start_run("0")
        self.assertEqual(run["info"]["artifact_uri"], f"mlflow-artifacts:/0/{run_id}/artifacts")

    def test_log_batch_at_its_limits(self):
        run_id, _ = self.start_run(self.set_experiment("replay limits"))
        t = now_ms()
        metrics = [{"key": "m", "value": float(i), "timestamp": t + i, "step": i}
                   for i in range(1000)]
        self.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
        self.assertEqual(len(self.history(run_id, "m").get("metrics", [])), 1000)
        params = [{"key": f"p{i}", "value": str(i)} for i in range(100)]
        self.post("runs/log-batch", {"run_id": run_id, "params": params})
        tags = [{"key": f"t{i}", "value": str(i)} for i in range(100)]
        self.post("runs/log-batch", {"run_id": run_id, "tags": tags})
        mixed = {"run_id": run_id,
                 "metrics": [{"key": "mix", "value": 1.0, "timestamp": t, "step": i}
                             for i in range(800)],
                 "params": [{"key": f"q{i}", "value": "v"} for i in range(100)],
                 "tags": [{"key": f"u{i}", "value": "v"} for i in range(100)]}
        self.post("runs/log-batch", mixed)
        data = self.get_run(run_id)["data"]
        self.assertEqual(len(data["params"]), 200)
        self.assertEqual(len([x for x in data["tags"] if x["key"][0] in "tu"]), 200)

    def test_log_batch_over_its_limits(self):
        run_id, _ = self.start_run(self.set_experiment("replay over limits"))
        t = now_ms()
        m = lambda n, k="over": [{"key": k, "value": 1.0, "timestamp": t, "step": i}
                                 for i in range(n)]
        cases = {
            "1001 metrics": {"metrics": m(1001)},
            "101 params": {"params": [{"key": f"op{i}", "value": "v"} for i in range(101)]},
            "101 tags": {"tags": [{"key": f"ot{i}", "value": "v"} for i in range(101)]},
            "1001 in all": {"metrics": m(801), "params": [{"key": f"oq{i}", "value": "v"}
                                                          for i in range(100)],
                            "tags": [{"key": f"ou{i}", "value": "v"} for i in range(100)]},
            "a duplicate param key": {"params": [{"key": "dup", "value": "1"},
                                                 {"key": "dup", "value": "2"}]},
        }
        for what, body in cases.items():
            with self.subTest(what):
                self.err(self.http.api("POST", "runs/log-batch", dict(body, run_id=run_id)),
                         400, "INVALID_PARAMETER_VALUE")
        data = self.get_run(run_id)["data"]
        self.assertEqual(data.get("params", []), [], "a refused batch wrote params")
        self.assertEqual(self.history(run_id, "over").get("metrics", []), [],
                         "a refused batch wrote metrics")

    def test_changed_param_is_refused(self):
        run_id, _ = self.start_run(self.set_experiment("replay params"))
        self.ok(self.log_param(run_id, "lr", "0.1"))
        self.ok(self.log_param(run_id, "lr", "0.1"))   # the same value again is fine
        self.err(self.log_param(run_id, "lr", "0.2"), 400, "INVALID_PARAMETER_VALUE")
        self.err(self.http.api("POST", "runs/log-batch", {
            "run_id": run_id, "params": [{"key": "lr", "value": "0.3"}]}),
            400, "INVALID_PARAMETER_VALUE")
        self.assertEqual(self.kv(self.get_run(run_id)["data"]["params"]), {"lr": "0.1"})

    def test_bad_keys_are_refused(self):
        run_id, _ = self.start_run(self.set_experiment("replay keys"))
        for key in ("bad!key", "../up", "/abs", "a//b", "x" * 251):
            with self.subTest(key=key[:20]):
                self.err(self.log_param(run_id, key, "v"), 400, "INVALID_PARAMETER_VALUE")
        self.ok(self.log_param(run_id, "ok/key-1.x y", "v"))

    def test_nan_and_infinity_round_trip(self):
        run_id, _ = self.start_run(self.set_experiment("replay nan"))
        t = now_ms()
        for step, v in enumerate(("NaN", "Infinity", "-Infinity")):
            self.ok(self.log_metric(run_id, "odd", v, step=step, ts=t + step))
            self.ok(self.log_metric(run_id, f"only_{step}", v, ts=t))
        self.post("runs/log-batch", {"run_id": run_id, "metrics": [
            {"key": "batched", "value": "NaN", "timestamp": t, "step": 0},
            {"key": "batched", "value": "-Infinity", "timestamp": t + 1, "step": 1}]})
        self.assertEqual([m["value"] for m in self.history(run_id, "odd")["metrics"]],
                         ["NaN", "Infinity", "-Infinity"])
        self.assertEqual([m["value"] for m in self.history(run_id, "batched")["metrics"]],
                         ["NaN", "-Infinity"])
        latest = self.kv(self.get_run(run_id)["data"]["metrics"])
        self.assertEqual([latest[f"only_{i}"] for i in range(3)], ["NaN", "Infinity", "-Infinity"])

    def test_metric_history_pages(self):
        run_id, _ = self.start_run(self.set_experiment("replay paging"))
        t = now_ms()
        pts = [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": t + i, "step": i}
               for i in range(25)]
        self.post("runs/log-batch", {"run_id": run_id, "metrics": pts})
        got, token, pages = [], None, 0
        while True:
            page = self.history(run_id, "loss", max_results=10, page_token=token)
            pages += 1
            got += page.get("metrics", [])
            token = page.get("next_page_token")
            self.assertLessEqual(len(page.get("metrics", [])), 10, f"page {pages}")
            if not token or pages > 5:
                break
        self.assertEqual(pages, 3, "25 points at 10 a page")
        self.assertEqual(got, pts)

    def test_search_runs_filter_and_order(self):
        exp_id = self.set_experiment("replay search runs")
        ids = {}
        for name, acc, lr in (("a", 0.9, "0.1"), ("b", 0.7, "0.1"), ("c", 0.95, "0.2"),
                              ("d", 0.3, "0.1")):
            ids[name], _ = self.start_run(exp_id, run_name=f"search-{name}")
            self.ok(self.log_param(ids[name], "lr", lr))
            self.ok(self.log_metric(ids[name], "acc", acc))
        found = self.post("runs/search", {
            "experiment_ids": [exp_id], "filter": "metrics.acc > 0.5 and params.lr = '0.1'",
            "run_view_type": "ACTIVE_ONLY", "max_results": 1000,
            "order_by": ["metrics.acc DESC"]})
        runs = found.get("runs", [])
        self.assertEqual([r["info"]["run_id"] for r in runs], [ids["a"], ids["b"]])
        self.assertEqual([self.kv(r["data"]["metrics"])["acc"] for r in runs], [0.9, 0.7])
        none = self.post("runs/search", {"experiment_ids": [exp_id], "filter": "metrics.acc > 2",
                                         "run_view_type": "ACTIVE_ONLY", "max_results": 1000})
        self.assertEqual(none.get("runs", []), [])
        self.err(self.http.api("POST", "runs/search", {"experiment_ids": [exp_id],
                                                       "filter": "metrics.acc >>> 1"}),
                 400, "INVALID_PARAMETER_VALUE")

    def test_delete_and_restore_run(self):
        exp_id = self.set_experiment("replay delete")
        run_id, _ = self.start_run(exp_id)
        search = lambda view: [r["info"]["run_id"] for r in self.post("runs/search", {
            "experiment_ids": [exp_id], "run_view_type": view, "max_results": 1000}
        ).get("runs", [])]
        self.post("runs/delete", {"run_id": run_id})
        self.assertEqual(self.get_run(run_id)["info"]["lifecycle_stage"], "deleted")
        self.assertEqual(search("ACTIVE_ONLY"), [])
        self.assertEqual(search("DELETED_ONLY"), [run_id])
        self.post("runs/restore", {"run_id": run_id})
        self.assertEqual(self.get_run(run_id)["info"]["lifecycle_stage"], "active")
        self.assertEqual(search("ACTIVE_ONLY"), [run_id])
        self.err(self.http.api("GET", "runs/get", {"run_uuid": "f" * 32, "run_id": "f" * 32}),
                 404, "RESOURCE_DOES_NOT_EXIST")

    def test_delete_tag(self):
        run_id, _ = self.start_run(self.set_experiment("replay tags"))
        self.post("runs/set-tag", {"run_uuid": run_id, "run_id": run_id, "key": "t", "value": "1"})
        self.post("runs/set-tag", {"run_uuid": run_id, "run_id": run_id, "key": "t", "value": "2"})
        self.assertEqual(self.kv(self.get_run(run_id)["data"]["tags"])["t"], "2")
        self.post("runs/delete-tag", {"run_id": run_id, "key": "t"})
        self.assertNotIn("t", self.kv(self.get_run(run_id)["data"]["tags"]))
        self.err(self.http.api("POST", "runs/delete-tag", {"run_id": run_id, "key": "t"}),
                 404, "RESOURCE_DOES_NOT_EXIST")

    # -- artifacts (http_artifact_repo.py) ----------------------------------------------------

    def artifact_root(self, exp_name):
        exp_id = self.set_experiment(exp_name)
        run_id, _ = self.start_run(exp_id)
        return f"{exp_id}/{run_id}/artifacts"

    def list_artifacts(self, path):
        return self.ok(self.http.request("GET", ART, query={"path": path})).get("files", [])

    def test_artifact_put_list_get_delete(self):
        root = self.artifact_root("replay artifacts")
        small = b"line one\nline two\n"
        self.ok(self.http.request("PUT", f"{ART}/{root}/f.txt", body=small,
                                  headers={"Content-Type": "text/plain"}))
        big = bytes(range(256)) * 4096 + b"tail"          # 1 MiB + 4, sent chunked
        pieces = (big[i:i + 65536] for i in range(0, len(big), 65536))
        self.ok(self.http.request("PUT", f"{ART}/{root}/sub/c.bin", body=pieces, chunked=True,
                                  headers={"Content-Type": "application/octet-stream"}))
        self.assertEqual(self.list_artifacts(root), [
            {"path": "f.txt", "is_dir": False, "file_size": len(small)},
            {"path": "sub", "is_dir": True}])
        self.assertEqual(self.list_artifacts(f"{root}/sub"),
                         [{"path": "c.bin", "is_dir": False, "file_size": len(big)}])
        for name, data in (("f.txt", small), ("sub/c.bin", big)):
            r = self.http.request("GET", f"{ART}/{root}/{name}")
            self.assertEqual(r.status, 200, str(r))
            self.assertEqual(r.body, data, f"{name}: downloaded bytes differ")
        self.ok(self.http.request("DELETE", f"{ART}/{root}/f.txt"))
        self.assertEqual(self.list_artifacts(root), [{"path": "sub", "is_dir": True}])
        r = self.http.request("GET", f"{ART}/{root}/f.txt")
        self.assertEqual(r.status, 404, str(r))
        self.assertEqual(self.list_artifacts(f"{root}/nothing-here"), [])

    def test_artifact_path_traversal_is_refused(self):
        root = self.artifact_root("replay traversal")
        bad = ["../escape.txt", "a/../../escape.txt", "%2e%2e/escape.txt", "%2E%2E%2Fescape.txt",
               "sub/%252e%252e/%252e%252e/escape.txt"]
        for rel in bad:
            for method in ("PUT", "GET", "DELETE"):
                with self.subTest(method=method, path=rel):
                    r = self.http.request(method, f"{ART}/{root}/{rel}",
                                          body=b"x" if method == "PUT" else None)
                    self.err(r, 400, "INVALID_PARAMETER_VALUE")
        for absolute in (f"{ART}//etc/passwd", f"{ART}/%2Fetc%2Fpasswd", f"{ART}/%2fetc/passwd"):
            with self.subTest(path=absolute):
                self.err(self.http.request("PUT", absolute, body=b"x"), 400,
                         "INVALID_PARAMETER_VALUE")
        for q in (f"{root}/../..", "/etc", "%2e%2e", f"{root}/%2e%2e/%2e%2e"):
            with self.subTest(list=q):
                self.err(self.http.request("GET", ART + "?path=" + q), 400,
                         "INVALID_PARAMETER_VALUE")
        self.assertEqual(self.list_artifacts(root), [])

    def test_mpu_create_answers_not_implemented(self):
        root = self.artifact_root("replay mpu")
        r = self.http.request("POST", f"/api/2.0/mlflow-artifacts/mpu/create/{root}/big.bin",
                              json_body={"path": "/tmp/big.bin", "num_parts": 2})
        body = self.err(r, 501, "NOT_IMPLEMENTED")
        self.assertTrue(body["message"].startswith(MPU_MESSAGE), str(r))

    # -- model registry (model_registry/rest_store.py, abstract_store.py) ---------------------

    def test_registered_models_and_versions(self):
        exp_id = self.set_experiment("replay registry")
        run_id, run = self.start_run(exp_id)
        source = run["info"]["artifact_uri"] + "/model"
        self.log_model_file(exp_id, run_id, "model")
        rm = self.post("registered-models/create", {"name": "replay-model"})["registered_model"]
        self.assertEqual(rm["name"], "replay-model")
        self.assertTime(rm["creation_timestamp"], "creation_timestamp")
        self.err(self.http.api("POST", "registered-models/create", {"name": "replay-model"}),
                 400, "RESOURCE_ALREADY_EXISTS")
        got = self.ok(self.http.api("GET", "registered-models/get", {"name": "replay-model"}))
        self.assertEqual(got["registered_model"]["name"], "replay-model")
        self.err(self.http.api("GET", "registered-models/get", {"name": "no-such-model"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
        found = self.ok(self.http.api("GET", "registered-models/search",
                                      {"filter": "name = 'replay-model'", "max_results": 100}))
        self.assertEqual([m["name"] for m in found.get("registered_models", [])], ["replay-model"])

        for n in ("1", "2"):
            mv = self.post("model-versions/create", {"name": "replay-model", "source": source,
                                                     "run_id": run_id})["model_version"]
            # READY at once: the client polls model-versions/get only while PENDING_REGISTRATION
            self.assertEqual((mv["name"], mv["version"], mv["status"]),
                             ("replay-model", n, "READY"))
            self.assertEqual((mv["source"], mv["run_id"]), (source, run_id))
            self.assertTime(mv["creation_timestamp"], "creation_timestamp")
        mv = self.ok(self.http.api("GET", "model-versions/get",
                                   {"name": "replay-model", "version": "1"}))["model_version"]
        self.assertEqual((mv["version"], mv["status"], mv["source"]), ("1", "READY", source))
        self.err(self.http.api("GET", "model-versions/get",
                               {"name": "replay-model", "version": "9"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
        vs = self.ok(self.http.api("GET", "model-versions/search",
                                   {"filter": "name='replay-model'", "max_results": 10000}))
        self.assertEqual(sorted(v["version"] for v in vs.get("model_versions", [])), ["1", "2"])

    def test_aliases(self):
        exp_id = self.set_experiment("replay alias")
        run_id, run = self.start_run(exp_id)
        self.log_model_file(exp_id, run_id, "m")
        self.post("registered-models/create", {"name": "alias-model"})
        for _ in range(2):
            self.post("model-versions/create", {"name": "alias-model", "run_id": run_id,
                                                "source": run["info"]["artifact_uri"] + "/m"})
        alias = "registered-models/alias"
        self.assertEqual(self.post(alias, {"name": "alias-model", "alias": "champion",
                                           "version": "1"}), {})
        mv = self.ok(self.http.api("GET", alias, {"name": "alias-model", "alias": "champion"}))
        self.assertEqual(mv["model_version"]["version"], "1")
        self.assertIn("champion", mv["model_version"].get("aliases", []))
        rm = self.ok(self.http.api("GET", "registered-models/get", {"name": "alias-model"}))
        self.assertEqual(rm["registered_model"].get("aliases"),
                         [{"alias": "champion", "version": "1"}])
        self.post(alias, {"name": "alias-model", "alias": "champion", "version": "2"})
        mv = self.ok(self.http.api("GET", alias, {"name": "alias-model", "alias": "champion"}))
        self.assertEqual(mv["model_version"]["version"], "2", "the alias moved")
        self.assertEqual(self.ok(self.http.api("DELETE", alias, {"name": "alias-model",
                                                                 "alias": "champion"})), {})
        self.err(self.http.api("GET", alias, {"name": "alias-model", "alias": "champion"}),
                 400, "INVALID_PARAMETER_VALUE")
        for bad in ("latest", "v3", "no spaces"):
            with self.subTest(alias=bad):
                self.err(self.http.api("POST", alias, {"name": "alias-model", "alias": bad,
                                                       "version": "1"}),
                         400, "INVALID_PARAMETER_VALUE")

    # -- the front's own robustness -----------------------------------------------------------

    def test_unknown_endpoint(self):
        for method, path in (("GET", API + "no/such/thing"), ("POST", API + "runs/fly"),
                             ("GET", "/api/2.0/mlflow-nope/x")):
            with self.subTest(path=path):
                body = {} if method == "POST" else None
                self.err(self.http.request(method, path, json_body=body), 404,
                         "ENDPOINT_NOT_FOUND")

    def test_malformed_json_body(self):
        run_id, _ = self.start_run(self.set_experiment("replay malformed"))
        for body in (b'{"run_id": "' + run_id.encode() + b'", "key": ', b"not json", b"\xff\xfe",
                     b"[1, 2]"):
            with self.subTest(body=body[:20]):
                r = self.http.request("POST", API + "runs/log-parameter", body=body,
                                      headers={"Content-Type": "application/json"})
                # MLflow's server reads it as {} (then INVALID_PARAMETER_VALUE for a missing
                # field); trackd names the parse error: both 400, which the client does not retry
                self.err(r, 400, "BAD_REQUEST")
        self.assertEqual(self.get_run(run_id)["data"].get("params", []), [])

    def send_big(self, head, chunks, limit_s=60):
        """Sends head then chunks on a raw socket, stopping as soon as an answer arrives (the
        server may answer before reading the body); returns the parsed answer."""
        s = socket.create_connection(("127.0.0.1", self.trackd.port), timeout=10)
        deadline = time.monotonic() + limit_s
        try:
            s.sendall(head)
            answered = False
            for chunk in chunks:
                view = memoryview(chunk)
                while view and not answered:
                    if time.monotonic() > deadline:
                        self.fail(f"no answer within {limit_s}s while sending the body")
                    r, w, _ = select.select([s], [s], [], 5)
                    if r:
                        answered = True
                    elif w:
                        view = view[s.send(view[:65536]):]
                if answered:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(max(1.0, deadline - time.monotonic()))
        resp = http.client.HTTPResponse(s, method="POST")
        try:
            resp.begin()
            return Resp("POST", "(70 MiB body)", resp.status, resp.getheaders(), resp.read())
        except (OSError, http.client.HTTPException) as e:
            self.fail(f"no HTTP answer to an oversized body: {e!r}")
        finally:
            s.close()

    def test_body_over_the_limit(self):
        run_id, _ = self.start_run(self.set_experiment("replay big body"))
        item = b'{"key": "big", "value": 1.0, "timestamp": 1, "step": 0}'
        mib = (item + b",") * (1024 * 1024 // (len(item) + 1))
        # a valid log-batch of 70 MiB: {"run_id": ..., "metrics": [item, item, ...]}
        whole = [b'{"run_id": "%s", "metrics": [' % run_id.encode()] + [mib] * 70 + [item + b"]}"]
        target = (API + "runs/log-batch").encode()
        common = b"Host: 127.0.0.1\r\nUser-Agent: " + UA.encode() + \
                 b"\r\nContent-Type: application/json\r\n"
        # with Content-Length (the server can refuse on the header), then chunked
        head = b"POST " + target + b" HTTP/1.1\r\n" + common + \
               b"Content-Length: %d\r\n\r\n" % sum(map(len, whole))
        chunked = [b"%x\r\n%s\r\n" % (len(c), c) for c in whole] + [b"0\r\n\r\n"]
        head_chunked = b"POST " + target + b" HTTP/1.1\r\n" + common + \
                       b"Transfer-Encoding: chunked\r\n\r\n"
        for what, h, chunks in (("Content-Length", head, whole),
                                ("chunked", head_chunked, chunked)):
            with self.subTest(what):
                r = self.send_big(h, chunks)
                self.assertIn(r.status, (413, 400), str(r))
                self.assertIsInstance(r.json, dict, f"error is not JSON: {r}")
                self.assertIsInstance(r.json.get("error_code"), str, str(r))
                if r.status == 400:
                    self.assertEqual(r.json["error_code"], "INVALID_PARAMETER_VALUE", str(r))
        self.assertTrue(self.trackd.alive(), self.trackd.log())
        self.assertEqual(self.history(run_id, "big").get("metrics", []), [])

    def test_slow_client_does_not_block_others(self):
        stalled = []
        try:
            for i in range(4):
                s = socket.create_connection(("127.0.0.1", self.trackd.port), timeout=5)
                body = b'{"run_id": "' + b"a" * 32 + b'", "key": "k", "value": "v"}'
                s.sendall(b"POST " + (API + "runs/log-parameter").encode() + b" HTTP/1.1\r\n"
                          b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % (len(body) * 2) + body)
                stalled.append(s)
            s = socket.create_connection(("127.0.0.1", self.trackd.port), timeout=5)
            s.sendall(b"GET /api/2.0/mlflow/experiments/get?experiment_id=0 HTTP/1.1\r\nHo")
            stalled.append(s)
            time.sleep(0.3)
            for i in range(10):
                t = time.monotonic()
                try:
                    self.ok(self.http.api("GET", "experiments/get", {"experiment_id": "0"},
                                          timeout=3))
                except NoAnswer as e:
                    self.fail(f"request {i} got no answer in 3s while 5 clients stall: {e}")
                self.assertLess(time.monotonic() - t, 2.0,
                                f"request {i} waited behind the stalled clients")
            t = time.monotonic()
            run_id, _ = self.start_run("0")
            self.ok(self.log_param(run_id, "while_stalled", "yes"))
            self.assertLess(time.monotonic() - t, 3.0, "writes waited behind stalled clients")
        finally:
            for s in stalled:
                s.close()
        self.assertTrue(self.trackd.alive(), self.trackd.log())

    def test_cli_sees_the_run_logged_over_http(self):
        exp_id = self.set_experiment("replay cli")
        run_id, _ = self.start_run(exp_id, run_name="cli-run")
        self.ok(self.log_param(run_id, "lr", "0.1"))
        self.ok(self.log_metric(run_id, "acc", 0.9, step=3))
        self.end_run(run_id)
        p = self.trackd.cli("runs", "--experiment", "replay cli", "--json")
        self.assertEqual(p.returncode, 0, f"track runs failed: {p.stderr}")
        runs = {r["run_id"]: r for r in json.loads(p.stdout)}
        self.assertIn(run_id, runs, p.stdout)
        r = runs[run_id]
        self.assertEqual((r["name"], r["experiment"], r["status"]),
                         ("cli-run", "replay cli", "FINISHED"))
        self.assertEqual(r["params"], {"lr": "0.1"})
        self.assertEqual((r["metrics"]["acc"]["last"], r["metrics"]["acc"]["last_step"]), (0.9, 3))

        # a nested run (mlflow.start_run(nested=True) sends mlflow.parentRunId): track's
        # parent, and the source tags track's sys.* tags, for compare and lineage
        child = self.ok(self.http.api("POST", "runs/create", {
            "experiment_id": exp_id, "user_id": "replay", "start_time": now_ms(),
            "run_name": "cli-child",
            "tags": self.context_tags() + [{"key": "mlflow.parentRunId", "value": run_id}]}))
        child_id = child["run"]["info"]["run_id"]
        self.ok(self.log_param(child_id, "lr", "0.2"))
        self.ok(self.log_metric(child_id, "acc", 0.95, step=3))
        self.end_run(child_id)
        p = self.trackd.cli("compare", run_id, child_id, "--json")
        self.assertEqual(p.returncode, 0, f"track compare failed: {p.stderr}")
        cmp = {r["run_id"]: r for r in json.loads(p.stdout)["runs"]}
        self.assertEqual(sorted(cmp), sorted([run_id, child_id]))
        self.assertAlmostEqual(cmp[child_id]["metrics"]["acc"]["last"], 0.95)
        self.assertEqual(json.loads(p.stdout)["differing_params"], ["lr"])
        p = self.trackd.cli("lineage", child_id, "--json")
        self.assertEqual(p.returncode, 0, f"track lineage failed: {p.stderr}")
        lin = json.loads(p.stdout)
        text = json.dumps(lin)
        self.assertIn(run_id, text, "the parent is in the lineage")
        self.assertIn("0123456789abcdef" * 2 + "01234567", text, "the git commit is there")
        self.assertIn("train.py", text, "the command is there")


if __name__ == "__main__":
    unittest.main()
