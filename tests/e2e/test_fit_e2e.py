"""End to end on the real data: fit -> MLflow store -> export -> SavedModel in a fresh process -> predict."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_LEVEL, store_uri, tiny

import cellpick


def _fit(tmp_path_factory, name, data, **options):
    root = tmp_path_factory.mktemp(name)
    uri = store_uri(root)
    result = cellpick.fit(data, tracking_uri=uri, out=str(root / "model"), **options)
    assert gc.get_freeze_count() == 0  # the fit froze the heap and gave it back
    return root, uri, result


@pytest.fixture(scope="module")
def airline(tmp_path_factory, data_dir):
    from cellpick.engine import members

    # The groups of two or more members on XLA and stacked, as in a default fit (a tiny
    # budget alone trains without XLA: members.XLA_FROM_STEPS): the whole pipeline on that
    # path once, export included.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(members, "XLA_FROM_STEPS", 0)
        return _fit(tmp_path_factory, "airline", data_dir / "airline_train.csv",
                    **tiny(horizon=12, lookback=24, cells="lstm,gru"))


@pytest.fixture(scope="module")
def gunpoint(tmp_path_factory, data_dir):
    return _fit(tmp_path_factory, "gunpoint", data_dir / "GunPoint_train.csv",
                **tiny(target="label", cells="gru,rnn", epochs=3))


def _assert_verdict_follows_its_rule(verdict: dict, cells: set[str]) -> None:
    """The winner and the decision are the ones the practical-equivalence rule gives on the
    verdict's own numbers (its comparisons' posterior probabilities and the ROPE).

    The rule: B, the best cross-validated mean (a tie goes to the cheaper cell: fewer
    parameters, then less training time), is compared with every other cell C. A cheaper C
    with P(C not practically worse than B) >= 0.95 is equivalent, and the cheapest such C wins
    ("equivalent"). Else B wins: "better" when P(B practically better) >= 0.95 against every
    C; "equivalent" when each C is that or dearer and P(C not practically better) >= 0.95;
    otherwise "undecided". A degenerate comparison (every difference the same) reads the one
    difference against the ROPE.
    """
    from cellpick.vocab import display_name

    table, greater = verdict["cells"], verdict["greater_is_better"]
    assert set(table) == cells
    folds, seeds = verdict["resampling"]["folds"], verdict["resampling"]["seeds"]
    for cell, info in table.items():
        assert np.shape(info["fold_scores"]) == (folds, seeds), cell
        scores = [s for row in info["fold_scores"] for s in row if s is not None]
        assert info["mean"] == pytest.approx(np.mean(scores)), cell
        assert info["ci95"][0] <= info["mean"] <= info["ci95"][1], cell

    def cost(cell):
        return table[cell]["n_params"], table[cell]["train_seconds"]

    best = min(table, key=lambda c: ((-1 if greater else 1) * table[c]["mean"], cost(c)))
    assert verdict["best_mean_cell"] == best
    status = {}
    for comp in verdict["comparisons"]:
        assert comp["a"] == best and {"test", "rope", "mean_diff", "ci95", "probability"} <= set(comp)
        p = comp["probability"]
        if p is None and comp["degenerate"]:
            d, rope = comp["mean_diff"], comp["rope"]
            p = {"a_better": float(d > rope), "equivalent": float(-rope <= d <= rope),
                 "b_better": float(d < -rope)}
        c = comp["b"]
        if p is None:
            status[c] = "open"
        elif p["a_better"] >= 0.95:
            status[c] = "worse"
        elif cost(c) < cost(best) and p["equivalent"] + p["b_better"] >= 0.95:
            status[c] = "equivalent"
        elif cost(c) > cost(best) and p["equivalent"] + p["a_better"] >= 0.95:
            status[c] = "not better"
        else:
            status[c] = "open"
    equivalent = [c for c, s in status.items() if s == "equivalent"]
    if equivalent:
        winner, decision = min(equivalent, key=cost), "equivalent"
    elif all(s in ("worse", "not better") for s in status.values()):
        winner = best
        decision = "better" if all(s == "worse" for s in status.values()) else "equivalent"
    else:
        winner, decision = best, "undecided"
    assert (verdict["winner"], verdict["decision"]) == (winner, decision), verdict
    assert display_name(winner) in verdict["reason"]
    assert "ROPE" in verdict["reason"] or decision == "only"


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
    _assert_verdict_follows_its_rule(result.verdict, {"lstm", "gru"})
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
    _assert_verdict_follows_its_rule(verdict, {"gru", "rnn"})


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


def test_no_ensemble_exports_the_best_seed_and_patch_1_reads_raw_steps(tmp_path_factory, data_dir):
    import keras

    root, uri, result = _fit(tmp_path_factory, "single", data_dir / "GunPoint_train.csv",
                             **tiny(target="label", cells="gru", ensemble=False, patch=1))
    meta = json.loads((Path(result.export_path) / "cellpick.json").read_text())
    assert meta["verdict"]["ensemble"] is None and meta["winner"]["models"] == 1
    assert meta["verdict"]["patch"] == 1 and "patch" not in result.config
    model = keras.saving.load_model(Path(result.export_path) / "model.keras", safe_mode=True)
    names = [layer.name for layer in model.layers]
    # (a unidirectional or bidirectional GRU: whichever the candidate list gave first)
    assert {"gru_1", "bi_gru_1"} & set(names) and "patches" not in names and not any(n.startswith("member") for n in names)


def test_36_sequences_are_judged_over_folds_not_a_handful_of_validation_samples(
        tmp_path_factory, data_dir):
    """The 36-sequence case: with one validation block of 6 samples, cells and baselines tied
    at 5 of 6 and a cell was crowned. Over folds x seeds every sample is scored, and the
    verdict either finds a difference with P >= 0.95 or says it cannot (undecided)."""
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(data_dir / "GunPoint_train.csv")
    small, _ = train_test_split(frame, train_size=36, stratify=frame["label"], random_state=7)
    root = tmp_path_factory.mktemp("gp36")
    small.to_csv(root / "gp36.csv", index=False)
    _, _, result = _fit(tmp_path_factory, "gp36-fit", root / "gp36.csv",
                        **tiny(target="label", cells="gru,rnn", folds=3, patch=6))
    v = result.verdict
    assert v["test_size"] == 0 and v["resampling"]["n_validated"] == 36  # no sample given up
    assert (v["resampling"]["folds"], v["resampling"]["seeds"]) == (3, 2)
    _assert_verdict_follows_its_rule(v, {"gru", "rnn"})
    [comp] = v["comparisons"]
    p = comp["probability"]
    if v["decision"] == "undecided":
        assert "cannot separate" in v["reason"] and "--folds" in v["reason"]
    else:  # a decision needs the posterior behind it
        assert p is None or max(p["a_better"], p["equivalent"] + p["b_better"]) >= 0.95
    assert "ROPE" in v["reason"] and "P" in v["reason"]


def test_export_best_writes_a_winning_linear_baseline_in_the_same_layout(tmp_path_factory,
                                                                          data_dir):
    """Two epochs of a GRU-8 cannot forecast airline; the contestants can: with --export best
    the first place is exported (a statistical model takes each series from its first row,
    ridge the same raw windows) and predicts."""
    _, _, result = _fit(tmp_path_factory, "best", data_dir / "airline_train.csv",
                        **tiny(horizon=12, lookback=24, cells="gru", export="best", **DATA_LEVEL))
    v = result.verdict
    assert result.exported == "baseline" and v["export"]["kind"] == "baseline"
    name = v["export"]["baseline"]
    assert v["baselines"][name] < v["cells"]["gru"]["mean"]  # it beat the cell, cross-validated
    meta = json.loads((Path(result.export_path) / "cellpick.json").read_text())
    assert (meta["model"]["kind"], meta["model"]["name"]) == ("baseline", name)
    assert v["first_place"]["name"] == name and v["exported"] == {"name": name, "kind": "contestant"}
    assert v["contestant_graphs"][name]["exportable"] is True
    assert v["export_line"].startswith(f"Exported: {name}, first place (cross-validated MAE")
    assert meta["winner"]["cell"] == "gru"  # the verdict's winning cell is still named
    table = cellpick.predict(result.export_path, data_dir / "airline_train.csv")
    assert len(table) == 12 and table["prediction"].between(50, 1500).all()
    assert f"Export: the {name} baseline (--export best)" in (
        Path(result.export_path) / "report.html").read_text()
