#!/usr/bin/env python3
"""A small sweep of train_digits.py through `import track`: three runs with different
learning rates and widths (each a run of experiment "digits", with system metrics every
quarter second: a run takes about one), then `track eval` scores each run's test
predictions into it (eval.accuracy, eval.f1, ... and the confusion matrix as an artifact)
and `track compare` sets them side by side.

  /usr/bin/python3 examples/python/sweep.py [--out DIR] [--track PATH] [--experiment NAME]

Needs trackd reachable as usual ($TRACK_SERVER, else the user's own socket). The `track`
CLI is --track, else $TRACK_CLI, else `track` on PATH.
"""

import argparse
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_digits  # noqa: E402

import track  # noqa: E402

CONFIGS = [
    {"lr": 0.1, "hidden": 64},
    {"lr": 0.01, "hidden": 64},
    {"lr": 0.01, "hidden": 16},
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="digits-sweep")
    ap.add_argument("--track", default=os.environ.get("TRACK_CLI") or shutil.which("track"))
    ap.add_argument("--experiment", default="digits")
    a = ap.parse_args()
    if not a.track:
        sys.exit("sweep.py: no track CLI (--track PATH or $TRACK_CLI)")
    ids = []
    for cfg in CONFIGS:
        name = f"lr{cfg['lr']}-h{cfg['hidden']}"
        out = os.path.join(a.out, name)
        args = train_digits.parse(["--lr", str(cfg["lr"]), "--hidden", str(cfg["hidden"]),
                                   "--out", out, "--experiment", a.experiment, "--name", name])
        run_id, va, ta = train_digits.train(args, track, system_metrics=0.25)
        print(f"{name}: run {run_id[:8]} val_acc {va:.4f} test_acc {ta:.4f}")
        subprocess.run([a.track, "eval", "--run", run_id,
                        "--labels", os.path.join(out, "labels.txt"),
                        "--predictions", os.path.join(out, "predictions.txt")],
                       check=True, stdout=subprocess.DEVNULL)
        ids.append(run_id)
    track.flush()
    subprocess.run([a.track, "compare", *ids, "--metric", "eval.accuracy", "--metric",
                    "eval.f1", "--metric", "val_loss", "--metric", "system/rss_bytes",
                    "--goal", "val_loss=min", "--goal", "eval.accuracy=max",
                    "--goal", "eval.f1=max"], check=True)


if __name__ == "__main__":
    main()
