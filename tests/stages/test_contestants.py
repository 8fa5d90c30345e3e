"""Contestants under one contract (cellpick/engine/isolation.py): a worker process, a time limit that
really stops them, a check of what they return, and a fit that always goes on."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_LEVEL_ARGS, store_uri

from cellpick.config import resolve
from cellpick.engine import isolation as contest
from cellpick.errors import ConfigError
from cellpick.models.contestants import chosen

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]


def _series_csv(path: Path, n: int = 120, period: int = 12) -> Path:
    t = np.arange(n)
    y = 50 + 10 * np.sin(2 * np.pi * t / period) + 0.2 * t
    dates = pd.date_range("2010-01-01", periods=n, freq="MS").strftime("%Y-%m")
    pd.DataFrame({"month": dates, "y": np.round(y, 3)}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    from cellpick.stages.plan import make_plan

    csv = _series_csv(tmp_path_factory.mktemp("contest") / "monthly.csv")
    plan = make_plan(resolve({"data": str(csv), "horizon": 2, "lookback": 12, "folds": 2,
                              "seeds": 1}))
    return plan.resampling.units[0].prep


@pytest.fixture(scope="module")
def worker():
    w = contest.Worker("forecast")
    yield w
    w.close()


def _job(prep, name, **kw):
    return contest.Job(f"contestants:{name}" if ":" not in name and name not in ("ets", "ridge")
                       else name, prep, 12, **kw)


def test_a_well_behaved_contestant_answers_checked_predictions_without_tensorflow(prep, worker):
    got = worker.run(_job(prep, "no_tensorflow"), 60)
    assert got.status == "ok", got.reason
    x, y = prep.arrays("score")
    assert got.predictions["score"].shape == y.shape == (len(y), 2)
    np.testing.assert_allclose(got.predictions["score"], np.repeat(x[:, -1:, 0], 2, axis=1))
    assert got.baseline.predict is None and got.baseline.name == "last_value"


def test_a_builtin_contestant_answers_as_it_does_in_process(prep, worker):
    from cellpick.models.contestants import fit_one

    got = worker.run(contest.Job("ets", prep, 12, keep_model=True), 120)
    assert got.status == "ok", got.reason
    here = fit_one("ets", prep, season=12).predict("score")
    np.testing.assert_allclose(got.predictions["score"], here, rtol=1e-9)
    assert set(got.baseline.model) == {0}  # the fitted model per series comes back for the export


@pytest.mark.parametrize("name, status, reason", [
    ("raises", "failed", "RuntimeError: this contestant always fails"),
    ("wrong_shape", "failed", "returned shape ({n},) for the 'score' rows, expected ({n}, 2)"),
    ("nan_values", "failed", "returned {n2} non-finite values (NaN or inf) for the 'score' rows"),
])
def test_a_failing_or_malformed_contestant_is_reported_and_the_worker_goes_on(prep, worker, name,
                                                                              status, reason):
    n = len(prep.origins("score")[1])
    got = worker.run(_job(prep, name), 60)
    assert (got.status, got.reason) == (status, reason.format(n=n, n2=2 * n))
    starts = worker.starts
    assert worker.run(_job(prep, "last_value"), 60).status == "ok"
    assert worker.starts == starts  # the same process served the next job


def test_a_contestant_past_its_limit_is_killed_and_a_new_worker_serves_the_next(prep, worker):
    worker.run(_job(prep, "last_value"), 60)  # a started worker: its start-up is not the limit
    starts = worker.starts
    t0 = time.perf_counter()
    got = worker.run(_job(prep, "sleeps"), 1.5)
    assert got.status == "killed" and got.reason == "ran past its limit (1.5 s)"
    assert 1.5 <= got.seconds < 10 and time.perf_counter() - t0 < 15
    after = worker.run(_job(prep, "last_value"), 60)
    assert after.status == "ok" and worker.starts == starts + 1


def test_options_name_known_contestants_only():
    assert resolve({"contestants": "ets, naive,arima"}).contestants == "ets,snaive,arima"
    assert resolve({"contestants": "none"}).contestants == "none"
    assert resolve({"contestants": "all"}).contestants is None
    assert resolve({"contestant_limit": "2m"}).contestant_limit == 120.0
    with pytest.raises(ConfigError, match=r"unknown contestant 'etz'; built-in ones are snaive, ets"):
        resolve({"contestants": "ets,etz"})
    with pytest.raises(ConfigError, match=r"'contestant_limit' option must be a duration"):
        resolve({"contestant_limit": "soon"})


def test_a_contestant_that_does_not_fit_the_task_is_refused_before_training(prep):
    with pytest.raises(ValueError, match=r"contestant 'minirocket' does not apply to a forecast; "
                                         r"those that do are snaive, ets, arima, theta, ridge"):
        chosen(prep, ["ets", "minirocket"])
    assert chosen(prep, None) == ["snaive", "ets", "arima", "theta", "ridge"]
    assert chosen(prep, []) == []


def test_the_default_limit_follows_the_cells_and_spends_from_the_budget():
    assert contest.default_limit(10.0, 5) == contest.LIMIT_FLOOR
    assert contest.default_limit(300.0, 5) == 300.0
    assert contest.default_limit(300.0, 5, budget_left=100.0) == 20.0
    assert contest.default_limit(300.0, 5, budget_left=-50.0) == contest.BUDGET_FLOOR


def _fit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "cellpick", "fit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_misbehaving_contestants_are_left_out_with_their_notes_and_the_fit_ends(tmp_path):
    """Issue 35's hourly case too: 600 hourly rows with a covariate and a missing month, where
    detection chose a season of 63 and AutoARIMA ran for 24 minutes."""
    from helpers import hourly_with_a_missing_month

    csv = hourly_with_a_missing_month(tmp_path)
    uri = store_uri(tmp_path)
    out = tmp_path / "model"
    proc = _fit([str(csv), "--target", "load", "--horizon", "4", "--lookback", "24", "--units", "8",
                 "--layers", "1", "--max-trials", "1", "--epochs", "1", "--folds", "2",
                 "--seeds", "1", *DATA_LEVEL_ARGS, "--tracking-uri", uri, "--out", str(out),
                 "--contestants", "naive,arima,contestants:raises,contestants:wrong_shape,"
                 "contestants:sleeps,contestants:last_value", "--contestant-limit", "10s"],
                tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).splitlines()  # progress goes to stderr off a terminal
    assert any("season 24 (calendar: hourly" in line for line in lines)
    assert any(line.startswith("[contest] raises") and "left out (failed" in line
               and "RuntimeError: this contestant always fails" in line for line in lines)
    assert any(line.startswith("[contest] wrong_shape") and "returned shape" in line for line in lines)
    assert any(line.startswith("[contest] sleeps") and "left out (killed" in line
               and "ran past its limit (10 s for its folds and refit)" in line for line in lines)
    verdict = json.loads((out / "cellpick.json").read_text())["verdict"]
    table = verdict["contestants"]
    assert {n: c["status"] for n, c in table.items()} == {
        "snaive": "scored", "arima": "scored", "raises": "failed", "wrong_shape": "failed",
        "sleeps": "killed", "last_value": "scored"}
    assert table["sleeps"]["seconds"] < 10 + 5
    assert set(verdict["baselines"]) == {"snaive", "arima", "last_value"}  # the scored ones
    assert any("contestant sleeps left out (killed" in n for n in verdict["baseline_notes"])
    html = (out / "report.html").read_text()
    assert "<h2>Contestants</h2>" in html and "ran past its limit (10 s for its folds and refit)" in html

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string="tags.`cellpick.role` = 'baseline'")
    status = {r.data.params["baseline"]: (r.info.status, r.data.tags.get("cellpick.error", ""))
              for r in runs}
    assert status["sleeps"][0] == "KILLED" and "ran past its limit" in status["sleeps"][1]
    assert status["raises"][0] == "FAILED" and "always fails" in status["raises"][1]
    assert status["snaive"][0] == "FINISHED"
    arima = next(r for r in runs if r.data.params["baseline"] == "arima")
    assert arima.data.params["baseline.seasonal"] == "off: period 24 is above 12"

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pred = subprocess.run([sys.executable, "-m", "cellpick", "predict", str(out), str(csv)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert pred.returncode == 0, pred.stderr[-2000:]
    rows = pd.read_csv(io.StringIO(pred.stdout))
    assert rows["step"].tolist() == [1, 2, 3, 4] and np.isfinite(rows["prediction"]).all()
    last = pd.read_csv(csv)["time"].iloc[-1]
    assert pd.to_datetime(rows.iloc[0, rows.columns.get_loc("step") + 1]) == \
        pd.Timestamp(last) + pd.Timedelta(hours=1)  # the hourly grid continues after the gap


def test_a_contestant_that_overruns_only_its_refit_keeps_its_score_and_is_not_exportable(tmp_path):
    from cellpick.stages.contest import (
        BaselineScores,
        Entry,
        final_baselines,
        with_final,
    )
    from cellpick.stages.plan import make_plan

    plan = make_plan(resolve({"data": str(_series_csv(tmp_path / "m.csv")), "horizon": 2,
                              "lookback": 12, "folds": 2, "seeds": 1}))
    scores = BaselineScores(  # ets spent its whole limit on the folds; ridge has time left
        matrices={"ets": [[1.0], [1.2]], "ridge": [[2.0], [2.1]]}, means={"ets": 1.1, "ridge": 2.05},
        exportable={"ets": False, "ridge": True},
        entries={"ets": Entry("ets", "scored", "", seconds=5.0, limit=5.0),
                 "ridge": Entry("ridge", "scored", "", seconds=0.1, limit=60.0, exportable=True)})
    final = final_baselines(plan, scores, refit=True)
    assert set(final.models) == {"ridge"} and final.checks["ridge"].shape[1] == 2
    assert final.notes == ["contestant ets: its refit for the test and the export was stopped: ran "
                           "past its limit (0 s); it keeps its cross-validated score and is not "
                           "exportable"]
    merged = with_final(scores, final)
    assert merged.means == scores.means and merged.matrices == scores.matrices  # scores kept
    assert merged.entries["ets"].exportable is False and merged.exportable == {"ets": False,
                                                                               "ridge": True}
    assert merged.notes[-1] == final.notes[0]
