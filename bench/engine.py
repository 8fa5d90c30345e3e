"""Training engine benchmarks (issue 15): whole fits, old code vs new; K members in one graph.

    python bench/engine.py fits [--recipes airline gunpoint japanese_vowels] [--repeats 1]
        [--old 8dd85a5] [--extra K=V ...] [--extra-old K=V ...] [--extra-new K=V ...]
        [--env-old K=V ...] [--env-new K=V ...] [--same-trials] [--ref-epochs 200]
        [--json PATH] [--keep DIR]
    python bench/engine.py members [--ks 1 3 5 10] [--solo 3] [--xla auto|on|off]
    python bench/engine.py scoring [--repeats 5]
    python bench/engine.py group [--recipe japanese_vowels] [--config K=V ...] [--k 15]
        [--epochs 30] [--patience 4] [--engines unstacked stacked rebuilt]
    python bench/engine.py [--ks ...]          # = members (the original invocation)

## fits: the whole default fit, old code against this checkout

For each recipe in recipes/ it runs `cellpick.fit(recipe=..., quiet=True, progress=...)` with
the OLD code (a commit, `git archive`d into a temporary folder) and with the NEW code (this
checkout), interleaved (old, new for each recipe, repeat after repeat), each in a fresh
subprocess of this Python with PYTHONPATH set to that code only, a fresh SQLite MLflow store
and a fresh work folder (the fit's cwd). The progress callback timestamps every event; the
stages are the intervals between them:

    plan      start of cellpick.fit (TensorFlow and MLflow imports included) -> first trial_begin
    search    -> stage "verdict"
    verdict   -> stage "baselines"   (the verdict's seeds, or folds x seeds)
    baselines -> stage "refit" or "final" (else -> "export")
    refit     -> stage "export"       (winner retrained; the internal test split scored)
    export    -> "done"               (report, MLflow model, SavedModel export)
    total     start -> cellpick.fit returned

Then the child scores the export on the recipe's official held-out file with that version's
`cellpick.predict` (scoring from bench/reference_quality.py): airline forecasts 1960 from the
end of airline_train.csv, MASE against airline_test.csv (scale: the training data's
seasonal-naive MAE, season 12); GunPoint_test.csv and JapaneseVowels_test.csv: accuracy. The
held-out score is reported, never used to choose. `--extra K=V` options go to both versions,
`--extra-old` / `--extra-new` to one side (the old code has no `folds`, for example); values are
parsed as int, float, true/false/none, or comma lists. `--env-old` / `--env-new K=V` set
environment variables for one side's fits (the engine's choices are no environment
variables since `EngineOptions`; a commit before it read CELLPICK_STACK=0 and the like).

`--same-trials` makes the search's work equal, not only its counts: the new side's candidate
list is replaced, per cell, by the configurations the old side's fit of the same recipe and
repeat trained (read from its MLflow trial runs, in the order they started; the data-level
values the new space fixes are kept). Without it the new side trains its own list (the
defaults, then Sobol points), which on these recipes includes 128x2 models the old random
draws never reached. The patch is the bench's own (in the child, `candidates.candidate_list`),
not a cellpick option.

A plain-Keras reference workload (no cellpick: a 2-layer LSTM-16 on the first 45 airline
training windows, lookback 24, horizon 12, batch 8, `--ref-epochs` epochs of `model.fit`) is
timed in its own subprocess before each repeat and after the last; every fit is also given as
a multiple of the median reference time (the issue's machine-independent goal).

Smoke run (plumbing only; its times and scores mean nothing; the old code has no `folds`):

    PYTHONPATH=. python bench/engine.py fits --extra-new folds=2
        --extra max_trials=1 epochs=2 seeds=1 units=8 layers=1 cells=gru,rnn     (one line)

## group: one members group under each engine

K members of one configuration (default: JapaneseVowels' GRU 128x2 bidirectional, dropout
0.2, 15 members) on the recipe's search split, with a short patience so that members stop at
different rounds, trained by `members.fit_members` three ways in one process:
`unstacked` (EngineOptions(stack=False): the K models called one by one, a stopped member's
step skipped), `stacked` (EngineOptions(compact=False): one stacked step for all K to the
end), `rebuilt`
(the default: the stacked group rebuilt over its active members, `_Group.compact`). The same
seeds, so the same members: the rounds each trained must match across engines. Reports the
wall, the first round (trace + compile), a later round with all K training, the rebuilds, and the
member-rounds trained against those computed.

## scoring: a fresh model's predictions, `predict()` against one direct call

Every verdict unit and data-level candidate is scored once, on a fresh model, on a small
block (airline: 12-24 windows; a fold of 36-150 sequences), and `model.predict` traces a new
function for each model. For shapes like those blocks and two larger ones, `--repeats` fresh
models each: seconds of `model.predict(x, batch_size=256)` against
`cellpick.engine.train.predictions` (one call below `train.DIRECT_BELOW` samples, else `predict`) and
against eager calls batch by batch, and the largest difference between their outputs.

## members: K members in one graph against K separate `fit_one` trainings, airline shapes

Data: recipes/airline.toml on recipes/data/airline_train.csv, prepared as `cellpick fit`
prepares it (`pipeline.make_plan`: 45 training windows, batch 8, 6 steps an epoch, the default
step-counted schedule: up to 1200 steps, patience 204 steps). One configuration (default
LSTM 16x2, relative scaling, linear path, the issue's probe), seeds 1000, 2000, ...

Members: `members.fit_members` with K members (seeds 1000..1000K), wall time from building
the models to the restored weights, so it includes tracing and XLA compilation (reported
separately as "first round": trace + compile + one round of steps). Separate: `fit_one`
(tests/helpers.py: Keras' own `fit`)
for `--solo` seeds one after another; K separate trainings cost K times their mean (each is
independent of the others, so timing all 10 would only repeat the measurement). Both use
early stopping, so their step counts differ per seed: the table reports the mean gradient
steps and the median best val_loss (same configuration, same scale) next to the times.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "airline.toml"
CONFIG = {"cell": "lstm", "units": 16, "layers": 2, "dropout": 0.0, "learning_rate": 1e-3,
          "scaling": "relative", "linear": True}


def members_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5, 10])
    ap.add_argument("--solo", type=int, default=3, help="separate fit_one trainings to time")
    ap.add_argument("--xla", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--cell", default=CONFIG["cell"])


def members(args: argparse.Namespace) -> int:
    """K members in one graph against K separate fit_one trainings (the original bench)."""
    _env.print_env()
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import fit_one  # Keras' own fit, as tests compare against it

    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.engine.members import Member, fit_members
    from cellpick.engine.options import EngineOptions
    from cellpick.engine.train import best_epoch
    from cellpick.pipeline import make_plan

    options = EngineOptions(xla={"auto": None, "on": True, "off": False}[args.xla])

    tf = tensorflow()
    tf.config.experimental.enable_op_determinism()  # as pipeline.run on a CPU
    plan = make_plan(resolve({}, RECIPE))
    prep, schedule = plan.prep, plan.schedule
    config = {**CONFIG, "cell": args.cell}
    print(f"- data: {prep.sizes}, batch {prep.batch_size()}, {schedule}, config {config}")

    solo_s, solo_steps, solo_loss = [], [], []
    for k in range(args.solo):
        _, history, secs = fit_one(prep, config, 1000 * (k + 1), schedule)
        solo_s.append(secs)
        solo_steps.append(len(history["val_loss"]) * schedule.steps_per_epoch)
        solo_loss.append(history["val_loss"][best_epoch(history)])
        print(f"  fit_one seed {1000 * (k + 1)}: {secs:.1f} s, {solo_steps[-1]} steps", flush=True)
    solo = statistics.mean(solo_s)

    rows = []
    for k in args.ks:
        t0 = time.perf_counter()
        results = fit_members([Member(prep, 1000 * (i + 1)) for i in range(k)], config, schedule,
                              options=options)
        wall = time.perf_counter() - t0
        extra = results[0].extra
        steps = statistics.mean(r.rounds_trained * r.round_steps for r in results)
        loss = statistics.median(r.history["val_loss"][r.best_round] for r in results)
        rows.append((k, wall, extra, steps, loss))
        print(f"  members K={k}: {wall:.1f} s (first round {extra['first_round_seconds']:.1f} s)", flush=True)

    one = rows[0][1] if rows and rows[0][0] == 1 else None
    print()
    print(f"fit_one, one at a time ({args.solo} seeds): {solo:.1f} s per model, "
          f"{statistics.mean(solo_steps):.0f} steps, median best val_loss {statistics.median(solo_loss):.4f}")
    print()
    print("| K | XLA | members wall (s) | first round: trace+compile (s) | later round (s) "
          "| per model (s) | K x fit_one (s) | speed-up per model | wall / one member | wall / one fit_one "
          "| mean steps | median best val_loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, wall, extra, steps, loss in rows:
        rel_one = f"{wall / one:.2f}x" if one else "-"
        print(f"| {k} | {'on' if extra['xla'] else 'off'} | {wall:.1f} | {extra['first_round_seconds']:.1f} "
              f"| {extra['round_seconds']:.3f} | {wall / k:.1f} | {k * solo:.1f} | {k * solo / wall:.1f}x "
              f"| {rel_one} | {wall / solo:.2f}x | {steps:.0f} | {loss:.4f} |")
    return 0


# --- group: one members group on a recipe's data, per engine -----------------------------

ENGINES = {"unstacked": {"stack": False}, "stacked": {"compact": False},  # EngineOptions fields
           "rebuilt": {}}


def group(args: argparse.Namespace) -> int:
    """K members of one configuration on a recipe's search split (seeds 1000, 2000, ...), under
    each engine in turn: unstacked (the models called one by one), stacked with stopped
    members computed to the end, stacked and rebuilt over the active members (the default)."""
    _env.print_env()
    import numpy as np

    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.engine.members import Member, _Group, fit_members
    from cellpick.engine.options import EngineOptions
    from cellpick.engine.train import Schedule
    from cellpick.pipeline import make_plan

    tf = tensorflow()
    tf.config.experimental.enable_op_determinism()
    plan = make_plan(resolve({}, ROOT / "recipes" / f"{args.recipe}.toml"))
    config = {"dropout": 0.0, "learning_rate": 1e-3, **parse_options(args.config)}
    for key in LIST_OPTIONS:  # one configuration: units=128, not [128]
        if isinstance(config.get(key), list):
            config[key] = config[key][0]
    schedule = Schedule(args.epochs, args.patience or plan.schedule.patience, plan.schedule.steps_per_epoch)
    print(f"- data: {plan.prep.sizes}, batch {plan.prep.batch_size()}, {schedule}, config {config}, K={args.k}")
    rounds_of = {}
    train = _Group.train

    def timed(self, n):  # every round's seconds, members computed and members training
        active = int(np.sum(self.active.numpy()))
        t = time.perf_counter()
        out = train(self, n)
        rounds_of.setdefault(id(self), []).append((len(self.live), active, time.perf_counter() - t))
        return out

    _Group.train = timed
    print()
    print("| engine | wall (s) | first round (s) | later round, all training (s) | rebuilds (live after) "
          "| member-rounds trained / computed | rounds (min-max) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.engines:
        rounds_of.clear()
        t0 = time.perf_counter()
        results = fit_members([Member(plan.prep, 1000 * (i + 1)) for i in range(args.k)], config, schedule,
                              options=EngineOptions(**ENGINES[name]))
        wall = time.perf_counter() - t0
        [log] = rounds_of.values()
        full = [s for _, active, s in log[1:] if active == args.k] or [s for *_, s in log[1:]]
        trained = sum(r.rounds_trained for r in results)
        # Unstacked, a stopped member's step is skipped; stacked, every live member is computed.
        computed = sum(active if name == "unstacked" else live for live, active, _ in log)
        rounds = [r.rounds_trained for r in results]
        print(f"| {name} | {wall:.1f} | {log[0][2]:.2f} | {statistics.median(full):.3f} "
              f"| {results[0].extra.get('compactions', []) or '-'} | {trained} / {computed} "
              f"| {min(rounds)}-{max(rounds)} |", flush=True)
    return 0


# --- scoring: predict() against a direct call --------------------------------------------

# (samples, steps, features, cell, units, layers): airline's fold block, GunPoint's (patch 6)
# and JapaneseVowels' folds, then larger sets
SCORING_SHAPES = [(12, 24, 1, "GRU", 16, 1), (30, 25, 6, "LSTM", 32, 2), (54, 29, 12, "LSTM", 16, 1),
                  (500, 29, 12, "LSTM", 32, 1), (2000, 29, 12, "LSTM", 32, 1),
                  (5000, 50, 4, "GRU", 64, 2)]


def scoring(args: argparse.Namespace) -> int:
    _env.print_env()
    import numpy as np

    from cellpick._quiet import tensorflow
    from cellpick.engine.train import DIRECT_BELOW, predictions

    tf = tensorflow()
    import keras

    def model(steps, feats, cell, units, layers):
        inp = keras.Input((steps, feats))
        h = inp
        for i in range(layers):
            h = getattr(keras.layers, cell)(units, return_sequences=i < layers - 1)(h)
        return keras.Model(inp, keras.layers.Dense(3)(h))

    ways = {"predict()": lambda m, x: m.predict(x, verbose=0, batch_size=256),
            "plan.predictions": predictions,
            "eager calls of 256": lambda m, x: np.concatenate(
                [np.asarray(m(tf.constant(x[s:s + 256]), training=False))
                 for s in range(0, len(x), 256)])}
    print(f"\nplan.DIRECT_BELOW = {DIRECT_BELOW}; median of {args.repeats} fresh models each\n")
    print("| samples x steps x features | model | " + " | ".join(f"{w} (s)" for w in ways)
          + " | max abs diff |")
    print("|---|---|" + "---|" * len(ways) + "---|")
    rng = np.random.default_rng(0)
    for n, steps, feats, cell, units, layers in SCORING_SHAPES:
        x = rng.random((n, steps, feats), dtype=np.float32)
        secs = {w: [] for w in ways}
        diff = 0.0
        for _ in range(args.repeats):
            outs = []
            for w, f in ways.items():
                m = model(steps, feats, cell, units, layers)  # fresh: predict() traces again
                same = np.random.default_rng(1)  # the same weights for every way
                m.set_weights([same.normal(0, 0.1, v.shape).astype(v.dtype) for v in m.get_weights()])
                t = time.perf_counter()
                outs.append(np.asarray(f(m, x)))
                secs[w].append(time.perf_counter() - t)
            diff = max(diff, *(float(np.max(np.abs(o - outs[0]))) for o in outs))
        print(f"| {n} x {steps} x {feats} | {cell}-{units}x{layers} | "
              + " | ".join(f"{statistics.median(v):.3f}" for v in secs.values()) + f" | {diff:.1e} |",
              flush=True)
    return 0


# --- fits: the whole default fit, old code against this checkout --------------------------

RECIPES = ("airline", "gunpoint", "japanese_vowels")
# recipe -> bench/reference_quality.py's set: its scorer and the held-out file to predict on
HELD_OUT = {"airline": ("airline", "airline_train.csv"),  # forecasts 1960 from 1959-12
            "gunpoint": ("gunpoint", "GunPoint_test.csv"),
            "japanese_vowels": ("vowels", "JapaneseVowels_test.csv")}
LIST_OPTIONS = ("cells", "units", "layers")
STAGES = ("plan", "search", "verdict", "baselines", "refit", "export")
# Keep the subprocesses' output short: TF's C++ chatter, oneDNN notes.
CHILD_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def parse_value(text: str):
    """`--extra` value: int, float, true/false, none, or a comma list of those."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if "," in text:
        return [parse_value(t) for t in text.split(",") if t]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--extra expects KEY=VALUE, got {pair!r}")
        key, value = key.strip().replace("-", "_"), parse_value(value.strip())
        if key in LIST_OPTIONS and not isinstance(value, list):
            value = [value]  # units=8 -> [8]: FitConfig's list options take lists
        out[key] = value
    return out


def stage_seconds(events: list[tuple[str, str | None, float]], total: float) -> dict[str, float | None]:
    """Per-stage wall seconds from the progress events' timestamps (see the module docstring)."""
    def first(pred, after: float = 0.0):
        return next((t for e, n, t in events if t >= after and pred(e, n)), None)

    trial = first(lambda e, n: e == "trial_begin") or first(lambda e, n: e == "trial_end")
    verdict = first(lambda e, n: e == "stage" and n == "verdict")
    baselines = first(lambda e, n: e == "stage" and n == "baselines")
    refit = first(lambda e, n: e == "stage" and n in ("refit", "final"))
    export = first(lambda e, n: e == "stage" and n == "export")
    done = first(lambda e, n: e == "done") or total
    marks = [0.0, trial, verdict, baselines, refit, export, done]
    out: dict[str, float | None] = {}
    for i, name in enumerate(STAGES):
        start = marks[i]
        if start is None:
            out[name] = None
            continue
        end = next((m for m in marks[i + 1:] if m is not None), total)
        out[name] = end - start
    if refit is None:  # no refit/final stage (e.g. a time budget): baselines runs to export
        out["refit"] = 0.0
    out["total"] = total
    return out


def child_fit(spec: dict) -> dict:
    """In a fresh subprocess: one whole fit with whatever cellpick PYTHONPATH points to, then the
    held-out score of its export through that version's cellpick.predict."""
    import pandas as pd
    import reference_quality as rq

    import cellpick

    where = Path(cellpick.__file__).resolve()
    if Path(spec["code"]).resolve() not in where.parents:
        raise SystemExit(f"imported cellpick from {where}, expected under {spec['code']}")
    work = Path(spec["work"])
    events: list[tuple[str, str | None, float]] = []
    t0 = time.perf_counter()

    def progress(event: str, info: dict) -> None:
        name = info.get("name") if event == "stage" else None
        events.append((event, name, time.perf_counter() - t0))

    if spec.get("candidates"):  # --same-trials: the old fit's configurations, per cell
        _use_candidates(spec["candidates"])
    result = cellpick.fit(recipe=spec["recipe"], tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                          out=str(work / "model"), quiet=True, progress=progress, **spec["options"])
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    scores, headline = {}, None
    if spec["name"] in HELD_OUT:  # a recipe with an official held-out file (adding_problem: none)
        set_name, held_out = HELD_OUT[spec["name"]]
        pred = cellpick.predict(result.export_path, rq.DATA / held_out)
        scores = rq.SETS[set_name]["score"](pd.DataFrame(pred))
        headline = rq.SETS[set_name]["headline"]
    v = result.verdict or {}
    return {"stages": stage_seconds(events, total), "predict_seconds": time.perf_counter() - t1,
            "winner": result.winner, "decision": getattr(result, "decision", None) or v.get("decision"),
            "config": result.config, "metric": result.metric, "val_score": result.val_score,
            "internal_test_score": result.test_score, "trials": result.trials,
            "held_out": scores, "headline": headline,
            "events": [e for e in events if e[0] in ("stage", "done", "trial_begin", "trial_end")],
            "cellpick": str(where.parent)}


SEARCHED = ("units", "layers", "dropout", "learning_rate", "bidirectional")


def _use_candidates(per_cell: dict[str, list[dict[str, str]]]) -> None:
    """Replace cellpick's candidate list (in this child only) by `per_cell[cell]`: each
    searched value matched to the new space's value of the same text (MLflow params are
    text); the dimensions these configurations do not name (the space's Fixed data-level
    values) keep the space's own value."""
    from cellpick.models import candidates

    def listed(dims, budget, seed=candidates.LIST_SEED):
        values = dict(dims)
        cell = values["cell"][0]
        out = []
        for config in per_cell[cell][:budget]:
            row = {}
            for name, options in dims:
                if name not in config:
                    row[name] = options[0]
                    continue
                match = [v for v in options if str(v) == config[name]
                         or (not isinstance(v, bool) and _number(config[name]) == v)]
                if not match:
                    raise SystemExit(f"--same-trials: {cell} {name}={config[name]} is not in the "
                                     f"new space ({options})")
                row[name] = match[0]
            out.append(row)
        return out

    candidates.candidate_list = listed


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def trial_configs(store: Path) -> dict[str, list[dict[str, str]]]:
    """The searched values of every trial run in an MLflow SQLite store, per cell, in the
    order the trials started."""
    import sqlite3

    con = sqlite3.connect(store)
    rows = con.execute(
        "select r.run_uuid, p.key, p.value from runs r "
        "join tags t on t.run_uuid = r.run_uuid and t.key = 'cellpick.role' and t.value = 'trial' "
        "join params p on p.run_uuid = r.run_uuid order by r.start_time, r.run_uuid").fetchall()
    con.close()
    runs: dict[str, dict[str, str]] = {}
    for run, key, value in rows:
        runs.setdefault(run, {})[key] = value
    out: dict[str, list[dict[str, str]]] = {}
    for params in runs.values():
        out.setdefault(params["cell"], []).append(
            {k: params[k] for k in SEARCHED if k in params})
    return out


def child_reference(epochs: int) -> dict:
    """The fixed plain-Keras workload: 2-layer LSTM-16 on the first 45 airline training windows
    (lookback 24, horizon 12, scaled by the series' mean), batch 8, `epochs` epochs of fit."""
    import keras  # no cellpick here: the workload is fixed whatever the code under test
    import numpy as np
    import pandas as pd

    values = pd.read_csv(ROOT / "recipes" / "data" / "airline_train.csv")["value"].to_numpy("float32")
    values = values / values.mean()
    x = np.stack([values[i:i + 24] for i in range(45)])[..., None]
    y = np.stack([values[i + 24:i + 36] for i in range(45)])
    keras.utils.set_random_seed(0)
    t0 = time.perf_counter()
    model = keras.Sequential([keras.Input((24, 1)), keras.layers.LSTM(16, return_sequences=True),
                              keras.layers.LSTM(16), keras.layers.Dense(12)])
    model.compile(optimizer="adam", loss="mse")
    t1 = time.perf_counter()
    history = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "fit_seconds": t2 - t1, "epochs": epochs,
            "final_loss": float(history.history["loss"][-1])}


def child(args: argparse.Namespace) -> int:
    spec = json.loads(Path(args.spec).read_text())
    out = child_fit(spec) if spec["kind"] == "fit" else child_reference(spec["epochs"])
    Path(args.result).write_text(json.dumps(out, default=str))
    return 0


def _spawn(spec: dict, work: Path, pythonpath: Path | None, extra_env: dict | None = None) -> dict:
    """Run one child (fit or reference) in a fresh interpreter; its result dict plus the wall."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CHILD_ENV)
    env.update(extra_env or {})
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_child", str(work / "spec.json"),
           str(work / "result.json")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    wall = time.perf_counter() - t0
    (work / "output.log").write_text(done.stdout)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-25:])
        return {"error": f"exit {done.returncode}: {tail}", "process_seconds": wall}
    return {**json.loads((work / "result.json").read_text()), "process_seconds": wall}


def old_code(commit: str, into: Path) -> tuple[str, Path]:
    """`git archive` of the commit's cellpick package into `into`; (full commit id, folder)."""
    full = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=ROOT,
                          check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", full, "cellpick"], cwd=ROOT, check=True,
                             stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return full, into


def git_head() -> str:
    """This checkout's short commit, with "+dirty" when tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _score(r: dict) -> tuple[str, str]:
    if "error" in r:
        return "-", "-"
    val = f"{r['metric']} {r['val_score']:.4g}" if r.get("val_score") is not None else "-"
    held = ", ".join(f"{k} {v:.3f}" for k, v in r["held_out"].items() if k == r["headline"])
    return val, held


def fits_table(rows: list[dict], ref: float | None) -> str:
    head = ("| recipe | code | total s | plan | search | verdict | baselines | refit | export "
            "| x reference | winner (decision) | val | held-out test |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        label = f"{r['code']} {r['commit']}" + (f" #{r['repeat']}" if r["repeats"] > 1 else "")
        if "error" in r:
            lines.append(f"| {r['recipe']} | {label} | failed after {r['process_seconds']:.0f} s "
                         f"| | | | | | | | | | |")
            continue
        st = r["stages"]
        times = " | ".join(_fmt(st[k]) for k in ("total", *STAGES))
        rel = f"{st['total'] / ref:.2f}x" if ref else "-"
        cfg = r.get("config") or {}
        shape = f" {cfg['units']}x{cfg['layers']}" if "units" in cfg and "layers" in cfg else ""
        shape += " bi" if cfg.get("bidirectional") else ""
        winner = f"{r['winner']}{shape}" + (f" ({r['decision']})" if r.get("decision") else "")
        val, held = _score(r)
        lines.append(f"| {r['recipe']} | {label} | {times} | {rel} | {winner} | {val} | {held} |")
    return "\n".join(lines)


def speed_table(rows: list[dict], recipes: list[str], ref: float | None) -> str:
    lines = ["| recipe | old total s (median) | new total s (median) | speed-up new vs old "
             "| old / reference | new / reference | held-out old | held-out new |",
             "|---|---|---|---|---|---|---|---|"]
    for name in recipes:
        tot, held = {}, {}
        for code in ("old", "new"):
            ok = [r for r in rows if r["recipe"] == name and r["code"] == code and "error" not in r]
            tot[code] = statistics.median(r["stages"]["total"] for r in ok) if ok else None
            h = [r["held_out"][r["headline"]] for r in ok]
            held[code] = (f"{ok[0]['headline']} {statistics.median(h):.3f}" if h else "-")
        o, n = tot["old"], tot["new"]
        speed = f"{o / n:.2f}x" if o and n else "-"
        rel = {c: (f"{tot[c] / ref:.2f}x" if tot[c] and ref else "-") for c in tot}
        lines.append(f"| {name} | {_fmt(o)} | {_fmt(n)} | {speed} | {rel['old']} | {rel['new']} "
                     f"| {held['old']} | {held['new']} |")
    return "\n".join(lines)


def fits(args: argparse.Namespace) -> int:
    _env.print_env()
    both = parse_options(args.extra)
    options = {"old": {**both, **parse_options(args.extra_old)},
               "new": {**both, **parse_options(args.extra_new)}}
    envs = {side: dict(kv.split("=", 1) for kv in getattr(args, f"env_{side}")) for side in ("old", "new")}
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cellpick-fits-"))
    base.mkdir(parents=True, exist_ok=True)
    full, old_dir = old_code(args.old, base / "old-code")
    code = {"old": (old_dir, full[:7]), "new": (ROOT, git_head())}
    print(f"- old: commit {full} (git archive into {old_dir}); options {options['old'] or 'recipe defaults'}"
          + (f"; environment {envs['old']}" if envs["old"] else ""))
    print(f"- new: {ROOT} at {code['new'][1]}; options {options['new'] or 'recipe defaults'}"
          + (f"; environment {envs['new']}" if envs["new"] else ""))
    if args.same_trials:
        print("- same trials: the new side trains the old fit's trial configurations, per cell")
    print(f"- reference: plain Keras LSTM-16x2, 45 airline windows, batch 8, {args.ref_epochs} epochs")
    print(f"- work folder: {base}", flush=True)

    refs: list[dict] = []

    def reference(tag: str) -> None:
        r = _spawn({"kind": "reference", "epochs": args.ref_epochs}, base / f"reference-{tag}", None)
        refs.append(r)
        if "error" in r:
            print(f"  reference {tag}: FAILED {r['error']}", flush=True)
        else:
            print(f"  reference {tag}: {r['seconds']:.1f} s (fit {r['fit_seconds']:.1f} s)", flush=True)

    rows: list[dict] = []
    for rep in range(1, args.repeats + 1):
        reference(f"{rep}")
        for name in args.recipes:
            recipe = ROOT / "recipes" / f"{name}.toml"
            for side in ("old", "new"):  # interleaved: old, new, old, new, ...
                folder, commit = code[side]
                work = base / f"{name}-{side}-{rep}"
                spec = {"kind": "fit", "name": name, "recipe": str(recipe), "code": str(folder),
                        "work": str(work), "options": options[side]}
                if side == "new" and args.same_trials:
                    old_store = base / f"{name}-old-{rep}" / "mlflow.db"
                    if not old_store.is_file():
                        print(f"  {name} new #{rep}: skipped (--same-trials and the old fit left "
                              f"no store)", flush=True)
                        continue
                    spec["candidates"] = trial_configs(old_store)
                    print(f"  {name} new #{rep}: the old fit's trials "
                          + "; ".join(f"{c}: " + ", ".join(
                              f"{t.get('units')}x{t.get('layers')}"
                              + (" bi" if t.get("bidirectional") == "True" else "")
                              for t in ts) for c, ts in spec["candidates"].items()), flush=True)
                r = _spawn(spec, work, folder, envs[side])
                row = {"recipe": name, "code": side, "commit": commit, "repeat": rep,
                       "repeats": args.repeats, **r}
                rows.append(row)
                if "error" in r:
                    print(f"  {name} {side} #{rep}: FAILED\n{r['error']}", flush=True)
                else:
                    val, held = _score(r)
                    print(f"  {name} {side} #{rep}: {r['stages']['total']:.1f} s "
                          f"(process {r['process_seconds']:.1f} s), winner {r['winner']} "
                          f"{r.get('decision') or ''}, val {val}, held-out {held}", flush=True)
    reference("end")

    ok_refs = [r["seconds"] for r in refs if "error" not in r]
    ref = statistics.median(ok_refs) if ok_refs else None
    load = os.getloadavg()
    print()
    print(f"Reference workload (plain Keras, {args.ref_epochs} epochs): "
          + ", ".join(_fmt(s) for s in ok_refs) + f" s; median {_fmt(ref)} s")
    print()
    print(fits_table(rows, ref))
    print()
    print(speed_table(rows, args.recipes, ref))
    print(f"\nload average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"old": full, "new": code["new"][1], "options": options,
                                               "same_trials": args.same_trials,
                                               "references": refs, "fits": rows}, indent=1, default=str))
        print(f"records: {args.json}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if any("error" in r for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_child"]:  # internal: one fit or reference run in a fresh interpreter
        ap = argparse.ArgumentParser(prog="engine.py _child")
        ap.add_argument("spec")
        ap.add_argument("result")
        return child(ap.parse_args(argv[1:]))
    # The original invocation (`engine.py --ks 1 3 ...`) is the members mode.
    if not argv or argv[0] not in ("fits", "members", "scoring", "group", "-h", "--help"):
        argv = ["members", *argv]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("members", help="K members in one graph vs K separate trainings (default)")
    members_args(m)
    g = sub.add_parser("group", help="one members group on a recipe's data under each engine")
    g.add_argument("--recipe", default="japanese_vowels", choices=RECIPES)
    g.add_argument("--config", nargs="+", default=["cell=gru", "units=128", "layers=2",
                                                  "bidirectional=true", "dropout=0.2", "learning_rate=0.003"])
    g.add_argument("--k", type=int, default=15)
    g.add_argument("--epochs", type=int, default=30)
    g.add_argument("--patience", type=int, default=4, help="epochs (0: the recipe's schedule)")
    g.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    s = sub.add_parser("scoring", help="a fresh model's predictions: predict() vs a direct call")
    s.add_argument("--repeats", type=int, default=5)
    f = sub.add_parser("fits", help="whole default fits, old commit vs this checkout, interleaved")
    f.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    f.add_argument("--repeats", type=int, default=1)
    f.add_argument("--old", default="8dd85a5", help="commit of the old code (default 8dd85a5)")
    f.add_argument("--extra", nargs="*", default=[], metavar="K=V", help="fit options for both")
    f.add_argument("--extra-old", nargs="*", default=[], metavar="K=V", help="for the old code only")
    f.add_argument("--extra-new", nargs="*", default=[], metavar="K=V", help="for the new code only")
    f.add_argument("--env-old", nargs="*", default=[], metavar="K=V",
                   help="environment for the old side's fits")
    f.add_argument("--env-new", nargs="*", default=[], metavar="K=V", help="for the new side's fits")
    f.add_argument("--same-trials", action="store_true",
                   help="the new side trains the old fit's trial configurations (per cell)")
    f.add_argument("--ref-epochs", type=int, default=200, help="epochs of the plain-Keras reference")
    f.add_argument("--json", default=None, help="write every record (stages, events) to this file")
    f.add_argument("--keep", default=None, metavar="DIR",
                   help="work folder to keep (stores, exports, each child's output.log)")
    args = ap.parse_args(argv)
    return {"fits": fits, "members": members, "scoring": scoring, "group": group}[args.mode](args)


if __name__ == "__main__":
    raise SystemExit(main())
