"""Training policy shared by search trials and verdict seeds: schedule, callbacks, scoring.

Early stopping watches val_loss and restores the best weights, so a model is always
judged at its best epoch. Budgets are counted in gradient steps, not epochs: 40 epochs of a
50-sample set are 160 steps, too few to leave the initial plateau, so by default every
trial may take at least MIN_STEPS steps and waits at least MIN_PATIENCE_STEPS steps without
improvement before stopping. Under --time-budget a search trial is scored only once it has
trained `Schedule.min_steps` (engine/budget.py, docs/budget.md). An explicit --epochs is taken literally (patience still a
quarter of it, at least 5 epochs). The learning rate halves when validation loss stalls for
half the patience.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
import numpy as np

from cellpick.data.prepared import split_arrays
from cellpick.tracking import summary_key

DEFAULT_EPOCHS = 40
MIN_STEPS = 1200
MIN_PATIENCE_STEPS = 200


@dataclass(frozen=True)
class Schedule:
    """How long one trial or seed trains: an epoch cap and early-stopping patience."""

    epochs: int
    patience: int
    steps_per_epoch: int

    @classmethod
    def for_data(cls, n_train: int, batch_size: int, epochs: int | None) -> "Schedule":
        spe = max(1, math.ceil(n_train / batch_size))
        if epochs is not None:  # the user's explicit budget
            return cls(epochs, max(5, epochs // 4), spe)
        cap = math.ceil(max(DEFAULT_EPOCHS * spe, MIN_STEPS) / spe)
        wait = math.ceil(max(max(5, DEFAULT_EPOCHS // 4) * spe, MIN_PATIENCE_STEPS) / spe)
        return cls(cap, wait, spe)

    @property
    def min_steps(self) -> int:
        """The steps a search trial trains before a time budget may stop it and it is still
        scored: MIN_PATIENCE_STEPS and at least one epoch, never more than the schedule's cap."""
        return min(self.epochs * self.steps_per_epoch,
                   max(MIN_PATIENCE_STEPS, self.steps_per_epoch))


def callbacks(schedule: Schedule, deadline: float | None = None) -> list:
    import keras

    cbs = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=schedule.patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, min_lr=1e-5,
                                          patience=max(2, schedule.patience // 2)),
        keras.callbacks.TerminateOnNaN(),
    ]
    if deadline is not None:
        cbs.append(_deadline_callback(deadline))
    return cbs


def _deadline_callback(deadline: float):
    """A Keras callback (defined lazily: Keras is imported only when training)."""
    import keras

    class Deadline(keras.callbacks.Callback):
        """Stops training at the end of the epoch in which the fit's deadline passes."""

        def __init__(self, deadline: float):
            super().__init__()
            self.deadline = deadline

        def on_epoch_end(self, epoch, logs=None):
            if time.time() >= self.deadline:
                self.model.stop_training = True

    return Deadline(deadline)


def strategy(name: str):
    """A tf.distribute strategy for one trial, or None. "mirrored" replicates the model on
    every local GPU (on a CPU-only machine it runs on the one CPU device)."""
    if name == "none":
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def best_epoch(history: dict[str, list[float]]) -> int:
    """Index of the epoch with the lowest val_loss (the weights early stopping restored)."""
    losses = history.get("val_loss") or []
    finite = [(v, i) for i, v in enumerate(losses) if v == v]
    return min(finite)[1] if finite else 0


def summary_metrics(history: dict[str, list[float]], metric: str) -> dict[str, float]:
    """best_epoch, best_val_loss and best_val_<metric> at the epoch early stopping kept.

    `history` holds per-epoch lists in user units (as logged): `val_loss` and `val_<metric>`.
    """
    be = best_epoch(history)
    out = {"best_epoch": be, "best_val_loss": history["val_loss"][be]}
    values = history.get(f"val_{metric}") or []
    if be < len(values) and values[be] is not None:
        out[summary_key(metric)] = values[be]
    return out


DIRECT_BELOW = 512  # samples: score a split this small by calling the model, not predict()


def split_predictions(model, prep, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(y raw, prediction in user units) for a split, through the export model."""
    x, y = split_arrays(prep, split)
    return y, predictions(model, x)


def predictions(model, x) -> np.ndarray:
    """The model's outputs for `x`. A small input (up to DIRECT_BELOW samples: a fold's
    scoring block) is one direct call, since `predict()` traces a new function for every
    model; a large one goes through `predict()`, whose traced loop is the faster one there
    (docs/engine.md, "Scoring")."""
    if isinstance(x, np.ndarray) and len(x) <= DIRECT_BELOW:
        import tensorflow as tf

        return np.asarray(model(tf.constant(x), training=False))
    return model.predict(x, verbose=0, batch_size=256)
