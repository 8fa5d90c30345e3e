"""The verdict's training stage (stages/crossval.py) on a 2-fold x 1-seed resampling of the
airline series: one score per unit on its scoring block, in user units; a unit whose training
diverges scores NaN; one MLflow child run per unit. Real Keras, one epoch, 8 units."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DATA_LEVEL, store_uri

from cellpick.config import FitConfig
from cellpick.engine.train import Schedule
from cellpick.stages.crossval import cross_validate, unit_schedule
from cellpick.stages.plan import make_plan
from cellpick.tracking import Tracker
from cellpick.verdict import score

BASE = {"units": 8, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3, **DATA_LEVEL}
# A NaN learning rate: the first step makes every weight NaN, a real divergence.
BEST = {"gru": {"cell": "gru", **BASE}, "rnn": {"cell": "rnn", **BASE, "learning_rate": math.nan}}


@pytest.fixture(scope="module")
def fit(tmp_path_factory, data_dir):
    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["gru", "rnn"], units=[8], layers=[1], epochs=1, folds=2, seeds=1,
                       jobs=2, **DATA_LEVEL).validate()
    plan = make_plan(config)
    tracker = Tracker(store_uri(tmp_path_factory.mktemp("crossval")), "crossval")
    tracker.start_fit("crossval", {"metric": plan.metric}, {})
    events = []
    cv = cross_validate(plan, BEST, tracker=tracker,
                        progress=lambda event, info: events.append((event, info)))
    tracker.finish_fit()
    return plan, tracker, cv, events


def test_one_schedule_serves_every_unit_the_median_units_training_part(fit):
    plan = fit[0]
    sizes = sorted(u.prep.sizes["train"] for u in plan.resampling.units)
    assert sizes[0] < sizes[1] < plan.prep.sizes["train"]  # the origins' training parts grow
    batch = plan.prep.batch_size()
    assert unit_schedule(plan) == Schedule.for_data(int(np.median(sizes)), batch, 1)
    assert unit_schedule(plan).steps_per_epoch < plan.schedule.steps_per_epoch


def test_every_unit_of_a_cell_gets_a_score_in_user_units_on_its_scoring_block(fit):
    plan, _, cv, _ = fit
    assert [c.cell for c in cv.cells] == ["gru", "rnn"]  # the search's order
    gru = cv.cells[0]
    assert gru.config == BEST["gru"] and gru.n_params > 0
    assert len(gru.scores) == 2 and all(math.isfinite(s) and s > 0 for s in gru.scores)
    assert gru.fold_scores == [[gru.scores[0]], [gru.scores[1]]]  # folds x seeds
    runs = cv.runs["gru"]
    assert [(r.fold, r.repeat, r.seed) for r in runs] == [(0, 0, 1042), (1, 0, 1042)]
    assert [r.score for r in runs] == gru.scores
    assert gru.train_seconds == pytest.approx(np.mean([r.seconds for r in runs]))
    for unit, run in zip(plan.resampling.units, runs):
        # The run's export model, scored against the scoring block's raw targets.
        x, y = unit.prep.arrays("score")
        assert run.score == pytest.approx(score("forecast", y, run.model.predict(x, verbose=0)),
                                          rel=1e-5)
        assert run.epochs > 0


def test_a_unit_whose_training_diverges_scores_nan_and_the_others_go_on(fit):
    _, _, cv, events = fit
    rnn = cv.cells[1]
    assert rnn.cell == "rnn" and len(rnn.scores) == 2
    assert all(math.isnan(s) for s in rnn.scores)
    assert all(math.isnan(row[0]) for row in rnn.fold_scores)
    assert all(math.isfinite(s) for s in cv.cells[0].scores)  # the other cell is untouched
    ends = {info["cell"]: info for event, info in events if event == "cell_end"}
    assert math.isnan(ends["rnn"]["mean"]) and math.isfinite(ends["gru"]["mean"])


def test_the_stage_says_what_it_trains_then_each_cell_as_it_ends(fit):
    events = fit[3]
    assert [e for e, _ in events] == ["stage", "cell_end", "cell_end"]
    assert events[0][1] == {"name": "verdict", "cells": ["gru", "rnn"], "folds": 2, "seeds": 1,
                            "kind": "rolling-origin", "jobs": 2}
    gru = events[1][1]
    assert (gru["cell"], gru["units"], gru["metric"]) == ("gru", 2, "mae")
    assert gru["low"] <= gru["mean"] <= gru["high"]


def test_each_unit_is_a_verdict_child_run_counted_from_one(fit):
    _, tracker, cv, _ = fit
    runs = tracker.child_runs("verdict")
    assert sorted((r.params["cell"], r.params["fold"], r.params["repeat"], r.params["seed"])
                  for r in runs) == [(c, f, "1", "1042") for c in ("gru", "rnn") for f in "12"]
    assert {r.status for r in runs} == {"FINISHED"}
    for r in tracker.child_runs("verdict", cell="gru"):
        metrics = tracker.client.get_run(r.run_id).data.metrics
        assert {"fold_mae", "n_params", "best_val_loss"} <= set(metrics)
        unit = cv.runs["gru"][int(r.params["fold"]) - 1]
        assert metrics["fold_mae"] == pytest.approx(unit.score, rel=1e-3)  # 4 digits shown
    assert sorted(cv.curves) == ["v-gru-u8-l1-f1s1", "v-gru-u8-l1-f2s1", "v-rnn-u8-l1-f1s1",
                                 "v-rnn-u8-l1-f2s1"]
    assert cv.curves["v-gru-u8-l1-f1s1"]["cell"] == "gru"


def test_under_a_budget_every_cell_trains_until_the_shares_end_or_its_floor():
    """Every cell's deadline is the verdict's share's end (they train at once: the same wall
    time each), and never less than SAFETY times its own estimated minimum from its start."""
    import time

    from cellpick.engine.budget import SAFETY, Budget, Cost, CostModel
    from cellpick.stages.crossval import _deadlines

    # 100 steps: 1 + 1 + 1 s and 1 + 100 + 1 s a model (its setup, its steps, its run)
    cheap, dear = Cost(1.0, 0.01, 0.0), Cost(1.0, 1.0, 0.0)
    budget = Budget(200.0, time.time(), seeds=1, min_steps=100, round_steps=100,
                    costs={"gru": CostModel(cheap, cheap, 1, 1, {"units": 4, "layers": 1}),
                           "lstm": CostModel(dear, dear, 1, 1, {"units": 4, "layers": 1})})
    budget.plan = {"verdict": (0.0, 100.0)}
    budget.begin("verdict")
    cells = [(c, {"units": 4, "layers": 1}) for c in ("gru", "lstm")]
    gru, lstm = _deadlines(budget, cells, folds=3)
    end = budget.stage_deadline("verdict")
    assert gru() == end  # 2 x 3 x 3 s of floor: within the share
    assert lstm() - time.time() == pytest.approx(SAFETY * 3 * 102.0, abs=0.5)  # its floor
    assert _deadlines(None, cells, folds=3) is None
