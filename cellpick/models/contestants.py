"""The built-in contestants: the models each field trusts, fitted on one Prepared's rows.

`fit_one(name, prep, season=..., fit_on=..., choose_on=...)` fits one (`names_for(prep)` lists
those that fit the task): forecast snaive (naive without a season), ets, arima, theta
(statsforecast; each window's forecast conditions on its series' whole history up to the
origin, parameters fixed) and ridge on lag windows with the cells' preprocessing; classify
minirocket (aeon + RidgeClassifierCV, from MINIROCKET_SGD_FROM samples SGD logistic
regression: one-hot "probabilities"), 1nn, logreg, majority; regress minirocket (RidgeCV, or
SGD least squares), ridge, mean; text tfidf_logreg / tfidf_ridge and majority / mean.
A contestant trains on `fit_on` rows only; its hyperparameters are chosen by fitting on
choose_on[0] and scoring on choose_on[1]. `predict(split, limit)` answers in user units:
forecast (n, H), classify (n, C), regress (n,). `Skip` says it does not apply or is too big.
The fit runs them under engine/isolation.py's contract; docs/contestants.md says why these models.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cellpick.data.prepared import Prepared
from cellpick.models import scaling as scaling_rule
from cellpick.models.cells import forecast_inputs, forecast_outputs, preprocessing

# Size limits (rows of the fit split; samples for sequences). Above them a baseline is
# skipped with a note: each is where its fit or its predictions stop being seconds.
# Each scored window's forecast is a forward pass over its series' history, so a split costs
# windows x rows (measured: docs/contestants.md, "Contestants at size").
STAT_ROWS = {"ets": 20_000, "theta": 5_000, "arima": 20_000}
# AutoARIMA searches seasonal orders only up to this period; above it, it runs non-seasonal
# (its seasonal search grows steeply with the period: docs/contestants.md). AutoETS drops
# periods above 24 itself.
ARIMA_MAX_SEASON = 12
# Forecasts per split of the statistical models: each is a forward pass over its history.
STAT_WINDOWS = 50_000
MINIROCKET_SAMPLES = 20_000  # 10k float32 features per sample
# From this many training samples MiniRocket's head is a linear model trained by SGD on the
# standardised features, as its authors train it on large data (RidgeCV's leave-one-out
# eigendecomposes a 10k x 10k covariance per fit above it: docs/contestants.md).
MINIROCKET_SGD_FROM = 10_000
SGD_EPOCHS = 50  # at most; early stopping on a held-out tenth of the samples ends it sooner
NN_SAMPLES = 50_000  # 1-NN: brute-force distances, fit x predict samples
# 1-NN: stored values (fit samples x steps x features). A split's predictions cost its rows x
# this many multiply-adds (measured: docs/contestants.md, "Contestants at size").
NN_VALUES = 10_000_000
RIDGE_WINDOWS = 100_000  # ridge on windows: evenly spaced windows above this
ALPHAS = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
CS = [0.01, 0.1, 1.0, 10.0]


@dataclass
class Baseline:
    name: str  # "snaive", "ets", "arima", "theta", "ridge", "minirocket", "1nn", "logreg", ...
    # split name of the same prep ("val", "score", "test"; optional limit= as in
    # Prepared.arrays) -> predictions in user units: forecast (n, H); classify (n, C); regress (n,)
    predict: Callable[..., np.ndarray]
    exportable: bool  # a linear model keras_model() writes as a Keras graph
    params: dict  # hyperparameters it chose (on training/validation rows only)
    seconds: float  # fit time, hyperparameter choice included
    fit_rows: int = 0  # rows (series) or samples it was fitted on
    _linear: dict | None = field(default=None, repr=False)  # weights for keras_model
    model: Any = field(default=None, repr=False)  # the fitted library object(s), picklable


def names_for(prep: Prepared) -> list[str]:
    """The built-in contestants that fit prep's task and layout, in the order they run."""
    if prep.task == "forecast":
        return ["snaive", "ets", "arima", "theta", "ridge"]
    classify = prep.task == "classify"
    if prep.kind == "text":
        return ["tfidf_logreg" if classify else "tfidf_ridge", "majority" if classify else "mean"]
    return ["minirocket", "1nn", "logreg", "majority"] if classify else ["minirocket", "ridge", "mean"]




def fit_one(name: str, prep: Prepared, *, season: int | None, fit_on: str = "trainval",
            choose_on: tuple[str, str] = ("train", "val")) -> Baseline:
    """Fit the built-in contestant `name` on `fit_on` (hyperparameters chosen on `choose_on`).
    Raises Skip when it does not apply to or is too big for this data; any other exception
    is a failure. `seconds` is set."""
    os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")  # before statsforecast is imported
    if name not in names_for(prep):
        raise Skip(f"does not apply to {_task_words(prep)}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = _make(name, prep, season, fit_on, choose_on)
    made.seconds = time.perf_counter() - t0
    return made


class Skip(Exception):
    """A contestant that does not apply to or is too big for this data (the message says why)."""


def _task_words(prep: Prepared) -> str:
    if prep.task == "forecast":
        return "a forecast"
    return f"{'text' if prep.kind == 'text' else 'sequence'} {prep.task}"


def _make(name: str, prep: Prepared, season: int | None, fit_on: str,
          choose_on: tuple[str, str]) -> Baseline:
    if prep.task == "forecast":
        s = int(season) if season and int(season) >= 2 else None
        if name == "snaive":
            return _snaive(prep, s, fit_on)
        if name == "ridge":
            return _ridge_windows(prep, fit_on, choose_on)
        return _statistical(prep, name, s or 1, fit_on)
    if name == "minirocket":
        return _minirocket(prep, fit_on)
    if name == "1nn":
        return _one_nn(prep, fit_on)
    if name == "logreg":
        return _logreg(prep, fit_on, choose_on)
    if name == "ridge":
        return _ridge_sequences(prep, fit_on, choose_on)
    if name in ("majority", "mean"):
        return _constant(prep, fit_on)
    return _tfidf(prep, fit_on, choose_on)


# --- forecast -------------------------------------------------------------------------------


def _series_bounds(prep: Prepared) -> np.ndarray:
    starts = prep._series_starts if prep._series_starts is not None else np.zeros(1, "int64")
    return np.append(starts, len(prep._target)).astype("int64")


def _fit_ends(prep: Prepared, split: str) -> dict[int, int]:
    """Per series: the end (exclusive row) of the last target the windows of `split` hold,
    so [series start, end) are exactly the rows those windows see."""
    series, origin = prep.origins(split)
    ends: dict[int, int] = {}
    for i, e in zip(series.tolist(), (origin + prep.horizon).tolist()):
        ends[i] = max(ends.get(i, 0), e)
    return ends


def _snaive(prep: Prepared, season: int | None, fit_on: str) -> Baseline:
    """Each target step repeats the value one season before it (the last value without a
    season), from the series' history before the origin; a window with less than a season
    of history (an early training window when lookback < season) repeats its last value."""
    bounds, h = _series_bounds(prep), prep.horizon
    lag = season or 1
    steps = np.arange(h)
    back = lag - (steps % lag)  # how far before the origin each step's source lies

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        series, origin = prep.origins(split, limit)
        src = origin[:, None] - back[None, :]
        src = np.where(src < bounds[series][:, None], origin[:, None] - 1, src)
        return prep._target[src].astype("float64")

    rows = sum(e - int(bounds[i]) for i, e in _fit_ends(prep, fit_on).items())
    return Baseline("snaive" if season else "naive", predict, False, {"season": lag}, 0.0,
                    fit_rows=rows)


def _statistical(prep: Prepared, name: str, season: int, fit_on: str) -> Baseline:
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    model_cls = {"ets": AutoETS, "arima": AutoARIMA, "theta": AutoTheta}[name]
    bounds, ends = _series_bounds(prep), _fit_ends(prep, fit_on)
    rows = sum(e - int(bounds[i]) for i, e in ends.items())
    if rows > STAT_ROWS[name]:
        raise Skip(f"{rows} rows exceed its limit of {STAT_ROWS[name]}")
    asked = season
    if name == "arima" and season > ARIMA_MAX_SEASON:
        season = 1
    models = {i: model_cls(season_length=season).fit(prep._target[bounds[i]:end].astype("float64"))
              for i, end in ends.items()}
    h = prep.horizon

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        series, origin = prep.origins(split, limit)
        if len(origin) > STAT_WINDOWS:
            raise ValueError(f"{len(origin)} windows exceed {STAT_WINDOWS}; pass a limit")
        out = np.empty((len(origin), h))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for k, (i, o) in enumerate(zip(series.tolist(), origin.tolist())):
                y = prep._target[bounds[i]:o].astype("float64")
                try:
                    out[k] = models[i].forward(y=y, h=h)["mean"]
                except Exception as e:
                    raise ValueError(f"{name}: the window at row {o} has {len(y)} rows of history, "
                                     f"too few for the fitted model ({e})") from e
        return out

    # Scored windows (validation, test, a fold's held-out block) have at least the fit rows as
    # history; an in-sample window may have less than a seasonal model needs (forward fails).
    # Models chosen per series ("ETS(M,A,M)", "ARIMA(0,1,1)(0,1,1)[12]", "Theta"...): the most common.
    params = {"season_length": season, "series": len(ends)}
    if season != asked:
        params["seasonal"] = f"off: period {asked} is above {ARIMA_MAX_SEASON}"
    desc = _model_names(name, models)
    if desc:
        params["model"] = desc
    return Baseline(name, predict, False, params, 0.0, fit_rows=rows, model=models)


def _model_names(name: str, models: dict) -> str:
    from collections import Counter

    names = Counter()
    for m in models.values():
        mod = getattr(m, "model_", None) or {}
        if name == "arima" and "arma" in mod:
            p, q, sp, sq, s, d, sd = mod["arma"]
            names[f"ARIMA({p},{d},{q})({sp},{sd},{sq})[{s}]"] += 1
        elif name == "ets" and "method" in mod:
            names[str(mod["method"])] += 1
        elif name == "theta" and "modeltype" in mod:
            names[str(mod["modeltype"])] += 1
    if not names:
        return ""
    top, count = names.most_common(1)[0]
    return top if count == len(models) else f"{top} ({count} of {len(models)} series)"


# Ridge on lag windows, with the cells' forecast preprocessing (models/scaling.py).


def _ridge_space(prep: Prepared):
    """The cells' (scaling, log): the data-level stage's choice, fixed for ridge as for them."""
    chosen = preprocessing(prep)
    return [(chosen["scaling"], chosen["log"])]


def _z(prep: Prepared, x: np.ndarray, scaling: str, log: bool):
    """Raw windows (n, lookback, F) -> (flattened model input, last value, stats), in float64
    (the cells' rule: scaling.target_inputs)."""
    st = scaling_rule.stats(prep, log)
    z, last = scaling_rule.target_inputs(np, x[:, :, :1].astype("float64"), st, scaling, log)
    if x.shape[2] > 1:
        cov = scaling_rule.covariates(x, prep.x_mean, prep.x_var)
        z = np.concatenate([z, cov.astype("float64")], axis=2)
    return z.reshape(len(z), -1), last, st


def _to_out(prep, x, y, scaling, log):
    """Targets (windows, horizon) in user units -> what the Dense layer must output."""
    _, last, st = _z(prep, x, scaling, log)
    if y.shape != (len(x), prep.horizon):  # a (windows,) target would broadcast against `last`
        raise ValueError(f"ridge targets have shape {y.shape}; a forecast block is "
                         f"(windows, horizon) = ({len(x)}, {prep.horizon})")
    return scaling_rule.from_targets(np, y.astype("float64"), last, st, scaling, log)


def _from_out(prep, x, out, scaling, log):
    """Dense output (windows, horizon) -> forecast in user units, as the graph computes it.
    Any other shape is refused: against `last` (windows, 1) it would broadcast to
    (windows, windows)."""
    _, last, st = _z(prep, x, scaling, log)
    if out.ndim != 2 or out.shape != (len(x), prep.horizon):
        raise ValueError(f"ridge output has shape {out.shape}; a forecast block is "
                         f"(windows, horizon) = ({len(x)}, {prep.horizon})")
    return scaling_rule.to_forecast(np, out, last, st, scaling, log)


def _block(model, z: np.ndarray) -> np.ndarray:
    """A multi-output linear model's predictions as a forecast block (windows, horizon):
    scikit-learn returns (n,) for a one-column target, whatever shape it was fitted on."""
    out = np.asarray(model.predict(z), dtype="float64")
    return out.reshape(len(z), -1)


def _ridge_windows(prep: Prepared, fit_on: str, choose_on: tuple[str, str],
                   space: list[tuple[str, bool]] | None = None) -> Baseline:
    """`space`: the (scaling, log) pairs to choose from; by default the cells' one."""
    from sklearn.linear_model import Ridge

    xa, ya = prep.arrays(choose_on[0], limit=RIDGE_WINDOWS)
    xb, yb = prep.arrays(choose_on[1], limit=RIDGE_WINDOWS)
    best = None
    for scaling, log in space or _ridge_space(prep):
        za = _z(prep, xa, scaling, log)[0]
        ta = _to_out(prep, xa, ya, scaling, log)
        zb = _z(prep, xb, scaling, log)[0]
        for alpha in ALPHAS:
            m = Ridge(alpha=alpha).fit(za, ta)
            with np.errstate(all="ignore"):
                mae = float(np.mean(np.abs(_from_out(prep, xb, _block(m, zb), scaling, log) - yb)))
            if np.isfinite(mae) and (best is None or mae < best[0]):
                best = (mae, scaling, log, alpha)
    if best is None:
        raise ValueError("no preprocessing gave a finite validation score")
    _, scaling, log, alpha = best
    x, y = prep.arrays(fit_on, limit=RIDGE_WINDOWS)
    m = Ridge(alpha=alpha).fit(_z(prep, x, scaling, log)[0], _to_out(prep, x, y, scaling, log))

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        xs, _ = prep.arrays(split, limit)
        return _from_out(prep, xs, _block(m, _z(prep, xs, scaling, log)[0]), scaling, log)

    params = {"scaling": scaling, "log": log, "alpha": alpha, "lookback": prep.lookback,
              "chosen_on": f"{choose_on[0]} -> {choose_on[1]}", "windows": len(x)}
    h = prep.horizon
    linear = {"kind": "forecast", "kernel": np.asarray(m.coef_).reshape(h, -1).T,
              "bias": np.asarray(m.intercept_).reshape(h), "scaling": scaling, "log": log}
    return Baseline("ridge", predict, True, params, 0.0, fit_rows=len(x), _linear=linear,
                    model=m)


# --- labelled sequences -----------------------------------------------------------------------


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype="float64").reshape(len(x), -1)


def _one_hot(labels: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(labels), width))
    out[np.arange(len(labels)), labels.astype(int)] = 1.0
    return out


def _probabilities(model, proba: np.ndarray, width: int) -> np.ndarray:
    """predict_proba over all `width` classes (classes unseen in the fit rows get 0)."""
    out = np.zeros((len(proba), width))
    out[:, np.asarray(model.classes_, dtype=int)] = proba
    return out


def _minirocket(prep: Prepared, fit_on: str) -> Baseline:
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = prep.arrays(fit_on)
    if len(x) > MINIROCKET_SAMPLES:
        raise Skip(f"{len(x)} samples exceed its limit of {MINIROCKET_SAMPLES} "
                    "(10,000 features per sample)")
    if prep.task == "classify" and len(np.unique(y)) < 2:
        raise Skip("a single class in the fit rows")

    def panel(xs: np.ndarray) -> np.ndarray:  # (n, steps, F) -> (n, F, steps >= 9), float32
        xs = np.asarray(xs, dtype="float32").transpose(0, 2, 1)
        if xs.shape[2] < 9:
            xs = np.pad(xs, ((0, 0), (0, 0), (0, 9 - xs.shape[2])))
        return np.ascontiguousarray(xs)

    rocket = MiniRocket(n_kernels=10_000, random_state=0).fit(panel(x))
    features = rocket.transform(panel(x))
    if len(x) >= MINIROCKET_SGD_FROM:
        # Scaled in place: the features are this function's own (n x 10k float32 each copy).
        head = make_pipeline(StandardScaler(copy=False), _sgd_head(prep.task, features.shape[1]))
    else:
        alphas = np.logspace(-3, 3, 10)
        head = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=alphas)
                             if prep.task == "classify" else RidgeCV(alphas=alphas))
    head.fit(features, y)
    del features

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        xs, _ = prep.arrays(split, limit)
        pred = head.predict(rocket.transform(panel(xs)))
        return _one_hot(pred, prep.n_outputs) if prep.task == "classify" else \
            np.asarray(pred, dtype="float64").reshape(-1)

    if len(x) >= MINIROCKET_SGD_FROM:
        sgd = getattr(head[-1], "regressor_", head[-1])
        params = {"kernels": int(rocket.n_kernels_), "head": "sgd", "alpha": float(sgd.alpha),
                  "epochs": int(sgd.n_iter_)}
    else:
        params = {"kernels": int(rocket.n_kernels_), "alpha": float(head[-1].alpha_)}
    if prep.masked:
        params["padded_to"] = int(x.shape[1])
    return Baseline("minirocket", predict, False, params, 0.0, fit_rows=len(x),
                    model={"rocket": rocket, "head": head})


def _sgd_head(task: str, features: int):
    """MiniRocket's head at size: logistic regression (classify) or least squares on the
    standardised target (regress), trained by SGD with early stopping on a held-out tenth, at
    most SGD_EPOCHS epochs, seed 0. The step starts at 1 / features (standardised features
    have a squared norm of about `features`: a larger step diverges on squared loss) and is
    divided by 5 when an epoch does not improve."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    from sklearn.preprocessing import StandardScaler

    sgd = dict(learning_rate="adaptive", eta0=1.0 / max(1, features), early_stopping=True,
               validation_fraction=0.1, n_iter_no_change=5, max_iter=SGD_EPOCHS, tol=1e-3,
               random_state=0)
    if task == "classify":
        return SGDClassifier(loss="log_loss", **sgd)
    return TransformedTargetRegressor(SGDRegressor(**sgd), transformer=StandardScaler())


def _one_nn(prep: Prepared, fit_on: str) -> Baseline:
    from sklearn.neighbors import KNeighborsClassifier

    x, y = prep.arrays(fit_on)
    if len(x) > NN_SAMPLES:
        raise Skip(f"{len(x)} samples exceed its limit of {NN_SAMPLES}")
    values = len(x) * int(np.prod(x.shape[1:]))
    if values > NN_VALUES:
        raise Skip(f"{len(x)} samples x {values // len(x)} values exceed its limit of "
                   f"{NN_VALUES:,} values (every prediction is a distance to each of them)")
    m = KNeighborsClassifier(n_neighbors=1).fit(_flat(x), y)

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        xs, _ = prep.arrays(split, limit)
        return _probabilities(m, m.predict_proba(_flat(xs)), prep.n_outputs)

    return Baseline("1nn", predict, False, {"distance": "euclidean"}, 0.0, fit_rows=len(x),
                    model=m)


def _choose(make, xa, ya, xb, yb, grid, better):
    """The grid value whose model, fitted on (xa, ya), scores best on (xb, yb)."""
    best = None
    for v in grid:
        s = better(make(v).fit(xa, ya), xb, yb)
        if best is None or s > best[0]:
            best = (s, v)
    return best[1]


def _linear_weights(pipe) -> tuple[np.ndarray, np.ndarray]:
    """StandardScaler + linear model -> (kernel (D, K), bias (K,)) on raw flattened input."""
    scaler, lin = pipe[0], pipe[-1]
    coef = np.atleast_2d(lin.coef_)  # (K, D)
    scale = scaler.scale_
    kernel = (coef / scale[None, :]).T
    bias = np.atleast_1d(lin.intercept_) - coef @ (scaler.mean_ / scale)
    return kernel, bias


def _logreg(prep: Prepared, fit_on: str, choose_on: tuple[str, str]) -> Baseline:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xa, ya = prep.arrays(choose_on[0])
    xb, yb = prep.arrays(choose_on[1])
    x, y = prep.arrays(fit_on)
    if len(np.unique(ya)) < 2 or len(np.unique(y)) < 2:
        raise Skip("a single class in the fit rows")

    def make(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))

    c = _choose(make, _flat(xa), ya, _flat(xb), yb, CS,
                lambda m, xv, yv: float(np.mean(m.predict(xv) == yv)))
    m = make(c).fit(_flat(x), y)

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        xs, _ = prep.arrays(split, limit)
        return _probabilities(m[-1], m.predict_proba(_flat(xs)), prep.n_outputs)

    kernel, bias = _linear_weights(m)
    if kernel.shape[1] == 1:  # binary: p(class 1) = sigmoid(w.x + b) = softmax([0, w.x + b])
        kernel = np.concatenate([np.zeros_like(kernel), kernel], axis=1)
        bias = np.concatenate([[0.0], bias])
    full_k = np.zeros((kernel.shape[0], prep.n_outputs))
    full_b = np.full(prep.n_outputs, -1e9)  # classes absent from the fit rows: probability 0
    cls = np.asarray(m[-1].classes_, dtype=int)
    full_k[:, cls], full_b[cls] = kernel, bias
    linear = {"kind": "classify", "kernel": full_k, "bias": full_b}
    return Baseline("logreg", predict, not prep.masked, {"C": c}, 0.0, fit_rows=len(x),
                    _linear=linear, model=m)


def _ridge_sequences(prep: Prepared, fit_on: str, choose_on: tuple[str, str]) -> Baseline:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xa, ya = prep.arrays(choose_on[0])
    xb, yb = prep.arrays(choose_on[1])
    x, y = prep.arrays(fit_on)

    def make(a):
        return make_pipeline(StandardScaler(), Ridge(alpha=a))

    alpha = _choose(make, _flat(xa), ya, _flat(xb), yb, ALPHAS,
                    lambda m, xv, yv: -float(np.mean(np.abs(m.predict(xv) - yv))))
    m = make(alpha).fit(_flat(x), y)

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        xs, _ = prep.arrays(split, limit)
        return np.asarray(m.predict(_flat(xs)), dtype="float64").reshape(-1)

    kernel, bias = _linear_weights(m)
    linear = {"kind": "regress", "kernel": kernel, "bias": bias}
    return Baseline("ridge", predict, not prep.masked, {"alpha": alpha}, 0.0, fit_rows=len(x),
                    _linear=linear, model=m)


def _constant(prep: Prepared, fit_on: str) -> Baseline:
    """majority class (classify) or training mean (regress): what knowing nothing scores."""
    _, y = prep.arrays(fit_on)
    if prep.task == "classify":
        counts = np.bincount(y.astype(int), minlength=prep.n_outputs)
        value, name, params = _one_hot(np.array([counts.argmax()]), prep.n_outputs)[0], \
            "majority", {"class": int(counts.argmax())}
    else:
        value, name, params = float(np.mean(y)), "mean", {"value": float(np.mean(y))}

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        n = len(prep.arrays(split, limit)[1])
        return np.tile(value, (n, 1)) if prep.task == "classify" else np.full(n, value)

    return Baseline(name, predict, False, params, 0.0, fit_rows=len(y), model=value)


# --- text -------------------------------------------------------------------------------------


def _tfidf(prep: Prepared, fit_on: str, choose_on: tuple[str, str]) -> Baseline:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline

    classify = prep.task == "classify"
    xa, ya = prep.arrays(choose_on[0])
    xb, yb = prep.arrays(choose_on[1])
    x, y = prep.arrays(fit_on)
    if classify and (len(np.unique(ya)) < 2 or len(np.unique(y)) < 2):
        raise Skip("a single class in the fit rows")

    def make(v):
        head = LogisticRegression(C=v, max_iter=1000) if classify else Ridge(alpha=v)
        return make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1,
                                             max_features=100_000), head)

    def score(m, xv, yv):
        pred = m.predict(list(xv))
        return float(np.mean(pred == yv)) if classify else -float(np.mean(np.abs(pred - yv)))

    v = _choose(make, list(xa), ya, list(xb), yb, CS if classify else ALPHAS, score)
    m = make(v).fit(list(x), y)

    def predict(split: str, limit: int | None = None) -> np.ndarray:
        xs, _ = prep.arrays(split, limit)
        if classify:
            return _probabilities(m[-1], m.predict_proba(list(xs)), prep.n_outputs)
        return np.asarray(m.predict(list(xs)), dtype="float64").reshape(-1)

    name = "tfidf_logreg" if classify else "tfidf_ridge"
    return Baseline(name, predict, False, {"C" if classify else "alpha": v, "ngrams": "1-2"},
                    0.0, fit_rows=len(x), model=m)


# --- export -----------------------------------------------------------------------------------


def keras_model(prep: Prepared, baseline: Baseline):
    """The exportable baseline as the Keras model cells.export_model would give for a cell:
    input `prep.input_name` of shape `prep.input_shape` (raw values), preprocessing inside
    the graph, one Dense layer over the flattened window/sequence, output `forecast` (n, H)
    in user units, `probabilities` (n, C), or `prediction` (n, 1) in user units."""
    import keras

    lin = baseline._linear
    if not baseline.exportable or lin is None:
        raise ValueError(f"the '{baseline.name}' baseline is not exportable")
    inputs = keras.Input(shape=prep.input_shape, name=prep.input_name, dtype=prep.input_dtype)
    kernel = np.asarray(lin["kernel"], dtype="float32")
    bias = np.asarray(lin["bias"], dtype="float32")
    dense = keras.layers.Dense(kernel.shape[1], name="linear_path",
                               activation="softmax" if lin["kind"] == "classify" else None)
    name = f"cellpick_{baseline.name}"
    if lin["kind"] != "forecast":
        out = dense(keras.layers.Flatten(name="flat_sequence")(inputs))
        dense.set_weights([kernel, bias])
        if lin["kind"] == "classify":
            return keras.Model(inputs, keras.layers.Identity(name="probabilities")(out), name=name)
        return keras.Model(inputs, keras.layers.Identity(name="prediction")(out), name=name)

    # Forecast: cells._forecast's preprocessing, with the Dense in place of the cells.
    scaling, log = lin["scaling"], bool(lin["log"])
    z, last = forecast_inputs(prep, inputs, scaling, log)
    out = dense(keras.layers.Flatten(name="flat_window")(z))
    dense.set_weights([kernel, bias])
    u_hat = forecast_outputs(prep, out, last, scaling, log)
    return keras.Model(inputs, keras.layers.Identity(name="forecast")(u_hat), name=name)


def describe(baseline: Baseline) -> dict[str, Any]:
    """What MLflow and cellpick.json record about a baseline."""
    return {"name": baseline.name, "exportable": baseline.exportable, "params": baseline.params,
            "seconds": round(baseline.seconds, 3), "fit_rows": baseline.fit_rows}


def chosen(prep, names: list[str] | None) -> list[str]:
    """The contestants to run on prep: all built-ins that fit it, or `names` (a built-in
    that does not fit prep's task raises ValueError)."""
    fits = names_for(prep)
    if names is None:
        return fits
    wrong = [n for n in names if ":" not in n and n not in fits]
    if wrong:
        raise ValueError(f"contestant '{wrong[0]}' does not apply to {_task_words(prep)}; "
                         f"those that do are {', '.join(fits)}")
    return list(dict.fromkeys(names))
