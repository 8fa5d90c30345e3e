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

Export columns (issue 37): every contestant whose Keras graph takes the cells' input
(cellpick.models.graphs.keras_model: the sequence contestants, and the linear ones) is written with
cellpick's write_export, its SavedModel loaded back, and its serving_default answers on the
test rows compared with the library's (graphs.sequence.compare): max difference (regression:
of the target's std; classify: probabilities of rows with the same label), labels that
differ (near-ties: library margin below 1e-5) and the SavedModel's median milliseconds per
batch of 256 rows (raw input, the test rows repeated), after one warm-up call, beside the
library's own call on the same batch (aeon + scikit-learn, scikit-learn). The series
contestants' graphs (graphs/series.py) take a history: not measured here.

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
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")


def run_set(name: str) -> list[dict]:
    os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import numpy as np
    from helpers import fit_baselines  # tests/helpers.py

    from cellpick.data import detection as data_mod
    from cellpick.data.prepared import labels, prepare, sequences
    from cellpick.data.season import season_for, training_rows
    from cellpick.verdict import mase, score

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
    classes = ds.classes if task == "classify" else None
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
        row["export"] = export_check(prep, b, classes)
        rows.append(row)
    rows += [{"set": name, "baseline": n.split(":")[0], "skipped": n} for n in notes]
    return rows


def export_check(prep, baseline, classes, batch: int = 256, calls: int = 10) -> dict:
    """The contestant's export against its library on the test rows, and its latency."""
    import tempfile

    import numpy as np
    import tensorflow as tf

    from cellpick.models.graphs import SERIES, NotExportable, keras_model
    from cellpick.models.graphs.sequence import compare, graph_inputs
    from cellpick.output.export import write_export

    if baseline.name in SERIES:
        return {"skipped": "a series graph takes a history (graphs/series.py)"}
    try:
        t = time.perf_counter()
        model = keras_model(prep, baseline)
        build_s = time.perf_counter() - t
    except (NotExportable, ValueError) as e:  # baselines.keras_model: ValueError
        return {"skipped": f"not exportable: {e}"}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        out = write_export(f"{tmp}/export", model, prep, {"task": prep.task, "classes": classes})
        export_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        fn = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
        key = "prediction" if prep.task == "regress" else (
            "forecast" if prep.task == "forecast" else "probabilities")

        def serve(x):
            arg = tf.constant(x.tolist() if prep.input_dtype == "string" else x)
            return fn(**{prep.input_name: arg})[key].numpy()

        x = graph_inputs(prep, "test")
        got = np.concatenate([serve(x[i:i + batch]) for i in range(0, len(x), batch)])
        if prep.task == "forecast":
            diff = float(np.abs(got - baseline.predict("test")).max() / prep.y_std)
            result = {"max_difference": diff, "tolerance": 1e-4, "checked": len(x), "near_ties": 0,
                      "reason": "" if diff <= 1e-4 else "differs"}
        else:
            result = compare(prep, baseline, got, "test")
        labels = (int((np.argmax(got, 1) != np.argmax(baseline.predict("test"), 1)).sum())
                  if prep.task == "classify" else None)
        xb = x[np.arange(batch) % len(x)]
        ms = _median_ms(lambda: serve(xb), calls)
    library = (_median_ms(lambda: _library_call(prep, baseline, xb), calls)
               if _library_call(prep, baseline, xb[:2]) is not None else None)
    return {**result, "labels_differ": labels, "ms_per_batch": ms, "library_ms": library,
            "batch": batch, "build_s": round(build_s, 2), "export_s": round(export_s, 2),
            "export_mb": round(size_mb, 1)}


def _median_ms(call, calls: int) -> float:
    import numpy as np

    call()  # warm-up
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return round(1000 * float(np.median(times)), 2)


def _library_call(prep, b, x):
    """The library's own answer for raw rows `x` (for its latency); None where not measured."""
    import numpy as np

    from cellpick.models.contestants import _flat

    if b.name == "minirocket":
        panel = np.asarray(x, dtype="float32").transpose(0, 2, 1)
        panel = np.pad(panel, ((0, 0), (0, 0), (0, max(0, 9 - panel.shape[2]))))
        return b.model["head"].predict(b.model["rocket"].transform(np.ascontiguousarray(panel)))
    if b.name in ("1nn", "logreg"):
        return b.model.predict_proba(_flat(x))
    if b.name == "ridge" and prep.task == "regress":
        return b.model.predict(_flat(x))
    if b.name.startswith("tfidf"):
        texts = [str(s) for s in x]
        return b.model.predict_proba(texts) if prep.task == "classify" else b.model.predict(texts)
    return None


def _export_cells(r: dict) -> str:
    e = r.get("export") or {}
    if "skipped" in e:
        return f"{e['skipped']} | | | |"
    ties = "" if e["labels_differ"] is None else f"{e['labels_differ']} ({e['near_ties']} near-ties)"
    ok = "match" if not e["reason"] else f"NO: {e['reason']}"
    library = "" if e["library_ms"] is None else f" (library {e['library_ms']})"
    return (f"{e['max_difference']:.1e} ({ok}; tol {e['tolerance']:g}; {e['checked']} rows) | "
            f"{ties} | {e['ms_per_batch']}{library} | {e['export_s']} s, {e['export_mb']} MB |")


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
    print("| set | run | baseline | test | fit s | predict s | fit rows | chosen | export vs "
          "library (max diff) | labels differ | export ms / batch of 256 (library) | export written |")
    print("|---|---|---|---:|---:|---:|---:|---|---|---:|---:|---|")
    for name in args.sets.split(","):
        for run in ("first", "warm"):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--one", name], env=env, text=True,
                                 capture_output=True, check=True)
            wall = time.perf_counter() - t
            for r in json.loads(out.stdout.strip().splitlines()[-1]):
                if "skipped" in r:
                    print(f"| {name} | {run} | {r['baseline']} | skipped: {r['skipped']} "
                          "| | | | | | | | |")
                    continue
                test = f"MAE {r['test']}, MASE {r['mase']}" if "mase" in r else f"{r['test']}"
                print(f"| {name} | {run} | {r['baseline']} | {test} | {r['fit_s']} | "
                      f"{r['predict_s']} | {r['fit_rows']} | {r['params']} | {_export_cells(r)}")
            print(f"| {name} | {run} | (process wall time, imports included) | | {wall:.1f} "
                  "| | | | | | | |")


if __name__ == "__main__":
    main()
