"""Folds x seeds for the verdict: the units every cell and contestant is trained and scored on.

`resample` splits the non-test data (the test block is the one data.prepared.prepare holds
out for the same `test_size` and `seed`) by repeated (stratified) K-fold for sequences and
text, by rolling origin for series and panels (each scoring block follows its training part;
the seeds repeat on each origin). A unit (`Fold`) holds a Prepared with splits "train" (the
inner training part), "val" (inner validation, for early stopping only), "score" and
"trainval" (train + val); its scaling statistics come from its own "train" rows.
`default_folds` sizes the scheme; `resolve_test_size` settles --test-size auto. The schemes,
their cost and the test block's rule: docs/data.md.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from cellpick.data.dataset import Dataset
from cellpick.data.prepared import (
    Prepared,
    default_lookback,
    holdout,
    labels,
    sequence_prep,
    sequences,
    series_blocks,
    series_groups,
    series_prep,
    split_ids,
    text_prep,
)
from cellpick.errors import ConfigError, DataError

INNER_VAL = 0.2  # sequences: the share of a fold's training part kept for early stopping
MIN_TRAIN_WINDOWS = 2  # series: training windows the first origin needs at least


@dataclass
class Fold:
    """One fold x seed unit."""

    fold: int  # 0..F-1 (series: 0 is the earliest origin)
    seed: int  # the training seed of this unit
    repeat: int  # repetition (sequences: its own partition; series: 0..S-1 on the same origin)
    prep: Prepared  # splits "train" (inner), "val" (inner, early stopping), "score", "trainval"


@dataclass
class Resampling:
    """The units of `resample`, ordered repetition by repetition, fold by fold."""

    kind: str  # "rolling-origin" | "repeated-stratified-kfold" | "repeated-kfold"
    folds: int
    seeds: int
    units: list[Fold]
    test_fraction: float  # of the samples each fold scores: n_score / (n_score + n_trainval)
    test_size: float = 0.0  # the test fraction held out before resampling ("auto" resolved)
    n_validated: int = 0  # samples (windows) scored by one repetition: the accuracy ROPE's n
    notes: list[str] = field(default_factory=list)

    def matrix(self, values) -> list[list[float]]:
        """Per-unit values (in `units` order) as the folds x seeds matrix verdict.decide
        takes (row: fold or origin; column: seed or repetition)."""
        values = list(values)
        if len(values) != len(self.units):
            raise ConfigError(f"one value per unit is needed: {len(self.units)} units, "
                              f"got {len(values)} values.")
        m = [[float("nan")] * self.seeds for _ in range(self.folds)]
        for unit, v in zip(self.units, values):
            m[unit.fold][unit.repeat] = float(v)
        return m

    def to_dict(self) -> dict:
        """What verdict.json and the MLflow parent run record about the scheme."""
        return {"kind": self.kind, "folds": self.folds, "seeds": self.seeds,
                "test_fraction": self.test_fraction, "test_size": self.test_size,
                "n_validated": self.n_validated}


def default_folds(n: int) -> tuple[int, int]:
    """(folds, seeds) for n non-test samples (windows for a series): 5 x 3 below 1,000, 5 x 2
    below 10,000, else 3 x 2 (docs/data.md)."""
    if n < 1_000:
        return 5, 3
    if n < 10_000:
        return 5, 2
    return 3, 2


def unit_seed(seed: int, repeat: int) -> int:
    """The training seed of repetition `repeat`: the verdict's seeds as before (seed + 1000 k)."""
    return int(seed) + 1000 * (repeat + 1)


def origin_plan(rows: int, lookback: int, horizon: int, folds: int) -> tuple[int, int] | None:
    """(folds, block rows) of a rolling-origin plan for a series of `rows` non-test rows.

    Each scoring block holds s = max(horizon, rows // (2 folds)) rows, so the origins score at
    most the last half of the series (for the usual case; at least one window each); the
    inner validation block before each origin has s rows as well. When the first origin would
    keep fewer than MIN_TRAIN_WINDOWS training windows, the blocks shrink (down to `horizon`
    rows), then the folds (to 2 at least); None when even that does not fit.
    """
    for f in range(int(folds), 1, -1):
        for s in range(max(horizon, rows // (2 * f)), horizon - 1, -1):
            inner = rows - f * s - s  # rows before the first origin's validation block
            if inner - lookback - horizon + 1 >= MIN_TRAIN_WINDOWS:
                return f, s
    return None


def resample(ds: Dataset, *, lookback: int | None, horizon: int, folds: int | None,
             seeds: int | None, seed: int, test_size, season: int | None = None) -> Resampling:
    """Folds x seeds units over the non-test data.

    lookback, horizon: series windows (pass the search split's `prep.lookback`); folds, seeds:
    None for `default_folds`; seed: the fit's seed (partitions and training seeds follow
    from it); test_size: a fraction or "auto", as given to `data.prepared.prepare`.
    """
    for name, v in (("folds", folds), ("seeds", seeds)):
        if v is not None and (not isinstance(v, (int, np.integer)) or v < (2 if name == "folds" else 1)):
            raise ConfigError(f"The '{name}' option must be an integer >= "
                              f"{2 if name == 'folds' else 1}. Got {v!r} instead.")
    test_size = resolve_test_size(ds, test_size, lookback=lookback, horizon=horizon, season=season)
    if ds.layout == "series":
        return _rolling_origin(ds, lookback, horizon, folds, seeds, seed, test_size, season)
    if ds.layout in ("wide", "long", "text"):
        return _kfold(ds, folds, seeds, seed, test_size)
    raise DataError(f"{ds.path.name}: the '{ds.layout}' layout is not supported")


def _kfold(ds: Dataset, folds, seeds, seed, test_size) -> Resampling:
    from sklearn.model_selection import KFold, StratifiedKFold

    y = labels(ds)
    notes: list[str] = []
    rest, _ = holdout(ds, y, test_size, seed, notes)
    f_default, s_default = default_folds(len(rest))
    f, s = folds or f_default, seeds or s_default
    classify = ds.task == "classify"
    if classify:
        smallest = min(c for c in np.bincount(y[rest]) if c > 0)
        if smallest < f and smallest >= 2:
            notes.append(f"the smallest class has {smallest} non-test samples: {smallest} folds "
                         f"instead of {f}")
            f = smallest
        elif smallest < 2:
            notes.append("a class has a single non-test sample: it is scored in one fold only")
    if len(rest) < 2 * f:
        raise DataError(f"{ds.path.name}: {len(rest)} non-test samples are too few for {f} folds "
                        "with an inner validation part; provide more samples or lower --folds")
    if ds.layout == "text":
        data = ds.frame[ds.text].astype(str).to_numpy(dtype=object)
        build = lambda parts, n: text_prep(ds, data, y, parts, n)  # noqa: E731
    else:
        data = sequences(ds)[0]
        build = lambda parts, n: sequence_prep(ds, data, y, parts, n)  # noqa: E731
    units, fractions = [], []
    for r in range(s):
        splitter = (StratifiedKFold if classify else KFold)(f, shuffle=True, random_state=seed + r)
        with warnings.catch_warnings():  # a class smaller than f: noted above
            warnings.simplefilter("ignore", UserWarning)
            partition = list(splitter.split(rest, y[rest]))
        for k, (tr, sc) in enumerate(partition):
            trainval, scored = rest[tr], rest[sc]
            unit_notes = list(notes)
            train, val = split_ids(ds, y, trainval, INNER_VAL, seed + 1000 * r + k, unit_notes)
            prep = build({"train": train, "val": val, "score": scored}, unit_notes)
            units.append(Fold(fold=k, seed=unit_seed(seed, r), repeat=r, prep=prep))
            fractions.append(len(scored) / (len(scored) + len(trainval)))
    kind = "repeated-stratified-kfold" if classify else "repeated-kfold"
    return Resampling(kind=kind, folds=f, seeds=s, units=units,
                      test_fraction=float(np.mean(fractions)), test_size=test_size,
                      n_validated=int(len(rest)), notes=notes)


def _rolling_origin(ds: Dataset, lookback, horizon, folds, seeds, seed, test_size,
                    season) -> Resampling:
    groups = series_groups(ds)
    lengths = np.array([len(g) for g in groups])
    if lookback is None:  # as data.prepared.prepare chooses it for the same test size
        n_val, n_test = series_blocks(int(lengths.min()), horizon, test_size)
        lookback = default_lookback(season, horizon, int(lengths.min()) - n_val - n_test - horizon)
    rest = lengths - np.array([series_blocks(int(n), horizon, test_size)[1] for n in lengths])
    windows = int(np.maximum(rest - lookback - horizon + 1, 0).sum())
    f_default, s_default = default_folds(windows)
    f, s = folds or f_default, seeds or s_default
    plan = origin_plan(int(rest.min()), lookback, horizon, f)
    if plan is None:
        raise DataError(
            f"{ds.path.name}: {int(rest.min())} non-test rows are too few for rolling-origin "
            f"folds with lookback {lookback} and horizon {horizon}; need at least "
            f"{3 * horizon + lookback + horizon - 1 + MIN_TRAIN_WINDOWS} rows. Lower --lookback "
            "or --horizon, or --test-size.")
    notes = []
    if plan[0] < f:
        notes.append(f"{int(rest.min())} non-test rows fit {plan[0]} rolling origins, not {f}")
    f, block = plan
    preps, dropped = [], []
    for k in range(f):
        bounds = []
        for m in rest:
            origin = int(m) - (f - k) * block
            bounds.append({"train": (0, origin - block), "val": (origin - block, origin),
                           "score": (origin, origin + block)})
        prep = series_prep(ds, lookback, horizon, bounds, groups)
        sizes = prep.sizes
        if ds.positions is not None and (sizes["train"] < MIN_TRAIN_WINDOWS
                                         or not sizes["val"] or not sizes["score"]):
            dropped.append(k + 1)  # the gaps left this origin without windows of a part
            continue
        preps.append(prep)
    if dropped:
        if len(preps) < 2:
            raise DataError(
                f"{ds.path.name}: the gaps in '{ds.time}' leave {len(preps)} of {f} rolling "
                f"origins with training, validation and scoring windows of lookback {lookback} + "
                f"horizon {horizon} (no window spans a gap); need 2. Lower --lookback or "
                "--horizon, or fill the gaps.")
        notes.append(f"the gaps in '{ds.time}' leave origin{'s' if len(dropped) > 1 else ''} "
                     f"{', '.join(map(str, dropped))} of {f} without windows: {len(preps)} "
                     "rolling origins")
    units, fractions, validated = [], [], 0
    for k, prep in enumerate(preps):
        prep.notes = list(notes) + prep.notes
        sizes = prep.sizes
        fractions.append(sizes["score"] / (sizes["score"] + sizes["train"] + sizes["val"]))
        validated += sizes["score"]
        for r in range(s):  # the seeds share the origin's data: one Prepared for all
            units.append(Fold(fold=k, seed=unit_seed(seed, r), repeat=r, prep=prep))
    f = len(preps)
    units.sort(key=lambda u: (u.repeat, u.fold))
    return Resampling(kind="rolling-origin", folds=f, seeds=s, units=units,
                      test_fraction=float(np.mean(fractions)), test_size=test_size,
                      n_validated=validated, notes=notes)


# --test-size auto: a test block only where it can be informative.
AUTO_TEST = 0.2  # the fraction held out when the data is large enough
MIN_TEST_SAMPLES = 100  # sequences: the test block holds at least this many samples
MIN_TEST_PER_CLASS = 5  # classify: and at least this many of every class


def resolve_test_size(ds: Dataset, test_size: float | str, *, lookback: int | None = None,
                      horizon: int = 1, season: int | None = None) -> float:
    """A fraction as given, or "auto" resolved by `auto_test_size`."""
    if isinstance(test_size, str):
        if test_size != "auto":
            raise ConfigError(f"The 'test_size' option must be 'auto' or a fraction in [0, 0.5). "
                            f"Got {test_size!r} instead.")
        return auto_test_size(ds, lookback=lookback, horizon=horizon, season=season)
    return float(test_size)


def auto_test_size(ds: Dataset, *, lookback: int | None = None, horizon: int = 1,
                   season: int | None = None) -> float:
    """AUTO_TEST (0.2) where a test block is informative, else 0 (no test split: the
    cross-validated estimate is the only one).

    Sequences and text: when the test block holds at least MIN_TEST_SAMPLES samples (500
    samples or more) and, when classifying, at least MIN_TEST_PER_CLASS of every class (25 or
    more per class). Series and panels: when, after a test block of max(horizon, 20%) rows
    per series, the shortest series still fits the default rolling-origin plan
    (default_folds, origin_plan: every origin with a training part of its own).
    """
    if ds.layout == "series":
        lengths = ds.frame.groupby(ds.id, sort=False).size().to_numpy() if ds.id else \
            np.array([len(ds.frame)])
        shortest = int(lengths.min())
        n_val, n_test = series_blocks(shortest, horizon, AUTO_TEST)
        lb = lookback or default_lookback(season, horizon, shortest - n_val - n_test - horizon)
        rest = lengths - np.array([series_blocks(int(n), horizon, AUTO_TEST)[1] for n in lengths])
        windows = int(np.maximum(rest - lb - horizon + 1, 0).sum())
        folds, _ = default_folds(windows)
        plan = origin_plan(int(rest.min()), lb, horizon, folds)
        return AUTO_TEST if plan is not None and plan[0] == folds else 0.0
    y = labels(ds)
    if AUTO_TEST * len(y) < MIN_TEST_SAMPLES:
        return 0.0
    if ds.task == "classify" and AUTO_TEST * np.bincount(y).min() < MIN_TEST_PER_CLASS:
        return 0.0
    return AUTO_TEST
