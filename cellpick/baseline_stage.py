"""The baselines stage: every baseline on the verdict's folds, and on the test split.

The models live in baselines.py. Here they are treated exactly like the cells: fitted on
each fold's rows the cells saw (its "trainval": training part plus the inner validation part
that chose the cells' epochs; a baseline's own hyperparameters are chosen on the same two
parts) and scored on the fold's scoring block, so `verdict.decide` compares them on the same
units. A series' seeds share one origin's data, and a deterministic baseline is fitted once
per origin. One MLflow child run per baseline (role baseline) carries its mean and its
per-unit scores. For the test split, `final_baselines` refits every baseline on the rows the
exported model trained on (all non-test data when the winner is refit) and scores it once.
A baseline that fails or is too big is left out with a note, never silently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .plan import BASELINE_LIMIT, Plan

Progress = Callable[[str, dict], None]


@dataclass
class BaselineScores:
    """Per baseline: its folds x seeds matrix, mean, parameters, exportability; skip notes."""

    matrices: dict[str, list[list[float]]] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    exportable: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class FinalBaselines:
    """Baselines refit for the test split (and for `--export best`)."""

    models: dict[str, Any] = field(default_factory=dict)  # name -> baselines.Baseline
    test: dict[str, float] = field(default_factory=dict)  # name -> test score
    fit_on: str = "trainval"


def run_baselines(plan: Plan, *, tracker, progress: Progress | None = None) -> BaselineScores:
    from .baselines import describe, fit_baselines
    from .tracking import baseline_run_name, summary_key
    from .verdict import score

    say = progress or (lambda event, info: None)
    res, task = plan.resampling, plan.dataset.task
    say("stage", {"name": "baselines", "folds": res.folds, "seeds": res.seeds})
    out = BaselineScores()
    skipped: dict[str, str] = {}
    per_prep: dict[int, dict[str, float]] = {}
    unit_scores: dict[str, list[float]] = {}
    for unit in res.units:
        key = id(unit.prep)  # a series' seeds share their origin's Prepared
        if key not in per_prep:
            fitted = fit_baselines(unit.prep, season=plan.season, fit_on="trainval",
                                   choose_on=("train", "val"),
                                   skip=lambda name, why: skipped.setdefault(name, why))
            per_prep[key] = {}
            for b in fitted:
                y = unit.prep.arrays("score", limit=BASELINE_LIMIT)[1]
                per_prep[key][b.name] = score(task, y, b.predict("score", limit=BASELINE_LIMIT))
                out.params.setdefault(b.name, describe(b).get("params", {}))
                out.exportable[b.name] = b.exportable
        for name, value in per_prep[key].items():
            unit_scores.setdefault(name, []).append(value)
    for name, values in unit_scores.items():
        if len(values) != len(res.units):  # failed on some folds: not comparable on the units
            skipped.setdefault(name, f"fitted on {len(values)} of {len(res.units)} folds only")
            continue
        out.matrices[name] = res.matrix(values)
        finite = [v for v in values if math.isfinite(v)]
        out.means[name] = float(np.mean(finite)) if finite else math.nan
        run_id = tracker.start_child("baseline", baseline_run_name(name),
                                     {"baseline": name, **_flat_params(out.params.get(name, {}))})
        # Its cross-validated mean is also its summary, so it sorts with the cells' runs.
        tracker.log_metrics(run_id, {"score": out.means[name],
                                     summary_key(plan.metric): out.means[name]})
        for i, v in enumerate(values):
            tracker.log_metrics(run_id, {"fold_score": v}, step=i)
        tracker.end_child(run_id)
    out.notes = [f"baseline {name} left out: {why}" for name, why in skipped.items()]
    for note in out.notes:
        say("note", {"message": note})
    return out


def final_baselines(plan: Plan, names: list[str], *, refit: bool) -> FinalBaselines:
    """Fit the baselines `names` on the rows the export trained on (train + validation when
    the winner is refit, else train) and score them on the test split when there is one."""
    from .baselines import fit_baselines
    from .verdict import score

    prep, task = plan.prep, plan.dataset.task
    fit_on = "trainval" if refit else "train"
    out = FinalBaselines(fit_on=fit_on)
    if not names:
        return out
    for b in fit_baselines(prep, season=plan.season, fit_on=fit_on, choose_on=("train", "val")):
        if b.name not in names:
            continue
        out.models[b.name] = b
        if prep.sizes.get("test", 0) > 0:
            y = prep.arrays("test", limit=BASELINE_LIMIT)[1]
            out.test[b.name] = score(task, y, b.predict("test", limit=BASELINE_LIMIT))
    return out


def _flat_params(params: dict[str, Any]) -> dict[str, Any]:
    return {f"baseline.{k}": v for k, v in params.items()}
