"""A model you can ship: the SavedModel contract, model.keras in safe mode, ONNX, the MLflow
model and registry, a live `mlflow models serve`, refusing altered exports, atomic writes.

One fit per task (module scope, tiny budget), registered and exported with --onnx; every
test reads those. The registry test adds a second airline fit through the CLI.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_LEVEL, DATA_LEVEL_ARGS, store_uri
from helpers import free_port
from typer.testing import CliRunner

import cellpick
from cellpick.cli import app

BUDGET = {"cells": "gru", "units": "8", "layers": "1", "max_trials": 1, "epochs": 2, "folds": 2,
          "seeds": 1}
FORECAST, CLASSIFY = "airline-forecast", "gunpoint-label"
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    return root, store_uri(root)


@pytest.fixture(scope="module")
def airline(store, data_dir):
    root, uri = store
    result = cellpick.fit(data_dir / "airline_train.csv", horizon=12, lookback=24, onnx=True,
                          register=FORECAST, tracking_uri=uri, out=str(root / "airline"), **BUDGET,
                          **DATA_LEVEL)
    values = pd.read_csv(data_dir / "airline_train.csv")["value"].to_numpy("float32")
    x = np.stack([values[i : i + 24] for i in (0, 40, 80, 108)])[:, :, None]
    return result, x, values


@pytest.fixture(scope="module")
def gunpoint(store, data_dir):
    root, uri = store
    result = cellpick.fit(data_dir / "GunPoint_train.csv", target="label", onnx=True,
                          register=CLASSIFY, tracking_uri=uri, out=str(root / "gunpoint"), **BUDGET)
    test = pd.read_csv(data_dir / "GunPoint_test.csv")
    x = test[[f"t{i}" for i in range(150)]].to_numpy("float32")[:16, :, None]
    return result, x


# Only TensorFlow in a fresh interpreter: what a serving engineer without cellpick runs; then
# `saved_model_cli show --all` on the forecast export (its console script's entry point, in the
# same interpreter to pay for one TensorFlow import).
_FRESH = """
import sys
import numpy as np, tensorflow as tf
out = {}
for i, (export, name) in enumerate(zip(sys.argv[2::2], sys.argv[3::2])):
    sm = tf.saved_model.load(export + "/saved_model")
    x = np.load(sys.argv[1])[f"x{i}"]
    for key, value in sm.signatures["serving_default"](**{name: tf.constant(x)}).items():
        out[f"{i}/{key}"] = value.numpy().astype(str) if value.dtype == tf.string else value.numpy()
    if "rolling" in sm.signatures:
        out[f"{i}/rolling"] = sm.signatures["rolling"](series=tf.constant(np.load(sys.argv[1])["series"]))["forecast"].numpy()
np.savez(sys.argv[1].replace(".npz", "-out.npz"), **out)
from tensorflow.python.tools.saved_model_cli import main
sys.argv = ["saved_model_cli", "show", "--dir", sys.argv[2] + "/saved_model", "--all"]
main()
"""


@pytest.fixture(scope="module")
def served(airline, gunpoint, tmp_path_factory):
    """serving_default of both exports (and `rolling` of the forecast) in a fresh process, and
    what saved_model_cli prints (key `cli`)."""
    path = tmp_path_factory.mktemp("fresh") / "x.npz"
    np.savez(path, x0=airline[1], x1=gunpoint[1], series=airline[2][:40, None])
    proc = subprocess.run([sys.executable, "-c", _FRESH, str(path),
                           airline[0].export_path, "window", gunpoint[0].export_path, "sequence"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(str(path).replace(".npz", "-out.npz")) as out:
        return {"cli": proc.stdout, **{k: out[k] for k in out.files}}


def _keras(export: str):
    import keras

    model = keras.saving.load_model(Path(export) / "model.keras", safe_mode=True)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)
    return model


def _pyfunc(uri: str, name: str, version: int = 1):
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)  # exports MLFLOW_TRACKING_URI: put it back for later tests
    try:
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    finally:
        mlflow.set_tracking_uri(previous)


def _onnx(export: str, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(Path(export) / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [name]
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {name: x})))


def _close(a, b):
    """Within 1e-4 of the output's scale (forecasts are in passengers, ~100-600)."""
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_forecast_round_trip_keras_savedmodel_pyfunc_onnx(airline, served, store):
    result, x, values = airline
    keras_out = _keras(result.export_path).predict(x, verbose=0)
    assert keras_out.shape == (4, 12) and 50 < keras_out.mean() < 1000  # passenger units
    _close(served["0/forecast"], keras_out)
    _close(np.asarray(_pyfunc(store[1], FORECAST).predict(x)), keras_out)
    _close(_onnx(result.export_path, "window", x)["forecast"], keras_out)
    # `rolling`: every window of one raw series in one call, the same numbers as one by one.
    windows = np.stack([values[i : i + 24] for i in range(40 - 24 + 1)])[:, :, None]
    _close(served["0/rolling"], _keras(result.export_path).predict(windows, verbose=0))


def test_classify_round_trip_keras_savedmodel_pyfunc_onnx(gunpoint, served, store):
    result, x = gunpoint
    probs = _keras(result.export_path).predict(x, verbose=0)
    labels = np.array([1, 2])[probs.argmax(1)]
    _close(served["1/probabilities"], probs)
    assert served["1/label"].dtype == np.int64 and served["1/label"].tolist() == labels.tolist()
    _close(np.asarray(_pyfunc(store[1], CLASSIFY).predict(x)), probs)
    onnx_out = _onnx(result.export_path, "sequence", x)
    _close(onnx_out["probabilities"], probs)
    assert onnx_out["label"].tolist() == labels.tolist()


def test_saved_model_cli_shows_named_signature(served):
    text = " ".join(served["cli"].split())
    assert ("signature_def['serving_default']: The given SavedModel SignatureDef contains the "
            "following input(s): inputs['window'] tensor_info: dtype: DT_FLOAT shape: (-1, 24, 1)") in text
    assert "outputs['forecast'] tensor_info: dtype: DT_FLOAT shape: (-1, 12)" in text
    assert "signature_def['rolling']" in text and "inputs['series'] tensor_info: dtype: DT_FLOAT shape: (-1, 1)" in text
    assert "Method name is: tensorflow/serving/predict" in text


def test_export_meta_records_onnx_registry_and_checksums(airline, store):
    result = airline[0]
    # The fit's store does not leak into the environment for the next fit in this process.
    assert os.environ.get("MLFLOW_TRACKING_URI") != store[1]
    meta = json.loads((Path(result.export_path) / "cellpick.json").read_text())
    assert meta["onnx"] is True and "model.onnx" in meta["files"]
    assert "saved_model/saved_model.pb" in meta["files"] and "model.keras" in meta["files"]
    assert meta["mlflow"]["registered_model"] == {"name": FORECAST, "version": "1",
                                                  "uri": f"models:/{FORECAST}/1"}
    assert result.registered_model == f"models:/{FORECAST}/1"


def test_each_registered_fit_is_a_new_version_tagged_with_the_verdict(airline, store, data_dir):
    """A second fit through the CLI (--register, --onnx): version 2, its verdict as tags, the
    parent run linked, and the export it replaces kept whole as DIR.bak."""
    from mlflow.tracking import MlflowClient

    from cellpick.output.export import read_meta

    root, uri = store
    first = airline[0]
    out = root / "again"
    shutil.copytree(first.export_path, out)
    cli = runner.invoke(app, ["fit", str(data_dir / "airline_train.csv"), "--horizon", "12",
                              "--lookback", "24", "--cells", "gru", "--units", "8", "--layers", "1",
                              "--max-trials", "1", "--epochs", "2", "--folds", "2", "--seeds", "1",
                              "--test-size", "0.2", "--register", FORECAST, "--onnx", *DATA_LEVEL_ARGS,
                              "--tracking-uri", uri, "--out", str(out), "--json", "--quiet"])
    assert cli.exit_code == 0, cli.output + cli.stderr
    summary = json.loads(cli.stdout.strip().splitlines()[-1])
    assert summary["registered_model"] == f"models:/{FORECAST}/2"

    client = MlflowClient(uri)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{FORECAST}'"))
    assert versions == [1, 2]
    v2 = client.get_model_version(FORECAST, "2")
    assert v2.run_id == summary["parent_run_id"]
    assert v2.tags["cellpick.winner"] == "gru" and v2.tags["cellpick.metric"] == "mae"
    assert float(v2.tags["cellpick.val_score"]) == pytest.approx(summary["val_score"])
    assert float(v2.tags["cellpick.test_score"]) == pytest.approx(summary["test_score"])
    assert v2.tags["cellpick.reason"] == summary["reason"] == v2.description
    v1 = client.get_model_version(FORECAST, "1")
    assert v1.run_id == first.parent_run_id and v1.tags["cellpick.reason"] == first.reason
    parent = client.get_run(summary["parent_run_id"]).data.tags
    assert parent["cellpick.registered_model_uri"] == f"models:/{FORECAST}/2"

    assert read_meta(out)["mlflow"]["parent_run_id"] == summary["parent_run_id"]
    assert (out / "model.onnx").is_file() and read_meta(out)["onnx"] is True
    assert read_meta(out.with_name("again.bak"))["mlflow"]["parent_run_id"] == first.parent_run_id
    assert not list(root.glob(".again.tmp-*"))




def test_mlflow_models_serve_answers_invocations(airline, store, tmp_path):
    result, x, _ = airline
    port = free_port()
    # `mlflow models serve` starts `uvicorn` by name: the venv's bin must be on PATH.
    env = {**os.environ, "MLFLOW_TRACKING_URI": store[1], "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    if shutil.which("uvicorn", path=env["PATH"]) is None:  # the one environmental reason to skip
        pytest.skip("no `uvicorn` executable next to the interpreter or on PATH: install mlflow's "
                    "serving extras to run this test")
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                 f"models:/{FORECAST}/1", "--env-manager", "local", "-h", "127.0.0.1",
                                 "-p", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow models serve exited {proc.returncode}: {log.read_text()[-1500:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "server not up in 240 s: " + log.read_text()[-1000:]
                time.sleep(0.5)
        body = json.dumps({"inputs": x[:2].tolist()}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        _close(np.array(answer["predictions"]), _keras(result.export_path).predict(x[:2], verbose=0))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the uvicorn it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _tamper_schema(d: Path):
    meta = json.loads((d / "cellpick.json").read_text())
    meta["schema_version"] = 99
    (d / "cellpick.json").write_text(json.dumps(meta))


def _tamper_bytes(d: Path):
    with open(d / "saved_model" / "saved_model.pb", "ab") as f:
        f.write(b"\0")


@pytest.mark.parametrize("tamper, message", [
    (_tamper_schema, "has schema_version 99; this cellpick reads 1"),
    (lambda d: (d / "model.onnx").unlink(), "file 'model.onnx' is missing"),
    (lambda d: shutil.rmtree(d / "saved_model" / "variables"), "file 'saved_model/variables/"),
    (_tamper_bytes, "file 'saved_model/saved_model.pb' was altered after export"),
], ids=["unknown-schema", "missing-onnx", "missing-variables", "altered-graph"])
def test_predict_refuses_an_altered_export(airline, tmp_path, data_dir, tamper, message):
    export = tmp_path / "model"
    shutil.copytree(airline[0].export_path, export)
    tamper(export)
    result = runner.invoke(app, ["predict", str(export), str(data_dir / "airline_train.csv")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _plan_and_model(export: str, data_dir: Path):
    from cellpick.config import FitConfig
    from cellpick.pipeline import make_plan

    plan = make_plan(FitConfig(data=str(data_dir / "airline_train.csv"), lookback=24, horizon=12).validate())
    return plan.prep, _keras(export)


def _digest(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_interrupted_export_keeps_the_previous_one(airline, tmp_path, data_dir):
    from cellpick.output.export import read_meta, write_export

    out = tmp_path / "model"
    shutil.copytree(airline[0].export_path, out)
    before = _digest(out)
    prep, model = _plan_and_model(airline[0].export_path, data_dir)
    # A real failure after the SavedModel and model.keras are written: cellpick.json cannot be
    # serialised.
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_export(out, model, prep, {"task": "forecast", "unserialisable": object()})
    assert _digest(out) == before
    read_meta(out)  # checksums still verify
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp dir, no .bak


def test_replacing_an_export_keeps_dir_bak_and_clears_a_dead_writers_temp(airline, tmp_path, data_dir):
    from cellpick.output.export import read_meta, write_export

    out = tmp_path / "model"
    shutil.copytree(airline[0].export_path, out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".model.tmp-{dead}"  # what a killed fit leaves
    (stale / "saved_model").mkdir(parents=True)
    prep, model = _plan_and_model(airline[0].export_path, data_dir)
    write_export(out, model, prep, {"task": "forecast", "marker": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.bak"]
    assert read_meta(out)["marker"] == "new" and read_meta(out)["onnx"] is False
    assert read_meta(tmp_path / "model.bak")["mlflow"]["parent_run_id"] == airline[0].parent_run_id


def test_unconvertible_layer_is_named_and_the_export_goes_on(airline, tmp_path, data_dir):
    """Discretization (TF op Bucketize) has no ONNX mapping in tf2onnx 1.17."""
    import keras

    from cellpick.output.export import read_meta, write_export

    prep, _ = _plan_and_model(airline[0].export_path, data_dir)
    inputs = keras.Input((24, 1), name="window")
    x = keras.layers.Discretization(bin_boundaries=[200.0, 300.0], name="buckets")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(12, name="forecast")(x))
    warnings: list[str] = []
    out = write_export(tmp_path / "model", model, prep, {"task": "forecast"}, onnx=True,
                       warn=warnings.append)
    assert warnings == ["ONNX skipped: layer(s) buckets use(s) TensorFlow ops tf2onnx cannot convert "
                        "(Bucketize); the export has no model.onnx"]
    assert not (out / "model.onnx").exists() and read_meta(out)["onnx"] is False
    assert (out / "saved_model" / "saved_model.pb").is_file()


def test_rnns_are_traced_without_cudnn_for_export_and_restored_after():
    """A graph traced with cuDNN kernels (any GPU fit) would not run on CPU-only serving."""
    import keras

    from cellpick.output.export import portable_rnns

    inputs = keras.Input((5, 2))
    x = keras.layers.LSTM(4, return_sequences=True, name="lstm")(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True), name="bi_gru")(x)
    x = keras.layers.SimpleRNN(4, name="rnn")(x)
    model = keras.Model(inputs, x)
    rnns = [model.get_layer("lstm"), model.get_layer("bi_gru").forward_layer,
            model.get_layer("bi_gru").backward_layer]
    with portable_rnns(model) as switched:
        assert [r.use_cudnn for r in rnns] == [False, False, False] and len(switched) == 3
    assert [r.use_cudnn for r in rnns] == ["auto", "auto", "auto"]
