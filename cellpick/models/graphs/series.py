"""Seasonal naive, ETS, ARIMA and Theta as Keras graphs over a series' whole raw history.

`keras_model(prep, baseline, series_keys=None)` builds the graph from the fitted
statsforecast models' own parameters (never refitted) and reruns in float64 what `forward`
runs over each history, then the forecast. Endpoints (docs/graphs-series.md, "The
SavedModel contract"):
  serving_default  history (batch, steps) float64, NaN right-padded [, series_id (batch,)
                   string for panels] -> forecast (batch, H) in user units; NaN where the
                   library would refuse the history (`min_history`) or the key is unknown.
  rolling          one history (steps,) [, series_id ()] -> forecast (steps, H) and origin
                   (steps,): row t is the forecast from the first t + 1 values.
`graph_inputs(prep, split, limit)` gives a split's serving inputs, `input_meta(model)` what
cellpick.json records as `input`, `endpoints(model)` the SavedModel's tf.functions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cellpick.models.graphs import NotExportable

HISTORY, KEY = "history", "series_id"
TOL, HUGEN = 1e-10, 1e10  # statsforecast's ETS guards (etscalc)

def series_keys(dataset) -> list[str] | None:
    """The id column's values as text, in the order of prep's series (first appearance);
    None for a single series."""
    if not getattr(dataset, "id", None):
        return None
    return [str(k) for k in dataset.frame[dataset.id].drop_duplicates()]


def _bounds(prep) -> np.ndarray:
    starts = prep._series_starts if prep._series_starts is not None else np.zeros(1, "int64")
    return np.append(starts, len(prep._target)).astype("int64")


def _keys(prep, series_keys) -> list[str] | None:
    n = len(_bounds(prep)) - 1
    if n == 1:
        return None
    keys = [str(i) for i in range(n)] if series_keys is None else [str(k) for k in series_keys]
    if len(keys) != n or len(set(keys)) != n:
        raise ValueError(f"series_keys: expected {n} distinct keys (one per series), got {len(keys)}")
    return keys


def graph_inputs(prep, split: str, limit: int | None = None,
                 series_keys: list | None = None) -> dict[str, np.ndarray]:
    """The serving inputs for the windows of `split` (as prep.origins(split, limit) orders
    them): `history`, each window's series from its first row up to the origin (float64 of
    the stored float32 target, NaN right-padded), and for panels `series_id`."""
    series, origin = prep.origins(split, limit)
    bounds = _bounds(prep)
    lengths = origin - bounds[series]
    out = np.full((len(origin), int(lengths.max()) if len(origin) else 0), np.nan)
    for k, (i, o) in enumerate(zip(series.tolist(), origin.tolist())):
        out[k, : lengths[k]] = prep._target[bounds[i]:o].astype("float64")
    inputs = {HISTORY: out}
    keys = _keys(prep, series_keys)
    if keys is not None:
        inputs[KEY] = np.asarray([keys[i] for i in series.tolist()], dtype=object)
    return inputs


# --- parameters from the fitted models -------------------------------------------------------


def _ets_params(models: dict, n: int) -> dict[str, Any]:
    ms = {int(models[i].model_["m"]) for i in range(n)}
    comps = [models[i].model_["components"] for i in range(n)]
    if any(c[1] == "M" for c in comps):
        raise NotExportable("ETS with a multiplicative trend has no graph here")
    m = max(ms)
    if len(ms) != 1 and any(c[2] != "N" for c in comps):
        raise NotExportable(f"ETS series with different seasons {sorted(ms)}")
    cols: dict[str, list] = {k: [] for k in ("alpha", "beta", "gamma", "phi", "trend", "season",
                                              "l0", "b0", "s0")}
    for i in range(n):
        mod = models[i].model_
        _, trend, season, damped = mod["components"][:4]
        par = np.asarray(mod["par"], dtype="float64")
        alpha, beta, gamma, phi = par[:4]
        state = par[4:]
        cols["alpha"].append(alpha)
        cols["beta"].append(beta if trend != "N" else 0.0)
        cols["gamma"].append(gamma if season != "N" else 0.0)
        cols["phi"].append(phi if damped != "N" else 1.0)
        cols["trend"].append(1.0 if trend == "A" else 0.0)
        cols["season"].append({"N": 0.0, "A": 1.0, "M": 2.0}[season])
        cols["l0"].append(state[0])
        cols["b0"].append(state[1] if trend != "N" else 0.0)
        s = np.ones(m) if season == "M" else np.zeros(m)
        if season != "N":
            s[:] = state[1 + (trend != "N"):1 + (trend != "N") + m]
        cols["s0"].append(s.tolist())
    out = {k: [float(x) for x in v] if k != "s0" else v for k, v in cols.items()}
    out["m"] = m
    return out


def _phistar(phi: float, h: int) -> list[float]:
    """statsforecast's damped-trend multipliers for steps 1..h (etsforecast's phistar)."""
    out, p = [], phi
    for i in range(h):
        out.append(p)
        p = p + 1.0 if abs(phi - 1.0) < TOL else p + phi ** (i + 1)
    return out


def _arima_params(models: dict, n: int) -> dict[str, Any]:
    from statsforecast.arima import arima_transpar, make_arima

    per = []
    for i in range(n):
        mod = models[i].model_
        arma = np.asarray(mod["arma"], dtype=np.int32)
        coef = mod["coef"]
        if mod.get("xreg") is not None and any(k.startswith("ex_") for k in coef):
            raise NotExportable("ARIMA with exogenous regressors has no graph here")
        if mod.get("lambda") is not None:
            raise NotExportable("ARIMA with a Box-Cox transform has no graph here")
        narma = int(arma[:4].sum())
        values = np.array(list(coef.values()), dtype="float64")
        phi, theta = arima_transpar(values, arma, False)
        m, d, sd = int(arma[4]), int(arma[5]), int(arma[6])
        delta = np.array([1.0])
        for _ in range(d):
            delta = np.convolve(delta, [1.0, -1.0])
        for _ in range(sd):
            delta = np.convolve(delta, [1.0] + [0.0] * (m - 1) + [-1.0])
        delta = -delta[1:]
        ss = make_arima(np.asarray(phi), np.asarray(theta), delta, 1e6)
        names = list(coef)[narma:]
        unknown = [k for k in names if k not in ("intercept", "drift")]
        if unknown:
            raise NotExportable(f"ARIMA coefficients {unknown} have no graph here")
        per.append({"T": ss["T"], "Z": ss["Z"], "V": ss["V"], "Pn": ss["Pn"],
                    "c": float(coef.get("intercept", 0.0)), "drift": float(coef.get("drift", 0.0)),
                    "min": int(len(delta) + 1)})
    rd = max(len(p["Z"]) for p in per)

    def pad(a, shape):
        out = np.zeros(shape)
        out[tuple(slice(0, s) for s in np.shape(a))] = a
        return out.tolist()

    return {"rd": rd, "T": [pad(p["T"], (rd, rd)) for p in per], "Z": [pad(p["Z"], (rd,)) for p in per],
            "V": [pad(p["V"], (rd, rd)) for p in per], "Pn": [pad(p["Pn"], (rd, rd)) for p in per],
            "c": [p["c"] for p in per], "drift": [p["drift"] for p in per],
            "min": [p["min"] for p in per]}


def _theta_params(models: dict, n: int) -> dict[str, Any]:
    from scipy.stats import norm

    ms = {int(models[i].model_["m"]) for i in range(n)}
    if len(ms) != 1:
        raise NotExportable(f"Theta series with different seasons {sorted(ms)}")
    if any(models[i].model_.get("distribution", "normal") != "normal" for i in range(n)):
        raise NotExportable("Theta with a non-normal error distribution has no graph here")
    out: dict[str, Any] = {"m": ms.pop(), "z": float(norm.ppf(0.95)), "alpha": [], "theta": [],
                           "l0": [], "dynamic": []}
    for i in range(n):
        mod = models[i].model_
        kind, par = mod["modeltype"], mod["par"]
        out["alpha"].append(float(par["alpha"]))
        # initparamtheta: the standard models always use theta = 2
        out["theta"].append(2.0 if kind in ("STM", "DSTM") else float(par["theta"]))
        out["l0"].append(float(par["initial_smoothed"]))
        out["dynamic"].append(kind in ("DSTM", "DOTM"))
    return out


def _params(prep, baseline) -> tuple[str, dict[str, Any]]:
    name = baseline.name
    if name in ("snaive", "naive"):
        lag = int(baseline.params.get("season", 1))
        return "snaive", {"lag": lag}
    models = baseline.model or {}
    n = len(_bounds(prep)) - 1
    if sorted(models) != list(range(n)):
        raise NotExportable(f"{name}: fitted models for series {sorted(models)} of {n}; every "
                            "series needs its own")
    if name == "ets":
        return "ets", _ets_params(models, n)
    if name == "arima":
        return "arima", _arima_params(models, n)
    if name == "theta":
        return "theta", _theta_params(models, n)
    raise NotExportable(f"the '{name}' contestant has no series graph")


def keras_model(prep, baseline, series_keys: list | None = None):
    """The contestant's Keras graph (inputs `history` [+ `series_id` for panels], output
    `forecast`); raises NotExportable with the reason. `series_keys`: the id values of
    prep's series in order (series_keys(dataset)); default their indices as text."""
    import keras

    kind, params = _params(prep, baseline)
    keys = _keys(prep, series_keys)
    history = keras.Input(shape=(None,), dtype="float64", name=HISTORY)
    inputs = [history]
    if keys is not None:
        inputs.append(keras.Input(shape=(), dtype="string", name=KEY))
    layer = _layer_class()(kind=kind, horizon=int(prep.horizon), params=params, keys=keys,
                           name="forecast", dtype="float64")
    out = layer(inputs if keys is not None else history)
    # dict inputs: model({"history": ..., "series_id": ...}), as graph_inputs gives them
    return keras.Model({t.name: t for t in inputs}, out, name=f"cellpick_{baseline.name}")


def is_history(model) -> bool:
    """Whether `model` is a history graph built here (its input is not the cells')."""
    return any(getattr(layer, "_cellpick_history", False) for layer in getattr(model, "layers", []))


def example(model, prep, split: str = "val", rows: int = 2) -> dict[str, np.ndarray]:
    """A few serving inputs of `split` for a history graph (an MLflow input example)."""
    spec = input_meta(model)["series_key"]
    return graph_inputs(prep, split, limit=rows, series_keys=spec["keys"] if spec else None)


def input_meta(model) -> dict[str, Any]:
    """cellpick.json's `input` for a history graph."""
    layer = model.get_layer("forecast")
    meta = {"name": HISTORY, "kind": "history", "shape": [None], "dtype": "float64",
            "padding": "NaN on the right; a row ends at its first non-finite value",
            "min_history": layer.min_history(), "model": layer.kind,
            "series_key": None, "outputs": ["forecast"],
            "rolling": {"inputs": [HISTORY] + ([KEY] if layer.keys else []),
                        "outputs": ["forecast", "origin"]}}
    if layer.keys:
        meta["series_key"] = {"name": KEY, "dtype": "string", "keys": list(layer.keys)}
    return meta


def endpoints(model) -> dict[str, Any]:
    """{"serving_default": fn, "rolling": fn}: the SavedModel's tf.functions."""
    import tensorflow as tf

    layer = model.get_layer("forecast")
    if layer.keys:
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float64, name=HISTORY),
                                      tf.TensorSpec([None], tf.string, name=KEY)])
        def serve(history, series_id):
            return {"forecast": layer.forecast(history, series_id)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name=HISTORY),
                                      tf.TensorSpec([], tf.string, name=KEY)])
        def rolling(history, series_id):
            return layer.rolling(history, series_id)
    else:
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float64, name=HISTORY)])
        def serve(history):
            return {"forecast": layer.forecast(history, None)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name=HISTORY)])
        def rolling(history):
            return layer.rolling(history, None)
    return {"serving_default": serve, "rolling": rolling}


# --- the layer ---------------------------------------------------------------------------------

_LAYER = None


def register():
    """Register the series layer with Keras (keras imported here, not at module import): call
    before keras.saving.load_model(".../model.keras", safe_mode=True). Returns the class."""
    return _layer_class()


def __getattr__(name: str):
    if name == "SeriesForecast":
        return _layer_class()
    raise AttributeError(name)


def _layer_class():
    """SeriesForecast, registered as "cellpick>SeriesForecast" for model.keras."""
    global _LAYER
    if _LAYER is not None:
        return _LAYER
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="cellpick")
    class SeriesForecast(keras.layers.Layer):
        """history (batch, steps) float64 [, series_id (batch,)] -> forecast (batch, H)."""

        _cellpick_history = True

        def __init__(self, kind: str, horizon: int, params: dict, keys: list | None = None, **kw):
            super().__init__(**kw)
            self.kind, self.horizon, self.params, self.keys = kind, int(horizon), params, keys

        def get_config(self):
            return {**super().get_config(), "kind": self.kind, "horizon": self.horizon,
                    "params": self.params, "keys": self.keys}

        def compute_output_shape(self, shape):
            first = shape[0] if isinstance(shape, (list, tuple)) and isinstance(shape[0], (list, tuple)) else shape
            return (first[0], self.horizon)

        def min_history(self) -> int:
            if self.kind == "arima":
                return int(max(self.params["min"]))
            return 4 if self.kind == "theta" else 1

        def call(self, inputs):
            if isinstance(inputs, (list, tuple)):
                return self.forecast(inputs[0], inputs[1])
            return self.forecast(inputs, None)

        def _index(self, key, batch):
            """Per row: the series index (0 for a single series) and whether the key is known."""
            if not self.keys or key is None:
                return tf.zeros([batch], tf.int32), tf.ones([batch], tf.bool)
            eq = tf.equal(tf.reshape(key, [-1, 1]), tf.constant(self.keys)[None, :])
            return tf.cast(tf.argmax(tf.cast(eq, tf.int32), axis=1), tf.int32), tf.reduce_any(eq, axis=1)

        def forecast(self, history, key):
            history = tf.convert_to_tensor(history, tf.float64)
            batch = tf.shape(history)[0]
            finite = tf.cast(tf.math.is_finite(history), tf.int32)
            lengths = tf.reduce_sum(tf.math.cumprod(finite, axis=1), axis=1)
            idx, known = self._index(key, batch)
            out = _run(self, tf.where(tf.math.is_finite(history), history, tf.zeros_like(history)),
                       lengths, idx, every=False)
            return tf.where(known[:, None], out, tf.constant(np.nan, tf.float64))

        def rolling(self, history, key):
            history = tf.convert_to_tensor(history, tf.float64)
            steps = tf.shape(history)[0]
            idx, known = self._index(None if key is None else tf.reshape(key, [1]), 1)
            out = _run(self, history[None, :], tf.reshape(steps, [1]), idx, every=True)
            out = tf.where(known[0], out, tf.constant(np.nan, tf.float64))
            return {"forecast": out, "origin": tf.range(1, steps + 1, dtype=tf.int64)}

    _LAYER = SeriesForecast
    return _LAYER


def _run(layer, y, lengths, idx, every):
    """The layer's forecasts from rows `y` (batch, steps) of `lengths` real values: one per
    row, or with `every` one per prefix of the single row (the rolling endpoint). ETS and
    ARIMA run their state recursion here, one step per value."""
    import tensorflow as tf

    if layer.kind == "snaive":
        return _snaive(layer, y, lengths, every)
    if layer.kind == "theta":
        if not every:
            return _theta(layer, y, lengths, idx)
        steps = tf.shape(y)[1]  # every prefix as its own row: quadratic in steps
        prefix = tf.linalg.band_part(tf.ones([steps, steps], tf.float64), -1, 0)
        return _theta(layer, prefix * y, tf.range(1, steps + 1), tf.repeat(idx, steps))
    step, init, fc, ok = {"ets": _ets, "arima": _arima}[layer.kind](layer, idx)
    steps = tf.shape(y)[1]
    state = init(tf.shape(y)[0])
    # Running min/max: a constant history is answered by its first value (forward's
    # is_constant branch).
    lo = tf.fill([tf.shape(y)[0]], tf.constant(np.inf, tf.float64))
    hi = -lo
    acc = (tf.TensorArray(tf.float64, size=steps, element_shape=[layer.horizon])
           if every else tf.constant(0))

    def body(t, state, lo, hi, acc):
        yt = y[:, t]
        new = step(state, yt, t)
        active = t < lengths
        state = tuple(tf.where(tf.reshape(active, [-1] + [1] * (len(s.shape) - 1)), n, s)
                      for n, s in zip(new, state))
        lo = tf.where(active, tf.minimum(lo, yt), lo)
        hi = tf.where(active, tf.maximum(hi, yt), hi)
        if every:
            acc = acc.write(t, _finish(layer, fc(state, t + 1), ok, t + 1, lo, hi, y[:, 0])[0])
        return t + 1, state, lo, hi, acc

    _, state, lo, hi, acc = tf.while_loop(lambda t, *_: t < steps, body,
                                          (tf.constant(0), state, lo, hi, acc))
    if every:
        return acc.stack()
    return _finish(layer, fc(state, lengths), ok, lengths, lo, hi, y[:, 0])


def _finish(layer, f, ok, n, lo, hi, first):
    """Forecasts `f` as forward gives them: a constant history (lo == hi) answered by its
    first value, a history shorter than `ok` by NaN."""
    import tensorflow as tf

    n = tf.broadcast_to(n, tf.shape(lo))
    f = tf.where((lo == hi)[:, None], tf.tile(first[:, None], [1, layer.horizon]), f)
    return tf.where((n >= ok)[:, None], f, tf.constant(np.nan, tf.float64))


# --- seasonal naive: step k repeats the value `back[k]` before the origin ---
def _snaive(layer, y, lengths, every):
    """Seasonal naive forecasts per row (or per prefix with `every`)."""
    import tensorflow as tf

    lag = int(layer.params["lag"])
    back = tf.constant([lag - (k % lag) for k in range(layer.horizon)], tf.int32)
    if every:
        n = tf.range(1, tf.shape(y)[1] + 1)
        src = n[:, None] - back[None, :]
        src = tf.where(src < 0, n[:, None] - 1, src)
        return tf.gather(y[0], src)
    src = lengths[:, None] - back[None, :]
    src = tf.where(src < 0, lengths[:, None] - 1, src)
    out = tf.gather(y, tf.maximum(src, 0), batch_dims=1)
    return tf.where((lengths >= 1)[:, None], out, tf.constant(np.nan, tf.float64))


# --- ETS: statsforecast's etscalc update and forecast (trend N/A, season N/A/M) ---
def _ets(layer, idx):
    """(step, init, forecast, least history) of each row's ETS model, for `_run`."""
    import tensorflow as tf

    p = layer.params
    g = {k: tf.gather(tf.constant(p[k], tf.float64), idx)
         for k in ("alpha", "beta", "gamma", "phi", "trend", "season", "l0", "b0")}
    s0 = tf.gather(tf.constant(p["s0"], tf.float64), idx)
    m, h = int(p["m"]), layer.horizon
    phistar = tf.gather(tf.constant([_phistar(v, h) for v in p["phi"]], tf.float64), idx)
    cols = tf.constant([(m - 1 - i) % m for i in range(h)], tf.int32)
    trend, season = g["trend"] > 0.5, g["season"]
    add, mul = tf.equal(season, 1.0), tf.equal(season, 2.0)

    def init(batch):
        return g["l0"], g["b0"], s0

    def step(state, yt, t):
        l, b, s = state
        phib = tf.where(trend, g["phi"] * b, tf.zeros_like(b))
        q = tf.where(trend, l + phib, l)
        old = s[:, m - 1]
        safe = tf.where(tf.abs(old) < TOL, tf.ones_like(old), old)
        p_ = tf.where(add, yt - old, tf.where(mul, tf.where(tf.abs(old) < TOL, HUGEN + 0 * yt,
                                                           yt / safe), yt))
        l_new = q + g["alpha"] * (p_ - q)
        r = l_new - l
        b_new = tf.where(trend, phib + (g["beta"] / g["alpha"]) * (r - phib), b)
        qsafe = tf.where(tf.abs(q) < TOL, tf.ones_like(q), q)
        tt = tf.where(add, yt - q, tf.where(tf.abs(q) < TOL, HUGEN + 0 * yt, yt / qsafe))
        s_first = old + g["gamma"] * (tt - old)
        s_new = tf.concat([s_first[:, None], s[:, : m - 1]], axis=1)
        s_new = tf.where((season > 0.5)[:, None], s_new, s)
        return l_new, b_new, s_new

    def fc(state, n):
        l, b, s = state
        f = l[:, None] + tf.where(trend[:, None], phistar * b[:, None], tf.zeros_like(phistar))
        sj = tf.gather(s, cols, axis=1)
        return tf.where(add[:, None], f + sj, tf.where(mul[:, None], f * sj, f))

    return step, init, fc, tf.ones_like(g["l0"], tf.int32)


# --- Theta: forward's seasonal test and decomposition on each history, then the theta
# recursion with the fitted parameters (thetamodel/pegels_resid/forecast) ---
def _theta(layer, y, lengths, idx):
    """Theta forecasts per row: the seasonal test and decomposition redone on each history,
    then the theta recursion with the fitted parameters."""
    import tensorflow as tf

    p, h = layer.params, layer.horizon
    m, steps = int(p["m"]), tf.shape(y)[1]
    alpha, theta, l0 = (tf.gather(tf.constant(p[k], tf.float64), idx)
                        for k in ("alpha", "theta", "l0"))
    dyn = tf.gather(tf.constant(p["dynamic"], tf.bool), idx)
    t = tf.range(steps)
    valid = t[None, :] < lengths[:, None]
    fmask = tf.cast(valid, tf.float64)
    n = tf.cast(lengths, tf.float64)
    y = y * fmask
    if m >= 4:
        y, dec, mul, pa = _theta_deseasonalised(y, valid, t, n, lengths, m, p["z"])
    # initial state (thetacalc's initstate)
    mean = tf.reduce_sum(y, 1) / n
    ti = tf.cast(t + 1, tf.float64)[None, :]
    bn = 6.0 * (2.0 * tf.reduce_sum(ti * y, 1) / n - (1.0 + n) * mean) / (n * n - 1.0)
    an = mean - (n + 1.0) * bn / 2.0
    y0 = y[:, 0]
    state = (alpha * y0 + (1.0 - alpha) * l0, y0,
             tf.where(dyn, y0, an), tf.where(dyn, tf.zeros_like(bn), bn))

    def update(state, i, yi):
        level, meany, a_n, b_n = state
        fi = tf.cast(i, tf.float64)
        level2 = alpha * yi + (1.0 - alpha) * level
        meany2 = (fi * meany + yi) / (fi + 1.0)
        b2 = ((fi - 1.0) * b_n + 6.0 * (yi - meany) / (fi + 1.0)) / (fi + 2.0)
        a2 = meany2 - b2 * (fi + 2.0) / 2.0
        return level2, meany2, tf.where(dyn, a2, a_n), tf.where(dyn, b2, b_n)

    def body(i, state):
        new = update(state, i, y[:, i])
        active = i < lengths
        return i + 1, tuple(tf.where(active, a, b) for a, b in zip(new, state))

    _, state = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(1), state))
    out = []
    for k in range(h):
        level, _, a_n, b_n = state
        i = n + k
        mu = level + (1.0 - 1.0 / theta) * (a_n * (1.0 - alpha) ** i
                                              + b_n * (1.0 - (1.0 - alpha) ** (i + 1.0)) / alpha)
        out.append(mu)
        state = update(state, lengths + k, mu)
    f = tf.stack(out, 1)
    if m >= 4:
        col = (lengths[:, None] + tf.range(h)[None, :]) % m
        sf = tf.gather(pa, col, batch_dims=1)
        f = tf.where(dec[:, None], tf.where(mul[:, None], f * sf, f + sf), f)
    return tf.where((lengths >= 4)[:, None], f, tf.constant(np.nan, tf.float64))


def _theta_deseasonalised(y, valid, t, n, lengths, m: int, z: float):
    """forward's seasonal test and classical decomposition on each row (`valid` steps,
    `n` real values, season `m`): (y, with the rows the test finds seasonal deseasonalised;
    which rows those are; whether multiplicatively; the seasonal index per phase)."""
    import tensorflow as tf

    steps = tf.shape(y)[1]
    fmask = tf.cast(valid, tf.float64)
    xo = (y - (tf.reduce_sum(y, 1) / n)[:, None]) * fmask
    xp = tf.pad(xo, [[0, 0], [0, m]])
    acov = [tf.reduce_sum(xo * xp[:, k:k + steps], 1) / n for k in range(m + 1)]
    r = [a / acov[0] for a in acov[1:]]
    stat = tf.sqrt((1.0 + 2.0 * tf.add_n([v * v for v in r[:-1]])) / n)
    dec = (tf.abs(r[-1]) / stat > z) & (lengths >= 2 * m)
    filt = [0.5] + [1.0] * (m - 1) + [0.5] if m % 2 == 0 else [1.0] * m
    half = len(filt) // 2
    yp = tf.pad(y, [[0, 0], [half, half]])
    trend = tf.add_n([(f / m) * yp[:, j:j + steps] for j, f in enumerate(filt)])
    inner = valid & (t[None, :] >= half) & (t[None, :] < lengths[:, None] - half)
    phase = tf.one_hot(t % m, m, dtype=tf.float64)  # (steps, m)
    counts = tf.matmul(tf.cast(inner, tf.float64), phase)
    safe = tf.where(inner, trend, tf.ones_like(trend))
    big = tf.cast(inner, tf.float64)
    pa_mul = tf.matmul(tf.where(inner, y / safe, 0.0) * big, phase) / counts
    pa_mul = pa_mul / tf.reduce_mean(pa_mul, 1, keepdims=True)
    pa_add = tf.matmul(tf.where(inner, y - trend, 0.0) * big, phase) / counts
    pa_add = pa_add - tf.reduce_mean(pa_add, 1, keepdims=True)
    positive = tf.reduce_min(tf.where(valid, y, tf.constant(np.inf, tf.float64)), 1) > 0
    mul = positive & ~tf.reduce_any(pa_mul < 0.01, 1)
    pa = tf.where(mul[:, None], pa_mul, pa_add)
    seas = tf.matmul(pa, phase, transpose_b=True)  # (batch, steps)
    adj = tf.where(mul[:, None], y / tf.where(valid, seas, 1.0), y - seas)
    y = tf.where(dec[:, None] & valid, adj, y)
    return y, dec, mul, pa


# --- ARIMA: forward's Kalman filter with the fitted coefficients, then the forecast ---
def _arima(layer, idx):
    """(step, init, forecast, least history) of each row's ARIMA model, for `_run`."""
    import tensorflow as tf

    p = layer.params
    T, Z, V, Pn = (tf.gather(tf.constant(p[k], tf.float64), idx) for k in ("T", "Z", "V", "Pn"))
    c = tf.gather(tf.constant(p["c"], tf.float64), idx)
    drift = tf.gather(tf.constant(p["drift"], tf.float64), idx)
    ok = tf.gather(tf.constant(p["min"], tf.int32), idx)
    rd, h = int(p["rd"]), layer.horizon

    def init(batch):
        return tf.zeros([batch, rd], tf.float64), Pn

    def step(state, yt, t):
        a, P = state
        anew = tf.linalg.matvec(T, a)
        Pnew = tf.cond(t > 0, lambda: tf.matmul(tf.matmul(T, P), T, transpose_b=True) + V,
                       lambda: Pn)
        x = yt - c - drift * tf.cast(t + 1, tf.float64)
        resid = x - tf.reduce_sum(Z * anew, axis=1)
        M = tf.linalg.matvec(Pnew, Z)
        gain = tf.reduce_sum(Z * M, axis=1)
        a_new = anew + M * (resid / gain)[:, None]
        P_new = Pnew - M[:, :, None] * M[:, None, :] / gain[:, None, None]
        return a_new, P_new

    def fc(state, n):
        a, _ = state
        n = tf.cast(tf.broadcast_to(n, tf.shape(c)), tf.float64)
        out = []
        for k in range(h):
            a = tf.linalg.matvec(T, a)
            out.append(tf.reduce_sum(Z * a, axis=1) + c + drift * (n + k + 1))
        return tf.stack(out, axis=1)

    return step, init, fc, ok
