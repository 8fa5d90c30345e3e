"""The cost curve of a default fit (issue 39), and the memory of a long series (`--memory`).

Cost curve (the default mode): for each data point, one DEFAULT fit (`cellpick.fit`, the
function under `cellpick fit`; `--time-budget` passes a budget to every fit) in a fresh
process, timed per stage from its progress events (cellpick/events.py, mapped onto
pipeline.run()):

    setup         the call -> the data-level stage begins (read, plan, MLflow run; with a
                  budget also the calibration)
    data-level    STAGE data -> DATA (0 when the stage trains nothing)
    search        DATA (or the setup's end) -> STAGE verdict (the trials)
    verdict       STAGE verdict -> the last CELL_END
    contestants   the last CELL_END -> the last CONTESTANT
    refit+export  the last CONTESTANT -> DONE: decision, the winner's refit (or final
                  training), the contestants' final fits, test, report and export

then the peak RSS of that process (VmHWM) and of its largest child (the contestants' worker),
and, in the same process, ONE plain-Keras `model.fit` of the winning configuration on the
fit's search split: `cells.build_model`, `Prepared.batch_size()`, the fit's epoch cap and
`engine.train.callbacks` (early stopping on val_loss with the fit's patience, the same
learning-rate halving), seed 0. "rigour" = the whole fit's wall / that training's wall: what
the search, the verdict and the contestants cost in units of one honest training. Samples/s:
keras = training samples / the median epoch's training seconds (validation excluded, the
first epoch too); engine = the same configuration through `engine.members.fit_members` (one
member, as bench/throughput.py's engine_run, which only takes its fixed 16-unit config), over
two validation rounds of an epoch (at most 200 steps), the second timed.

Points: seqN = the adding problem (recipes/make_adding_problem.py, 60 steps, long layout,
`id=sample_id time=step target=target`); seriesN = N hourly rows of make_csv's 4-feature
series (`time=time target=load`); panelN = N hourly series of 200 rows, target + one
covariate (`id=series time=time target=load`).

    PYTHONPATH=. python bench/scale.py --json /var/tmp/scale/scale.json   # every point
    PYTHONPATH=. python bench/scale.py --points seq1k,series1k,panel10
    PYTHONPATH=. python bench/scale.py --points series100k,panel1000 --time-budget 10m
    PYTHONPATH=. python bench/scale.py --quick --fit-options '{"max_trials":1,"epochs":1,"folds":2,"seeds":1}'

Memory (`--memory`): peak memory and time per epoch of a long 4-feature series with a long
lookback. Each size runs in a fresh Python process (so peaks do not mix): it writes nothing but
reads a CSV made beforehand, then does what `cellpick fit` does before and during one
trial: `detection.load` -> `prepared.prepare` -> `Prepared.dataset` -> `cells.build_model` ->
one epoch, plus the capped arrays the baselines and scoring use (`data.prepared.split_arrays`).
Peak memory is the process's high-water mark (VmHWM in /proc/self/status). The column
"all windows" is what materialising every training window would take; the peak must
grow with rows, not with rows x lookback.

Then one real fit (`cellpick.fit`, the function under `cellpick fit`) at 200,000 rows with
one trial, one epoch, one seed, cells gru, units 16: time to the end of the first trial,
total time, and peak memory.

    PYTHONPATH=. python bench/scale.py --memory          # 10^4, 10^5, 2*10^5, 10^6 rows + the fit
    PYTHONPATH=. python bench/scale.py --memory --quick  # CI size: 2,000 and 10,000 rows, lookback 32
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
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
    from cellpick.data.prepared import prepare, split_arrays
    from cellpick.models.cells import build_model

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
                          env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_main(a: argparse.Namespace) -> None:
    """The --memory mode: windows' peak memory per size, then one real fit."""
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


# -- the cost curve ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
SCRATCH = Path(os.environ.get("CELLPICK_SCALE_DIR", "/var/tmp/scale"))
SEQ_STEPS, SEQ_SEED = 60, 1997
PANEL_ROWS = 200
STAGES = ("setup", "data-level", "search", "verdict", "contestants", "refit+export")
SEQUENCE = {"id": "sample_id", "time": "step", "target": "target"}
SERIES = {"time": "time", "target": "load"}
PANEL = {"id": "series", "time": "time", "target": "load"}
# name -> (kind, size, fit options); sizes: sequences (samples), rows, series of PANEL_ROWS
POINTS = {
    "seq1k": ("sequences", 1_000, SEQUENCE), "seq3k": ("sequences", 3_000, SEQUENCE),
    "seq10k": ("sequences", 10_000, SEQUENCE), "seq30k": ("sequences", 30_000, SEQUENCE),
    "series1k": ("series", 1_000, SERIES), "series10k": ("series", 10_000, SERIES),
    "series100k": ("series", 100_000, SERIES),
    "panel10": ("panel", 10, PANEL), "panel100": ("panel", 100, PANEL),
    "panel1000": ("panel", 1_000, PANEL),
}
QUICK = ("seq1k", "series1k")


def make_panel_csv(path: Path, series: int, rows: int = PANEL_ROWS, seed: int = 0) -> None:
    """`series` hourly series of `rows` rows (long: series, time, load, temp): each a daily
    wave with its own level, amplitude and phase, a trend and noise; one covariate."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    level = rng.uniform(50, 150, size=(series, 1))
    amp = rng.uniform(2, 20, size=(series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(series, 1))
    temp = np.sin(2 * np.pi * t / 24 + phase) + 0.1 * rng.normal(size=(series, rows))
    load = level + amp * temp + 0.01 * t + rng.normal(size=(series, rows))
    frame = pd.DataFrame({
        "series": np.repeat([f"s{i:04d}" for i in range(series)], rows),
        "time": np.tile(pd.date_range("2000-01-01", periods=rows, freq="h")
                        .strftime("%Y-%m-%d %H:%M"), series),
        "load": load.ravel(), "temp": temp.ravel(),
    })
    frame.to_csv(path, index=False, float_format="%.5f")


def point_csv(name: str) -> tuple[Path, int]:
    """The point's CSV under SCRATCH/data (made once, reused) and its row count."""
    kind, size, _ = POINTS[name]
    folder = SCRATCH / "data"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    if not path.exists():
        part = path.with_suffix(".part")
        if kind == "sequences":
            sys.path.insert(0, str(REPO / "recipes"))
            from make_adding_problem import make_adding_problem

            make_adding_problem(size, SEQ_STEPS, SEQ_SEED).to_csv(part, index=False,
                                                                  float_format="%.4f")
        elif kind == "series":
            make_csv(part, size)
        else:
            make_panel_csv(part, size)
        part.rename(path)
    rows = {"sequences": size * SEQ_STEPS, "series": size, "panel": size * PANEL_ROWS}[kind]
    return path, rows


def stage_seconds(first: dict[str, float], last: dict[str, float], total: float) -> dict:
    """Each stage's wall from the fit's events (first/last: seconds since the call at which
    each event was first/last seen; STAGE events are keyed "stage:NAME")."""
    done = first.get("done", total)
    search_start = first.get("trial_begin")
    data_end = first.get("data")
    data_start = first.get("stage:data", data_end)
    setup_end = min(v for v in (data_start, search_start, first.get("stage:verdict"), done)
                    if v is not None)
    data_end = data_end if data_end is not None else setup_end
    verdict_start = first.get("stage:verdict", done)
    verdict_end = last.get("cell_end", verdict_start)
    contest_end = last.get("contestant", verdict_end)
    marks = [0.0, setup_end, data_end, verdict_start, verdict_end, contest_end, done]
    out = {s: round(b - a, 2) for s, a, b in zip(STAGES, marks, marks[1:])}
    export = first.get("stage:export")
    if export is not None:  # refit+export's two parts
        out["refit+test"] = round(export - contest_end, 2)
        out["report+export"] = round(done - export, 2)
    out["after_done"] = round(total - done, 2)
    return out


def _plain_fit(prep, config: dict, schedule, limit: float | None) -> dict:
    """One plain-Keras model.fit of `config` on the search split, as the engine's schedule
    and callbacks would train it; per-epoch training seconds (validation excluded)."""
    import keras

    from cellpick.engine.threads import set_seeds
    from cellpick.engine.train import callbacks
    from cellpick.models.cells import build_model

    marks: dict[str, list[float]] = {"begin": [], "test": []}
    state = {"limited": False}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["begin"].append(time.perf_counter())

        def on_test_begin(self, logs=None):
            marks["test"].append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            if limit is not None and time.perf_counter() - t0 >= limit:
                state["limited"] = True
                self.model.stop_training = True

    set_seeds(0)
    t_build = time.perf_counter()
    model = build_model(prep, config)
    bs = prep.batch_size()
    train = prep.dataset("train", bs, shuffle=True, seed=0)
    val = prep.dataset("val", bs)
    t0 = time.perf_counter()
    hist = model.fit(train, epochs=schedule.epochs, validation_data=val, verbose=0,
                     callbacks=[*callbacks(schedule), Clock()])
    seconds = time.perf_counter() - t0
    epoch_train = [t - b for b, t in zip(marks["begin"], marks["test"])]
    steady = sorted(epoch_train[1:] or epoch_train)
    median = steady[len(steady) // 2]
    epochs = len(hist.history["loss"])
    keras.backend.clear_session()
    return {"seconds": round(seconds, 2), "build_seconds": round(t0 - t_build, 2),
            "epochs": epochs, "epoch_cap": schedule.epochs, "patience": schedule.patience,
            "stopped_early": epochs < schedule.epochs and not state["limited"],
            "limited": state["limited"], "best_val_loss": float(min(hist.history["val_loss"])),
            "first_epoch_train_s": round(epoch_train[0], 3),
            "median_epoch_train_s": round(median, 3),
            "samples_per_s": prep.sizes["train"] / median}


def _engine_rate(prep, config: dict, schedule, cap: int = 200) -> dict:
    """The same configuration through the engine (one member): two validation rounds, the
    second timed (engine.members: `round_seconds` is the median of the rounds after the
    first); a round is an epoch, at most `cap` steps on large data (the engine's stream
    repeats, so a shorter "epoch" only moves the validations); samples/s = the round's
    share of the training set per epoch, or its steps x batch when capped."""
    from cellpick.engine.members import Member, fit_members, round_steps
    from cellpick.engine.train import Schedule

    spe = schedule.steps_per_epoch
    short = min(spe, cap)
    epochs = 1
    while True:  # patience beyond the epochs: every round trains
        sched = Schedule(epochs=epochs, patience=10 * epochs, steps_per_epoch=short)
        n = round_steps(sched)
        if math.ceil(epochs * short / n) >= 2:
            break
        epochs += 1
    t0 = time.perf_counter()
    [r] = fit_members([Member(prep, 0)], config, sched)
    seconds = time.perf_counter() - t0
    samples = (prep.sizes["train"] * r.round_steps / spe if short == spe
               else r.round_steps * prep.batch_size())
    return {"seconds": round(seconds, 2), "rounds": r.rounds_trained,
            "round_steps": r.round_steps, "steps_per_epoch": spe, "capped": short < spe,
            "first_round_s": round(r.extra["first_round_seconds"], 3),
            "round_s": round(r.extra["round_seconds"], 3), "xla": r.extra.get("xla"),
            "samples_per_s": samples / r.extra["round_seconds"]}


def child_curve(path: str, root: str, options: dict, plain_limit: float | None) -> dict:
    """One point: the default fit, its stages and peak, then one plain training and the
    engine's rate of the winning configuration (runs in its own process, cwd = `root`)."""
    import resource

    from cellpick._quiet import tensorflow

    tensorflow()
    import cellpick
    from cellpick.config import resolve
    from cellpick.errors import ConfigError
    from cellpick.pipeline import make_plan
    from cellpick.stages.datalevel import apply

    options = {**options, "tracking_uri": f"sqlite:///{root}/m.db", "out": f"{root}/model"}
    idle = vm("VmRSS")
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    peaks: dict[str, float] = {}
    counts: dict[str, int] = {}

    def progress(event, info: dict) -> None:
        now = time.perf_counter() - t0
        key = str(event.value if hasattr(event, "value") else event)
        if key == "stage":
            key = f"stage:{info.get('name')}"
            peaks[key] = vm("VmHWM")  # the peak so far, as the stage begins
        first.setdefault(key, now)
        last[key] = now
        counts[key] = counts.get(key, 0) + 1

    out: dict = {"idle_mb": round(idle), "options": options}
    t0 = time.perf_counter()
    try:
        result = cellpick.fit(path, progress=progress, **options)
    except ConfigError as e:  # e.g. a time budget too small: exit 2 on the CLI
        out.update(error=str(e), refused=True, wall=round(time.perf_counter() - t0, 2),
                   peak_mb=round(vm("VmHWM")))
        return out
    total = time.perf_counter() - t0
    out.update(
        total=round(total, 2), fit_seconds=result.seconds, stages=stage_seconds(first, last, total),
        first={k: round(v, 2) for k, v in first.items()},
        last={k: round(v, 2) for k, v in last.items()}, counts=counts,
        peak_mb=round(vm("VmHWM")), peaks_mb={k: round(v) for k, v in peaks.items()},
        child_peak_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        winner=result.winner, config=result.config, decision=result.decision,
        metric=result.metric, val_score=result.val_score, test_score=result.test_score,
        trials=result.trials, exported=result.exported, task=result.task, layout=result.layout,
        budget=result.verdict.get("budget"), data_level=(result.verdict.get("data_level") or {}).get("values"),
        refit=result.verdict.get("refit"))

    # The fit's search split and schedule, with the data-level values it chose.
    config = resolve({"data": path, **options})
    plan = make_plan(config)
    plan = apply(plan, out["data_level"] or {})
    prep = plan.prep
    cfg = dict(result.config)
    for k, v in (prep.preprocessing or {}).items():
        cfg.setdefault(k, v)
    if prep.patch > 1:
        cfg.setdefault("patch", prep.patch)
    out.update(model_config=cfg, batch=prep.batch_size(), sizes=dict(prep.sizes),
               lookback=prep.lookback, schedule={"epochs": plan.schedule.epochs,
                                                 "patience": plan.schedule.patience,
                                                 "steps_per_epoch": plan.schedule.steps_per_epoch})
    out["plain"] = _plain_fit(prep, cfg, plan.schedule, plain_limit)
    out["engine"] = _engine_rate(prep, cfg, plan.schedule)
    out["rigour"] = round(total / out["plain"]["seconds"], 2)
    out["peak_all_mb"] = round(vm("VmHWM"))
    return out


def run_point(name: str, options: dict, timeout: float, json_dir: Path) -> dict:
    """One point in a fresh process (its own session, killed whole on timeout); cwd is a new
    folder under SCRATCH/work, where the fit leaves its tuner files, MLflow store and export."""
    path, rows = point_csv(name)
    kind, size, _ = POINTS[name]
    root = SCRATCH / "work" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                         if p)}
    args = [sys.executable, str(Path(__file__).resolve()), "--child", "curve", "--path", str(path),
            "--root", str(root), "--options", json.dumps(options)]
    if plain_limit_arg is not None:
        args += ["--plain-limit", str(plain_limit_arg)]
    row = {"point": name, "kind": kind, "size": size, "rows": rows, "csv": str(path),
           "root": str(root), "load_start": os.getloadavg()}
    t0 = time.perf_counter()
    with open(root / "stdout.log", "w") as so, open(root / "stderr.log", "w") as se:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=so, stderr=se,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    row["process_wall"] = round(time.perf_counter() - t0, 2)
    row["load_end"] = os.getloadavg()
    if rc is None:
        row["error"] = f"killed after {timeout:.0f} s"
        return row
    lines = (root / "stdout.log").read_text().strip().splitlines()
    if rc != 0 or not lines:
        row["error"] = f"exit {rc}: " + (root / "stderr.log").read_text()[-1500:]
        return row
    row.update(json.loads(lines[-1]))
    return row


plain_limit_arg: float | None = None  # set by main (--plain-limit), read by run_point


def _fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def table_rows(rows: list[dict]) -> list[str]:
    head = ("| point | rows (samples) | " + " | ".join(STAGES) + " | total s | plain Keras fit s "
            "(epochs) | rigour | engine samples/s | keras samples/s | peak RSS MB (worker) |")
    out = [head, "|---|---:|" + "---:|" * (len(STAGES) + 6)]
    for r in rows:
        kind, size = r["kind"], r["size"]
        what = (f"{r['rows']:,} ({size:,})" if kind == "sequences"
                else f"{r['rows']:,} ({size:,} series)" if kind == "panel" else f"{r['rows']:,}")
        label = r["point"] + (f", budget {r['options']['time_budget']}"
                              if r.get("options", {}).get("time_budget") else "")
        if "stages" not in r:
            why = ("refused" if r.get("refused") else "killed" if "killed" in r.get("error", "")
                   else "skipped" if "skipped" in r.get("error", "") else "failed")
            out.append(f"| {label} ({why}, see below) | {what} | " + " | ".join(["-"] * len(STAGES))
                       + f" | {_fmt(r.get('wall') or r.get('process_wall'))} | - | - | - | - "
                       f"| {_fmt(r.get('peak_mb'), ',.0f')} |")
            continue
        p, e, s = r["plain"], r["engine"], r["stages"]
        lim = ", stopped at the limit" if p["limited"] else ""
        ratio = f"{'<=' if p['limited'] else ''}{r['rigour']:.1f}x"
        out.append(
            f"| {label} | {what} | " + " | ".join(_fmt(s[k]) for k in STAGES)
            + f" | {r['total']:.1f} | {p['seconds']:.1f} ({p['epochs']}/{p['epoch_cap']}{lim}) "
            f"| {ratio} | {e['samples_per_s']:,.0f} | {p['samples_per_s']:,.0f} "
            f"| {r['peak_mb']:,} ({r['child_peak_mb']:,}) |")
    return out


def details(r: dict) -> str:
    if "stages" not in r:
        return f"- {r['point']}: {(r.get('error') or '').strip()[:600]}"
    c = r["config"]
    cfg = (f"{c.get('cell')} {c.get('units')}x{c.get('layers')}"
           f"{' bi' if c.get('bidirectional') else ''}, dropout {c.get('dropout')}, "
           f"lr {c.get('learning_rate')}")
    s = r["stages"]
    extra = (f"; refit+test {s['refit+test']} s, report+export {s['report+export']} s"
             if "refit+test" in s else "")
    budget = ""
    if r.get("budget"):
        b = r["budget"]
        budget = (f"; budget spent {b.get('spent')}, cut {b.get('cut')}")
    return (f"- {r['point']}: winner {cfg} ({r['decision']}), {r['trials']} trials, "
            f"{r['metric']} val {_fmt(r['val_score'], '.4g')} test {_fmt(r['test_score'], '.4g')}; "
            f"train/val {r['sizes'].get('train')}/{r['sizes'].get('val')}, batch {r['batch']}, "
            f"lookback {r['lookback']}, data-level {r['data_level']}; plain fit best val_loss "
            f"{r['plain']['best_val_loss']:.4g}, epoch {r['plain']['median_epoch_train_s']} s; "
            f"engine round {r['engine']['round_s']} s x {r['engine']['round_steps']} steps "
            f"(xla {r['engine']['xla']}){extra}{budget}; load {r['load_start'][0]:.1f} -> "
            f"{r['load_end'][0]:.1f}")


def env_lines() -> list[str]:
    """_env.describe() from a throwaway process (this one stays without TensorFlow)."""
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import _env; "
            "print('\\n'.join(_env.describe()))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, check=False)
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("- command:")]
    try:
        head = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        head = "?"
    return lines + [f"- code: {head}", f"- command: `python {' '.join(sys.argv)}`"]


def curve_main(a: argparse.Namespace) -> None:
    global plain_limit_arg
    plain_limit_arg = a.plain_limit
    names = (list(QUICK) if a.quick else [p.strip() for p in a.points.split(",") if p.strip()]
             if a.points else list(POINTS))
    unknown = [n for n in names if n not in POINTS]
    if unknown:
        raise SystemExit(f"unknown points {unknown}; known: {', '.join(POINTS)}")
    extra = json.loads(a.fit_options) if a.fit_options else {}
    print("\n".join(env_lines()), flush=True)
    t_start = time.perf_counter()
    rows: list[dict] = []
    for name in names:
        options = {**POINTS[name][2], **extra}
        if a.time_budget:
            options["time_budget"] = a.time_budget
        timeout = a.point_timeout
        if a.total_limit:
            left = a.total_limit * 60 - (time.perf_counter() - t_start)
            if left < max(60.0, a.min_left * 60):
                rows.append({"point": name, "kind": POINTS[name][0], "size": POINTS[name][1],
                             "rows": point_csv(name)[1], "options": options,
                             "error": "skipped: the total limit was reached"})
                print(f"{name}: skipped (total limit)", flush=True)
                continue
            timeout = min(timeout, left)
        print(f"{time.strftime('%H:%M:%S')} {name} ... (load {os.getloadavg()[0]:.1f})", flush=True)
        row = run_point(name, options, timeout, SCRATCH)
        row.setdefault("options", options)
        if row.get("refused") and a.retry_refused:
            import re

            m = re.search(r"--time-budget (\S+) or more", row.get("error", ""))
            if m:
                rows.append(row)
                print(f"  refused: {row['error'][:200]}; again with {m.group(1)}", flush=True)
                if a.total_limit:
                    timeout = min(a.point_timeout,
                                  a.total_limit * 60 - (time.perf_counter() - t_start))
                row = run_point(name, {**options, "time_budget": m.group(1)}, timeout, SCRATCH)
                row.setdefault("options", {**options, "time_budget": m.group(1)})
        rows.append(row)
        print(f"  {name}: " + (f"total {row['total']:.0f} s, plain {row['plain']['seconds']:.0f} s"
                               if "stages" in row else f"no result: {row.get('error', '')[-300:]}"),
              flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(rows, indent=1, default=str))
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    print()
    print("\n".join(table_rows(rows)))
    print()
    print("\n".join(details(r) for r in rows))
    print(f"\n- load average at the end (1/5/15 min): {load}; "
          f"bench wall {time.perf_counter() - t_start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", action="store_true",
                        help="the long-series memory bench (and one fit at 200k rows) instead")
    parser.add_argument("--quick", action="store_true",
                        help="cost curve: seq1k and series1k only; --memory: CI size")
    parser.add_argument("--points", default=None, help=f"comma-separated, of {', '.join(POINTS)}")
    parser.add_argument("--time-budget", default=None, help="passed to every fit, e.g. 10m")
    parser.add_argument("--fit-options", default=None,
                        help='JSON merged into every fit\'s options, e.g. '
                             '\'{"max_trials":1,"epochs":1,"folds":2,"seeds":1}\' for a smoke run')
    parser.add_argument("--json", default=None, help="write the rows here (after every point)")
    parser.add_argument("--point-timeout", type=float, default=1500.0,
                        help="seconds a point may take before its process is killed")
    parser.add_argument("--total-limit", type=float, default=None,
                        help="minutes: points that would start after this are skipped")
    parser.add_argument("--min-left", type=float, default=1.0,
                        help="minutes: with --total-limit, start no point with less left")
    parser.add_argument("--plain-limit", type=float, default=None,
                        help="seconds: stop the plain-Keras fit at the end of the epoch past "
                             "this (its rigour then an upper bound)")
    parser.add_argument("--retry-refused", action="store_true",
                        help="a fit refused for its budget runs again with the budget it names")
    parser.add_argument("--lookback", type=int, default=None, help="--memory only")
    parser.add_argument("--sizes", default=None, help="--memory only: comma-separated row counts")
    parser.add_argument("--epoch-steps", type=int, default=None,
                        help="--memory only: time this many batches and extrapolate the epoch "
                             "(default: a full epoch up to 200,000 rows, 400 batches above)")
    parser.add_argument("--fit-rows", type=int, default=None,
                        help="--memory only: rows of the real fit (0: none)")
    parser.add_argument("--child", choices=["windows", "fit", "curve"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    a = parser.parse_args()

    if a.child == "windows":
        print(json.dumps(child_windows(a.path, a.lookback, a.epoch_steps)))
        return
    if a.child == "fit":
        print(json.dumps(child_fit(a.path, a.lookback, a.root)))
        return
    if a.child == "curve":
        print(json.dumps(child_curve(a.path, a.root, json.loads(a.options), a.plain_limit),
                         default=str))
        return
    if a.memory:
        memory_main(a)
    else:
        curve_main(a)


if __name__ == "__main__":
    main()
