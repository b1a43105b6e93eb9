#!/usr/bin/env python3
"""trackd's HTTP front when the machine misbehaves under an upload: trackd killed -9, the
client gone half-way, a permissive umask, a full disk. The hostile clients of the protocol
itself are mlflow_hostile.py's.

Run:  TRACKD=build/bin/trackd TRACK_CLI=build/bin/track \\
      python3 tests/http/mlflow_hostile_disk.py -v
The full-disk class mounts a tmpfs (it needs root; it skips, saying why, when mount fails).

What is asserted where trackd chooses:
- an upload cut by a crash of either side leaves no artifact and no file: the body is
  spooled to an O_TMPFILE, which is never linked into the data directory;
- everything under the data directory is for its owner only (0600 files, 0700 directories)
  whatever the umask trackd starts with;
- on a full disk a write answers a JSON error (507 RESOURCE_EXHAUSTED, or 503/429 for a
  commit the store could not make), promptly; once space is freed, writes succeed again
  within a few seconds (reserve.c retries every 5 s) without a restart.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from mlflow_replay import ART, Http, ReplayCase, Trackd, binary

MIB = 1 << 20


def listing(root):
    """{relative path: (mode, size)} of everything under root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size)
    return out


def spooled(pid, data_dir):
    """Sizes of the unlinked files trackd holds open in data_dir (an upload's O_TMPFILE)."""
    sizes = []
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
            if target.startswith(data_dir + "/") and target.endswith("(deleted)"):
                sizes.append(os.stat(os.path.join(fds, fd)).st_size)
        except OSError:
            pass
    return sizes


class UploadCase(ReplayCase):

    def artifact_root(self, exp_name):
        exp_id = self.set_experiment(exp_name)
        run_id, _ = self.start_run(exp_id)
        return f"{exp_id}/{run_id}/artifacts"

    def list_artifacts(self, path):
        return self.ok(self.http.request("GET", ART, query={"path": path})).get("files", [])

    def half_upload(self, target, total=20 * MIB, sent=10 * MIB):
        """A PUT declaring `total` bytes that sends `sent` of them, once trackd has spooled
        most of those; returns the open socket."""
        s = socket.create_connection(("127.0.0.1", self.trackd.port), timeout=10)
        s.sendall(b"PUT " + target.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % total)
        s.sendall(os.urandom(sent))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(n >= sent - 2 * MIB for n in spooled(self.trackd.proc.pid, self.tmp)):
                return s
            time.sleep(0.05)
        s.close()
        self.fail(f"trackd did not spool {sent} bytes of the upload in 20 s: "
                  f"{spooled(self.trackd.proc.pid, self.tmp)}\n{self.trackd.log()}")

    def assert_absent(self, root, name):
        self.assertEqual([f["path"] for f in self.list_artifacts(root)
                          if f["path"] == name], [], f"{name} is listed")
        r = self.http.request("GET", f"{ART}/{root}/{name}")
        self.err(r, 404, "RESOURCE_DOES_NOT_EXIST")


class KilledMidUpload(UploadCase):

    def restart(self):
        """A new trackd on the same data directory (a new port: the old one may linger)."""
        t = Trackd(self.tmp)
        t.start()
        type(self).trackd, type(self).http = t, Http(t.port)

    def test_trackd_killed_mid_put(self):
        root = self.artifact_root("hostile kill -9")
        self.ok(self.http.request("PUT", f"{ART}/{root}/kept.txt", body=b"kept\n"))
        before = listing(self.tmp)
        s = self.half_upload(f"{ART}/{root}/big.bin")
        try:
            self.trackd.proc.send_signal(signal.SIGKILL)
            self.trackd.proc.wait(10)
        finally:
            s.close()
        after = listing(self.tmp)
        new = sorted(set(after) - set(before))
        self.assertEqual(new, [], f"left in the data directory by the cut upload: {new}\n"
                         f"data directory: {sorted(after)}")
        p = subprocess.run([binary("TRACKD"), "--data-dir", self.tmp, "--check"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, f"--check after kill -9: {p.stdout}{p.stderr}")
        self.restart()
        self.assert_absent(root, "big.bin")
        self.assertEqual([f["path"] for f in self.list_artifacts(root)], ["kept.txt"])
        self.assertEqual(self.http.request("GET", f"{ART}/{root}/kept.txt").body, b"kept\n")
        # the same path uploads normally after the restart
        self.ok(self.http.request("PUT", f"{ART}/{root}/big.bin", body=b"x" * MIB))
        self.assertEqual(len(self.http.request("GET", f"{ART}/{root}/big.bin").body), MIB)

    def test_client_gone_mid_put(self):
        root = self.artifact_root("hostile client gone")
        for how in ("close", "reset"):
            with self.subTest(how):
                name = f"cut-{how}.bin"
                s = self.half_upload(f"{ART}/{root}/{name}")
                if how == "reset":  # SO_LINGER 0: an RST, as from a host that went away
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                s.close()
                deadline = time.monotonic() + 10
                while spooled(self.trackd.proc.pid, self.tmp) and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertEqual(spooled(self.trackd.proc.pid, self.tmp), [],
                                 "the cut upload's spool file is still open after 10 s")
                self.assert_absent(root, name)
                body = os.urandom(3 * MIB)
                self.ok(self.http.request("PUT", f"{ART}/{root}/{name}", body=body))
                self.assertEqual(self.http.request("GET", f"{ART}/{root}/{name}").body, body)
        self.assertTrue(self.trackd.alive(), self.trackd.log())


class PermissiveUmask(UploadCase):
    """trackd started with umask 000 (the test process sets it around the start: the child
    inherits it, as from preexec_fn): nothing it makes is open to group or others."""

    @classmethod
    def setUpClass(cls):
        old = os.umask(0)
        try:
            super().setUpClass()
        finally:
            os.umask(old)

    def test_nothing_is_group_or_world_accessible(self):
        root = self.artifact_root("hostile umask")
        self.ok(self.http.request("PUT", f"{ART}/{root}/small.txt", body=b"small\n"))
        self.ok(self.http.request("PUT", f"{ART}/{root}/dir/big.bin",
                                  body=[os.urandom(MIB) for _ in range(3)], chunked=True))
        run_id = root.split("/")[1]
        self.ok(self.http.api("POST", "runs/log-batch", {"run_id": run_id, "params": [
            {"key": f"p{i}", "value": "v" * 500} for i in range(100)]}))
        loose = {p: oct(mode & 0o777) for p, (mode, _) in listing(self.tmp).items()
                 if mode & 0o077 and p != "trackd.log"}  # trackd.log is the test's own
        self.assertEqual(loose, {}, "open to group or others under umask 000")


class FullDisk(UploadCase):
    """The data directory on an 8 MiB tmpfs, filled up by another file."""

    @classmethod
    def prepare_store(cls):
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs",
                            cls.tmp], capture_output=True, text=True)
        if p.returncode != 0:
            raise unittest.SkipTest(f"cannot mount a tmpfs (needs root): {p.stderr.strip()}")
        cls.mounted = True
        # the log outside the full disk, so that it says what happened
        cls.logdir = tempfile.mkdtemp(prefix="mlflow-hostile-log-")
        cls.trackd.log_path = os.path.join(cls.logdir, "trackd.log")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if getattr(cls, "mounted", False):
                subprocess.run(["umount", cls.tmp])
                shutil.rmtree(cls.tmp, ignore_errors=True)
                shutil.rmtree(cls.logdir, ignore_errors=True)

    def fill(self):
        path = os.path.join(self.tmp, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for block in (MIB, 4096, 1):
                try:
                    while os.write(fd, b"\0" * block):
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        return path

    def batch(self, run_id, tag):
        """A log-batch of about 500 KB (100 params of 5000 bytes): new pages for the WAL."""
        return self.http.api("POST", "runs/log-batch", {"run_id": run_id, "params": [
            {"key": f"{tag}{i}", "value": str(i) * 5000} for i in range(100)]}, timeout=60)

    def disk_error(self, r, what):
        self.assertIn(r.status, (400, 413, 429, 503, 507), f"{what}: {r}")
        self.assertIsInstance(r.json, dict, f"{what}: not JSON: {r}")
        self.assertIsInstance(r.json.get("error_code"), str, f"{what}: {r}")
        self.assertIsInstance(r.json.get("message"), str, f"{what}: {r}")

    def test_full_disk_then_space_again(self):
        root = self.artifact_root("hostile full disk")
        run_id = root.split("/")[1]
        filler = self.fill()
        try:
            failed = None
            for i in range(12):
                t = time.monotonic()
                r = self.batch(run_id, f"full{i}-")
                self.assertLess(time.monotonic() - t, 30, f"log-batch {i} took 30 s: {r}")
                self.assertTrue(self.trackd.alive(), self.trackd.log())
                if r.status != 200:
                    print(f"\nfull disk: log-batch {i}: {r}", file=sys.stderr)
                    self.disk_error(r, f"log-batch {i} on a full disk")
                    failed = r
                    break
            self.assertIsNotNone(failed, "12 log-batches of 500 KB fit on a full 8 MiB disk?")
            t = time.monotonic()
            r = self.http.request("PUT", f"{ART}/{root}/four.bin", body=os.urandom(4 * MIB),
                                  timeout=60)
            self.assertLess(time.monotonic() - t, 30, f"PUT on a full disk took 30 s: {r}")
            print(f"full disk: {r}", file=sys.stderr)
            self.disk_error(r, "a 4 MiB PUT on a full disk")
            self.assertTrue(self.trackd.alive(), self.trackd.log())
        finally:
            os.unlink(filler)
        deadline = time.monotonic() + 20
        while True:
            r = self.batch(run_id, "after-")
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.assertEqual(r.status, 200, f"a log-batch 20 s after space came back: {r}\n"
                         f"{self.trackd.log()}")
        # the refused PUT left nothing: no spool file open, no blob upload in blobs/tmp
        self.assertEqual(spooled(self.trackd.proc.pid, self.tmp), [])
        self.assertEqual(os.listdir(os.path.join(self.tmp, "blobs", "tmp")), [])
        self.assert_absent(root, "four.bin")
        # 1 MiB, not 4: an upload needs twice its size while it lasts (the spool file, then
        # the blob store's tmp file), more than this disk has beside its WAL
        body = os.urandom(MIB)
        self.ok(self.http.request("PUT", f"{ART}/{root}/four.bin", body=body, timeout=60))
        self.assertEqual(self.http.request("GET", f"{ART}/{root}/four.bin").body, body)
        params = self.get_run(run_id)["data"].get("params", [])
        self.assertEqual(sum(p["key"].startswith("after-") for p in params), 100)


if __name__ == "__main__":
    unittest.main()
