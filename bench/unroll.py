"""Unrolled recurrent layers for short windows: what a search trial would gain and pay.

    PYTHONPATH=. python bench/unroll.py [--repeats 2]

A search trial is a one-member group on the members engine (members._Group, no XLA):
its first round pays the trace (1-4 s), each later round of 24 steps costs 45-200 ms on
airline's shapes, and a default trial trains ~50 rounds. Keras' `unroll=True` replaces the
recurrent while-loop by the window's 24 steps written out: no loop frame and no gradient
accumulators per step, but a graph 24 times the cell's to trace and optimise. For each cell
(16 wide, 1 and 2 layers, airline-like shapes: a 132-value monthly series, lookback 24,
horizon 12) it prints, loop and unrolled, the group's build, its first round (trace +
compile + 24 steps), the first validation (its own trace) and the next round; the
unrolled runs force `unroll=True` on the Keras LSTM, GRU and SimpleRNN layers of this
process only. The last repeat counts (the first warms TensorFlow's kernels up).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import _env  # before TensorFlow
import numpy as np
import pandas as pd


def _force_unroll() -> None:
    import keras

    for cls in (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN):
        original = cls.__init__

        def init(self, *args, __original=original, **kwargs):
            kwargs["unroll"] = True
            __original(self, *args, **kwargs)

        cls.__init__ = init


def _rows(repeats: int) -> list[tuple]:
    import tensorflow as tf

    from cellpick.data.dataset import Dataset
    from cellpick.data.prepared import prepare
    from cellpick.engine.members import Member, _Group
    from cellpick.engine.options import EngineOptions

    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")  # each group traces its own functions: no retrace notes
    t = np.arange(132)
    frame = pd.DataFrame({"y": 300 + 50 * np.sin(2 * np.pi * t / 12) + 5 * np.cos(t)})
    ds = Dataset(path=Path("series.csv"), frame=frame, layout="series", task="forecast",
                 target="y", features=["y"])
    prep = prepare(ds, lookback=24, horizon=12, test_size=0.0, season=12)
    rows = []
    for _ in range(repeats):
        rows.clear()
        for cell in ("lstm", "gru", "rnn"):
            for layers in (1, 2):
                config = {"cell": cell, "units": 16, "layers": layers, "dropout": 0.0,
                          "learning_rate": 3e-3, "scaling": "relative", "linear": True}
                t0 = time.perf_counter()
                # one member: no XLA, members._use_xla's rule, stated
                group = _Group([Member(prep, 1)], config, "train", EngineOptions(xla=False))
                t1 = time.perf_counter()
                group.train(24)
                t2 = time.perf_counter()
                group.validate()
                t3 = time.perf_counter()
                group.train(24)
                t4 = time.perf_counter()
                rows.append((cell, layers, t1 - t0, t2 - t1, t3 - t2, t4 - t3))
    return rows


def main(argv: list[str] | None = None) -> int:
    import subprocess
    import sys

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mode", choices=["loop", "unrolled"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mode is None:  # each mode in its own process: the patch stays in that one
        _env.print_env()
        print("\n| layers | cell | build s | first round s | first validation s | later round ms |"
              "\n|---|---|---|---|---|---|", flush=True)
        for mode in ("loop", "unrolled"):
            subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats),
                            "--mode", mode], check=True)
        return 0
    if args.mode == "unrolled":
        _force_unroll()
    for cell, layers, build, first, val, later in _rows(args.repeats):
        print(f"| {args.mode} | {cell} 16x{layers} | {build:.2f} | {first:.2f} | {val:.2f} "
              f"| {later * 1000:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
