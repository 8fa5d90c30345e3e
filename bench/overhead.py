"""cellpick's own cost: the same trials run by cellpick and by a plain keras-tuner script,
the fixed costs of its MLflow tracking, and where the time of a whole cellpick fit goes.

    python bench/overhead.py [--repeats 6] [--trials 2] [--epochs 10] [--quick]

Plain: one keras_tuner.RandomSearch per cell over cellpick's own hypermodel (same space, seed,
data pipeline, epochs, callbacks), no MLflow, no export. cellpick: `search.run_search` with its
MLflow hooks, timed from opening the store to ending the parent run, on a new SQLite store
(the first fit in a store pays MLflow's schema migrations) and on an existing one (every later
fit). Early stopping is off (patience = epochs) so every variant trains exactly the same
epochs. The three variants run in a rotated order each repeat, because one process slows down
by a few per cent per search (measured, see RESULTS.md) and a fixed order would charge that
drift to whichever runs last. The ratio is per repeat, then the median. The fixed costs are
timed on their own with real calls on a real store; the breakdown times one whole
`cellpick.fit` from its progress events.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data" / "airline_train.csv"


def fixed_costs(tmp: Path, n: int = 30) -> dict[str, float]:
    """Median milliseconds of each tracking call a fit makes, on a real SQLite store."""
    from cellpick.tracking import Tracker

    t0 = time.perf_counter()
    tracker = Tracker(f"sqlite:///{tmp}/fixed.db", "fixed")
    new_store = time.perf_counter() - t0
    t0 = time.perf_counter()
    Tracker(f"sqlite:///{tmp}/fixed.db", "fixed").finish_fit()
    old_store = time.perf_counter() - t0
    tracker.start_fit("fixed", {"metric": "mae"}, {})
    params = {"cell": "gru", "units": 16, "layers": 1, "dropout": 0.0, "learning_rate": 0.001,
              "scaling": "relative", "linear": True, "log": False}
    epoch = {"loss": 0.5, "mae": 20.0, "val_loss": 0.6, "val_mae": 21.0, "learning_rate": 0.001}
    trial, sync, queued, drain = [], [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        run_id = tracker.start_child("trial", f"t{i:02d}", params, {"cellpick.trial_id": str(i)})
        t1 = time.perf_counter()
        tracker.log_metrics(run_id, epoch, step=0)  # what an epoch cost before (synchronous)
        t2 = time.perf_counter()
        tracker.log_epoch(run_id, epoch, step=1)  # what the training thread pays now
        t3 = time.perf_counter()
        tracker.flush(run_id)
        t4 = time.perf_counter()
        tracker.log_metrics(run_id, {"best_epoch": 1, "score": 21.0, "n_params": 900,
                                     "train_seconds": 3.0})
        tracker.end_child(run_id)
        trial.append((t1 - t0) + (time.perf_counter() - t4))
        sync.append(t2 - t1)
        queued.append(t3 - t2)
        drain.append(t4 - t3)
    tracker.finish_fit()
    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    return {"new store (schema migrations) and experiment, per store": 1000 * new_store,
            "existing store and experiment, per fit": 1000 * old_store,
            "trial run start and end (params, dataset, summary, status), per trial": ms(trial),
            "epoch metrics, synchronous write (before), per epoch": ms(sync),
            "epoch metrics, queued for the writer thread (now), per epoch": ms(queued),
            "epoch metrics, the writer's write (off the training thread)": ms(drain)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=6,
                    help="a multiple of 3: each variant runs first, second and third as often")
    ap.add_argument("--trials", type=int, default=2, help="trials per cell")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="1 repeat, 2 trials, 5 epochs")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.trials, args.epochs = 1, 2, 5
    _env.print_env()

    import keras_tuner as kt

    import cellpick
    from cellpick.config import FitConfig
    from cellpick.engine.search import run_search
    from cellpick.engine.train import Schedule, callbacks
    from cellpick.models.cells import hypermodel
    from cellpick.stages.plan import make_plan
    from cellpick.tracking import Tracker

    cells, units, layers = ["gru", "rnn"], [8, 16], [1]
    config = FitConfig(data=str(DATA), horizon=12, lookback=24, cells=cells, units=units,
                       layers=layers, max_trials=args.trials, epochs=args.epochs, seeds=1).validate()
    plan = make_plan(config)
    prep, schedule = plan.prep, Schedule(args.epochs, args.epochs, 1)  # no early stop

    def plain(tmp: Path) -> float:
        t0 = time.perf_counter()
        bs = prep.batch_size()
        train, val = prep.dataset("train", bs, shuffle=True, seed=1), prep.dataset("val", bs)
        for cell in cells:
            tuner = kt.RandomSearch(hypermodel(prep, cell, units, layers),
                                    objective=kt.Objective("val_loss", "min"), seed=1,
                                    max_trials=args.trials, directory=str(tmp), project_name=cell)
            tuner.search(train, validation_data=val, epochs=args.epochs,
                         callbacks=callbacks(schedule), shuffle=False, verbose=0)
        return time.perf_counter() - t0

    def tracked(tmp: Path, existing: bool) -> float:
        uri = f"sqlite:///{tmp}/mlflow.db"
        if existing:  # a store an earlier fit created
            Tracker(uri, "overhead").finish_fit()
        t0 = time.perf_counter()
        tracker = Tracker(uri, "overhead")
        tracker.start_fit("overhead", {}, {})
        run_search(prep, cells=cells, units=units, layers=layers, tuner="random",
                   max_trials=args.trials, schedule=schedule, seed=1, workdir=tmp / "tuner",
                   tracker=tracker, progress=lambda e, i: None)
        tracker.finish_fit()
        return time.perf_counter() - t0

    variants = {"plain": plain, "new": lambda d: tracked(d, False),
                "existing": lambda d: tracked(d, True)}
    names = list(variants)
    rows = []
    for r in range(args.repeats):
        order = names[r % 3:] + names[: r % 3]
        t = {}
        for name in order:
            with tempfile.TemporaryDirectory() as d:
                t[name] = variants[name](Path(d))
        rows.append(t)
        print(f"repeat {r + 1} (order {', '.join(order)}): plain keras-tuner {t['plain']:.1f} s, "
              f"cellpick new store {t['new']:.1f} s, existing store {t['existing']:.1f} s",
              flush=True)
    med = lambda xs: statistics.median(list(xs))  # noqa: E731
    print(f"\n{len(cells)} cells x {args.trials} trials x {args.epochs} epochs, no early stopping "
          f"(airline, units {units}); {args.repeats} repeats, order rotated\n")
    print("| | median s | ratio to plain (median of per-repeat ratios) |\n|---|---:|---:|")
    print(f"| plain keras-tuner | {med(t['plain'] for t in rows):.2f} | 1 |")
    for name, label in (("new", "cellpick search, new store (first fit in a store)"),
                        ("existing", "cellpick search, existing store (later fits)")):
        print(f"| {label} | {med(t[name] for t in rows):.2f} | "
              f"{med(t[name] / t['plain'] for t in rows):.3f}x |")

    with tempfile.TemporaryDirectory() as tmp:
        costs = fixed_costs(Path(tmp))
    print("\nFixed costs of tracking (real calls on a real SQLite store, median of 30)\n")
    print("| call | ms |\n|---|---:|")
    for name, value in costs.items():
        print(f"| {name} | {value:.1f} |")

    marks = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cellpick.fit(DATA, horizon=12, lookback=24, cells=",".join(cells), units="8,16", layers="1",
                     max_trials=args.trials, epochs=args.epochs, seeds=1,
                     tracking_uri=f"sqlite:///{tmp}/mlflow.db", out=f"{tmp}/model",
                     progress=lambda e, i: marks.append((e, i.get("name"), time.perf_counter() - t0)))
        total = time.perf_counter() - t0
    at = {}
    for event, name, t in marks:
        at.setdefault((event, name), t)
    first_trial = next(t for e, n, t in marks if e == "trial_begin")
    verdict = at[("stage", "verdict")]
    baselines = at[("stage", "baselines")]
    export = at[("stage", "export")]
    stages = [("data, plan, TensorFlow import", at[("dataset", None)]),
              ("MLflow store and parent run", first_trial - at[("dataset", None)]),
              ("search (trials + their MLflow logging)", verdict - first_trial),
              ("verdict seeds", baselines - verdict),
              ("baselines, refit", export - baselines),
              ("test score, report, MLflow model, export", total - export)]
    print(f"\nOne whole fit, same budget, 1 seed: {total:.1f} s\n\n| stage | s | share |\n|---|---:|---:|")
    for name, s in stages:
        print(f"| {name} | {s:.1f} | {100 * s / total:.0f}% |")


if __name__ == "__main__":
    main()
