"""Contestants as Keras graphs with the cells' raw-input contract, built from the fitted
library model's own parameters (never retrained), and checked against the library's answers.

`build(prep, baseline, split, expected)` returns a `Graph`: the Keras model, the input it
takes ("cells": the cells' input, `prep.input_name`; "history": a series from its first row),
and how far its answers on `split` are from `expected`, the library's own predictions there.
A contestant whose graph cannot be built or does not match is not exportable, and `reason`
says why. Families: linear (contestants.keras_model), sequence.py (MiniRocket, 1-NN, TF-IDF,
majority/mean), series.py (seasonal naive, ETS, ARIMA, Theta). docs/contestants.md states
the tolerances.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cellpick.models.contestants import keras_model as linear_model


class NotExportable(Exception):
    """A contestant that has no Keras graph, or whose graph does not match its library."""


@dataclass
class Graph:
    model: Any  # keras.Model, or None when not exportable
    input_kind: str = "cells"  # "cells" | "history"
    max_difference: float | None = None  # on the checked rows, in the tolerance's units
    tolerance: float | None = None
    checked: int = 0  # rows (windows, samples) compared
    near_ties: int = 0  # classify: labels that differ where the library's margin < 1e-5
    reason: str = ""  # why not exportable

    @property
    def ok(self) -> bool:
        return self.model is not None and not self.reason


SEQUENCE = ("minirocket", "1nn", "majority", "mean", "tfidf_logreg", "tfidf_ridge")
SERIES = ("snaive", "naive", "ets", "arima", "theta")


def keras_model(prep, baseline, series_keys: list | None = None):
    """The contestant's Keras graph (raises NotExportable with the reason). `series_keys`: a
    panel's id values in prep's series order (series.series_keys), for history graphs."""
    if baseline._linear is not None:
        return linear_model(prep, baseline)
    if baseline.name in SEQUENCE:
        from cellpick.models.graphs.sequence import keras_model as sequence

        return sequence(prep, baseline)
    if baseline.name in SERIES:
        from cellpick.models.graphs.series import keras_model as series

        return series(prep, baseline, series_keys=series_keys)
    raise NotExportable(f"the '{baseline.name}' contestant has no Keras graph")


TOLERANCE = 1e-4  # forecasts and regression: max difference over the target's scale
LABEL_SHARE = 0.01  # MiniRocket: labels may differ on this share of rows (float32 feature flips)
MARGIN = 1e-5  # classify: a differing label is a near-tie when the graph's margin is below this
CHECK_ROWS = 2000  # rows of the check split compared


def inputs(prep, name: str, split: str, limit: int | None, series_keys: list | None = None):
    """The graph of contestant `name`: its raw input for the rows of `split` (as
    Prepared.arrays(split, limit) orders them): the cells' input, or each window's series
    history for a history graph."""
    if name in SERIES:
        from cellpick.models.graphs.series import graph_inputs

        return graph_inputs(prep, split, limit, series_keys=series_keys)
    x = prep.arrays(split, limit)[0]
    return np.asarray([str(t) for t in x], dtype=object) if prep.kind == "text" else x


def answer(model, prep, name: str, split: str, limit: int | None = None,
           series_keys: list | None = None) -> np.ndarray:
    """The graph of contestant `name` answering `split`'s rows, shaped as the task's targets
    there ((windows, horizon), (n, classes) or (n,))."""
    out = _answer(model, inputs(prep, name, split, limit, series_keys))
    y = prep.arrays(split, limit)[1]
    if prep.task == "classify":
        return out
    return out.reshape(y.shape)


def build(prep, baseline, split: str, expected: np.ndarray, limit: int | None = None,
          series_keys: list | None = None) -> Graph:
    """The contestant's graph checked against the library's own answers `expected` on the
    first CHECK_ROWS rows of `split` (Prepared.arrays(split, limit) order)."""
    try:
        model = keras_model(prep, baseline, series_keys)
        x = inputs(prep, baseline.name, split, limit, series_keys)
        got = _answer(model, _head(x, CHECK_ROWS))
    except NotExportable as e:
        return Graph(None, reason=str(e))
    except Exception as e:  # a graph that cannot be built or run is not shipped
        return Graph(None, reason=f"its graph failed: {type(e).__name__}: {e}"[:300])
    want = np.asarray(expected)[:CHECK_ROWS]
    kind = "history" if baseline.name in SERIES else "cells"
    if prep.task == "classify":
        return _labels(model, kind, got, want, baseline.name)
    got = got.reshape(want.shape) if got.size == want.size else got
    if got.shape != want.shape:
        return Graph(None, kind, reason=f"its graph answers shape {got.shape}, the library {want.shape}")
    scale = max(float(prep.y_std), 1e-12)
    diff = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    reason = "" if diff <= TOLERANCE else (f"its graph differs from the library by {diff:.2g} of "
                                           f"the target's scale (tolerance {TOLERANCE:g})")
    return Graph(model if not reason else None, kind, diff, TOLERANCE, len(want), reason=reason)


def _labels(model, kind, got, want, name) -> Graph:
    mine, theirs = got.argmax(axis=1), want.argmax(axis=1)
    top = np.sort(got, axis=1)
    margin = top[:, -1] - top[:, -2] if got.shape[1] > 1 else np.ones(len(got))
    differ = mine != theirs
    near = int((differ & (margin < MARGIN)).sum())
    far = int(differ.sum()) - near
    allowed = int(LABEL_SHARE * len(want)) if name == "minirocket" else 0
    reason = "" if far <= allowed else (f"its graph's labels differ from the library's on {far} of "
                                        f"{len(want)} rows")
    return Graph(model if not reason else None, kind, float(differ.mean()) if len(want) else 0.0,
                 LABEL_SHARE if name == "minirocket" else 0.0, len(want), near + min(far, allowed),
                 reason)


def _head(x, n: int):
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    return x[:n]


def _answer(model, x) -> np.ndarray:
    out = model.predict(x, verbose=0)
    if isinstance(out, dict):
        out = next(iter(out.values())) if len(out) == 1 else out.get("forecast", out.get(
            "probabilities", out.get("prediction")))
    return np.asarray(out, dtype="float64")
