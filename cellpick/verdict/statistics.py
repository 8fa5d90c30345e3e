"""Scores, intervals and paired comparisons: plain arithmetic on folds x seeds matrices.

`score` is the one metric function of cells and contestants (MAE or accuracy, in original
units). Every comparison is the Bayesian correlated t-test (Benavoli et al. 2017, the Bayesian
form of Nadeau and Bengio's corrected resampled t-test): the mean difference has a Student
posterior with n - 1 degrees of freedom and variance s^2 (1/n + rho/(1 - rho)), where
rho = 1/folds (`Design.rho`; 0 for the seeds of one split) and a rolling origin's seeds are
averaged first. Probabilities are posterior probabilities of practical differences (within
or beyond the ROPE), not p-values. Why this test and this rho: docs/verdict.md.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from cellpick.errors import ConfigError
from cellpick.vocab import METRICS, format_score


def _check_task(task: str) -> None:
    if task not in METRICS:
        raise ConfigError(
            f"The 'task' option must be one of {sorted(METRICS)}. Got {task!r} instead."
        )


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


LEVEL = 0.95  # the level of every interval, and the probability a decision needs


BOUNDS = {"accuracy": (0.0, 1.0), "mae": (0.0, math.inf)}  # where a metric can lie


KINDS = ("rolling-origin", "repeated-stratified-kfold", "repeated-kfold", "single-split")


@dataclass(frozen=True)
class Design:
    """How the folds x seeds scores were produced, as far as the statistics need it."""

    kind: str
    folds: int
    seeds: int

    @classmethod
    def of(cls, resampling, seeds: int) -> "Design":
        """From a `data.folds.Resampling`, a dict with kind/folds/seeds, a Design, or None (the
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
        """Correlation between two folds' differences: 1/folds, 0 for one split (docs/verdict.md)."""
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
    (the module notes): variance s^2 (1/n + rho/(1 - rho)), n - 1 degrees of freedom.
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


def _broadcast(v, design: Design) -> np.ndarray:
    """A baseline's scores as folds x seeds: a number everywhere, one value per fold repeated
    over the seeds (a deterministic baseline), or the matrix itself."""
    x = np.asarray(v, dtype=float)
    if x.ndim == 0:
        return np.full((design.folds, design.seeds), float(x))
    if x.ndim == 1 and x.size == design.folds:
        return np.repeat(x[:, None], design.seeds, axis=1)
    return x
