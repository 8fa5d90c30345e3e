import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellpick.errors import ConfigError
from cellpick.verdict import (
    METRICS,
    CellResult,
    Verdict,
    baselines,
    compare,
    decide,
    detect_season,
    fit_baselines,
    interval,
    mase,
    score,
    score_baselines,
)

AIRLINE = Path(__file__).resolve().parents[1] / "recipes" / "data" / "airline_train.csv"


# --- score ----------------------------------------------------------------------------------


def test_metrics_table():
    assert METRICS == {
        "forecast": ("mae", False),
        "regress": ("mae", False),
        "classify": ("accuracy", True),
    }


def test_score_mae_over_all_horizon_elements():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    pred = np.array([[2.0, 2.0], [3.0, 0.0]])
    assert score("forecast", y, pred) == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert score("regress", [1.0, 2.0, 3.0], [1.5, 2.0, 2.0]) == pytest.approx(0.5)


def test_score_accuracy_from_probabilities():
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    assert score("classify", [0, 1, 2, 2], proba) == pytest.approx(0.75)
    assert score("classify", [1, 0], np.array([[0.7], [0.2]])) == pytest.approx(1.0)


def test_score_rejects_unknown_task_and_bad_shapes():
    with pytest.raises(ConfigError, match="The 'task' option must be one of"):
        score("cluster", [1.0], [1.0])
    with pytest.raises(ValueError, match=r"probabilities shaped \(n, C\)"):
        score("classify", [0, 1], [0, 1])
    with pytest.raises(ValueError, match="differ in size"):
        score("regress", [1.0, 2.0], [1.0])


def test_mase_scales_by_seasonal_naive_in_sample_error():
    y_train = np.array([1.0, 3.0, 1.0, 3.0, 1.0])  # lag-1 naive error 2, lag-2 error 0
    assert mase([2.0, 2.0], [3.0, 1.0], y_train) == pytest.approx(1.0 / 2.0)
    assert math.isnan(mase([2.0], [3.0], y_train, season=2))


# --- interval and compare -------------------------------------------------------------------


def test_interval_student_t_known_bounds():
    mean, (lo, hi) = interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    half = 4.302653 * math.sqrt(1 / 3)
    assert lo == pytest.approx(2 - half, abs=1e-5)
    assert hi == pytest.approx(2 + half, abs=1e-5)


def test_interval_one_score_and_constant_scores():
    assert interval([0.7]) == (0.7, (0.7, 0.7))
    assert interval([5.0, 5.0, 5.0]) == (5.0, (5.0, 5.0))
    mean, (lo, hi) = interval([1.0, float("nan"), 3.0])
    assert mean == 2.0 and lo < 2.0 < hi


def test_compare_paired_t_test_known_p_value():
    # Differences 1, 2, 3: t = 2*sqrt(3) with 2 d.f., two-sided p = 1 - sqrt(12/14).
    out = compare([2.0, 3.0, 4.0], [1.0, 1.0, 1.0], greater_is_better=True)
    assert out["test"] == "paired t-test"
    assert out["p_value"] == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-9)
    assert out["mean_diff"] == pytest.approx(2.0)
    assert set(out) == {"a", "b", "test", "p_value", "mean_diff"}


def test_compare_mean_diff_positive_when_a_better_for_error_metrics():
    out = compare([1.0, 2.0, 3.5], [2.0, 3.0, 4.0], greater_is_better=False,
                  a_name="lstm", b_name="gru")
    assert (out["a"], out["b"]) == ("lstm", "gru")
    assert out["mean_diff"] == pytest.approx(2.5 / 3)


def test_compare_constant_differences_and_one_seed():
    assert compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], True)["p_value"] == 1.0
    assert compare([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], True)["p_value"] == 0.0
    assert compare([0.8, 0.82, 0.9], [0.5, 0.52, 0.6], True)["p_value"] == 0.0  # equal up to rounding
    one = compare([1.0], [2.0], False)
    assert one["test"] == "none (one seed)" and math.isnan(one["p_value"])
    with pytest.raises(ValueError, match="one score per seed"):
        compare([1.0, 2.0], [1.0], True)


# --- decide ---------------------------------------------------------------------------------


def cell(name, scores, n_params, seconds=10.0, **config):
    return CellResult(name, {"units": 32, "layers": 1, **config}, list(scores), n_params,
                      seconds)


def test_equal_scores_cheapest_wins():
    scores = [10.0, 11.0, 12.0]
    cells = [cell("lstm", scores, 4000), cell("gru", scores, 3000), cell("rnn", scores, 1000)]
    v = decide(cells, "mae", False)
    assert v.winner == "rnn"


def test_cheaper_cell_within_noise_wins_with_sentence():
    lstm = cell("lstm", [10.0, 12.0, 11.0, 13.0], 4000, seconds=50.0)
    gru = cell("gru", [10.5, 11.5, 11.8, 12.9], 3040, seconds=41.0)
    v = decide([lstm, gru], "mae", False)
    assert v.best_mean_cell == "lstm" and v.winner == "gru"
    p = v.comparisons[0]["p_value"]
    assert p > 0.05
    assert v.reason == (
        f"GRU and LSTM are within noise (p={p:.2f}); GRU wins with 24% fewer parameters "
        "and 18% less training time."
    )


def test_clearly_better_expensive_cell_wins():
    lstm = cell("lstm", [5.0, 5.2, 4.9, 5.1, 5.0], 9000, seconds=90.0)
    rnn = cell("rnn", [9.0, 9.3, 8.8, 9.1, 9.2], 1000, seconds=20.0)
    v = decide([rnn, lstm], "mae", False)
    assert v.winner == "lstm"
    assert v.reason.startswith("LSTM wins with the best validation MAE 5.04; every cheaper "
                               "cell is significantly worse at 0.05 (SimpleRNN p<0.001)")


def test_accuracy_higher_is_better():
    a = cell("lstm", [0.90, 0.91, 0.92], 9000)
    b = cell("gru", [0.60, 0.61, 0.62], 5000)
    assert decide([a, b], "accuracy", True).winner == "lstm"


def test_one_seed_best_mean_wins_without_test():
    v = decide([cell("lstm", [12.3], 9000), cell("gru", [12.5], 3000)], "mae", False)
    assert v.winner == "lstm"
    assert v.reason == "One seed: no significance test; LSTM has the best validation MAE 12.3."
    assert v.comparisons[0]["test"] == "none (one seed)"


def test_tie_in_params_broken_by_training_time():
    scores = [1.0, 2.0, 3.0]
    slow = cell("lstm", scores, 2000, seconds=30.0)
    fast = cell("gru", scores, 2000, seconds=20.0)
    v = decide([slow, fast], "mae", False)
    assert v.winner == "gru"
    within = decide([cell("lstm", [1.0, 2.0, 3.0], 2000, 30.0),
                     cell("gru", [1.1, 2.2, 2.9], 2000, 24.0)], "mae", False)
    assert within.winner == "gru"
    assert "as many parameters and 20% less training time" in within.reason


def test_failed_seed_is_left_out_of_mean_and_pairs():
    v = decide([cell("lstm", [1.0, float("nan"), 1.2, 1.1], 900),
                cell("gru", [3.0, 3.1, 3.2, 3.0], 800)], "mae", False)
    assert v.cells["lstm"]["mean"] == pytest.approx(1.1)
    d = v.to_dict()
    assert d["cells"]["lstm"]["scores"] == [1.0, None, 1.2, 1.1]
    assert d["comparisons"][0]["test"] == "paired t-test"  # on the 3 pairs left


def test_decide_rejects_unequal_seed_counts():
    with pytest.raises(ValueError, match="one score per seed"):
        decide([cell("lstm", [1.0, 2.0], 10), cell("gru", [1.0], 5)], "mae", False)


def test_baseline_sentences():
    cells = [cell("lstm", [12.0, 12.5, 12.6], 9000), cell("gru", [20.0, 21.0, 22.0], 5000)]
    v = decide(cells, "mae", False, baselines={"naive": 20.0, "ridge": 14.1})
    assert v.best_baseline == "ridge" and v.beats_best_baseline is True
    assert v.reason.endswith("It beats the best baseline (ridge, MAE 14.1) by 12%.")
    v = decide(cells, "mae", False, baselines={"ridge": 10.2})
    assert v.beats_best_baseline is False
    assert v.reason.endswith("The best baseline (ridge, MAE 10.2) is better by 18%: consider it.")
    v = decide(cells, "mae", False)
    assert v.best_baseline is None and v.beats_best_baseline is None


def test_to_dict_keys_and_json():
    v = decide([cell("lstm", [1.0, 1.1], 900), cell("gru", [1.05, 1.15], 800)], "mae", False,
               baselines={"naive": 2.0, "snaive": float("nan")})
    v.test_score = np.float64(1.3)
    d = v.to_dict()
    assert set(d) == {
        "metric", "greater_is_better", "cells", "comparisons", "baselines", "best_baseline",
        "winner", "reason", "beats_best_baseline", "test_score", "best_mean_cell",
    }
    assert set(d["cells"]["gru"]) == {"config", "scores", "mean", "ci95", "n_params",
                                      "train_seconds"}
    assert d["baselines"]["snaive"] is None and type(d["test_score"]) is float
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert Verdict.from_dict(d).to_dict() == d


# --- baselines ------------------------------------------------------------------------------


def windows(series, steps, horizon):
    X, y = [], []
    for i in range(len(series) - steps - horizon + 1):
        X.append(series[i:i + steps])
        y.append(series[i + steps:i + steps + horizon])
    return np.array(X)[:, :, None], np.array(y)


def test_forecast_baselines_seasonal_naive_exact_on_periodic_series():
    series = np.tile([1.0, 5.0, 3.0, 8.0], 20)
    X, y = windows(series, steps=8, horizon=6)
    out = baselines("forecast", X[:40], y[:40], X[40:], y[40:], season=4)
    assert set(out) == {"naive", "snaive", "ridge"}
    assert out["snaive"] == 0.0
    assert out["naive"] > 1.0
    assert out["ridge"] < 1e-2
    assert "snaive" not in baselines("forecast", X[:40], y[:40], X[40:], y[40:])
    assert "snaive" not in baselines("forecast", X[:40], y[:40], X[40:], y[40:], season=9)


def test_naive_repeats_last_value_and_fitted_predictors_score_test_split():
    X = np.array([[[1.0, 0.0], [2.0, 9.0]], [[4.0, 0.0], [3.0, 9.0]]])
    y = np.array([[2.0, 2.0, 2.0], [3.0, 3.0, 4.0]])
    fitted = fit_baselines("forecast", X, y)
    np.testing.assert_array_equal(fitted["naive"](X), [[2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    assert score_baselines("forecast", {"naive": fitted["naive"]}, X, y) == {
        "naive": pytest.approx(1 / 6)
    }


def test_classify_baselines_majority_on_imbalanced_labels():
    rng = np.random.default_rng(0)
    y_train = np.array([0] * 45 + [1] * 5 + [2] * 10)
    X_train = rng.normal(size=(60, 6, 2)) + y_train[:, None, None] * 3.0
    y_val = np.array([0] * 8 + [1] * 2)
    X_val = rng.normal(size=(10, 6, 2)) + y_val[:, None, None] * 3.0
    out = baselines("classify", X_train, y_train, X_val, y_val)
    assert set(out) == {"majority", "1nn", "logreg"}
    assert out["majority"] == pytest.approx(0.8)
    assert out["1nn"] == 1.0 and out["logreg"] == 1.0
    proba = fit_baselines("classify", X_train, y_train, n_classes=4)["majority"](X_val)
    assert proba.shape == (10, 4)


def test_regress_baselines_mean_and_ridge():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 5, 1))
    y = X[:, :, 0].sum(axis=1) * 2.0 + 10.0
    out = baselines("regress", X[:60], y[:60], X[60:], y[60:])
    assert out["mean"] == pytest.approx(np.mean(np.abs(y[60:] - y[:60].mean())))
    assert out["ridge"] < 0.05


# --- seasonality ----------------------------------------------------------------------------


def test_detect_season_airline_monthly():
    y = pd.read_csv(AIRLINE)["value"].to_numpy()
    assert detect_season(y, 24) == 12
    assert detect_season(y, 48) == 12


def test_detect_season_white_noise_and_short_series():
    rng = np.random.default_rng(0)
    assert detect_season(rng.normal(size=200), 50) is None
    assert detect_season(np.cumsum(rng.normal(size=200)), 50) is None
    assert detect_season([1.0, 2.0, 3.0], 12) is None
    assert detect_season(np.ones(50), 12) is None


def test_detect_season_noisy_weekly_sine():
    rng = np.random.default_rng(3)
    t = np.arange(140)
    y = 10 + np.sin(2 * np.pi * t / 7) + 0.3 * rng.normal(size=140) + 0.05 * t
    assert detect_season(y, 21) == 7


def test_two_seeds_are_too_few_to_call_a_cheaper_cell_equal():
    # Seen on the adding problem: SimpleRNN ten times worse than LSTM, but a t-test on two
    # pairs (1 degree of freedom) found no significant gap and parsimony crowned SimpleRNN.
    lstm, rnn = cell("lstm", [0.010, 0.012], 9000), cell("rnn", [0.099, 0.105], 2000)
    v = decide([lstm, rnn], "mae", False)
    assert v.comparisons[0]["test"] == "none (2 seeds: too few)" and math.isnan(v.comparisons[0]["p_value"])
    assert v.winner == "lstm"
    assert v.reason.startswith("Too few paired seeds: no significance test; LSTM has the best")


def test_accuracy_intervals_stay_inside_0_and_1():
    v = decide([cell("gru", [1.0, 0.5, 1.0], 500), cell("rnn", [0.0, 0.5, 0.1], 200)], "accuracy", True)
    for c in v.cells.values():
        low, high = c["ci95"]
        assert 0.0 <= low <= c["mean"] <= high <= 1.0
    assert v.cells["gru"]["ci95"][1] == 1.0 and v.cells["rnn"]["ci95"][0] == 0.0


def test_cheaper_cell_outside_the_best_interval_does_not_win_on_a_weak_test():
    # GunPoint with --test-size 0 (10 validation rows): GRU perfect on every seed, SimpleRNN
    # collapsing on one; three pairs give p=0.30, so the t-test alone crowned SimpleRNN.
    gru = cell("gru", [1.0, 1.0, 1.0], 13218)
    rnn = cell("rnn", [1.0, 0.9, 0.6], 4706)
    v = decide([gru, rnn], "accuracy", True)
    assert v.comparisons[0]["p_value"] > 0.05
    assert v.winner == "gru"
    assert v.reason == ("GRU wins with the best validation accuracy 1.00; SimpleRNN (accuracy 0.833, "
                        "p=0.30) not significantly worse, but outside GRU's 95% interval [1.00, 1.00].")
