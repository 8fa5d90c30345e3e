"""The export's model (stages/refit.py): how long the winner retrains, what build_winner trains
(refit on all non-test data, early stopping, or the fold models when the budget is spent), and
what choose_export ships and says. A 2-fold x 2-seed GRU-8 on airline, one epoch."""
from __future__ import annotations

import dataclasses
import math
import time

import pytest
from conftest import DATA_LEVEL, store_uri

from cellpick.config import FitConfig
from cellpick.engine.budget import Budget
from cellpick.stages.contest import BaselineScores, Entry, FinalBaselines, final_baselines
from cellpick.stages.crossval import cross_validate
from cellpick.stages.plan import make_plan
from cellpick.stages.refit import (
    REFIT_BELOW,
    build_winner,
    choose_export,
    refit_epochs,
    score_test,
)
from cellpick.tracking import Tracker
from cellpick.verdict import decide

GRU = {"cell": "gru", "units": 8, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3, **DATA_LEVEL}


@pytest.fixture(scope="module")
def fit(tmp_path_factory, data_dir):
    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["gru"], units=[8], layers=[1], epochs=1, folds=2, seeds=2,
                       **DATA_LEVEL).validate()
    plan = make_plan(config)
    tracker = Tracker(store_uri(tmp_path_factory.mktemp("refit")), "refit")
    tracker.start_fit("refit", {"metric": plan.metric}, {})
    cv = cross_validate(plan, {"gru": GRU}, tracker=tracker)
    tracker.finish_fit()
    return plan, cv


def _with(plan, **options):
    return dataclasses.replace(plan, config=dataclasses.replace(plan.config, **options))


@pytest.fixture(scope="module")
def single(fit):
    """--no-refit --no-ensemble: one model with early stopping; the progress it reported."""
    plan, cv = fit
    events = []
    winner = build_winner(_with(plan, refit=False, ensemble=False), "gru", cv,
                          progress=lambda event, info: events.append((event, info)))
    return winner, events


@pytest.mark.parametrize("epochs,want", [
    ([3.0, 0.6], 1.8),  # the median of the folds' best epoch counts
    ([1.0, 9.0, 2.0], 2.0),  # the median, not the mean (4.0)
    ([0.2, 0.4], 1.0),  # at least one epoch
    ([math.nan, 2.0, 4.0], 3.0),  # a failed unit's count is left out
    ([math.nan], 1.0),
    ([], 1.0),
])
def test_the_refit_trains_the_median_of_the_folds_best_epoch_counts(epochs, want):
    assert refit_epochs(epochs) == pytest.approx(want)


def test_small_data_is_refit_on_train_and_validation_as_one_member_per_seed(fit):
    plan, cv = fit
    assert plan.prep.sizes["train"] < REFIT_BELOW  # so --refit defaults to on
    events = []
    winner = build_winner(plan, "gru", cv, progress=lambda event, info: events.append((event, info)))
    epochs = refit_epochs([r.epochs for r in cv.runs["gru"]])
    spe = math.ceil((plan.prep.sizes["train"] + plan.prep.sizes["val"]) / plan.prep.batch_size())
    assert (winner.how, winner.refit, winner.kind) == ("refit", True, "cell")
    assert (winner.cell, winner.config) == ("gru", GRU)
    assert winner.epochs == epochs and winner.steps == max(1, round(epochs * spe))
    assert events == [("stage", {"name": "refit", "epochs": epochs, "models": 2})]
    # --ensemble (default): one member per verdict seed, the export their mean.
    assert winner.seeds == [1042, 2042] and len(winner.models) == 2
    assert [layer.name for layer in winner.model.layers if layer.name.startswith("member")] == \
        ["member_1", "member_2"]


def test_no_refit_and_no_ensemble_train_one_model_with_early_stopping(single):
    winner, events = single
    assert (winner.how, winner.refit, winner.epochs, winner.steps) == ("early-stopping", False,
                                                                      None, None)
    assert winner.seeds == [1042] and winner.models == [winner.model]
    assert events == [("stage", {"name": "final", "models": 1})]


def test_a_spent_budget_exports_the_best_fold_models_without_training(fit):
    plan, cv = fit
    spent = Budget(seconds=1.0, start=time.time() - 60, seeds=2)
    events = []
    winner = build_winner(plan, "gru", cv, budget=spent,
                          progress=lambda event, info: events.append((event, info)))
    best = sorted(cv.runs["gru"], key=lambda r: r.score)[:2]  # MAE: lowest first
    assert winner.how == "folds" and not winner.refit and events == []
    assert all(a is b.model for a, b in zip(winner.models, best))
    assert winner.seeds == [r.seed for r in best]


def test_without_a_test_split_nothing_is_scored_on_it(fit, single):
    plan, winner = fit[0], single[0]
    assert plan.prep.sizes["test"] == 0
    test = score_test(plan, winner, "naive", {})
    assert (test.winner, test.best_baseline, test.baselines) == (None, None, {})


def _decision(plan, cv):
    return decide(cv.cells, plan.metric, plan.greater_is_better, resampling=plan.resampling)


def test_the_best_cell_is_exported_when_no_contestant_beats_it(fit, single):
    plan, cv = fit
    decision = _decision(plan, cv)
    mean = decision.cells["gru"]["mean"]
    winner = single[0]
    shipped, choice = choose_export(plan, decision, winner,
                                    BaselineScores(means={"naive": 10 * mean}), FinalBaselines())
    assert shipped is winner
    assert (choice.best_cell, choice.first_place, choice.first_kind) == ("gru", "gru", "cell")
    assert (choice.exported, choice.exported_kind, choice.export_best) == ("gru", "cell", "")
    assert choice.line.startswith("Exported: GRU, the best cell and first place (cross-validated MAE")
    assert choice.graphs == {}


def test_a_contestant_above_the_cell_whose_refit_failed_is_named_not_shipped(fit, single):
    plan, cv = fit
    decision = _decision(plan, cv)
    winner = single[0]
    scores = BaselineScores(means={"ets": 1.0, "naive": math.nan})
    shipped, choice = choose_export(_with(plan, export="best"), decision, winner, scores,
                                    FinalBaselines())
    assert shipped is winner  # nothing exportable above the cell: --export best keeps it
    assert (choice.first_place, choice.first_kind, choice.first_mean) == ("ets", "contestant", 1.0)
    assert choice.graphs == {"ets": {"exportable": False,
                                     "reason": "its refit failed or ran past its limit"}}
    assert choice.line.endswith("first place: ets (1.00), not exportable (its refit failed or "
                                "ran past its limit); no contestant above the best cell is "
                                "exportable.")
    assert choice.export_best == ("The ets baseline is not exportable (its refit failed or ran "
                                  "past its limit); no contestant above the best cell is.")


def test_export_best_ships_the_first_contestant_whose_graph_reproduces_it(fit, single):
    plan, cv = fit
    decision = _decision(plan, cv)
    winner = single[0]
    # The cross-validated means are given; the refit and its graph's check are real.
    scores = BaselineScores(matrices={"snaive": [[1.0, 1.0]] * 2}, means={"snaive": 1.0},
                            entries={"snaive": Entry("snaive", "scored", limit=60.0,
                                                     exportable=True)})
    final = final_baselines(plan, scores, refit=True)
    assert set(final.models) == {"snaive"}, final.notes
    kept, told = choose_export(plan, decision, winner, scores, final)
    assert kept is winner and told.export_best == "--export best ships the snaive baseline."
    assert told.line.endswith("first place: snaive (1.00), shipped by --export best.")
    shipped, choice = choose_export(_with(plan, export="best"), decision, winner, scores, final)
    assert (shipped.kind, shipped.cell, shipped.how) == ("baseline", "snaive", "refit")
    assert shipped.baseline["library"] == "numpy"
    assert choice.graphs["snaive"]["exportable"] is True
    assert (choice.exported, choice.exported_kind) == ("snaive", "contestant")
    assert choice.line.startswith("Exported: snaive, first place (cross-validated MAE 1.00), "
                                  "by --export best; the best cell: GRU")
