"""The fit's record (stages/record.py): built once from the stages' results, serialised in
verdict.json's key order, frozen; the budget's cut; a new plan when the budget cuts seeds;
and a past fit's verdict.json (version 1) read on `cellpick report`'s path. No training: the
plan is real (airline), the scores fixed."""
from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from conftest import DATA_LEVEL

from cellpick.config import FitConfig
from cellpick.engine.search import SearchResult
from cellpick.engine.budget import Budget
from cellpick.output.leaderboard import leaderboard, leaderboard_text
from cellpick.pipeline import _seeds_that_fit
from cellpick.stages.contest import BaselineScores, Entry
from cellpick.stages.datalevel import DataChoice
from cellpick.stages.plan import make_plan
from cellpick.stages.record import FitRecord, build
from cellpick.stages.refit import ExportChoice, TestScores, Winner
from cellpick.verdict import CellResult, Verdict, decide

# verdict.json's keys, in the order a fit on main wrote them (before the record was a type).
KEYS = ["metric", "greater_is_better", "cells", "comparisons", "baselines", "best_baseline",
        "winner", "best_mean_cell", "reason", "beats_best_baseline", "test_score",
        "schema_version", "resampling", "decision", "rope", "baseline_fold_scores",
        "baseline_comparisons", "standing", "baseline_ci95", "best_baseline_test_score",
        "baseline_test_scores", "baseline_notes", "contestants", "best_cell", "first_place",
        "exported", "export_line", "export_best", "contestant_graphs", "test_size", "export",
        "refit", "trained", "ensemble", "patch", "linear_path", "data_level"]
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def plan(data_dir):
    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["gru", "rnn"], units=[8], layers=[1], max_trials=4, folds=2,
                       seeds=2, **DATA_LEVEL).validate()
    return make_plan(config)


def _stages(plan, *, winner_kind="cell"):
    """The stages' results for a record: GRU practically better than SimpleRNN, one ridge."""
    shape = (plan.resampling.folds, plan.resampling.seeds)
    gru = CellResult("gru", {"cell": "gru", "units": 8, "patch": 1}, n_params=300,
                     fold_scores=(20.0 + RNG.normal(0, 0.1, shape)).tolist())
    rnn = CellResult("rnn", {"cell": "rnn", "units": 8}, n_params=90,
                     fold_scores=(40.0 + RNG.normal(0, 0.1, shape)).tolist())
    decision = decide([gru, rnn], plan.metric, plan.greater_is_better,
                      baselines={"ridge": [30.0] * shape[0]}, resampling=plan.resampling)
    baselines = BaselineScores(means={"ridge": 30.0},
                               entries={"ridge": Entry("ridge", "scored", seconds=1.234)})
    if winner_kind == "cell":
        winner = Winner("gru", gru.config, [1042, 2042], [None, None], None, "refit", 2.5, 40)
    else:
        winner = Winner("ridge", {"alpha": 1.0}, [], [None], None, "refit", kind="baseline",
                        baseline={"name": "ridge", "library": "scikit-learn Ridge"})
    choice = ExportChoice("gru", decision.cells["gru"]["mean"], "gru", "cell",
                          decision.cells["gru"]["mean"], winner.cell,
                          "cell" if winner_kind == "cell" else "contestant", "Exported: GRU.")
    test = TestScores(np.float64(21.5), 31.0, {"ridge": 31.0})
    data = DataChoice(values=dict(DATA_LEVEL), decided=[], given=sorted(DATA_LEVEL))
    return decision, winner, test, choice, baselines, data


def test_the_record_has_verdict_json_keys_in_their_order_and_is_plain_json(plan):
    decision, winner, test, choice, baselines, data = _stages(plan)
    record = build(plan, decision, winner, test, choice, search=SearchResult(rounds=4),
                   baselines=baselines, data_level=data, n_seeds=2)
    d = record.to_dict()
    assert list(d) == KEYS  # no budget: no `budget` key
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert type(d["test_score"]) is float and d["test_score"] == 21.5
    same = [k for k in decision.to_dict() if k not in ("test_score", "resampling")]
    assert {k: d[k] for k in same} == {k: decision.to_dict()[k] for k in same}
    assert d["resampling"] == {**decision.to_dict()["resampling"], **plan.resampling.to_dict()}
    assert d["export"] == {"kind": "cell", "cell": "gru"}
    assert d["refit"]["epochs"] == 2.5 and d["refit"]["steps"] == 40
    assert d["ensemble"] == {"models": 2, "seeds": [1042, 2042]} and d["trained"] == "refit"
    assert d["contestants"] == {"ridge": {"status": "scored", "seconds": 1.23, "limit": 0.0,
                                          "reason": "", "exportable": False}}
    assert d["best_cell"] == {"name": "gru", "mean": decision.cells["gru"]["mean"]}
    assert d["data_level"]["given"] == ["linear", "log", "scaling"]
    assert (record.val_score, record.exported_val_score) == (decision.cells["gru"]["mean"],) * 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.reason = "extended later"


def test_every_verdict_field_is_a_record_field_in_the_same_order():
    verdict = [f.name for f in dataclasses.fields(Verdict)]
    assert [f.name for f in dataclasses.fields(FitRecord)][:len(verdict)] == verdict


def test_an_exported_baseline_is_scored_by_its_own_cross_validated_mean(plan):
    decision, winner, test, choice, baselines, data = _stages(plan, winner_kind="baseline")
    record = build(plan, decision, winner, test, choice, search=SearchResult(rounds=4),
                   baselines=baselines, data_level=data, n_seeds=2)
    assert record.export == {"kind": "baseline", "baseline": "ridge", "name": "ridge",
                             "library": "scikit-learn Ridge"}
    assert record.refit is None and record.ensemble is None
    assert record.exported_val_score == 30.0 and record.winner == "gru"


@pytest.mark.parametrize("cut_short,n_seeds,cut", [(False, 2, False), (True, 2, True),
                                                   (False, 1, True)])
def test_the_budget_says_what_it_cut(plan, cut_short, n_seeds, cut):
    decision, winner, test, choice, baselines, data = _stages(plan)
    budget = Budget(60.0, time.time(), seeds=2)
    record = build(plan, decision, winner, test, choice,
                   search=SearchResult(rounds=3, cut_short=cut_short), baselines=baselines,
                   data_level=data, n_seeds=n_seeds, budget=budget)
    d = record.to_dict()
    assert list(d) == [*KEYS, "budget"]
    b = d["budget"]
    assert (b["seconds"], b["cut_short"], b["trials_per_cell"], b["seeds"]) == (60.0, cut, 3, n_seeds)
    said = {"trials": "the search to 3 of 4 trials per cell",
            "seeds": f"the verdict to {n_seeds} of 2 seeds per fold"}
    cuts = [k for k, on in (("trials", cut_short), ("seeds", n_seeds < 2)) if on]
    assert list(b["cut"]) == cuts
    sentence = f"The time budget (60 s) cut {' and '.join(said[k] for k in cuts)}."
    assert d["reason"].endswith(sentence) == cut
    assert d["reason"].startswith(decision.reason)


def test_a_budget_that_cuts_seeds_gives_a_new_plan_and_leaves_the_old_one(plan):
    spent = Budget(10.0, time.time() - 100, seeds=plan.resampling.seeds)
    search = SearchResult(trials=[{"train_seconds": 5.0}], best={"gru": {}, "rnn": {}})
    before = plan.resampling
    cut, n = _seeds_that_fit(plan, search, spent)
    assert n == 1 and cut.resampling.seeds == 1 and cut is not plan
    assert {u.repeat for u in cut.resampling.units} == {0}
    assert plan.resampling is before and before.seeds == 2
    assert _seeds_that_fit(plan, search, None) == (plan, 2)


def test_the_verdicts_minimum_is_the_chosen_configurations_minimum_not_their_whole_trials(plan):
    """Trials train to convergence: what they took is what a seed is expected to cost, while
    the verdict's floor (SAFETY times its minimum) stays the estimated minimum training."""
    from cellpick.engine.budget import Cost, CostModel

    cost = Cost(setup=1.0, step=0.01, round=0.0)  # 200 steps: 3 s, + 1 s a trial
    model = CostModel(cost, cost, 20, 20, {"units": 4, "layers": 1})
    budget = Budget(600.0, time.time(), seeds=2, min_steps=200, round_steps=200,
                    costs={"gru": model, "rnn": model})
    chosen = {"units": 4, "layers": 1}
    search = SearchResult(trials=[{"cell": "gru", "units": 4, "layers": 1, "train_seconds": 90.0},
                                  {"cell": "gru", "units": 64, "layers": 1, "train_seconds": 500.0},
                                  {"cell": "rnn", "units": 4, "layers": 1, "train_seconds": 30.0}],
                          best={"gru": chosen, "rnn": chosen})
    _seeds_that_fit(plan, search, budget)
    folds = plan.resampling.folds
    assert budget.plan["verdict"] == (pytest.approx(folds * 2 * 4.0),
                                      pytest.approx(folds * (90.0 + 30.0) * 2))
    # The later stages from the same measurements: half a seed, and the finish plus the
    # longest model once per exported seed (the ensemble of both seeds, by default).
    assert budget.plan["contestants"][1] == pytest.approx(folds * 120.0 / 2)
    assert budget.plan["refit+export"] == (15.0, pytest.approx(15.0 + 2 * 90.0))


def test_a_version_1_verdict_json_reads_on_the_report_path():
    """`cellpick report` prints a past fit's verdict.json as MLflow holds it; one written
    before folds (no schema_version, resampling, decision, standing) still reads."""
    old = {"metric": "mae", "greater_is_better": False, "winner": "gru", "best_mean_cell": "lstm",
           "cells": {"gru": {"config": {"units": 8}, "scores": [1.0, 1.1], "mean": 1.05,
                             "ci95": [0.4, 1.7], "n_params": 10, "train_seconds": 1.0}},
           "comparisons": [{"a": "lstm", "b": "gru", "test": "paired t-test", "p_value": 0.4,
                            "mean_diff": 0.1}],
           "baselines": {"naive": 2.0}, "best_baseline": "naive", "reason": "GRU is cheaper.",
           "beats_best_baseline": True, "test_score": None, "refit": None}
    text = leaderboard_text(leaderboard(old, []), old)
    assert "GRU is cheaper." in text
    assert "naive" in text and "1.05" in text


def test_the_budget_names_the_verdict_models_it_stopped_before_early_stopping(plan):
    decision, winner, test, choice, baselines, data = _stages(plan)
    budget = Budget(60.0, time.time(), seeds=2)
    budget.cuts["training"] = {"gru": "3 of 3", "rnn": "1 of 3"}  # as cross_validate notes it
    d = build(plan, decision, winner, test, choice, search=SearchResult(rounds=4),
              baselines=baselines, data_level=data, n_seeds=2, budget=budget).to_dict()
    assert d["budget"]["cut"] == {"training": {"gru": "3 of 3", "rnn": "1 of 3"}}
    assert d["reason"].endswith(
        "The time budget (60 s) cut the verdict's training (it stopped 3 of 3 gru, 1 of 3 rnn "
        "fold models before early stopping did).")
