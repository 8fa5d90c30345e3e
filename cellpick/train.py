"""Training policy shared by search trials and verdict seeds: callbacks, patience, one fit.

Early stopping watches val_loss and restores the best weights, so a model is always
judged at its best epoch. Patience is a quarter of the epoch budget (at least 5 epochs):
small data sets need time to leave the initial plateau.
"""
from __future__ import annotations

import time
from typing import Any

from .windows import Prepared


def patience(epochs: int) -> int:
    return max(5, epochs // 4)


def callbacks(epochs: int) -> list:
    import keras

    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience(epochs),
                                      restore_best_weights=True),
        keras.callbacks.TerminateOnNaN(),
    ]


def fit_one(prep: Prepared, config: dict[str, Any], seed: int, epochs: int):
    """Train one configuration with one seed; return (model, history dict, seconds)."""
    import keras

    from .space import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(prep, config)
    bs = prep.batch_size()
    t0 = time.perf_counter()
    history = model.fit(
        prep.dataset("train", bs, shuffle=True, seed=seed),
        validation_data=prep.dataset("val", bs),
        epochs=epochs, callbacks=callbacks(epochs), shuffle=False, verbose=0,
    )
    return model, history.history, time.perf_counter() - t0


def best_epoch(history: dict[str, list[float]]) -> int:
    """Index of the epoch with the lowest val_loss (the weights early stopping restored)."""
    losses = history.get("val_loss") or []
    finite = [(v, i) for i, v in enumerate(losses) if v == v]
    return min(finite)[1] if finite else 0
