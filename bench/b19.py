#!/usr/bin/env python3
"""B19: Python's `track.log_metric` calls per second, buffered, against `track log-metric`
one process per call, and against a plain Python loop calling a no-op C function of the same
shape (track._track._noop: METH_FASTCALL, the call overhead floor). Goal: >= 1,000,000
calls/s and >= 200x MLflow's client (214 calls/s measured on this kind of machine). A figure,
never pass/fail.

  PYTHONPATH=build-release/python /usr/bin/python3 bench/b19.py [--calls N] [--cli N]
      [--reps N] [--smoke] [--trackd PATH] [--track PATH]

trackd and track are found beside the module (BUILD/bin) unless given. Each figure is the
best of --reps runs (the least disturbed by the other load of a shared machine); the
buffered figure counts the calls only, and the final flush of the run is printed apart.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MLFLOW_CALLS_PER_S = 214.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2_000_000)
    ap.add_argument("--cli", type=int, default=50, help="track log-metric processes")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--trackd")
    ap.add_argument("--track")
    a = ap.parse_args()
    if a.smoke:
        a.calls, a.cli, a.reps = 20_000, 3, 1

    import track
    bindir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(track._track.__file__)))), "bin")
    trackd = a.trackd or os.path.join(bindir, "trackd")
    cli = a.track or os.path.join(bindir, "track")
    tmp = tempfile.mkdtemp(prefix="track-b19-")
    uri = f"ipc://{tmp}/sock"
    env = dict(os.environ, TRACK_SERVER=uri, TRACK_NO_AUTOSTART="1",
               XDG_STATE_HOME=os.path.join(tmp, "state"))
    os.environ.update(env)
    log = open(os.path.join(tmp, "trackd.log"), "wb")
    d = subprocess.Popen([trackd, "--data-dir", tmp, "--listen", uri], stdout=log, stderr=log)
    try:
        for _ in range(200):
            if subprocess.run([cli, "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        else:
            sys.exit("b19: trackd did not start")
        track.configure(server=uri)
        run(track, cli, env, a)
    finally:
        track.close()
        d.send_signal(signal.SIGTERM)
        d.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def best(f, reps):
    return min(f() for _ in range(reps))


def run(track, cli, env, a):
    n = a.calls
    noop = track._track._noop
    log_metric = track.log_metric

    def floor():
        t = time.perf_counter()
        for i in range(n):
            noop("train/loss", 0.5, step=i)
        return time.perf_counter() - t

    flushes = []

    def buffered():
        with track.start_run(experiment="b19"):
            t = time.perf_counter()
            for i in range(n):
                log_metric("train/loss", 0.5, step=i)
            dt = time.perf_counter() - t
            t = time.perf_counter()
            track.flush()
            flushes.append(time.perf_counter() - t)
        return dt

    def per_process():
        rid = subprocess.run([cli, "run", "start", "--experiment", "b19-cli"], env=env,
                             capture_output=True, text=True, check=True).stdout.split()[-1]
        e = dict(env, TRACK_RUN_ID=rid)
        t = time.perf_counter()
        for i in range(a.cli):
            subprocess.run([cli, "log-metric", "train/loss", "0.5", "--step", str(i)], env=e,
                           check=True, capture_output=True)
        return time.perf_counter() - t

    t_floor = best(floor, a.reps)
    t_buf = best(buffered, a.reps)
    t_cli = best(per_process, a.reps)
    r_floor, r_buf, r_cli = n / t_floor, n / t_buf, a.cli / t_cli
    print(f"B19 Python log_metric calls per second ({n:,} calls, best of {a.reps})")
    print(f"  no-op C call (the floor)      {r_floor:14,.0f} calls/s  {1e9 / r_floor:7.1f} ns")
    print(f"  track.log_metric (buffered)   {r_buf:14,.0f} calls/s  {1e9 / r_buf:7.1f} ns"
          f"   (goal >= 1,000,000)")
    print(f"  track log-metric per process  {r_cli:14,.1f} calls/s  "
          f"{1e3 / r_cli:7.2f} ms  ({a.cli} processes)")
    print(f"  log_metric / floor            {t_buf / t_floor:14.2f} x the call overhead")
    print(f"  log_metric / per process      {r_buf / r_cli:14,.0f} x")
    print(f"  log_metric / MLflow's client  {r_buf / MLFLOW_CALLS_PER_S:14,.0f} x   "
          f"(214 calls/s measured; goal >= 200x)")
    print(f"  the run's final flush         {min(flushes) * 1e3:14.1f} ms")


if __name__ == "__main__":
    main()
