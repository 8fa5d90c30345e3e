"""The model to export: the winner retrained on all non-test data, and its test score.

The verdict's fold models each saw part of the data; the export is trained anew on the
search split's train + validation (all non-test data) as S members of one graph (the
verdict's seeds), averaged (`--ensemble`, default) or the first alone. With no validation
left to stop it, each member trains for the median of the winner's best epoch counts over
its folds, scaled to the larger data: epochs x ceil(non-test samples / batch size) steps.
`--no-refit` (default from REFIT_BELOW training samples on) trains them on the search
split's training part with early stopping on its validation part instead. When the time
budget's share for refit+export cannot cover a retraining and FINISH_SECONDS for the export,
the winner's best fold models are exported as they are (the budget's record says so).
`score_test` scores the export once on the test split, when there is one.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cellpick.engine.budget import FINISH_SECONDS
from cellpick.engine.train import split_predictions
from cellpick.events import Event, Progress
from cellpick.stages.crossval import CrossValResult
from cellpick.stages.plan import Plan

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
    from cellpick.data.folds import unit_seed
    from cellpick.engine.members import Member, fit_members, refit_members
    from cellpick.models.cells import ensemble_model, export_model

    say = progress or (lambda event, info: None)
    config, prep = plan.config, plan.prep
    cfg = next(c.config for c in cv.cells if c.cell == cell)
    runs = cv.runs[cell]
    n = plan.resampling.seeds if config.ensemble else 1
    seeds = [unit_seed(config.seed, r) for r in range(n)]
    refit = config.refit if config.refit is not None else prep.sizes["train"] < REFIT_BELOW
    epochs = refit_epochs([r.epochs for r in runs])
    members = [Member(prep, s) for s in seeds]
    fold_models = all(r.model is not None for r in runs)  # not when workers trained them
    if fold_models and budget and (budget.stage_left("refit+export")
                                   < np.mean([r.seconds for r in runs]) * n + FINISH_SECONDS):
        budget.cut("refit", "the winner's fold models are exported")
        best = sorted((r for r in runs if math.isfinite(r.score)),
                      key=lambda r: -r.score if plan.greater_is_better else r.score)[:n] or runs[:1]
        models = [r.model for r in best]
        return Winner(cell, cfg, [r.seed for r in best], models,
                      ensemble_model(prep, models) if len(models) > 1 else models[0], "folds")
    if refit:
        spe = max(1, math.ceil((prep.sizes["train"] + prep.sizes["val"]) / prep.batch_size()))
        steps = max(1, round(epochs * spe))
        say(Event.STAGE, {"name": "refit", "epochs": epochs, "models": n})
        trained = refit_members(members, cfg, [steps] * n)
        how = "refit"
    else:
        say(Event.STAGE, {"name": "final", "models": n})
        trained = [r.model for r in fit_members(members, cfg, plan.schedule)]
        steps, epochs, how = None, None, "early-stopping"
    models = [export_model(prep, m) for m in trained]
    model = ensemble_model(prep, models) if len(models) > 1 else models[0]
    return Winner(cell, cfg, seeds, models, model, how, epochs, steps)


LIBRARIES = {"snaive": "numpy", "naive": "numpy", "ets": "statsforecast AutoETS",
             "arima": "statsforecast AutoARIMA", "theta": "statsforecast AutoTheta",
             "ridge": "scikit-learn Ridge", "minirocket": "aeon MiniRocket + scikit-learn ridge",
             "1nn": "scikit-learn KNeighborsClassifier", "logreg": "scikit-learn LogisticRegression",
             "majority": "numpy", "mean": "numpy", "tfidf_logreg": "scikit-learn TF-IDF + "
             "LogisticRegression", "tfidf_ridge": "scikit-learn TF-IDF + Ridge"}


def baseline_winner(plan: Plan, name: str, baseline, model=None) -> Winner:
    """`--export best`: the contestant `name` as the model to export (`model`: its checked
    Keras graph; by default the linear graph models.contestants.keras_model writes)."""
    from cellpick.models.contestants import describe, keras_model

    model = model if model is not None else keras_model(plan.prep, baseline)
    info = describe(baseline)
    info["library"] = LIBRARIES.get(name, "a user's contestant")
    if name == "1nn":
        info["contains_training_data"] = True
    return Winner(name, dict(info.get("params", {})), [], [model], model, "refit",
                  kind="baseline", baseline=info)


@dataclass(frozen=True)
class ExportChoice:
    """The three things every report of the fit says: the best cell, the first place overall
    (a contestant whose cross-validated mean beats the best cell, else that cell), and what
    was exported; `graphs`: each contestant above the best cell, exportable or why not."""

    best_cell: str
    best_cell_mean: float
    first_place: str
    first_kind: str  # "cell" | "contestant"
    first_mean: float
    exported: str
    exported_kind: str  # "cell" | "contestant"
    line: str
    graphs: dict[str, dict[str, Any]] = field(default_factory=dict)
    export_best: str = ""  # what --export best ships (or shipped instead), or why nothing

    def to_dict(self) -> dict[str, Any]:
        return {"best_cell": {"name": self.best_cell, "mean": self.best_cell_mean},
                "first_place": {"name": self.first_place, "kind": self.first_kind,
                                "mean": self.first_mean},
                "exported": {"name": self.exported, "kind": self.exported_kind},
                "export_line": self.line, "export_best": self.export_best,
                "contestant_graphs": self.graphs}


def choose_export(plan: Plan, decision, winner: Winner, baselines, final) -> tuple[Winner, ExportChoice]:
    """The model to ship: the verdict's winning cell, or with `--export best` the best-ranked
    contestant above it whose Keras graph reproduces its library (graphs.build); and the
    sentence that says what was shipped and what `--export best` would ship."""
    from cellpick.data.prepared import BASELINE_LIMIT
    from cellpick.models.graphs import build
    from cellpick.stages.contest import CHECK_SPLIT

    greater = plan.greater_is_better
    cell, cell_mean = decision.winner, float(decision.cells[decision.winner]["mean"])

    def beats(m: float) -> bool:
        return math.isfinite(m) and (m > cell_mean if greater else m < cell_mean)

    cost = {n: e.seconds for n, e in getattr(baselines, "entries", {}).items()}
    above = sorted((n for n, m in baselines.means.items() if beats(m)),
                   key=lambda n: ((-1 if greater else 1) * baselines.means[n], cost.get(n, 0.0), n))
    graphs, ship = {}, None
    for name in above:
        if name not in final.models:
            graphs[name] = {"exportable": False, "reason": "its refit failed or ran past its limit"}
            continue
        g = build(plan.prep, final.models[name], CHECK_SPLIT, final.checks[name], BASELINE_LIMIT,
                  series_keys(plan))
        graphs[name] = {"exportable": g.ok, "input": g.input_kind, "max_difference": g.max_difference,
                        "tolerance": g.tolerance, "checked_rows": g.checked,
                        "near_ties": g.near_ties, "reason": g.reason}
        if g.ok:
            ship = (name, g.model)
            break
    first = above[0] if above else cell
    first_mean = baselines.means[first] if above else cell_mean
    if ship and plan.config.export == "best":
        winner = baseline_winner(plan, ship[0], final.models[ship[0]], ship[1])
    choice = ExportChoice(cell, cell_mean, first, "contestant" if above else "cell", first_mean,
                          winner.cell, "contestant" if winner.kind == "baseline" else "cell", "",
                          graphs)
    shippable = ship[0] if ship else None
    return winner, dataclasses.replace(
        choice, line=_export_line(plan, choice, shippable, baselines.means),
        export_best=_export_best(choice, shippable, baselines.means))


def _export_best(c: ExportChoice, shippable: str | None, means: dict) -> str:
    """The sentence after 'Best cell: ... First overall: ... Exported: ...' on --export best."""
    from cellpick.vocab import format_score

    if c.first_kind == "cell" or c.exported == c.first_place:
        return ""
    why = c.graphs.get(c.first_place, {}).get("reason", "")
    if c.exported_kind == "contestant":
        return (f"The {c.first_place} baseline is not exportable ({why}); --export best shipped "
                f"{c.exported}, the best exportable contestant.")
    if shippable == c.first_place:
        return f"--export best ships the {c.first_place} baseline."
    if shippable:
        return (f"The {c.first_place} baseline is not exportable ({why}); --export best would ship "
                f"the {shippable} baseline ({format_score(means[shippable])}).")
    return (f"The {c.first_place} baseline is not exportable ({why}); no contestant above the "
            "best cell is.")


def series_keys(plan: Plan) -> list[str] | None:
    """A panel's id values in its series' order (the keys of a history graph), else None."""
    if plan.dataset.task != "forecast":
        return None
    from cellpick.models.graphs.series import series_keys as keys

    return keys(plan.dataset)


def _export_line(plan: Plan, c: ExportChoice, shippable: str | None, means: dict) -> str:
    from cellpick.vocab import display_name, format_score, metric_label

    label = metric_label(plan.metric)
    cell = display_name(c.best_cell)
    if c.first_kind == "cell":
        return (f"Exported: {cell}, the best cell and first place (cross-validated {label} "
                f"{format_score(c.best_cell_mean)}).")
    if c.exported_kind == "contestant" and c.exported != c.first_place:
        why = c.graphs.get(c.first_place, {}).get("reason", "")
        return (f"Exported: {c.exported} (cross-validated {label} {format_score(means[c.exported])}), "
                f"the best exportable contestant, by --export best; first place: {c.first_place} "
                f"({format_score(c.first_mean)}), not exportable ({why}); the best cell: {cell} "
                f"({format_score(c.best_cell_mean)}).")
    if c.exported_kind == "contestant":
        return (f"Exported: {c.exported}, first place (cross-validated {label} "
                f"{format_score(c.first_mean)}), by --export best; the best cell: {cell} "
                f"({format_score(c.best_cell_mean)}).")
    head = f"Exported: {cell}, the best cell (cross-validated {label} {format_score(c.best_cell_mean)})"
    first = f"first place: {c.first_place} ({format_score(c.first_mean)})"
    if shippable == c.first_place:
        return f"{head}; {first}, shipped by --export best."
    why = c.graphs.get(c.first_place, {}).get("reason", "")
    tail = (f"; --export best would ship {shippable} ({format_score(means[shippable])})"
            if shippable else "; no contestant above the best cell is exportable")
    return f"{head}; {first}, not exportable ({why}){tail}."


def score_test(plan: Plan, winner: Winner, best_baseline: str | None,
               baseline_test: dict[str, float]) -> TestScores:
    """The export's test score, with every baseline's (refit as the export was) beside it."""
    from cellpick import verdict

    prep, task = plan.prep, plan.dataset.task
    if prep.sizes.get("test", 0) <= 0:
        return TestScores()
    if winner.kind == "baseline":  # a contestant's graph: its own input (a history graph's differs)
        from cellpick.data.prepared import BASELINE_LIMIT
        from cellpick.models.graphs import answer

        y_test = prep.arrays("test", limit=BASELINE_LIMIT)[1]
        pred = answer(winner.model, prep, winner.cell, "test", BASELINE_LIMIT, series_keys(plan))
    else:
        y_test, pred = split_predictions(winner.model, prep, "test")
    return TestScores(verdict.score(task, y_test, pred),
                      baseline_test.get(best_baseline) if best_baseline else None,
                      dict(baseline_test))
