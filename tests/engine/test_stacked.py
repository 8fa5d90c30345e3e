"""Stacked members: K models' recurrent and dense layers run batched, each member still its model."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import sign_of_mean
from test_members import _sine

from cellpick.data.prepared import prepare
from cellpick.engine.members import Member, _Group
from cellpick.engine.options import EngineOptions
from cellpick.engine.stacked import Stacked, stackable


@pytest.fixture(autouse=True, scope="module")
def _deterministic():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


@pytest.fixture(scope="module")
def vowels(data_dir):
    """Variable-length sequences (masked), two different splits: different constants."""
    from cellpick.data.detection import load

    ds = load(data_dir / "JapaneseVowels_train.csv")
    return [prepare(ds, lookback=None, horizon=1, test_size=0.2, seed=s) for s in (0, 3)]


def _models(preps, config):
    import keras

    from cellpick.models.cells import build_model

    out = []
    for i, prep in enumerate(preps):
        keras.utils.set_random_seed(i + 1)
        out.append(build_model(prep, config))
    return out


SERIES = [((120, 1.0, 0.0)), ((160, 50.0, 300.0))]


@pytest.mark.parametrize("data, config", [
    ("vowels", {"cell": "lstm", "units": 8, "layers": 2, "bidirectional": True}),
    ("vowels", {"cell": "gru", "units": 8, "layers": 2, "bidirectional": True, "dropout": 0.2}),
    ("vowels", {"cell": "rnn", "units": 8, "layers": 2}),
    ("series", {"cell": "gru", "units": 8, "layers": 2, "scaling": "relative", "linear": True}),
    ("series", {"cell": "lstm", "units": 8, "layers": 1, "scaling": "diff", "linear": False}),
    ("wide", {"cell": "gru", "units": 8, "layers": 1, "patch": 4}),
])
def test_a_stacked_forward_pass_is_each_models_own(request, data, config):
    if data == "vowels":
        preps = request.getfixturevalue("vowels")
    elif data == "series":
        preps = [prepare(_sine(*s), lookback=24, horizon=6, test_size=0.0, season=12) for s in SERIES]
    else:
        preps = [prepare(sign_of_mean(52, 70, seed=s), lookback=None, horizon=1, test_size=0.0, seed=0)
                 for s in (0, 5)]
    models = _models(preps, config)
    assert stackable(models)
    xs = [p.arrays("val")[0][:9].astype("float32") for p in preps]
    outs = Stacked(models)(xs, training=False)
    for out, model, x in zip(outs, models, xs):
        np.testing.assert_allclose(out.numpy(), model(x, training=False).numpy(), atol=1e-6)
    assert not np.allclose(outs[0].numpy()[:1], outs[1].numpy()[:1])  # two members, not one


def test_stacked_members_train_as_keras_would_alone(vowels):
    """Masked, bidirectional, two layers: members stacked under XLA against Keras' own fit."""
    import keras

    from cellpick.models.cells import _fit_options, build_model

    config = {"cell": "lstm", "units": 8, "layers": 2, "bidirectional": True, "learning_rate": 3e-3}
    group = _Group([Member(vowels[0], 7), Member(vowels[1], 8)], config, "train", EngineOptions(xla=True))
    assert group.stacked is not None
    steps = solo_steps = _fit_options(vowels[0])["steps_per_execution"]  # Keras runs whole executions
    assert steps >= 10
    group.train(steps)
    keras.utils.set_random_seed(7)
    solo = build_model(vowels[0], config)
    bs = vowels[0].batch_size()
    solo.fit(vowels[0].dataset("train", bs, shuffle=True, seed=7).repeat(), steps_per_epoch=solo_steps,
             epochs=1, verbose=0)
    for a, b in zip(group.models[0].get_weights(), solo.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_stopped_stacked_member_stays_put_even_with_a_nan_loss():
    prep = prepare(sign_of_mean(52, 12), lookback=None, horizon=1, test_size=0.0, seed=0)
    config = {"cell": "gru", "units": 8, "layers": 1, "learning_rate": 3e-3}
    group = _Group([Member(prep, 1), Member(prep, 2), Member(prep, 3)], config, "train", EngineOptions(xla=True))
    assert group.stacked is not None
    group.train(3)
    group.stop(0)
    head = group.models[0].get_layer("probabilities")
    head.kernel.assign(np.full(head.kernel.shape, np.nan, "float32"))  # member 0's loss: NaN
    group.set_lr(2, group.lr(2) * 0.5)
    before = [m.get_weights() for m in group.models]
    sums = group.train(6)
    after = [m.get_weights() for m in group.models]
    assert np.isnan(sums[0, 0]) and np.isfinite(sums[1:]).all()
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)  # frozen exactly, NaN or not
    assert all(np.isfinite(w).all() for w in after[1] + after[2])
    assert not all(np.array_equal(a, b) for a, b in zip(before[1], after[1]))
    assert group.lr(0) == 0.0 and group.lr(2) == pytest.approx(1.5e-3) and group.lr(1) == pytest.approx(3e-3)


def test_a_compacted_group_trains_its_active_member_on_as_before():
    """Dropping stopped members from the stacked step changes nothing for the one left."""
    from cellpick.engine.members import _rebuild_pays

    prep = prepare(sign_of_mean(52, 12), lookback=None, horizon=1, test_size=0.0, seed=0)
    config = {"cell": "gru", "units": 8, "layers": 1, "learning_rate": 3e-3}
    # The same members twice: by the rule (compact=None), and rebuilt whenever half have stopped.
    groups = [_Group([Member(prep, s) for s in (1, 2, 3)], config, "train", EngineOptions(xla=True, compact=c))
              for c in (None, True)]
    for g in groups:
        g.train(3)
        g.stop(0)
        g.stop(2)
        g.set_lr(1, g.lr(1) * 0.5)
    assert not groups[0].compact(10**4)  # GRU-8: the compute saved would not pay the compile
    assert groups[1].compact(10**4) and groups[1].live == [1] and groups[1].compactions == [1]
    sums = [g.train(5) for g in groups]
    vals = [g.validate() for g in groups]
    np.testing.assert_allclose(sums[1][1], sums[0][1], rtol=1e-5)
    np.testing.assert_allclose(vals[1][1], vals[0][1], rtol=1e-5)
    assert not sums[1][[0, 2]].any() and not vals[1][[0, 2]].any()  # dropped: not computed
    for a, b in zip(groups[1].models[1].get_weights(), groups[0].models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert groups[1].lr(1) == groups[0].lr(1) == pytest.approx(1.5e-3) and groups[1].lr(0) == 0.0
    # The rule: 8 of 15 dropped, 18 ms of a member's step (JapaneseVowels' GRU 128x2
    # bidirectional), 200 steps left: 29 s saved, worth a rebuild; 20 steps left: 3 s, not.
    assert _rebuild_pays(15, 7, 0.018, 200) and not _rebuild_pays(15, 7, 0.018, 20)


def test_layers_it_does_not_compute_are_not_stacked():
    import keras

    def model(**cell):
        inp = keras.Input((5, 2))
        return keras.Model(inp, keras.layers.Dense(1)(keras.layers.GRU(4, **cell)(inp)))

    assert stackable([model(), model()])
    assert not stackable([model(recurrent_dropout=0.1), model(recurrent_dropout=0.1)])
    assert not stackable([model(), model(reset_after=False)])
