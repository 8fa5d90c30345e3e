"""Prepared: a dataset split, windowed and scaled, as training, contestants and export read it.

`prepare` makes the search split (train, val, test); `series_prep`, `sequence_prep` and
`text_prep` build one from explicit rows or samples (the units of data/folds.py).
- series: windows of `lookback` steps predict the next `horizon` values; each series is split
  by time, a window belongs to the split that holds its whole target span, and no window
  spans a calendar gap (docs/calendars.md).
- sequences (wide, long): one sample per row or id, zero right-padded; stratified splits.
- text: one string per sample; the vocabulary comes from the training split.
Scaling statistics come from the training split only and travel into the model, so it takes
raw input. The why (lazy windows, the long layout's mask, text sizes): docs/data.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cellpick._quiet import tensorflow as quiet_tensorflow
from cellpick.data.dataset import Dataset
from cellpick.errors import DataError


@dataclass
class Prepared:
    """Everything training, baselines and export need to know about the inputs."""

    kind: str  # "window" (series), "sequence" (wide, long) or "text"
    task: str
    input_name: str  # name of the model input and of the SavedModel signature argument
    input_shape: tuple  # (steps, features); steps None for long (any length); () for text
    n_outputs: int  # horizon, number of classes, or 1
    x_mean: np.ndarray
    x_var: np.ndarray
    y_mean: float = 0.0
    y_std: float = 1.0
    lookback: int | None = None
    horizon: int | None = None
    masked: bool = False
    patch: int = 1  # steps per patch (models.cells.patch_size); 1: the cells read raw steps
    # forecast: the data-level stage's scaling, log and linear (models/cells.py reads it)
    preprocessing: dict | None = None
    input_dtype: str = "float32"  # "string" for text
    # text: vocabulary learned on the training split (without the pad and OOV tokens),
    # tokens kept per text, embedding width.
    vocabulary: list[str] | None = None
    text_length: int | None = None
    embed_dim: int | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # series: the concatenated rows and window starts per split; sequences: the arrays.
    _values: np.ndarray | None = None
    _target: np.ndarray | None = None
    # forecast: the target's training statistics per working space ("raw", and "log" when the
    # series is strictly positive): mean, std, and std of first differences (models/cells.py).
    target_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    _starts: dict[str, np.ndarray] = field(default_factory=dict)
    _x: dict[str, np.ndarray] = field(default_factory=dict)
    _y: dict[str, np.ndarray] = field(default_factory=dict)
    # series: (windows per split, rows, windows the calendar gaps removed) of each series, for
    # messages about short series.
    _per_series: list = field(default_factory=list, repr=False)
    # series (for the contestants): the first row of each series in _values/_target, in order.
    _series_starts: np.ndarray | None = None

    def _part(self, parts: dict[str, np.ndarray], split: str) -> np.ndarray:
        """One split's array; "trainval" (what a refit trains on) is train + validation."""
        if split == "trainval":
            return np.concatenate([parts["train"], parts["val"]])
        return parts[split]

    def batch_size(self) -> int:
        """About 8+ gradient steps per epoch on small data, at most 128 rows per step."""
        n = max(1, self.sizes.get("train", 1))
        return int(min(128, max(8, 2 ** int(np.log2(max(n / 8, 1))))))

    def input_meta(self) -> dict:
        """The model input as cellpick.json records it (text: how it is tokenised)."""
        meta = {"name": self.input_name, "shape": list(self.input_shape), "dtype": self.input_dtype}
        if self.kind == "text":
            meta.update(vocabulary_size=len(self.vocabulary), tokens_per_text=self.text_length,
                        embedding_width=self.embed_dim)
        return meta

    def arrays(self, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Materialise a split as (X raw, y raw) numpy arrays (scoring; model input). With
        `limit`, at most that many samples, evenly spaced, chosen before any window is built."""
        n = self.sizes.get(split, 0) if split != "trainval" else self.sizes["train"] + self.sizes["val"]
        pick = (np.linspace(0, n - 1, limit).astype(int) if limit is not None and n > limit
                else slice(None))
        if self.kind in ("sequence", "text"):
            return self._part(self._x, split)[pick], self._part(self._y, split)[pick]
        starts = self._part(self._starts, split)[pick]
        lb, h = self.lookback, self.horizon
        x = self._values[starts[:, None] + np.arange(lb)[None, :]]
        y = self._target[starts[:, None] + lb + np.arange(h)[None, :]]
        return x, y

    def origins(self, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Series windows, in the order (and with the `limit`) of `arrays`: the index of the
        series each window belongs to and its origin, the row (in _target) of its first
        target value. Row series_start..origin-1 is the history a forecast may condition on.
        Without _series_starts (a Prepared built by hand) all rows are one series.
        (The statistical contestants of models/contestants.py read it.)"""
        n = self.sizes.get(split, 0) if split != "trainval" else self.sizes["train"] + self.sizes["val"]
        pick = (np.linspace(0, n - 1, limit).astype(int) if limit is not None and n > limit
                else slice(None))
        starts = self._part(self._starts, split)[pick]
        series_starts = self._series_starts if self._series_starts is not None else np.zeros(1, "int64")
        series = np.searchsorted(series_starts, starts, side="right") - 1
        return series.astype("int64"), (starts + self.lookback).astype("int64")

    def dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int | None = None):
        """A tf.data pipeline of (raw input, scaled target) batches for `split`."""
        import tensorflow as tf

        if self.kind in ("sequence", "text"):
            x, y = self._part(self._x, split), self._part(self._y, split)
            if self.task != "classify":
                y = ((y - self.y_mean) / self.y_std).astype("float32")
            if self.kind == "text":
                x = tf.constant(list(x), dtype=tf.string, shape=(len(x),))
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            if shuffle:
                ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        values = tf.constant(self._values)
        target = tf.constant(((self._target - self.y_mean) / self.y_std).astype("float32"))
        lb, h = self.lookback, self.horizon
        x_off = tf.range(lb, dtype=tf.int64)[None, :]
        y_off = tf.range(lb, lb + h, dtype=tf.int64)[None, :]

        def gather(starts):
            starts = starts[:, None]
            return tf.gather(values, starts + x_off), tf.gather(target, starts + y_off)

        starts = self._part(self._starts, split)
        ds = tf.data.Dataset.from_tensor_slices(starts)
        if shuffle:
            ds = ds.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE
        )


def default_lookback(season: int | None, horizon: int, n_rows: int) -> int:
    """Two seasons when a season is known, else 24 steps; never more than a third of the rows."""
    want = 2 * season if season else max(24, 2 * horizon)
    return int(max(1, min(want, n_rows // 3)))


def prepare(ds: Dataset, *, lookback: int | None, horizon: int, test_size: float,
            season: int | None = None, seed: int = 0) -> Prepared:
    """The search split: train and validation parts of the non-test data, and the test block
    (`test_size`: a fraction; folds.resolve_test_size resolves "auto"). folds.resample holds
    out the same test block for the same arguments."""
    test_size = float(test_size)
    if ds.layout == "series":
        return _prepare_series(ds, lookback, horizon, test_size, season)
    if ds.layout in ("wide", "long"):
        return _prepare_sequences(ds, test_size, seed)
    if ds.layout == "text":
        return _prepare_text(ds, test_size, seed)
    raise DataError(f"{ds.path.name}: the '{ds.layout}' layout is not supported")


def series_blocks(n: int, horizon: int, test_size: float) -> tuple[int, int]:
    """(validation rows, test rows) at the end of a series of `n` rows: the test block
    max(horizon, test_size n) (none at test_size 0), the validation block before it
    max(horizon, max(test_size, 0.2) n). The search split, the folds and the season agree on it."""
    n_test = max(horizon, int(round(test_size * n))) if test_size > 0 else 0
    n_val = max(horizon, int(round(max(test_size, 0.2) * n)))
    return n_val, n_test


def series_groups(ds: Dataset) -> list[pd.DataFrame]:
    """The rows of each series, in order of first appearance (one frame without an id)."""
    return [g for _, g in ds.frame.groupby(ds.id, sort=False)] if ds.id else [ds.frame]


def _prepare_series(ds: Dataset, lookback, horizon, test_size, season) -> Prepared:
    groups = series_groups(ds)
    shortest = min(len(g) for g in groups)
    if lookback is None:
        n_val, n_test = series_blocks(shortest, horizon, test_size)
        lookback = default_lookback(season, horizon, shortest - n_val - n_test - horizon)
    bounds = []
    for g in groups:
        n = len(g)
        n_val, n_test = series_blocks(n, horizon, test_size)
        val_end, train_end = n - n_test, n - n_test - n_val
        bounds.append({"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, n)})
    prep = series_prep(ds, lookback, horizon, bounds, groups)
    for g, b, (k, n, removed) in zip(groups, bounds, prep._per_series):
        n_val, n_test = b["val"][1] - b["val"][0], b["test"][1] - b["test"][0]
        empty = [w for w, split in (("training", "train"), ("validation", "val"), ("test", "test"))
                 if k[split] == 0 and (split != "test" or n_test)]
        if empty:
            need = lookback + horizon + n_val + n_test + 1
            where = f" (series {g[ds.id].iloc[0]!r})" if ds.id else ""
            if removed and n >= need:
                split = empty[0]
                raise DataError(
                    f"{ds.path.name}: the gaps in '{ds.time}'{where} leave no {split} window of "
                    f"lookback {lookback} + horizon {horizon} (no window spans a gap); lower "
                    "--lookback or --horizon, change --test-size, or fill the gaps.")
            raise DataError(
                f"{ds.path.name}: {n} rows{where} are too few for lookback {lookback} + horizon "
                f"{horizon} with validation and test blocks of {n_val} and {n_test} rows; need at "
                f"least {need}. Lower --lookback or --horizon, or --test-size."
            )
    return prep


def series_prep(ds: Dataset, lookback: int, horizon: int, bounds: list[dict[str, tuple[int, int]]],
                groups: list | None = None) -> Prepared:
    """A series Prepared from explicit row blocks: bounds[i][split] = (first, end) rows of
    series i. A window belongs to a split when its whole target span lies in the split's rows
    (its inputs may reach back before them: they are the past). With calendar gaps
    (ds.positions) a window is kept only when its lookback + horizon rows are consecutive on
    the calendar; a note says how many the gaps removed. Scaling statistics and target_stats
    come from the "train" rows of each series only."""
    groups = groups if groups is not None else series_groups(ds)
    values, targets, train_rows, per_series = [], [], [], []
    starts: dict[str, list] = {k: [] for k in bounds[0]}
    offset, series_starts, removed_all, total_all = 0, [], 0, 0
    for g, b in zip(groups, bounds):
        series_starts.append(offset)
        n = len(g)
        s = np.arange(0, max(n - lookback - horizon + 1, 0))
        total = len(s)
        s = _consecutive(s, ds.positions, g.index, lookback + horizon)
        tgt_start, tgt_end = s + lookback, s + lookback + horizon
        counts = {}
        for k, (lo, hi) in b.items():
            picked = s[(tgt_start >= lo) & (tgt_end <= hi)]
            starts[k].append(picked + offset)
            counts[k] = len(picked)
        per_series.append((counts, n, total - len(s)))
        removed_all, total_all = removed_all + total - len(s), total_all + total
        block = g[ds.features].to_numpy(dtype="float32")
        values.append(block)
        targets.append(g[ds.target].to_numpy(dtype="float32"))
        train_rows.append(block[b["train"][0]:b["train"][1]])
        offset += n
    train = np.concatenate(train_rows)
    if len(train) == 0:
        raise DataError(f"{ds.path.name}: no training rows left; provide longer series")
    y_train = train[:, 0]
    prep = Prepared(
        kind="window", task="forecast", input_name="window",
        input_shape=(lookback, len(ds.features)), n_outputs=horizon,
        x_mean=train.mean(axis=0), x_var=np.maximum(train.var(axis=0), 1e-12),
        y_mean=float(y_train.mean()), y_std=float(max(y_train.std(), 1e-6)),
        lookback=lookback, horizon=horizon,
        _values=np.concatenate(values), _target=np.concatenate(targets),
        _starts={k: np.concatenate(v).astype("int64") for k, v in starts.items()},
        _series_starts=np.asarray(series_starts, dtype="int64"),
    )
    prep.sizes = {k: int(len(v)) for k, v in prep._starts.items()}
    prep.target_stats = _target_stats(train_rows)
    prep._per_series = per_series
    if removed_all:
        prep.notes.append(f"the gaps in '{ds.time}' remove {removed_all} of {total_all} windows "
                          f"(no window of {lookback} + {horizon} steps spans a gap)")
    return prep


def _consecutive(starts: np.ndarray, positions: np.ndarray | None, rows: pd.Index,
                 span: int) -> np.ndarray:
    """The window starts (rows of one series) whose `span` rows are consecutive on the
    calendar: their grid positions (`positions` at the series' frame `rows`) rise by one
    per row. Without positions every row follows the one before."""
    if positions is None or not len(starts):
        return starts
    pos = positions[rows.to_numpy()]
    return starts[pos[starts + span - 1] - pos[starts] == span - 1]


def _target_stats(train_rows: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean, std and first-difference std of the training target (per series differences),
    in raw units and, for a strictly positive series, in logs."""
    spaces = {"raw": [b[:, 0].astype("float64") for b in train_rows]}
    if all((b[:, 0] > 0).all() for b in train_rows):
        spaces["log"] = [np.log(b[:, 0].astype("float64")) for b in train_rows]
    stats = {}
    for name, blocks in spaces.items():
        values = np.concatenate(blocks)
        diffs = np.concatenate([np.diff(b) for b in blocks if len(b) > 1] or [np.zeros(1)])
        stats[name] = {"mean": float(values.mean()), "std": float(max(values.std(), 1e-6)),
                       "diff_std": float(max(diffs.std(), 1e-6)),
                       "min": float(values.min()), "max": float(values.max())}
    return stats


def sequences(ds: Dataset) -> tuple[np.ndarray, list]:
    """(n, steps, features) float32 array, zero right-padded, and the sample keys in order."""
    if ds.layout == "wide":
        x = ds.frame[ds.features].to_numpy(dtype="float32")[:, :, None]
        return x, list(range(len(x)))
    # Each row goes to (its sample, its place among that sample's rows), samples in order of
    # first appearance (groupby's sort=False order), in one scatter (docs/data.md).
    codes, keys = pd.factorize(ds.frame[ds.id], sort=False)
    rows = codes >= 0  # a missing id belongs to no sample (groupby drops it too)
    codes = codes[rows]
    place = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
    x = np.zeros((len(keys), int(np.bincount(codes).max()), len(ds.features)), dtype="float32")
    x[codes, place] = ds.frame[ds.features].to_numpy(dtype="float32")[rows]
    return x, list(keys)


def labels(ds: Dataset) -> np.ndarray:
    """Per-sample targets: class indices for classify, float values for regress."""
    if ds.layout in ("wide", "text"):
        y = ds.frame[ds.target]
    else:
        y = ds.frame.groupby(ds.id, sort=False)[ds.target].first()
    if ds.task == "classify":
        index = {c: i for i, c in enumerate(ds.classes)}
        return np.array([index[_label_key(v)] for v in y], dtype="int64")
    return y.to_numpy(dtype="float32")


def _label_key(v):
    if isinstance(v, (np.integer,)) or (isinstance(v, float) and float(v).is_integer()):
        return int(v)
    return v if isinstance(v, str) else (v.item() if hasattr(v, "item") else v)


def padded_lengths(x: np.ndarray) -> np.ndarray:
    """Steps per sample of a zero right-padded (n, steps, features) array, as the model's
    mask sees them: up to the last step that is not all zeros (at least 1)."""
    nonzero = np.abs(x).sum(axis=2) > 0
    last = x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 1)


def split_ids(ds: Dataset, y: np.ndarray, ids: np.ndarray, size: float, seed: int,
              notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held out) of sample indices `ids`, `size` of them held out: stratified by class
    when classifying and possible (else at random, noted once in `notes`)."""
    from sklearn.model_selection import train_test_split

    strat = y[ids] if ds.task == "classify" else None
    try:
        return train_test_split(ids, test_size=size, random_state=seed, stratify=strat)
    except ValueError:
        if "stratify" not in " ".join(notes):
            notes.append("too few samples per class to stratify; split at random")
        return train_test_split(ids, test_size=size, random_state=seed)


def holdout(ds: Dataset, y: np.ndarray, test_size: float, seed: int,
               notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(non-test, test) sample indices: the same for `prepare` and folds.resample."""
    idx = np.arange(len(y))
    if len(idx) < 4:
        raise DataError(f"{ds.path.name}: {len(idx)} samples are too few for training, "
                        "validation and test splits; provide more samples")
    if test_size <= 0:
        return idx, idx[:0]
    return split_ids(ds, y, idx, test_size, seed, [] if notes is None else notes)


def _split_samples(ds: Dataset, y: np.ndarray, test_size: float, seed: int, notes: list[str]):
    """Indices of the train, val and test samples: stratified by class when classifying."""
    rest, test = holdout(ds, y, test_size, seed, notes)
    train, val = split_ids(ds, y, rest, max(test_size, 0.2), seed, notes)
    return {"train": train, "val": val, "test": test}


def _finish_samples(prep: Prepared, ds: Dataset, y: np.ndarray, parts: dict) -> Prepared:
    if ds.task == "regress":
        y_train = y[parts["train"]]
        prep.y_mean, prep.y_std = float(y_train.mean()), float(max(y_train.std(), 1e-6))
    prep.sizes = {k: int(len(v)) for k, v in prep._x.items()}
    if prep.sizes["train"] < 2 or prep.sizes["val"] < 1:
        raise DataError(
            f"{ds.path.name}: {len(y)} samples are too few for training, validation and test "
            f"splits; provide more samples or lower --test-size"
        )
    return prep


def _prepare_sequences(ds: Dataset, test_size: float, seed: int) -> Prepared:
    x, _ = sequences(ds)
    y = labels(ds)
    notes: list[str] = []
    parts = _split_samples(ds, y, test_size, seed, notes)
    return sequence_prep(ds, x, y, parts, notes)


def sequence_prep(ds: Dataset, x: np.ndarray, y: np.ndarray, parts: dict[str, np.ndarray],
                  notes: list[str] | None = None) -> Prepared:
    """A sequence Prepared from explicit sample indices per split (x, y: `sequences` and
    `labels`); scaling statistics from parts["train"] only."""
    lengths = padded_lengths(x)
    # Scaling statistics from the training samples' real steps, never from the padding.
    flat = np.concatenate([x[i, : lengths[i]] for i in parts["train"]])
    long = ds.layout == "long"
    prep = Prepared(
        kind="sequence", task=ds.task, input_name="sequence",
        input_shape=(None if long else x.shape[1], x.shape[2]),
        n_outputs=len(ds.classes) if ds.task == "classify" else 1,
        x_mean=flat.mean(axis=0), x_var=np.maximum(flat.var(axis=0), 1e-12),
        masked=long, notes=list(notes or []),
        _x={k: x[v] for k, v in parts.items()},
        _y={k: y[v] for k, v in parts.items()},
    )
    return _finish_samples(prep, ds, y, parts)


# Text: how the vocabulary, the sequence length and the embedding width follow from the data.
MAX_TOKENS = 20_000  # vocabulary: the most frequent training tokens, at most this many
MIN_LENGTH, MAX_LENGTH = 8, 400  # tokens kept per text: the 95th percentile, within these


def text_length(counts: np.ndarray) -> int:
    """Tokens kept per text: the 95th percentile of the training texts' token counts,
    rounded up to a multiple of 8, within [MIN_LENGTH, MAX_LENGTH]. Longer texts keep their
    first tokens; shorter ones are padded (and masked)."""
    p95 = float(np.percentile(counts, 95)) if len(counts) else 0.0
    return int(min(MAX_LENGTH, max(MIN_LENGTH, 8 * int(np.ceil(p95 / 8)))))


def embed_dim(vocab_size: int) -> int:
    """Embedding width: about the square root of the vocabulary size, a power of 2 in [16, 64]."""
    return int(min(64, max(16, 2 ** round(np.log2(np.sqrt(max(vocab_size, 1)))))))


def _vectorizer(**kw):
    import keras

    return keras.layers.TextVectorization(
        standardize="lower_and_strip_punctuation", split="whitespace", **kw)


def _prepare_text(ds: Dataset, test_size: float, seed: int) -> Prepared:
    texts = ds.frame[ds.text].astype(str).to_numpy(dtype=object)
    y = labels(ds)
    notes: list[str] = []
    parts = _split_samples(ds, y, test_size, seed, notes)
    return text_prep(ds, texts, y, parts, notes)


def text_prep(ds: Dataset, texts: np.ndarray, y: np.ndarray, parts: dict[str, np.ndarray],
              notes: list[str] | None = None) -> Prepared:
    """A text Prepared from explicit sample indices per split; the vocabulary and the text
    length come from parts["train"] only."""
    quiet_tensorflow()
    notes = list(notes or [])
    train = texts[parts["train"]]
    adapter = _vectorizer(max_tokens=MAX_TOKENS + 2)  # + the pad and OOV tokens
    adapter.adapt(np.asarray(train, dtype=object), batch_size=1024)
    vocabulary = [str(t) for t in adapter.get_vocabulary()[2:]]
    if not vocabulary:
        raise DataError(f"{ds.path.name}: the training texts in column '{ds.text}' hold no "
                        "words; check --text names the column with the text")
    tokens = _vectorizer(vocabulary=vocabulary, ragged=True)
    counts = np.concatenate([tokens(np.asarray(train[i:i + 4096], dtype=object)).row_lengths()
                             .numpy() for i in range(0, len(train), 4096)])
    length = text_length(counts)
    cut = float(np.mean(counts > length))
    notes.append(f"text: vocabulary of {len(vocabulary)} tokens from the training split; "
                 f"{length} tokens kept per text"
                 + (f" ({cut:.0%} of training texts are longer and keep their first {length})"
                    if cut else ""))
    prep = Prepared(
        kind="text", task=ds.task, input_name="text", input_shape=(), input_dtype="string",
        n_outputs=len(ds.classes) if ds.task == "classify" else 1,
        x_mean=np.zeros(0, dtype="float32"), x_var=np.ones(0, dtype="float32"),
        masked=True, notes=notes, vocabulary=vocabulary, text_length=length,
        embed_dim=embed_dim(len(vocabulary) + 2),
        _x={k: texts[v] for k, v in parts.items()},
        _y={k: y[v] for k, v in parts.items()},
    )
    return _finish_samples(prep, ds, y, parts)


BASELINE_LIMIT = 20_000  # windows per split used for scoring and baselines (evenly spaced)



def split_arrays(prep, split: str):
    """At most BASELINE_LIMIT samples of a split, chosen before windows are materialised."""
    return prep.arrays(split, limit=BASELINE_LIMIT)
