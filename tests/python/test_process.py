"""The places training goes: forked children, threads, a daemon that goes away, and
`track exec` ($TRACK_RUN_ID)."""

import multiprocessing
import os
import sys
import textwrap
import threading
import time

import numpy as np

import track
from conftest import run_python


def _child_logs(q):
    t0 = time.monotonic()
    try:
        track.log_metric("x", 1.0)
        q.put(("no error", 0.0))
    except track.ForkError as e:
        q.put((f"{type(e).__name__} {e.code} {e.parent_pid}", time.monotonic() - t0))
    try:
        track.flush()
    except track.ForkError:
        pass


def test_a_forked_child_gets_fork_error_and_the_parent_keeps_logging(trackd):
    ctx = multiprocessing.get_context("fork")
    with track.start_run(experiment="py-fork") as run:
        for i in range(1000):
            track.log_metric("p", i, step=i)  # buffered, not sent yet: the child has a copy
        q = ctx.Queue()
        kids = [ctx.Process(target=_child_logs, args=(q,)) for _ in range(2)]
        for k in kids:
            k.start()
        for k in kids:
            k.join(20)
            assert k.exitcode == 0, "a forked child hung or died"
        for _ in kids:
            what, secs = q.get(timeout=5)
            assert what == f"ForkError UNAVAILABLE {os.getpid()}"
            assert secs < 1.0
        for i in range(1000, 2000):
            track.log_metric("p", i, step=i)
    s, _, v = track.get_history(run.id, "p")
    assert list(s) == list(range(2000)) and list(v) == list(map(float, range(2000)))


def test_a_forked_child_leaving_the_with_block_and_exiting_never_hangs(trackd):
    code = textwrap.dedent("""
        import os, sys, track
        with track.start_run(experiment="py-fork2") as run:
            track.log_metric("p", 1.0, step=0)
            pid = os.fork()
            if pid == 0:
                try:
                    track.log_metric("p", 2.0, step=1)
                except track.ForkError:
                    print("child: ForkError", flush=True)
                sys.exit(0)   # leaves the with block, runs atexit: neither may touch the client
            _, status = os.waitpid(pid, 0)
            print("child status", status, flush=True)
            track.log_metric("p", 3.0, step=2)
        print(run.id, track.get_run(run.id)["status"])
    """)
    r = run_python(code, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert "child: ForkError" in lines and "child status 0" in lines
    rid, status = lines[-2].split()
    assert status == "FINISHED"
    assert list(track.get_history(rid, "p")[2]) == [1.0, 3.0]


def test_a_child_forked_before_any_client_opens_its_own(trackd):
    code = textwrap.dedent("""
        import os, track
        pid = os.fork()
        if pid == 0:
            with track.start_run(experiment="py-fork3", name="child"):
                track.log_metric("c", 1.0)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        runs = track.search_runs(experiment="py-fork3")
        print(runs[0]["name"], runs[0]["metrics"]["c"]["count"])
    """)
    r = run_python(code, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["child", "1"]


def test_eight_threads_logging_at_once_lose_nothing(trackd):
    n = 20000
    with track.start_run(experiment="py-threads") as run:
        errors = []

        def work(t):
            try:
                for i in range(n):
                    track.log_metric(f"t{t}", float(i), step=i)
                    track.log_metric("shared", float(t), step=t * n + i)
                    if i % 5000 == 0:
                        track.flush()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not errors
    for t in range(8):
        s, _, v = track.get_history(run.id, f"t{t}")
        assert list(s) == list(range(n))
    s, _, v = track.get_history(run.id, "shared")
    assert sorted(s) == list(range(8 * n))


def test_with_the_daemon_down_writes_spool_and_track_sync_delivers(trackd):
    with track.start_run(experiment="py-down", params={"p": 1}) as run:
        track.log_series("m", np.arange(1000), np.arange(1000, dtype=np.float64))
        assert track.flush() is True
        trackd.stop()
        t0 = time.monotonic()
        for i in range(1000, 3000):
            track.log_metric("m", float(i), step=i)
        track.set_tag("while", "down")
        assert track.flush() is False  # spooled
        assert time.monotonic() - t0 < 10
    # the end went to the spool too
    trackd.start()
    r = trackd.cli("sync")
    s, _, v = track.get_history(run.id, "m")
    assert list(s) == list(range(3000)), r.stdout + r.stderr
    info = track.get_run(run.id)
    assert info["status"] == "FINISHED" and info["tags"]["while"] == "down"


def test_track_exec_run_id_is_picked_up(trackd):
    code = textwrap.dedent("""
        import os, track
        track.log_metric("before_start", 1.0)     # no start_run: TRACK_RUN_ID's run
        with track.start_run(experiment="ignored", params={"lr": 0.5}) as run:
            assert run.id == os.environ["TRACK_RUN_ID"] and not run.owned
            track.log_metric("loss", 0.25, step=3)
        print(run.id)
    """)
    r = trackd.cli("exec", "--experiment", "py-exec", "--", sys.executable, "-c", code)
    rid = r.stdout.split()[-1]
    info = track.get_run(rid)
    assert info["experiment"] == "py-exec" and info["status"] == "FINISHED"
    assert info["params"]["lr"] == "0.5"
    assert info["metrics"]["loss"]["last"] == 0.25
    assert info["metrics"]["before_start"]["count"] == 1
    assert info["tags"]["sys.exit_code"] == "0"


def test_a_point_older_than_the_flush_interval_goes_out_with_the_next_call(trackd):
    # read from another process: this one's reads flush first (read-your-writes)
    def count(rid):
        r = run_python(f"import track\ntry:\n print(len(track.get_history('{rid}', 'slow')[0]))"
                       "\nexcept track.NotFound:\n print(0)", timeout=30)
        assert r.returncode == 0, r.stderr
        return int(r.stdout)
    track.configure(flush_interval_ms=300, flush_points=1_000_000)
    try:
        with track.start_run(experiment="py-interval") as run:
            track.log_metric("slow", 1.0, step=0)
            track.log_metric("slow", 1.5, step=1)
            assert count(run.id) == 0  # buffered
            time.sleep(0.4)
            track.log_metric("slow", 2.0, step=2)  # the oldest is over 300 ms old: flushed now
            assert count(run.id) == 3
    finally:
        track.configure()
