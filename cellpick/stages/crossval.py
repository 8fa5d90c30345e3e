"""The verdict's training stage: each cell's best configuration on every fold x seed unit.

`cross_validate` takes the search's best configuration per cell and the plan's resampling
(data.folds.Resampling) and trains one model per unit: a cell's units are members of one
graph (engine.members.fit_groups), each with its own data, seed, optimizer and early stopping
on its unit's inner validation part; `--jobs` cells train at once, in threads. Each model is
scored on its unit's scoring block in user units and logged as an MLflow child run (role
verdict; fold and repeat counted from 1). The result is plain records: the verdict's
`CellResult`s (a folds x seeds matrix each) and each unit's best epoch count (what the
final retraining follows; stages/refit.py). Under --time-budget every cell trains at once until
the verdict's share ends, but never less than SAFETY times its estimated minimum
(engine/budget.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cellpick import verdict
from cellpick.engine.budget import SAFETY
from cellpick.engine.members import Member, fit_groups
from cellpick.engine.threads import default_jobs, frozen_heap
from cellpick.engine.train import Schedule, split_predictions, summary_metrics
from cellpick.events import Event
from cellpick.models.cells import export_model, user_units
from cellpick.stages.plan import Plan
from cellpick.tracking import Role, unit_run_name

Progress = Callable[[str, dict], None]


@dataclass(frozen=True)
class UnitRun:
    """One fold x seed training of a cell's best configuration."""

    fold: int
    repeat: int
    seed: int
    score: float  # on the unit's scoring block, in user units
    epochs: float  # passes over the unit's training part up to its best round
    seconds: float  # the members' wall time / members
    model: Any = field(repr=False, default=None)  # its export model (the unit's constants)


@dataclass
class CrossValResult:
    """What the verdict stage hands on: the verdict's input and the runs behind it."""

    cells: list  # verdict.CellResult per cell, in the search's order
    runs: dict[str, list[UnitRun]] = field(default_factory=dict)  # cell -> its units, in order
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)  # run name -> cell, val_loss


def unit_schedule(plan: Plan):
    """One schedule for every unit of a cell (members validate at a shared step interval):
    the one the median unit's training part would get alone."""
    preps = [u.prep for u in plan.resampling.units]
    n = int(np.median([p.sizes["train"] for p in preps]))
    return Schedule.for_data(n, int(np.median([p.batch_size() for p in preps])),
                             plan.config.epochs)


def cross_validate(plan: Plan, best: dict[str, dict[str, Any]], *, tracker, budget=None,
                   progress: Progress | None = None, cluster=None) -> CrossValResult:
    """Train and score `best` (cell -> config) on every unit of `plan.resampling`, here or,
    with `cluster` (engine.units.Chief), on its workers (`work`)."""
    say = progress or (lambda event, info: None)
    res = plan.resampling
    # Under a budget every cell trains at once: one deadline gives each the same wall time,
    # and a cell that stops early leaves its cores to the others.
    jobs = len(best) if budget is not None else min(plan.config.jobs or default_jobs(), len(best))
    say(Event.STAGE, {"name": "verdict", "cells": list(best), "folds": res.folds,
                  "seeds": res.seeds, "kind": res.kind, "jobs": jobs})
    cells = list(best.items())
    result = CrossValResult(cells=[])
    if cluster is not None:
        per_cell = _on_workers(plan, cells, budget, cluster, result.curves)
    else:
        with frozen_heap():  # as in the search: full collections skip the libraries' heap
            # Each cell's units are one group; `jobs` cells train at once.
            trained_all = fit_groups([([Member(u.prep, u.seed) for u in res.units], cfg)
                                      for _, cfg in cells], unit_schedule(plan), jobs=jobs,
                                     deadline=_deadlines(budget, cells, res.folds))
            per_cell = [[_score_unit(plan, cfg, unit, member, tracker, result.curves)
                         for unit, member in zip(res.units, trained)]
                        for (_, cfg), trained in zip(cells, trained_all)]
    for (cell, cfg), scored in zip(cells, per_cell):
        runs = [s.run for s in scored]
        scores = [r.score for r in runs]
        result.runs[cell] = runs
        result.cells.append(verdict.CellResult(
            cell=cell, config=cfg, scores=scores, fold_scores=res.matrix(scores),
            n_params=scored[0].n_params, train_seconds=float(np.mean([r.seconds for r in runs]))))
        stopped = sum(s.by_deadline for s in scored)
        if budget is not None and stopped:
            budget.cuts.setdefault("training", {})[cell] = f"{stopped} of {len(scored)}"
        finite = [s for s in scores if math.isfinite(s)]
        say(Event.CELL_END, {"cell": cell, "units": len(runs), "metric": plan.metric,
                         "mean": float(np.mean(finite)) if finite else math.nan,
                         "low": min(finite, default=math.nan),
                         "high": max(finite, default=math.nan),
                         "seconds": sum(r.seconds for r in runs)})  # its group's wall
    return result


@dataclass(frozen=True)
class _Scored:
    run: UnitRun
    n_params: int
    by_deadline: bool


# A verdict unit's values besides the cell's configuration (with engine.units.RESERVED).
_UNIT_KEYS = ("index", "deadline", "floor")


def _on_workers(plan: Plan, cells: list, budget, cluster, curves: dict) -> list[list[_Scored]]:
    """Every cell x unit served to the workers (one group per cell, as here); the results
    back as the one-machine records (without the fold models)."""
    from cellpick.engine.units import Unit

    res = plan.resampling
    units = []
    for (cell, cfg) in cells:
        timing = {}
        if budget is not None:
            timing = {"deadline": budget.stage_deadline("verdict"),
                      "floor": SAFETY * res.folds * budget.trial_seconds(cell, cfg)}
        units += [Unit(cell, {**cfg, "index": k, **timing}) for k in range(len(res.units))]
    results = iter(cluster.run("verdict", units))
    out = []
    for _ in cells:
        scored = []
        for unit in res.units:
            r = next(results)
            curves[r["name"]] = {"cell": r["cell"], "val_loss": r["val_loss"]}
            scored.append(_Scored(UnitRun(unit.fold, unit.repeat, unit.seed, r["score"],
                                          r["epochs"], r["seconds"]),
                                  int(r["n_params"]), bool(r["by_deadline"])))
        out.append(scored)
    return out


def work(plan: Plan, trials: list, *, tracker, worker: str, key) -> list[dict]:
    """A worker's share of the verdict: its units (keras-tuner trials), one group per cell,
    trained and scored as `cross_validate` does, each logged as a verdict run tagged with
    the worker; one result dict per trial ({"error": ...} for a group that failed)."""
    from cellpick.engine.units import RESERVED, by_group, deadline_of
    from cellpick.tracking import TRIAL_ID_TAG, WORKER_TAG

    res = plan.resampling
    groups = list(by_group(trials).values())
    configs = [{k: v for k, v in g[0].hyperparameters.values.items()
                if k not in _UNIT_KEYS + RESERVED} for g in groups]
    chosen = [[res.units[int(t.hyperparameters.values["index"])] for t in g] for g in groups]
    with frozen_heap():
        trained_all = fit_groups([([Member(u.prep, u.seed) for u in units], cfg)
                                  for units, cfg in zip(chosen, configs)], unit_schedule(plan),
                                 jobs=len(groups), errors="return",
                                 deadline=[deadline_of(g[0].hyperparameters.values) for g in groups])
    by_trial = {}
    for g, cfg, units, trained in zip(groups, configs, chosen, trained_all):
        if isinstance(trained, Exception):
            by_trial.update({t.trial_id: {"error": f"{type(trained).__name__}: {trained}"} for t in g})
            continue
        for t, unit, member in zip(g, units, trained):
            curves: dict = {}
            scored = _score_unit(plan, cfg, unit, member, tracker, curves,
                                 tags={WORKER_TAG: worker, TRIAL_ID_TAG: key(t)})
            (name, curve), = curves.items()
            run = scored.run
            by_trial[t.trial_id] = {"score": run.score, "epochs": run.epochs,
                                    "seconds": run.seconds, "name": name, "cell": cfg["cell"],
                                    "val_loss": [float(v) for v in curve["val_loss"]],
                                    "n_params": scored.n_params, "by_deadline": scored.by_deadline}
    return [by_trial[t.trial_id] for t in trials]


def _deadlines(budget, cells: list, folds: int) -> list | None:
    """Each cell's group's deadline, taken when it starts: the verdict's share's end (every
    cell trains at once under a budget, so each gets the same wall time), never less than
    SAFETY times its configuration's estimated minimum (one model per fold) from its start."""
    if budget is None:
        return None

    def deadline(cell: str, config: dict):
        def at_start() -> float:
            floor = SAFETY * folds * budget.trial_seconds(cell, config)
            return max(budget.stage_deadline("verdict"), time.time() + floor)
        return at_start

    return [deadline(cell, cfg) for cell, cfg in cells]


def _score_unit(plan: Plan, cfg: dict, unit, member, tracker, curves: dict,
                tags: dict | None = None) -> _Scored:
    """Score one trained unit on its scoring block and log it as a verdict child run."""
    final = export_model(unit.prep, member.model)
    y, pred = split_predictions(final, unit.prep, "score")
    score = verdict.score(plan.dataset.task, y, pred)
    history = user_units(unit.prep, member.history)
    summary = summary_metrics(history, plan.metric)
    name = unit_run_name(cfg, unit.fold, unit.repeat)
    # fold and repeat counted from 1, as the run's name (f1s1) and the report count them
    run_id = tracker.start_child(Role.VERDICT, name, {**cfg, "fold": unit.fold + 1, "seed": unit.seed,
                                                   "repeat": unit.repeat + 1}, tags=tags)
    tracker.log_epochs(run_id, history)
    tracker.log_metrics(run_id, {"score": score, "n_params": member.model.count_params(),
                                 "train_seconds": member.seconds, "best_steps": member.steps,
                                 **summary})
    tracker.end_child(run_id)
    curves[name] = {"cell": cfg["cell"], "val_loss": history["val_loss"]}
    spe = max(1, math.ceil(unit.prep.sizes["train"] / unit.prep.batch_size()))
    return _Scored(UnitRun(unit.fold, unit.repeat, unit.seed, score, member.steps / spe,
                           member.seconds, final),
                   int(member.model.count_params()), bool(member.by_deadline))
