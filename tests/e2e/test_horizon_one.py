"""Horizon 1 everywhere: a forecast block is (windows, 1), never (windows,) nor broadcast.

Fast checks of the scorer and of every forecast baseline at horizon 1 (ridge on windows under
every preprocessing, with and without a covariate, and its Keras export), then whole fits at
horizon 1: a yearly series through the CLI (predict in a fresh process, the `rolling`
signature, the report), and a panel with a covariate exported with `--export best`.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_LEVEL_ARGS, store_uri
from helpers import fit_baselines
from typer.testing import CliRunner

from cellpick.cli import app
from cellpick.data import detection
from cellpick.data.prepared import prepare
from cellpick.models.contestants import _ridge_windows, keras_model
from cellpick.verdict import score

runner = CliRunner()


def _csv(path: Path, y, *, freq="MS", start="2000-01-01", cov=None, ids=None) -> Path:
    """One series (or, with `ids`, a panel of equal-length series) as a CSV with a date column."""
    y = np.asarray(y, dtype=float)
    n = len(y) // (len(ids) if ids else 1)
    stamps = pd.date_range(start, periods=n, freq=freq)
    frame = pd.DataFrame({"date": np.tile(stamps, len(ids) if ids else 1), "y": y})
    if ids:
        frame.insert(0, "id", np.repeat(ids, n))
    if cov is not None:
        frame["x"] = cov
    frame.to_csv(path, index=False)
    return path


def _cycle(n=220, period=11.0, seed=0):
    """Yearly-like: a positive level with an ~11-step cycle (sunspots' shape) and noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 80 + 50 * np.sin(2 * np.pi * t / period) + 0.1 * t + rng.normal(0, 3, n)


def _prep(tmp_path, *, cov: bool, test_size=0.2):
    y = _cycle(160)
    x = np.random.default_rng(1).normal(5, 2, len(y)) if cov else None
    ds = detection.load(_csv(tmp_path / "s.csv", y, cov=x), target="y", forecast_hint=True)
    return prepare(ds, lookback=12, horizon=1, test_size=test_size, season=11)


# --- the scorer -----------------------------------------------------------------------------


def test_score_takes_a_forecast_block_of_one_column():
    y = np.array([[1.0], [2.0], [4.0]])
    assert score("forecast", y, np.array([[2.0], [2.0], [2.0]])) == pytest.approx(1.0)


@pytest.mark.parametrize("pred_shape", [(3,), (3, 3), (1, 3), (3, 1, 1)])
def test_score_refuses_a_forecast_not_shaped_like_its_target(pred_shape):
    y = np.ones((3, 1))
    with pytest.raises(ValueError, match=r"y_true has shape \(3, 1\), y_pred "
                                         + re.escape(str(pred_shape))):
        score("forecast", y, np.ones(pred_shape))


def test_score_refuses_a_forecast_target_that_is_not_a_block():
    with pytest.raises(ValueError, match=r"y_true has shape \(3,\), y_pred \(3,\)"):
        score("forecast", np.ones(3), np.ones(3))


# --- the baselines at horizon 1 ----------------------------------------------------------------


@pytest.mark.parametrize("cov", [False, True], ids=["alone", "covariate"])
@pytest.mark.parametrize("log", [False, True], ids=["raw", "log"])
@pytest.mark.parametrize("scaling", ["global", "relative", "diff"])
def test_ridge_on_windows_keeps_the_block_and_exports_exactly(tmp_path, scaling, log, cov):
    prep = _prep(tmp_path, cov=cov)
    ridge = _ridge_windows(prep, "trainval", ("train", "val"), space=[(scaling, log)])
    assert (ridge.params["scaling"], ridge.params["log"]) == (scaling, log)
    x, y = prep.arrays("test")
    want = ridge.predict("test")
    assert y.shape == want.shape == (len(x), 1)
    assert np.isfinite(want).all()
    assert score("forecast", y, want) < 0.5 * prep.y_std  # it forecasts, not only has a shape
    got = np.asarray(keras_model(prep, ridge).predict(x, verbose=0))
    assert got.shape == (len(x), 1)
    assert np.max(np.abs(got - want)) <= 1e-4 * prep.y_std


def test_every_forecast_baseline_answers_one_column(tmp_path):
    prep = _prep(tmp_path, cov=True)
    notes = []
    fitted = {b.name: b for b in fit_baselines(prep, season=11, fit_on="train",
                                               skip=lambda n, r: notes.append((n, r)))}
    assert set(fitted) == {"snaive", "ets", "arima", "theta", "ridge"}, notes
    for split in ("val", "test"):
        _, y = prep.arrays(split)
        for name, b in fitted.items():
            pred = b.predict(split)
            assert pred.shape == y.shape == (len(y), 1), (name, split, pred.shape)
            assert math.isfinite(score("forecast", y, pred)), (name, split)
    naive = {b.name: b for b in fit_baselines(prep, season=None, fit_on="train")}["naive"]
    _, y = prep.arrays("val")
    assert naive.predict("val").shape == y.shape


# --- the cells' graphs, their stacked members, predict ---------------------------------------


@pytest.mark.parametrize("scaling", ["global", "relative", "diff"])
def test_the_cells_forecast_graph_answers_one_column_alone_stacked_and_averaged(tmp_path, scaling):
    from cellpick.engine.stacked import Stacked, stackable
    from cellpick.models.cells import build_model, ensemble_model, export_model

    prep = _prep(tmp_path, cov=True)
    x, y = prep.arrays("test")
    for log, linear in [(False, True), (True, False)]:
        config = {"cell": "gru", "units": 4, "layers": 1, "scaling": scaling, "log": log,
                  "linear": linear}
        models = [build_model(prep, config) for _ in range(3)]
        assert stackable(models)
        stacked = Stacked(models)([x.astype("float32")] * 3, training=False)
        for model, out in zip(models, stacked):  # the standardised training output
            assert tuple(out.shape) == (len(x), 1)
            np.testing.assert_allclose(out.numpy(), model(x, training=False).numpy(), atol=1e-5)
        exports = [export_model(prep, m) for m in models]
        for model in [*exports, ensemble_model(prep, exports)]:
            pred = np.asarray(model(x, training=False))
            assert pred.shape == y.shape == (len(x), 1) and np.isfinite(pred).all()
            assert math.isfinite(score("forecast", y, pred))


class _Answer:
    def __init__(self, value):
        self.value = value

    def numpy(self):
        return self.value


@pytest.mark.parametrize("shape", [(1,), (1, 2), (2, 1)])
def test_predict_refuses_a_forecast_that_is_not_one_row_per_series_and_step(tmp_path, shape):
    from cellpick.errors import ExportError
    from cellpick.output.inference import _predict_series

    data = _csv(tmp_path / "s.csv", _cycle(40))
    meta = {"columns": {"target": "y", "time": "date", "id": None, "features": ["y"]},
            "lookback": 12, "horizon": 1, "freq": "MS", "input": {"name": "window"}}
    good = _predict_series(meta, lambda window: {"forecast": _Answer(np.ones((1, 1)))}, data)
    assert good["step"].tolist() == [1] and good["prediction"].tolist() == [1.0]
    with pytest.raises(ExportError, match=re.escape(f"forecast has shape {shape}") + ".*"
                       + re.escape("promises (1, 1) (series, horizon)")):
        _predict_series(meta, lambda window: {"forecast": _Answer(np.ones(shape))}, data)


# --- whole fits at horizon 1 -------------------------------------------------------------------

FIT = ["--horizon", "1", "--lookback", "12", "--max-trials", "1", "--epochs", "1", "--folds", "2",
       "--seeds", "1", "--units", "8", "--layers", "1", "--json"]


def _fit(tmp_path, data: Path, *options) -> dict:
    result = runner.invoke(app, ["fit", str(data), *FIT, *options, "--tracking-uri",
                                 store_uri(tmp_path), "--out", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _logged_signature(mlflow_meta: dict) -> dict:
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(mlflow_meta["tracking_uri"])
    try:
        signature = mlflow.models.get_model_info(mlflow_meta["model_uri"]).signature
        return {"inputs": signature.inputs.to_dict(), "outputs": signature.outputs.to_dict()}
    finally:
        mlflow.set_tracking_uri(previous)


def test_a_yearly_series_fits_exports_and_predicts_one_step(tmp_path, monkeypatch):
    """The fit that died in verdict.score ((44, 1) against (44, 44)): a yearly series, horizon
    1, relative scaling (logs and the linear path chosen by the data-level stage). Its export
    forecasts one row in a fresh process, and `rolling` gives one step per window, the last of
    them the same forecast. Groups of two members train stacked (stacked.py), as larger
    groups do by default."""
    from cellpick.engine import members, stacked

    groups = []

    class Recorded(stacked.Stacked):
        def __init__(self, models):
            groups.append(len(models))
            super().__init__(models)

    monkeypatch.setattr(members, "STACK_FROM_MEMBERS", 2)
    monkeypatch.setattr(members, "Stacked", Recorded)
    y = _cycle()
    data = _csv(tmp_path / "yearly.csv", y, freq="YS", start="1800-01-01")
    summary = _fit(tmp_path, data, "--cells", "gru,rnn", "--scaling", "relative")
    assert summary["task"] == "forecast" and math.isfinite(summary["val_score"])
    assert groups and max(groups) >= 2  # members trained stacked at horizon 1
    export = Path(summary["export_path"])
    meta = json.loads((export / "cellpick.json").read_text())
    assert meta["horizon"] == 1 and meta["outputs"] == ["forecast"]
    assert all(math.isfinite(s) for s in meta["verdict"]["baselines"].values())
    outputs = _logged_signature(meta["mlflow"])["outputs"]
    assert [o["tensor-spec"]["shape"] for o in outputs] == [(-1, 1)]  # MLflow's model too
    page = (export / "report.html").read_text()
    assert all(f'<img alt="{name}"' in page for name in ("curves", "scores", "params"))

    proc = subprocess.run([sys.executable, "-m", "cellpick", "predict", str(export), str(data)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(io.StringIO(proc.stdout))
    assert list(table.columns) == ["step", "date", "prediction"] and len(table) == 1
    assert table["step"].tolist() == [1] and table["date"].tolist() == ["2020-01-01"]
    forecast = float(table["prediction"].iloc[0])
    assert y.min() - 3 * y.std() < forecast < y.max() + 3 * y.std()

    import tensorflow as tf

    rolling = tf.saved_model.load(str(export / "saved_model")).signatures["rolling"]
    out = rolling(series=tf.constant(y.astype("float32")[:, None]))["forecast"].numpy()
    assert out.shape == (len(y) - 12 + 1, 1) and np.isfinite(out).all()
    assert out[-1, 0] == pytest.approx(forecast, rel=1e-5, abs=1e-4)


def test_a_panel_with_a_covariate_exports_the_winning_ridge_at_horizon_one(tmp_path):
    """Three series, each a line plus a pure sine, and a noise covariate: ridge on the windows
    forecasts them almost exactly, a GRU-8 after one epoch cannot, so `--export best` ships
    ridge; `predict` gives one row per series, the known continuation."""
    n, t = 120, np.arange(121)
    shapes = {"s1": (50, 0.5, 10, 0.0), "s2": (200, -0.3, 25, 1.0), "s3": (120, 1.0, 5, 2.0)}
    truth = {k: lvl + slope * t + amp * np.sin(2 * np.pi * t / 12 + phase)
             for k, (lvl, slope, amp, phase) in shapes.items()}
    y = np.concatenate([v[:n] for v in truth.values()])
    price = np.random.default_rng(2).normal(5, 1, len(y))
    data = _csv(tmp_path / "panel.csv", y, cov=price, ids=list(shapes))
    # ETS forecasts these series as well; the contestants are limited to keep this ridge's case
    summary = _fit(tmp_path, data, "--id", "id", "--cells", "gru", "--export", "best",
                   "--contestants", "naive,ridge", *DATA_LEVEL_ARGS)
    assert summary["exported"] == "baseline", summary["reason"]
    meta = json.loads((Path(summary["export_path"]) / "cellpick.json").read_text())
    assert meta["model"] == {"kind": "baseline", "name": "ridge", "library": "scikit-learn Ridge"}
    assert meta["horizon"] == 1 and meta["columns"]["features"] == ["y", "x"]
    v = meta["verdict"]
    assert v["baselines"]["ridge"] < 0.1 and v["baselines"]["ridge"] < v["cells"]["gru"]["mean"]
    # The record says what was shipped, why, and still names the verdict's winning cell.
    assert v["export"]["kind"] == "baseline" and meta["winner"]["cell"] == "gru"
    assert v["first_place"]["name"] == "ridge"
    assert v["exported"] == {"name": "ridge", "kind": "contestant"}
    assert v["contestant_graphs"]["ridge"]["exportable"] is True
    assert v["export_line"].startswith("Exported: ridge, first place (cross-validated MAE")
    assert "Export: the ridge baseline (--export best)" in (
        Path(summary["export_path"]) / "report.html").read_text()

    pred = runner.invoke(app, ["predict", summary["export_path"], str(data)])
    assert pred.exit_code == 0, pred.stderr
    table = pd.read_csv(io.StringIO(pred.stdout))
    assert list(table.columns) == ["id", "step", "date", "prediction"]
    assert table["id"].tolist() == list(shapes) and table["step"].tolist() == [1, 1, 1]
    want = [truth[k][n] for k in shapes]
    np.testing.assert_allclose(table["prediction"].to_numpy(), want, atol=0.05)
