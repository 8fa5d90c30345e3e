"""Tracker writes that happen off the training thread: per-epoch metrics are written by a
background thread, and every one of them is in the store when its run ends.

Real MLflow SQLite stores in tmp_path; the search test trains tiny real Keras models.
"""
from __future__ import annotations

import gc
import threading

import pytest
from conftest import store_uri

from cellpick.tracking import Tracker

EPOCH = {"loss": 1.0, "mae": 2.0, "val_loss": 3.0, "val_mae": 4.0}


def _history(client, run_id, key):
    return sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)


@pytest.fixture
def tracker(tmp_path):
    t = Tracker(store_uri(tmp_path), "tracking")
    t.start_fit("fit-test", {"metric": "mae"}, {})
    yield t
    t.finish_fit()


def test_no_schema_hint_reaches_the_user_even_after_a_library_resets_warning_filters(tracker):
    """An integer label column made MLflow warn on the user's terminal (issue 19): the
    schema is inferred lazily, after the process's filters may have been reset."""
    import warnings

    import pandas as pd

    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5], "label": [0, 1, 0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what a library resetting the filters leaves
        tracker.log_dataset(frame, source="/tmp/data.csv", name="data")
        tracker.end_child(tracker.start_child("trial", "t01", {"cell": "gru"}))
    assert [str(w.message)[:40] for w in caught] == []
    assert tracker.client.get_run(tracker.parent_id).inputs.dataset_inputs  # it was logged


def test_summary_metrics_are_logged_at_4_significant_digits_and_curves_in_full(tracker):
    run_id = tracker.start_child("trial", "t01", {"cell": "gru"})
    tracker.log_metrics(run_id, {"best_val_mae": 19.32773941, "small": 0.0123456789,
                                 "n_params": 123457, "big": 1234.5678, "zero": 0.0})
    tracker.log_epochs(run_id, {"loss": [19.32773941]})
    tracker.end_child(run_id)
    m = tracker.client.get_run(run_id).data.metrics
    assert (m["search_val_mae"], m["small"], m["n_params"], m["big"], m["zero"]) == (
        19.33, 0.01235, 123457, 1235, 0)
    assert _history(tracker.client, run_id, "loss")[0].value == 19.32773941


def test_every_background_epoch_is_written_in_order_when_the_run_ends(tracker):
    run_id = tracker.start_child("trial", "t01-gru-u8-l1", {"cell": "gru", "units": 8, "layers": 1})
    for epoch in range(60):
        tracker.log_epoch(run_id, {**EPOCH, "val_loss": 100.0 - epoch, "skipped": float("nan")},
                          step=epoch)
    tracker.end_child(run_id)
    client = tracker.client
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    history = _history(client, run_id, "val_loss")
    assert [m.step for m in history] == list(range(60))
    assert [m.value for m in history] == [100.0 - e for e in range(60)]
    assert run.data.metrics["val_loss"] == 41.0  # the latest value is the last epoch's
    assert "skipped" not in run.data.metrics
    tracker.flush()  # nothing left queued: waiting again writes and raises nothing
    assert len(_history(client, run_id, "val_loss")) == 60


def test_finish_fit_waits_for_epochs_of_runs_still_open(tmp_path):
    t = Tracker(store_uri(tmp_path), "tracking")
    t.start_fit("fit-test", {}, {})
    run_id = t.start_child("trial", "t01", {"cell": "rnn"})
    for epoch in range(20):
        t.log_epoch(run_id, EPOCH, step=epoch)
    t.finish_fit("KILLED", "interrupted")
    assert len(t.client.get_metric_history(run_id, "mae")) == 20
    # The background writer is gone with the fit: no thread outlives it.
    assert not [th for th in threading.enumerate() if th.name.startswith("cellpick-mlflow")]


def test_a_failed_background_write_fails_the_run_end_like_a_synchronous_one(tracker):
    tracker.log_epoch("no-such-run", EPOCH, step=0)
    with pytest.raises(Exception, match="no-such-run"):
        tracker.end_child("no-such-run")
    tracker.log_epoch("no-such-run", EPOCH, step=1)
    with pytest.raises(Exception, match="no-such-run"):
        tracker.end_child("no-such-run", "FAILED")  # the run end itself still fails
    tracker.flush()  # a lost epoch is reported once, by the run end that waited for it


def test_a_seeds_history_is_logged_with_one_step_per_epoch(tracker):
    run_id = tracker.start_child("verdict", "v-gru-u8-l1-s1", {"cell": "gru"})
    n = 300  # 4 metrics x 300 epochs: more than one MLflow batch of 1000
    tracker.log_epochs(run_id, {k: [v + e for e in range(n)] for k, v in EPOCH.items()})
    tracker.end_child(run_id)
    for key, first in EPOCH.items():
        history = _history(tracker.client, run_id, key)
        assert [m.step for m in history] == list(range(n))
        assert [m.value for m in history] == [first + e for e in range(n)]


def test_a_search_leaves_every_epoch_of_every_trial_in_its_run(tracker, tmp_path, data_dir):
    from cellpick.config import FitConfig
    from cellpick.engine.search import run_search
    from cellpick.engine.train import Schedule
    from cellpick.pipeline import make_plan

    epochs = 3
    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["rnn"], units=[8], layers=[1], max_trials=2, epochs=epochs,
                       seeds=1).validate()
    prep = make_plan(config).prep
    result = run_search(prep, cells=["rnn"], units=[8], layers=[1], tuner="random", max_trials=2,
                        schedule=Schedule(epochs, epochs, 1), seed=1, workdir=tmp_path / "tuner",
                        tracker=tracker, progress=lambda event, info: None)
    assert [r["status"] for r in result.trials] == ["COMPLETED", "COMPLETED"]
    assert gc.get_freeze_count() == 0  # the heap frozen during the search is back
    for record in result.trials:
        run = tracker.client.get_run(record["run_id"])
        assert run.info.status == "FINISHED"
        for key in ("loss", "mae", "val_loss", "val_mae"):
            assert [m.step for m in _history(tracker.client, record["run_id"], key)] == \
                list(range(epochs)), key
        assert run.data.metrics["best_val_loss"] == pytest.approx(rel=1e-3, expected=min(
            m.value for m in _history(tracker.client, record["run_id"], "val_loss")))


def test_trials_in_threads_are_the_trials_run_one_after_another(tmp_path, data_dir):
    """--jobs 2: a round's trials (one per cell) train at once; same numbers, seeds, scores,
    record order and finished runs as one at a time, in one SQLite store."""
    from cellpick.config import FitConfig
    from cellpick.engine.search import run_search
    from cellpick.engine.train import Schedule
    from cellpick.pipeline import make_plan
    from cellpick.tracking import Tracker

    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["rnn", "gru"], units=[8], layers=[1], max_trials=2, epochs=3,
                       seeds=1).validate()
    prep = make_plan(config).prep
    results = {}
    for jobs in (1, 2):
        tracker = Tracker(store_uri(tmp_path, f"jobs{jobs}.db"), "jobs")
        tracker.start_fit(f"jobs{jobs}", {"metric": "mae"}, {})
        results[jobs] = run_search(prep, cells=["rnn", "gru"], units=[8], layers=[1],
                                   tuner="random", max_trials=2, schedule=Schedule(3, 3, 1),
                                   seed=1, workdir=tmp_path / f"tuner{jobs}", tracker=tracker,
                                   progress=lambda event, info: None, jobs=jobs)
        runs = tracker.child_runs("trial")
        assert sorted(r.status for r in runs) == ["FINISHED"] * 4
        tracker.finish_fit("FINISHED")
    one, two = ([(r["name"], r["score"]) for r in results[j].trials] for j in (1, 2))
    assert [n for n, _ in one] == [n for n, _ in two] and [n[:6] for n, _ in one] == \
        ["t01-rn", "t02-gr", "t03-rn", "t04-gr"]
    assert [s for _, s in one] == [s for _, s in two]
    assert results[1].best == results[2].best


def test_each_role_shows_metric_names_that_say_what_the_value_is(tracker):
    """Records keep their keys; MLflow shows cross-validated (cv_), fold (fold_) and search
    validation (search_val_) values by those names, and the decayed learning rate apart
    from the searched `learning_rate` param."""
    client = tracker.client
    logged = {}
    for role, record in (
            ("trial", {"score": 5.0, "best_val_mae": 5.0, "best_val_loss": 0.2}),
            ("verdict", {"score": 7.0, "best_val_mae": 6.0, "best_val_loss": 0.3}),
            ("baseline", {"score": 8.0, "best_val_mae": 8.0}),
            ("data", {"score": 9.0, "best_val_mae": 9.0, "val_loss": 0.4})):
        run_id = tracker.start_child(role, role, {"cell": "gru"})
        tracker.log_metrics(run_id, record)
        tracker.log_epochs(run_id, {"loss": [1.0], "learning_rate": [0.0015]})
        tracker.log_metrics(run_id, {"fold_score" if role == "baseline" else "unit_score": 1.0},
                            step=1)
        tracker.end_child(run_id)
        logged[role] = set(client.get_run(run_id).data.metrics)
    assert logged["trial"] == {"search_val_mae", "best_val_loss", "loss", "epoch_learning_rate",
                               "unit_score"}
    assert logged["verdict"] == {"fold_mae", "early_stop_val_mae", "best_val_loss", "loss",
                                 "epoch_learning_rate", "unit_score"}
    assert logged["baseline"] == {"cv_mae", "fold_mae", "loss", "epoch_learning_rate"}
    assert logged["data"] == {"median_fold_mae", "fold_mae", "val_loss", "loss",
                              "epoch_learning_rate"}
    tracker.log_metrics(tracker.parent_id, {"val_mae": 3.0, "test_mae": 3.5})
    assert set(client.get_run(tracker.parent_id).data.metrics) == {"winner_cv_mae", "test_mae"}


def test_summary_runs_span_their_runs_name_their_place_and_chart_the_intervals(tracker, tmp_path):
    import json
    import time

    from cellpick.output.plots import _save, _scores_figure
    from cellpick.tracking import verdict_view_state

    client = tracker.client
    for fold in (1, 2):
        run_id = tracker.start_child("verdict", f"v-gru-u8-l1-f{fold}s1",
                                     {"cell": "gru", "fold": fold, "repeat": 1})
        time.sleep(0.3)
        tracker.end_child(run_id)
    base = tracker.start_child("baseline", "b-arima", {"baseline": "arima"})
    time.sleep(0.2)
    tracker.end_child(base)
    rows = [{"kind": "baseline", "name": "arima", "rank": 1, "mean": 0.9, "lo": 0.0, "hi": 2.0,
             "standing": "best baseline", "places": ("first",), "note": "arima"},
            {"kind": "cell", "name": "gru", "rank": 2, "mean": 1.0, "lo": 0.5, "hi": 1.5,
             "n_params": 10, "params": {"units": 8, "layers": 1}, "config": "units=8 layers=1",
             "standing": "winner", "places": ("best", "exported"), "note": "GRU: the winner."}]
    verdict = {"metric": "mae", "cells": {"gru": {"mean": 1.0, "ci95": [0.5, 1.5]}},
               "baselines": {"arima": 0.9}, "baseline_ci95": {"arima": [0.0, 2.0]},
               "winner": "gru", "comparisons": []}
    picture = _save(_scores_figure(verdict, "MAE"), tmp_path / "scores.png")
    tracker.log_verdict(rows, "GRU wins", "mae", decision="Best cell: GRU.", picture=picture)
    runs = {r.info.run_name: r for r in client.search_runs(
        [tracker.experiment_id], filter_string="tags.`cellpick.role` = 'summary'")}
    assert set(runs) == {"#1 first: b-arima", "#2 best cell, exported: gru-u8-l1"}
    gru, arima = runs["#2 best cell, exported: gru-u8-l1"], runs["#1 first: b-arima"]
    assert gru.data.tags["cellpick.place"] == "best cell, exported"
    assert gru.info.end_time - gru.info.start_time >= 600  # its two fold runs, not ~20 ms
    assert arima.info.end_time - arima.info.start_time >= 200  # its run (no fit_seconds here)
    assert set(gru.data.metrics) == {"cv_mae", "cv_mae_lower", "cv_mae_upper", "rank", "n_params"}
    images = {f.path for f in client.list_artifacts(tracker.parent_id, "images")}
    assert any(p.startswith("images/verdict+step+0+") and p.endswith(".png") for p in images)
    # The chart shows the "compressed" copy: at the picture's own size, not MLflow's 256 px.
    from PIL import Image

    [shown] = [p for p in images if p.endswith("+compressed.webp")]
    with Image.open(client.download_artifacts(tracker.parent_id, shown, str(tmp_path))) as im, \
            Image.open(picture) as full:
        assert im.size == full.size
    note = client.get_run(tracker.parent_id).data.tags["mlflow.note.content"]
    assert note.startswith("Best cell: GRU.\n\n")
    state = verdict_view_state(tracker.parent_id, "mae")
    assert [(c["type"], c.get("imageKeys") or c.get("metricKey")) for c in
            state["compareRunCharts"]] == [("IMAGE", ["verdict"]), ("BAR", "cv_mae"),
                                           ("SCATTER", None)]
    # The picture alone in a full-width section, tall enough to read its labels.
    first = state["compareRunSections"][0]
    assert first["columns"] == 1 and first["cardHeight"] >= 500
    assert state["compareRunCharts"][0]["metricSectionId"] == first["uuid"]
    assert "tags.`cellpick.place`" in state["selectedColumns"]
    exp = client.get_experiment(tracker.experiment_id)
    assert json.loads(exp.tags["mlflow.sharedViewState.cellpick-verdict"])["name"] == "GRU wins"
    assert exp.tags["mlflow.note.content"] == "Latest fit, fit-test: Best cell: GRU."


def test_the_experiment_description_is_the_latest_verdict_unless_the_user_wrote_one(tracker):
    rows = [{"kind": "cell", "name": "gru", "rank": 1, "mean": 1.0, "lo": 0.5, "hi": 1.5,
             "n_params": 10, "params": {"units": 8, "layers": 1}, "config": "units=8 layers=1",
             "standing": "winner", "note": "GRU: the winner."}]
    client, exp = tracker.client, tracker.experiment_id
    tracker.log_verdict(rows, "GRU: the only cell", "mae")
    assert client.get_experiment(exp).tags["mlflow.note.content"] == \
        "Latest fit, fit-test: GRU: the only cell."
    tracker.log_verdict(rows, "GRU wins", "mae")  # cellpick's own: replaced
    assert client.get_experiment(exp).tags["mlflow.note.content"].endswith("GRU wins.")
    client.set_experiment_tag(exp, "mlflow.note.content", "My airline experiments")
    tracker.log_verdict(rows, "GRU wins again", "mae")
    assert client.get_experiment(exp).tags["mlflow.note.content"] == "My airline experiments"
