"""Time per epoch and parameter count of LSTM, GRU and SimpleRNN by width.

One recurrent layer plus a Dense(1) regression head, trained with Adam on MSE
over random windows of a fixed shape. At each width the three cells run one
warm-up epoch (tracing, first allocations) and then take turns for ``--repeats``
timed epochs; the table shows each cell's median. Runs unchanged on a GPU, where Keras picks cuDNN for LSTM and GRU.

    python bench/cells.py            # full table (several minutes on 2 CPU cores)
    python bench/cells.py --quick    # widths 16 and 64, 1000 windows, 1 repeat (CI)
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env  # noqa: E402  (sets the log level before TF is imported)

CELLS = ("LSTM", "GRU", "SimpleRNN")
WIDTHS = (16, 32, 64, 128, 256)
QUICK_WIDTHS = (16, 64)


class _EpochTimer:
    """Wall-clock seconds of each epoch of one fit() call."""

    def __init__(self) -> None:
        import keras

        timer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds.append(time.perf_counter() - timer._start)

        self.seconds: list[float] = []
        self._start = 0.0
        self.callback = _Callback()


def _build(cell: str, units: int, input_shape):
    import keras

    model = keras.Sequential(
        [keras.Input(shape=input_shape), getattr(keras.layers, cell)(units), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def time_width(units: int, x, y, *, repeats: int, batch: int, seed: int):
    """Return {cell: (parameter count, median seconds per epoch)} at one width.

    The cells take turns epoch by epoch, so that a load change on a shared
    machine hits all three alike instead of whichever cell ran at the time.
    """
    import keras

    keras.utils.set_random_seed(seed)
    models = {cell: _build(cell, units, x.shape[1:]) for cell in CELLS}
    timers = {cell: _EpochTimer() for cell in CELLS}
    # Epoch 0 is the warm-up: graph tracing and first allocations land there.
    for _ in range(1 + repeats):
        for cell, model in models.items():
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0,
                      callbacks=[timers[cell].callback])
    result = {cell: (models[cell].count_params(), statistics.median(timers[cell].seconds[1:]))
              for cell in CELLS}
    keras.backend.clear_session()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="widths 16,64; 1000 windows; 1 repeat (< 1 minute, for CI)")
    parser.add_argument("--repeats", type=int, help="timed epochs per cell and width (default 3)")
    parser.add_argument("--samples", type=int, help="number of windows (default 5000)")
    parser.add_argument("--steps", type=int, default=50, help="time steps per window")
    parser.add_argument("--features", type=int, default=4, help="features per step")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--widths", help="comma-separated units (default 16,32,64,128,256)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    widths = QUICK_WIDTHS if args.quick else WIDTHS
    if args.widths:
        widths = tuple(int(w) for w in args.widths.split(","))
    samples = args.samples or (1000 if args.quick else 5000)
    repeats = args.repeats or (1 if args.quick else 3)

    import numpy as np

    _env.print_env()
    print(f"- shape: {samples} windows x {args.steps} steps x {args.features} features, "
          f"batch {args.batch}, Adam, MSE, Dense(1) head; median of {repeats} "
          f"epoch(s) after 1 warm-up epoch")
    print()

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((samples, args.steps, args.features), dtype=np.float32)
    y = rng.standard_normal((samples, 1), dtype=np.float32)

    print("| cell | units | params | s/epoch | time vs LSTM | params vs LSTM |")
    print("|---|---:|---:|---:|---:|---:|")
    for units in widths:
        timed = time_width(units, x, y, repeats=repeats, batch=args.batch, seed=args.seed)
        lstm = timed["LSTM"]
        for cell, (params, sec) in timed.items():
            print(f"| {cell} | {units} | {params:,} | {sec:.3f} | "
                  f"{sec / lstm[1]:.2f}x | {params / lstm[0]:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
