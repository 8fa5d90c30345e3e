"""The winner's models and its test score: refit on train + validation, ensemble, test.

`build_winner` turns the verdict's winner and its seed models into the model to export (the
best seed, or the mean of all seeds with --ensemble; each refit on train + validation when
refit is on); `score_test` scores it once on the test split, with the best baseline beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .plan import Plan, split_arrays, split_predictions
from .seeds import SeedRun, SeedsResult

Progress = Callable[[str, dict], None]
REFIT_BELOW = 5_000  # training windows/samples: below this, the winner is refit on train+val


@dataclass
class Winner:
    """The winning cell and the model(s) that will be exported."""

    cell: str
    config: dict[str, Any]
    runs: list[SeedRun]  # the seeds behind the export: the best one, or all with --ensemble
    models: list  # their export models (refit when `refit`)
    model: Any  # what is exported: models[0], or the mean of `models`
    refit: bool


@dataclass(frozen=True)
class TestScores:
    """Scores on the test split (None without one)."""

    winner: float | None = None
    best_baseline: float | None = None


def build_winner(plan: Plan, cell: str, seeds: SeedsResult, *, budget=None, distribute=None,
                 progress: Progress | None = None) -> Winner:
    from .space import ensemble_model, export_model
    from .train import refit_one

    say = progress or (lambda event, info: None)
    config, prep = plan.config, plan.prep
    win_cfg = next(c.config for c in seeds.cells if c.cell == cell)
    runs = seeds.members[cell] if config.ensemble else seeds.members[cell][:1]
    refit = config.refit if config.refit is not None else prep.sizes["train"] < REFIT_BELOW
    if refit and budget and budget.left() < sum(r.seconds for r in runs) + budget.finish_allowance:
        refit = False  # no time to retrain: export the seed models as trained
    if refit:
        say("stage", {"name": "refit", "epochs": runs[0].epochs, "models": len(runs)})
        models = [export_model(prep, refit_one(prep, win_cfg, r.seed, r.epochs, distribute))
                  for r in runs]
    else:
        models = [r.model for r in runs]
    model = ensemble_model(prep, models) if len(models) > 1 else models[0]
    return Winner(cell, win_cfg, runs, models, model, refit)


def score_test(plan: Plan, winner: Winner, best_baseline: str | None,
               predictors: dict[str, Callable]) -> TestScores:
    """The winner's test score and, for comparison, the best baseline's (`predictors`)."""
    from . import verdict

    prep, task = plan.prep, plan.dataset.task
    if prep.sizes.get("test", 0) <= 0:
        return TestScores()
    y_test, pred = split_predictions(winner.model, prep, "test")
    baseline = None
    if best_baseline:
        x_test, _ = split_arrays(prep, "test", baselines=True)
        baseline = verdict.score(task, y_test, predictors[best_baseline](x_test))
    return TestScores(verdict.score(task, y_test, pred), baseline)
