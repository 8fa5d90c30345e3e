"""Training policy: step-counted schedules, the one-device mirrored strategy, small data leaving the plateau."""
from __future__ import annotations

import numpy as np
from helpers import fit_one, sign_of_mean

from cellpick.data.prepared import prepare
from cellpick.engine.train import MIN_PATIENCE_STEPS, MIN_STEPS, Schedule, strategy


def test_small_data_gets_a_step_floor_and_explicit_epochs_are_literal():
    tiny = Schedule.for_data(n_train=32, batch_size=8, epochs=None)  # 4 steps per epoch
    assert tiny.epochs * tiny.steps_per_epoch >= MIN_STEPS
    assert tiny.patience * tiny.steps_per_epoch >= MIN_PATIENCE_STEPS
    big = Schedule.for_data(n_train=20_000, batch_size=128, epochs=None)
    assert big.epochs == 40 and big.patience == 10
    assert Schedule.for_data(n_train=32, batch_size=8, epochs=3) == Schedule(3, 5, 4)


def test_tiny_classification_leaves_the_plateau_with_the_default_schedule():
    prep = prepare(sign_of_mean(48, 20), lookback=None, horizon=1, test_size=0.0, seed=0)
    schedule = Schedule.for_data(prep.sizes["train"], prep.batch_size(), None)
    config = {"cell": "gru", "units": 8, "layers": 1, "dropout": 0.0, "learning_rate": 3e-3}
    model, history, _ = fit_one(prep, config, seed=1, schedule=schedule)
    assert min(history["val_loss"]) < 0.5 * np.log(2)  # well below chance cross-entropy
    assert max(history["val_accuracy"]) >= 0.9


def test_mirrored_strategy_trains_on_the_one_local_device():
    prep = prepare(sign_of_mean(48, 20), lookback=None, horizon=1, test_size=0.0, seed=0)
    config = {"cell": "lstm", "units": 4, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3}
    model, history, _ = fit_one(prep, config, seed=1, schedule=Schedule(2, 2, 1),
                                distribute=strategy("mirrored"))
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    assert strategy("none") is None


def test_patch_size_only_for_long_fixed_length_sequences():
    from cellpick.models.cells import patch_size

    assert patch_size("sequence", 150, False, None) == 6  # GunPoint: 25 patches of 6 steps
    assert patch_size("sequence", 63, False, None) == 1  # short: the cells read raw steps
    assert patch_size("sequence", 64, False, None) == 3
    assert patch_size("sequence", 150, False, 10) == 10 and patch_size("sequence", 150, False, 1) == 1
    assert patch_size("sequence", 150, False, 500) == 150  # never more than the sequence
    assert patch_size("sequence", None, True, 8) == 1  # variable length (masked): never
    assert patch_size("window", 256, False, None) == 1 and patch_size("text", None, False, 4) == 1


def test_predictions_call_small_blocks_and_predict_large_ones_with_the_same_outputs():
    """plan.predictions: one direct call below DIRECT_BELOW samples (no traced predict
    function per fresh model), predict() above it; both give predict()'s numbers."""
    import keras

    from cellpick.engine.train import DIRECT_BELOW, predictions

    keras.utils.set_random_seed(0)
    inp = keras.Input((7, 2))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GRU(4)(inp)))
    rng = np.random.default_rng(0)
    for n in (5, DIRECT_BELOW, DIRECT_BELOW + 40):
        x = rng.normal(size=(n, 7, 2)).astype("float32")
        got = predictions(model, x)
        assert isinstance(got, np.ndarray) and got.shape == (n, 3)
        np.testing.assert_allclose(got, model.predict(x, verbose=0, batch_size=256), atol=1e-5)
