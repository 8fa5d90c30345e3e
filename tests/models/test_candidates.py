"""The cells on equal footing: one fixed candidate list, served by a keras-tuner Oracle.

The list itself is pure arithmetic (grid or scrambled Sobol subset); the search tests run
real keras-tuner searches of tiny real Keras models with a real MLflow store in tmp_path.
"""
from __future__ import annotations

import pytest
from conftest import store_uri

from cellpick.models.candidates import candidate_list, grid_size

DIMS = [("cell", ["gru"]), ("units", [8, 16, 32, 64]), ("layers", [1, 2]),
        ("dropout", [0.0, 0.2]), ("learning_rate", [1e-3, 3e-3])]  # a grid of 32


def _key(config: dict) -> tuple:
    return tuple(sorted(config.items()))


def test_a_budget_that_covers_the_grid_tries_the_whole_grid_once():
    listed = candidate_list(DIMS, 40, seed=1)
    assert len(listed) == grid_size(DIMS) == 32
    assert len({_key(c) for c in listed}) == 32


@pytest.mark.parametrize("budget", [1, 4, 12, 31])
def test_a_smaller_budget_gets_distinct_grid_points_fixed_by_the_seed(budget):
    listed = candidate_list(DIMS, budget, seed=7)
    assert len(listed) == budget and len({_key(c) for c in listed}) == budget
    assert all(c[name] in values for c in listed for name, values in DIMS)
    assert listed == candidate_list(DIMS, budget, seed=7)  # the same list every time


def test_the_defaults_come_first_then_a_quasi_random_subset_that_follows_the_seed():
    listed = candidate_list(DIMS, 8, seed=3)
    # The defaults (each first value): the cheapest configuration, a one-trial search's only one.
    assert listed[0] == {"cell": "gru", "units": 8, "layers": 1, "dropout": 0.0,
                         "learning_rate": 1e-3}
    assert candidate_list(DIMS, 1, seed=3) == listed[:1] == candidate_list(DIMS, 1, seed=9)
    # The rest spreads: 8 points balance every binary dimension and cover every width.
    for name, values in DIMS[2:]:
        assert sorted(c[name] for c in listed) == sorted(values * 4), name
    assert {c["units"] for c in listed} == {8, 16, 32, 64}
    assert candidate_list(DIMS, 8, seed=4) != listed
    assert candidate_list(DIMS, 8, seed=4)[0] == listed[0]


def _search(plan, tracker, tmp_path, cells, max_trials, name, units=(4, 8)):
    from cellpick.engine.search import run_search

    return run_search(plan.prep, cells=cells, units=list(units), layers=[1, 2], tuner="random",
                      max_trials=max_trials, schedule=plan.schedule, seed=plan.config.seed,
                      workdir=tmp_path / name, tracker=tracker,
                      progress=lambda event, info: None)


@pytest.fixture
def tracker(tmp_path):
    from cellpick.tracking import Tracker

    t = Tracker(store_uri(tmp_path), "candidates")
    t.start_fit("fit-test", {"metric": "mae"}, {})
    yield t
    t.finish_fit()


def _configs(result, cell):
    skip = ("cell", "trial_id", "name", "score", "best_val_loss", "epochs", "n_params",
            "train_seconds", "status", "error", "run_id")
    return [{k: v for k, v in r.items() if k not in skip} for r in result.trials
            if r["cell"] == cell]


def test_every_cell_tries_the_same_list_and_results_do_not_change_it(tracker, tmp_path, data_dir):
    from cellpick.config import FitConfig
    from cellpick.pipeline import make_plan

    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=12,
                       epochs=1, seed=5).validate()
    plan = make_plan(config)
    first = _search(plan, tracker, tmp_path, ["gru", "rnn"], 2, "a")
    gru, rnn = _configs(first, "gru"), _configs(first, "rnn")
    assert len(gru) == 2 and gru == rnn
    from cellpick.models.cells import DROPOUTS, LEARNING_RATES

    expected = candidate_list(
        [("units", [4, 8]), ("layers", [1, 2]), ("dropout", DROPOUTS),
         ("learning_rate", LEARNING_RATES)], 2)
    assert [{k: c[k] for k in ("units", "layers", "dropout", "learning_rate")} for c in gru] \
        == expected
    # Other results (another lookback: other data, other scores) and another --seed: the list
    # is the same (it follows the space and the budget only).
    other = make_plan(FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12,
                                lookback=24, epochs=1, seed=6).validate())
    second = _search(other, tracker, tmp_path, ["rnn"], 2, "b")
    assert [r["score"] for r in second.trials] != [r["score"] for r in first.trials if r["cell"] == "rnn"]
    assert _configs(second, "rnn") == gru
