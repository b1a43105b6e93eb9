"""track: log experiments to trackd from Python, through libtrack (C).

    import track

    with track.start_run(experiment="mnist", params={"lr": 1e-3}) as run:
        for step, loss in enumerate(losses):
            track.log_metric("loss", loss, step=step)    # buffered: returns at once
        track.log_series("grad_norm", steps, values)      # numpy arrays, read in place
    # the run ends FINISHED, or FAILED when the block raises (the exception goes on)

    runs = track.search_runs(experiment="mnist", filter="metrics.loss < 0.1")
    steps, times, values = track.get_history(run.id, "loss")

Writes are buffered and batched by libtrack; when trackd cannot be reached they go to the
spool file and a later flush or `track sync` delivers them. Reads need trackd.

The server is $TRACK_SERVER (else the local default socket), or configure(server=...).
Inside `track exec -- python train.py` ($TRACK_RUN_ID set), calls land in that run and
start_run() joins it instead of starting another (track exec ends it with the exit code).

Threads: one client per process, every call serialised inside; calls that wait (flushes,
run start and end, params, tags, reads) release the GIL. fork: a child forked from a
process with an open client (os.fork, multiprocessing 'fork', DataLoader workers) gets
track.ForkError from every call, at once, and never touches the parent's sockets; the
parent keeps logging. Use 'spawn' or 'forkserver' for workers that log themselves.

Errors are track.TrackError subclasses carrying the track code in .code: InvalidArgument,
NotFound, AlreadyExists, ConflictError (a param logged again with another value),
Unauthenticated, PermissionDenied, ResourceExhausted, Unavailable, InternalError, ForkError.
"""

import atexit
import os
import sys

from . import _track
from ._track import (  # noqa: F401  (the public API, implemented in C)
    AlreadyExists,
    ConflictError,
    ForkError,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TrackError,
    Unauthenticated,
    Unavailable,
    close,
    configure,
    current_run_id,
    flush,
    get_run,
    log_artifact,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_series,
    set_tag,
    set_tags,
    sync,
)

__all__ = [
    "Run", "start_run", "end_run", "active_run", "log_metric", "log_metrics", "log_series",
    "log_param", "log_params", "set_tag", "set_tags", "log_artifact", "flush", "sync",
    "search_runs", "get_run", "get_history", "current_run_id", "configure", "close",
    "TrackError", "InvalidArgument", "NotFound", "AlreadyExists", "ConflictError",
    "Unauthenticated", "PermissionDenied", "ResourceExhausted", "Unavailable",
    "InternalError", "ForkError",
]
__version__ = _track.LIBTRACK_VERSION

_STATUS = {"FINISHED": 2, "FAILED": 3, "KILLED": 4}
_active = None  # the Run start_run returned, until it ends


class Run:
    """A run of this process: start_run() returns one. As a context manager it ends the run
    FINISHED when the block completes and FAILED when it raises (KILLED for Ctrl-C); the
    exception propagates.
    A run joined through $TRACK_RUN_ID (track exec) is not ended here: track exec ends it."""

    def __init__(self, run_id, owned):
        self.id = run_id
        self.owned = owned  # False: joined from TRACK_RUN_ID, ended by its owner
        self.status = "RUNNING"
        self._pid = os.getpid()
        self._sampling = False  # the system metrics sampler runs for this run

    def __repr__(self):
        return f"<track.Run {self.id} {self.status}>"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if os.getpid() != self._pid:
            return False  # a forked child: the run is its parent's
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
        return False

    def end(self, status="FINISHED"):
        """Ends this run with status FINISHED, FAILED or KILLED (flushing its points first).
        Returns True when trackd took the end, False when it went to the spool."""
        global _active
        if self.status != "RUNNING":
            return True
        if status not in _STATUS:
            raise InvalidArgument(f"status: must be FINISHED, FAILED or KILLED, not {status!r}")
        if _active is self:
            _active = None
        if self._sampling:
            self._sampling = False
            _track._system_metrics_stop()  # its last samples flushed before the end
        if not self.owned:
            self.status = status
            return flush()
        if current_run_id() != self.id:
            _track._use_run(self.id)
        delivered = _track._end_run(_STATUS[status])
        self.status = status
        return delivered

    def to_dict(self):
        """This run as track.get_run returns it (asks trackd)."""
        return get_run(self.id)


def start_run(experiment=None, name=None, params=None, tags=None, system_metrics=False,
              parent=None):
    """Starts a run and makes it the current one; returns a Run (a context manager).

    experiment: the experiment's name (default "Default", created when new); name: the run's
    name (default: generated); params and tags: dicts, values logged as str(value); parent:
    a run id or unique prefix. Works offline (the start is spooled). Under `track exec`
    ($TRACK_RUN_ID set) the run track exec started is joined instead: params and tags go to
    it, experiment and name are ignored, and it is not ended here.
    system_metrics: True (every 5 s) or an interval in seconds (0.1 to 86400): libtrack's
    sampler logs, until the run ends, this process's tree (system/cpu_percent, 100 = one
    core; system/rss_bytes; system/threads), the host (system/mem_used_bytes,
    system/mem_available_bytes, system/disk_read_bytes_per_s, system/disk_write_bytes_per_s,
    system/net_rx_bytes_per_s, system/net_tx_bytes_per_s) and NVIDIA GPUs when
    libnvidia-ml.so.1 loads (system/gpuN_util_percent, system/gpuN_mem_used_bytes; else one
    info line on stderr), step = the sample number, from a thread of its own (under 1% of a
    core at 1 s)."""
    global _active
    if _active is not None and _active.status == "RUNNING":
        raise AlreadyExists(f"run {_active.id} is still running: end it first "
                            "(track.end_run()) or use `with track.start_run()`")
    interval_ms = 0
    if system_metrics is not False and system_metrics is not None:
        if system_metrics is True:
            interval_ms = 5000
        elif isinstance(system_metrics, (int, float)) and 0.1 <= system_metrics <= 86400:
            interval_ms = round(system_metrics * 1000)
        else:
            raise InvalidArgument("system_metrics: True or seconds from 0.1 to 86400, not "
                                  f"{system_metrics!r}")
    env = os.environ.get("TRACK_RUN_ID")
    if env:
        run_id = _track._use_run(env)
        if params:
            log_params(params)
        if tags:
            set_tags(tags)
        _active = Run(run_id, owned=False)
    else:
        run_id = _track._start_run(experiment, name, parent, params, tags)
        _active = Run(run_id, owned=True)
    if interval_ms:
        _track._system_metrics_start(interval_ms)
        _active._sampling = True
    return _active


def active_run():
    """The Run start_run returned, while it runs; else None."""
    return _active if _active is not None and _active.status == "RUNNING" else None


def end_run(status="FINISHED"):
    """Ends the active run (start_run's) with status FINISHED, FAILED or KILLED; without
    one, ends the client's current run (e.g. one chosen through $TRACK_RUN_ID). Returns
    True when trackd took the end, False when it was spooled."""
    if _active is not None and _active.status == "RUNNING":
        return _active.end(status)
    if status not in _STATUS:
        raise InvalidArgument(f"status: must be FINISHED, FAILED or KILLED, not {status!r}")
    return _track._end_run(_STATUS[status])


def search_runs(experiment=None, filter=None, order_by=None, limit=0, as_pandas=False):
    """Runs matching filter (track's filter language, e.g. "metrics.acc > 0.9 and
    params.lr = '0.001'"), in order_by's order (e.g. "metrics.loss", "start_time desc"),
    at most limit (0: the server's default). experiment: a name, a list of names or None
    (all). Returns a list of dicts (run_id, name, experiment, status, start_time,
    end_time, user, parent_run_id, deleted, params, tags, metrics: key -> {last, min, max,
    count, last_step, last_time}); with as_pandas=True a pandas DataFrame with one row per
    run and columns params.KEY, tags.KEY, metrics.KEY (the last value), as MLflow's."""
    if as_pandas:
        try:
            import pandas
        except ImportError as e:
            raise ImportError("track.search_runs(as_pandas=True) needs pandas "
                              "(apt install python3-pandas, or pip install pandas)") from e
    runs = _track._search_runs(experiment, filter, order_by, limit)
    if not as_pandas:
        return runs
    rows = []
    for r in runs:
        row = {k: v for k, v in r.items() if k not in ("params", "tags", "metrics")}
        for k, m in r["metrics"].items():
            row["metrics." + k] = m["last"]
        for k, v in r["params"].items():
            row["params." + k] = v
        for k, v in r["tags"].items():
            row["tags." + k] = v
        rows.append(row)
    df = pandas.DataFrame(rows)
    for col in ("start_time", "end_time"):
        if col in df:
            df[col] = pandas.to_datetime(df[col], unit="ms", utc=True)
    return df


def get_history(run_id, key):
    """Every point of metric key in run run_id (id or unique prefix), in step order, as
    (steps, times, values): numpy arrays (int64, int64 ms since the epoch, float64) when
    numpy is importable, else array.array('q'), array.array('q'), array.array('d').
    NaN and +-inf come back as logged. A key the run never logged raises track.NotFound."""
    steps, times, values = _track._get_history(run_id, key)
    try:
        import numpy
    except ImportError:
        import array
        return (array.array("q", bytes(steps)), array.array("q", bytes(times)),
                array.array("d", bytes(values)))
    return (numpy.frombuffer(steps, dtype=numpy.int64), numpy.frombuffer(times, dtype=numpy.int64),
            numpy.frombuffer(values, dtype=numpy.float64))


_uncaught = False
_prev_excepthook = sys.excepthook


def _excepthook(tp, value, tb):
    global _uncaught
    _uncaught = True
    _prev_excepthook(tp, value, tb)


sys.excepthook = _excepthook


@atexit.register
def _at_exit():
    # a run left open ends as the script did; then the buffer is flushed. Nothing in a
    # forked child (close() knows): the run and the buffer are the parent's.
    run = _active
    if run is not None and run.status == "RUNNING" and run._pid == os.getpid():
        try:
            run.end("FAILED" if _uncaught else "FINISHED")
        except TrackError as e:
            print(f"track: ending run {run.id} at exit: {e}", file=sys.stderr)
    close()
