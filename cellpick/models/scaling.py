"""The forecast scaling rule, written once over an array namespace.

`xp` is `numpy` (the ridge contestant, float64) or `keras.ops` (inside the cells' graph and
the ridge export): the functions use only what both offer, so one rule serves both and this
module imports neither Keras nor TensorFlow. The target channel is worked on in log
(`log=True`, strictly positive series) or raw units and presented to a model as

    global:   (u - mean) / std                      forecast u = mean + std * out
    relative: (u - u_last) / std                    forecast u = u_last + std * out
    diff:     first differences / std(differences)  forecast u = u_last + cumsum(std_d * out)

with the training statistics `stats(prep, log)`; covariates are standardised. A log forecast
is clipped to the training range widened by ten standard deviations before `exp`.
docs/engine.md, "The cells' models", says why each form exists.
"""
from __future__ import annotations

import numpy as np


def stats(prep, log: bool) -> dict:
    """The target's training statistics in the working space (log or raw units)."""
    return prep.target_stats["log" if log else "raw"]


def target_inputs(xp, u, st: dict, scaling: str, log: bool):
    """(z, last): the target channel `u` (batch, steps, 1) as the model reads it, and its
    last value in the working space (batch, 1)."""
    if log:
        u = xp.log(xp.maximum(u, 1e-12))
    last = u[:, -1, :]
    if scaling == "global":
        z = (u - st["mean"]) / st["std"]
    elif scaling == "relative":
        z = (u - last[:, None, :]) / st["std"]
    else:
        d = (u[:, 1:, :] - u[:, :-1, :]) / st["diff_std"]
        z = xp.concatenate([xp.zeros_like(u[:, :1, :]), d], axis=1)
    return z, last


def covariates(window, x_mean, x_var):
    """The covariate channels (feature 1 on) of `window`, standardised with the training
    statistics, in the window's own dtype."""
    return (window[:, :, 1:] - x_mean[1:]) / np.sqrt(x_var[1:])


def to_forecast(xp, out, last, st: dict, scaling: str, log: bool):
    """A model's output `out` (batch, horizon) back to the forecast in user units."""
    if scaling == "global":
        u = st["mean"] + st["std"] * out
    elif scaling == "relative":
        u = last + st["std"] * out
    else:
        u = last + xp.cumsum(st["diff_std"] * out, axis=1)
    if log:
        span = st["max"] - st["min"] + 10 * st["std"]
        u = xp.exp(xp.clip(u, st["min"] - span, st["max"] + span))
    return u


def from_targets(xp, y, last, st: dict, scaling: str, log: bool):
    """Targets (batch, horizon) in user units -> the output a model must give for them (the
    inverse of `to_forecast`, without its clip)."""
    u = xp.log(xp.maximum(y, 1e-12)) if log else y
    if scaling == "global":
        return (u - st["mean"]) / st["std"]
    if scaling == "relative":
        return (u - last) / st["std"]
    v = xp.concatenate([last, u], axis=1)
    return (v[:, 1:] - v[:, :-1]) / st["diff_std"]
