"""Peak memory and time per epoch of a long 4-feature series with a long lookback.

Each size runs in a fresh Python process (so peaks do not mix): it writes nothing but
reads a CSV made beforehand, then does what `cellpick fit` does before and during one
trial: `detection.load` -> `prepared.prepare` -> `Prepared.dataset` -> `cells.build_model` ->
one epoch, plus the capped arrays the baselines and scoring use (`data.prepared.split_arrays`).
Peak memory is the process's high-water mark (VmHWM in /proc/self/status). The column
"all windows" is what materialising every training window would take; the peak must
grow with rows, not with rows x lookback.

Then one real fit (`cellpick.fit`, the function under `cellpick fit`) at 200,000 rows with
one trial, one epoch, one seed, cells gru, units 16: time to the end of the first trial,
total time, and peak memory.

    PYTHONPATH=. python bench/scale.py             # 10^4, 10^5, 2*10^5, 10^6 rows + the fit
    PYTHONPATH=. python bench/scale.py --quick     # CI size: 2,000 and 10,000 rows, lookback 32
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = 4
UNITS = 16


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """An hourly series with a daily wave (the target) and three covariates."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    temp = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=rows)
    frame = pd.DataFrame({
        "time": pd.date_range("2000-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M"),
        "load": 100 + 10 * temp + 0.001 * t + rng.normal(size=rows),
        "temp": temp,
        "price": rng.normal(size=rows).cumsum() * 0.01,
        "holiday": (t // 24 % 7 >= 5).astype(int),
    })
    frame.to_csv(path, index=False, float_format="%.5f")


def vm(kind: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_windows(path: str, lookback: int, epoch_steps: int | None) -> dict:
    """One size: load, prepare, one epoch; memory and time (runs in its own process)."""
    from cellpick._quiet import tensorflow

    tensorflow()
    import keras

    from cellpick.data import detection
    from cellpick.data.prepared import prepare
    from cellpick.models.cells import build_model
    from cellpick.data.prepared import split_arrays

    keras.utils.set_random_seed(0)
    idle = vm("VmRSS")  # TensorFlow and Keras imported, no data yet
    t0 = time.perf_counter()
    ds = detection.load(path, target="load", forecast_hint=True)
    prep = prepare(ds, lookback=lookback, horizon=1, test_size=0.2)
    t_prepare = time.perf_counter() - t0
    after_prepare = vm("VmHWM")
    for split in ("train", "val"):  # what the baselines and scoring materialise (capped)
        split_arrays(prep, split)
    after_arrays = vm("VmHWM")
    batch = prep.batch_size()
    model = build_model(prep, {"cell": "gru", "units": UNITS, "layers": 1})
    train = prep.dataset("train", batch, shuffle=True, seed=0)
    steps = -(-prep.sizes["train"] // batch)
    measured = steps if not epoch_steps or epoch_steps >= steps else epoch_steps
    # Trace the train step outside the clock (Keras reuses it for the next fit call).
    model.fit(prep.dataset("train", batch).take(5), epochs=1, verbose=0)
    if measured < steps:
        train = train.take(measured)
    t1 = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    seconds = time.perf_counter() - t1
    epoch = seconds * steps / measured
    return {
        "rows": len(ds.frame), "windows": prep.sizes["train"], "lookback": lookback,
        "all_windows_mb": prep.sizes["train"] * lookback * FEATURES * 4 / 2**20,
        "idle_mb": idle, "prepare_peak_mb": after_prepare, "arrays_peak_mb": after_arrays,
        "peak_mb": vm("VmHWM"), "prepare_s": t_prepare, "epoch_s": epoch,
        "steps": steps, "measured_steps": measured, "batch": batch,
    }


def child_fit(path: str, lookback: int, root: str) -> dict:
    """One real fit with the smallest budget; times from its progress events."""
    from cellpick._quiet import tensorflow

    tensorflow()
    import cellpick

    idle = vm("VmRSS")
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    peaks: dict[str, float] = {}

    def progress(event: str, info: dict) -> None:
        marks.setdefault(event, time.perf_counter() - t0)
        if event == "stage":  # the peak so far, as each stage begins
            peaks[info["name"]] = vm("VmHWM")

    result = cellpick.fit(path, target="load", lookback=lookback, horizon=1, cells="gru",
                          units="16", layers="1", max_trials=1, epochs=1, seeds=1,
                          tracking_uri=f"sqlite:///{root}/mlflow.db", out=f"{root}/model",
                          progress=progress)
    peaks["end"] = vm("VmHWM")
    return {"idle_mb": idle, "peak_mb": peaks["end"], "peaks": peaks,
            "first_trial_s": marks.get("trial_end"),
            "total_s": result.seconds, "test_mae": result.test_score}


def run_child(args: list[str]) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI size: small rows, lookback 32")
    parser.add_argument("--lookback", type=int, default=None)
    parser.add_argument("--sizes", default=None, help="comma-separated row counts")
    parser.add_argument("--epoch-steps", type=int, default=None,
                        help="time this many batches and extrapolate the epoch (default: a "
                             "full epoch up to 200,000 rows, 400 batches above)")
    parser.add_argument("--fit-rows", type=int, default=None, help="rows of the real fit (0: none)")
    parser.add_argument("--child", choices=["windows", "fit"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    a = parser.parse_args()

    if a.child == "windows":
        print(json.dumps(child_windows(a.path, a.lookback, a.epoch_steps)))
        return
    if a.child == "fit":
        print(json.dumps(child_fit(a.path, a.lookback, a.root)))
        return

    lookback = a.lookback or (32 if a.quick else 256)
    sizes = ([int(float(s)) for s in a.sizes.split(",") if s.strip()] if a.sizes is not None
             else [2_000, 10_000] if a.quick else [10_000, 100_000, 200_000, 1_000_000])
    fit_rows = a.fit_rows if a.fit_rows is not None else (10_000 if a.quick else 200_000)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cellpick bench/scale.py: {FEATURES}-feature series, lookback {lookback}, gru units "
          f"{UNITS}, one epoch; {os.cpu_count()} CPU cores, load average {load} (1/5/15 min)")
    if sizes:
        print()
        print("| rows | train windows | all windows would take | idle RSS | peak RSS "
              "| peak - idle | load + prepare | one epoch (batches) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="cellpick-scale-") as tmp:
        for rows in sizes:
            path = Path(tmp) / f"series_{rows}.csv"
            make_csv(path, rows)
            steps = a.epoch_steps or (None if rows <= 200_000 else 400)
            r = run_child(["--child", "windows", "--path", str(path), "--lookback", str(lookback),
                           *(["--epoch-steps", str(steps)] if steps else [])])
            est = "" if r["measured_steps"] == r["steps"] else \
                f", est. from {r['measured_steps']}"
            print(f"| {r['rows']:,} | {r['windows']:,} | {r['all_windows_mb']:,.0f} MB "
                  f"| {r['idle_mb']:,.0f} MB | {r['peak_mb']:,.0f} MB "
                  f"| {r['peak_mb'] - r['idle_mb']:,.0f} MB | {r['prepare_s']:.1f} s "
                  f"| {r['epoch_s']:.1f} s ({r['steps']:,} x {r['batch']}{est}) |", flush=True)
            path.unlink()
        if fit_rows:
            path = Path(tmp) / f"series_{fit_rows}.csv"
            make_csv(path, fit_rows)
            root = Path(tmp) / "fit"
            root.mkdir()
            r = run_child(["--child", "fit", "--path", str(path), "--lookback", str(lookback),
                           "--root", str(root)])
            print()
            print(f"cellpick.fit at {fit_rows:,} rows (lookback {lookback}, gru units 16, 1 trial, "
                  f"1 epoch, 1 seed): first trial done at {r['first_trial_s']:.0f} s, whole fit "
                  f"{r['total_s']:.0f} s, peak RSS {r['peak_mb']:,.0f} MB (idle "
                  f"{r['idle_mb']:,.0f} MB), test MAE {r['test_mae']:.3g}")
            print("peak RSS so far as each stage began: " + ", ".join(
                f"{k} {v:,.0f} MB" for k, v in r["peaks"].items()))
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nload average at the end: {load}")


if __name__ == "__main__":
    main()
