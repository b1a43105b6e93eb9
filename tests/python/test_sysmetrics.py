"""System metrics from Python: start_run(system_metrics=...) samples this process's tree
through libtrack's sampler thread until the run ends; track exec --system-metrics samples a
Python child's tree into the run the child joins."""

import subprocess
import sys
import textwrap
import time

import pytest

import track


def _spin(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def test_system_metrics_true_samples_this_process_until_the_run_ends(trackd):
    with track.start_run(experiment="py-sysmet", system_metrics=0.5) as run:
        _spin(2.2)
        track.log_metric("loss", 1.0, step=0)
    info = track.get_run(run.id)
    m = info["metrics"]
    assert info["status"] == "FINISHED"
    cpu = m["system/cpu_percent"]
    assert 3 <= cpu["count"] <= 5, cpu
    assert cpu["max"] > 20, cpu
    assert m["system/rss_bytes"]["min"] > 10 << 20  # a Python interpreter
    assert m["system/threads"]["min"] >= 2  # the interpreter and the sampler
    assert m["system/mem_available_bytes"]["min"] > 0
    for k in ("disk_read", "disk_write", "net_rx", "net_tx"):
        assert m[f"system/{k}_bytes_per_s"]["count"] == cpu["count"]
    steps, _, _ = track.get_history(run.id, "system/cpu_percent")
    assert list(steps) == list(range(len(steps)))
    # stopped with the run: nothing more arrives
    time.sleep(1.2)
    assert track.get_run(run.id)["metrics"]["system/cpu_percent"]["count"] == cpu["count"]


def test_without_system_metrics_no_sampler_runs(trackd):
    with track.start_run(experiment="py-sysmet-off") as run:
        time.sleep(0.3)
        track.log_metric("x", 1.0)
    assert not [k for k in track.get_run(run.id)["metrics"] if k.startswith("system/")]


@pytest.mark.parametrize("bad", [0.01, "5", -1, 1e9])
def test_a_bad_interval_is_invalid_argument(trackd, bad):
    with pytest.raises(track.InvalidArgument):
        track.start_run(experiment="py-sysmet-bad", system_metrics=bad)
    assert track.active_run() is None


def test_track_exec_system_metrics_cover_a_python_child(trackd):
    code = textwrap.dedent("""
        import time, track
        with track.start_run() as run:
            end = time.monotonic() + 2.6
            while time.monotonic() < end:
                pass
            track.log_metric("done", 1.0)
        print(run.id)
    """)
    r = trackd.cli("exec", "--experiment", "py-exec-sysmet", "--system-metrics=1", "--",
                   sys.executable, "-c", code)
    rid = r.stdout.split()[-1]
    m = track.get_run(rid)["metrics"]
    assert m["done"]["count"] == 1
    assert m["system/cpu_percent"]["count"] >= 2 and m["system/cpu_percent"]["max"] > 20, m
    assert m["system/rss_bytes"]["min"] > 10 << 20
