"""Folds never leak: time order for series, class balance and disjoint scoring blocks for
stratified folds, the inner validation part never inside the scoring block, and the same test
block as the search split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellpick.data.detection import load
from cellpick.data.folds import auto_test_size, default_folds, origin_plan, resample
from cellpick.data.prepared import prepare, sequences
from cellpick.errors import ConfigError, DataError
from cellpick.verdict import Design


def gunpoint_36(data_dir: Path, tmp_path: Path) -> Path:
    """36 stratified samples of GunPoint_train.csv (fixed seed): the small-data case."""
    frame = pd.read_csv(data_dir / "GunPoint_train.csv")
    picked = frame.groupby("label").sample(18, random_state=0)
    path = tmp_path / "gunpoint36.csv"
    picked.to_csv(path, index=False)
    return path


def rows_of(prep, split):
    """Identify samples by their (exact) raw values."""
    x, _ = prep.arrays(split)
    return {x[i].tobytes() for i in range(len(x))}


def test_default_folds_rule():
    assert default_folds(36) == (5, 3)
    assert default_folds(2_400) == (5, 2)
    assert default_folds(50_000) == (3, 2)


def test_stratified_folds_partition_each_repetition_and_keep_class_balance(data_dir, tmp_path):
    ds = load(gunpoint_36(data_dir, tmp_path), target="label")
    assert auto_test_size(ds) == 0.0  # 36 samples: no internal test block
    res = resample(ds, lookback=None, horizon=1, folds=None, seeds=None, seed=42, test_size="auto")
    assert (res.kind, res.folds, res.seeds, len(res.units)) == ("repeated-stratified-kfold", 5, 3, 15)
    assert res.n_validated == 36 and res.test_fraction == pytest.approx(0.2, abs=0.01)
    x_all, _ = sequences(ds)
    everyone = {x_all[i].tobytes() for i in range(len(x_all))}
    partitions = []
    for r in range(3):
        units = [u for u in res.units if u.repeat == r]
        assert [u.fold for u in units] == list(range(5))
        assert len({u.seed for u in units}) == 1
        scored = [rows_of(u.prep, "score") for u in units]
        # Within one repetition no sample is in two folds' scoring blocks, and all are scored.
        assert sum(len(s) for s in scored) == 36 and set().union(*scored) == everyone
        partitions.append(tuple(sorted(map(len, scored))))
        for u in units:
            score, val, train = (rows_of(u.prep, k) for k in ("score", "val", "train"))
            assert not score & val and not score & train and not val & train
            assert rows_of(u.prep, "trainval") == val | train
            _, y = u.prep.arrays("score")
            assert sorted(np.bincount(y, minlength=2)) in ([3, 4], [4, 3], [3, 3], [4, 4])
            _, y_val = u.prep.arrays("val")
            assert len(set(y_val.tolist())) == 2  # the inner validation part is stratified too
            # Scaling statistics from the inner training part only.
            x_tr, _ = u.prep.arrays("train")
            assert np.allclose(u.prep.x_mean, x_tr.reshape(-1, x_tr.shape[-1]).mean(axis=0), atol=1e-5)
    # Each repetition its own partition, its own seed.
    assert len({u.seed for u in res.units}) == 3
    first = [rows_of(u.prep, "score") for u in res.units if u.repeat == 0]
    second = [rows_of(u.prep, "score") for u in res.units if u.repeat == 1]
    assert first != second
    # The fold x seed matrix verdict.decide takes.
    m = res.matrix([u.fold * 10 + u.repeat for u in res.units])
    assert np.shape(m) == (5, 3) and m[4][2] == 42
    assert Design.of(res, 3).rho == pytest.approx(0.2)


def test_search_split_and_folds_share_the_test_block(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"t{i}" for i in range(6)])
    frame["y"] = frame.sum(axis=1) + 0.1 * rng.normal(size=n)
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    ds = load(path, target="y", task="regress")
    assert auto_test_size(ds) == 0.2  # 600 samples: a test block of 120
    prep = prepare(ds, lookback=None, horizon=1, test_size=0.2, seed=3)
    res = resample(ds, lookback=None, horizon=1, folds=3, seeds=2, seed=3, test_size="auto")
    assert res.kind == "repeated-kfold" and len(res.units) == 6 and res.n_validated == 480
    test = rows_of(prep, "test")
    assert len(test) == 120
    for u in res.units:
        assert not test & rows_of(u.prep, "trainval") and not test & rows_of(u.prep, "score")
        y_tr = u.prep.arrays("train")[1]
        assert u.prep.y_mean == pytest.approx(float(y_tr.mean()), rel=1e-5)
    scored = set().union(*(rows_of(u.prep, "score") for u in res.units if u.repeat == 0))
    assert scored == rows_of(prep, "trainval")


def airline(data_dir):
    return load(data_dir / "airline_train.csv", target="value")


def test_rolling_origin_keeps_time_order(data_dir):
    ds = airline(data_dir)
    assert auto_test_size(ds, lookback=24, horizon=12) == 0.0  # 132 months: no test block
    res = resample(ds, lookback=24, horizon=12, folds=None, seeds=None, seed=0, test_size="auto")
    assert (res.kind, res.folds, res.seeds, len(res.units)) == ("rolling-origin", 5, 3, 15)
    per_origin = {}
    for u in res.units:
        p = u.prep
        per_origin.setdefault(u.fold, p)
        assert p is per_origin[u.fold]  # the seeds repeat on the same origin
        last = {k: p._starts[k].max() + 24 + 12 for k in ("train", "val")}
        first = {k: p._starts[k].min() + 24 for k in ("val", "score")}
        # Targets: train before inner val before the scoring block; never overlapping.
        assert last["train"] <= first["val"] and last["val"] <= first["score"]
        tr = p._values[:last["train"], 0]
        assert p.y_mean == pytest.approx(float(tr.mean()), rel=1e-5)  # stats: inner train only
    # Scoring blocks of successive origins are disjoint and move forward in time; the last
    # ends at the series' end.
    blocks = [(per_origin[k]._starts["score"].min() + 24, per_origin[k]._starts["score"].max() + 36)
              for k in range(5)]
    assert all(a[1] <= b[0] for a, b in zip(blocks, blocks[1:]))
    assert blocks[-1][1] == 132
    assert res.n_validated == sum(per_origin[k].sizes["score"] for k in range(5))
    assert 0 < res.test_fraction < 0.2


def test_panel_origins_sit_at_the_same_positions_from_each_series_end(tmp_path):
    t = np.arange(80)
    a = pd.DataFrame({"id": "a", "t": t, "y": np.sin(t / 3)})
    b = pd.DataFrame({"id": "b", "t": np.arange(60), "y": np.cos(np.arange(60) / 3)})
    path = tmp_path / "panel.csv"
    pd.concat([a, b]).to_csv(path, index=False)
    ds = load(path, target="y", id="id", time="t", task="forecast")
    res = resample(ds, lookback=6, horizon=2, folds=3, seeds=1, seed=0, test_size=0.0)
    for u in res.units:
        starts = u.prep._starts["score"]
        in_a = starts[starts < 80] + 6
        in_b = starts[starts >= 80] - 80 + 6
        assert 80 - in_a.min() == 60 - in_b.min()  # the same distance from each end


def test_origin_plan_lowers_folds_then_refuses(data_dir):
    assert origin_plan(132, 24, 12, 5) == (5, 13)
    assert origin_plan(100, 24, 12, 5) == (4, 12)
    assert origin_plan(40, 24, 12, 5) is None
    ds = airline(data_dir)
    with pytest.raises(DataError, match="too few for rolling-origin folds"):
        resample(ds, lookback=90, horizon=12, folds=5, seeds=1, seed=0, test_size=0.0)
    with pytest.raises(ConfigError, match="The 'test_size' option must be 'auto' or a fraction in"):
        resample(ds, lookback=24, horizon=12, folds=2, seeds=1, seed=0, test_size="half")
    with pytest.raises(ConfigError, match="The 'folds' option must be an integer >= 2"):
        resample(ds, lookback=24, horizon=12, folds=1, seeds=1, seed=0, test_size=0.0)


def test_text_folds_learn_their_vocabulary_from_the_inner_training_part(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(words, 6)) + (" good" if i % 2 else " bad") for i in range(40)]
    path = tmp_path / "text.csv"
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(40)]}).to_csv(path, index=False)
    ds = load(path, target="label", text="text")
    res = resample(ds, lookback=None, horizon=1, folds=2, seeds=1, seed=0, test_size="auto")
    assert res.kind == "repeated-stratified-kfold" and len(res.units) == 2
    for u in res.units:
        train_words = {w for t in u.prep.arrays("train")[0] for w in t.split()}
        assert set(u.prep.vocabulary) <= train_words
        assert not set(u.prep.arrays("score")[0]) & set(u.prep.arrays("trainval")[0])
