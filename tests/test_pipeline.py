"""The pipeline's own steps (pipeline.py), without a fit: the seeds a time budget leaves, the
contestants' check, the fit's MLflow parent run and its reopening by --resume. The order of
the stages in one whole fit: tests/e2e/test_fit_e2e.py (its airline fit's progress and runs)."""
from __future__ import annotations

import dataclasses
import time

import pytest
from conftest import store_uri

from cellpick.config import FitConfig
from cellpick.engine.search import SearchResult
from cellpick.engine.budget import Budget
from cellpick.errors import ConfigError
from cellpick.pipeline import _check_contestants, _open_fit, _seeds_that_fit, make_plan, run


def _plan(data, **options):
    return make_plan(FitConfig(data=str(data), **options).validate())


@pytest.fixture(scope="module")
def airline(data_dir):
    return _plan(data_dir / "airline_train.csv", horizon=12, lookback=24, folds=2, seeds=3)


# Two cells whose trials took 20 s each: a verdict seed costs both cells 40 s.
SEARCH = SearchResult(trials=[{"cell": "gru", "train_seconds": 20.0},
                              {"cell": "rnn", "train_seconds": 20.0}], best={"gru": {}, "rnn": {}})


def test_the_verdict_keeps_the_seeds_its_share_covers_in_a_new_plan(airline):
    # A seed: 2 folds x (gru 20 s + rnn 20 s) = 80 s, one model after another; 3 seeds 240 s.
    # The contestants expect half a seed (40 s), the refit+export 15 s + 3 seeds' models x 20 s.
    # 300 s less the reserve (30 s) and the refit's 15-s minimum: 255 s in proportion
    # 240 : 40 : 60, the verdict's 180 s covers two seeds.
    budget = Budget(seconds=300.0, start=time.time(), seeds=3)
    cut, n = _seeds_that_fit(airline, SEARCH, budget)
    # The minimum stays the estimated minimum training (no costs measured here: 0 s).
    assert n == 2 and cut is not airline and budget.plan["verdict"] == (0.0, 240.0)
    assert budget.plan["contestants"] == (0.0, 40.0) and budget.plan["refit+export"] == (15.0, 75.0)
    assert (cut.resampling.folds, cut.resampling.seeds) == (2, 2)
    assert [(u.fold, u.repeat) for u in cut.resampling.units] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert airline.resampling.seeds == 3 and len(airline.resampling.units) == 6  # untouched
    # A spent budget keeps one seed; enough time, or no budget, keeps the plan as it is.
    spent = Budget(seconds=1.0, start=time.time() - 60, seeds=3)
    assert _seeds_that_fit(airline, SEARCH, spent)[1] == 1
    plenty = Budget(seconds=1000.0, start=time.time(), seeds=3)
    for budget in (plenty, None):
        same, n = _seeds_that_fit(airline, SEARCH, budget)
        assert same is airline and n == 3


def test_with_two_workers_a_seeds_cells_train_at_once_so_more_seeds_fit(airline):
    # The same 300 s: a seed now costs 80 / 2 = 40 s of wall, 3 seeds 120 s, which the
    # verdict's share covers (the contestants expect 20 s, the refit+export 75 s).
    budget = Budget(seconds=300.0, start=time.time(), seeds=3)
    same, n = _seeds_that_fit(airline, SEARCH, budget, workers=2)
    assert n == 3 and same is airline and budget.plan["verdict"] == (0.0, 120.0)
    # More workers than cells train no faster than one cell per worker.
    budget = Budget(seconds=300.0, start=time.time(), seeds=3)
    _seeds_that_fit(airline, SEARCH, budget, workers=8)
    assert budget.plan["verdict"] == (0.0, 120.0)


def test_contestants_that_do_not_fit_the_task_are_a_config_error(data_dir):
    plan = _plan(data_dir / "GunPoint_train.csv", target="label", contestants="ets")
    with pytest.raises(ConfigError, match="The 'contestants' option: "):
        _check_contestants(plan)
    _check_contestants(_plan(data_dir / "GunPoint_train.csv", target="label",
                             contestants="majority"))


def test_a_worker_config_is_refused_by_run():
    config = dataclasses.replace(FitConfig(), role="worker")
    with pytest.raises(ConfigError, match="a worker runs its chief.s trials and units only"):
        run(config)


def test_the_fits_parent_run_holds_the_plan_and_resume_reopens_it(airline, tmp_path):
    uri = store_uri(tmp_path)
    plan = dataclasses.replace(airline, config=dataclasses.replace(airline.config, tracking_uri=uri))
    tracker = _open_fit(plan)
    run_ = tracker.client.get_run(tracker.parent_id)
    assert tracker.experiment_name == "airline_train"
    assert run_.data.tags["cellpick.role"] == "search" and run_.info.status == "RUNNING"
    params = run_.data.params
    assert {k: params[k] for k in ("task", "layout", "lookback", "horizon", "season", "folds",
                                   "seeds", "resampling", "metric")} == {
        "task": "forecast", "layout": "series", "lookback": "24", "horizon": "12",
        "season": "12", "folds": "2", "seeds": "3", "resampling": "rolling-origin",
        "metric": "mae"}
    tracker.finish_fit("KILLED", "interrupted by the user")
    # An unfinished fit: --resume with the same options reopens that run.
    resumed = _open_fit(dataclasses.replace(plan, config=dataclasses.replace(plan.config,
                                                                              resume=True)))
    try:
        assert resumed.parent_id == tracker.parent_id
        assert resumed.client.get_run(resumed.parent_id).info.status == "RUNNING"
    finally:
        resumed.finish_fit("FINISHED")
    # Finished now: nothing to resume.
    with pytest.raises(ConfigError, match="nothing to resume"):
        _open_fit(dataclasses.replace(plan, config=dataclasses.replace(plan.config, resume=True)))


def test_a_lookback_the_data_level_stage_chooses_is_no_param_before_it_is_chosen(
        data_dir, tmp_path):
    plan = _plan(data_dir / "airline_train.csv", horizon=12, folds=2, seeds=1,
                 tracking_uri=store_uri(tmp_path))
    tracker = _open_fit(plan)
    try:
        assert "lookback" not in tracker.client.get_run(tracker.parent_id).data.params
    finally:
        tracker.finish_fit("FINISHED")
