"""The model to export: the winner retrained on all non-test data, and its test score.

The verdict's fold models each saw part of the data; the export is trained anew on the
search split's train + validation (all non-test data) as S members of one graph (the
verdict's seeds), averaged (`--ensemble`, default) or the first alone. With no validation
left to stop it, each member trains for the median of the winner's best epoch counts over
its folds, scaled to the larger data: epochs x ceil(non-test samples / batch size) steps.
`--no-refit` (default from REFIT_BELOW training samples on) trains them on the search
split's training part with early stopping on its validation part instead. When the time
budget cannot cover a retraining, the winner's best fold models are exported as they are.
`score_test` scores the export once on the test split, when there is one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .crossval import CrossValResult
from .plan import Plan, split_predictions

Progress = Callable[[str, dict], None]
REFIT_BELOW = 5_000  # training windows/samples: below this, retrain on train + validation


@dataclass
class Winner:
    """The winning model(s) that will be exported."""

    cell: str  # the winning cell, or the baseline's name when a baseline is exported
    config: dict[str, Any]
    seeds: list[int]  # the members' seeds
    models: list  # their export models
    model: Any  # what is exported: models[0], or the mean of `models`
    how: str  # "refit" (train + validation), "early-stopping" (train, val) or "folds"
    epochs: float | None = None  # refit: epochs each member trained for
    steps: int | None = None  # refit: gradient steps each member trained for
    kind: str = "cell"  # "cell", or "baseline" (--export best)
    baseline: dict[str, Any] = field(default_factory=dict)  # kind "baseline": its description

    @property
    def refit(self) -> bool:
        return self.how == "refit"


@dataclass(frozen=True)
class TestScores:
    """Scores on the test split (None without one): the export's and each baseline's."""

    winner: float | None = None
    best_baseline: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)


def refit_epochs(epochs: list[float]) -> float:
    """The retraining's epoch count: the median of the folds' best epoch counts (at least 1)."""
    finite = [e for e in epochs if math.isfinite(e)]
    return max(1.0, float(np.median(finite))) if finite else 1.0


def build_winner(plan: Plan, cell: str, cv: CrossValResult, *, budget=None,
                 progress: Progress | None = None) -> Winner:
    from .folds import unit_seed
    from .members import Member, fit_members, refit_members
    from .space import ensemble_model, export_model

    say = progress or (lambda event, info: None)
    config, prep = plan.config, plan.prep
    cfg = next(c.config for c in cv.cells if c.cell == cell)
    runs = cv.runs[cell]
    n = plan.resampling.seeds if config.ensemble else 1
    seeds = [unit_seed(config.seed, r) for r in range(n)]
    refit = config.refit if config.refit is not None else prep.sizes["train"] < REFIT_BELOW
    epochs = refit_epochs([r.epochs for r in runs])
    members = [Member(prep, s) for s in seeds]
    if budget and budget.left() < np.mean([r.seconds for r in runs]) * n + budget.finish_allowance:
        best = sorted((r for r in runs if math.isfinite(r.score)),
                      key=lambda r: -r.score if plan.greater_is_better else r.score)[:n] or runs[:1]
        models = [r.model for r in best]
        return Winner(cell, cfg, [r.seed for r in best], models,
                      ensemble_model(prep, models) if len(models) > 1 else models[0], "folds")
    if refit:
        spe = max(1, math.ceil((prep.sizes["train"] + prep.sizes["val"]) / prep.batch_size()))
        steps = max(1, round(epochs * spe))
        say("stage", {"name": "refit", "epochs": epochs, "models": n})
        trained = refit_members(members, cfg, [steps] * n)
        how = "refit"
    else:
        say("stage", {"name": "final", "models": n})
        trained = [r.model for r in fit_members(members, cfg, plan.schedule)]
        steps, epochs, how = None, None, "early-stopping"
    models = [export_model(prep, m) for m in trained]
    model = ensemble_model(prep, models) if len(models) > 1 else models[0]
    return Winner(cell, cfg, seeds, models, model, how, epochs, steps)


def baseline_winner(plan: Plan, name: str, baseline) -> Winner:
    """`--export best`: the exportable baseline `name` as the model to export."""
    from .baselines import describe, keras_model

    model = keras_model(plan.prep, baseline)
    info = describe(baseline)
    return Winner(name, dict(info.get("params", {})), [], [model], model, "refit",
                  kind="baseline", baseline=info)


def score_test(plan: Plan, winner: Winner, best_baseline: str | None,
               baseline_test: dict[str, float]) -> TestScores:
    """The export's test score, with every baseline's (refit as the export was) beside it."""
    from . import verdict

    prep, task = plan.prep, plan.dataset.task
    if prep.sizes.get("test", 0) <= 0:
        return TestScores()
    y_test, pred = split_predictions(winner.model, prep, "test")
    return TestScores(verdict.score(task, y_test, pred),
                      baseline_test.get(best_baseline) if best_baseline else None,
                      dict(baseline_test))
