"""cellpick's own cost: the same trials run by cellpick and by a plain keras-tuner script,
and where the time of a whole cellpick fit goes.

    python bench/overhead.py [--repeats 3] [--quick]

Plain: one keras_tuner.RandomSearch per cell over cellpick's own hypermodel (same space, seed,
data pipeline, epochs, callbacks), no MLflow, no export. cellpick: `search.run_search` with its
MLflow hooks on a fresh SQLite store. The two alternate, so a change in machine load hits both;
the ratio is per repeat, then the median. The breakdown times one whole `cellpick.fit` from its
progress events.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trials", type=int, default=3, help="trials per cell")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="1 repeat, 2 trials, 5 epochs")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.trials, args.epochs = 1, 2, 5
    _env.print_env()

    import keras_tuner as kt

    import cellpick
    from cellpick.pipeline import make_plan
    from cellpick.config import FitConfig
    from cellpick.search import run_search
    from cellpick.space import hypermodel
    from cellpick.tracking import Tracker
    from cellpick.train import Schedule, callbacks

    cells, units, layers = ["gru", "rnn"], [8, 16], [1]
    config = FitConfig(data=str(DATA), horizon=12, lookback=24, cells=cells, units=units,
                       layers=layers, max_trials=args.trials, epochs=args.epochs, seeds=1).validate()
    plan = make_plan(config)
    prep, schedule = plan.prep, Schedule(args.epochs, max(5, args.epochs // 4), 1)

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

    def tracked(tmp: Path) -> float:
        t0 = time.perf_counter()
        tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "overhead")
        tracker.start_fit("overhead", {}, {})
        run_search(prep, cells=cells, units=units, layers=layers, tuner="random",
                   max_trials=args.trials, schedule=schedule, seed=1, workdir=tmp / "tuner",
                   tracker=tracker, progress=lambda e, i: None)
        tracker.finish_fit()
        return time.perf_counter() - t0

    rows = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            p, c = plain(Path(a)), tracked(Path(b))
        rows.append((p, c))
        print(f"repeat {r + 1}: plain keras-tuner {p:.1f} s, cellpick search {c:.1f} s", flush=True)
    ratios = [c / p for p, c in rows]
    print(f"\n{len(cells)} cells x {args.trials} trials x {args.epochs} epochs (airline, units {units})\n")
    print("| | median s |\n|---|---:|")
    print(f"| plain keras-tuner | {statistics.median(p for p, _ in rows):.1f} |")
    print(f"| cellpick search (MLflow hooks) | {statistics.median(c for _, c in rows):.1f} |")
    print(f"| ratio (median of per-repeat ratios) | {statistics.median(ratios):.3f}x |")

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
