"""Shared fixtures of the Python module's tests: a real trackd per test module.

Each test module gets its own trackd on a temporary data directory, listening on
ipc://DIR/sock; the process's track client is re-opened for it (track.configure), with
$TRACK_SERVER, $XDG_STATE_HOME (the spool's directory) and TRACK_NO_AUTOSTART=1 set so the
`track` CLI and child Pythons use the same daemon and spool. CTest passes the built binaries
in $TRACKD and $TRACK_CLI and the built package in $PYTHONPATH (tests/CMakeLists.txt).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import track


def binary(var):
    path = os.environ.get(var)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"set {var} to the built binary (got {path!r})")
    return path


class Trackd:
    """A trackd on its own data directory: --listen ipc://DIR/sock."""

    def __init__(self, data_dir):
        self.dir = data_dir
        self.uri = f"ipc://{data_dir}/sock"
        self.log_path = os.path.join(data_dir, "trackd.log")
        self.proc = None

    def start(self, timeout=20):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary("TRACKD"), "--data-dir", self.dir, "--listen",
                                      self.uri], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"trackd exited with {self.proc.returncode}\n{self.log()}")
            r = self.cli("status", check=False)
            if r.returncode == 0:
                return self
            time.sleep(0.05)
        raise AssertionError(f"trackd did not answer in {timeout}s\n{self.log()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"trackd ignored SIGTERM for 15s\n{self.log()}")
            assert self.proc.returncode == 0, f"trackd exited {self.proc.returncode}\n{self.log()}"

    def cli(self, *args, check=True, timeout=60):
        """Runs the built `track` CLI against this daemon."""
        r = subprocess.run([binary("TRACK_CLI"), *args], capture_output=True, text=True,
                           timeout=timeout, env=os.environ.copy())
        if check and r.returncode != 0:
            raise AssertionError(f"track {' '.join(args)} -> {r.returncode}\n{r.stdout}\n"
                                 f"{r.stderr}\n{self.log()}")
        return r

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "--- trackd log ---\n" + f.read()[-4000:]
        except OSError:
            return "(no trackd log)"


@pytest.fixture(scope="module")
def trackd():
    tmp = tempfile.mkdtemp(prefix="track-py-")
    saved = {k: os.environ.get(k) for k in ("TRACK_SERVER", "XDG_STATE_HOME", "TRACK_RUN_ID")}
    d = Trackd(tmp)
    os.environ["TRACK_SERVER"] = d.uri
    os.environ["XDG_STATE_HOME"] = os.path.join(tmp, "state")
    os.environ["TRACK_NO_AUTOSTART"] = "1"
    os.environ.pop("TRACK_RUN_ID", None)
    d.start()
    track.configure()  # the next call opens a client on this daemon
    yield d
    track.close()
    d.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(tmp, ignore_errors=True)


def run_python(code, timeout=60, env=None):
    """Runs code in a fresh interpreter (this one's, with this environment)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env or os.environ.copy())
