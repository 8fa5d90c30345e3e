"""Contestants that misbehave on purpose, for tests/test_contestants.py: each is a real
contestant function as `--contestants package.module:function` takes it."""
from __future__ import annotations

import sys
import time

import numpy as np

from cellpick.models.contestants import Baseline


def _last_value(prep, fit_on):
    def predict(split, limit=None):
        x, _ = prep.arrays(split, limit)
        return np.repeat(x[:, -1:, 0].astype("float64"), prep.horizon, axis=1)

    return Baseline("last_value", predict, False, {"rule": "repeat the last value"}, 0.0)


def last_value(prep, *, season, fit_on, choose_on):
    """A well-behaved forecast contestant: the window's last value, repeated."""
    return _last_value(prep, fit_on)


def raises(prep, *, season, fit_on, choose_on):
    raise RuntimeError("this contestant always fails")


def wrong_shape(prep, *, season, fit_on, choose_on):
    b = _last_value(prep, fit_on)
    inner = b.predict
    b.predict = lambda split, limit=None: inner(split, limit)[:, 0]  # (n,) instead of (n, H)
    return b


def nan_values(prep, *, season, fit_on, choose_on):
    b = _last_value(prep, fit_on)
    inner = b.predict
    b.predict = lambda split, limit=None: inner(split, limit) * np.nan
    return b


def sleeps(prep, *, season, fit_on, choose_on):
    """Never returns in time: a loop that checks no flag and no signal, as numba's would."""
    while True:
        time.sleep(0.05)


def no_tensorflow(prep, *, season, fit_on, choose_on):
    """Fails when TensorFlow was imported in the process that runs it."""
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        raise RuntimeError("TensorFlow is imported in the contestants' process")
    return _last_value(prep, fit_on)
