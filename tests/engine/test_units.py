"""The unit oracle a distributed chief serves a stage's units with (engine/units.py), driven
in-process as keras-tuner's servicer drives it: who gets which unit, retries, lost workers,
results. The whole path over gRPC runs in tests/engine/test_distributed.py."""
from __future__ import annotations

import json
import math

from cellpick.engine import internals
from cellpick.engine.distributed import _reap, _servicer_class
from cellpick.engine.units import RESULT, SAME, Unit, dumps, unit_oracle_class


def _oracle(groups: dict[str, int], known=()):
    units = [Unit(g, {"cell": g, "index": i}) for g, n in groups.items() for i in range(n)]
    return unit_oracle_class()(units, set(known))


def _take(oracle, tuner_id):
    trial = oracle.create_trial(tuner_id)
    return trial if trial.status == "RUNNING" else None


def _end(oracle, trial, result: dict, status="COMPLETED"):
    trial.hyperparameters.values[RESULT] = dumps(result)
    trial.status = status
    oracle.end_trial(trial)


def test_a_worker_takes_a_whole_group_before_another_and_leaves_one_to_an_idle_worker():
    oracle = _oracle({"gru": 3, "rnn": 3}, known={"B"})
    a = [_take(oracle, f"A/m{k}") for k in range(3)]
    assert [t.hyperparameters.values["group"] for t in a] == ["gru"] * 3
    # A holds gru; B is known and idle: rnn waits for B rather than stacking on A.
    assert _take(oracle, "A/m3") is None
    b = [_take(oracle, f"B/m{k}") for k in range(3)]
    assert {t.hyperparameters.values["group"] for t in b} == {"rnn"}
    assert _take(oracle, "B/m3") is None and not oracle.finished()


def test_alone_a_worker_stacks_another_group_and_a_same_only_id_does_not_open_one():
    oracle = _oracle({"gru": 2, "rnn": 2, "lstm": 2})
    held = [_take(oracle, "A/m0"), _take(oracle, "A/m1")]
    assert _take(oracle, f"A/m2{SAME}") is None  # gru is all taken: a same-only id gets nothing
    held.append(_take(oracle, "A/m2"))  # nobody else is known: a second group
    assert [t.hyperparameters.values["group"] for t in held] == ["gru", "gru", "rnn"]
    assert _take(oracle, f"A/m3{SAME}").hyperparameters.values["group"] == "rnn"


def test_results_come_back_in_unit_order_with_nan():
    oracle = _oracle({"gru": 2})
    first, second = _take(oracle, "A/m0"), _take(oracle, "A/m1")
    _end(oracle, second, {"score": math.nan, "worker": "A"})
    _end(oracle, first, {"score": 1.5, "worker": "A"})
    assert oracle.finished()
    assert oracle.results[0]["score"] == 1.5 and math.isnan(oracle.results[1]["score"])


def test_a_failed_group_is_retried_once_and_never_hits_the_consecutive_failure_limit():
    oracle = _oracle({"gru": 4, "rnn": 1})
    assert oracle.max_consecutive_failed_trials > 4
    for _ in range(2):  # every gru unit fails twice: once retried, then failed for good
        trials = [_take(oracle, f"A/m{k}") for k in range(4)]
        assert {t.hyperparameters.values["group"] for t in trials} == {"gru"}
        for t in trials:
            _end(oracle, t, {"error": "ValueError: boom"}, status="FAILED")
    assert sorted(oracle.failed) == [0, 1, 2, 3] and oracle.failed[0] == "ValueError: boom"
    rnn = _take(oracle, "A/m0")
    _end(oracle, rnn, {"score": 2.0})
    assert oracle.finished() and oracle.results == {4: {"score": 2.0}}


def test_a_silent_workers_units_go_back_whole_to_another_worker():
    oracle = _oracle({"gru": 2, "rnn": 2})
    servicer = _servicer_class()(oracle)
    a = [_take(oracle, "A/m0"), _take(oracle, "A/m1")]
    b = [_take(oracle, "B/m0"), _take(oracle, "B/m1")]
    for tid in ("A/m0", "A/m1"):
        servicer.seen[tid] = 0.0  # A has been silent since time 0
    for tid in ("B/m0", "B/m1"):
        servicer.seen[tid] = float("inf")
    lost = []
    _reap(oracle, servicer, 60.0, lambda tuner_id, trial_id: lost.append((tuner_id, trial_id)))
    assert sorted(t for _, t in lost) == sorted(t.trial_id for t in a)
    assert sorted(internals.retry_queue(oracle)) == sorted(t.trial_id for t in a)
    for t in b:
        _end(oracle, t, {"score": 1.0})
    again = [_take(oracle, "C/m0"), _take(oracle, "C/m1")]
    assert sorted(t.trial_id for t in again) == sorted(t.trial_id for t in a)
    for t in again:
        _end(oracle, t, {"score": 3.0})
    assert oracle.finished() and len(oracle.results) == 4


def test_a_unit_value_travels_as_keras_tuner_serialises_it():
    oracle = _oracle({"gru": 1})
    trial = _take(oracle, "A/m0")
    trial.hyperparameters.values[RESULT] = dumps({"val_loss": [0.5, math.inf], "n": 3})
    back = type(trial).from_proto(trial.to_proto())
    assert back.hyperparameters.values["cell"] == "gru"
    got = json.loads(back.hyperparameters.values[RESULT])
    assert got["val_loss"][1] == math.inf and got["n"] == 3



def test_a_worker_given_up_for_lost_that_finishes_after_all_is_taken_at_its_word():
    oracle = _oracle({"gru": 1})
    servicer = _servicer_class()(oracle)
    late = _take(oracle, "A/m0")
    servicer.seen["A/m0"] = 0.0
    _reap(oracle, servicer, 60.0, lambda tuner_id, trial_id: None)
    assert internals.retry_queue(oracle) == [late.trial_id]
    _end(oracle, late, {"score": 1.0})  # A was only slow: its result stands, no rerun
    assert oracle.finished() and not internals.retry_queue(oracle)
    assert _take(oracle, "B/m0") is None


def test_numpy_values_are_served_as_python_scalars():
    import numpy as np

    oracle = unit_oracle_class()([Unit("gru", {"lookback": np.int64(24), "dropout": np.float32(0.5)})])
    values = type(oracle.trials["0"]).from_proto(oracle.trials["0"].to_proto()).hyperparameters.values
    assert values["lookback"] == 24 and type(values["lookback"]) is int
    assert values["dropout"] == 0.5
