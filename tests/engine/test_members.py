"""Members trained together: each one the model it would have been alone, with its own policy."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import sign_of_mean

from cellpick.data.dataset import Dataset
from cellpick.data.prepared import prepare
from cellpick.engine.members import (
    Member,
    MemberResult,
    _Group,
    _Policy,
    fit_members,
    refit_members,
)
from cellpick.engine.options import EngineOptions
from cellpick.engine.train import Schedule

CLASSIFY = {"cell": "gru", "units": 8, "layers": 1, "dropout": 0.0, "learning_rate": 3e-3}


@pytest.fixture(autouse=True, scope="module")
def _deterministic():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()  # as pipeline.run does on a CPU


# XLA's compile takes seconds: groups here train without it; the first test checks the XLA step.
NO_XLA = EngineOptions(xla=False)


def _sine(n: int, scale: float, level: float) -> Dataset:
    t = np.arange(n)
    frame = pd.DataFrame({"y": level + scale * np.sin(2 * np.pi * t / 12) + 0.1 * scale * np.cos(t)})
    return Dataset(path=Path("sine.csv"), frame=frame, layout="series", task="forecast",
                   target="y", features=["y"])


def _classify_prep():
    return prepare(sign_of_mean(52, 12), lookback=None, horizon=1, test_size=0.0, seed=0)


def test_a_member_trains_as_plain_keras_would_alone_and_beside_others():
    import keras

    from cellpick.models.cells import build_model

    prep = _classify_prep()
    assert prep.sizes["train"] % prep.batch_size() != 0  # a short batch every epoch, padded here
    other = prepare(sign_of_mean(52, 12, seed=5), lookback=None, horizon=1, test_size=0.0, seed=0)
    steps = 18  # three epochs, each with its short batch; a multiple of steps_per_execution
    group = _Group([Member(prep, 7), Member(other, 8)], CLASSIFY, "train", EngineOptions(xla=True))
    alone = _Group([Member(prep, 7)], CLASSIFY, "train", NO_XLA)
    assert group.stacked is not None and alone.stacked is None  # both engines, one answer
    for g in (group, alone):
        g.train(steps)
    keras.utils.set_random_seed(7)
    solo = build_model(prep, CLASSIFY)  # what fit_one trains: Keras' own train step
    solo.fit(prep.dataset("train", prep.batch_size(), shuffle=True, seed=7).repeat(),
             steps_per_epoch=steps, epochs=1, verbose=0)
    for a, b, c in zip(group.models[0].get_weights(), alone.models[0].get_weights(), solo.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)


def test_three_members_without_xla_are_stacked_and_each_trains_as_keras_would_alone():
    """A short schedule trains without XLA; from three members (members.STACK_FROM_MEMBERS) a
    CPU group is stacked all the same (one trace for all members, not one per model), two are not."""
    import keras

    from cellpick.models.cells import build_model

    prep = _classify_prep()
    others = [prepare(sign_of_mean(52, 12, seed=s), lookback=None, horizon=1, test_size=0.0, seed=0) for s in (5, 6)]
    members = [Member(prep, 7), Member(others[0], 8), Member(others[1], 9)]
    group = _Group(members, CLASSIFY, "train", NO_XLA)
    assert group.stacked is not None and not group.jit
    assert _Group(members[:2], CLASSIFY, "train", NO_XLA).stacked is None
    steps = 18
    group.train(steps)
    keras.utils.set_random_seed(7)
    solo = build_model(prep, CLASSIFY)
    solo.fit(prep.dataset("train", prep.batch_size(), shuffle=True, seed=7).repeat(),
             steps_per_epoch=steps, epochs=1, verbose=0)
    for a, c in zip(group.models[0].get_weights(), solo.get_weights()):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)


def test_a_stopped_member_is_frozen_exactly_while_the_other_trains():
    prep = _classify_prep()
    group = _Group([Member(prep, 1), Member(prep, 2)], CLASSIFY, "train", NO_XLA)
    group.train(3)
    before = [m.get_weights() for m in group.models]
    group.set_lr(0, 0.0)
    group.set_lr(1, group.lr(1) * 0.5)
    group.train(10)
    after = [m.get_weights() for m in group.models]
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0]))
    assert not all(np.array_equal(a, b) for a, b in zip(before[1], after[1]))
    assert group.lr(1) == pytest.approx(CLASSIFY["learning_rate"] * 0.5)


def test_a_trained_group_leaves_no_graph_behind_in_tensorflows_gradient_registry():
    """Keras' all-reduce of one replica's gradients was traced through tf.custom_gradient, which
    adds a gradient function to TensorFlow's global registry per trace, never removed, each
    holding its whole graph (~60,000 objects a tiny fit kept for the life of the process).
    A group's step now skips that identity: training adds nothing there, and nothing of the
    group's graphs outlives it."""
    import gc
    import weakref

    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry
    before = set(registry)
    group = _Group([Member(_classify_prep(), 1), Member(_classify_prep(), 2)], CLASSIFY, "train", NO_XLA)
    assert group.stacked is None  # the unstacked step: each member's own Keras Adam
    group.train(3)
    assert set(registry) == before
    graph = weakref.ref(group._step.get_concrete_function(group.iterator.element_spec).graph)
    del group
    gc.collect()
    assert graph() is None


def test_policy_halves_then_stops_on_its_own_val_loss():
    class Model:
        def get_weights(self):
            return ["w"]

    pol = _Policy(patience=4, lr_patience=2)
    lrs = []
    lr = 1e-3
    for r, v in enumerate([1.0, 0.9, 0.95, 0.95, 0.95, 0.95]):
        new = pol.update(r, v, 0.5, lr, Model())
        lr = new if new is not None else lr
        lrs.append(lr)
    assert lrs == [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4] and pol.best_round == 1
    assert pol.stopped and pol.wait == 4
    nan = _Policy(patience=4, lr_patience=2)
    nan.update(0, 1.0, float("nan"), lr, Model())
    assert nan.stopped  # TerminateOnNaN, per member


def test_stop_and_halve_act_per_member_in_one_group():
    prep = _classify_prep()
    flipped = copy.copy(prep)  # same training data, validation labels flipped: val_loss rises
    flipped._y = {**prep._y, "val": 1 - prep._y["val"]}
    schedule = Schedule(epochs=60, patience=8, steps_per_epoch=5)  # rounds of 5 steps
    good, bad = fit_members([Member(prep, 3), Member(flipped, 3)], CLASSIFY, schedule, options=NO_XLA)
    assert bad.rounds_trained < good.rounds_trained  # it stopped, the other trained on
    assert min(bad.history["learning_rate"]) < CLASSIFY["learning_rate"]  # halved on its own
    assert bad.best_round == int(np.argmin(bad.history["val_loss"]))
    assert good.best_round == int(np.argmin(good.history["val_loss"]))
    assert max(good.history["val_accuracy"]) >= 0.9
    # Restored best weights: the model scores its best round's val_loss.
    x, y = flipped.arrays("val")
    p = bad.model.predict(x, verbose=0)
    loss = -np.mean(np.log(p[np.arange(len(y)), y.astype(int)]))
    assert loss == pytest.approx(bad.history["val_loss"][bad.best_round], rel=1e-4)


def test_members_with_different_data_and_scaling_train_and_export():
    from cellpick.models.cells import export_model

    preps = [prepare(_sine(n, scale, level), lookback=24, horizon=6, test_size=0.0, season=12)
             for n, scale, level in ((120, 1.0, 0.0), (160, 50.0, 300.0))]
    assert preps[0].sizes["train"] != preps[1].sizes["train"]
    config = {"cell": "lstm", "units": 8, "layers": 1, "dropout": 0.2, "learning_rate": 3e-3,
              "scaling": "relative", "linear": True}
    schedule = Schedule(epochs=8, patience=4, steps_per_epoch=4)
    results = fit_members([Member(p, 11 + i) for i, p in enumerate(preps)], config, schedule, options=NO_XLA)
    for prep, r in zip(preps, results):
        assert isinstance(r, MemberResult) and r.steps == (r.best_round + 1) * r.round_steps
        assert set(r.history) == {"loss", "mae", "val_loss", "val_mae", "learning_rate"}
        assert np.isfinite(r.history["val_loss"]).all()
        x, y = prep.arrays("val")
        pred = export_model(prep, r.model).predict(x, verbose=0)
        assert pred.shape == y.shape
        assert np.mean(np.abs(pred - y)) < 2 * np.std(y)  # original units, not standardised
    refit = refit_members([Member(p, 11 + i) for i, p in enumerate(preps)], config,
                          [r.steps for r in results], options=NO_XLA)
    assert [export_model(p, m).predict(p.arrays("val")[0], verbose=0).shape[1] for p, m in zip(preps, refit)] == [6, 6]


def test_same_seeds_give_the_same_members_twice():
    prep = _classify_prep()
    schedule = Schedule(epochs=6, patience=3, steps_per_epoch=5)
    config = {**CLASSIFY, "dropout": 0.2}
    runs = [fit_members([Member(prep, 1), Member(prep, 2)], config, schedule, options=NO_XLA) for _ in range(2)]
    for a, b in zip(*runs):
        assert a.history == b.history and a.best_round == b.best_round
        assert all(np.array_equal(u, v) for u, v in zip(a.model.get_weights(), b.model.get_weights()))
    assert runs[0][0].history != runs[0][1].history  # different seeds, different members


def test_xla_only_for_groups_that_train_long_enough():
    """XLA's compile (seconds) pays over many steps: a short schedule trains without it."""
    from cellpick.engine.members import XLA_FROM_STEPS, _use_xla, fit_groups

    prep = _classify_prep()
    two = [Member(prep, 1), Member(prep, 2)]
    assert _use_xla(two, XLA_FROM_STEPS) and _use_xla(two, None)
    assert not _use_xla(two, XLA_FROM_STEPS - 1) and not _use_xla(two[:1], XLA_FROM_STEPS)
    [results] = fit_groups([(two, CLASSIFY)], Schedule(epochs=2, patience=1, steps_per_epoch=5))
    assert [r.extra["xla"] for r in results] == [False, False]


def test_set_seeds_gives_what_keras_set_random_seed_gives():
    """parallel.set_seeds skips tf.random.set_seed's kernel-cache clear (which stalls the other
    threads' training) and must still give the same weights, dropout and shuffle order."""
    import keras
    import tensorflow as tf

    from cellpick.engine.threads import set_seeds
    from cellpick.models.cells import build_model

    prep = _classify_prep()
    config = {**CLASSIFY, "dropout": 0.5}
    x = tf.constant(prep.arrays("train")[0][:8])

    def draw(seed_with):
        seed_with(11)
        model = build_model(prep, config)
        order = [y.numpy().tolist() for _, y in prep.dataset("train", 4, shuffle=True, seed=11).repeat(2)]
        return model.get_weights(), model(x, training=True).numpy(), order, np.random.rand()

    keras_draw, ours, again = draw(keras.utils.set_random_seed), draw(set_seeds), draw(set_seeds)
    for a, b in ((keras_draw, ours), (ours, again)):
        assert all(np.array_equal(u, v) for u, v in zip(a[0], b[0]))
        assert np.array_equal(a[1], b[1]) and a[2] == b[2] and a[3] == b[3]
    assert not np.array_equal(keras_draw[1], build_model(prep, config)(x, training=True).numpy())


def test_gc_is_paused_while_threads_train_and_collected_after():
    """A full collection in one thread stalls the others (parallel.gc_paused): none runs while
    groups train in threads; cyclic garbage made meanwhile is collected at the end."""
    import gc
    import weakref

    from cellpick.engine.threads import gc_paused

    class Cycle:
        pass

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        a = Cycle()
        a.self = a
        ref = weakref.ref(a)
        del a
        with gc_paused():  # nested: still paused, collected once at the outer exit
            assert not gc.isenabled()
        assert not gc.isenabled() and ref() is not None
    assert gc.isenabled() and ref() is None
    gc.disable()  # a caller that turned collection off keeps it off
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_groups_in_threads_are_the_groups_trained_one_after_another():
    """--jobs: groups of different cells train at once in threads, each exactly as alone."""
    from cellpick.engine.members import fit_groups

    prep = _classify_prep()
    schedule = Schedule(epochs=6, patience=3, steps_per_epoch=5)
    groups = [([Member(prep, 1), Member(prep, 2)], {**CLASSIFY, "dropout": 0.2}),
              ([Member(prep, 3)], {**CLASSIFY, "cell": "lstm"}),
              ([Member(prep, 4)], {**CLASSIFY, "cell": "rnn"})]
    one, three = (fit_groups(groups, schedule, jobs=j, options=NO_XLA) for j in (1, 3))
    assert [len(g) for g in three] == [2, 1, 1]
    for group_a, group_b in zip(one, three):
        for a, b in zip(group_a, group_b):
            assert a.history == b.history and a.best_round == b.best_round
            assert all(np.array_equal(u, v) for u, v in zip(a.model.get_weights(), b.model.get_weights()))
    assert one[1][0].history != one[2][0].history  # an LSTM group and a SimpleRNN group


def test_text_members_train_without_xla(tmp_path):
    from cellpick.data.detection import load

    rng = np.random.default_rng(0)
    words = ["the", "a", "film", "plot", "was", "actor"]
    rows = []
    for i in range(60):
        good = i % 2 == 0
        text = " ".join(list(rng.choice(words, size=5)) + ["great" if good else "awful"])
        rows.append({"review": text, "sentiment": "pos" if good else "neg"})
    path = tmp_path / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    prep = prepare(load(path), lookback=None, horizon=1, test_size=0.0, seed=0)
    assert prep.kind == "text"
    results = fit_members([Member(prep, 1), Member(prep, 2)], CLASSIFY,
                          Schedule(epochs=4, patience=2, steps_per_epoch=6))
    assert all(np.isfinite(r.history["val_loss"]).all() for r in results)
    x, _ = prep.arrays("val")
    assert results[0].model.predict(x, verbose=0).shape == (len(x), 2)


def test_refit_trains_each_member_for_its_own_steps():
    prep = _classify_prep()
    refit = refit_members([Member(prep, 1), Member(prep, 2)], CLASSIFY, [7, 12], options=NO_XLA)
    for seed, steps, model in ((1, 7, refit[0]), (2, 12, refit[1])):
        alone = _Group([Member(prep, seed)], CLASSIFY, "trainval", NO_XLA)
        alone.train(steps)
        for a, b in zip(model.get_weights(), alone.models[0].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one step count per member; got 1 for 2 members"):
        refit_members([Member(prep, 1), Member(prep, 2)], CLASSIFY, [7])


def test_a_passed_deadline_stops_the_group_after_one_round():
    import time

    prep = _classify_prep()
    results = fit_members([Member(prep, 1), Member(prep, 2)], CLASSIFY,
                          Schedule(epochs=50, patience=20, steps_per_epoch=5), deadline=time.time(),
                          options=NO_XLA)
    assert [r.rounds_trained for r in results] == [1, 1] and results[0].best_round == 0
    assert [r.by_deadline for r in results] == [True, True]
    # Without a deadline a group ends by its policy or the epoch cap: not by_deadline.
    capped = fit_members([Member(prep, 1)], CLASSIFY, Schedule(epochs=2, patience=20, steps_per_epoch=5),
                         options=NO_XLA)
    assert [r.by_deadline for r in capped] == [False]


def test_the_metric_of_a_one_value_target_is_each_samples_own_error():
    """A regression with one target per sequence (y of shape (n,), predictions (n, 1)): the
    engine's mae is |y_i - p_i| averaged, not every target against every prediction."""
    from cellpick.models.cells import export_model, user_units

    ds = sign_of_mean(60, 10)
    frame = ds.frame.assign(label=ds.frame[ds.features].mean(axis=1) * 3 + 5)
    regress = Dataset(path=Path("mean.csv"), frame=frame, layout="wide", task="regress",
                      target="label", features=ds.features)
    prep = prepare(regress, lookback=None, horizon=1, test_size=0.0, seed=0)
    schedule = Schedule(epochs=30, patience=30, steps_per_epoch=4)
    [r] = fit_members([Member(prep, 1)], {**CLASSIFY, "learning_rate": 1e-2}, schedule, options=NO_XLA)
    x, y = prep.arrays("val")
    pred = export_model(prep, r.model).predict(x, verbose=0).reshape(y.shape)
    val_mae = user_units(prep, r.history)["val_mae"][r.best_round]  # in the target's units
    assert val_mae == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-3)
