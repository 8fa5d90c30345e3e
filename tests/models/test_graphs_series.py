"""Seasonal naive, ETS, ARIMA and Theta exported as history graphs (graphs/series.py): the
SavedModel, loaded in a fresh process, answers as the fitted statsforecast models do.

Tolerance: 1e-4 of the scale of the window's own series (the std of its rows), on every
window of the train, validation and test splits (serving_default), on every origin of each series
(rolling), and on the whole file (`cellpick predict`)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cellpick.config import resolve
from cellpick.models.contestants import fit_one
from cellpick.models.graphs import series as graphs
from cellpick.stages.plan import make_plan

TOLERANCE = 1e-4
# Also checked through model.keras (safe_mode=True) and `cellpick predict` (each loads the
# model once more, so a few).
KERAS = {"airline-h3/arima", "panel-h4/theta"}
CLI = {"airline-h3/theta", "airline-h1/arima", "panel-h4/ets", "trend-h2/naive"}

# (case, data, options, contestants)
CASES = [
    ("airline-h3", "airline", {"horizon": 3}, ["snaive", "ets", "arima", "theta"]),
    ("airline-h1", "airline", {"horizon": 1}, ["arima"]),
    ("trend-h2", "trend", {"horizon": 2}, ["naive", "ets", "arima", "theta"]),
    ("panel-h4", "panel", {"horizon": 4, "id": "shop"}, ["snaive", "ets", "arima", "theta"]),
    ("negative-h3", "negative", {"horizon": 3}, ["theta"]),  # additive decomposition
]

# Runs in a fresh process: only TensorFlow, the export directories and cellpick's predict.
CHECK = r"""
import json, sys, numpy as np
import tensorflow as tf
spec = json.load(open(sys.argv[1]))
out = {}
for e in spec:
    loaded = tf.saved_model.load(e["dir"])
    arrays = np.load(e["arrays"], allow_pickle=True)
    args = {"history": tf.constant(arrays["history"], tf.float64)}
    if "series_id" in arrays.files:
        args["series_id"] = tf.constant([str(k) for k in arrays["series_id"]])
    serve = loaded.signatures["serving_default"]
    got = {"serving": serve(**args)["forecast"].numpy().tolist(), "rolling": []}
    for k, series in enumerate(e["series"]):
        roll = {"history": tf.constant(np.asarray(series, dtype="float64"))}
        if e["keys"]:
            roll["series_id"] = tf.constant(e["keys"][k])
        got["rolling"].append(loaded.signatures["rolling"](**roll)["forecast"].numpy().tolist())
    if e["keras"]:
        import keras
        from cellpick.models.graphs.series import register
        register()
        model = keras.saving.load_model(e["dir"].replace("saved_model", "model.keras"), safe_mode=True)
        got["keras"] = np.asarray(model(args)).tolist()
    if e["cli"]:
        from typer.testing import CliRunner
        from cellpick.cli import app
        res = CliRunner().invoke(app, ["predict", e["dir"].rsplit("/", 1)[0], e["csv"], "--out", e["cli"]])
        got["cli_exit"] = res.exit_code
    out[e["name"]] = got
json.dump(out, open(sys.argv[2], "w"))
"""


def _write_data(tmp_path, data_dir, which: str):
    if which == "airline":
        return data_dir / "airline.csv"
    rng = np.random.default_rng(1)
    if which == "trend":  # daily, no season: ETS with a trend, ARIMA with drift
        n = 90
        t = np.arange(n)
        frame = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=n, freq="D"),
                              "y": 50 + 0.3 * t + np.cumsum(rng.normal(0, 1, n))})
    elif which == "negative":  # seasonal around zero: Theta decomposes additively
        t = np.arange(80)
        frame = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=80, freq="MS"),
                              "y": -5 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12)
                              + np.random.default_rng(3).normal(0, 1.5, 80)})
    else:  # three monthly series of very different levels
        parts = []
        for k, (level, slope) in enumerate([(10, 0.1), (200, -0.5), (1000, 2.0)]):
            t = np.arange(72)
            parts.append(pd.DataFrame({
                "shop": f"s{k}", "date": pd.date_range("2001-01-01", periods=72, freq="MS"),
                "y": level + slope * t + 0.1 * level * np.sin(2 * np.pi * t / 12)
                + rng.normal(0, 0.02 * level, 72)}))
        frame = pd.concat(parts)
    path = tmp_path / f"{which}.csv"
    frame.to_csv(path, index=False)
    return path


def _meta(plan, model) -> dict:
    """What export.write_export needs of cellpick.json for a history graph."""
    ds, prep = plan.dataset, plan.prep
    return {"task": "forecast", "layout": "series",
            "columns": {"target": ds.target, "time": ds.time, "id": ds.id,
                        "features": ds.features, "text": ds.text},
            "input": graphs.input_meta(model), "outputs": ["forecast"],
            "lookback": prep.lookback, "horizon": prep.horizon, "season": plan.season,
            "freq": ds.freq}


def _whole_file(baseline, series: np.ndarray, lag: int, h: int) -> np.ndarray:
    """The library's forecast from the end of a whole series (what predict must give)."""
    if baseline.name in ("snaive", "naive"):
        n = len(series)
        return np.array([series[n - (lag - k % lag)] if n >= lag - k % lag else series[-1]
                         for k in range(h)])
    return None


@pytest.fixture(scope="module")
def checked(tmp_path_factory, data_dir):
    """Fit, export and check every case's contestants in one fresh process."""
    from cellpick.output.export import write_export

    tmp = tmp_path_factory.mktemp("graphs")
    spec, expected = [], {}
    for case, which, options, names in CASES:
        path = _write_data(tmp, data_dir, which)
        plan = make_plan(resolve({"data": str(path), **options}))
        prep = plan.prep
        keys = graphs.series_keys(plan.dataset)
        bounds = np.append(prep._series_starts, len(prep._target))
        series = [prep._target[bounds[i]:bounds[i + 1]].astype("float64") for i in range(len(bounds) - 1)]
        scale = np.array([max(float(np.std(s)), 1e-12) for s in series])
        for name in names:
            b = fit_one("snaive" if name == "naive" else name, prep,
                        season=plan.season if name != "naive" else None)
            model = graphs.keras_model(prep, b, series_keys=keys)
            out = write_export(tmp / f"{case}-{name}", model, prep, _meta(plan, model))
            inputs, want, which_series, origins = {}, [], [], []
            for split in ("train", "val", "test"):
                got = graphs.graph_inputs(prep, split, series_keys=keys)
                s, o = prep.origins(split)
                width = got["history"].shape[1]
                inputs.setdefault("history", []).extend(
                    np.pad(got["history"], ((0, 0), (0, max(bounds[1:] - bounds[:-1]) - width)),
                           constant_values=np.nan))
                if keys:
                    inputs.setdefault("series_id", []).extend(got["series_id"])
                want.append(b.predict(split))
                which_series.append(s)
                origins.append(o - bounds[s])
            arrays = tmp / f"{case}-{name}.npz"
            np.savez(arrays, **{k: np.asarray(v) for k, v in inputs.items()})
            whole = [b.model[i].forward(y=s, h=prep.horizon)["mean"] if b.model is not None
                     else _whole_file(b, s, int(b.params["season"]), prep.horizon)
                     for i, s in enumerate(series)]
            label = f"{case}/{b.name}"
            spec.append({"name": label, "dir": str(out / "saved_model"), "arrays": str(arrays),
                         "series": [s.tolist() for s in series], "keys": keys,
                         "keras": label in KERAS, "csv": str(path),
                         "cli": str(tmp / f"{case}-{name}.out.csv") if label in CLI else None})
            expected[label] = {"want": np.concatenate(want), "series": np.concatenate(which_series),
                               "origin": np.concatenate(origins), "whole": np.asarray(whole),
                               "scale": scale, "keys": keys, "horizon": prep.horizon,
                               "model": b.params.get("model", b.name), "cli": spec[-1]["cli"]}
    (tmp / "spec.json").write_text(json.dumps(spec))
    result = tmp / "result.json"
    run = subprocess.run([sys.executable, "-c", CHECK, str(tmp / "spec.json"), str(result)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return expected, json.loads(result.read_text())


def _relative(got, want, scale):
    return float(np.max(np.abs(np.asarray(got) - want) / scale[:, None]))


@pytest.mark.parametrize("label", [f"{c}/{n if n != 'naive' else 'naive'}" for c, _, _, names in CASES
                                   for n in names])
def test_saved_model_answers_as_the_library_in_a_fresh_process(checked, label):
    expected, got = checked
    e, g = expected[label], got[label]
    scale = e["scale"]
    serving = np.asarray(g["serving"])
    assert serving.shape == e["want"].shape and np.isfinite(serving).all()
    assert _relative(serving, e["want"], scale[e["series"]]) < TOLERANCE, e["model"]
    # rolling: row t is the forecast from the first t + 1 values; every window's origin
    for k, (s, o) in enumerate(zip(e["series"], e["origin"])):
        row = np.asarray(g["rolling"][s])[o - 1]
        assert np.max(np.abs(row - e["want"][k])) / scale[s] < TOLERANCE, (label, k)
    # the whole series: the last rolling row is the library's forecast from the file's end
    last = np.asarray([np.asarray(r)[-1] for r in g["rolling"]])
    assert _relative(last, e["whole"], scale) < TOLERANCE
    if "keras" in g:  # model.keras loads with safe_mode=True and agrees
        assert _relative(g["keras"], e["want"], scale[e["series"]]) < TOLERANCE
    if e["cli"] is None:
        return
    # cellpick predict on the training file: the forecast from each series' end
    assert g["cli_exit"] == 0
    table = pd.read_csv(e["cli"])
    assert len(table) == len(scale) * e["horizon"]
    pred = table["prediction"].to_numpy().reshape(len(scale), e["horizon"])
    if e["keys"]:
        assert list(dict.fromkeys(table["shop"])) == e["keys"]
    assert _relative(pred, e["whole"], scale) < TOLERANCE


def test_predict_refuses_a_series_the_panel_model_never_saw(checked, tmp_path):
    from cellpick.errors import DataError
    from cellpick.output.inference import predict

    expected, _ = checked
    out = str(expected["panel-h4/ets"]["cli"]).replace(".out.csv", "")
    frame = pd.DataFrame({"shop": ["s9"] * 30, "date": pd.date_range("2001-01-01", periods=30, freq="MS"),
                          "y": np.linspace(1, 30, 30)})
    frame.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(DataError, match=r"series \['s9'\] were not in the training data"):
        predict(out, tmp_path / "new.csv")
