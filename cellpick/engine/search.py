"""keras-tuner searches with MLflow logging in the tuner's own hooks.

Fairness: one search per cell with the cell fixed, each with the same trial and epoch
budget, so no cell is starved by an oracle that likes another; with the random and grid
tuners every cell also tries the very same candidate list (models/candidates.py). The
data-level choices (stages/datalevel.py) are fixed before the search and reach the trials as
hp.Fixed values. Logging lives in `on_trial_begin` / `on_epoch_end` / `on_trial_end` (calling super() first): callbacks passed
to `search()` are deep-copied per trial and never see the trial. keras-tuner swallows a
trial's exception into `trial.message`; it is surfaced as the child run's error tag and in
the progress line, and a cell whose every trial fails stops the fit with that message.
Under --time-budget (engine/budget.py) a round starts only when the search's share covers it,
and a trial is scored only once it has trained the schedule's `min_steps`: one the budget
stopped before is marked CUT (its run KILLED) and never ranked.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cellpick.data.prepared import Prepared
from cellpick.engine import internals
from cellpick.engine.members import Member, fit_members
from cellpick.engine.options import DEFAULT, EngineOptions
from cellpick.engine.threads import frozen_heap, gc_paused
from cellpick.engine.budget import SAFETY, Budget
from cellpick.engine.train import Schedule, callbacks, summary_metrics
from cellpick.errors import FitFailed
from cellpick.events import Event
from cellpick.models.candidates import tuner_class
from cellpick.models.cells import hypermodel, user_units
from cellpick.tracking import TRIAL_ID_TAG, Role, summary_key, trial_run_name
from cellpick.vocab import METRICS

TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


def _reconcile(tuners: dict, tracker) -> None:
    """After a crash: a trial run left RUNNING is finished if keras-tuner recorded the trial as
    completed (the process died between the two writes), otherwise marked KILLED (it reruns)."""
    for run in tracker.child_runs(Role.TRIAL, status="RUNNING"):
        t = tuners.get(run.cell)
        trial = t.oracle.trials.get(run.trial_id) if t else None
        if trial is not None and trial.status == "COMPLETED":
            tracker.end_child(run.run_id, "FINISHED")
        else:
            tracker.end_child(run.run_id, "KILLED",
                              "the fit stopped during this trial; it is rerun by --resume")


class SearchFailed(FitFailed, RuntimeError):
    """Every trial of a cell failed: the first error is in the message (exit code 1)."""


class TrialCut(RuntimeError):
    """The time budget stopped a trial before the minimum training the plan states: the
    trial is not scored (keras-tuner records it as failed, so its oracle never ranks it)."""


@dataclass
class SearchResult:
    trials: list[dict[str, Any]] = field(default_factory=list)  # one record per trial
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # cell -> best config
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)  # run name -> cell, val_loss
    rounds: int = 0  # trials per cell actually run
    cut_short: bool = False  # the time budget stopped the search early
    not_scored: int = 0  # trials the budget stopped before their minimum training (status CUT)
    workers: set[str] = field(default_factory=set)  # a distributed search's workers alive at its end


@dataclass
class TrialState:
    """What a TrackedTuner carries: the search's fixed inputs (`setup`) and the trial in
    progress (numbered and opened in `on_trial_begin`)."""

    prep: Prepared
    tracker: Any
    result: Any  # SearchResult
    progress: Callable
    seed: int
    counter: dict
    worker: Any = None  # distributed.WorkerHooks on a distributed worker
    schedule: Schedule | None = None
    deadline: float | None = None
    options: EngineOptions = DEFAULT
    budget: Any = None  # engine.budget.Budget: a trial's minimum training, estimated
    next_n: int | None = None  # set by run_search before a round of trials in threads
    n: int = 0
    name: str = ""
    t0: float = 0.0
    history: list = field(default_factory=list)
    n_params: int | None = None
    run_id: str | None = None


def _tuner_class(kind: str):
    import keras_tuner as kt

    # random and grid: one fixed candidate list for every cell (candidates.py)
    base = (tuner_class() if kind in ("random", "grid") else
            {"bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband}[kind])

    class TrackedTuner(base):
        """A keras-tuner tuner that reports every trial to MLflow and to a progress callback."""

        def setup(self, *, prep, tracker, result, progress, seed, counter, worker=None,
                  schedule=None, deadline=None, options: EngineOptions = DEFAULT,
                  budget=None):
            """`worker` (distributed.WorkerHooks) numbers, tags and heartbeats the trials of
            a distributed worker; None on one machine. With `schedule`, trials train on the
            members engine (members.py, as `options` say), validating every round of steps,
            instead of Keras `fit` validating every epoch (Hyperband, which sets each trial's
            epochs, and a tf.distribute strategy keep `fit`). `deadline`: the search's share
            ends; a trial on the members engine still gets SAFETY times its minimum training,
            as `budget` estimates it for its configuration, from its start."""
            self._cp = TrialState(prep, tracker, result, progress, seed, counter, worker,
                                  schedule, deadline, options, budget)

        def _on_members(self, trial) -> bool:
            return not (self._cp.schedule is None or "tuner/epochs" in trial.hyperparameters.values
                        or getattr(self, "distribution_strategy", None) is not None)

        def _build_and_fit_model(self, trial, *args, **kwargs):
            if not self._on_members(trial):
                return super()._build_and_fit_model(trial, *args, **kwargs)
            return _train_on_members(self, trial)

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            import keras

            cp = self._cp
            worker = cp.worker
            if cp.next_n is not None:  # numbered by run_search before the round (threads)
                n, cp.next_n = cp.next_n, None
            else:
                cp.counter["n"] += 1
                n = worker.number(trial) if worker else cp.counter["n"]
            hp = trial.hyperparameters.values
            if not self._on_members(trial):  # the members engine seeds each model as it builds it
                keras.utils.set_random_seed(cp.seed + n)
            name = trial_run_name(n, hp)
            params = {k: v for k, v in hp.items() if k not in TUNER_KEYS}
            cp.n, cp.name, cp.t0, cp.history, cp.n_params = n, name, time.perf_counter(), [], None
            cp.run_id = cp.tracker.start_child(Role.TRIAL, name, params, {
                TRIAL_ID_TAG: trial.trial_id, **(worker.tags if worker else {})})
            if worker:
                worker.begin(self.oracle, trial)
            cp.progress(Event.TRIAL_BEGIN, {"n": n, "name": name, **params})

        def on_epoch_end(self, trial, model, epoch, logs=None):
            super().on_epoch_end(trial, model, epoch, logs)
            cp = self._cp
            logs = user_units(cp.prep, logs or {})
            if cp.n_params is None:
                cp.n_params = int(model.count_params())
            cp.history.append(logs)
            cp.tracker.log_epoch(cp.run_id, logs, step=epoch)

        def on_trial_end(self, trial):
            cp = self._cp
            if cp.worker:
                cp.worker.end()
            try:
                super().on_trial_end(trial)
            finally:
                _record(self._cp, trial)

    return TrackedTuner



def _record(cp: TrialState, trial) -> None:
    """A finished trial: its row in the result, its MLflow run closed, its progress event."""
    seconds = time.perf_counter() - cp.t0
    hp = trial.hyperparameters.values
    metric = METRICS[cp.prep.task][0]
    history = {k: [h.get(k) for h in cp.history] for k in ("val_loss", f"val_{metric}")}
    ok = trial.status == "COMPLETED" and cp.history
    summary = summary_metrics(history, metric) if ok else {}
    error = None if ok else (trial.message or "trial ended without training")
    row = _trial_row(trial, cp, summary.get(summary_key(metric)), summary, seconds, error)
    cut = error is not None and TrialCut.__name__ in error
    if cut:
        row["status"], row["error"] = "CUT", row["error"].split("TrialCut: ", 1)[-1]
        cp.result.not_scored += 1
    cp.result.trials.append(row)
    cp.result.curves[cp.name] = {"cell": hp["cell"], "val_loss": history["val_loss"]}
    tracker = cp.tracker
    tracker.log_metrics(cp.run_id, {
        **summary, "score": row["score"], "n_params": row["n_params"],
        "train_seconds": seconds,
    })
    tracker.end_child(cp.run_id, "FINISHED" if ok else "KILLED" if cut else "FAILED",
                      row["error"] if cut else error)
    cp.progress(Event.TRIAL_END, {**row, "n": cp.n})


def _trial_row(trial, cp: TrialState, score, summary: dict, seconds: float,
               error: str | None) -> dict:
    """One trial's record (SearchResult.trials): its values, score, cost and status."""
    hp = trial.hyperparameters.values
    return {
        "trial_id": trial.trial_id, "name": cp.name, "cell": hp["cell"],
        "units": hp["units"], "layers": hp["layers"],
        **{k: v for k, v in hp.items() if k not in ("cell", "units", "layers") + TUNER_KEYS},
        "score": score, "best_val_loss": summary.get("best_val_loss"),
        "epochs": len(cp.history), "n_params": cp.n_params,
        "train_seconds": round(seconds, 3), "status": "FAILED" if error else "COMPLETED",
        "error": error.strip().splitlines()[-1] if error else None,
        "run_id": cp.run_id,
    }


def _train_on_members(tuner, trial) -> dict[str, float]:
    """One trial as a single member of the members engine; its rounds reach the tuner's
    `on_epoch_end` hook (MLflow, progress) as epochs do from Keras `fit`."""
    cp = tuner._cp
    config = {k: v for k, v in trial.hyperparameters.values.items() if k not in TUNER_KEYS}
    deadline, schedule = cp.deadline, cp.schedule
    if deadline is not None and cp.budget is not None:  # never before SAFETY x its minimum
        deadline = max(deadline, time.time() + SAFETY * cp.budget.trial_seconds(config["cell"], config))
    [res] = fit_members([Member(cp.prep, cp.seed + cp.n)], config, schedule,
                        deadline=deadline, options=cp.options)
    trained = res.rounds_trained * res.round_steps
    if (deadline is not None and trained < schedule.min_steps and time.time() >= deadline
            and res.rounds_trained < math.ceil(schedule.epochs * schedule.steps_per_epoch
                                               / max(1, res.round_steps))):
        raise TrialCut(f"not scored: the time budget stopped it after {trained} of the "
                       f"{schedule.min_steps} steps a trial trains before it is scored")
    for r in range(len(res.history["val_loss"])):
        tuner.on_epoch_end(trial, res.model, r, {k: v[r] for k, v in res.history.items()})
    losses = [v for v in res.history["val_loss"] if v == v]
    return {"val_loss": min(losses) if losses else float("nan")}


def _round_estimate(tuners: dict, round_: int, budget: "Budget", schedule: Schedule) -> float:
    """Seconds the round's trials (candidate `round_` of each cell that has one) are estimated
    at, one after another, each training its minimum and one patience more."""
    steps = min(schedule.epochs * schedule.steps_per_epoch,
                schedule.min_steps + schedule.patience * schedule.steps_per_epoch)
    total = 0.0
    for cell, t in tuners.items():
        listed = t.oracle.candidates() if hasattr(t.oracle, "candidates") else []
        config = listed[round_ - 1] if round_ <= len(listed) else None
        if config is not None or not listed:
            total += budget.trial_seconds(cell, config and {**config, "cell": cell}, steps)
    return total


def _run_round(search: Callable, tuners: list, jobs: int) -> None:
    """One round: each tuner's next trial, `jobs` at a time (threads)."""
    if jobs <= 1:
        for t in tuners:
            search(t)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with gc_paused(), ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cellpick-trial") as pool:
            for future in [pool.submit(search, t) for t in tuners]:
                future.result()
    for t in tuners:
        t._cp.next_n = None  # a tuner whose oracle had no trial left


def _in_trial_order(result: SearchResult) -> None:
    """Trial records (and curves) in trial-number order, as one thread would have added them."""
    result.trials.sort(key=lambda r: int(r["name"][1:].split("-", 1)[0]))
    order = {r["name"]: i for i, r in enumerate(result.trials)}
    result.curves = dict(sorted(result.curves.items(), key=lambda kv: order.get(kv[0], len(order))))


_KT_SAVE_JSON: list = []  # keras-tuner's own writer, kept for remote paths


def save_json_atomically(path, obj) -> str:
    """keras-tuner's `utils.save_json`, but the file is never seen half-written: the JSON goes
    to a temporary file beside it, renamed over the old one (atomic on POSIX and Windows), so
    a fit killed while keras-tuner writes its state leaves a state `--resume` can read.
    Remote paths (gs://, used by no cellpick fit) keep keras-tuner's own writer."""
    path = os.fspath(path)
    if "://" in path:
        return _KT_SAVE_JSON[0](path, obj)
    text = json.dumps(obj)
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return text


def _atomic_tuner_state() -> None:
    """Every keras-tuner state file (Stateful.save and the tuner's build configs go through
    keras-tuner's `utils.save_json`) written by `save_json_atomically`. Idempotent."""
    utils = internals.keras_tuner_utils()
    if utils.save_json is not save_json_atomically:
        _KT_SAVE_JSON[:] = [utils.save_json]
        utils.save_json = save_json_atomically


def make_tuner(prep: Prepared, cell: str, *, units: list[int], layers: list[int], tuner: str,
               max_trials: int, epochs: int, seed: int, workdir: Path, resume: bool = False,
               distribute=None):
    """One cell's tracked tuner (call `setup()` on it before searching). keras-tuner reads
    its KERASTUNER_* distribution variables here, at construction."""
    import keras_tuner as kt

    _atomic_tuner_state()

    kwargs = dict(
        hypermodel=hypermodel(prep, cell, units, layers),
        objective=kt.Objective("val_loss", "min"), seed=seed,
        directory=str(workdir), project_name=cell, overwrite=not resume,
        max_consecutive_failed_trials=max_trials + 1, distribution_strategy=distribute,
    )
    if tuner == "hyperband":
        kwargs.update(max_epochs=epochs, factor=3, hyperband_iterations=1)
    else:
        kwargs.update(max_trials=max_trials)
    return _tuner_class(tuner)(**kwargs)


def run_search(prep: Prepared, *, cells: list[str], units: list[int], layers: list[int],
               tuner: str, max_trials: int, schedule: Schedule, seed: int, workdir: Path,
               tracker, progress: Callable[[str, dict], None], resume: bool = False,
               budget: "Budget | None" = None, distribute=None, jobs: int = 1,
               options: EngineOptions = DEFAULT) -> SearchResult:
    """One tuner per cell, run round-robin (one trial per cell per round) so that every cell
    has the same number of trials whenever the search stops; returns every trial's record
    and each cell's best configuration.

    `jobs` > 1 runs a round's trials (one per cell) at once, in threads, on the members
    engine: TensorFlow trains without the GIL, so two tiny trials use two cores. Trials are
    numbered (and seeded) before the round in cell order, so the same --seed gives the same
    trials whatever `jobs` is; the records are put back in that order after each round.
    Hyperband and a tf.distribute strategy train through Keras `fit`: one trial at a time.
    `options`: how trials train on the members engine.

    `budget` (begun for "search"): a round after the first starts only when the search's
    share covers its candidates' estimate at the last round's pace (measured over estimated
    wall time); trials stop when the share ends, but not before
    SAFETY times their minimum training's estimate (else they are CUT). With `resume`, the records of trials finished before come
    from the tracker (keras-tuner's own project state decides what is rerun).
    """
    result = SearchResult()
    counter = {"n": 0}
    bs = prep.batch_size()
    train_ds = prep.dataset("train", bs, shuffle=True, seed=seed)
    val_ds = prep.dataset("val", bs)
    epochs = schedule.epochs
    deadline = budget.stage_deadline("search") if budget else None
    cbs = callbacks(schedule, deadline=deadline)
    tuners = {}
    for cell in cells:
        t = make_tuner(prep, cell, units=units, layers=layers, tuner=tuner, max_trials=max_trials,
                       epochs=epochs, seed=seed, workdir=workdir, resume=resume,
                       distribute=distribute)
        t.setup(prep=prep, tracker=tracker, result=result, progress=progress, seed=seed,
                counter=counter, schedule=schedule, deadline=deadline, options=options,
                budget=budget)
        tuners[cell] = t
    if resume:
        _reconcile(tuners, tracker)
        result.trials, result.curves = tracker.trial_records()
        counter["n"] = len(result.trials)

    def search(t):
        # shuffle=False: tf.data already reshuffles each epoch; Keras would warn otherwise.
        t.search(train_ds, validation_data=val_ds, epochs=epochs, callbacks=cbs,
                 shuffle=False, verbose=0)

    with frozen_heap():
        if tuner == "hyperband":  # Hyperband sizes its own brackets: whole searches, cell by cell
            for t in tuners.values():
                search(t)
            result.rounds = max_trials
        else:
            jobs = 1 if distribute is not None else max(1, min(jobs, len(tuners)))
            pace = 1.0  # the last round's wall time over its estimate
            for round_ in range(1, max_trials + 1):
                estimate = _round_estimate(tuners, round_, budget, schedule) if budget else 0.0
                if budget is not None and round_ > 1 and budget.stage_left("search") < pace * estimate:
                    result.cut_short = True
                    break
                first = counter["n"]
                for i, t in enumerate(tuners.values()):
                    t.oracle.max_trials = round_
                    t._cp.next_n = first + i + 1
                t0 = time.perf_counter()
                _run_round(search, list(tuners.values()), jobs)
                if estimate > 0:
                    pace = (time.perf_counter() - t0) / estimate
                counter["n"] = first + len(tuners)  # a cell with no trial left leaves a gap
                _in_trial_order(result)
                result.rounds = round_

    for cell, t in tuners.items():
        done = [r for r in result.trials if r["cell"] == cell and r["status"] == "COMPLETED"]
        cut = [r for r in result.trials if r["cell"] == cell and r["status"] == "CUT"]
        if not done and cut:  # no trial of this cell may be ranked: the verdict trains its first
            first = t.oracle.trials[cut[0]["trial_id"]].hyperparameters.values
            result.best[cell] = {k: v for k, v in first.items() if k not in TUNER_KEYS}
            continue
        if not done:
            errors = [r["error"] for r in result.trials if r["cell"] == cell and r["error"]]
            raise SearchFailed(
                f"every {cell} trial failed; first error: {errors[0] if errors else 'unknown'}"
            )
        best_hp = t.get_best_hyperparameters(1)[0].values
        result.best[cell] = {k: v for k, v in best_hp.items() if k not in TUNER_KEYS}
    return result
