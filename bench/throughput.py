"""Throughput of one training: cellpick's engine against plain Keras, and the hardware.

One 16-unit LSTM/GRU on the adding problem (recipes/make_adding_problem.py: N sequences x 60
steps, 2 features) trained through cellpick's engine as a verdict unit trains it
(engine/members.py `fit_members` with one member) and through plain Keras `model.fit` on the
same model (models/cells.py `build_model`), data pipeline (`Prepared.dataset`), batch and
epochs. Prints, per size and cell, samples per second of each (steady state: the last epoch's
training, validation excluded), their ratio, the cell's FLOPs per epoch
(2 x gates x (units x (units + features) + units) x steps x samples x 3 for forward and
backward) and the share of the machine's measured matmul GFLOP/s they reach.

`--batches` adds the batch-size table: the engine at each batch size, samples/s at equal
epochs and the validation loss reached after the same wall time (`--wall` seconds, the
engine's own deadline; whole epochs, so a run may end one epoch past it).

    python bench/throughput.py                                  # 1k, 10k, 30k; lstm, gru
    python bench/throughput.py --sizes 10000 --cells lstm --batches 128,512,2048 --wall 60
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _env  # noqa: E402  (sets the log level before TF is imported)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "recipes"))
STEPS, FEATURES, UNITS = 60, 2, 16
GATES = {"lstm": 4, "gru": 3}


def flops_per_epoch(cell: str, samples: int, units: int = UNITS, steps: int = STEPS,
                    features: int = FEATURES) -> float:
    """The recurrent cell's arithmetic for one epoch, forward and backward (x 3)."""
    return 2.0 * GATES[cell] * (units * (units + features) + units) * steps * samples * 3


def matmul_gflops(batch: int) -> dict[str, float]:
    """Measured float32 matmul GFLOP/s: numpy and TF at 1024^3 (the machine's peak for large
    products) and TF at one step of the cell's shape ((batch, units + features) x
    (units + features, 4 units), the product a recurrent step is made of)."""
    import numpy as np
    import tensorflow as tf

    def rate(fn, flops, repeat):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        return flops * repeat / (time.perf_counter() - t0) / 1e9

    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    ta = tf.constant(a)
    small_x = tf.constant(a[:batch, :UNITS + FEATURES])
    small_w = tf.constant(a[:UNITS + FEATURES, :4 * UNITS])
    loops = 1000

    @tf.function
    def steps():  # one graph, no per-call dispatch: what a compiled recurrent loop pays
        acc = tf.zeros((batch, 4 * UNITS))
        for _ in tf.range(loops):
            acc += tf.matmul(small_x + acc[:, :1] * 0.0, small_w)
        return acc

    big = 2.0 * 1024 ** 3
    return {"numpy 1024^3": rate(lambda: a @ a, big, 20),
            "tf 1024^3": rate(lambda: tf.matmul(ta, ta).numpy(), big, 20),
            f"tf cell-shaped ({batch}x{UNITS + FEATURES}x{4 * UNITS}) in a graph loop":
                rate(lambda: steps().numpy(), 2.0 * batch * (UNITS + FEATURES) * 4 * UNITS * loops, 5)}


def prepared(samples: int, tmp: Path):
    """The search split cellpick makes of the adding problem's long CSV (80% train)."""
    from make_adding_problem import make_adding_problem

    from cellpick.data import detection
    from cellpick.data.prepared import prepare

    path = tmp / f"adding_{samples}.csv"
    make_adding_problem(samples, STEPS, 1997).to_csv(path, index=False, float_format="%.4f")
    ds = detection.load(path, target="target", id="sample_id", time="step")
    return prepare(ds, lookback=None, horizon=1, test_size=0.0, seed=0)


def _with_batch(prep, batch: int | None):
    if batch:
        prep.batch_size = lambda: batch  # bench only: the engine reads prep.batch_size()
    return prep


def engine_run(prep, cell: str, epochs: int, wall: float | None = None, lr: float = 1e-3) -> dict:
    """One member through fit_members; one round per epoch (patience beyond the epochs)."""
    import math

    from cellpick.engine.members import Member, fit_members
    from cellpick.engine.train import Schedule

    spe = max(1, math.ceil(prep.sizes["train"] / prep.batch_size()))
    schedule = Schedule(epochs=epochs, patience=10 * epochs, steps_per_epoch=spe)
    config = {"cell": cell, "units": UNITS, "layers": 1, "dropout": 0.0, "learning_rate": lr}
    deadline = time.time() + wall if wall else None
    t0 = time.perf_counter()
    [r] = fit_members([Member(prep, 0)], config, schedule, deadline=deadline)
    seconds = time.perf_counter() - t0
    return {"round_seconds": r.extra["round_seconds"], "first": r.extra["first_round_seconds"],
            "steps_per_round": r.round_steps, "spe": spe, "rounds": r.rounds_trained,
            "val_loss": min(r.history["val_loss"]), "seconds": seconds}


def keras_run(prep, cell: str, epochs: int) -> dict:
    """The same model, batches and epochs through plain model.fit."""
    import keras

    from cellpick.engine.threads import set_seeds
    from cellpick.models.cells import build_model

    marks: dict[str, list[float]] = {"begin": [], "test": []}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["begin"].append(time.perf_counter())

        def on_test_begin(self, logs=None):
            marks["test"].append(time.perf_counter())

    set_seeds(0)
    config = {"cell": cell, "units": UNITS, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3}
    model = build_model(prep, config)
    bs = prep.batch_size()
    hist = model.fit(prep.dataset("train", bs, shuffle=True, seed=0), epochs=epochs,
                     validation_data=prep.dataset("val", bs), verbose=0, callbacks=[Clock()])
    train = [t - b for b, t in zip(marks["begin"], marks["test"])]
    keras.backend.clear_session()
    return {"epoch_seconds": train[-1], "first": train[0], "val_loss": min(hist.history["val_loss"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", default="", help="e.g. 128,512,2048: the batch-size table")
    parser.add_argument("--wall", type=float, default=60.0, help="seconds for the batch table")
    parser.add_argument("--no-throughput", action="store_true", help="only the batch table")
    parser.add_argument("--scale-lr", choices=("none", "sqrt", "linear"), default="none",
                        help="batch table: the learning rate 1e-3 x (batch / 128)^(0, 1/2, 1)")
    args = parser.parse_args(argv)
    _env.print_env()
    sizes = [int(s) for s in args.sizes.split(",")]
    cells = args.cells.split(",")
    rates = matmul_gflops(128)
    print("\nmatmul float32 GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))
    peak = rates["tf 1024^3"]
    tmp = Path(tempfile.mkdtemp(prefix="cellpick-throughput-"))
    preps = {}
    for n in sizes:
        t0 = time.perf_counter()
        preps[n] = prepared(n, tmp)
        print(f"prepared {n} samples in {time.perf_counter() - t0:.1f} s "
              f"(train {preps[n].sizes['train']}, val {preps[n].sizes['val']}, "
              f"batch {preps[n].batch_size()})", flush=True)

    if not args.no_throughput:
        print(f"\n| samples (train) | cell | batch | engine samples/s | keras samples/s | "
              f"engine / keras | GFLOP per epoch | engine GFLOP/s | % of tf 1024^3 matmul |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in sizes:
            prep = preps[n]
            n_train = prep.sizes["train"]
            for cell in cells:
                e = engine_run(prep, cell, args.epochs)
                k = keras_run(prep, cell, args.epochs)
                se, sk = n_train / e["round_seconds"], n_train / k["epoch_seconds"]
                gf = flops_per_epoch(cell, n_train) / 1e9
                print(f"| {n} ({n_train}) | {cell} | {prep.batch_size()} | {se:,.0f} | {sk:,.0f} | "
                      f"{se / sk:.2f} | {gf:.2f} | {gf * se / n_train:.2f} | "
                      f"{100 * gf * se / n_train / peak:.1f}% |", flush=True)

    if args.batches:
        batches = [int(b) for b in args.batches.split(",")]
        power = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}[args.scale_lr]
        print(f"\nBatch size (engine, one member, lr 1e-3 x (batch/128)^{power:g}): samples/s over "
              f"{args.epochs} epochs, "
              f"and the best validation MSE (scaled target) after {args.wall:.0f} s of training")
        print("| samples (train) | cell | batch | steps/epoch | samples/s | epochs in wall | "
              "val MSE after wall |")
        print("|---|---|---|---|---|---|---|")
        for n in sizes:
            for cell in cells:
                for b in batches:
                    prep = _with_batch(preps[n], b)
                    lr = 1e-3 * (b / 128) ** power
                    e = engine_run(prep, cell, args.epochs, lr=lr)
                    w = engine_run(prep, cell, 1000, wall=args.wall, lr=lr)
                    print(f"| {n} ({prep.sizes['train']}) | {cell} | {b} | {e['spe']} | "
                          f"{prep.sizes['train'] / e['round_seconds']:,.0f} | {w['rounds']} | "
                          f"{w['val_loss']:.4f} |", flush=True)
                    del prep.batch_size
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
