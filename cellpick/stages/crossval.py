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
                   progress: Progress | None = None) -> CrossValResult:
    """Train and score `best` (cell -> config) on every unit of `plan.resampling`."""
    say = progress or (lambda event, info: None)
    res = plan.resampling
    # Under a budget every cell trains at once: one deadline gives each the same wall time,
    # and a cell that stops early leaves its cores to the others.
    jobs = len(best) if budget is not None else min(plan.config.jobs or default_jobs(), len(best))
    say(Event.STAGE, {"name": "verdict", "cells": list(best), "folds": res.folds,
                  "seeds": res.seeds, "kind": res.kind, "jobs": jobs})
    schedule = unit_schedule(plan)
    result = CrossValResult(cells=[])
    cells = list(best.items())
    with frozen_heap():  # as in the search: full collections skip the libraries' heap
        # Each cell's units are one group; `jobs` cells train at once.
        trained_all = fit_groups([([Member(u.prep, u.seed) for u in res.units], cfg)
                                  for _, cfg in cells], schedule, jobs=jobs,
                                 deadline=_deadlines(budget, cells, res.folds))
        for (cell, cfg), trained in zip(cells, trained_all):
            runs = [_score_unit(plan, cfg, unit, member, tracker, result.curves)
                    for unit, member in zip(res.units, trained)]
            scores = [r.score for r in runs]
            result.runs[cell] = runs
            result.cells.append(verdict.CellResult(
                cell=cell, config=cfg, scores=scores, fold_scores=res.matrix(scores),
                n_params=int(trained[0].model.count_params()),
                train_seconds=float(np.mean([r.seconds for r in runs]))))
            stopped = sum(m.by_deadline for m in trained)
            if budget is not None and stopped:
                budget.cuts.setdefault("training", {})[cell] = f"{stopped} of {len(trained)}"
            finite = [s for s in scores if math.isfinite(s)]
            say(Event.CELL_END, {"cell": cell, "units": len(runs), "metric": plan.metric,
                             "mean": float(np.mean(finite)) if finite else math.nan,
                             "low": min(finite, default=math.nan),
                             "high": max(finite, default=math.nan),
                             "seconds": sum(m.seconds for m in trained)})  # its group's wall
    return result


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


def _score_unit(plan: Plan, cfg: dict, unit, member, tracker, curves: dict) -> UnitRun:
    """Score one trained unit on its scoring block and log it as a verdict child run."""
    final = export_model(unit.prep, member.model)
    y, pred = split_predictions(final, unit.prep, "score")
    score = verdict.score(plan.dataset.task, y, pred)
    history = user_units(unit.prep, member.history)
    summary = summary_metrics(history, plan.metric)
    name = unit_run_name(cfg, unit.fold, unit.repeat)
    # fold and repeat counted from 1, as the run's name (f1s1) and the report count them
    run_id = tracker.start_child(Role.VERDICT, name, {**cfg, "fold": unit.fold + 1, "seed": unit.seed,
                                                   "repeat": unit.repeat + 1})
    tracker.log_epochs(run_id, history)
    tracker.log_metrics(run_id, {"score": score, "n_params": member.model.count_params(),
                                 "train_seconds": member.seconds, "best_steps": member.steps,
                                 **summary})
    tracker.end_child(run_id)
    curves[name] = {"cell": cfg["cell"], "val_loss": history["val_loss"]}
    spe = max(1, math.ceil(unit.prep.sizes["train"] / unit.prep.batch_size()))
    return UnitRun(unit.fold, unit.repeat, unit.seed, score, member.steps / spe,
                   member.seconds, final)
