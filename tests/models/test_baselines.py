"""The contestants (models/contestants.py) on tiny data with known answers; the season they
are given: tests/data/test_season.py and test_calendar.py."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import fit_baselines

from cellpick.data import detection as data_mod
from cellpick.data.prepared import prepare
from cellpick.models.contestants import _ridge_windows, keras_model
from cellpick.verdict import score


def _series_csv(tmp_path, y, start="2000-01-01", freq="MS", cov=None, name="s.csv"):
    frame = pd.DataFrame({"date": pd.date_range(start, periods=len(y), freq=freq), "y": y})
    if cov is not None:
        frame["x"] = cov
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _seasonal(n=120, seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 + 0.8 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n)


def _series_prep(tmp_path, y, *, lookback=24, horizon=6, test_size=0.0, cov=None):
    ds = data_mod.load(_series_csv(tmp_path, y, cov=cov), target="y", forecast_hint=True)
    return prepare(ds, lookback=lookback, horizon=horizon, test_size=test_size, season=12)


def _by_name(baselines):
    return {b.name: b for b in baselines}


def test_ets_and_arima_beat_naive_on_a_clean_seasonal_series(tmp_path):
    prep = _series_prep(tmp_path, _seasonal())
    notes = []
    fitted = _by_name(fit_baselines(prep, season=12, fit_on="train",
                                    skip=lambda n, r: notes.append((n, r))))
    assert {"snaive", "ets", "arima", "theta", "ridge"} <= set(fitted), notes
    x, y = prep.arrays("val")
    naive = score("forecast", y, np.repeat(x[:, -1:, 0], prep.horizon, axis=1))
    snaive = score("forecast", y, fitted["snaive"].predict("val"))
    for name in ("ets", "arima"):
        mae = score("forecast", y, fitted[name].predict("val"))
        assert mae < 0.5 * naive and mae < snaive, (name, mae, naive, snaive)
        assert fitted[name].predict("val").shape == y.shape


def test_statistical_forecasts_condition_on_the_history_up_to_each_origin(tmp_path):
    prep = _series_prep(tmp_path, _seasonal())
    ets = _by_name(fit_baselines(prep, season=12, fit_on="train"))["ets"]
    # The first validation window's origin is the end of the fit rows: forward on the fit
    # rows is the model's own forecast; later windows see more history, so they differ.
    pred = ets.predict("val")
    series, origin = prep.origins("val")
    assert (np.diff(origin) == 1).all() and (series == 0).all()
    assert not np.allclose(pred[0], pred[1])
    from statsforecast.models import AutoETS

    fit_rows = prep._target[: origin[0]].astype("float64")
    np.testing.assert_allclose(pred[0], AutoETS(season_length=12).fit(fit_rows).predict(6)["mean"])


def test_fit_on_rows_are_exactly_the_trainval_rows(tmp_path):
    y = _seasonal(132)
    prep = _series_prep(tmp_path, y, test_size=0.1, horizon=12)
    n_test = len(y) - (prep._starts["val"].max() + prep.lookback + prep.horizon)
    assert n_test == 13 and prep.sizes["test"] > 0
    fitted = _by_name(fit_baselines(prep, season=12))  # fit_on="trainval"
    for name in ("snaive", "ets", "arima", "theta"):
        assert fitted[name].fit_rows == len(y) - n_test, name
    assert fitted["ridge"].fit_rows == prep.sizes["train"] + prep.sizes["val"]

    # The test rows changed beyond recognition: nothing a baseline learnt or predicts for
    # validation windows moves.
    prep2 = _series_prep(tmp_path, np.concatenate([y[:-n_test], y[-n_test:] * 5 + 1000]),
                         test_size=0.1, horizon=12)
    again = _by_name(fit_baselines(prep2, season=12))
    for name, b in fitted.items():
        assert b.params == again[name].params, name
        np.testing.assert_allclose(b.predict("val"), again[name].predict("val"), err_msg=name)
    # ...while a fit on "train" alone differs: it really used the validation rows.
    train_only = _by_name(fit_baselines(prep, season=12, fit_on="train"))
    assert train_only["ets"].fit_rows < fitted["ets"].fit_rows
    assert not np.allclose(train_only["arima"].predict("test"), fitted["arima"].predict("test"))


def test_a_baseline_over_its_size_limit_is_skipped_with_a_note(tmp_path, monkeypatch):
    from cellpick.models import contestants as baselines

    monkeypatch.setitem(baselines.STAT_ROWS, "arima", 50)
    prep = _series_prep(tmp_path, _seasonal())
    notes = {}
    names = [b.name for b in fit_baselines(prep, season=12, skip=notes.__setitem__)]
    assert "arima" not in names and "ets" in names
    assert notes["arima"] == "120 rows exceed its limit of 50"  # train + validation: all 120


def _panel(tmp_path, levels=(10.0, 1000.0), n=80):
    t = np.arange(n)
    frame = pd.concat([pd.DataFrame({"id": k, "y": level + 5 * np.sin(2 * np.pi * t / 12),
                                     "date": pd.date_range("2000-01-01", periods=n, freq="MS")})
                       for k, level in zip("abcdefgh", levels)])
    frame.to_csv(tmp_path / "panel.csv", index=False)
    ds = data_mod.load(tmp_path / "panel.csv", target="y", id="id", forecast_hint=True)
    return prepare(ds, lookback=24, horizon=3, test_size=0.0, season=12)


def test_arima_runs_non_seasonal_above_its_season_cap_and_says_so(tmp_path):
    from cellpick.models.contestants import ARIMA_MAX_SEASON, fit_one

    prep = _series_prep(tmp_path, _seasonal())
    arima = fit_one("arima", prep, season=24)
    assert 24 > ARIMA_MAX_SEASON
    assert arima.params["season_length"] == 1
    assert arima.params["seasonal"] == f"off: period 24 is above {ARIMA_MAX_SEASON}"
    assert arima.params["model"].endswith("(0,0,0)[1]")
    assert fit_one("ets", prep, season=24).params["season_length"] == 24  # only ARIMA is capped
    assert fit_one("arima", prep, season=12).params["season_length"] == 12


def _shapes_prep(tmp_path, n=40, steps=40, seed=0):
    """Class 0: a sine; class 1: a ramp; both with noise and a random offset."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, steps)
    rows = []
    for i in range(n):
        label = i % 2
        shape = np.sin(4 * np.pi * t) if label == 0 else 2 * t - 1
        rows.append([label, *(shape + rng.normal(0, 0.2, steps) + rng.normal(0, 0.3))])
    frame = pd.DataFrame(rows, columns=["label", *[f"t{k}" for k in range(steps)]])
    frame["label"] = frame["label"].astype(int)
    path = tmp_path / "shapes.csv"
    frame.to_csv(path, index=False)
    ds = data_mod.load(path, target="label")
    return prepare(ds, lookback=None, horizon=1, test_size=0.25, seed=0)


def test_minirocket_separates_two_obviously_different_shapes(tmp_path):
    prep = _shapes_prep(tmp_path)
    fitted = _by_name(fit_baselines(prep, season=None))
    assert {"minirocket", "1nn", "logreg", "majority"} == set(fitted)
    _, y = prep.arrays("test")
    proba = fitted["minirocket"].predict("test")
    assert proba.shape == (len(y), 2)
    assert score("classify", y, proba) == 1.0
    # Sequences: the fit rows are the training and validation samples, nothing else.
    assert fitted["minirocket"].fit_rows == prep.sizes["train"] + prep.sizes["val"]


def _export_and_load(model, x, tmp_path) -> np.ndarray:
    """Export a SavedModel, then run it in a fresh Python process (no cellpick, no Keras)."""
    path = tmp_path / "saved"
    model.export(str(path), verbose=False)
    np.save(tmp_path / "x.npy", x.astype("float32"))
    code = ("import sys, numpy as np, tensorflow as tf\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "out = m.serve(tf.constant(np.load(sys.argv[2])))\n"
            "out = out if not isinstance(out, dict) else list(out.values())[0]\n"
            "np.save(sys.argv[3], np.asarray(out))\n")
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"),
                    str(tmp_path / "out.npy")], check=True, capture_output=True, timeout=300)
    return np.load(tmp_path / "out.npy")


def test_ridge_export_reproduces_scikit_learn_through_a_saved_model(tmp_path):
    rng = np.random.default_rng(1)
    prep = _series_prep(tmp_path, _seasonal(), cov=rng.normal(5, 2, 120))
    ridge = _by_name(fit_baselines(prep, season=12))["ridge"]
    assert ridge.exportable
    x, _ = prep.arrays("val")
    model = keras_model(prep, ridge)
    assert model.input.name == prep.input_name and tuple(model.input.shape[1:]) == prep.input_shape
    assert model.layers[-1].name == "forecast"  # the output users read by name
    got = _export_and_load(model, x, tmp_path)
    want = ridge.predict("val")
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-4 * prep.y_std


@pytest.mark.parametrize("scaling", ["global", "relative", "diff"])
@pytest.mark.parametrize("log", [False, True])
def test_every_ridge_preprocessing_exports_exactly(tmp_path, scaling, log):
    prep = _series_prep(tmp_path, _seasonal())
    ridge = _ridge_windows(prep, "trainval", ("train", "val"), space=[(scaling, log)])
    assert ridge.params["scaling"] == scaling and ridge.params["log"] == log
    x, _ = prep.arrays("val")
    got = np.asarray(keras_model(prep, ridge).predict(x, verbose=0))
    assert np.max(np.abs(got - ridge.predict("val"))) <= 1e-4 * prep.y_std


def test_logreg_export_gives_the_same_probabilities(tmp_path):
    prep = _shapes_prep(tmp_path)
    logreg = _by_name(fit_baselines(prep, season=None))["logreg"]
    x, _ = prep.arrays("test")
    model = keras_model(prep, logreg)
    got = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(got, logreg.predict("test"), atol=1e-4)
    assert model.layers[-1].name == "probabilities"


def test_a_ridge_export_serves_through_cellpick_predict(tmp_path):
    """write_export and `cellpick predict` take a baseline's model as they take a cell's."""
    from cellpick.output.export import write_export
    from cellpick.output.inference import predict

    y = _seasonal()
    ds = data_mod.load(_series_csv(tmp_path, y), target="y", forecast_hint=True)
    prep = prepare(ds, lookback=24, horizon=6, test_size=0.0, season=12)
    ridge = _by_name(fit_baselines(prep, season=12))["ridge"]
    meta = {"task": "forecast", "layout": "series",
            "columns": {"target": "y", "time": "date", "id": None, "features": ds.features,
                        "text": None},
            "input": prep.input_meta(), "outputs": ["forecast"], "lookback": 24, "horizon": 6,
            "season": 12, "freq": ds.freq, "classes": None, "masked": False,
            "model": {"kind": "baseline", "name": "ridge", "params": ridge.params}}
    out = write_export(tmp_path / "export", keras_model(prep, ridge), prep, meta)
    table = predict(out, tmp_path / "s.csv")
    x_last = prep._values[None, -24:]
    want = keras_model(prep, ridge).predict(x_last, verbose=0)[0]  # = scikit-learn (tests above)
    np.testing.assert_allclose(table["prediction"].to_numpy(), want, rtol=1e-5)
    assert json.loads((out / "cellpick.json").read_text())["model"]["kind"] == "baseline"
    import keras

    reloaded = keras.saving.load_model(out / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x_last, verbose=0)[0], want, rtol=1e-5)


def test_panel_windows_forecast_from_their_own_series(tmp_path):
    prep = _panel(tmp_path)
    series, origin = prep.origins("val")
    assert set(series.tolist()) == {0, 1} and (origin[series == 1] >= 80).all()
    fitted = _by_name(fit_baselines(prep, season=12))
    _, y = prep.arrays("val")
    for name in ("snaive", "ets", "theta"):  # a pure seasonal pattern: near exact, per series
        assert score("forecast", y, fitted[name].predict("val")) < 0.5, name
    assert fitted["ets"].params["series"] == 2


def test_sequence_regression_and_text_baselines(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12))
    frame = pd.DataFrame(x, columns=[f"t{k}" for k in range(12)])
    frame.insert(0, "y", 3 * x[:, -1] + 0.01 * rng.normal(size=60))
    frame.to_csv(tmp_path / "reg.csv", index=False)
    prep = prepare(data_mod.load(tmp_path / "reg.csv", target="y", task="regress"),
                   lookback=None, horizon=1, test_size=0.2, seed=0)
    fitted = _by_name(fit_baselines(prep, season=None))
    assert {"minirocket", "ridge", "mean"} == set(fitted)
    _, y = prep.arrays("test")
    assert fitted["ridge"].predict("test").shape == y.shape
    assert score("regress", y, fitted["ridge"].predict("test")) < 0.1 * score(
        "regress", y, fitted["mean"].predict("test"))
    got = keras_model(prep, fitted["ridge"]).predict(prep.arrays("test")[0], verbose=0)
    assert got.shape == (len(y), 1)
    np.testing.assert_allclose(got[:, 0], fitted["ridge"].predict("test"), atol=1e-4)

    words = {0: "cheap awful broken refund slow", 1: "great lovely superb fast perfect"}
    texts = [" ".join(rng.choice(words[i % 2].split(), 4)) + " the item" for i in range(40)]
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(40)]}).to_csv(
        tmp_path / "text.csv", index=False)
    prep = prepare(data_mod.load(tmp_path / "text.csv", target="label", text="text"),
                   lookback=None, horizon=1, test_size=0.25, seed=0)
    fitted = _by_name(fit_baselines(prep, season=None))
    assert {"tfidf_logreg", "majority"} == set(fitted)
    _, y = prep.arrays("test")
    assert score("classify", y, fitted["tfidf_logreg"].predict("test")) == 1.0
