"""The verdict's seeds: each cell's best configuration retrained with K seeds on the same split.

One stage, `retrain_seeds`, from the search's best configurations to plain records: the
verdict's `CellResult`s (statistics only), each cell's seed models (for the export) and their
validation curves (for the report). Each seed is an MLflow child run (role verdict).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .plan import Plan, split_predictions

Progress = Callable[[str, dict], None]


@dataclass(frozen=True)
class SeedRun:
    """One verdict seed of a cell's best configuration."""

    score: float  # validation score in user units
    model: Any  # its export model
    seed: int
    epochs: int  # best epoch count (what a refit trains for)
    seconds: float


@dataclass
class SeedsResult:
    """What the seeds stage hands on: the verdict's input and the models behind it."""

    cells: list  # verdict.CellResult per cell, in the search's order
    members: dict[str, list[SeedRun]] = field(default_factory=dict)  # cell -> seeds, best first
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)  # run name -> cell, val_loss


def seed_value(base: int, k: int) -> int:
    """The training seed of verdict seed k (0-based) of a fit seeded with `base`."""
    return base + 1000 * (k + 1)


def retrain_seeds(plan: Plan, best: dict[str, dict[str, Any]], n_seeds: int, *, tracker,
                  budget=None, distribute=None, progress: Progress | None = None) -> SeedsResult:
    """Retrain each cell's best configuration (`best`: cell -> config) with `n_seeds` seeds."""
    from . import verdict
    from .search import frozen_heap
    from .space import export_model, user_units
    from .tracking import seed_run_name
    from .train import fit_one, summary_metrics

    say = progress or (lambda event, info: None)
    prep, task, metric, greater = plan.prep, plan.dataset.task, plan.metric, plan.greater_is_better
    say("stage", {"name": "verdict", "cells": list(best), "seeds": n_seeds})
    result = SeedsResult(cells=[])
    with frozen_heap():  # as in the search: full collections skip the libraries' heap
        for cell, cfg in best.items():
            scores, seconds, runs = [], [], []
            for k in range(n_seeds):
                seed = seed_value(plan.config.seed, k)
                name = seed_run_name(k + 1, cfg)
                run_id = tracker.start_child("verdict", name, {**cfg, "seed": seed})
                model, history, secs = fit_one(prep, cfg, seed, plan.schedule,
                                               deadline=budget.deadline if budget else None,
                                               distribute=distribute)
                final = export_model(prep, model)
                y_val, pred = split_predictions(final, prep, "val")
                score = verdict.score(task, y_val, pred)
                history = user_units(prep, history)
                summary = summary_metrics(history, metric)
                tracker.log_epochs(run_id, history)
                tracker.log_metrics(run_id, {"score": score, "n_params": model.count_params(),
                                             "train_seconds": secs, **summary})
                tracker.end_child(run_id)
                result.curves[name] = {"cell": cell, "val_loss": history["val_loss"]}
                scores.append(score)
                seconds.append(secs)
                runs.append(SeedRun(score, final, seed, summary["best_epoch"] + 1, secs))
                say("seed_end", {"cell": cell, "seed": seed, "k": k + 1, "score": score,
                                 "metric": metric, "seconds": secs})
            # Best seed first (ties: the earlier seed), so a one-model export takes it; a
            # seed with no finite score (diverged) never joins the export.
            runs = sorted((r for r in runs if np.isfinite(r.score)),
                          key=lambda r: -r.score if greater else r.score) or runs
            result.members[cell] = runs
            result.cells.append(verdict.CellResult(cell=cell, config=cfg, scores=scores,
                                                   n_params=int(runs[0].model.count_params()),
                                                   train_seconds=float(np.mean(seconds))))
    return result
