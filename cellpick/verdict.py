"""Scores, intervals, paired comparisons, the parsimony rule and the baselines.

Pure numpy/scipy/scikit-learn: no TensorFlow, no MLflow. The pipeline trains the cells and
hands their per-seed validation scores to `decide`; everything here is plain arithmetic on
arrays in original units, so cells and baselines are scored by the same `score` function.

Conventions:
- A score list holds one validation score per seed, in seed order, so lists of different
  cells pair up by position. A seed that failed is NaN: it is left out of that cell's mean and
  interval, and its pairs are left out of the comparisons.
- `compare(...)["mean_diff"]` is how much better `a` is than `b` on average, in metric units
  (a - b for accuracy, b - a for MAE): positive means `a` is better.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import stats

from .errors import ConfigError
from .vocab import METRICS, display_name, metric_label

Predictor = Callable[[np.ndarray], np.ndarray]


def _check_task(task: str) -> None:
    if task not in METRICS:
        raise ConfigError(
            f"The 'task' option must be one of {sorted(METRICS)}. Got {task!r} instead."
        )


# --- scores -------------------------------------------------------------------------------


def score(task: str, y_true, y_pred) -> float:
    """The task's metric (see METRICS) on one split, in original units.

    forecast/regress: mean absolute error over all elements; y_true and y_pred have the same
    number of elements ((n, H) or (n,)). classify: accuracy; y_true holds integer class
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


MIN_PAIRS = 3  # paired seeds needed for a significance test (see compare)
BOUNDS = {"accuracy": (0.0, 1.0), "mae": (0.0, math.inf)}  # where a metric can lie


def interval(scores, level: float = 0.95,
             bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, tuple[float, float]]:
    """Mean and Student-t confidence interval of the mean over seeds.

    NaN scores (failed seeds) are left out. With one score there is no spread to estimate:
    the interval is (mean, mean), which says "unknown", not "exact". Constant scores give a
    zero-width interval. No finite score gives NaN everywhere. The interval is clipped to
    `bounds`, the metric's possible range (an accuracy interval never passes 1).
    """
    x = np.asarray(scores, dtype=float).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, (math.nan, math.nan)
    mean = float(x.mean())
    if x.size == 1:
        return mean, (mean, mean)
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, (max(mean - half, bounds[0]), min(mean + half, bounds[1]))


def compare(
    a, b, greater_is_better: bool, *, a_name: str = "a", b_name: str = "b"
) -> dict:
    """Paired comparison of two cells' seed scores (seed i of `a` with seed i of `b`).

    Returns {a: a_name, b: b_name, test, p_value, mean_diff}. test is "paired t-test"
    (scipy.stats.ttest_rel, two-sided). mean_diff is how much better `a` is than `b` on
    average in metric units (positive: `a` better; the sign follows `greater_is_better`).
    Pairs with a NaN on either side are dropped. Fewer than MIN_PAIRS pairs: no test
    (test "none (one seed)" or "none (2 seeds: too few)", p_value NaN): a t-test on two
    pairs has one degree of freedom (critical t 12.7) and calls nothing significant, so
    the parsimony rule would always crown the cheapest cell, however much worse. When every difference is the same (up to
    rounding) the t statistic is 0/0 or x/0: p_value is 1.0 when that difference is 0 and
    0.0 otherwise (the limit).
    """
    x = np.asarray(a, dtype=float).reshape(-1)
    y = np.asarray(b, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(
            f"paired comparison needs one score per seed on both sides; got {x.size} for "
            f"{a_name!r} and {y.size} for {b_name!r}."
        )
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    diff = (x - y) if greater_is_better else (y - x)
    mean_diff = float(diff.mean()) if diff.size else math.nan
    if diff.size < MIN_PAIRS:
        test = "none (one seed)" if diff.size < 2 else f"none ({diff.size} seeds: too few)"
        return dict(a=a_name, b=b_name, test=test, p_value=math.nan, mean_diff=mean_diff)
    if np.ptp(diff) <= 1e-9 * float(np.abs(diff).max()):
        # Equal up to rounding (0.82 - 0.52 vs 0.8 - 0.5): scipy would report noise.
        p_value = 1.0 if float(np.abs(diff).max()) == 0.0 else 0.0
    else:
        p_value = float(stats.ttest_rel(x, y).pvalue)
    return dict(a=a_name, b=b_name, test="paired t-test", p_value=p_value,
                mean_diff=mean_diff)


# --- the verdict --------------------------------------------------------------------------


@dataclass
class CellResult:
    """The best configuration of one cell, retrained with K seeds.

    scores: one validation score per seed, in seed order (NaN for a failed seed).
    """

    cell: str
    config: dict
    scores: list[float]
    n_params: int
    train_seconds: float


@dataclass
class Verdict:
    """The outcome of `decide`, as written to verdict.json by `to_dict`.

    cells:        {cell: {config, scores, mean, ci95: [lo, hi], n_params, train_seconds}}
    comparisons:  best-mean cell (a) against each other cell (b); see `compare`.
    baselines:    {name: validation score}; best_baseline: its best name or None.
    winner:       the chosen cell; best_mean_cell: the cell with the best mean score.
    reason:       plain sentences: why the winner won and how it stands against baselines.
    beats_best_baseline: winner's mean strictly better than the best baseline; None when
                  there are no baselines.
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

    def to_dict(self) -> dict:
        """JSON-ready: plain Python types only, NaN and infinities as None."""
        return _plain(
            {
                "metric": self.metric,
                "greater_is_better": self.greater_is_better,
                "cells": self.cells,
                "comparisons": self.comparisons,
                "baselines": self.baselines,
                "best_baseline": self.best_baseline,
                "winner": self.winner,
                "best_mean_cell": self.best_mean_cell,
                "reason": self.reason,
                "beats_best_baseline": self.beats_best_baseline,
                "test_score": self.test_score,
            }
        )

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """Read back what `to_dict` wrote (e.g. verdict.json of a past fit)."""
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def decide(
    cells: list[CellResult],
    metric: str,
    greater_is_better: bool,
    baselines: dict[str, float] | None = None,
    alpha: float = 0.05,
) -> Verdict:
    """Pick the winning cell: the best mean, unless a cheaper cell is not significantly worse.

    The best-mean cell is compared, paired by seed, with every other cell. A cell is cheaper
    when it has fewer parameters, or as many and less training time. Among the cheaper cells
    whose paired test gives p >= alpha and whose mean lies inside the best cell's 95%
    interval, the cheapest wins; with no such cell (or fewer than MIN_PAIRS seeds, so no
    test) the best mean wins. The interval condition guards against a test too weak to see
    a real gap: with 3 seeds, GRU at [1.0, 1.0, 1.0] against SimpleRNN at [1.0, 0.9, 0.6]
    gives p = 0.30, yet SimpleRNN's mean 0.83 lies far outside GRU's interval [1.0, 1.0]. Ties in the mean go to the cheaper cell. Baselines only
    inform the reason and `beats_best_baseline`; they never win.
    """
    if not cells:
        raise ValueError("decide needs at least one cell result; got none.")
    names = [c.cell for c in cells]
    if len(set(names)) != len(names):
        raise ValueError(f"each cell may appear once in decide; got {names}.")
    n_seeds = {len(c.scores) for c in cells}
    if len(n_seeds) != 1:
        raise ValueError(
            "every cell needs one score per seed (NaN for a failed seed); got "
            + ", ".join(f"{c.cell}: {len(c.scores)}" for c in cells)
            + "."
        )

    summary = {c.cell: interval(c.scores, bounds=BOUNDS.get(metric, (-math.inf, math.inf)))
               for c in cells}
    sign = 1.0 if greater_is_better else -1.0

    def rank(c: CellResult):
        mean = summary[c.cell][0]
        # Failed cells (no finite score) rank last; equal means go to the cheaper cell.
        return (not math.isfinite(mean), -sign * mean if math.isfinite(mean) else 0.0,
                _cost(c))

    ranked = sorted(cells, key=rank)
    best = ranked[0]
    if not math.isfinite(summary[best.cell][0]):
        raise ValueError("no cell has a finite score: every seed of every cell failed.")

    comparisons = [
        compare(best.scores, c.scores, greater_is_better, a_name=best.cell, b_name=c.cell)
        for c in ranked[1:]
    ]
    cheaper = [c for c in ranked[1:] if _cost(c) < _cost(best)]
    within_noise = [
        c for c in cheaper
        if _p_of(comparisons, c.cell) >= alpha  # NaN (no test) compares False
        and _inside(summary[c.cell][0], summary[best.cell][1], greater_is_better)
    ]
    winner = min(within_noise, key=_cost) if within_noise else best

    baselines = {str(k): float(v) for k, v in (baselines or {}).items()}
    finite_baselines = {k: v for k, v in baselines.items() if math.isfinite(v)}
    best_baseline = (
        min(finite_baselines, key=lambda k: -sign * finite_baselines[k])
        if finite_baselines else None
    )

    label = metric_label(metric)
    reason = _cell_sentence(best, winner, ranked, comparisons, summary, label, alpha,
                            greater_is_better)
    beats = None
    if best_baseline is not None:
        beats, sentence = _baseline_sentence(
            summary[winner.cell], baselines[best_baseline], best_baseline, metric, label,
            greater_is_better,
        )
        reason = f"{reason} {sentence}"

    cell_table = {
        c.cell: {
            "config": dict(c.config),
            "scores": [float(s) for s in c.scores],
            "mean": summary[c.cell][0],
            "ci95": list(summary[c.cell][1]),
            "n_params": int(c.n_params),
            "train_seconds": float(c.train_seconds),
        }
        for c in ranked
    }
    return Verdict(
        metric=metric,
        greater_is_better=bool(greater_is_better),
        cells=cell_table,
        comparisons=comparisons,
        baselines=baselines,
        best_baseline=best_baseline,
        winner=winner.cell,
        best_mean_cell=best.cell,
        reason=reason,
        beats_best_baseline=beats,
    )


def _cost(c: CellResult) -> tuple[int, float]:
    return (int(c.n_params), float(c.train_seconds))


def _p_of(comparisons: list[dict], cell: str) -> float:
    return next(c["p_value"] for c in comparisons if c["b"] == cell)


def _inside(mean: float, ci: tuple[float, float], greater_is_better: bool) -> bool:
    """Is `mean` no worse than the worse end of interval `ci`?"""
    return mean >= ci[0] - 1e-12 if greater_is_better else mean <= ci[1] + 1e-12


def _cell_sentence(best, winner, ranked, comparisons, summary, label, alpha,
                   greater_is_better=True) -> str:
    best_name, best_mean = display_name(best.cell), summary[best.cell][0]
    n_seeds = int(np.isfinite(np.asarray(best.scores, dtype=float)).sum())
    if len(ranked) == 1:
        return (f"{best_name} is the only cell: validation {label} {format_score(best_mean)} "
                f"({_seeds(n_seeds)}).")
    if all(math.isnan(c["p_value"]) for c in comparisons):
        why = "One seed" if len(best.scores) == 1 else "Too few paired seeds"
        return (f"{why}: no significance test; {best_name} has the best validation "
                f"{label} {format_score(best_mean)}.")
    if winner is not best:
        p = _p_of(comparisons, winner.cell)
        return (f"{display_name(winner.cell)} and {best_name} are within noise ({_p(p)}); "
                f"{display_name(winner.cell)} wins with {_savings(winner, best)}.")
    cheaper = [c for c in ranked[1:] if _cost(c) < _cost(best)]
    head = f"{best_name} wins with the best validation {label} {format_score(best_mean)}"
    if not cheaper:
        return f"{head} and no cell is cheaper ({_seeds(n_seeds)})."
    tested = [c for c in cheaper if not math.isnan(_p_of(comparisons, c.cell))]
    untested = [c for c in cheaper if c not in tested]
    parts = []
    significant = [c for c in tested if _p_of(comparisons, c.cell) < alpha]
    outside = [c for c in tested if c not in significant]
    if significant:
        worse = ", ".join(
            f"{display_name(c.cell)} {_p(_p_of(comparisons, c.cell))}" for c in significant
        )
        if outside or untested:
            parts.append(f"significantly worse at {alpha:g}: {worse}")
        else:
            parts.append(f"every cheaper cell is significantly worse at {alpha:g} ({worse})")
    if outside:
        low, high = summary[best.cell][1]
        parts.append(
            ", ".join(f"{display_name(c.cell)} ({label} {format_score(summary[c.cell][0])}, "
                      f"{_p(_p_of(comparisons, c.cell))})" for c in outside)
            + f" not significantly worse, but outside {best_name}'s 95% interval "
            f"[{format_score(low)}, {format_score(high)}]"
        )
    if untested:
        parts.append(
            "too few paired seeds to test "
            + ", ".join(display_name(c.cell) for c in untested)
        )
    return f"{head}; " + "; ".join(parts) + "."


def _baseline_sentence(winner_summary, base, base_name, metric, label, greater_is_better):
    mean, (lo, hi) = winner_summary
    better = (mean > base) if greater_is_better else (mean < base)
    what = f"the best baseline ({base_name}, {label} {format_score(base)})"
    if mean == base:
        return False, f"{what[0].upper()}{what[1:]} is as good: consider it."
    if better:
        sentence = f"It beats {what} by {_gap(mean, base, metric)}"
        if lo < base < hi:
            sentence += (", though the baseline lies inside its 95% interval "
                         f"[{format_score(lo)}, {format_score(hi)}]")
        return True, sentence + "."
    gap = _gap(base, mean, metric)
    return False, f"{what[0].upper()}{what[1:]} is better by {gap}: consider it."


def _gap(winner: float, loser: float, metric: str) -> str:
    """'A is better than B by X%': X is the gap relative to B, the one being beaten."""
    if metric == "accuracy":
        return f"{abs(winner - loser) * 100:.1f} percentage points"
    if loser == 0:
        return format_score(abs(winner - loser))
    return _pct(abs(winner - loser) / abs(loser))


def _savings(cheap: CellResult, best: CellResult) -> str:
    if cheap.n_params < best.n_params:
        text = f"{_pct(1 - cheap.n_params / best.n_params)} fewer parameters"
    else:
        text = "as many parameters"
    if best.train_seconds > 0 and cheap.train_seconds != best.train_seconds:
        change = cheap.train_seconds / best.train_seconds - 1
        text += (f" and {_pct(-change)} less training time" if change < 0
                 else f" (though {_pct(change)} more training time)")
    return text


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _pct(fraction: float) -> str:
    pct = round(fraction * 100)
    return "<1%" if pct == 0 and fraction > 0 else f"{pct}%"


def _p(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


def format_score(x) -> str:
    """Three significant digits, no scientific notation for everyday sizes; '' when missing."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(x):
        return ""
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.{2 if a < 10 else 1}f}"
    if a >= 0.01 or a == 0:
        return f"{x:.3f}"
    return f"{x:.3g}"



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


# --- baselines ----------------------------------------------------------------------------


def fit_baselines(
    task: str,
    X_train,
    y_train,
    season: int | None = None,
    n_classes: int | None = None,
) -> dict[str, Predictor]:
    """Fit the task's scikit-learn baselines; returns {name: predict(X) -> y_pred}.

    X is (n, steps, features) in original units (zero-padded when lengths vary); feature 0
    is the target for forecast. Predictions have the shape `score` expects: forecast (n, H)
    (or (n,) when y_train is 1-D), classify (n, C) probabilities with C = n_classes or
    max(y_train) + 1, regress (n,).

    forecast: naive (last target value, repeated), snaive (needs 2 <= season <= steps; left
    out otherwise), ridge (RidgeCV on the standardised flattened window, multi-output).
    classify: majority, 1nn (1-NN on the flattened sequence), logreg (standardised; left out
    with a single training class). regress: mean, ridge.
    """
    _check_task(task)
    X_train = _as_3d(X_train)
    y_train = np.asarray(y_train)
    if len(X_train) != len(y_train):
        raise ValueError(
            f"X_train has {len(X_train)} samples but y_train has {len(y_train)}."
        )
    if task == "forecast":
        return _fit_forecast(X_train, y_train.astype(float), season)
    if task == "classify":
        return _fit_classify(X_train, y_train.astype(int), n_classes)
    return _fit_regress(X_train, y_train.astype(float).reshape(-1))


def score_baselines(task: str, fitted: dict[str, Predictor], X, y) -> dict[str, float]:
    """Score each fitted baseline on (X, y) with `score`."""
    X = _as_3d(X)
    return {name: score(task, y, predict(X)) for name, predict in fitted.items()}


def baselines(
    task: str, X_train, y_train, X_val, y_val, season: int | None = None
) -> dict[str, float]:
    """Fit the baselines on the training split and score them on the validation split."""
    n_classes = None
    if task == "classify":
        n_classes = int(max(np.max(y_train), np.max(y_val))) + 1
    fitted = fit_baselines(task, X_train, y_train, season=season, n_classes=n_classes)
    return score_baselines(task, fitted, X_val, y_val)


def _as_3d(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:  # (n, steps): a single feature
        X = X[:, :, None]
    if X.ndim != 3:
        raise ValueError(f"X must be shaped (n, steps, features); got shape {X.shape}.")
    return X


def _flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)


def _ridge():
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))


def _fit_forecast(X, y, season) -> dict[str, Predictor]:
    one_d = y.ndim == 1
    y2 = y.reshape(len(y), -1)
    horizon, steps = y2.shape[1], X.shape[1]

    def shaped(pred: np.ndarray) -> np.ndarray:
        return pred[:, 0] if one_d else pred

    def naive(Xn):
        Xn = _as_3d(Xn)
        return shaped(np.repeat(Xn[:, -1:, 0], horizon, axis=1))

    fitted: dict[str, Predictor] = {"naive": naive}
    if season is not None and 2 <= int(season) <= steps:
        s = int(season)
        cols = [steps - s + (h % s) for h in range(horizon)]
        fitted["snaive"] = lambda Xn: shaped(_as_3d(Xn)[:, cols, 0])
    ridge = _ridge().fit(_flat(X), y2)
    fitted["ridge"] = lambda Xn: shaped(
        np.asarray(ridge.predict(_flat(_as_3d(Xn)))).reshape(-1, horizon)
    )
    return fitted


def _fit_classify(X, y, n_classes) -> dict[str, Predictor]:
    from sklearn.dummy import DummyClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    width = int(n_classes) if n_classes is not None else int(y.max()) + 1
    flat = _flat(X)
    models = {
        "majority": DummyClassifier(strategy="most_frequent"),
        "1nn": KNeighborsClassifier(n_neighbors=1),
    }
    if len(np.unique(y)) > 1:
        models["logreg"] = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    fitted: dict[str, Predictor] = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            # A baseline that has not fully converged is still a fair baseline.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(flat, y)
        fitted[name] = _probabilities(model, width)
    return fitted


def _probabilities(model, width: int) -> Predictor:
    """Spread predict_proba over all `width` classes (unseen classes get probability 0)."""
    classes = np.asarray(model.classes_, dtype=int)

    def predict(Xn):
        proba = model.predict_proba(_flat(_as_3d(Xn)))
        out = np.zeros((len(proba), max(width, int(classes.max()) + 1)))
        out[:, classes] = proba
        return out

    return predict


def _fit_regress(X, y) -> dict[str, Predictor]:
    from sklearn.dummy import DummyRegressor

    flat = _flat(X)
    mean = DummyRegressor(strategy="mean").fit(flat, y)
    ridge = _ridge().fit(flat, y)
    return {
        "mean": lambda Xn: mean.predict(_flat(_as_3d(Xn))),
        "ridge": lambda Xn: np.asarray(ridge.predict(_flat(_as_3d(Xn)))).reshape(-1),
    }


# --- seasonality --------------------------------------------------------------------------


def detect_season(y, max_lag: int) -> int | None:
    """The seasonal period of a training target from its autocorrelation, or None.

    The series is detrended with a least-squares line (a trend would otherwise dominate every
    lag). A lag in 2..max_lag (at most half the length) is a candidate when its ACF is a local
    maximum, exceeds max(0.3, 2.5/sqrt(n)) (noise alone rarely does) and rises at least 0.3
    above the lowest ACF at a shorter lag (a real cycle dips between peaks; a slow drift
    does not). The candidate with the highest ACF wins, except that a candidate dividing it
    with at least 80% of its ACF wins instead (12 rather than its multiple 24).
    """
    y = np.asarray(y, dtype=float).reshape(-1)
    y = y[np.isfinite(y)]
    n = len(y)
    max_lag = min(int(max_lag), n // 2)
    if max_lag < 2:
        return None
    t = np.arange(n)
    x = y - np.polyval(np.polyfit(t, y, 1), t)
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 1e-12 * max(1.0, float(np.dot(y, y))):
        return None
    nlags = min(max_lag + 1, n - 1)
    acf = np.array([1.0] + [float(np.dot(x[k:], x[:-k])) / denom for k in range(1, nlags + 1)])
    threshold = max(0.3, 2.5 / math.sqrt(n))
    candidates = {}
    for k in range(2, max_lag + 1):
        peak = acf[k] > acf[k - 1] and (k + 1 >= len(acf) or acf[k] >= acf[k + 1])
        if peak and acf[k] > threshold and acf[k] - acf[1:k].min() >= 0.3:
            candidates[k] = acf[k]
    if not candidates:
        return None
    best = max(candidates, key=candidates.get)
    for k in sorted(candidates):
        if k < best and candidates[k] >= 0.8 * candidates[best]:
            ratio = best / k
            if abs(ratio - round(ratio)) < 0.1:
                return k
    return best
