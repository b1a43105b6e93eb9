#!/usr/bin/env python3
"""Trains a small PyTorch network on the digits dataset (data/digits.csv.gz: 8x8 images,
10 classes) and tracks it through `import track`: params, the loss of every step, the
validation loss and accuracy of every epoch (log_metrics), the final checkpoint
(torch.save, then log_artifact) and the test split's labels and predictions, written so
that `track eval --labels labels.txt --predictions predictions.txt` scores the run.

  /usr/bin/python3 examples/python/train_digits.py [--lr 0.01] [--hidden 64] [--epochs 20]
      [--batch 32] [--seed 0] [--out DIR] [--experiment digits] [--no-track]

Deterministic: one seed fixes the split, the initial weights and the batch order; torch
runs on one thread. The split is 70% train, 15% validation, 15% test. --no-track replaces
every track call with a no-op of the same shape (bench/b20.py measures the difference).
Prints the run's id last (or "-" with --no-track).
"""

import argparse
import contextlib
import gzip
import os
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class NoTrack:
    """track's calls used here, doing nothing: the --no-track baseline."""

    class _Run:
        id = "-"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def start_run(self, **kw):
        return self._Run()

    def log_metric(self, key, value, step=0):
        pass

    def log_metrics(self, metrics, step=0):
        pass

    def log_artifact(self, path, artifact_path=None):
        pass


def load(path):
    """The dataset as float32 pixels scaled to 0..1 and int64 labels."""
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return a[:, :64] / 16.0, a[:, 64].astype(np.int64)


def split(x, y, seed):
    order = np.random.default_rng(seed).permutation(len(y))
    n_train, n_val = int(0.7 * len(y)), int(0.15 * len(y))
    parts = np.split(order, [n_train, n_train + n_val])
    return [(torch.from_numpy(x[p]), torch.from_numpy(y[p])) for p in parts]


def evaluate(model, x, y, loss_fn):
    with torch.no_grad():
        out = model(x)
        return float(loss_fn(out, y)), float((out.argmax(1) == y).float().mean()), out.argmax(1)


def train(args, track, system_metrics=False):
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y = load(args.data)
    (xt, yt), (xv, yv), (xs, ys) = split(x, y, args.seed)
    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    params = {"lr": args.lr, "hidden": args.hidden, "epochs": args.epochs, "batch": args.batch,
              "seed": args.seed, "optimizer": "sgd-momentum-0.9"}
    with track.start_run(experiment=args.experiment, name=args.name, params=params,
                         **({"system_metrics": system_metrics} if system_metrics else {})) as run:
        step = 0
        for epoch in range(args.epochs):
            model.train()
            for idx in torch.randperm(len(yt), generator=gen).split(args.batch):
                opt.zero_grad()
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                track.log_metric("loss", loss.item(), step=step)
                step += 1
            model.eval()
            vl, va, _ = evaluate(model, xv, yv, loss_fn)
            track.log_metrics({"val_loss": vl, "val_acc": va, "epoch": epoch}, step=step)
        ckpt = os.path.join(args.out, "model.pt")
        torch.save({"state_dict": model.state_dict(), "params": params}, ckpt)
        track.log_artifact(ckpt, "model.pt")
        tl, ta, pred = evaluate(model, xs, ys, loss_fn)
        track.log_metrics({"test_loss": tl, "test_acc": ta}, step=step)
        with open(os.path.join(args.out, "labels.txt"), "w") as f:
            f.write("".join(f"{int(v)}\n" for v in ys))
        with open(os.path.join(args.out, "predictions.txt"), "w") as f:
            f.write("".join(f"{int(v)}\n" for v in pred))
    return run.id, va, ta


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "digits.csv.gz"))
    ap.add_argument("--out", default="digits-out")
    ap.add_argument("--experiment", default="digits")
    ap.add_argument("--name")
    ap.add_argument("--no-track", action="store_true", help="every track call a no-op")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.no_track:
        tracker = NoTrack()
    else:
        import track as tracker
    t0 = time.perf_counter()
    run_id, va, ta = train(args, tracker)
    print(f"lr={args.lr} hidden={args.hidden}: val_acc {va:.4f} test_acc {ta:.4f} "
          f"in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    print(run_id)


if __name__ == "__main__":
    main()
