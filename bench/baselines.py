"""Every baseline of baselines.py on the three public sets: fit time and held-out test score.

    airline         airline.csv (1949-1960) split by cellpick with a 12-row test block:
                    lookback 24, horizon 12, season from the calendar (monthly: 12); fitted
                    on train + validation, hyperparameters chosen train -> validation; the one
                    test window is the 1960 forecast from 1959-12: MAE and MASE (in-sample
                    seasonal-naive scale of 1949-1959, lag 12) as in ../shared/data/README.md
    gunpoint        GunPoint_train.csv split by cellpick (--test-size 0: 40 train, 10 val);
                    accuracy on GunPoint_test.csv (150)
    vowels          JapaneseVowels_train.csv (216 train, 54 val, variable length, padded);
                    accuracy on JapaneseVowels_test.csv (370)

Each set runs in a fresh process twice: the first run may compile numba code (aeon's
MiniRocket; its cache then lives in aeon's __pycache__), the second shows the warm cost.

    PYTHONPATH=. python bench/baselines.py [--sets airline,gunpoint,vowels]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _env  # noqa: F401  (quiet TF, machine facts)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")


def run_set(name: str) -> list[dict]:
    os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import numpy as np

    from cellpick import detection as data_mod
    from cellpick.baselines import fit_baselines
    from cellpick.season import season_for, training_rows
    from cellpick.verdict import mase, score
    from cellpick.windows import labels, prepare, sequences

    notes: list[str] = []
    skip = lambda n, r: notes.append(f"{n}: {r}")  # noqa: E731
    t0 = time.perf_counter()
    if name == "airline":
        ds = data_mod.load(SHARED / "airline.csv", target="value", forecast_hint=True)
        season, how = season_for(ds, training_rows(ds, 12, 12 / 144))
        prep = prepare(ds, lookback=24, horizon=12, test_size=12 / 144, season=season)
        y_train = ds.frame["value"].to_numpy(float)[:132]
        task, extra = "forecast", {"season": f"{season} ({how})"}
    else:
        stem = {"gunpoint": "GunPoint", "vowels": "JapaneseVowels"}[name]
        ds = data_mod.load(SHARED / f"{stem}_train.csv", target="label")
        dt = data_mod.load(SHARED / f"{stem}_test.csv", target="label")
        prep = prepare(ds, lookback=None, horizon=1, test_size=0.0, seed=0)
        xt, _ = sequences(dt)
        yt = np.array([ds.classes.index(c) for c in dt.classes], dtype=int)[labels(dt)]
        steps = max(xt.shape[1], prep._x["train"].shape[1])
        pad = lambda a: np.pad(a, ((0, 0), (0, steps - a.shape[1]), (0, 0)))  # noqa: E731
        for k in ("train", "val"):
            prep._x[k] = pad(prep._x[k])
        prep._x["test"], prep._y["test"], prep.sizes["test"] = pad(xt), yt, len(yt)
        task, season, extra = "classify", None, {}
    prep_s = time.perf_counter() - t0
    fitted = fit_baselines(prep, season=season, fit_on="trainval", skip=skip)
    _, y_test = prep.arrays("test")
    rows = []
    for b in fitted:
        t = time.perf_counter()
        pred = b.predict("test")
        row = {"set": name, "baseline": b.name, "fit_s": round(b.seconds, 2),
               "predict_s": round(time.perf_counter() - t, 2), "fit_rows": b.fit_rows,
               "params": b.params, "exportable": b.exportable,
               "test": round(score(task, y_test, pred), 3), "prep_s": round(prep_s, 2), **extra}
        if task == "forecast":
            row["mase"] = round(mase(y_test, pred, y_train, 12), 3)
        rows.append(row)
    rows += [{"set": name, "baseline": n.split(":")[0], "skipped": n} for n in notes]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="airline,gunpoint,vowels")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_set(args.one)))
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print("| set | run | baseline | test | fit s | predict s | fit rows | chosen |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for name in args.sets.split(","):
        for run in ("first", "warm"):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--one", name], env=env, text=True,
                                 capture_output=True, check=True)
            wall = time.perf_counter() - t
            for r in json.loads(out.stdout.strip().splitlines()[-1]):
                if "skipped" in r:
                    print(f"| {name} | {run} | {r['baseline']} | skipped: {r['skipped']} | | | | |")
                    continue
                test = f"MAE {r['test']}, MASE {r['mase']}" if "mase" in r else f"{r['test']}"
                print(f"| {name} | {run} | {r['baseline']} | {test} | {r['fit_s']} | "
                      f"{r['predict_s']} | {r['fit_rows']} | {r['params']} |")
            print(f"| {name} | {run} | (process wall time, imports included) | | {wall:.1f} | | | |")


if __name__ == "__main__":
    main()
