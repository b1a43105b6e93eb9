#!/usr/bin/env python3
"""B20: the PyTorch example (examples/python/train_digits.py) with tracking on against the
same training with every track call a no-op (--no-track): the median wall time of --reps
trainings each, interleaved, and their ratio. Goal: on / off < 1.01. A figure, never
pass/fail.

  PYTHONPATH=build-release/python /usr/bin/python3 bench/b20.py [--reps 3] [--epochs 20]
      [--system-metrics SECONDS] [--smoke] [--trackd PATH]

The trainings run in this process (torch imported once, one thread), each a fresh model
from the same seed, so both sides do the same arithmetic; "on" logs every step's loss, each
epoch's validation metrics, the checkpoint as an artifact and the test metrics into a real
trackd on a temporary directory, and with --system-metrics also samples the process.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples", "python"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--system-metrics", type=float, default=0)
    ap.add_argument("--smoke", action="store_true", help="one short rep each (CI)")
    ap.add_argument("--trackd")
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.epochs = 1, 2

    import track
    import train_digits
    bindir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(track._track.__file__)))), "bin")
    trackd = a.trackd or os.path.join(bindir, "trackd")
    tmp = tempfile.mkdtemp(prefix="track-b20-")
    uri = f"ipc://{tmp}/sock"
    os.environ.update(TRACK_SERVER=uri, TRACK_NO_AUTOSTART="1",
                      XDG_STATE_HOME=os.path.join(tmp, "state"))
    os.environ.pop("TRACK_RUN_ID", None)
    log = open(os.path.join(tmp, "trackd.log"), "wb")
    d = subprocess.Popen([trackd, "--data-dir", os.path.join(tmp, "data"), "--listen", uri,
                          "--log-level", "warn"], stdout=log, stderr=log)
    try:
        for _ in range(200):
            if os.path.exists(f"{tmp}/sock"):
                break
            time.sleep(0.05)
        track.configure()
        times = {"off": [], "on": []}
        for rep in range(a.reps + 1):  # rep 0 warms up both sides (imports, caches)
            for side in ("off", "on"):
                args = train_digits.parse(["--epochs", str(a.epochs), "--out",
                                           os.path.join(tmp, f"{side}{rep}"), "--name",
                                           f"b20-{side}-{rep}"])
                tracker = train_digits.NoTrack() if side == "off" else track
                t0 = time.perf_counter()
                train_digits.train(args, tracker, system_metrics=(
                    a.system_metrics if side == "on" else False))
                if side == "on":
                    track.flush()
                if rep:
                    times[side].append(time.perf_counter() - t0)
        off, on = statistics.median(times["off"]), statistics.median(times["on"])
        steps = a.epochs * -(-1257 // 32)
        print(f"B20 train_digits, {a.epochs} epochs ({steps} steps), median of {a.reps}: "
              f"off {off:.3f} s, on {on:.3f} s, ratio on/off {on / off:.4f} "
              f"(goal < 1.01){' with system metrics' if a.system_metrics else ''}")
        print(f"  off: {' '.join(f'{t:.3f}' for t in times['off'])}  "
              f"on: {' '.join(f'{t:.3f}' for t in times['on'])}")
    finally:
        track.close()
        d.send_signal(signal.SIGTERM)
        d.wait(15)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
