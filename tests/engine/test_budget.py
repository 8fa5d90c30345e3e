"""The time budget (engine/budget.py): the division and its re-balancing, the refusal of a
budget below the minimum with the smallest that would do, each cell's cost measured on real
windows, and a search trial never scored before the minimum training the plan states. What
is divided and cut is checked, never a wall time."""
from __future__ import annotations

import time

import pytest
from conftest import store_uri

from cellpick.config import FitConfig
from cellpick.engine.budget import (STAGES, Budget, Cost, CostModel, calibrate, calibrate_range,
                                   duration, nice_ceiling, recurrent_macs, split)
from cellpick.errors import ConfigError
from cellpick.stages.plan import make_plan

# (minimum, expected) seconds per stage: 45 s of minimums, 60 s wanted beyond them.
PLAN = {"data-level": (0.0, 10.0), "search": (10.0, 30.0), "verdict": (20.0, 40.0),
        "contestants": (0.0, 10.0), "refit+export": (15.0, 15.0)}


def _budget(seconds: float, **kw) -> Budget:
    return Budget(seconds, time.time(), seeds=3, plan=dict(PLAN), **kw)


def test_each_stage_gets_its_minimum_and_the_rest_by_what_it_expects_beyond_it():
    shares = split(90.0, [(s, *PLAN[s]) for s in STAGES])
    # 45 s of minimums; the 45 s left go 10:20:20:10:0 (what each expects beyond its minimum)
    assert shares == pytest.approx({"data-level": 7.5, "search": 25.0, "verdict": 35.0,
                                    "contestants": 7.5, "refit+export": 15.0})
    # More than expected: the surplus in the same proportion; less than the minimums: those.
    assert split(165.0, [(s, *PLAN[s]) for s in STAGES])["search"] == pytest.approx(50.0)
    assert split(10.0, [(s, *PLAN[s]) for s in STAGES]) == {s: m for s, (m, _) in PLAN.items()}


def test_what_a_stage_leaves_unused_flows_to_the_later_ones():
    budget = _budget(100.0)  # a reserve of 10 s: 90 s divided
    budget.check()
    assert budget.division == pytest.approx({"data-level": 7.5, "search": 25.0, "verdict": 35.0,
                                             "contestants": 7.5, "refit+export": 15.0}, abs=0.5)
    budget.begin("data-level")
    budget.end("data-level")  # spent nothing of its 7.5 s: the four later stages share 90 s
    assert budget.begin("search") == pytest.approx(28.0, abs=0.5)
    assert budget.stage_left("search") == pytest.approx(28.0, abs=0.5)
    budget.end("search")
    assert set(budget.spent) == {"start", "data-level", "search"}
    record = budget.record()
    assert list(record["division"]) == list(STAGES) and record["cut"] == {}
    assert (record["reserve"], record["tolerance"]) == (10.0, 10.0)


def test_a_budget_below_the_minimums_is_refused_naming_the_smallest_that_would_do():
    budget = _budget(40.0)
    with pytest.raises(ConfigError) as refused:
        budget.check()
    # 45 s of minimums + the reserve (at least 5 s, or 10% of the budget): 50 s.
    assert str(refused.value) == (
        "--time-budget 40s is too small for this data: one trained trial per cell and one seed "
        "per fold need about 50s; pass --time-budget 1m20s or more")
    _budget(50.0).check()  # the smallest is enough; the named one has headroom for the timing
    assert (duration(190), duration(600), duration(3725), nice_ceiling(601)) == \
        ("3m10s", "10m", "1h2m5s", 660.0)


@pytest.fixture(scope="module")
def airline(data_dir):
    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["gru", "rnn"], units=[8], layers=[1], max_trials=2, epochs=3,
                       folds=2, seeds=1).validate()
    return make_plan(config)


def test_each_cells_cost_is_measured_on_the_plans_windows(airline):
    cfg = {"units": 8, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3,
           **airline.prep.preprocessing}
    costs = calibrate(airline.prep, {c: {"cell": c, **cfg} for c in ("gru", "rnn")})
    assert set(costs) == {"gru", "rnn"}
    for cost in costs.values():
        assert cost.step > 0 and cost.setup > 0 and cost.round >= 0
        # more steps and more models cost more; the per-trial overhead is in every estimate
        assert cost.seconds(200, 24) > cost.seconds(24, 24) > 0
        assert cost.seconds(24, 24, members=2) > cost.seconds(24, 24)
    # One candidate per cell: the cheapest is the costliest, calibrated once.
    same = {c: {"cell": c, **cfg} for c in ("gru",)}
    [model] = calibrate_range(airline.prep, same, same, same).values()
    assert model.low is model.high and model.low_macs == model.high_macs
    b = Budget(600.0, time.time(), 1, min_steps=airline.schedule.min_steps, round_steps=3,
               costs={"gru": model}, plan=dict(PLAN), features=1)
    b.check()
    assert b.trial_seconds("gru") == model.low.seconds(airline.schedule.min_steps, 3)
    assert b.line().startswith("time budget 10m: start ")
    assert f"A trial trains at least {airline.schedule.min_steps} steps before it is scored" in b.line()


def test_a_candidates_cost_lies_between_the_cheapest_and_costliest_by_multiply_adds():
    assert recurrent_macs({"cell": "lstm", "units": 16, "layers": 1}, 2) == 4 * 18 * 16
    assert recurrent_macs({"cell": "gru", "units": 8, "layers": 2, "bidirectional": True}, 3) == \
        2 * 3 * (3 + 8) * 8 + 2 * 3 * (16 + 8) * 8
    low, high = Cost(1.0, 0.01, 0.1), Cost(3.0, 0.05, 0.3)
    model = CostModel(low, high, low_macs=100, high_macs=300, first={"units": 4, "layers": 1})
    assert model.at(100) == low and model.at(300) == high and model.at(10_000) == high
    assert model.at(200) == Cost(2.0, pytest.approx(0.03), pytest.approx(0.2))
    b = Budget(600.0, time.time(), 1, min_steps=100, round_steps=10, costs={"rnn": model})
    # rnn, 1 feature: 4 units -> (1+4)*4 = 20 MACs (below the cheapest: its cost), 16 -> 272
    assert b.trial_seconds("rnn") == low.seconds(100, 10)
    assert low.seconds(100, 10) < b.trial_seconds("rnn", {"units": 16, "layers": 1}) < \
        high.seconds(100, 10)


def test_a_rounds_estimate_is_its_candidates_cost():
    """A later round's trials are estimated at their own candidates' cost (run_search starts
    it only when the share left covers that estimate at the last round's pace)."""
    from types import SimpleNamespace

    from cellpick.engine.search import _round_estimate
    from cellpick.engine.train import Schedule

    def tuner(cell, *units):
        listed = [{"cell": cell, "units": u, "layers": 1} for u in units]
        return SimpleNamespace(oracle=SimpleNamespace(candidates=lambda: listed))

    # 1 feature: rnn 4 units (1+4)*4 = 20 MACs, 32 units 1056; gru 4 units 3*20 = 60
    cheap, dear = Cost(0.0, 0.01, 0.0), Cost(0.0, 1.0, 0.0)
    b = Budget(600.0, time.time(), 1, min_steps=10, round_steps=10,
               costs={"rnn": CostModel(cheap, dear, 20, 1056, {"units": 4, "layers": 1}),
                      "gru": CostModel(cheap, dear, 60, 3168, {"units": 4, "layers": 1})})
    schedule = Schedule(epochs=4, patience=2, steps_per_epoch=5)  # a trial: 10 + 2 x 5 steps
    tuners = {"rnn": tuner("rnn", 4, 32), "gru": tuner("gru", 4)}
    assert _round_estimate(tuners, 1, b, schedule) == pytest.approx(2 * (20 * 0.01 + 1.0))
    # Round 2: only rnn has a candidate, its costliest (32 units: 1056 MACs), 100x the step.
    assert _round_estimate(tuners, 2, b, schedule) == pytest.approx(20 * 1.0 + 1.0)
    assert _round_estimate(tuners, 3, b, schedule) == 0.0


def test_the_schedule_states_the_minimum_a_trial_trains():
    from cellpick.engine.train import MIN_PATIENCE_STEPS, Schedule

    small = Schedule.for_data(50, 32, None)  # 2 steps an epoch: MIN_PATIENCE_STEPS
    assert small.min_steps == MIN_PATIENCE_STEPS
    large = Schedule.for_data(64_000, 32, None)  # 2,000 steps an epoch: one epoch
    assert large.min_steps == 2000
    assert Schedule.for_data(50, 32, 2).min_steps == 4  # --epochs 2: never more than the cap


def test_a_trial_the_budget_stops_before_its_minimum_is_not_scored_nor_ranked(airline, tmp_path):
    """The search's share is spent before it starts and no cost is measured (a trial gets no
    time of its own): round 1 runs, its trials stop after one validation round, below the
    plan's minimum: CUT, their runs KILLED, no score, no second round; each cell's verdict
    configuration is its first candidate (nothing was ranked)."""
    from cellpick.engine.search import run_search
    from cellpick.engine.train import Schedule
    from cellpick.tracking import Tracker

    tracker = Tracker(store_uri(tmp_path), "budget")
    tracker.start_fit("budget-test", {"metric": "mae"}, {})
    schedule = Schedule(40, 10, airline.schedule.steps_per_epoch)
    spent = Budget(1.0, time.time() - 60, seeds=1, min_steps=schedule.min_steps)
    spent.begin("search")
    try:
        result = run_search(airline.prep, cells=["gru", "rnn"], units=[8], layers=[1],
                            tuner="random", max_trials=2, schedule=schedule, seed=1,
                            workdir=tmp_path / "tuner", tracker=tracker,
                            progress=lambda event, info: None, budget=spent)
    finally:
        tracker.finish_fit()
    assert [(r["cell"], r["status"], r["score"]) for r in result.trials] == [
        ("gru", "CUT", None), ("rnn", "CUT", None)]
    assert all(r["error"].startswith("not scored: the time budget stopped it after")
               and r["error"].endswith(f"of the {schedule.min_steps} steps a trial trains "
                                       "before it is scored") for r in result.trials)
    assert (result.rounds, result.cut_short, result.not_scored) == (1, True, 2)
    runs = [tracker.client.get_run(r["run_id"]).info.status for r in result.trials]
    assert runs == ["KILLED", "KILLED"]
    assert {c: (b["units"], b["layers"]) for c, b in result.best.items()} == \
        {"gru": (8, 1), "rnn": (8, 1)}


def test_a_cost_counts_members_one_after_another():
    cost = Cost(setup=2.0, step=0.01, round=0.1)
    assert cost.seconds(100, 25) == pytest.approx(2.0 + 1.0 + 0.4 + 1.0)
    assert cost.seconds(100, 25, members=3) == pytest.approx(3 * 3.4 + 1.0)


def test_a_distributed_search_gets_as_many_rounds_as_its_share_covers_per_worker():
    """Under a budget the chief gives every cell the same number of trials: as many rounds
    as the search's share covers, a cell's trials counted `workers` at a time."""
    from types import SimpleNamespace

    from cellpick.engine.distributed import rounds_that_fit
    from cellpick.engine.search import _round_estimate
    from cellpick.engine.train import Schedule

    def tuner(cell):
        listed = [{"cell": cell, "units": 4, "layers": 1}] * 8
        return SimpleNamespace(oracle=SimpleNamespace(candidates=lambda: listed))

    cheap, dear = Cost(0.0, 0.01, 0.0), Cost(0.0, 1.0, 0.0)
    b = Budget(600.0, time.time(), 1, min_steps=10, round_steps=10,
               costs={c: CostModel(cheap, dear, 20, 1056, {"units": 4, "layers": 1})
                      for c in ("rnn", "gru")})
    schedule = Schedule(epochs=4, patience=2, steps_per_epoch=5)
    tuners = {"rnn": tuner("rnn"), "gru": tuner("gru")}
    one = _round_estimate(tuners, 1, b, schedule)
    assert rounds_that_fit(tuners, b, schedule, 8, 1, left=2.5 * one) == 2
    assert rounds_that_fit(tuners, b, schedule, 8, 4, left=2.5 * one) == 8
    assert rounds_that_fit(tuners, b, schedule, 8, 2, left=2.5 * one) == 5  # 5 rounds / 2 at once
    assert rounds_that_fit(tuners, b, schedule, 8, 1, left=0.0) == 1  # never fewer than one
