#!/usr/bin/env python3
"""Identity on trackd's HTTP front, replayed as the MLflow client sends it.

The client sends `Authorization: Basic b64(user:password)` when MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD are set, else `Authorization: Bearer $MLFLOW_TRACKING_TOKEN`
(mlflow/utils/rest_utils.py http_request). On a non-loopback bind (--http 0.0.0.0:PORT)
trackd needs one of them on every MLflow route: the token from `track admin token create`,
as a bearer token or as the Basic password of its user.

Run:  TRACKD=build/bin/trackd TRACK_CLI=build/bin/track python3 tests/http/mlflow_auth.py -v

Choices where MLflow leaves them open (MLflow's own basic-auth app answers 401 and 403 in
plain text; the client maps those statuses to the same codes):
- 401 carries {"error_code": "UNAUTHENTICATED"} and a WWW-Authenticate header;
- 403 carries {"error_code": "PERMISSION_DENIED"};
- GET /health answers without credentials (the fixture waits on it).
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from mlflow_replay import API, ART, Http, NoAnswer, ReplayCase, binary, free_port


def keygen(tmp, name):
    """A user key pair made by `track keygen`; returns the public key (trk1:...)."""
    env = dict(os.environ, TRACK_KEY=os.path.join(tmp, f"{name}.key"), XDG_CONFIG_HOME=tmp)
    p = subprocess.run([binary("TRACK_CLI"), "keygen", "--json"], env=env, capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"track keygen for {name} failed: {p.stderr}")
    return json.loads(p.stdout)["public_key"]


def add_user(tmp, name, role):
    p = subprocess.run([binary("TRACKD"), "--data-dir", tmp, "--add-user", name, "--role", role,
                        "--key", keygen(tmp, name)], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"trackd --add-user {name} failed: {p.stderr}")


class HttpIdentity(ReplayCase):
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
            if p.returncode != 0:
                cls.tearDownClass()
                raise AssertionError(f"track admin token create {name} failed: {p.stderr}")
            cls.tokens[name] = json.loads(p.stdout)["token"]
        cls.alice = Http(cls.trackd.port, token=cls.tokens["alice"])
        cls.bob = Http(cls.trackd.port, token=cls.tokens["bob"])

    def unauthenticated(self, resp):
        self.err(resp, 401, "UNAUTHENTICATED")
        self.assertIn("www-authenticate", resp.headers, f"401 without WWW-Authenticate: {resp}")

    def test_health_needs_no_credentials(self):
        r = Http(self.trackd.port).request("GET", "/health")
        self.assertEqual(r.status, 200, str(r))

    def test_no_token_is_401(self):
        anon = Http(self.trackd.port)
        self.unauthenticated(anon.api("GET", "experiments/get", {"experiment_id": "0"}))
        self.unauthenticated(anon.api("POST", "experiments/create", {"name": "anon"}))
        self.unauthenticated(anon.request("GET", ART, query={"path": "0"}))
        self.unauthenticated(anon.request("PUT", f"{ART}/0/x/artifacts/f.txt", body=b"x"))

    def test_bad_token_is_401(self):
        fake = self.tokens["alice"][:-4] + ("AAAA" if not self.tokens["alice"].endswith("AAAA")
                                            else "BBBB")
        for creds in ({"token": "trkt_" + "A" * 43}, {"token": fake}, {"token": "garbage"},
                      {"basic": ("alice", fake)}, {"basic": ("bob", self.tokens["alice"])},
                      {"basic": ("mallory", self.tokens["alice"])}):
            with self.subTest(creds=str(creds)[:40]):
                r = Http(self.trackd.port, **creds).api("GET", "experiments/get",
                                                        {"experiment_id": "0"})
                self.unauthenticated(r)
        for header in ("Bearer", "Basic !!!not-base64!!!", "Token " + self.tokens["alice"]):
            with self.subTest(header=header[:20]):
                r = Http(self.trackd.port).request(
                    "GET", API + "experiments/get", query={"experiment_id": "0"},
                    headers={"Authorization": header})
                self.unauthenticated(r)

    def test_reader_reads_but_cannot_write(self):
        self.ok(self.bob.api("GET", "experiments/get", {"experiment_id": "0"}))
        exp_id = self.set_experiment("auth shared", http=self.alice)
        run_id, _ = self.start_run(exp_id, http=self.alice)
        self.ok(self.bob.api("GET", "runs/get", {"run_uuid": run_id, "run_id": run_id}))
        writes = [
            ("experiments/create", {"name": "bob was here"}),
            ("runs/create", {"experiment_id": exp_id, "user_id": "bob", "start_time": 1,
                             "tags": []}),
            ("runs/log-parameter", {"run_uuid": run_id, "run_id": run_id, "key": "k",
                                    "value": "v"}),
            ("runs/log-batch", {"run_id": run_id, "tags": [{"key": "k", "value": "v"}]}),
            ("registered-models/create", {"name": "bob-model"}),
        ]
        for endpoint, fields in writes:
            with self.subTest(endpoint):
                self.err(self.bob.api("POST", endpoint, fields), 403, "PERMISSION_DENIED")
        self.err(self.bob.request("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/f.txt", body=b"x"),
                 403, "PERMISSION_DENIED")
        run = self.ok(self.alice.api("GET", "runs/get", {"run_uuid": run_id, "run_id": run_id}))
        self.assertEqual(run["run"]["data"].get("params", []), [], "a refused write landed")

    def test_writer_with_bearer_token(self):
        exp_id = self.set_experiment("auth bearer", http=self.alice)
        run_id, _ = self.start_run(exp_id, http=self.alice)
        self.ok(self.alice.api("POST", "runs/log-parameter",
                               {"run_uuid": run_id, "run_id": run_id, "key": "lr", "value": "0.1"}))
        self.ok(self.alice.request("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/f.txt",
                                   body=b"hi", headers={"Content-Type": "text/plain"}))
        run = self.ok(self.alice.api("GET", "runs/get", {"run_uuid": run_id, "run_id": run_id}))
        self.assertEqual(self.kv(run["run"]["data"]["params"]), {"lr": "0.1"})

    def test_writer_with_basic_auth(self):
        basic = Http(self.trackd.port, basic=("alice", self.tokens["alice"]))
        exp_id = self.set_experiment("auth basic", http=basic)
        run_id, _ = self.start_run(exp_id, http=basic)
        self.ok(basic.api("POST", "runs/set-tag",
                          {"run_uuid": run_id, "run_id": run_id, "key": "via", "value": "basic"}))
        run = self.ok(basic.api("GET", "runs/get", {"run_uuid": run_id, "run_id": run_id}))
        self.assertEqual(self.kv(run["run"]["data"]["tags"]).get("via"), "basic")


class OpenBindNeedsUsers(unittest.TestCase):
    def test_public_bind_without_users_refuses_to_start(self):
        tmp = tempfile.mkdtemp(prefix="mlflow-auth-empty-")
        port = free_port()
        argv = [binary("TRACKD"), "--data-dir", tmp, "--listen", f"ipc://{tmp}/sock",
                "--http", f"0.0.0.0:{port}"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        try:
            out, errtext = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, errtext = proc.communicate()
            self.fail(f"trackd kept running on 0.0.0.0 with no users: {argv}\n{errtext}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertNotEqual(proc.returncode, 0, f"exit 0 on 0.0.0.0 with no users\n{errtext}")
        self.assertTrue(errtext.strip(), "refused without a word on stderr")
        with self.assertRaises(NoAnswer, msg="something still answers on the port"):
            Http(port).request("GET", "/health", timeout=2)


if __name__ == "__main__":
    unittest.main()
