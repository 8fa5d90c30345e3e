"""Train LSTM, GRU and SimpleRNN on the adding problem under one budget.

Reads the long-layout CSV written by recipes/make_adding_problem.py, holds out
a fixed 20% of the samples for validation, trains each cell with the same
width, epochs, optimizer and batch size, and prints a markdown table: each
cell's validation MSE (last and best epoch), the MSE of predicting the training
mean (~0.167: the "has learned nothing" line), parameters and seconds.

    python bench/adding_problem_cells.py
    python bench/adding_problem_cells.py --units 32 --epochs 20 --lr 3e-3 --seeds 0,1
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env  # noqa: E402  (sets the log level before TF is imported)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CSV = REPO / "recipes" / "data" / "adding_problem.csv"
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}


def load(csv: Path):
    """Return x (samples, steps, 2) and y (samples,) from the long CSV."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(csv).sort_values(["sample_id", "step"])
    n = frame["sample_id"].nunique()
    x = frame[["value", "marker"]].to_numpy(np.float32).reshape(n, -1, 2)
    y = frame.groupby("sample_id", sort=True)["target"].first().to_numpy(np.float32)
    return x, y


def train(cell: str, x_tr, y_tr, x_va, y_va, *, units, epochs, lr, batch, seed):
    """Fit one cell; return (params, last val MSE, best val MSE, seconds)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input(shape=x_tr.shape[1:]), getattr(keras.layers, CELLS[cell])(units),
         keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    start = time.perf_counter()
    hist = model.fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=epochs,
                     batch_size=batch, verbose=0)
    seconds = time.perf_counter() - start
    val = hist.history["val_loss"]
    params = model.count_params()
    keras.backend.clear_session()
    return params, val[-1], min(val), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)

    import numpy as np

    _env.print_env()
    x, y = load(args.csv)
    order = np.random.default_rng(12345).permutation(len(x))
    n_val = int(round(len(x) * args.val_fraction))
    va, tr = order[:n_val], order[n_val:]
    baseline = float(np.mean((y[va] - y[tr].mean()) ** 2))
    print(f"- data: {args.csv.name}, {len(x)} samples x {x.shape[1]} steps "
          f"({len(tr)} train / {len(va)} validation)")
    print(f"- budget per cell: {args.units} units, {args.epochs} epochs, Adam {args.lr:g}, "
          f"batch {args.batch}, no early stopping")
    print(f"- baseline (predict the training mean): val MSE {baseline:.4f}")
    print()
    print("| cell | seed | units | params | val MSE (last) | val MSE (best) | "
          "best / baseline | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for seed in (int(s) for s in args.seeds.split(",")):
        for cell in args.cells.split(","):
            params, last, best, sec = train(cell, x[tr], y[tr], x[va], y[va],
                                            units=args.units, epochs=args.epochs,
                                            lr=args.lr, batch=args.batch, seed=seed)
            print(f"| {CELLS[cell]} | {seed} | {args.units} | {params:,} | {last:.4f} | "
                  f"{best:.4f} | {best / baseline:.2f} | {sec:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
