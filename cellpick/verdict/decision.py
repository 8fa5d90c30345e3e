"""The decision: the winning cell by practical equivalence and cost, against the contestants.

Pure numpy/scipy/baycomp/scikit-learn: no TensorFlow, no MLflow. The pipeline trains the cells
on every fold x seed unit and hands their scores to `decide`; everything here is plain arithmetic on
arrays in original units (verdict/statistics.py); the rule and its why: docs/verdict.md.

Conventions:
- A cell's scores form a folds x seeds matrix (`Design` says how the folds were made: rolling
  origin, repeated (stratified) K-fold, or the seeds of one split); matrices of different
  cells and baselines pair up unit by unit. A failed unit is NaN: it is left out of that
  cell's mean and interval, and its pairs are left out of the comparisons.
- `compare(...)["mean_diff"]` is how much better `a` is than `b` on average, in metric units
  (a - b for accuracy, b - a for MAE): positive means `a` is better.
- Probabilities are posterior probabilities of practical differences (ROPE), not p-values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cellpick.errors import ConfigError
from cellpick.verdict.statistics import (
    BOUNDS,
    LEVEL,
    Design,
    _broadcast,
    compare,
    default_rope,
    summarize,
)
from cellpick.verdict.wording import _probs, _Say
from cellpick.vocab import metric_label

VERDICT_SCHEMA_VERSION = 2  # 1: seeds on one split (no schema_version key); 2: folds x seeds


@dataclass
class CellResult:
    """The best configuration of one cell, trained on every fold x seed unit.

    fold_scores: a folds x seeds matrix of scores (NaN for a failed unit); scores: the same
    values as one flat fold-major list. Give either: `scores` alone is read as the seeds of
    one split (one row).
    """

    cell: str
    config: dict
    scores: list[float] = field(default_factory=list)
    n_params: int = 0
    train_seconds: float = 0.0
    fold_scores: list[list[float]] | None = None

    def __post_init__(self):
        if self.fold_scores is None:
            self.fold_scores = [[float(s) for s in self.scores]]
        self.fold_scores = [[float(s) for s in row] for row in self.fold_scores]
        if not self.scores:
            self.scores = [s for row in self.fold_scores for s in row]


@dataclass
class Verdict:
    """The outcome of `decide`; `to_dict` gives the first keys of verdict.json
    (stages.record.FitRecord adds what the other stages did).

    schema_version: VERDICT_SCHEMA_VERSION (2); verdict.json files without it are version 1
                  (seeds on one split).
    resampling:   {kind, folds, seeds, test, rho}: how the scores were produced and tested.
    cells:        {cell: {config, scores (flat, fold-major), fold_scores (folds x seeds),
                  mean, ci95: [lo, hi], n_params, train_seconds}}
    comparisons:  the best-mean cell (a) against each other cell (b); see `compare`:
                  {a, b, test, rope, mean_diff, ci95, a_minus_b, a_minus_b_ci95,
                  probability, n, degenerate}, where `probability` holds posterior
                  probabilities, not p-values; every interval shown to a reader is
                  a_minus_b_ci95 (a's score minus b's, in metric units).
    rope:         the region of practical equivalence, in metric units (+-rope).
    decision:     "better" (the winner is practically better than every other cell),
                  "equivalent" (it is not practically worse than a better-mean or dearer
                  cell, and wins by cost), "undecided" (the data cannot separate the best
                  mean from some cell; the winner is then the best mean) or "only" (one cell).
    baselines:    {name: mean score}; baseline_fold_scores: {name: folds x seeds};
                  baseline_ci95: {name: [lo, hi]}, its mean's interval as a cell's;
                  best_baseline: the best-mean name or None; baseline_comparisons: each
                  cell (a) against the best baseline (b), as in `comparisons`.
    winner:       the chosen cell; best_mean_cell: the cell with the best mean score.
    standing:     {cell: "winner", "best mean" (the best mean when a cheaper cell wins),
                  "worse", "equivalent", "not better", "open" or "failed"} (see `_status`);
                  `headline` says the decision in a few words from it.
    reason:       plain sentences: the decision with effect size, ROPE and probability.
    beats_best_baseline: the winner is practically better than the best baseline
                  (P >= 0.95); None when there are no baselines.
    test_score:   the winner's test score, set by stages.record.build once it is known.
    """

    metric: str
    greater_is_better: bool
    cells: dict[str, dict]
    comparisons: list[dict]
    baselines: dict[str, float]
    best_baseline: str | None
    winner: str
    best_mean_cell: str
    reason: str
    beats_best_baseline: bool | None
    test_score: float | None = None
    schema_version: int = VERDICT_SCHEMA_VERSION
    resampling: dict | None = None
    decision: str | None = None
    rope: float | None = None
    baseline_fold_scores: dict[str, list] | None = None
    baseline_comparisons: list[dict] | None = None
    standing: dict[str, str] | None = None
    baseline_ci95: dict[str, list] | None = None

    def to_dict(self) -> dict:
        """JSON-ready: plain Python types only, NaN and infinities as None."""
        return _plain({k: getattr(self, k) for k in self.__dataclass_fields__})


def decide(
    cells: list[CellResult],
    metric: str,
    greater_is_better: bool,
    baselines: dict | None = None,
    *,
    resampling=None,
    rope: float | None = None,
    n_validated: int | None = None,
    task: str | None = None,
    level: float = LEVEL,
) -> Verdict:
    """Pick the winning cell by practical equivalence.

    cells: each with a folds x seeds score matrix on the same units (`resampling`: a
    folds.Resampling, a {kind, folds, seeds} dict, or None for the seeds of one split).
    baselines: {name: score}, where a score is a folds x seeds matrix, one value per fold
    (a deterministic baseline: the same for every seed) or one number (the same everywhere).
    rope: the region of practical equivalence in metric units; default `default_rope` (1% of
    the best cell's mean; for accuracy at least 1 / n_validated). task names the verb of the
    baseline sentence ("forecasts", "classifies", "predicts").

    The best-mean cell B (ties: the cheaper) is compared with every other cell C by `compare`.
    A cell is cheaper when it has fewer parameters, or as many and comes first in the fixed
    order SimpleRNN, GRU, LSTM (fewer gates), so timing never changes the decision.
    - A cheaper C with P(C not practically worse than B) >= level is equivalent; the cheapest
      such cell wins ("equivalent").
    - Else B wins. "better" when it is practically better than every other cell with
      P >= level; "equivalent" when each other cell is either that or dearer than B and not
      practically better with P >= level (B then wins by cost as well).
    A cell with no finite score (failed everywhere) takes no part.
    - Otherwise "undecided": B (the best mean) is the winner, and the reason says which cells
      the data cannot separate from it and what would (more data, more folds and seeds).
    Baselines never win; the reason leads with a baseline practically better than every cell.
    """
    design = Design.of(resampling, _fold_shape(cells)[1])
    bounds = BOUNDS.get(metric, (-math.inf, math.inf))
    matrices = {c.cell: design.matrix(c.fold_scores, c.cell) for c in cells}
    summary = {c.cell: summarize(matrices[c.cell], design, bounds, level) for c in cells}
    sign = 1.0 if greater_is_better else -1.0

    def rank(c: CellResult):
        mean = summary[c.cell][0]
        # Failed cells (no finite score) rank last; equal means go to the cheaper cell.
        return (not math.isfinite(mean), -sign * mean if math.isfinite(mean) else 0.0, _cost(c))

    ranked = sorted(cells, key=rank)
    best = ranked[0]
    if not math.isfinite(summary[best.cell][0]):
        raise ConfigError("no cell has a finite score: every unit of every cell failed.")
    rope = _rope(rope, metric, summary[best.cell][0], n_validated, resampling)

    def comp(a: str, b: str, ma, mb) -> dict:
        return compare(ma, mb, greater_is_better, rope=rope, design=design, a_name=a,
                       b_name=b, level=level)

    comparisons = [comp(best.cell, c.cell, matrices[best.cell], matrices[c.cell])
                   for c in ranked[1:]]
    by_cell = {c["b"]: c for c in comparisons}
    status = {c.cell: "failed" if not math.isfinite(summary[c.cell][0])
              else _status(c, best, by_cell[c.cell], level) for c in ranked[1:]}
    winner, decision = _choose(ranked, status)

    label = metric_label(metric)
    say = _Say(metric, label, rope, design, level)
    reason = say.cells(best, winner, ranked, by_cell, status, summary, decision)

    base = {str(k): design.matrix(_broadcast(v, design), f"baseline {k!r}")
            for k, v in (baselines or {}).items()}
    base_summary = {k: summarize(m, design, bounds, level) for k, m in base.items()}
    best_baseline, beats, baseline_comps, reason = _against_baselines(
        base, base_summary, sign, ranked, winner, matrices, summary, comp, say, task, reason)

    return Verdict(
        metric=metric,
        greater_is_better=bool(greater_is_better),
        cells=_cell_table(ranked, matrices, summary),
        comparisons=comparisons,
        baselines={k: base_summary[k][0] for k in base},
        best_baseline=best_baseline,
        winner=winner.cell,
        best_mean_cell=best.cell,
        reason=reason,
        beats_best_baseline=beats,
        resampling={"kind": design.kind, "folds": design.folds, "seeds": design.seeds,
                    "test": design.test, "rho": design.rho},
        decision=decision,
        rope=rope,
        baseline_fold_scores={k: m.tolist() for k, m in base.items()} if base else None,
        baseline_comparisons=baseline_comps,
        baseline_ci95={k: list(base_summary[k][1]) for k in base} if base else None,
        standing=_standing(winner, best, status),
    )


def _against_baselines(base, base_summary, sign, ranked, winner, matrices, summary, comp, say,
                       task, reason):
    """(best baseline, whether the winner beats it, every cell compared with it, the reason
    with the baseline's sentences around it); Nones when no baseline has a finite score."""
    finite = {k: s[0] for k, s in base_summary.items() if math.isfinite(s[0])}
    if not finite:
        return None, None, None, reason
    best_baseline = min(finite, key=lambda k: -sign * finite[k])
    comps = [comp(c.cell, best_baseline, matrices[c.cell], base[best_baseline]) for c in ranked]
    beats, lead, tail = say.baseline(best_baseline, finite[best_baseline], winner, summary, comps,
                                     task)
    return best_baseline, beats, comps, " ".join(s for s in (lead, reason, tail) if s)


def _rope(rope, metric: str, best_mean: float, n_validated: int | None, resampling) -> float:
    """The ROPE given (checked), else `default_rope` for the best cell's mean."""
    if n_validated is None:  # a folds.Resampling (or its dict) knows how many it scored
        n_validated = (resampling.get("n_validated") if isinstance(resampling, dict)
                       else getattr(resampling, "n_validated", None))
    if rope is None:
        rope = default_rope(metric, best_mean, n_validated)
    if not (isinstance(rope, (int, float)) and math.isfinite(rope) and rope >= 0):
        raise ConfigError(f"The 'rope' option must be a number >= 0 in {metric_label(metric)} "
                          f"units. Got {rope!r} instead.")
    return float(rope)


def _standing(winner: CellResult, best: CellResult, status: dict[str, str]) -> dict[str, str]:
    return {winner.cell: "winner", **({best.cell: "best mean"} if best is not winner else {}),
            **{c: s for c, s in status.items() if c != winner.cell}}


def _fold_shape(cells: list[CellResult]) -> tuple[int, int]:
    """The (folds, seeds) every cell's score matrix shares; ConfigError otherwise."""
    if not cells:
        raise ConfigError("decide needs at least one cell result; got none.")
    names = [c.cell for c in cells]
    if len(set(names)) != len(names):
        raise ConfigError(f"each cell may appear once in decide; got {names}.")
    shapes = {np.shape(c.fold_scores) for c in cells}
    if len(shapes) != 1:
        raise ConfigError(
            "every cell needs the same folds x seeds of scores (NaN for a failed unit); got "
            + ", ".join(f"{c.cell}: {np.shape(c.fold_scores)}" for c in cells) + ".")
    shape = shapes.pop()
    if len(shape) != 2:
        raise ConfigError(f"fold_scores must be a folds x seeds matrix; got shape {shape}.")
    return shape


def _choose(ranked: list[CellResult], status: dict[str, str]) -> tuple[CellResult, str]:
    """(winner, decision) from each other cell's standing against the best (ranked[0])."""
    best = ranked[0]
    equivalent = [c for c in ranked[1:] if status[c.cell] == "equivalent"]
    if len(ranked) == 1:
        return best, "only"
    if equivalent:
        return min(equivalent, key=_cost), "equivalent"
    if all(s in ("worse", "not better", "failed") for s in status.values()):
        return best, ("better" if all(s in ("worse", "failed") for s in status.values())
                      else "equivalent")
    return best, "undecided"


def _cell_table(ranked: list[CellResult], matrices: dict, summary: dict) -> dict[str, dict]:
    """verdict.json's `cells`: per cell its configuration, scores, mean, interval and cost."""
    return {
        c.cell: {
            "config": dict(c.config),
            "scores": [float(s) for s in matrices[c.cell].reshape(-1)],
            "fold_scores": matrices[c.cell].tolist(),
            "mean": summary[c.cell][0],
            "ci95": list(summary[c.cell][1]),
            "n_params": int(c.n_params),
            "train_seconds": float(c.train_seconds),
        }
        for c in ranked
    }


def _status(c: CellResult, best: CellResult, comp: dict, level: float) -> str:
    """Where cell `c` stands against the best-mean cell: "worse" (practically),
    "equivalent" (cheaper and not practically worse), "not better" (dearer and not practically
    better: the best wins by cost too) or "open" (the data cannot tell)."""
    p = _probs(comp)
    if p is None:
        return "open"
    if p["a_better"] >= level:
        return "worse"
    if _cost(c) < _cost(best) and p["equivalent"] + p["b_better"] >= level:
        return "equivalent"
    if _cost(c) > _cost(best) and p["equivalent"] + p["a_better"] >= level:
        return "not better"
    return "open"


# Equal parameter counts: the cell with fewer gates is the cheaper; other names after, by name.
_SIMPLEST_FIRST = ("rnn", "gru", "lstm")


def _cost(c: CellResult) -> tuple[int, int, str]:
    order = _SIMPLEST_FIRST.index(c.cell) if c.cell in _SIMPLEST_FIRST else len(_SIMPLEST_FIRST)
    return (int(c.n_params), order, c.cell)


def _plain(obj):
    """numpy scalars and arrays -> Python; NaN/inf -> None (JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
