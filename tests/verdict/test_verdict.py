import json
import math

import numpy as np
import pytest
from baycomp import CorrelatedTTest
from scipy import stats

from cellpick.errors import ConfigError
from cellpick.verdict import (
    VERDICT_SCHEMA_VERSION,
    CellResult,
    Design,
    compare,
    decide,
    default_rope,
    interval,
    mase,
    posterior,
    score,
)
from cellpick.vocab import METRICS, format_score


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


# --- the corrected t-test -------------------------------------------------------------------

KFOLD = {"kind": "repeated-stratified-kfold", "folds": 5, "seeds": 3}
ORIGINS = {"kind": "rolling-origin", "folds": 5, "seeds": 3}


def test_interval_student_t_known_bounds():
    mean, (lo, hi) = interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    half = 4.302653 * math.sqrt(1 / 3)
    assert lo == pytest.approx(2 - half, abs=1e-5)
    assert hi == pytest.approx(2 + half, abs=1e-5)


def test_interval_corrected_for_overlapping_training_sets():
    # 10-fold CV: Nadeau & Bengio's factor 1/n + n_test/n_train = 1/10 + 1/9.
    x = np.arange(10.0)
    mean, (lo, hi) = interval(x, rho=0.1)
    half = stats.t.ppf(0.975, 9) * math.sqrt(x.var(ddof=1) * (1 / 10 + 1 / 9))
    assert (lo, hi) == (pytest.approx(mean - half), pytest.approx(mean + half))


def test_interval_one_score_and_constant_scores():
    assert interval([0.7]) == (0.7, (0.7, 0.7))
    assert interval([5.0, 5.0, 5.0]) == (5.0, (5.0, 5.0))
    mean, (lo, hi) = interval([1.0, float("nan"), 3.0])
    assert mean == 2.0 and lo < 2.0 < hi


def test_posterior_variance_factor_matches_baycomp_and_nadeau_bengio():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.8, 0.05, 30), rng.normal(0.78, 0.05, 30)  # 10 folds x 3 runs
    mean, var, df = posterior(y - x, rho=1 / 10)
    assert (mean, var, df) == pytest.approx(CorrelatedTTest.compute_statistics(x, y, runs=3))
    # The published factor for 10 x 10-fold CV (Bouckaert & Frank 2004): 1/100 + 1/9.
    d = rng.normal(size=100)
    assert posterior(d, 0.1)[1] == pytest.approx(d.var(ddof=1) * (0.01 + 1 / 9))
    # rho = 0 is the ordinary paired t-test: the same t statistic as scipy.
    a, b = np.array([2.0, 3.0, 4.5, 1.0]), np.array([1.0, 1.0, 1.5, 0.5])
    mean, var, _ = posterior(a - b, 0.0)
    assert mean / math.sqrt(var) == pytest.approx(stats.ttest_rel(a, b).statistic)


def test_compare_probabilities_match_baycomp_correlated_t_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.80, 0.04, (5, 3)), rng.normal(0.77, 0.04, (5, 3))
    out = compare(a, b, True, rope=0.01, design=Design.of(KFOLD, 3), a_name="lstm", b_name="gru")
    # baycomp: (P(left), P(rope), P(right)) of y - x; fold-major order, runs = seeds.
    left, rope, right = CorrelatedTTest.probs(b.reshape(-1), a.reshape(-1), rope=0.01, runs=3)
    assert out["probability"] == {"a_better": pytest.approx(right),
                                  "equivalent": pytest.approx(rope),
                                  "b_better": pytest.approx(left)}
    assert out["mean_diff"] == pytest.approx((a - b).mean())
    lo, hi = out["ci95"]
    assert lo < out["mean_diff"] < hi
    assert out["test"] == "Bayesian correlated t-test, rho = 1/5" and out["n"] == 15
    assert set(out) == {"a", "b", "test", "rope", "mean_diff", "ci95", "a_minus_b",
                        "a_minus_b_ci95", "probability", "n", "degenerate"}


@pytest.mark.parametrize("greater", [True, False])
def test_the_interval_shown_is_a_minus_b_in_metric_units_whatever_the_direction(greater):
    """a_minus_b is a's score minus b's and its interval contains it, for an accuracy (higher
    is better) as for an error (lower is better); mean_diff keeps its 'a better' sign."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(20.0, 1.0, (5, 3)), rng.normal(22.0, 1.0, (5, 3))
    out = compare(a, b, greater, rope=0.1, design=Design.of(KFOLD, 3))
    assert out["a_minus_b"] == pytest.approx((a - b).mean())  # negative: a's score is lower
    lo, hi = out["a_minus_b_ci95"]
    assert lo < out["a_minus_b"] < hi < 0 or lo < out["a_minus_b"] < 0 < hi
    assert out["mean_diff"] == pytest.approx(out["a_minus_b"] * (1 if greater else -1))
    one = compare([1.0], [3.0], False)  # nothing to test: the difference alone
    assert one["a_minus_b"] == -2.0


def test_compare_rolling_origin_averages_seeds_within_each_origin():
    a = np.array([[1.0, 1.2, 1.1], [2.0, 2.1, 1.9], [1.5, 1.4, 1.6], [1.0, 1.1, 0.9], [3.0, 3.2, 2.8]])
    b = a + np.array([0.3, 0.1, 0.2, 0.4, 0.2])[:, None] + np.array([0.0, 0.05, -0.05])
    out = compare(a, b, False, rope=0.05, design=Design.of(ORIGINS, 3))
    assert out["n"] == 5 and "per-origin means" in out["test"]
    left, rope, right = CorrelatedTTest.probs(a.mean(axis=1), b.mean(axis=1), rope=0.05)
    # Lower MAE is better: a better means b - a > 0, baycomp's "left" of a - b.
    assert out["probability"]["a_better"] == pytest.approx(right)
    assert out["mean_diff"] == pytest.approx(0.24)


def test_compare_identical_differences_are_degenerate_not_p_zero():
    same = compare([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], True)
    assert same["degenerate"] and same["probability"] is None
    assert same["test"] == "none (every difference is 0.000)"
    shifted = compare([0.8, 0.82, 0.9], [0.5, 0.52, 0.6], True)  # equal up to rounding
    assert shifted["degenerate"] and shifted["ci95"] == [pytest.approx(0.3)] * 2
    one = compare([1.0], [2.0], False)
    assert one["test"] == "none (1 fold x seed unit: nothing to test)"
    assert one["probability"] is None and not one["degenerate"]
    with pytest.raises(ConfigError, match="same folds and seeds"):
        compare([1.0, 2.0], [1.0], True)


def test_default_rope():
    assert default_rope("mae", 20.0) == pytest.approx(0.2)
    assert default_rope("accuracy", 0.8, n_validated=36) == pytest.approx(1 / 36)
    assert default_rope("accuracy", 0.9, n_validated=5000) == pytest.approx(0.009)


# --- decide ---------------------------------------------------------------------------------


def cell(name, scores, n_params, seconds=10.0, **config):
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        return CellResult(name, {"units": 32, "layers": 1, **config}, list(scores), n_params,
                          seconds)
    return CellResult(name, {"units": 32, "layers": 1, **config}, n_params=n_params,
                      train_seconds=seconds, fold_scores=scores.tolist())


NOISE = np.random.default_rng(7).normal(size=(5, 3))


# Score matrices (MAE, 5 folds x 3 seeds) whose answer is certain: every probability the rule
# reads is below 1e-9 or above 1 - 1e-9, or the comparison is degenerate (one difference on
# every unit, read against the ROPE), or between 0.08 and 0.6 for the undecided case.
RULE = {
    "clearly better": ([cell("rnn", 9 + 0.1 * NOISE[::-1], 1000), cell("lstm", 5 + 0.1 * NOISE, 9000)],
                       None, ("lstm", "better", "lstm")),
    "equivalent and cheaper": ([cell("lstm", 10 + 0.1 * NOISE, 4000),
                                cell("gru", 10.01 + 0.1 * NOISE + 0.001 * NOISE[::-1], 3000)],
                               0.2, ("gru", "equivalent", "lstm")),
    "dearer and not better": ([cell("lstm", 10.01 + 0.05 * NOISE[:, ::-1], 9000),
                               cell("rnn", 10 + 0.05 * NOISE, 1000)], 0.2, ("rnn", "equivalent", "rnn")),
    "undecided": ([cell("lstm", 10 + 2 * NOISE, 9000), cell("gru", 10.3 + 2 * NOISE[::-1], 3000)],
                  None, ("lstm", "undecided", "lstm")),
    "only": ([cell("gru", 10 + NOISE, 3000)], None, ("gru", "only", "gru")),
    "one difference beyond the ROPE": ([cell("gru", 10 + NOISE, 3000), cell("rnn", 11 + NOISE, 1000)],
                                       0.1, ("gru", "better", "gru")),
    "one difference within the ROPE, cheaper": ([cell("gru", 10 + NOISE, 3000),
                                                 cell("rnn", 10.05 + NOISE, 1000)],
                                                0.1, ("rnn", "equivalent", "gru")),
    "one equivalent and cheaper, one worse": ([cell("lstm", 10 + 0.1 * NOISE, 9000),
                                               cell("gru", 10.01 + 0.1 * NOISE, 3000),
                                               cell("rnn", 12 + 0.1 * NOISE, 1000)],
                                              0.2, ("gru", "equivalent", "lstm")),
    "the cheapest of two equivalents": ([cell("lstm", 10 + 0.1 * NOISE, 9000),
                                         cell("gru", 10.01 + 0.1 * NOISE + 0.001 * NOISE[::-1], 3000),
                                         cell("rnn", 10.02 + 0.1 * NOISE + 0.001 * NOISE[:, ::-1], 1000)],
                                        0.2, ("rnn", "equivalent", "lstm")),
}


@pytest.mark.parametrize("case", list(RULE))
def test_the_rule_on_score_matrices_whose_answer_is_certain(case):
    cells, rope, want = RULE[case]
    v = decide(cells, "mae", False, resampling=KFOLD, rope=rope)
    assert (v.winner, v.decision, v.best_mean_cell) == want


def test_equal_cells_cheapest_wins():
    scores = 10.0 + NOISE
    cells = [cell("lstm", scores, 4000), cell("gru", scores, 3000), cell("rnn", scores, 1000)]
    v = decide(cells, "mae", False, resampling=KFOLD)
    assert v.winner == "rnn" and v.decision == "equivalent"
    # Equal means go to the cheaper cell: SimpleRNN is the best mean and costs least.
    assert v.reason.startswith("SimpleRNN wins with the best cross-validated MAE "
                               f"{format_score(v.cells['rnn']['mean'])} over 5 folds x 3 seeds "
                               "and costs least: GRU is not practically better and costs more "
                               "(identical on every fold and seed, ROPE ±0.0")
    assert "no spread, so no probability" in v.reason


def test_equivalent_cheaper_cell_wins_with_effect_rope_and_probability():
    lstm = cell("lstm", 10.0 + NOISE, 4000, seconds=50.0)
    gru = cell("gru", 10.02 + NOISE + 0.01 * NOISE[::-1], 3040, seconds=41.0)
    v = decide([lstm, gru], "mae", False, resampling=KFOLD, rope=0.2)
    assert v.best_mean_cell == "lstm" and v.winner == "gru" and v.decision == "equivalent"
    c = v.comparisons[0]
    p = c["probability"]["equivalent"] + c["probability"]["b_better"]
    assert p >= 0.95 and c["rope"] == 0.2
    assert v.reason == (
        f"GRU and LSTM are practically equivalent (GRU {c['mean_diff']:.3f} MAE worse, ROPE "
        f"±0.200, P {'≥ 0.999' if p > 0.999 else f'= {math.floor(p * 100) / 100:.2f}'}) over "
        "5 folds x 3 seeds; GRU wins with 24% fewer parameters and 18% less training time.")


def test_clearly_better_expensive_cell_wins():
    lstm = cell("lstm", 5.0 + 0.1 * NOISE, 9000, seconds=90.0)
    rnn = cell("rnn", 9.0 + 0.1 * NOISE[::-1], 1000, seconds=20.0)
    v = decide([rnn, lstm], "mae", False, resampling=ORIGINS)
    assert v.winner == "lstm" and v.decision == "better"
    assert v.comparisons[0]["probability"]["a_better"] > 0.999
    assert v.reason.startswith(f"LSTM wins with the best cross-validated MAE "
                               f"{format_score(v.cells['lstm']['mean'])} over 5 origins x 3 "
                               "seeds: SimpleRNN is practically worse (")
    assert "ROPE ±0.0" in v.reason and "P ≥ 0.999" in v.reason


def test_noisy_overlapping_cells_are_undecided():
    rng = np.random.default_rng(3)
    lstm = cell("lstm", 0.80 + 0.08 * rng.normal(size=(5, 3)), 9000)
    gru = cell("gru", 0.78 + 0.08 * rng.normal(size=(5, 3)), 5000)
    v = decide([lstm, gru], "accuracy", True, resampling=KFOLD, n_validated=36)
    best = v.best_mean_cell
    assert v.decision == "undecided" and v.winner == best
    assert v.rope == pytest.approx(1 / 36)
    assert v.reason.startswith("Undecided: over 5 folds x 3 seeds the data cannot separate ")
    assert "ROPE ±2.8 points" in v.reason and "P(worse) = " in v.reason
    assert v.reason.endswith("More data, or more folds and seeds (--folds, --seeds), would "
                             "decide it.")


def test_accuracy_higher_is_better():
    a = cell("lstm", 0.90 + 0.01 * NOISE, 9000)
    b = cell("gru", 0.60 + 0.01 * NOISE, 5000)
    v = decide([a, b], "accuracy", True, resampling=KFOLD)
    assert v.winner == "lstm" and v.decision == "better"


def test_dearer_cell_not_practically_better_leaves_the_cheaper_best_the_winner():
    rnn = cell("rnn", 10.0 + 0.05 * NOISE, 1000)
    lstm = cell("lstm", 10.02 + 0.05 * NOISE[:, ::-1], 9000)
    v = decide([lstm, rnn], "mae", False, resampling=KFOLD)
    assert v.best_mean_cell == "rnn" and v.winner == "rnn" and v.decision == "equivalent"
    assert "LSTM is not practically better and costs more" in v.reason


def test_one_unit_is_undecided_without_a_test():
    v = decide([cell("lstm", [12.3], 9000), cell("gru", [12.5], 3000)], "mae", False)
    assert v.winner == "lstm" and v.decision == "undecided"
    assert v.comparisons[0]["test"] == "none (1 fold x seed unit: nothing to test)"
    assert "1 value: no test" in v.reason


def test_single_split_seeds_still_decide_with_seed_noise_only():
    v = decide([cell("lstm", [1.0, 1.1, 1.2, 1.05], 9000), cell("rnn", [3.0, 3.2, 3.1, 3.3], 900)],
               "mae", False)
    assert v.resampling["kind"] == "single-split" and v.decision == "better"
    assert "seed noise only" in v.comparisons[0]["test"]


def test_tie_in_params_broken_by_a_fixed_cell_order_not_by_timing():
    scores = 1.0 + NOISE
    for lstm_seconds, gru_seconds in ((30.0, 20.0), (20.0, 30.0)):
        v = decide([cell("lstm", scores, 2000, lstm_seconds), cell("gru", scores, 2000, gru_seconds)],
                   "mae", False, resampling=KFOLD)
        assert v.winner == "gru"  # fewer gates
    within = decide([cell("lstm", 2.0 + NOISE, 2000, 30.0),
                     cell("gru", 2.001 + NOISE + 0.001 * NOISE[::-1], 2000, 24.0)], "mae", False,
                    resampling=KFOLD)
    assert within.winner == "gru"
    assert "as many parameters and 20% less training time" in within.reason


def test_failed_unit_is_left_out_of_mean_and_pairs():
    lstm = 1.0 + 0.05 * NOISE
    lstm[1, 2] = np.nan
    v = decide([cell("lstm", lstm, 900), cell("gru", 3.0 + 0.05 * NOISE, 800)], "mae", False,
               resampling=KFOLD)
    assert v.cells["lstm"]["mean"] == pytest.approx(np.nanmean(lstm))
    d = v.to_dict()
    assert d["cells"]["lstm"]["fold_scores"][1][2] is None
    assert d["cells"]["lstm"]["scores"][5] is None and len(d["cells"]["lstm"]["scores"]) == 15
    assert d["comparisons"][0]["n"] == 14


def test_decide_rejects_bad_input_with_cellpick_errors():
    with pytest.raises(ConfigError, match="same folds x seeds"):
        decide([cell("lstm", [1.0, 2.0], 10), cell("gru", [1.0], 5)], "mae", False)
    with pytest.raises(ConfigError, match="must hold 5 folds x 3 seeds"):
        decide([cell("lstm", np.ones((3, 3)), 10)], "mae", False, resampling=KFOLD)
    with pytest.raises(ConfigError, match="The 'rope' option"):
        decide([cell("lstm", [1.0, 2.0], 10)], "mae", False, rope=-1)
    with pytest.raises(ConfigError, match="at least one cell"):
        decide([], "mae", False)


def test_baseline_sentences():
    lstm, gru = cell("lstm", 12.3 + 0.2 * NOISE, 9000), cell("gru", 21.0 + 0.5 * NOISE, 5000)
    v = decide([lstm, gru], "mae", False, resampling=ORIGINS,
               baselines={"naive": [20.0] * 5, "ridge": 14.1 + 0.3 * NOISE.mean(axis=1)})
    assert v.best_baseline == "ridge" and v.beats_best_baseline is True
    assert v.baselines["ridge"] == pytest.approx(14.1 + 0.3 * NOISE.mean())
    assert v.baseline_fold_scores["naive"] == [[20.0] * 3] * 5  # deterministic: every seed
    assert "LSTM beats the best baseline (ridge, MAE 14.1) by 1" in v.reason
    assert [c["a"] for c in v.baseline_comparisons] == ["lstm", "gru"]
    v = decide([lstm, gru], "mae", False, resampling=ORIGINS, task="forecast",
               baselines={"ETS": 11.2 + 0.2 * NOISE.mean(axis=1)})
    assert v.beats_best_baseline is False
    assert v.reason.startswith("ETS forecasts better than every recurrent cell here (MAE 11.2 "
                               "vs 12.3 for LSTM, ROPE ±0.123, P ")
    assert ": the cells do not pay off on this data. LSTM wins" in v.reason
    v = decide([lstm, gru], "mae", False, resampling=ORIGINS)
    assert v.best_baseline is None and v.beats_best_baseline is None


def test_to_dict_keys_schema_and_json():
    v = decide([cell("lstm", 1.0 + 0.1 * NOISE, 900), cell("gru", 1.05 + 0.1 * NOISE, 800)],
               "mae", False, resampling=KFOLD, baselines={"naive": 2.0, "snaive": float("nan")})
    v.test_score = np.float64(1.3)
    d = v.to_dict()
    assert set(d) == {
        "metric", "greater_is_better", "cells", "comparisons", "baselines", "best_baseline",
        "winner", "reason", "beats_best_baseline", "test_score", "best_mean_cell",
        "schema_version", "resampling", "decision", "rope", "baseline_fold_scores",
        "baseline_comparisons", "standing", "baseline_ci95",
    }
    assert d["schema_version"] == VERDICT_SCHEMA_VERSION == 2
    assert d["resampling"] == {"kind": "repeated-stratified-kfold", "folds": 5, "seeds": 3,
                               "test": "Bayesian correlated t-test, rho = 1/5", "rho": 0.2}
    assert set(d["cells"]["gru"]) == {"config", "scores", "fold_scores", "mean", "ci95",
                                      "n_params", "train_seconds"}
    assert np.shape(d["cells"]["gru"]["fold_scores"]) == (5, 3)
    assert d["decision"] in ("better", "equivalent", "undecided")
    assert d["baselines"]["snaive"] is None and type(d["test_score"]) is float
    lo, hi = d["baseline_ci95"]["naive"]
    assert lo <= d["baselines"]["naive"] <= hi
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_accuracy_intervals_stay_inside_0_and_1():
    v = decide([cell("gru", [1.0, 0.5, 1.0], 500), cell("rnn", [0.0, 0.5, 0.1], 200)], "accuracy", True)
    for c in v.cells.values():
        low, high = c["ci95"]
        assert 0.0 <= low <= c["mean"] <= high <= 1.0
    assert v.cells["gru"]["ci95"][1] == 1.0 and v.cells["rnn"]["ci95"][0] == 0.0


def test_a_perfect_cell_against_one_that_collapses_on_some_folds_is_not_equivalent():
    # GunPoint with --test-size 0: GRU perfect everywhere, SimpleRNN collapsing on some
    # units. The old rule ("not significantly worse") needed an interval guard here; the
    # ROPE rule asks for evidence of equivalence, which this spread does not give.
    gru = cell("gru", np.ones((5, 3)), 13218)
    rnn = cell("rnn", [[1.0, 0.9, 0.6], [1.0, 1.0, 0.9], [1.0, 0.8, 1.0], [0.9, 1.0, 1.0],
                       [1.0, 1.0, 0.7]], 4706)
    v = decide([gru, rnn], "accuracy", True, resampling=KFOLD, n_validated=50)
    assert v.winner == "gru" and v.decision != "equivalent"


def test_a_cell_that_failed_everywhere_does_not_make_the_verdict_undecided():
    v = decide([cell("lstm", 1.0 + 0.01 * NOISE, 900), cell("gru", np.full((5, 3), np.nan), 800)],
               "mae", False, resampling=ORIGINS)
    assert v.winner == "lstm" and v.decision == "better"
    assert v.reason.endswith("GRU failed on every origin.")


def test_accuracy_rope_reads_n_validated_from_the_resampling():
    r = {**KFOLD, "n_validated": 40}
    v = decide([cell("lstm", 0.8 + 0.01 * NOISE, 900)], "accuracy", True, resampling=r)
    assert v.rope == pytest.approx(1 / 40) and v.decision == "only"


def test_headline_says_the_decision_in_the_verdicts_words():
    from cellpick.verdict import headline

    base = [10.0, 12.0, 11.0, 13.0]
    cheaper = decide([CellResult("lstm", {}, base, 4000, 50.0),
                      CellResult("gru", {}, [s + 0.02 for s in base], 3040, 41.0),
                      CellResult("rnn", {}, [s + 10 for s in base], 1200, 20.0)],
                     "mae", False, baselines={"naive": 25.0, "ridge": 14.1}).to_dict()
    assert cheaper["standing"] == {"gru": "winner", "lstm": "best mean", "rnn": "worse"}
    assert headline(cheaper) == ("GRU wins: practically equivalent to LSTM and cheaper; SimpleRNN "
                                 "practically worse; beats the best baseline, ridge")
    undecided = decide([CellResult("lstm", {}, [10.0, 14.0, 9.0, 15.0], 4000, 50.0),
                        CellResult("gru", {}, [11.0, 13.0, 12.0, 14.5], 3040, 41.0)],
                       "mae", False, baselines={"theta": 9.0}).to_dict()
    assert undecided["decision"] == "undecided"
    assert headline(undecided).startswith("Undecided between LSTM and GRU (LSTM has the best mean)")
    assert headline(undecided).endswith("the theta baseline scores as well or better")
    only = decide([CellResult("gru", {}, base, 10, 1.0)], "mae", False).to_dict()
    assert headline(only) == "GRU: the only cell"
    # A verdict.json from before `standing` reads its comparisons.
    old = {k: v for k, v in cheaper.items() if k != "standing"}
    assert headline(old).startswith("GRU wins: practically equivalent to LSTM and cheaper; SimpleRNN")
