"""Export size, export time, and the latency of one prediction through each way of serving.

For each task (airline forecast: lookback 24, horizon 12; GunPoint classification: 150
steps) a model of the given cell and width is built with the split's real scaling (training
does not change size or speed, so none is done) and then:

- written by `cellpick.output.export.write_export`, without and with ONNX (median of --repeats
  writes each); size of DIR and its parts;
- logged to MLflow exactly as a fit does (`Tracker.log_model`, sqlite store in a temp dir);
- called with one raw input (batch 1), --calls times after 5 warm-up calls, median and p90 in
  ms: Keras `model.predict`, the SavedModel's serving_default, MLflow pyfunc `predict` (the
  Keras flavor: model.predict behind a pandas/schema layer), and onnxruntime.

    python bench/export_latency.py                       # gru, 64 units, 1 layer
    python bench/export_latency.py --cell lstm --units 128 --layers 2
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TASKS = {
    "forecast": ("airline_train.csv", {"lookback": 24, "horizon": 12}),
    "classify": ("GunPoint_train.csv", {"target": "label"}),
}


def _machine() -> list[str]:
    """bench/_env.py's lines (date, device, load, versions, command) plus the serving libraries."""
    import _env
    import mlflow
    import onnxruntime
    import tf2onnx

    return _env.describe() + [f"- mlflow {mlflow.__version__}, tf2onnx {tf2onnx.__version__}, "
                              f"onnxruntime {onnxruntime.__version__}"]


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def _timed(fn, calls: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def bench_task(task: str, args, work: Path) -> dict:
    import contextlib
    import io

    import mlflow
    import numpy as np
    import onnxruntime
    import tensorflow as tf

    from cellpick.config import FitConfig
    from cellpick.models.cells import build_model, export_model
    from cellpick.output.export import write_export
    from cellpick.stages.plan import make_plan
    from cellpick.tracking import Tracker

    data, options = TASKS[task]
    plan = make_plan(FitConfig(data=str(ROOT / "recipes" / "data" / data), **options).validate())
    prep = plan.prep
    config = {"cell": args.cell, "units": args.units, "layers": args.layers}
    model = export_model(prep, build_model(prep, config))
    x = prep.arrays("val")[0][:1].astype("float32")
    model(x)
    meta = {"task": task, "classes": plan.dataset.classes, "input": {"name": prep.input_name}}

    row = {"task": task, "model": f"{args.cell} {args.units}x{args.layers}",
           "params": model.count_params()}
    for onnx in (False, True):
        seconds = []
        for i in range(args.repeats):
            out = work / f"{task}-{int(onnx)}-{i}"
            t = time.perf_counter()
            write_export(out, model, prep, meta, onnx=onnx, warn=print)
            seconds.append(time.perf_counter() - t)
        row["export s" + (" +onnx" if onnx else "")] = statistics.median(seconds)
    row["DIR MB"] = _size_mb(out)
    for part in ("saved_model", "model.keras", "model.onnx"):
        row[part + " MB"] = _size_mb(out / part) if (out / part).exists() else float("nan")

    tracker = Tracker(f"sqlite:///{work / 'mlflow.db'}", "bench")
    tracker.start_fit(f"bench-{task}", {}, {})
    with contextlib.redirect_stdout(io.StringIO()):
        uri = tracker.log_model(model, prep.arrays("val")[0][:2])["model_uri"]
    tracker.finish_fit()
    mlflow.set_tracking_uri(tracker.uri)  # finish_fit restored the caller's URI

    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    pyfunc = mlflow.pyfunc.load_model(uri)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    xt = tf.constant(x)
    ways = {
        "Keras predict": lambda: model.predict(x, verbose=0),
        "SavedModel": lambda: serve(**{prep.input_name: xt}),
        "MLflow pyfunc": lambda: pyfunc.predict(x),
        "onnxruntime": lambda: session.run(None, {prep.input_name: x}),
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pyfunc's Keras predict() prints a bar
        for name, fn in ways.items():
            row[name] = _timed(fn, args.calls)
    reference = model(xt, training=False).numpy()
    onnx_out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {prep.input_name: x})))
    name = "probabilities" if task == "classify" else "forecast"
    row["onnx max |diff|"] = float(np.abs(onnx_out[name] - reference).max())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="gru", choices=["lstm", "gru", "rnn"])
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--calls", type=int, default=50, help="timed calls per way (batch 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed writes per export kind")
    args = parser.parse_args()

    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # An untrained classifier has no optimizer state; MLflow's reload of it says so.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    print("\n".join(_machine()), flush=True)
    print()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cellpick-bench-") as work:
        for task in TASKS:
            rows.append(bench_task(task, args, Path(work)))
    print("| task | model | params | export s | export s with ONNX | DIR MB | saved_model MB | "
          "model.keras MB | model.onnx MB | ONNX max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['model']} | {r['params']} | {r['export s']:.2f} | "
              f"{r['export s +onnx']:.2f} | {r['DIR MB']:.2f} | {r['saved_model MB']:.2f} | "
              f"{r['model.keras MB']:.3f} | {r['model.onnx MB']:.3f} | {r['onnx max |diff|']:.1e} |")
    print()
    print(f"Latency of one prediction, batch 1, ms: median (p90) of {args.calls} calls after 5 warm-up calls")
    print()
    print("| task | Keras model.predict | SavedModel serving_default | MLflow pyfunc predict | onnxruntime |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        cells = " | ".join(f"{r[k][0]:.2f} ({r[k][1]:.2f})"
                           for k in ("Keras predict", "SavedModel", "MLflow pyfunc", "onnxruntime"))
        print(f"| {r['task']} | {cells} |")


if __name__ == "__main__":
    main()
