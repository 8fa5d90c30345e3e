"""The contestants stage: every contestant on the verdict's folds, and refit for the test split.

Contestants (models/contestants.py, or the user's own) run under engine/isolation.py's
contract: in a worker process, one time limit per contestant for all its folds and its
final refit, their answers checked. Like the cells, each is fitted on a fold's "trainval"
rows (its own hyperparameters chosen on the same two parts) and scored on the fold's scoring
block, so `verdict.decide` compares them unit by unit; a series' seeds share one origin's
data, so a contestant is fitted once per origin. One MLflow child run per contestant (role
baseline): FINISHED with its mean and per-unit scores, or FAILED/KILLED with the reason.
Under --time-budget the stage spends its share: each contestant's limit is an equal part of
it (isolation.default_limit), and those the share cannot give BUDGET_FLOOR are not run.
docs/contestants.md says why these contestants and this contract.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cellpick.config import contestant_names as named_contestants
from cellpick.data.prepared import BASELINE_LIMIT
from cellpick.engine.isolation import (BUDGET_FLOOR, Job, default_limit, display, family,
                                       seconds_text, worker)
from cellpick.events import Event
from cellpick.models.contestants import chosen
from cellpick.stages.plan import Plan
from cellpick.tracking import Role, baseline_run_name
from cellpick.verdict import score

Progress = Callable[[str, dict], None]


@dataclass
class Entry:
    """One contestant's course through the stage: status scored | skipped | failed | killed."""

    spec: str  # what runs it: a built-in name or module:function
    status: str
    reason: str = ""
    seconds: float = 0.0  # all its fold jobs (and, after final_contestants, its refit)
    limit: float = 0.0
    exportable: bool = False


@dataclass
class BaselineScores:
    """Per contestant: its folds x seeds matrix, mean, parameters, exportability; one Entry
    per contestant that was run (scored or left out) and the notes for the left-out ones."""

    matrices: dict[str, list[list[float]]] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    exportable: dict[str, bool] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self) -> dict[str, dict[str, Any]]:
        """What verdict.json records per contestant: status, seconds, limit, reason."""
        return {n: {"status": e.status, "seconds": round(e.seconds, 2), "limit": round(e.limit, 1),
                    "reason": e.reason, "exportable": e.exportable}
                for n, e in self.entries.items()}


@dataclass
class FinalBaselines:
    """Contestants refit for the test split (and for `--export best`)."""

    models: dict[str, Any] = field(default_factory=dict)  # name -> models.contestants.Baseline
    test: dict[str, float] = field(default_factory=dict)  # name -> test score
    fit_on: str = "trainval"
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # name -> refit seconds
    # name -> the library's own predictions on CHECK_SPLIT (the export's equality check)
    checks: dict[str, Any] = field(default_factory=dict)


CHECK_SPLIT = "val"  # the rows an exported contestant's graph is checked on


def contestant_names(plan: Plan) -> list[str]:
    """The contestants this fit runs (ValueError when one asked for does not fit the task)."""
    return chosen(plan.prep, named_contestants(plan.config.contestants))


def run_baselines(plan: Plan, *, tracker, progress: Progress | None = None,
                  cells_seconds: float = 0.0, budget=None, cluster=None) -> BaselineScores:
    """Every contestant on the verdict's units, each within its time limit; with `cluster`
    (engine.units.Chief) its folds run on the workers (`work`), each with the whole limit,
    and one whose folds together overran it is killed as here."""
    say = progress or (lambda event, info: None)
    res, task = plan.resampling, plan.dataset.task
    out = BaselineScores()
    specs, cut = contestant_names(plan), []
    left = None
    if budget is not None and specs:
        left = budget.stage_left("contestants")
        keep = max(0, int(left // BUDGET_FLOOR))  # the last ones in the list, if any, are cut:
        specs, cut = specs[:keep], specs[keep:]  # each would get less than the floor
        if cut:
            budget.cut("contestants", [_label(s, plan.season) for s in cut])
    if not specs:
        return _cut(out, cut, tracker, plan.season)
    limit = plan.config.contestant_limit or default_limit(cells_seconds, len(specs), left)
    say(Event.STAGE, {"name": "baselines", "folds": res.folds, "seeds": res.seeds,
                  "contestants": [display(s) for s in specs], "limit": limit})
    preps: dict[int, Any] = {}
    for unit in res.units:  # a series' seeds share their origin's Prepared
        preps.setdefault(id(unit.prep), unit.prep)
    runner = worker(family(plan.prep))
    remote = _on_workers(plan, specs, preps, limit, cluster) if cluster is not None else None
    for spec in specs:
        name = _label(spec, plan.season)
        spent, per_prep, entry = 0.0, {}, None
        for key, prep in preps.items():
            if remote is not None:
                got = remote[spec, key]
            else:
                got = _fold(runner, Job(spec, prep, plan.season, "trainval", ("train", "val"),
                                        ("score",), BASELINE_LIMIT), task, limit - spent)
            spent += got.seconds
            if got.status == "ok" and spent > limit:  # its folds ran on workers, each with the whole limit
                got.status = "killed"
            if got.status == "ok":
                per_prep[key] = got.score
            if got.status != "ok":
                if got.status == "killed":  # the whole limit, not what its last fold had left
                    got.reason = f"ran past its limit ({seconds_text(limit)} for its folds and refit)"
                entry = Entry(spec, got.status, got.reason, spent, limit)
                break
            name = got.name if ":" not in spec else name
            out.params.setdefault(name, dict(got.params))
            out.exportable[name] = bool(got.exportable)
        entry = entry or Entry(spec, "scored", "", spent, limit, out.exportable.get(name, False))
        out.entries[name] = entry
        if entry.status == "scored":
            values = [per_prep[id(u.prep)] for u in res.units]
            out.matrices[name] = res.matrix(values)
            finite = [v for v in values if math.isfinite(v)]
            out.means[name] = float(np.mean(finite)) if finite else math.nan
        _log_run(tracker, name, entry, out, baseline_run_name,
                 values if entry.status == "scored" else [])
        say(Event.CONTESTANT, {"name": name, "status": entry.status, "reason": entry.reason,
                           "seconds": entry.seconds, "metric": plan.metric,
                           "mean": out.means.get(name)})
    return _cut(out, cut, tracker, plan.season)


@dataclass
class _Fold:
    """One contestant fold's answer: its score, or why it has none."""

    status: str  # ok | failed | killed | skipped
    reason: str = ""
    seconds: float = 0.0
    score: float = math.nan
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    exportable: bool = False


def _fold(runner, job, task: str, limit: float) -> _Fold:
    """Fit one contestant on one fold in the isolation worker and score it."""
    got = runner.run(job, limit)
    fold = _Fold(got.status, got.reason, got.seconds)
    if got.status == "ok":
        try:
            fold.score = float(score(task, job.prep.arrays("score", limit=BASELINE_LIMIT)[1],
                                     got.predictions["score"]))
        except ValueError as e:
            fold.status, fold.reason = "failed", str(e)
        fold.name, fold.exportable = got.baseline.name, bool(got.baseline.exportable)
        fold.params = dict(got.baseline.params)
    return fold


def _on_workers(plan: Plan, specs: list[str], preps: dict, limit: float,
                cluster) -> dict[tuple[str, int], _Fold]:
    """Every contestant x origin served to the workers: (spec, prep key) -> its answer."""
    from cellpick.engine.units import Unit

    first = {}
    for i, u in enumerate(plan.resampling.units):
        first.setdefault(id(u.prep), i)
    pairs = [(spec, key) for spec in specs for key in preps]
    fold = {key: k for k, key in enumerate(preps)}
    units = [Unit(f"{spec} {first[key]}", {"spec": spec, "index": first[key], "limit": limit,
                                           "fold": fold[key], "label": _label(spec, plan.season)})
             for spec, key in pairs]
    results = cluster.run("contestants", units)
    return {pair: _Fold(**{k: v for k, v in r.items() if k != "worker"})
            for pair, r in zip(pairs, results)}


def work(plan: Plan, trials: list, *, tracker, worker: str, key) -> list[dict]:
    """A worker's contestant folds (keras-tuner trials), each in the isolation worker within
    the contestant's whole limit and logged as a fold run (role fold) tagged with the worker;
    one result dict per trial."""
    from cellpick.engine.isolation import worker as isolated
    from cellpick.tracking import TRIAL_ID_TAG, WORKER_TAG, fold_run_name

    runner = isolated(family(plan.prep))
    out = []
    for t in trials:
        v = t.hyperparameters.values
        prep = plan.resampling.units[int(v["index"])].prep
        job = Job(v["spec"], prep, plan.season, "trainval", ("train", "val"), ("score",),
                  BASELINE_LIMIT)
        fold = _fold(runner, job, plan.dataset.task, float(v["limit"]))
        run_id = tracker.start_child(Role.FOLD, fold_run_name(v["label"], int(v["fold"])),
                                     {"baseline": v["label"], "fold": int(v["fold"]) + 1},
                                     tags={WORKER_TAG: worker, TRIAL_ID_TAG: key(t)})
        tracker.log_metrics(run_id, {"fit_seconds": fold.seconds,
                                     **({"score": fold.score} if fold.status == "ok" else {})})
        tracker.end_child(run_id, "FINISHED" if fold.status == "ok" else
                          "KILLED" if fold.status == "killed" else "FAILED",
                          None if fold.status == "ok" else f"{fold.status}: {fold.reason}")
        out.append(dataclasses.asdict(fold))
    return out


def _cut(out: BaselineScores, cut: list[str], tracker, season) -> BaselineScores:
    """The contestants the time budget left no time for, as skipped entries (and runs); the
    notes for every contestant left out."""
    for spec in cut:
        name = _label(spec, season)
        out.entries[name] = Entry(spec, "skipped", "the time budget left it no time")
        _log_run(tracker, name, out.entries[name], out, baseline_run_name, [])
    out.notes = [f"contestant {n} left out ({e.status}, {e.seconds:.1f} s): {e.reason}"
                 for n, e in out.entries.items() if e.status != "scored"]
    return out


def final_baselines(plan: Plan, scores: BaselineScores, *, refit: bool,
                    progress: Progress | None = None) -> FinalBaselines:
    """Refit the scored contestants on the rows the export trained on (train + validation when
    the winner is refit, else train), each within what its limit has left, and score them on
    the test split when there is one. One that fails or overruns here keeps its
    cross-validated score and is not exportable (a note says so)."""
    prep, task = plan.prep, plan.dataset.task
    fit_on = "trainval" if refit else "train"
    out = FinalBaselines(fit_on=fit_on)
    has_test = prep.sizes.get("test", 0) > 0
    runner = worker(family(prep)) if scores.matrices else None
    for name in scores.matrices:
        entry = scores.entries[name]
        job = Job(entry.spec, prep, plan.season, fit_on, ("train", "val"),
                  (CHECK_SPLIT, "test") if has_test else (CHECK_SPLIT,), BASELINE_LIMIT,
                  keep_model=True)
        got = runner.run(job, entry.limit - entry.seconds)
        out.seconds[name] = got.seconds
        if got.status != "ok":
            out.notes.append(f"contestant {name}: its refit for the test and the export "
                             f"{_what(got.status)}: {got.reason}; it keeps its cross-validated "
                             "score and is not exportable")
            if progress:
                progress(Event.NOTE, {"message": out.notes[-1]})
            continue
        out.models[name] = got.baseline
        out.checks[name] = got.predictions[CHECK_SPLIT]
        if has_test:
            y = prep.arrays("test", limit=BASELINE_LIMIT)[1]
            out.test[name] = score(task, y, got.predictions["test"])
    return out


def with_final(scores: BaselineScores, final: FinalBaselines) -> BaselineScores:
    """The stage's record with the refits counted: each contestant's seconds include its
    refit, one whose refit failed is not exportable, and the refit notes are added."""
    entries = {n: dataclasses.replace(e, seconds=e.seconds + final.seconds.get(n, 0.0),
                                      exportable=e.exportable and n in final.models)
               for n, e in scores.entries.items()}
    exportable = {n: v and n in final.models for n, v in scores.exportable.items()}
    return dataclasses.replace(scores, entries=entries, exportable=exportable,
                               notes=scores.notes + final.notes)


def _what(status: str) -> str:
    return {"killed": "was stopped", "skipped": "was skipped"}.get(status, "failed")


def _label(spec: str, season: int | None) -> str:
    """The contestant's name in tables and runs before it has answered."""
    if spec == "snaive" and not (season and int(season) >= 2):
        return "naive"
    return spec.rpartition(":")[2]


def _log_run(tracker, name: str, entry: Entry, out: BaselineScores, run_name,
             values: list[float]) -> None:
    run_id = tracker.start_child(Role.BASELINE, run_name(name),
                                 {"baseline": name, **_flat_params(out.params.get(name, {}))})
    tracker.log_metrics(run_id, {"fit_seconds": entry.seconds, "limit_seconds": entry.limit})
    if entry.status != "scored":
        status = "KILLED" if entry.status == "killed" else "FAILED"
        tracker.end_child(run_id, status, f"{entry.status}: {entry.reason}")
        return
    tracker.log_metrics(run_id, {"score": out.means[name]})
    for i, v in enumerate(values):  # units counted from 1, as the verdict's runs are
        tracker.log_metrics(run_id, {"fold_score": v}, step=i + 1)
    tracker.end_child(run_id)


def _flat_params(params: dict[str, Any]) -> dict[str, Any]:
    return {f"baseline.{k}": v for k, v in params.items()}
