"""The baselines stage: the baseline models fitted and scored on the cells' split.

The models themselves live elsewhere (today `verdict.fit_baselines`); this stage fits them on
the capped training arrays, scores them on validation and logs one MLflow child run each
(role baseline), so the verdict can ask whether the winning cell beats them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .plan import Plan, split_arrays

Progress = Callable[[str, dict], None]


@dataclass
class BaselineScores:
    """Validation scores of the baselines, and the fitted predictors (x -> prediction)."""

    scores: dict[str, float] = field(default_factory=dict)
    predictors: dict[str, Callable] = field(default_factory=dict)


def run_baselines(plan: Plan, *, tracker, progress: Progress | None = None) -> BaselineScores:
    from . import verdict
    from .tracking import baseline_run_name, summary_key

    say = progress or (lambda event, info: None)
    ds, prep, task = plan.dataset, plan.prep, plan.dataset.task
    say("stage", {"name": "baselines"})
    x_train, y_train = split_arrays(prep, "train", baselines=True)
    x_val, y_val = split_arrays(prep, "val", baselines=True)
    fitted = verdict.fit_baselines(task, x_train, y_train, season=plan.season,
                                   n_classes=len(ds.classes) if ds.classes else None)
    out = BaselineScores(predictors=dict(fitted))
    for name, predictor in fitted.items():
        score = out.scores[name] = verdict.score(task, y_val, predictor(x_val))
        run_id = tracker.start_child("baseline", baseline_run_name(name), {"baseline": name})
        # No epochs: its validation score is also its summary, so it sorts with the cells.
        tracker.log_metrics(run_id, {"score": score, summary_key(plan.metric): score})
        tracker.end_child(run_id)
    return out
