"""The plan of a fit: data read, layout and task detected, split and windowed; no training.

Shared by every role (one machine, the chief, a worker) and by `cellpick fit --dry-run`.
Also the capped split arrays that scoring and the baselines use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import FitConfig
from .vocab import METRICS

BASELINE_LIMIT = 20_000  # windows per split used for scoring and baselines (evenly spaced)


def split_arrays(prep, split: str):
    """At most BASELINE_LIMIT samples of a split, chosen before windows are materialised."""
    return prep.arrays(split, limit=BASELINE_LIMIT)


def split_predictions(model, prep, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(y raw, prediction in user units) for a split, through the export model."""
    x, y = split_arrays(prep, split)
    pred = model.predict(x, verbose=0, batch_size=256)
    return y, pred


@dataclass
class Plan:
    """What a fit will do, resolved before any training (`cellpick fit --dry-run` prints it)."""

    config: FitConfig
    path: Path
    dataset: Any
    prep: Any
    season: int | None
    metric: str
    greater_is_better: bool
    schedule: Any = None
    resampling: Any = None  # folds.Resampling: the verdict's folds x seeds
    test_size: float = 0.0  # the fraction held out for the test split ("auto" resolved)
    season_how: str | None = None  # where the season came from ("calendar: monthly", ...)

    def summary(self) -> dict[str, Any]:
        c, p = self.config, self.prep
        from .tracking import resolve_uri

        return {"task": self.dataset.task, "layout": self.dataset.layout, "sizes": p.sizes,
                "input": p.input_shape, "patch": p.patch, "lookback": p.lookback, "horizon": p.horizon,
                "season": self.season, "cells": c.cells, "units": c.units, "layers": c.layers,
                "max_trials": c.max_trials, "epochs": self.schedule.epochs,
                "patience": self.schedule.patience, "steps_per_epoch": self.schedule.steps_per_epoch,
                "seeds": self.resampling.seeds, "folds": self.resampling.folds,
                "resampling": self.resampling.kind, "test_size": self.test_size,
                "season_how": self.season_how, "rope": c.rope,
                "tuner": c.tuner, "metric": self.metric, "notes": p.notes,
                "batch_size": p.batch_size(), "tracking_uri": resolve_uri(c.tracking_uri),
                "experiment": c.experiment or self.path.stem, "out": str(Path(c.out).resolve()),
                "time_budget": c.time_budget, "space": self.space()}

    def space(self) -> dict[str, list]:
        """The hyperparameters searched besides cell, units and layers (see space.py)."""
        from .space import DROPOUTS, LEARNING_RATES

        extra = {"dropout": DROPOUTS, "learning_rate": LEARNING_RATES}
        if self.prep.kind == "sequence":
            extra["bidirectional"] = [False, True]
        return extra


def make_plan(config: FitConfig) -> Plan:
    """Read the data, detect layout and task, split and window it; no training."""
    from . import detection
    from .errors import ConfigError
    from .folds import AUTO_TEST, resample, resolve_test_size
    from .season import season_for, training_rows
    from .space import patch_size
    from .train import Schedule
    from .windows import prepare

    if not config.data:
        raise ConfigError("no data file given; pass DATA.csv or a recipe with a 'data' key")
    path = Path(config.data)
    ds = detection.load(
        path, target=config.target, task=config.task, id=config.id, time=config.time,
        text=config.text,
        forecast_hint=any(v is not None for v in (config.lookback, config.horizon, config.season)),
    )
    horizon = config.horizon or 1
    season, how = config.season, ("--season" if config.season else None)
    if ds.layout == "series" and season is None:  # training rows only (of the 20% test split
        # when the test size is still "auto": its training rows are the fewest)
        provisional = AUTO_TEST if config.test_size == "auto" else config.test_size
        season, how = season_for(ds, training_rows(ds, horizon, provisional))
    test_size = resolve_test_size(ds, config.test_size, lookback=config.lookback, horizon=horizon,
                                  season=season)
    prep = prepare(ds, lookback=config.lookback, horizon=horizon, test_size=test_size,
                   season=season, seed=config.seed)
    prep.patch = patch_size(prep.kind, prep.input_shape[0] if prep.input_shape else None,
                            prep.masked, config.patch)
    if config.patch is not None and config.patch > 1 and prep.patch == 1:
        prep.notes.append("--patch applies to fixed-length sequences (wide layout); ignored")
    resampling = resample(ds, lookback=prep.lookback, horizon=horizon, folds=config.folds,
                          seeds=config.seeds, seed=config.seed, test_size=test_size, season=season)
    for unit in resampling.units:
        unit.prep.patch = prep.patch
    metric, greater = METRICS[ds.task]
    schedule = Schedule.for_data(prep.sizes["train"], prep.batch_size(), config.epochs)
    return Plan(config, path, ds, prep, season, metric, greater, schedule, resampling, test_size,
                how)


def deterministic(tf) -> None:
    """Same seed, same result on a CPU: TensorFlow's op determinism. On a GPU the cuDNN
    kernels stay non-deterministic (and fast); results there can differ in the last digits."""
    if not tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()
