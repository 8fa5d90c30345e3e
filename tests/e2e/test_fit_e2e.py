"""End to end on the real data: fit -> MLflow store -> export -> SavedModel in a fresh process -> predict."""
from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import store_uri, tiny

import cellpick


def _fit(tmp_path_factory, name, data, **options):
    root = tmp_path_factory.mktemp(name)
    uri = store_uri(root)
    result = cellpick.fit(data, tracking_uri=uri, out=str(root / "model"), **options)
    assert gc.get_freeze_count() == 0  # the fit froze the heap and gave it back
    return root, uri, result


EVENTS: dict[str, list] = {}  # a module fit's progress events, in order


@pytest.fixture(scope="module")
def airline(tmp_path_factory, data_dir):
    from cellpick.engine import members

    # The groups of two or more members on XLA and stacked, as in a default fit (a tiny
    # budget alone trains without XLA: members.XLA_FROM_STEPS): the whole pipeline on that
    # path once, export included.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(members, "XLA_FROM_STEPS", 0)
        events = EVENTS.setdefault("airline", [])
        return _fit(tmp_path_factory, "airline", data_dir / "airline_train.csv",
                    progress=lambda event, info: events.append((event, info)),
                    **tiny(horizon=12, lookback=24, cells="lstm,gru"))


@pytest.fixture(scope="module")
def gunpoint(tmp_path_factory, data_dir):
    return _fit(tmp_path_factory, "gunpoint", data_dir / "GunPoint_train.csv",
                **tiny(target="label", cells="gru,rnn", epochs=3))


def _assert_verdict_is_the_rule_on_its_own_scores(verdict: dict, cells: set[str], task: str) -> None:
    """The verdict holds a folds x seeds matrix, its mean and interval per cell, and the winner
    and decision that verdict.decide gives on those recorded scores: the fit hands the rule
    what it recorded. The rule itself is tested on fixed inputs in tests/verdict/test_verdict.py."""
    from cellpick.verdict import CellResult, decide

    def matrix(rows):
        return [[math.nan if s is None else s for s in row] for row in rows]

    table, res = verdict["cells"], verdict["resampling"]
    assert set(table) == cells
    for cell, info in table.items():
        assert np.shape(info["fold_scores"]) == (res["folds"], res["seeds"]), cell
        scores = [s for row in info["fold_scores"] for s in row if s is not None]
        assert info["mean"] == pytest.approx(np.mean(scores)), cell
        assert info["ci95"][0] <= info["mean"] <= info["ci95"][1], cell
    again = decide([CellResult(c, info["config"], n_params=info["n_params"],
                               train_seconds=info["train_seconds"],
                               fold_scores=matrix(info["fold_scores"]))
                    for c, info in table.items()],
                   verdict["metric"], verdict["greater_is_better"],
                   baselines={n: matrix(m) for n, m in verdict["baseline_fold_scores"].items()},
                   resampling=res, task=task)
    assert (verdict["winner"], verdict["decision"], verdict["best_mean_cell"], verdict["rope"]) == \
        (again.winner, again.decision, again.best_mean_cell, again.rope)
    assert verdict["reason"].startswith(again.reason) and "ROPE" in verdict["reason"]


def _runs(uri, run_id):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    return client, parent, children


def test_airline_forecast_detected_and_exported(airline, data_dir):
    root, uri, result = airline
    assert (result.task, result.layout, result.metric) == ("forecast", "series", "mae")
    assert result.winner == result.verdict["winner"]
    _assert_verdict_is_the_rule_on_its_own_scores(result.verdict, {"lstm", "gru"}, "forecast")
    out = Path(result.export_path)
    assert {p.name for p in out.iterdir()} >= {"saved_model", "model.keras", "cellpick.json", "report.html"}
    meta = json.loads((out / "cellpick.json").read_text())
    assert meta["schema_version"] == 1
    assert (meta["lookback"], meta["horizon"], meta["input"]["name"]) == (24, 12, "window")
    assert meta["freq"] == "MS"
    assert not list(root.glob(".model.tmp-*")), "temporary export directory left behind"
    # No test block on 132 months (--test-size auto); scaling statistics come from the
    # search split's training block only (the first rows of the series).
    assert result.verdict["test_size"] == 0 and result.test_score is None
    train_rows = 132 - 26
    values = pd.read_csv(data_dir / "airline_train.csv")["value"].to_numpy()
    assert meta["scaling"]["y_mean"] == pytest.approx(values[:train_rows].mean(), rel=1e-5)


def test_every_trial_is_a_child_run_with_params_and_curves(airline):
    root, uri, result = airline
    client, parent, children = _runs(uri, result.parent_run_id)
    assert parent.data.tags["cellpick.role"] == "search"
    assert parent.info.status == "FINISHED"
    exp = client.get_experiment(parent.info.experiment_id)
    assert exp.name == "airline_train"
    roles = {}
    for run in children:
        roles.setdefault(run.data.tags["cellpick.role"], []).append(run)
    assert len(roles["trial"]) == 2  # one trial per cell
    assert len(roles["verdict"]) == 8  # 2 cells x 2 rolling origins x 2 seeds
    units = {(r.data.params["cell"], r.data.params["fold"], r.data.params["seed"])
             for r in roles["verdict"]}
    assert units == {(c, f, s) for c in ("lstm", "gru") for f in ("1", "2") for s in ("1042", "2042")}
    for run in roles["verdict"]:
        assert {"fold_mae", "best_val_loss", "n_params"} <= set(run.data.metrics)
    assert {r.data.params["baseline"] for r in roles["baseline"]} == {"snaive", "ets", "arima",
                                                                      "theta", "ridge"}
    assert {r.data.params["cell"] for r in roles["trial"]} == {"lstm", "gru"}
    for run in roles["trial"]:
        assert {"cell", "units", "layers", "dropout", "learning_rate"} <= set(run.data.params)
        assert {"n_params", "train_seconds", "search_val_mae", "best_val_loss"} <= set(run.data.metrics)
        # One value per validation round (the members engine validates every round of steps).
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_loss"))
        assert steps and steps == list(range(len(steps)))
        assert len(client.get_metric_history(run.info.run_id, "mae")) == len(steps)
        assert run.info.status == "FINISHED"
    # and the verdict view's summary runs: one per cell and per baseline
    assert {r.data.tags["cellpick.role"] for r in children} == {"data", "trial", "verdict",
                                                                 "baseline", "summary"}
    assert len(roles["summary"]) == 2 + 5
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"leaderboard.csv", "verdict.json", "report.html"} <= artifacts
    dataset_inputs = parent.inputs.dataset_inputs
    assert dataset_inputs and dataset_inputs[0].dataset.name == "airline_train"


# Each progress event's stage (a "stage" event: by its name); notes and warnings may come anywhere.
PHASES = {"dataset": "plan", "plan": "plan", "tracking": "plan", "data": "data-level",
          "data_candidate": "data-level", "trial_begin": "search", "trial_end": "search",
          "verdict": "verdict", "cell_end": "verdict", "baselines": "contestants",
          "contestant": "contestants", "refit": "refit", "final": "refit", "export": "export",
          "done": "done"}


def test_the_stages_run_in_the_order_the_terminal_shows(airline):
    """pipeline.run's order, in the progress it reported and in the child runs it opened:
    plan -> data-level -> search -> verdict -> contestants -> refit -> export."""
    root, uri, result = airline
    phases = []
    for event, info in EVENTS["airline"]:
        if event in ("note", "warning"):
            continue
        phase = PHASES[info["name"] if event == "stage" else event]
        if not phases or phases[-1] != phase:
            phases.append(phase)
    assert phases == ["plan", "data-level", "search", "verdict", "contestants", "refit",
                      "export", "done"]
    client, parent, children = _runs(uri, result.parent_run_id)
    started: dict[str, list[int]] = {}
    for run in children:
        started.setdefault(run.data.tags["cellpick.role"], []).append(run.info.start_time)
    # (summary runs are dated by the runs they summarise: not in this order)
    order = ["data", "trial", "verdict", "baseline"]
    assert set(started) == {*order, "summary"}
    for before, after in zip(order, order[1:]):
        assert max(started[before]) <= min(started[after]), (before, after)


_SERVE = """
import json, sys
import numpy as np, tensorflow as tf
sm = tf.saved_model.load(sys.argv[1])
fn = sm.signatures["serving_default"]
x = np.load(sys.argv[2])
out = fn(**{sys.argv[3]: tf.constant(x)})
print(json.dumps({k: v.numpy().tolist() if v.dtype != tf.string else [s.decode() for s in v.numpy()]
                  for k, v in out.items()}))
"""


def _serve_in_fresh_process(tmp_path, export: Path, name: str, x: np.ndarray) -> dict:
    np.save(tmp_path / "x.npy", x.astype("float32"))
    proc = subprocess.run([sys.executable, "-c", _SERVE, str(export / "saved_model"),
                           str(tmp_path / "x.npy"), name], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_data_level_choice_is_made_once_and_every_cell_and_ridge_use_it(airline):
    root, uri, result = airline
    client, parent, children = _runs(uri, result.parent_run_id)
    level = result.verdict["data_level"]
    chosen = level["values"]
    assert set(chosen) == {"scaling", "log", "linear", "lookback"} and chosen["lookback"] == 24
    assert level["given"] == ["lookback"] and level["decided"] == ["scaling", "log", "linear"]
    # --lookback given: 3 scalings, the linear path flipped, logs flipped: 5 reference fits,
    # each a `data` run with its values and the median of its reference units' scores.
    data = [r for r in children if r.data.tags["cellpick.role"] == "data"]
    assert len(data) == 5 == len(level["candidates"])
    assert {r.data.params["scaling"] for r in data} == {"relative", "diff", "global"}
    for run in data:
        assert run.data.params["reference"] == "GRU-16" and "median_fold_mae" in run.data.metrics
        # tiny(): 2 folds, so 2 reference units (the median of two: their mean)
        units = sorted(m.value for m in client.get_metric_history(run.info.run_id, "fold_mae"))
        assert len(units) == 2  # the score is shown to 4 significant digits
        assert run.data.metrics["median_fold_mae"] == pytest.approx(sum(units) / 2, rel=1e-3)
    [picked] = [r for r in data if r.data.tags.get("cellpick.chosen") == "true"]
    assert {k: picked.data.params[k] for k in chosen} == {k: str(v) for k, v in chosen.items()}
    best = min(level["candidates"], key=lambda c: c["score"])
    assert best["values"] == chosen  # the lowest median MAE
    assert {k[len("chosen."):]: v for k, v in parent.data.params.items()
            if k.startswith("chosen.")} == {k: str(v) for k, v in chosen.items()}
    # Fixed for every trial of every cell, for the verdict's winner and for ridge.
    trials = [r for r in children if r.data.tags["cellpick.role"] == "trial"]
    for run in trials:
        assert {k: run.data.params[k] for k in ("scaling", "log", "linear")} == \
            {k: str(chosen[k]) for k in ("scaling", "log", "linear")}
    assert {k: result.config[k] for k in ("scaling", "log", "linear")} == \
        {k: chosen[k] for k in ("scaling", "log", "linear")}
    # The report names the choice as a source of optimism (made on the verdict's folds).
    report = (Path(result.export_path) / "report.html").read_text()
    assert "the data-level stage its scaling, log, linear on three of these folds" in report
    [ridge] = [r for r in children if r.data.params.get("baseline") == "ridge"
               and r.data.tags["cellpick.role"] == "baseline"]  # not its verdict-view row
    assert (ridge.data.params["baseline.scaling"], ridge.data.params["baseline.log"]) == \
        (chosen["scaling"], str(chosen["log"]))


def test_savedmodel_in_fresh_process_matches_keras_forecast(airline, tmp_path, data_dir):
    import keras

    _, _, result = airline
    export = Path(result.export_path)
    values = pd.read_csv(data_dir / "airline_train.csv")["value"].to_numpy("float32")
    x = np.stack([values[i : i + 24] for i in (0, 50, 108)])[:, :, None]
    served = _serve_in_fresh_process(tmp_path, export, "window", x)
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    np.testing.assert_allclose(np.array(served["forecast"]), model.predict(x, verbose=0), rtol=1e-5, atol=1e-3)
    # Forecasts come back in passenger units, not standardised ones.
    assert 50 < np.mean(served["forecast"]) < 1000


def test_predict_forecasts_horizon_rows_with_future_dates(airline, data_dir, tmp_path):
    _, _, result = airline
    table = cellpick.predict(result.export_path, data_dir / "airline_train.csv")
    assert list(table.columns) == ["step", "date", "prediction"]
    assert table["step"].tolist() == list(range(1, 13))
    assert table["date"].iloc[0] == "1960-01-01" and table["date"].iloc[-1] == "1960-12-01"
    assert table["prediction"].between(50, 1500).all()


def test_gunpoint_classification_end_to_end(gunpoint, tmp_path, data_dir):
    import keras

    root, uri, result = gunpoint
    assert (result.task, result.layout, result.metric) == ("classify", "wide", "accuracy")
    export = Path(result.export_path)
    meta = json.loads((export / "cellpick.json").read_text())
    assert meta["classes"] == [1, 2] and meta["input"]["shape"] == [150, 1]
    test = pd.read_csv(data_dir / "GunPoint_test.csv")
    x = test[[f"t{i}" for i in range(150)]].to_numpy("float32")[:20, :, None]
    served = _serve_in_fresh_process(tmp_path, export, "sequence", x)
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.array(served["probabilities"]), probs, atol=1e-5)
    assert served["label"] == [[1, 2][i] for i in probs.argmax(1)]
    table = cellpick.predict(export, data_dir / "GunPoint_test.csv")
    assert list(table.columns) == ["prediction", "probability_1", "probability_2"]
    assert len(table) == 150 and set(table["prediction"]) <= {1, 2}
    assert np.allclose(table[["probability_1", "probability_2"]].sum(axis=1), 1, atol=1e-5)
    verdict = meta["verdict"]
    assert set(verdict["baselines"]) == {"minirocket", "majority", "1nn", "logreg"}
    assert verdict["resampling"]["kind"] == "repeated-stratified-kfold"
    assert np.shape(verdict["baseline_fold_scores"]["1nn"]) == (2, 2)
    _assert_verdict_is_the_rule_on_its_own_scores(verdict, {"gru", "rnn"}, "classify")


def test_long_wide_sequences_are_read_in_patches_and_the_seeds_are_averaged(gunpoint, data_dir):
    import keras

    root, uri, result = gunpoint
    export = Path(result.export_path)
    meta = json.loads((export / "cellpick.json").read_text())
    # 150 steps -> patches of 6 steps (25 patches) or 12, chosen by the data-level stage and
    # fixed for every trial; recorded in the trial params and verdict.
    level = meta["verdict"]["data_level"]
    patch = level["values"]["patch"]
    assert [c["values"]["patch"] for c in level["candidates"]] == [6, 12]
    assert result.config["patch"] == patch and meta["verdict"]["patch"] == patch
    client, parent, children = _runs(uri, result.parent_run_id)
    assert {c.data.params.get("patch") for c in children
            if c.data.tags.get("cellpick.role") == "trial"} == {str(patch)}
    # The export is the mean of the winner's 2 seed models, each with its own patch layer.
    ensemble = meta["verdict"]["ensemble"]
    assert ensemble["models"] == 2 and len(set(ensemble["seeds"])) == 2 and meta["winner"]["models"] == 2
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    members = [model.get_layer("member_1"), model.get_layer("member_2")]
    conv = members[0].get_layer("patches")
    assert (conv.kernel_size, conv.strides) == ((2 * patch,), (patch,))
    x = pd.read_csv(data_dir / "GunPoint_test.csv").drop(columns="label").to_numpy("float32")[:16, :, None]
    mean = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), mean, atol=1e-6)
    assert not np.allclose(members[0].predict(x, verbose=0), members[1].predict(x, verbose=0))
    report = (export / "report.html").read_text()
    assert ("Export: the mean of the winner&#x27;s 2 seed models, each retrained on all non-test "
            f"data, reading patches of {patch} steps.") in report


def test_36_sequences_are_judged_over_folds_not_a_handful_of_validation_samples(
        tmp_path_factory, data_dir):
    """The 36-sequence case: with one validation block of 6 samples, cells and baselines tied
    at 5 of 6 and a cell was crowned. Over folds x seeds every sample is scored, and the
    verdict either finds a difference with P >= 0.95 or says it cannot (undecided).
    --no-ensemble: the export is the winner's one model (test_refit.py trains it alone;
    --patch 1's model: test_plan.py)."""
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(data_dir / "GunPoint_train.csv")
    small, _ = train_test_split(frame, train_size=36, stratify=frame["label"], random_state=7)
    root = tmp_path_factory.mktemp("gp36")
    small.to_csv(root / "gp36.csv", index=False)
    _, _, result = _fit(tmp_path_factory, "gp36-fit", root / "gp36.csv",
                        **tiny(target="label", cells="gru,rnn", folds=3, patch=6, ensemble=False))
    v = result.verdict
    assert v["test_size"] == 0 and v["resampling"]["n_validated"] == 36  # no sample given up
    assert (v["resampling"]["folds"], v["resampling"]["seeds"]) == (3, 2)
    _assert_verdict_is_the_rule_on_its_own_scores(v, {"gru", "rnn"}, "classify")
    # Every unit is paired: the comparison reads 3 folds x 2 seeds, and the reason says so.
    [comp] = v["comparisons"]
    assert comp["n"] == 6 and "over 3 folds x 2 seeds" in v["reason"]
    assert v["rope"] == pytest.approx(1 / 36)  # one sample of the 36 scored
    meta = json.loads((Path(result.export_path) / "cellpick.json").read_text())
    assert v["ensemble"] is None and meta["winner"]["models"] == 1
