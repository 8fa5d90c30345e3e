"""Every layout end to end (fit -> export -> predict from the raw CSV) on small data with a
known answer, variable-length masking, and the real JapaneseVowels set.

Fits are shared through module-scoped fixtures; budgets are tiny (one cell, one trial, one
seed, units 8), so the known answers are ones a briefly trained model gets right.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_LEVEL, store_uri

import cellpick
from cellpick.errors import DataError

LEVELS = {"a": 0.0, "b": 100.0, "c": 200.0}
POSITIVE, NEGATIVE = ("great", "wonderful", "superb", "lovely"), ("awful", "boring", "dreadful", "poor")
FILLER = "the a movie film plot actor scene story was is and it this that very quite".split()


def _fit(tmp_path_factory, name: str, frame: pd.DataFrame, **options):
    root = tmp_path_factory.mktemp(name)
    path = root / f"{name}.csv"
    frame.to_csv(path, index=False)
    budget = {"cells": "gru", "units": "8", "layers": "1", "max_trials": 1, "folds": 2,
              "seeds": 1, "epochs": 8, **options}
    result = cellpick.fit(path, tracking_uri=store_uri(root),
                          out=str(root / "model"), **budget)
    return root, path, result


def model_vocabulary(export: Path) -> list[str]:
    import keras

    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    return model.get_layer("tokens").get_vocabulary()


def _meta(result) -> dict:
    return json.loads((Path(result.export_path) / "cellpick.json").read_text())


# ----------------------------------------------------------------------------- data with a known answer

def panel_frame(n: int = 60) -> pd.DataFrame:
    """Three daily series at levels 0, 100, 200 with a weekly wave and a covariate."""
    dates = pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    rows = []
    for s, level in LEVELS.items():
        t = np.arange(n)
        rows.append(pd.DataFrame({"series_id": s, "date": dates,
                                  "value": level + 5 * np.sin(2 * np.pi * t / 7),
                                  "temp": 20 + np.cos(2 * np.pi * t / 7)}))
    return pd.concat(rows, ignore_index=True)


def wide_regression_frame(n: int = 120, steps: int = 10, seed: int = 0) -> pd.DataFrame:
    """y is 10 x the mean of the sequence."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1)) + 0.3 * rng.normal(size=(n, steps))
    frame = pd.DataFrame(x, columns=[f"t{j}" for j in range(steps)])
    frame.insert(0, "y", 10 * x.mean(axis=1))
    return frame


def long_regression_frame(n: int = 120, seed: int = 1) -> pd.DataFrame:
    """Variable lengths (4..12 steps, 2 features); the target is the sequence's length."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        k = int(rng.integers(4, 13))
        for step in range(k):
            rows.append({"sample_id": s, "step": step, "x1": 1.0 + rng.normal(scale=0.1),
                         "x2": rng.normal(), "target": float(k)})
    return pd.DataFrame(rows)


def reviews_frame(n: int = 120, seed: int = 2, regress: bool = False) -> pd.DataFrame:
    """Classify: one telling word decides the label. Regress: the score is the number of
    positive words minus the number of negative ones."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words = list(rng.choice(FILLER, size=int(rng.integers(4, 12))))
        if regress:
            pos, neg = int(rng.integers(0, 4)), int(rng.integers(0, 4))
            words += list(rng.choice(POSITIVE, size=pos)) + list(rng.choice(NEGATIVE, size=neg))
            rng.shuffle(words)
            labels.append(float(pos - neg))
        else:
            good = i % 2 == 0
            words.insert(int(rng.integers(0, len(words) + 1)), rng.choice(POSITIVE if good else NEGATIVE))
            labels.append("pos" if good else "neg")
        texts.append(" ".join(words))
    return pd.DataFrame({"review": texts, "rating" if regress else "sentiment": labels})


# ----------------------------------------------------------------------------- fits (shared)

@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    return _fit(tmp_path_factory, "panel", panel_frame(), target="value", horizon=3,
                lookback=14, epochs=15, **DATA_LEVEL)


@pytest.fixture(scope="module")
def wide_regression(tmp_path_factory):
    return _fit(tmp_path_factory, "wide_regression", wide_regression_frame(), target="y",
                epochs=15)


@pytest.fixture(scope="module")
def long_regression(tmp_path_factory):
    # The default step-counted schedule: on a fold's 48 sequences an explicit 15 epochs (90
    # steps, patience 60) stops on the initial plateau before the mask is learned.
    return _fit(tmp_path_factory, "long_regression", long_regression_frame(), task="regress",
                epochs=None)


@pytest.fixture(scope="module")
def text_classify(tmp_path_factory):
    return _fit(tmp_path_factory, "reviews", reviews_frame(), epochs=15)


@pytest.fixture(scope="module")
def text_regress(tmp_path_factory):
    return _fit(tmp_path_factory, "ratings", reviews_frame(regress=True), target="rating",
                task="regress", epochs=15)


@pytest.fixture(scope="module")
def vowels(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("vowels")
    result = cellpick.fit(data_dir / "JapaneseVowels_train.csv", tracking_uri=store_uri(root, "m.db"),
                          out=str(root / "model"), cells="gru", units="16", layers="1",
                          max_trials=1, folds=2, seeds=1, epochs=10)
    return root, result


# ----------------------------------------------------------------------------- panel + covariates

def test_panel_with_covariate_forecasts_every_series(panel, tmp_path):
    root, path, result = panel
    assert (result.layout, result.task) == ("series", "forecast")
    meta = _meta(result)
    assert meta["columns"]["id"] == "series_id" and meta["columns"]["features"] == ["value", "temp"]
    assert meta["input"]["shape"] == [14, 2]
    table = cellpick.predict(result.export_path, path)
    assert list(table.columns) == ["series_id", "step", "date", "prediction"]
    assert table["series_id"].tolist() == [s for s in LEVELS for _ in range(3)]
    assert table["step"].tolist() == [1, 2, 3] * 3
    assert set(table["date"]) == {"2021-03-02", "2021-03-03", "2021-03-04"}  # after day 60
    # Known answer: each series is forecast near its own level, in original units.
    means = table.groupby("series_id")["prediction"].mean()
    for s, level in LEVELS.items():
        assert abs(means[s] - level) < 20, means.to_dict()
    # Covariates are inputs: a file without one is refused with the columns it needs.
    panel_frame().drop(columns="temp").to_csv(tmp_path / "no_temp.csv", index=False)
    with pytest.raises(DataError, match=r"\['temp'\] used in training are missing"):
        cellpick.predict(result.export_path, tmp_path / "no_temp.csv")


def test_panel_windows_never_cross_series_and_split_per_series(tmp_path):
    from cellpick.data.detection import load
    from cellpick.data.prepared import prepare

    frame = panel_frame()
    frame["value"] = frame["series_id"].map({"a": 0, "b": 1000, "c": 2000}) + np.tile(np.arange(60), 3)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    prep = prepare(load(tmp_path / "panel.csv", target="value"), lookback=5, horizon=2, test_size=0.2)
    for split in ("train", "val", "test"):
        x, y = prep.arrays(split)
        window = np.concatenate([x[:, :, 0], y], axis=1)
        # Within one series the values rise by 1 per step: a window that crossed a series
        # boundary would jump by about 1000.
        assert np.all(np.diff(window, axis=1) == 1), split
        levels = set((window[:, 0] // 1000).astype(int))
        assert levels == {0, 1, 2}, (split, levels)  # every series has windows in every split
    # Per series, validation targets follow the training targets in time, test follows validation.
    _, y_train = prep.arrays("train")
    _, y_val = prep.arrays("val")
    _, y_test = prep.arrays("test")
    for level in (0, 1000, 2000):
        tr, va, te = (y[(y[:, 0] // 1000) * 1000 == level] for y in (y_train, y_val, y_test))
        assert tr.max() < va.min() and va.max() < te.min()


# ----------------------------------------------------------------------------- sequence regression

def test_wide_sequence_regression(wide_regression, tmp_path):
    _, _, result = wide_regression
    assert (result.layout, result.task, result.metric) == ("wide", "regress", "mae")
    new = wide_regression_frame(n=40, seed=7)
    new.drop(columns="y").to_csv(tmp_path / "new.csv", index=False)
    table = cellpick.predict(result.export_path, tmp_path / "new.csv")
    assert list(table.columns) == ["prediction"] and len(table) == 40
    # Known answer: y is 10 x the sequence mean (sd about 10); predictions track it.
    assert np.corrcoef(table["prediction"], new["y"])[0, 1] > 0.8
    assert np.mean(np.abs(table["prediction"] - new["y"])) < 5


def test_long_variable_length_regression(long_regression, tmp_path):
    _, _, result = long_regression
    assert (result.layout, result.task) == ("long", "regress")
    meta = _meta(result)
    assert meta["input"]["shape"] == [None, 2] and meta["masked"]
    new = long_regression_frame(n=30, seed=9)
    truth = new.groupby("sample_id", sort=False)["target"].first().to_numpy()
    # Shuffled rows and no target column: predict sorts steps and keeps sample order.
    new.drop(columns="target").sample(frac=1, random_state=0).to_csv(tmp_path / "new.csv", index=False)
    table = cellpick.predict(result.export_path, tmp_path / "new.csv")
    order = list(dict.fromkeys(pd.read_csv(tmp_path / "new.csv")["sample_id"]))
    assert table["sample_id"].tolist() == order
    pred = table.set_index("sample_id").loc[np.arange(30), "prediction"].to_numpy()
    # Known answer: the target is the length, which only a model that sees the mask knows.
    assert np.corrcoef(pred, truth)[0, 1] > 0.8


# ----------------------------------------------------------------------------- text

def test_text_classification_takes_raw_strings(text_classify, tmp_path):
    import keras
    import tensorflow as tf

    _, _, result = text_classify
    assert (result.layout, result.task) == ("text", "classify")
    export = Path(result.export_path)
    meta = _meta(result)
    assert meta["input"] == {"name": "text", "shape": [], "dtype": "string",
                             "vocabulary_size": len(model_vocabulary(export)) - 2,
                             "tokens_per_text": 16, "embedding_width": 16}
    fn = tf.saved_model.load(str(export / "saved_model")).signatures["serving_default"]
    spec = fn.structured_input_signature[1]["text"]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    texts = ["what a wonderful film", "the plot was awful", "", "!!!", "a lovely lovely story"]
    served = fn(text=tf.constant(texts))
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    probs = model.predict(np.array(texts, dtype=object), verbose=0)
    np.testing.assert_allclose(served["probabilities"].numpy(), probs, atol=1e-5)
    assert [v.decode() for v in served["label"].numpy()][:2] == ["pos", "neg"]
    # The vocabulary lives in the model: it was learned on the training split only.
    layer = model.get_layer("tokens")
    assert "wonderful" in layer.get_vocabulary() and len(layer.get_vocabulary()) < 40
    pd.DataFrame({"review": texts}).to_csv(tmp_path / "new.csv", index=False)
    table = cellpick.predict(export, tmp_path / "new.csv")
    assert list(table.columns) == ["prediction", "probability_neg", "probability_pos"]
    assert table["prediction"].tolist()[:2] == ["pos", "neg"] and len(table) == 5


def test_text_regression(text_regress, tmp_path):
    _, _, result = text_regress
    assert (result.layout, result.task) == ("text", "regress")
    new = reviews_frame(n=40, seed=11, regress=True)
    new[["review"]].to_csv(tmp_path / "new.csv", index=False)
    table = cellpick.predict(result.export_path, tmp_path / "new.csv")
    assert len(table) == 40
    assert np.corrcoef(table["prediction"], new["rating"])[0, 1] > 0.8


def test_text_rules_for_length_and_width():
    from cellpick.data.prepared import embed_dim, text_length

    assert text_length(np.array([3, 4, 5])) == 8  # never under 8 tokens
    assert text_length(np.arange(1, 101)) == 96  # 95th percentile, up to a multiple of 8
    assert text_length(np.full(10, 5000)) == 400  # long documents keep their first 400
    assert (embed_dim(30), embed_dim(1000), embed_dim(20_002)) == (16, 32, 64)


# ----------------------------------------------------------------------------- masking

def test_long_predictions_do_not_depend_on_padding(data_dir):
    from cellpick.data.detection import load
    from cellpick.data.prepared import padded_lengths, prepare
    from cellpick.models.cells import build_model

    prep = prepare(load(data_dir / "JapaneseVowels_train.csv"), lookback=None, horizon=1,
                   test_size=0.2)
    assert prep.masked and prep.input_shape == (None, 12)
    x, _ = prep.arrays("val")
    x = x[:6]
    lengths = padded_lengths(x)
    assert lengths.min() < x.shape[1]  # the set really has different lengths
    for config in ({"cell": "lstm", "units": 8, "layers": 1},
                   {"cell": "gru", "units": 8, "layers": 2, "bidirectional": True, "dropout": 0.2},
                   {"cell": "rnn", "units": 8, "layers": 2}):
        model = build_model(prep, config)
        base = model(x, training=False).numpy()
        for extra in (3, 40):
            padded = np.concatenate([x, np.zeros((len(x), extra, 12), "float32")], axis=1)
            np.testing.assert_allclose(model(padded, training=False).numpy(), base, atol=1e-5)
        shortest = int(np.argmin(lengths))
        alone = model(x[shortest:shortest + 1, : lengths[shortest]], training=False).numpy()
        np.testing.assert_allclose(alone, base[shortest:shortest + 1], atol=1e-5)


def test_mask_is_right_padded_never_empty_and_keeps_inner_zeros():
    from keras import ops

    from cellpick.models.cells import right_padded_mask

    present = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    mask = ops.convert_to_numpy(right_padded_mask(ops.convert_to_tensor(present)))
    assert mask.tolist() == [[True, True, True, False, False],  # a zero step inside is data
                             [True, False, False, False, False],  # all padding: one step (cuDNN)
                             [True] * 5]


def test_masked_models_stay_cudnn_eligible(data_dir):
    import keras

    from cellpick.data.detection import load
    from cellpick.data.prepared import prepare
    from cellpick.models.cells import build_model

    prep = prepare(load(data_dir / "JapaneseVowels_train.csv"), lookback=None, horizon=1,
                   test_size=0.2)
    for cell, cls in (("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)):
        model = build_model(prep, {"cell": cell, "units": 8, "layers": 2, "bidirectional": True})
        wrapped = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
        assert len(wrapped) == 2, [layer.name for layer in model.layers]  # one per layer asked
        assert not any(isinstance(layer, keras.layers.RNN) for layer in model.layers)
        rnns = [r for w in wrapped for r in (w.forward_layer, w.backward_layer)]
        for rnn in rnns:
            assert type(rnn) is cls, (cell, type(rnn))
            assert rnn.use_cudnn == "auto" and not rnn.unroll
            assert rnn.cell.activation.__name__ == "tanh"
            assert rnn.cell.recurrent_activation.__name__ == "sigmoid"
            assert rnn.cell.recurrent_dropout == 0 and rnn.cell.use_bias
            assert getattr(rnn.cell, "reset_after", True)


def test_split_arrays_are_capped_before_windows_are_built():
    from cellpick.data.prepared import Prepared

    values = np.arange(1_000_000, dtype="float32")[:, None]
    prep = Prepared(kind="window", task="forecast", input_name="window", input_shape=(256, 1),
                    n_outputs=1, x_mean=np.zeros(1), x_var=np.ones(1), lookback=256, horizon=1,
                    _values=values, _target=values[:, 0],
                    _starts={"train": np.arange(1_000_000 - 257)})
    prep.sizes = {"train": 1_000_000 - 257}
    x, y = prep.arrays("train", limit=100)  # all windows would be 1 GB
    assert x.shape == (100, 256, 1) and y.shape == (100, 1)
    assert x[-1, 0, 0] == 1_000_000 - 257 - 1 and y[0, 0] == 256


# ----------------------------------------------------------------------------- real data

def test_japanese_vowels_end_to_end(vowels, data_dir):
    root, result = vowels
    assert (result.layout, result.task) == ("long", "classify")
    test = pd.read_csv(data_dir / "JapaneseVowels_test.csv")
    table = cellpick.predict(result.export_path, data_dir / "JapaneseVowels_test.csv")
    truth = test.groupby("sample_id", sort=False)["label"].first()
    assert table["sample_id"].tolist() == truth.index.tolist()  # test has 29-step samples; train 26
    assert list(table.columns) == ["sample_id", "prediction"] + [f"probability_{c}" for c in range(1, 10)]
    accuracy = float(np.mean(table["prediction"].to_numpy() == truth.to_numpy()))
    assert accuracy > 0.7, accuracy  # 9 classes; the majority class is 24% of the test set
