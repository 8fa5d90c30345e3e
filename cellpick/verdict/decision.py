"""Scores, intervals, paired comparisons, the parsimony rule and the baselines.

Pure numpy/scipy/baycomp/scikit-learn: no TensorFlow, no MLflow. The pipeline trains the cells
on every fold x seed unit and hands their scores to `decide`; everything here is plain arithmetic on
arrays in original units, so cells and baselines are scored by the same `score` function.

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
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from cellpick.errors import ConfigError
from cellpick.verdict.wording import _join, _probs, _Say, format_score  # noqa: F401 - format_score: part of this API
from cellpick.vocab import METRICS, display_name, metric_label


def _check_task(task: str) -> None:
    if task not in METRICS:
        raise ConfigError(
            f"The 'task' option must be one of {sorted(METRICS)}. Got {task!r} instead."
        )


# --- scores -------------------------------------------------------------------------------


def score(task: str, y_true, y_pred) -> float:
    """The task's metric (see METRICS) on one split, in original units.

    forecast: mean absolute error over all elements of two forecast blocks shaped exactly
    (windows, horizon), (n, 1) at horizon 1: any other shape is a ValueError naming both,
    never reshaped or broadcast. regress: mean absolute error; y_true and y_pred have the
    same number of elements ((n,) or (n, 1)). classify: accuracy; y_true holds integer class
    indices (n,), y_pred class probabilities (n, C) (a single column (n, 1) is read as the
    probability of class 1).
    """
    _check_task(task)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred, dtype=float)
    if task == "classify":
        if y_pred.ndim != 2 or len(y_pred) != len(y_true):
            raise ValueError(
                f"classify scores need probabilities shaped (n, C) with n={len(y_true)}; "
                f"got shape {y_pred.shape}."
            )
        if y_pred.shape[1] == 1:
            labels = (y_pred[:, 0] >= 0.5).astype(int)
        else:
            labels = y_pred.argmax(axis=1)
        return float(np.mean(labels == y_true.reshape(-1).astype(int)))
    y_true = y_true.astype(float)
    if task == "forecast":
        if y_true.ndim != 2 or y_pred.shape != y_true.shape:
            raise ValueError(
                f"a forecast is scored as a block (windows, horizon): y_true has shape "
                f"{y_true.shape}, y_pred {y_pred.shape}; they must be the same 2-D shape."
            )
        return float(np.mean(np.abs(y_true - y_pred)))
    if y_true.size != y_pred.size:
        raise ValueError(
            f"y_true and y_pred differ in size: {y_true.shape} against {y_pred.shape}."
        )
    return float(np.mean(np.abs(y_true.reshape(-1) - y_pred.reshape(-1))))


def mase(y_true, y_pred, y_train, season: int | None = None) -> float:
    """Mean absolute scaled error: MAE over the in-sample seasonal-naive MAE of `y_train`.

    The lag is `season` or 1. When `y_train` does not change at that lag the scale is zero
    and the result is NaN (undefined), not infinity.
    """
    lag = int(season or 1)
    y_train = np.asarray(y_train, dtype=float).reshape(-1)
    if lag < 1 or len(y_train) <= lag:
        raise ValueError(
            f"mase needs more than {lag} training values for lag {lag}; got {len(y_train)}."
        )
    scale = float(np.mean(np.abs(y_train[lag:] - y_train[:-lag])))
    if scale == 0.0:
        return math.nan
    return score("regress", y_true, y_pred) / scale


# --- statistics ---------------------------------------------------------------------------
#
# Scores come as a folds x seeds matrix per cell (one row per fold or origin, one column per
# seed, NaN for a failed unit); `Design` says how they were produced. Every comparison is the
# Bayesian correlated t-test of Benavoli et al. (2017, JMLR 18(77), "Time for a change"), the
# Bayesian form of Nadeau & Bengio's (2003) corrected resampled t-test: the mean difference has
# a Student posterior with n - 1 degrees of freedom and variance
#     s^2 * (1/n + rho / (1 - rho))
# where s^2 is the sample variance of the n differences and rho the correlation between the
# differences of two folds that share training data. rho / (1 - rho) is Nadeau and Bengio's
# n_score / n_train; for K-fold cross-validation rho = 1/K (baycomp's `runs` correction).
#   - repeated (stratified) K-fold: the n = F x S fold x seed differences, rho = 1/F; each
#     repetition is its own partition, as the correction assumes.
#   - rolling origin: the seeds are averaged within each origin (they share the data, so they
#     are not independent evidence about it), and the n = F per-origin differences are tested
#     with rho = 1/F, as if they were one run of F-fold cross-validation. Every origin trains
#     on all rows before it, so training sets overlap even more than in K-fold; but each
#     scoring block is small beside its training part (folds.py scores at most the last half
#     of the series, so n_score / (n_train + n_score) <= 1/F at every origin) and 1/F is the
#     larger, more conservative of the two.
#   - single split (no resampling: the seeds of one train/validation split): rho = 0. This
#     measures seed noise only and is kept for callers that have not moved to folds.
# Probabilities come from baycomp's posterior (`baycomp.single.Posterior`), intervals from
# scipy's Student t. With every difference identical (zero spread) there is no posterior: the
# comparison says so (`degenerate`, probability None) and the decision reads the difference's
# position against the ROPE instead.

LEVEL = 0.95  # the level of every interval, and the probability a decision needs
BOUNDS = {"accuracy": (0.0, 1.0), "mae": (0.0, math.inf)}  # where a metric can lie
KINDS = ("rolling-origin", "repeated-stratified-kfold", "repeated-kfold", "single-split")
VERDICT_SCHEMA_VERSION = 2  # 1: seeds on one split (no schema_version key); 2: folds x seeds


@dataclass(frozen=True)
class Design:
    """How the folds x seeds scores were produced, as far as the statistics need it."""

    kind: str
    folds: int
    seeds: int

    @classmethod
    def of(cls, resampling, seeds: int) -> "Design":
        """From a `folds.Resampling`, a dict with kind/folds/seeds, a Design, or None (the
        seeds of one split)."""
        if resampling is None:
            return cls("single-split", 1, seeds)
        if isinstance(resampling, dict):
            kind, folds, n = resampling.get("kind"), resampling.get("folds"), resampling.get("seeds")
        else:
            kind, folds, n = resampling.kind, resampling.folds, resampling.seeds
        if kind not in KINDS:
            raise ConfigError(f"The resampling kind must be one of {list(KINDS)}. Got {kind!r} instead.")
        if kind != "single-split" and int(folds) < 2:
            raise ConfigError(f"{kind} needs at least 2 folds. Got {folds!r} instead.")
        return cls(str(kind), int(folds), int(n))

    @property
    def rho(self) -> float:
        """Correlation between two folds' differences (see the notes above)."""
        return 0.0 if self.kind == "single-split" else 1.0 / self.folds

    @property
    def test(self) -> str:
        """The comparison's name as verdict.json records it."""
        if self.kind == "single-split":
            return "Bayesian paired t-test over seeds (one split: seed noise only)"
        if self.kind == "rolling-origin":
            return (f"Bayesian correlated t-test on per-origin means (seeds averaged), "
                    f"rho = 1/{self.folds}")
        return f"Bayesian correlated t-test, rho = 1/{self.folds}"

    def describe(self) -> str:
        """'5 folds x 3 seeds', '5 origins x 3 seeds', '3 seeds on one split'."""
        seeds = f"{self.seeds} seed" + ("s" if self.seeds != 1 else "")
        if self.kind == "single-split":
            return f"{seeds} on one split"
        unit = "origin" if self.kind == "rolling-origin" else "fold"
        return f"{self.folds} {unit}s x {seeds}"

    def matrix(self, scores, name: str = "scores") -> np.ndarray:
        """A (folds, seeds) float array from a matrix or a flat fold-major list."""
        x = np.asarray(scores, dtype=float)
        if x.ndim == 1 and x.size == self.folds * self.seeds:
            x = x.reshape(self.folds, self.seeds)
        if x.shape != (self.folds, self.seeds):
            raise ConfigError(f"{name} must hold {self.folds} folds x {self.seeds} seeds "
                              f"({self.describe()}); got shape {x.shape}.")
        return x

    def values(self, m: np.ndarray) -> np.ndarray:
        """What the test sees: the finite fold x seed values, or per-origin means."""
        if self.kind == "rolling-origin":
            finite = np.isfinite(m).any(axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                m = np.nanmean(m[finite], axis=1)
            return m
        m = m.reshape(-1)
        return m[np.isfinite(m)]


def posterior(values, rho: float = 0.0) -> tuple[float, float, int]:
    """(mean, variance, degrees of freedom) of the Student posterior of the mean of `values`
    (see the notes above): variance s^2 (1/n + rho/(1 - rho)), n - 1 degrees of freedom.
    rho = 1/K gives baycomp.CorrelatedTTest.compute_statistics for K-fold; rho = 0 the
    ordinary (paired) t-test. Needs two values or more."""
    x = np.asarray(values, dtype=float).reshape(-1)
    if x.size < 2:
        raise ConfigError(f"a posterior needs at least 2 values; got {x.size}.")
    if not 0 <= rho < 1:
        raise ConfigError(f"The correlation rho must lie in [0, 1). Got {rho!r} instead.")
    return float(x.mean()), float(x.var(ddof=1) * (1 / x.size + rho / (1 - rho))), x.size - 1


def interval(scores, level: float = LEVEL,
             bounds: tuple[float, float] = (-math.inf, math.inf),
             rho: float = 0.0) -> tuple[float, tuple[float, float]]:
    """Mean and Student-t interval of the mean, its variance corrected by `rho` (`posterior`).

    NaN scores (failed units) are left out. With one score there is no spread to estimate:
    the interval is (mean, mean), which says "unknown", not "exact". Constant scores give a
    zero-width interval. No finite score gives NaN everywhere. The interval is clipped to
    `bounds`, the metric's possible range (an accuracy interval never passes 1).
    """
    x = np.asarray(scores, dtype=float).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, (math.nan, math.nan)
    if x.size == 1 or np.ptp(x) == 0:
        mean = float(x.mean())
        return mean, (mean, mean)
    mean, var, df = posterior(x, rho)
    lo, hi = stats.t.interval(level, df, loc=mean, scale=math.sqrt(var))
    return mean, (max(float(lo), bounds[0]), min(float(hi), bounds[1]))


def summarize(scores, design: Design, bounds=(-math.inf, math.inf),
              level: float = LEVEL) -> tuple[float, tuple[float, float]]:
    """A cell's mean and interval over its folds x seeds, as its comparisons see them."""
    return interval(design.values(design.matrix(scores)), level, bounds, design.rho)


def default_rope(metric: str, best_mean: float, n_validated: int | None = None) -> float:
    """The region of practical equivalence: 1% of the best cell's score; for accuracy at
    least one sample out of all the samples validated (1 / n_validated)."""
    rope = 0.01 * abs(best_mean) if math.isfinite(best_mean) else 0.0
    if metric == "accuracy" and n_validated:
        rope = max(rope, 1.0 / int(n_validated))
    return float(rope)


def compare(a, b, greater_is_better: bool, *, rope: float = 0.0, design: Design | None = None,
            a_name: str = "a", b_name: str = "b", level: float = LEVEL) -> dict:
    """Paired comparison of two folds x seeds score matrices (unit i of `a` with unit i of `b`).

    Returns {a, b, test, rope, mean_diff, ci95, a_minus_b, a_minus_b_ci95, probability, n,
    degenerate}:
    mean_diff: how much better `a` is than `b` on average, in metric units (positive: `a`
      better; the sign follows `greater_is_better`); ci95: its `level` credible interval.
    a_minus_b, a_minus_b_ci95: the same difference as `a`'s score minus `b`'s, in metric
      units whatever the direction (what sentences and tables show: 'GRU - LSTM = +2.1 MAE').
    probability: posterior probabilities (not p-values) that `a` is practically better
      ("a_better": the difference exceeds +rope), that the two are practically equivalent
      ("equivalent": within the ROPE) and that `b` is practically better ("b_better").
      None when there is no posterior: fewer than two values to test (test "none (...)") or
      every difference identical (`degenerate` True; test "none (...)"; ci95 [d, d]).
    n: the number of values tested (fold x seed units, or origins). Units with a NaN on
    either side are dropped. `design` defaults to the seeds of one split.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ConfigError(f"a paired comparison needs the same folds and seeds on both sides; "
                          f"got shape {x.shape} for {a_name!r} and {y.shape} for {b_name!r}.")
    design = design or Design("single-split", 1, x.size)
    diff = design.matrix(x, a_name) - design.matrix(y, b_name)
    diff = diff if greater_is_better else -diff
    d = design.values(diff)
    out = dict(a=a_name, b=b_name, test=design.test, rope=float(rope),
               mean_diff=float(d.mean()) if d.size else math.nan, ci95=[math.nan, math.nan],
               probability=None, n=int(d.size), degenerate=False)

    def raw(o: dict) -> dict:  # a - b in metric units: mean_diff's sign undone for errors
        s = 1.0 if greater_is_better else -1.0
        lo, hi = (s * v for v in o["ci95"])
        return {**o, "a_minus_b": s * o["mean_diff"], "a_minus_b_ci95": [min(lo, hi), max(lo, hi)]}

    if d.size < 2:
        unit = "origin" if design.kind == "rolling-origin" else "fold x seed unit"
        out["test"] = f"none ({d.size} {unit}{'' if d.size == 1 else 's'}: nothing to test)"
        return raw(out)
    if np.ptp(d) <= 1e-9 * float(np.abs(d).max()):
        # Equal up to rounding (0.82 - 0.52 vs 0.8 - 0.5): zero spread, no posterior.
        out.update(test=f"none (every difference is {format_score(d.mean()) or 0})",
                   degenerate=True, ci95=[out["mean_diff"]] * 2)
        return raw(out)
    from baycomp.single import Posterior

    mean, var, df = posterior(d, design.rho)
    lo, hi = stats.t.interval(level, df, loc=mean, scale=math.sqrt(var))
    probs = Posterior(mean, var, df, rope).probs()
    b_better, a_better = (probs[0], probs[-1])
    out.update(ci95=[float(lo), float(hi)], probability={
        "a_better": float(a_better), "equivalent": float(max(0.0, 1 - a_better - b_better)),
        "b_better": float(b_better)})
    return raw(out)


# --- the verdict --------------------------------------------------------------------------


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
    """The outcome of `decide`, as written to verdict.json by `to_dict`.

    schema_version: VERDICT_SCHEMA_VERSION (2); verdict.json files without it are version 1
                  (seeds on one split) and read back with the new keys None.
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
    test_score:   the winner's test score, set by the pipeline once it is known.
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

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """Read back what `to_dict` wrote (e.g. verdict.json of a past fit, any version)."""
        v = cls(**{k: d.get(k) for k in cls.__dataclass_fields__})
        if v.schema_version is None:
            v.schema_version = 1
        return v


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
    A cell is cheaper when it has fewer parameters, or as many and less training time.
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
    finite = {k: s[0] for k, s in base_summary.items() if math.isfinite(s[0])}
    best_baseline = min(finite, key=lambda k: -sign * finite[k]) if finite else None
    beats, baseline_comps = None, None
    if best_baseline is not None:
        baseline_comps = [comp(c.cell, best_baseline, matrices[c.cell], base[best_baseline])
                          for c in ranked]
        beats, lead, tail = say.baseline(best_baseline, finite[best_baseline], winner,
                                         summary, baseline_comps, task)
        reason = " ".join(s for s in (lead, reason, tail) if s)

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


def headline(v: dict) -> str:
    """The decision of a verdict (`Verdict.to_dict()`) in a few words, as a title:
    'SimpleRNN wins: practically equivalent to GRU and cheaper; LSTM practically worse',
    'Undecided between LSTM and GRU (LSTM has the best mean)'; then the best baseline's
    standing against the winner ('beats the best baseline, ridge', 'ridge as good')."""
    W, B = display_name(v["winner"]), display_name(v.get("best_mean_cell") or v["winner"])
    standing = v.get("standing") or _standing_from_comparisons(v)

    def who(status: str) -> str:
        return _join([display_name(c) for c, s in standing.items() if s == status], "and")

    decision = v.get("decision")
    if decision == "only":
        text = f"{W}: the only cell"
    elif decision == "undecided":
        tied = _join([B] + [display_name(c) for c, s in standing.items() if s == "open"], "and")
        text = f"Undecided between {tied} ({B} has the best mean)"
        if who("worse"):
            text += f"; {who('worse')} practically worse"
    else:
        bits = []
        if v["winner"] != v.get("best_mean_cell"):
            bits.append(f"practically equivalent to {B} and cheaper")
        for status, words in (("worse", "practically worse"), ("equivalent", "equivalent, dearer"),
                              ("not better", "not practically better, dearer"),
                              ("failed", "failed")):
            if who(status):
                bits.append(f"{who(status)} {words}")
        text = f"{W} wins" + (": " + "; ".join(bits) if bits else "")
    return text + _baseline_words(v)


def _standing_from_comparisons(v: dict) -> dict[str, str]:
    """A verdict.json from before `standing`: practically worse or not, from its comparisons."""
    out = {v["winner"]: "winner"}
    for comp in v.get("comparisons") or []:
        p = comp.get("probability")
        worse = (p["a_better"] >= LEVEL if p is not None else  # no spread: the sign decides
                 bool(comp.get("degenerate")) and comp["mean_diff"] > (comp.get("rope") or 0))
        if comp["b"] != v["winner"]:
            out[comp["b"]] = "worse" if worse else "open"
    return out


def _baseline_words(v: dict) -> str:
    name = v.get("best_baseline")
    comp = next((c for c in v.get("baseline_comparisons") or [] if c.get("a") == v["winner"]), None)
    if not name or comp is None:
        return ""
    p = comp.get("probability")
    if v.get("beats_best_baseline"):
        return f"; beats the best baseline, {name}"
    if p is not None and p["b_better"] >= LEVEL:
        return f"; the {name} baseline is practically better"
    mean, base = v["cells"][v["winner"]].get("mean"), (v.get("baselines") or {}).get(name)
    if mean is not None and base is not None and (mean > base) == bool(v.get("greater_is_better")):
        return f"; not practically better than the {name} baseline"
    return f"; the {name} baseline scores as well or better"


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


def _broadcast(v, design: Design) -> np.ndarray:
    """A baseline's scores as folds x seeds: a number everywhere, one value per fold repeated
    over the seeds (a deterministic baseline), or the matrix itself."""
    x = np.asarray(v, dtype=float)
    if x.ndim == 0:
        return np.full((design.folds, design.seeds), float(x))
    if x.ndim == 1 and x.size == design.folds:
        return np.repeat(x[:, None], design.seeds, axis=1)
    return x


def _cost(c: CellResult) -> tuple[int, float]:
    return (int(c.n_params), float(c.train_seconds))


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
