"""The data-level stage (datalevel.py): what it tries, what an option skips, and that its
choice reaches every cell and the ridge baseline. Planning needs no training; the stage
itself is trained in test_fit_e2e.py's airline and GunPoint fits, where its MLflow runs and
the choice every trial and the ridge baseline used are checked."""
from __future__ import annotations

import pandas as pd
from conftest import store_uri

from cellpick.config import FitConfig
from cellpick.pipeline import make_plan
from cellpick.stages.datalevel import DataChoice, apply, choose, planned


def _plan(data, **options):
    return make_plan(FitConfig(data=str(data), **options).validate())


def test_a_default_forecast_tries_one_choice_at_a_time(data_dir):
    plan = _plan(data_dir / "airline_train.csv", horizon=12)
    todo = planned(plan)
    assert todo["names"] == ["scaling", "log", "linear", "lookback"] and todo["given"] == []
    # 3 scalings, then the linear path flipped, then logs, then one more lookback (12; three
    # seasons exceed a third of the 94 training rows): 6 reference fits.
    assert todo["steps"] == ["scaling relative or diff or global", "linear path yes or no",
                             "logs no or yes", "lookback 24 or 12"]
    assert todo["fits"] == 6


def test_each_option_given_skips_its_choice(data_dir):
    plan = _plan(data_dir / "airline_train.csv", horizon=12, scaling="diff", lookback=24,
                 log=False)
    todo = planned(plan)
    assert todo["given"] == ["scaling", "log", "lookback"]
    assert todo["steps"] == ["linear path yes or no"] and todo["fits"] == 2
    every = _plan(data_dir / "airline_train.csv", horizon=12, scaling="diff", lookback=24,
                  log=True, linear=False)
    assert planned(every)["fits"] == 0
    # Nothing to compare: the options are the choice, and nothing trains (no tracker needed).
    every, choice = choose(every, tracker=None)
    assert choice.values == {"scaling": "diff", "log": True, "linear": False, "lookback": 24}
    assert choice.decided == [] and not choice.candidates
    assert every.prep.preprocessing == {"scaling": "diff", "log": True, "linear": False}
    assert {u.prep.preprocessing["scaling"] for u in every.resampling.units} == {"diff"}


def test_logs_are_no_choice_for_a_target_with_values_at_or_below_zero(tmp_path):
    days = pd.date_range("2020-01-01", periods=84, freq="D").strftime("%Y-%m-%d")
    rows = "\n".join(f"{d},{(i % 7) - 3}" for i, d in enumerate(days))
    (tmp_path / "signed.csv").write_text("date,value\n" + rows + "\n")
    plan = _plan(tmp_path / "signed.csv", horizon=3)
    assert "log" not in planned(plan)["names"]
    assert all("logs" not in step for step in planned(plan)["steps"])


def test_sequences_choose_the_patch_size_and_short_or_masked_ones_nothing(data_dir):
    gunpoint = _plan(data_dir / "GunPoint_train.csv", target="label")
    assert planned(gunpoint)["steps"] == ["patch 6 or 12 steps"]
    given = _plan(data_dir / "GunPoint_train.csv", target="label", patch=1)
    assert planned(given)["given"] == ["patch"] and planned(given)["fits"] == 0
    vowels = _plan(data_dir / "JapaneseVowels_train.csv", id="sample_id", time="step",
                   target="label", task="classify")
    assert planned(vowels)["names"] == [] and planned(vowels)["fits"] == 0


def test_another_lookback_rebuilds_the_windows_and_the_folds(data_dir):
    plan = _plan(data_dir / "airline_train.csv", horizon=12, folds=2, seeds=1)
    other = apply(plan, {"scaling": "global", "log": False, "linear": True, "lookback": 12})
    assert other.prep.lookback == 12 and other.prep.input_shape[0] == 12
    assert {u.prep.lookback for u in other.resampling.units} == {12}
    assert {u.prep.preprocessing["scaling"] for u in other.resampling.units} == {"global"}
    # The validation windows forecast the same months: their targets do not depend on it.
    assert (other.prep.arrays("val")[1] == plan.prep.arrays("val")[1]).all()


def test_the_progress_line_names_the_overrides():
    choice = DataChoice(values={"scaling": "relative", "log": True, "linear": False,
                                "lookback": 24},
                        decided=["scaling", "log", "linear"], given=["lookback"])
    assert choice.line() == ("scaling=relative log=yes linear=no lookback=24 (override: "
                             "--scaling, --log/--no-log, --linear/--no-linear; given: --lookback)")


def test_a_resumed_fit_takes_the_choice_it_logged_and_trains_nothing(tmp_path, data_dir):
    from cellpick.tracking import Tracker

    tracker = Tracker(store_uri(tmp_path), "data")
    tracker.start_fit("fit-test", {"metric": "mae"}, {})
    try:
        logged = {"scaling": "diff", "log": True, "linear": False, "lookback": 12}
        tracker.log_chosen(logged)
        assert tracker.chosen_values() == logged
        plan, choice = choose(_plan(data_dir / "airline_train.csv", horizon=12), tracker=tracker)
        assert choice.reused and choice.values == logged and not choice.candidates
        assert tracker.child_runs("data") == []
        assert plan.prep.lookback == 12
        assert plan.prep.preprocessing == {"scaling": "diff", "log": True, "linear": False}
    finally:
        tracker.finish_fit()


def test_a_failed_reference_seed_counts_as_the_worst_whichever_way_the_metric_points():
    from cellpick.stages.datalevel import _median

    nan = float("nan")
    assert _median([3.0, nan, 1.0]) == 3.0  # an error (lower is better): the worse of two
    assert _median([0.9, nan, 0.7], greater_is_better=True) == 0.7  # an accuracy
    assert _median([0.9, 0.8, 0.7], greater_is_better=True) == 0.8
    assert _median([nan, nan, nan]) is None


def test_a_challenger_replaces_the_default_only_when_better_on_every_unit():
    from types import SimpleNamespace

    from cellpick.stages.datalevel import Candidate, _pick

    nan = float("nan")

    def cand(name, scores):
        return Candidate(values={"scaling": name}, scores=scores, score=float(sorted(scores)[1]),
                         val_loss=0.1)

    forecast = SimpleNamespace(task="forecast")
    errors = SimpleNamespace(greater_is_better=False, prep=forecast)
    accuracy = SimpleNamespace(greater_is_better=True, prep=forecast)
    default = cand("relative", [31.4, 21.8, 19.5])
    # airline --seed 5's scalings: diff has the better median but loses the middle origin.
    near = cand("diff", [22.9, 25.4, 19.0])
    tried = []
    assert _pick([default, near], errors, tried) is default and tried == [default, near]
    # Better on every unit: chosen; of two such challengers the better median.
    wins, wins_more = cand("diff", [30.0, 21.0, 19.0]), cand("global", [25.0, 20.0, 18.0])
    assert _pick([default, wins, near], errors, []) is wins
    assert _pick([default, wins, wins_more], errors, []) is wins_more
    # An equal score on one fold is no win (accuracies tie often on small folds).
    assert _pick([cand("6", [0.9, 1.0, 0.95]), cand("12", [1.0, 1.0, 0.97])], accuracy, [])\
        .values == {"scaling": "6"}
    assert _pick([cand("6", [0.9, 0.9, 0.95]), cand("12", [1.0, 0.93, 0.97])], accuracy, [])\
        .values == {"scaling": "12"}
    # A challenger with a failed unit never beats; a failed unit of the default is beaten.
    assert _pick([default, cand("diff", [1.0, nan, 1.0])], errors, []) is default
    assert _pick([cand("relative", [31.4, nan, 19.5]), wins], errors, []) is wins
    broken = Candidate(values={"scaling": "relative"})  # the default failed to train at all
    assert _pick([broken, near], errors, []) is near
