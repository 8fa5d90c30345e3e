"""The plan of a fit: data read, layout and task detected, split and windowed; no training.

Shared by every role (one machine, the chief, a worker) and by `cellpick fit --dry-run`.
`make_plan` builds it; `windowed` rebuilds its windows and folds for another lookback or
patch size (the data-level stage, stages/datalevel.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellpick.config import FitConfig
from cellpick.data import detection
from cellpick.data.dataset import Dataset
from cellpick.data.folds import AUTO_TEST, Resampling, resample, resolve_test_size
from cellpick.data.prepared import Prepared, prepare
from cellpick.data.season import season_for, training_rows
from cellpick.engine.train import Schedule
from cellpick.errors import ConfigError
from cellpick.models.cells import (
    DEFAULT_PREPROCESSING,
    DROPOUTS,
    LEARNING_RATES,
    patch_size,
)
from cellpick.tracking import resolve_uri
from cellpick.vocab import METRICS


@dataclass
class Plan:
    """What a fit will do, resolved before any training (`cellpick fit --dry-run` prints it)."""

    config: FitConfig
    path: Path
    dataset: Dataset
    prep: Prepared  # the search split
    season: int | None
    metric: str
    greater_is_better: bool
    schedule: Schedule | None = None
    resampling: Resampling | None = None  # the verdict's folds x seeds
    test_size: float = 0.0  # the fraction held out for the test split ("auto" resolved)
    season_how: str | None = None  # where the season came from ("calendar: monthly", ...)

    def summary(self) -> dict[str, Any]:
        c, p = self.config, self.prep
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
                "time_budget": c.time_budget, "space": self.space(),
                "candidates": self.candidates()}

    def candidates(self) -> dict[str, Any]:
        """The cells' candidate list: the grid's size and how many of it each cell tries
        (the whole grid, or a quasi-random subset; models/candidates.py), or adaptive."""
        grid = len(self.config.units) * len(self.config.layers) * math.prod(
            len(v) for v in self.space().values())
        tuner = self.config.tuner
        if tuner in ("bayesian", "hyperband"):
            return {"kind": "adaptive", "grid": grid, "per_cell": None}
        per_cell = min(self.config.max_trials, grid)
        return {"kind": "grid" if per_cell == grid else "quasi-random", "grid": grid,
                "per_cell": per_cell}

    def space(self) -> dict[str, list]:
        """The hyperparameters searched besides cell, units and layers (models/cells.py)."""
        extra = {"dropout": DROPOUTS, "learning_rate": LEARNING_RATES}
        if self.prep.kind in ("sequence", "text"):
            extra["bidirectional"] = [False, True]
        return extra


def make_plan(config: FitConfig) -> Plan:
    """Read the data, detect layout and task, split and window it; no training."""
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
    return windowed(config, path, ds, season, how, test_size, config.lookback)


def windowed(config: FitConfig, path: Path, ds, season: int | None, how: str | None,
             test_size: float, lookback: int | None, patch: int | None = None) -> Plan:
    """The plan's windows, folds and schedule for one lookback and patch size (None: the
    option's value or the default). The search split's rows do not depend on either, so
    the data-level stage rebuilds a plan with its chosen values here."""
    horizon = config.horizon or 1
    prep = prepare(ds, lookback=lookback, horizon=horizon, test_size=test_size,
                   season=season, seed=config.seed)
    prep.patch = patch_size(prep.kind, prep.input_shape[0] if prep.input_shape else None,
                            prep.masked, patch if patch is not None else config.patch)
    if config.patch is not None and config.patch > 1 and prep.patch == 1:
        prep.notes.append("--patch applies to fixed-length sequences (wide layout); ignored")
    if prep.task == "forecast" and config.log and "log" not in prep.target_stats:
        raise ConfigError(f"The 'log' option needs a strictly positive target; column "
                          f"'{ds.target}' has values <= 0 in its training rows. Leave --log "
                          f"out or use --no-log.")
    if prep.task != "forecast" and any(getattr(config, k) is not None
                                       for k in ("scaling", "log", "linear")):
        prep.notes.append("--scaling, --log and --linear apply to forecasts; ignored")
    if prep.task == "forecast":  # until the data-level stage chooses: the options or defaults
        prep.preprocessing = {k: (getattr(config, k) if getattr(config, k) is not None else v)
                              for k, v in DEFAULT_PREPROCESSING.items()}
    resampling = resample(ds, lookback=prep.lookback, horizon=horizon, folds=config.folds,
                          seeds=config.seeds, seed=config.seed, test_size=test_size, season=season)
    for unit in resampling.units:
        unit.prep.patch = prep.patch
        unit.prep.preprocessing = prep.preprocessing
    metric, greater = METRICS[ds.task]
    schedule = Schedule.for_data(prep.sizes["train"], prep.batch_size(), config.epochs)
    return Plan(config, path, ds, prep, season, metric, greater, schedule, resampling, test_size,
                how)


