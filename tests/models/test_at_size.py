"""The contestants' rules at size (models/contestants.py, models/graphs/sequence.py), on tiny
data with the size thresholds lowered: MiniRocket's head is SGD from MINIROCKET_SGD_FROM
training samples (the authors' recipe for large data) and RidgeCV below it; 1-NN is skipped
above NN_VALUES stored values; 1-NN's export margins are computed in row chunks."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cellpick.data import detection
from cellpick.data.prepared import prepare
from cellpick.models import contestants
from cellpick.models.contestants import Skip, fit_one
from cellpick.verdict import score


def _wide_prep(tmp_path, task: str, n: int = 48, steps: int = 30, seed: int = 0):
    """classify: a sine (0) or a ramp (1) with noise and an offset; regress: the target is
    the ramp's slope."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, steps)
    rows = []
    for i in range(n):
        if task == "classify":
            label = i % 2
            shape = np.sin(4 * np.pi * t) if label == 0 else 2 * t - 1
            rows.append([label, *(shape + rng.normal(0, 0.2, steps) + rng.normal(0, 0.3))])
        else:
            slope = rng.uniform(-2, 2)
            rows.append([slope, *(slope * t + rng.normal(0, 0.05, steps))])
    frame = pd.DataFrame(rows, columns=["y", *[f"t{k}" for k in range(steps)]])
    if task == "classify":
        frame["y"] = frame["y"].astype(int)
    path = tmp_path / f"{task}.csv"
    frame.to_csv(path, index=False)
    ds = detection.load(path, target="y", task=task)
    return prepare(ds, lookback=None, horizon=1, test_size=0.25, seed=0)


def test_minirocket_head_is_sgd_from_the_threshold_and_ridge_below(tmp_path, monkeypatch):
    from sklearn.linear_model import RidgeClassifierCV, SGDClassifier

    prep = _wide_prep(tmp_path, "classify")
    n = prep.sizes["train"] + prep.sizes["val"]
    monkeypatch.setattr(contestants, "MINIROCKET_SGD_FROM", n + 1)  # one sample short
    ridge = fit_one("minirocket", prep, season=None)
    assert isinstance(ridge.model["head"][-1], RidgeClassifierCV)
    assert set(ridge.params) == {"kernels", "alpha"}  # as before: no head key below it
    monkeypatch.setattr(contestants, "MINIROCKET_SGD_FROM", n)  # exactly at the threshold
    sgd = fit_one("minirocket", prep, season=None)
    head = sgd.model["head"][-1]
    assert isinstance(head, SGDClassifier) and head.loss == "log_loss"
    assert head.early_stopping and head.max_iter == contestants.SGD_EPOCHS
    assert sgd.params["head"] == "sgd" and 1 <= sgd.params["epochs"] <= contestants.SGD_EPOCHS
    _, y = prep.arrays("test")
    assert score("classify", y, sgd.predict("test")) == 1.0  # obvious shapes
    # A fixed seed: the same fit twice answers the same.
    again = fit_one("minirocket", prep, season=None)
    assert np.array_equal(again.predict("test"), sgd.predict("test"))


def test_minirocket_sgd_regressor_learns_on_its_standardised_target(tmp_path, monkeypatch):
    """Least squares by SGD on 10k standardised features diverges at scikit-learn's default
    step (squared norm ~10k): the head's step starts at 1 / features."""
    from sklearn.compose import TransformedTargetRegressor

    prep = _wide_prep(tmp_path, "regress", n=80)
    monkeypatch.setattr(contestants, "MINIROCKET_SGD_FROM", 10)
    sgd = fit_one("minirocket", prep, season=None)
    assert isinstance(sgd.model["head"][-1], TransformedTargetRegressor)
    _, y = prep.arrays("test")
    _, y_fit = prep.arrays("trainval")
    pred = sgd.predict("test")
    assert pred.shape == y.shape and np.all(np.isfinite(pred))
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y_fit.mean()))


def test_one_nn_above_its_stored_values_is_skipped_with_the_reason(tmp_path, monkeypatch):
    prep = _wide_prep(tmp_path, "classify")
    n = prep.sizes["train"] + prep.sizes["val"]
    monkeypatch.setattr(contestants, "NN_VALUES", n * 30 - 1)
    with pytest.raises(Skip, match=f"^{n} samples x 30 values exceed its limit of "
                                   f"{n * 30 - 1:,} values"):
        fit_one("1nn", prep, season=None)
    monkeypatch.setattr(contestants, "NN_VALUES", n * 30)
    assert fit_one("1nn", prep, season=None).fit_rows == n


def test_one_nn_margins_in_row_chunks_equal_all_at_once(monkeypatch):
    from sklearn.neighbors import KNeighborsClassifier

    from cellpick.models.graphs import sequence

    rng = np.random.default_rng(0)
    x_fit, y_fit = rng.normal(size=(60, 5, 2)), rng.integers(0, 3, 60)
    x = rng.normal(size=(23, 5, 2))
    m = KNeighborsClassifier(n_neighbors=1).fit(x_fit.reshape(60, -1), y_fit)
    prep = SimpleNamespace(task="classify", arrays=lambda split, limit=None: (x, None))
    baseline = SimpleNamespace(name="1nn", model=m)
    whole = sequence.margins(prep, baseline, "test")
    # The unchunked rule: (distance to the nearest sample of another class - the nearest) / former.
    dist, idx = m.kneighbors(x.reshape(23, -1), n_neighbors=60)
    lab = y_fit[idx]
    other = np.where(lab != lab[:, :1], dist, np.inf).min(axis=1)
    np.testing.assert_allclose(whole, (other - dist[:, 0]) / other, rtol=1e-9, atol=1e-12)
    monkeypatch.setattr(sequence, "NN_MARGIN_BYTES", 8 * 60 * 4)  # 4 rows a chunk
    np.testing.assert_array_equal(sequence.margins(prep, baseline, "test"), whole)
