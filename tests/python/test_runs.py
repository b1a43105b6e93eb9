"""The run life cycle, params, metrics and reads of `import track` against a real trackd."""

import array
import math
import time

import numpy as np
import pytest

import track


def test_run_context_manager_ends_finished(trackd):
    with track.start_run(experiment="py-cm", name="ok", params={"lr": 1e-3, "batch": 64}) as run:
        track.log_metric("loss", 0.5, step=1)
        assert track.active_run() is run
    assert run.status == "FINISHED"
    r = track.get_run(run.id)
    assert r["status"] == "FINISHED" and r["name"] == "ok" and r["experiment"] == "py-cm"
    assert r["params"] == {"lr": "0.001", "batch": "64"}
    assert r["metrics"]["loss"]["last"] == 0.5
    assert track.active_run() is None


def test_run_fails_when_the_block_raises_and_the_exception_goes_on(trackd):
    with pytest.raises(ZeroDivisionError):
        with track.start_run(experiment="py-cm", name="boom") as run:
            track.log_metric("loss", 1.0)
            1 / 0
    assert run.status == "FAILED"
    assert track.get_run(run.id)["status"] == "FAILED"


def test_end_run_with_a_status(trackd):
    run = track.start_run(experiment="py-cm")
    with pytest.raises(track.AlreadyExists):
        track.start_run(experiment="py-cm")
    assert track.end_run("KILLED") is True
    assert track.get_run(run.id)["status"] == "KILLED"
    with pytest.raises(track.InvalidArgument):
        track.start_run().end("DONE")
    track.end_run()


def test_a_changed_param_raises_conflict_error(trackd):
    with track.start_run(experiment="py-params", params={"lr": 0.1}):
        track.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(track.ConflictError) as e:
            track.log_param("lr", 0.2)
        assert e.value.code == "CONFLICT"
        assert "0.1" in str(e.value) and "0.2" in str(e.value)
        assert isinstance(e.value, track.TrackError)
        track.log_params({"a": 1, "b": True})
        track.set_tag("stage", "pretrain")
        track.set_tags({"stage": "finetune", "n": 3})
        rid = track.current_run_id()
    r = track.get_run(rid)
    assert r["params"] == {"lr": "0.1", "a": "1", "b": "True"}
    assert r["tags"]["stage"] == "finetune" and r["tags"]["n"] == "3"


def test_errors_carry_the_track_code(trackd):
    with pytest.raises(track.NotFound) as e:
        track.get_run("0123456789abcdef0123456789abcdef")
    assert e.value.code == "NOT_FOUND"
    with track.start_run(experiment="py-errors"):
        with pytest.raises(track.InvalidArgument) as e:
            track.log_metric("bad\nkey", 1.0)
        assert e.value.code == "INVALID_ARGUMENT" and "metric key" in str(e.value)
        assert isinstance(e.value, ValueError)
        with pytest.raises(track.InvalidArgument):
            track.log_metric("loss", 1.0, step=-1)
        with pytest.raises(TypeError):
            track.log_metric("loss", "high")
        with pytest.raises(TypeError):
            track.log_metric(3, 1.0)
        with pytest.raises(TypeError):
            track.log_metric("loss", 1.0, stp=3)


def test_nan_and_infinities_round_trip(trackd):
    vals = [float("nan"), math.inf, -math.inf, 0.0, -0.0, 5e-324, 1.7976931348623157e308]
    with track.start_run(experiment="py-nan") as run:
        for i, v in enumerate(vals):
            track.log_metric("v", v, step=i)
    steps, times, values = track.get_history(run.id, "v")
    assert list(steps) == list(range(len(vals)))
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    assert list(values[3:]) == vals[3:] and math.copysign(1, values[4]) == -1
    assert all(t > 1e12 for t in times)


def test_log_metric_takes_ints_numpy_scalars_and_keywords(trackd):
    with track.start_run(experiment="py-values") as run:
        track.log_metric("m", 3, step=np.int64(0))
        track.log_metric("m", np.float32(0.25), step=1)
        track.log_metric(key="m", value=np.float64(2.5), step=2)
        track.log_metric("m", True, 3)
        track.log_metric("m", 7.0)  # step defaults to 0
        track.log_metrics({"x": 1.5, "y": 2}, step=9)
    s, _, v = track.get_history(run.id, "m")
    assert sorted(zip(s.tolist(), v.tolist())) == [(0, 3.0), (0, 7.0), (1, 0.25), (2, 2.5),
                                                   (3, 1.0)]
    r = track.get_run(run.id)["metrics"]
    assert r["x"]["last"] == 1.5 and r["y"]["last_step"] == 9


def test_a_million_point_numpy_series_round_trips_exactly(trackd):
    n = 1_000_000
    steps = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(7)
    values = rng.standard_normal(n)
    values[::1000] = np.nan
    values[1::1000] = np.inf
    with track.start_run(experiment="py-series") as run:
        t0 = time.perf_counter()
        track.log_series("grad_norm", steps, values)
        logged = time.perf_counter() - t0
    s, t, v = track.get_history(run.id, "grad_norm")
    assert s.dtype == np.int64 and v.dtype == np.float64 and len(s) == n
    assert np.array_equal(s, steps)
    assert np.array_equal(v, values, equal_nan=True)
    # no Python object per point: a million points log in well under the ~50 ns x 1e6 a
    # loop of log_metric calls would take at best (loose: shared CI machines)
    assert logged < 5.0, f"log_series of 1e6 points took {logged:.2f}s"


def test_series_from_any_buffer(trackd):
    with track.start_run(experiment="py-series") as run:
        track.log_series("a", array.array("q", [0, 1, 2]), array.array("d", [0.5, 1.5, 2.5]))
        track.log_series("b", memoryview(array.array("i", [5, 6])), np.array([1, 2], np.int32))
        track.log_series("c", np.arange(10)[::2], np.arange(10, dtype=np.float32)[::2],
                         times=np.full(5, 1_700_000_000_000, dtype=np.int64))
        with pytest.raises(track.InvalidArgument):
            track.log_series("d", np.arange(3), np.zeros(4))
        with pytest.raises(TypeError):
            track.log_series("d", np.zeros(3), np.zeros(3))  # float steps
    assert list(track.get_history(run.id, "a")[2]) == [0.5, 1.5, 2.5]
    assert list(track.get_history(run.id, "b")[0]) == [5, 6]
    s, t, v = track.get_history(run.id, "c")
    assert list(s) == [0, 2, 4, 6, 8] and list(v) == [0, 2, 4, 6, 8]
    assert set(t) == {1_700_000_000_000}


def test_search_into_dicts_and_pandas(trackd):
    ids = {}
    for lr, acc in ((0.1, 0.8), (0.01, 0.93), (0.001, 0.95)):
        with track.start_run(experiment="py-search", params={"lr": lr}, tags={"k": "v"}) as r:
            track.log_metric("val_acc", acc)
            track.log_metric("val_loss", 1 - acc)
        ids[lr] = r.id
    runs = track.search_runs(experiment="py-search", filter="metrics.val_acc > 0.9",
                             order_by="metrics.val_loss")
    assert [r["run_id"] for r in runs] == [ids[0.001], ids[0.01]]
    assert runs[0]["params"]["lr"] == "0.001" and runs[0]["tags"]["k"] == "v"
    assert runs[0]["metrics"]["val_acc"]["count"] == 1
    assert len(track.search_runs(experiment=["py-search", "py-cm"], limit=2)) == 2
    df = track.search_runs(experiment="py-search", order_by="metrics.val_loss", as_pandas=True)
    assert list(df["run_id"]) == [ids[0.001], ids[0.01], ids[0.1]]
    assert list(df["metrics.val_acc"]) == [0.95, 0.93, 0.8]
    assert list(df["params.lr"]) == ["0.001", "0.01", "0.1"]
    assert str(df["start_time"].dtype).startswith("datetime64")
    with pytest.raises(track.InvalidArgument):
        track.search_runs(filter="metrics.val_acc >>> 1")


def test_history_into_numpy_or_array(trackd, monkeypatch):
    with track.start_run(experiment="py-hist") as run:
        track.log_series("h", np.arange(100), np.arange(100) * 0.5)
    s, t, v = track.get_history(run.id[:8], "h")
    assert isinstance(s, np.ndarray) and v[99] == 49.5
    with pytest.raises(track.NotFound, match="no-such-key"):
        track.get_history(run.id, "no-such-key")
    import builtins
    real = builtins.__import__

    def no_numpy(name, *a, **k):
        if name == "numpy":
            raise ImportError("no numpy here")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_numpy)
    s, t, v = track.get_history(run.id, "h")
    assert isinstance(s, array.array) and s.typecode == "q" and v[99] == 49.5


def test_search_as_pandas_without_pandas_says_so(trackd, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_pandas(name, *a, **k):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="needs pandas"):
        track.search_runs(as_pandas=True)


def test_artifact(trackd, tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"weights" * 1000)
    with track.start_run(experiment="py-art") as run:
        track.log_artifact(p)
        track.log_artifact(str(p), artifact_path="ckpt/last.pt")
        with pytest.raises(track.InvalidArgument):
            track.log_artifact(str(p), artifact_path="../x")
    r = track.get_run(run.id)
    assert r["artifacts"] == 2 and r["artifact_bytes"] == 14000


def test_help_and_docstrings():
    for name in track.__all__:
        obj = getattr(track, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and len(obj.__doc__) > 20, name
    assert "fork" in track.__doc__ and "ForkError" in track.__doc__


def test_ctrl_c_in_the_block_ends_the_run_killed(trackd):
    with pytest.raises(KeyboardInterrupt):
        with track.start_run(experiment="py-cm") as run:
            raise KeyboardInterrupt
    assert track.get_run(run.id)["status"] == "KILLED"


def test_log_metrics_of_many_keys_and_values_that_call_track(trackd):
    class Loss:
        def __float__(self):
            track.log_metric("inner", 1.0)  # no deadlock: values are read before the lock
            return 0.5
    with track.start_run(experiment="py-values") as run:
        track.log_metrics({f"k{i}": i for i in range(100)}, step=2)
        track.log_metrics({"outer": Loss()})
        with pytest.raises(TypeError):
            track.log_metrics({"a": 1.0, "b": "x"})
    m = track.get_run(run.id)["metrics"]
    assert m["k99"]["last"] == 99 and m["outer"]["last"] == 0.5 and m["inner"]["count"] == 1
    assert "a" not in m  # a bad value refuses the whole call
