"""The fit's record: what verdict.json says, built once from the stages' results.

`build` assembles a `FitRecord` from the decision (`verdict.decide`), the resampling, the
test scores, the contestants, the export choice (`refit.choose_export`), how the exported
model was trained and what the time budget cut. The record is frozen: no stage extends it.
`FitRecord.to_dict` is its one serialisation: verdict.json on the fit's MLflow run, and
cellpick.json's `verdict`. A past fit is read back in that JSON form (output.leaderboard,
`cellpick report`), where a key an older cellpick did not write is absent.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellpick.engine.search import SearchResult
    from cellpick.engine.budget import Budget
    from cellpick.stages.contest import BaselineScores
    from cellpick.stages.datalevel import DataChoice
    from cellpick.stages.plan import Plan
    from cellpick.stages.refit import ExportChoice, TestScores, Winner
    from cellpick.verdict import Verdict

_ABSENT_WHEN_NONE = {"omit": True}  # written only when set (verdict.json has no such key otherwise)


@dataclass(frozen=True)
class FitRecord:
    """verdict.json, field by field in its order. The first fields are `verdict.Verdict`'s
    (see its docstring); the rest say what the other stages did."""

    metric: str
    greater_is_better: bool
    cells: dict[str, dict]  # {cell: {config, scores, fold_scores, mean, ci95, n_params, train_seconds}}
    comparisons: list[dict]
    baselines: dict[str, float | None]
    best_baseline: str | None
    winner: str  # the verdict's winning cell (a baseline may be exported instead: `export`)
    best_mean_cell: str
    reason: str  # the decision's sentences, then what the time budget cut
    beats_best_baseline: bool | None
    test_score: float | None  # the exported model's
    schema_version: int
    resampling: dict[str, Any]  # the verdict's test (Verdict) and folds.Resampling.to_dict()
    decision: str | None
    rope: float | None
    baseline_fold_scores: dict[str, list] | None
    baseline_comparisons: list[dict] | None
    standing: dict[str, str] | None
    baseline_ci95: dict[str, list] | None
    best_baseline_test_score: float | None
    baseline_test_scores: dict[str, float]
    baseline_notes: list[str]
    contestants: dict[str, dict]  # contest.BaselineScores.table()
    best_cell: dict[str, Any]  # best_cell ... contestant_graphs: refit.ExportChoice.to_dict()
    first_place: dict[str, Any]
    exported: dict[str, Any]
    export_line: str
    export_best: str
    contestant_graphs: dict[str, dict]
    test_size: float
    export: dict[str, Any]  # {kind: "cell", cell} or {kind: "baseline", baseline, ...}
    refit: dict[str, Any] | None  # how a refit cell was retrained; None otherwise
    trained: str  # refit.Winner.how
    ensemble: dict[str, Any] | None  # {models, seeds} when the export averages several
    patch: int
    linear_path: bool
    data_level: dict[str, Any] | None = field(default=None, metadata=_ABSENT_WHEN_NONE)
    budget: dict[str, Any] | None = field(default=None, metadata=_ABSENT_WHEN_NONE)
    # a distributed fit: stage -> worker -> the units it ran (engine.units.Chief.spread)
    distributed: dict[str, Any] | None = field(default=None, metadata=_ABSENT_WHEN_NONE)

    def to_dict(self) -> dict[str, Any]:
        """verdict.json's contents (JSON-ready), in the order of the fields."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not (f.metadata.get("omit") and getattr(self, f.name) is None)}

    @property
    def val_score(self) -> float | None:
        """The winning cell's cross-validated mean."""
        return self.cells[self.winner]["mean"]

    @property
    def exported_val_score(self) -> float | None:
        """The exported model's cross-validated score: the winning cell's, or the baseline's."""
        if self.export["kind"] == "baseline":
            return self.baselines.get(self.export["baseline"])
        return self.cells[self.export["cell"]]["mean"]


def build(plan: Plan, decision: Verdict, winner: Winner, test: TestScores, choice: ExportChoice,
          *, search: SearchResult, baselines: BaselineScores, data_level: DataChoice,
          n_seeds: int, budget: Budget | None = None,
          spread: dict[str, dict[str, int]] | None = None) -> FitRecord:
    """The record of a fit from its stages' results (`n_seeds`: the verdict's seeds per fold,
    fewer than `budget.seeds` when the time budget cut them)."""
    v = dataclasses.replace(decision, test_score=test.winner).to_dict()
    v["resampling"] = {**(v["resampling"] or {}), **plan.resampling.to_dict()}
    cut = None
    if budget:
        cut = _budget(budget, search, plan.config.max_trials, n_seeds)
        if cut["cut_short"]:
            v["reason"] += " " + _cut_sentence(budget.seconds, cut["cut"])
    cell = winner.kind == "cell"
    return FitRecord(
        **v,
        best_baseline_test_score=test.best_baseline,
        baseline_test_scores=test.baselines,
        baseline_notes=baselines.notes,
        contestants=baselines.table(),
        **choice.to_dict(),
        test_size=plan.test_size,
        export=({"kind": "cell", "cell": winner.cell} if cell else
                {"kind": "baseline", "baseline": winner.cell, **winner.baseline}),
        refit=({"on": "train+validation (all non-test data)", "epochs": winner.epochs,
                "steps": winner.steps, "rule": "median of the folds' best epoch counts"}
               if winner.how == "refit" and cell else None),
        trained=winner.how,
        ensemble=({"models": len(winner.models), "seeds": winner.seeds}
                  if len(winner.models) > 1 else None),
        patch=int(winner.config.get("patch", 1)),
        linear_path=bool(winner.config.get("linear", False)),
        data_level=data_level.to_dict(),
        budget=cut,
        distributed={"units": spread} if spread is not None else None,
    )


def _budget(budget: Budget, search: SearchResult, max_trials: int, n_seeds: int) -> dict[str, Any]:
    """verdict.json's `budget`: the division up front, the seconds each stage spent, and what
    the budget cut: search rounds, trials not scored, seeds, and what the stages noted
    (data-level candidates, the verdict models it stopped per cell, contestants, the refit)."""
    cuts = dict(budget.cuts)
    if search.cut_short:
        cuts["trials"] = f"{search.rounds} of {max_trials} per cell"
    if search.not_scored:
        cuts["not_scored"] = search.not_scored
    if n_seeds < budget.seeds:
        cuts["seeds"] = f"{n_seeds} of {budget.seeds} per fold"
    record = budget.record()
    order = ("data_level", "trials", "not_scored", "seeds", "training", "contestants", "refit")
    record["cut"] = {k: cuts[k] for k in order if k in cuts}
    record.update(cut_short=bool(cuts), trials_per_cell=search.rounds, seeds=n_seeds)
    return record


def _cut_sentence(seconds: float, cut: dict[str, Any]) -> str:
    """'The time budget (60 s) cut the search to 1 of 30 trials per cell and the verdict to 1
    of 3 seeds per fold.', naming each cut in the stages' order."""
    parts = []
    if "data_level" in cut:
        parts.append(f"the data-level choices ({cut['data_level']})")
    if "trials" in cut or "not_scored" in cut:
        text = "the search"
        if "trials" in cut:
            text += " to " + cut["trials"].replace(" per cell", " trials per cell")
        if "not_scored" in cut:
            n = cut["not_scored"]
            text += (f" ({n} trial{'s' if n > 1 else ''} stopped before the minimum training "
                     f"{'were' if n > 1 else 'was'} not scored)")
        parts.append(text)
    if "seeds" in cut:
        parts.append("the verdict to " + cut["seeds"].replace(" per fold", " seeds per fold"))
    if "training" in cut:
        stopped = ", ".join(f"{n} {c}" for c, n in cut["training"].items())
        parts.append(f"the verdict's training (it stopped {stopped} fold models before early "
                     "stopping did)")
    if "contestants" in cut:
        parts.append("the contestants " + ", ".join(cut["contestants"]))
    if "refit" in cut:
        parts.append(f"the refit ({cut['refit']})")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"The time budget ({seconds:g} s) cut {listed}."
