"""The search space: cell x units x layers (+ dropout, learning rate, bidirectional) -> Keras model.

`build_model(prep, config)` is the compiled training model: raw input in (a Normalization
layer with the training statistics first; text through TextVectorization and Embedding;
long fixed-length sequences read in learned patches, `patch_size`), regression and forecast
models trained on standardised targets, forecasts with the searched preprocessing in the
graph (models/scaling.py). Variable-length input carries a right-padded mask
(`right_padded_mask`) into the first recurrent layer. `export_model` gives the model users
get (original units, named output), `ensemble_model` an average of several. Only built-in
layers and keras.ops are used, so model.keras loads with safe_mode=True without cellpick;
LSTM and GRU keep their cuDNN-eligible defaults. `hypermodel` is the keras-tuner
HyperModel of one cell. docs/engine.md, "The cells' models", says why.
"""
from __future__ import annotations

from typing import Any

from cellpick.data.prepared import Prepared
from cellpick.models import scaling as scaling_rule
from cellpick.vocab import CELL_NAMES, SCALINGS  # noqa: F401 - SCALINGS: part of this module's API

DROPOUTS = [0.0, 0.2]
# The first value of each list is its default, the candidate list's first trial
# (candidates.py): 3e-3 leaves a small cell's initial plateau where 1e-3 may not, and the
# plateau halving (members._Policy) can lower it (docs/engine.md).
LEARNING_RATES = [3e-3, 1e-3]
# Forecast preprocessing when no data-level stage has chosen it (datalevel.py chooses it
# for every fit; a Prepared built by hand, or a test, gets these).
DEFAULT_PREPROCESSING = {"scaling": "relative", "log": False, "linear": True}
PATCH_FROM, PATCHES = 64, 25  # sequences from 64 steps are read as about 25 patches


def patch_size(kind: str, steps: int | None, masked: bool, requested: int | None) -> int:
    """Steps per patch: 1 (no patches) for series windows, text and variable-length input;
    otherwise `requested`, or by default about PATCHES patches from PATCH_FROM steps up."""
    if kind != "sequence" or masked or not steps:
        return 1
    if requested is not None:
        return max(1, min(int(requested), steps))
    return 1 if steps < PATCH_FROM else -(-steps // PATCHES)


def build_model(prep: Prepared, config: dict[str, Any]):
    """Compiled training model for one configuration (targets scaled for regression)."""
    import keras

    cell_cls = getattr(keras.layers, CELL_NAMES[config["cell"]])
    inputs = keras.Input(shape=prep.input_shape, name=prep.input_name, dtype=prep.input_dtype)
    if prep.task == "forecast":
        return _compile(keras.Model(inputs, _forecast(prep, config, inputs, cell_cls),
                                    name=f"cellpick_{config['cell']}"), config, "mse", ["mae"], prep)
    mask = None
    if prep.kind == "text":
        ids = keras.layers.TextVectorization(
            vocabulary=prep.vocabulary, output_sequence_length=prep.text_length,
            standardize="lower_and_strip_punctuation", split="whitespace", name="tokens",
        )(inputs)
        mask = right_padded_mask(keras.ops.not_equal(ids, 0))
        x = keras.layers.Embedding(len(prep.vocabulary) + 2, prep.embed_dim, name="embedding")(ids)
    else:
        x = inputs
        if prep.masked:
            mask = right_padded_mask(keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1))
        x = keras.layers.Normalization(mean=prep.x_mean, variance=prep.x_var, name="scale_inputs")(x)
        patch = int(config.get("patch", 1))
        if patch > 1:  # never with a mask: patch_size is 1 for variable-length input
            x = keras.layers.Conv1D(int(config["units"]), 2 * patch, strides=patch, padding="same",
                                    activation="relu", name="patches")(x)
    n_layers = int(config.get("layers", 1))
    for i in range(n_layers):
        rnn = cell_cls(int(config["units"]), return_sequences=i < n_layers - 1, name=f"{config['cell']}_{i + 1}")
        if config.get("bidirectional"):
            rnn = keras.layers.Bidirectional(rnn, name=f"bi_{config['cell']}_{i + 1}")
        # Later layers get the mask through Keras' own propagation (return_sequences).
        x = rnn(x, mask=mask) if i == 0 and mask is not None else rnn(x)
        if config.get("dropout", 0.0) > 0:
            x = keras.layers.Dropout(config["dropout"], name=f"dropout_{i + 1}")(x)
    if prep.task == "classify":
        outputs = keras.layers.Dense(prep.n_outputs, activation="softmax", name="probabilities")(x)
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        outputs = keras.layers.Dense(prep.n_outputs, name="scaled_output")(x)
        loss, metrics = "mse", ["mae"]
    return _compile(keras.Model(inputs, outputs, name=f"cellpick_{config['cell']}"),
                    config, loss, metrics, prep)


def _compile(model, config: dict[str, Any], loss: str, metrics: list[str], prep: Prepared | None = None):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(float(config.get("learning_rate", 1e-3))),
                  loss=loss, metrics=metrics, **(_fit_options(prep) if prep is not None else {}))
    return model


STEPS_PER_EXECUTION = 32  # at most this many steps per call into the graph


def _fit_options(prep: Prepared) -> dict[str, Any]:
    """How Keras' fit runs a step: a whole small epoch per call into the graph (tiny data
    spends its time in per-step Python overhead). No jit_compile: with TensorFlow's op
    determinism on, Keras declines it; members.py compiles its own step instead."""
    import math

    spe = max(1, math.ceil(max(1, prep.sizes.get("train", 1)) / prep.batch_size()))
    return {"steps_per_execution": int(min(spe, STEPS_PER_EXECUTION))}


def _recurrent(x, config: dict[str, Any], cell_cls):
    import keras

    n_layers = int(config.get("layers", 1))
    for i in range(n_layers):
        x = cell_cls(int(config["units"]), return_sequences=i < n_layers - 1,
                     name=f"{config['cell']}_{i + 1}")(x)
        if config.get("dropout", 0.0) > 0:
            x = keras.layers.Dropout(config["dropout"], name=f"dropout_{i + 1}")(x)
    return x


def _forecast(prep: Prepared, config: dict[str, Any], window, cell_cls):
    """Raw window -> forecast in original units, with the searched preprocessing in the graph
    (models/scaling.py's rule, in the model's own layers). `linear` adds a dense layer on the
    flattened inputs to the recurrent head (LSTNet's autoregressive path). The training
    output is the forecast re-standardised with the raw training mean and std, so every
    configuration's val_loss is on one scale."""
    import keras

    scaling, log = config.get("scaling", "global"), bool(config.get("log"))
    z, last = forecast_inputs(prep, window, scaling, log)
    out = keras.layers.Dense(prep.n_outputs, name="head")(_recurrent(z, config, cell_cls))
    if config.get("linear"):
        flat = keras.layers.Flatten(name="flat_window")(z)
        out = out + keras.layers.Dense(prep.n_outputs, name="linear_path")(flat)
    forecast = keras.layers.Identity(name="forecast")(
        forecast_outputs(prep, out, last, scaling, log))
    return keras.layers.Rescaling(1.0 / prep.y_std, -prep.y_mean / prep.y_std,
                                  name="standardised")(forecast)


def forecast_inputs(prep: Prepared, window, scaling: str, log: bool):
    """(z, last): the raw window as the model reads it (scaling.target_inputs on the target
    channel, standardised covariates beside it), and the target's last value in the working
    space. Shared with contestants.keras_model (ridge exports)."""
    from keras import ops

    z, last = scaling_rule.target_inputs(ops, window[:, :, :1], scaling_rule.stats(prep, log), scaling, log)
    if prep.input_shape[1] > 1:
        z = ops.concatenate([z, scaling_rule.covariates(window, prep.x_mean, prep.x_var)], axis=-1)
    return z, last


def forecast_outputs(prep: Prepared, out, last, scaling: str, log: bool):
    """The model's standardised output `out` back to a forecast in original units."""
    from keras import ops

    return scaling_rule.to_forecast(ops, out, last, scaling_rule.stats(prep, log), scaling, log)


def right_padded_mask(present):
    """(batch, steps) bool mask from a (batch, steps) bool `present`: a step counts when it or
    any later step is present, and the first step always counts."""
    from keras import ops

    later = ops.flip(ops.cumsum(ops.cast(ops.flip(present, axis=1), "int32"), axis=1), axis=1)
    mask = ops.greater(later, 0)
    return ops.concatenate([ops.ones_like(mask[:, :1]), mask[:, 1:]], axis=1)


def export_model(prep: Prepared, model):
    """The model users get: raw input in, named output in original units."""
    import keras

    if prep.task == "classify":
        return model
    if prep.task == "forecast":
        return keras.Model(model.input, model.get_layer("forecast").output, name=model.name)
    out = keras.layers.Rescaling(scale=prep.y_std, offset=prep.y_mean, name="prediction")(model.output)
    return keras.Model(model.input, out, name=model.name)


def ensemble_model(prep: Prepared, models: list):
    """One model averaging the outputs of `models` (export models of one configuration):
    each member is a nested model, so model.keras still holds built-in layers only."""
    import keras

    inputs = keras.Input(shape=prep.input_shape, name=prep.input_name, dtype=prep.input_dtype)
    outs = [keras.Model(m.input, m.output, name=f"member_{i + 1}")(inputs)
            for i, m in enumerate(models)]
    name = {"classify": "probabilities", "forecast": "forecast"}.get(prep.task, "prediction")
    return keras.Model(inputs, keras.layers.Average(name=name)(outs), name=models[0].name)


def preprocessing(prep: Prepared) -> dict[str, Any]:
    """The forecast preprocessing every cell and the ridge contestant use: the data-level
    stage's choice (prep.preprocessing), else DEFAULT_PREPROCESSING; never logs for a
    target that is not strictly positive."""
    chosen = {**DEFAULT_PREPROCESSING, **(prep.preprocessing or {})}
    chosen["log"] = bool(chosen["log"]) and "log" in prep.target_stats
    chosen["linear"] = bool(chosen["linear"])
    return chosen


def hypermodel(prep: Prepared, cell: str, units: list[int], layers: list[int]):
    """A keras-tuner HyperModel with the cell fixed (one search per cell keeps budgets equal).
    Searched: units, layers, dropout, learning rate (and bidirectional for sequences and
    text); the data-level choices (patch, forecast preprocessing) are hp.Fixed."""
    import keras_tuner as kt

    class CellHyperModel(kt.HyperModel):
        def build(self, hp):
            config = {
                "cell": hp.Fixed("cell", cell),
                "units": hp.Choice("units", units),
                "layers": hp.Choice("layers", layers),
                "dropout": hp.Choice("dropout", DROPOUTS),
                "learning_rate": hp.Choice("learning_rate", LEARNING_RATES),
            }
            if prep.kind in ("sequence", "text"):
                config["bidirectional"] = hp.Boolean("bidirectional")
            if prep.patch > 1:
                config["patch"] = hp.Fixed("patch", prep.patch)
            if prep.task == "forecast":  # data-level choices: fixed for every cell
                chosen = preprocessing(prep)
                config["scaling"] = hp.Fixed("scaling", chosen["scaling"])
                config["linear"] = hp.Fixed("linear", chosen["linear"])
                if "log" in prep.target_stats:
                    config["log"] = hp.Fixed("log", chosen["log"])
            return build_model(prep, config)

    return CellHyperModel(name=f"cellpick_{cell}")


def user_units(prep: Prepared, logs: dict[str, Any]) -> dict[str, Any]:
    """Keras logs (one epoch's floats, or a history's lists) with MAE in original units.

    Regression and forecast models train on standardised targets, so Keras reports MAE in
    standard deviations; scaled by y_std it is the MAE the leaderboard reports. Losses stay
    as trained; accuracy needs nothing.
    """
    if prep.task == "classify":
        return dict(logs)

    def scale(v):
        if v is None:
            return None
        return [None if x is None else float(x) * prep.y_std for x in v] if isinstance(v, list) \
            else float(v) * prep.y_std

    return {k: scale(v) if k in ("mae", "val_mae") else v for k, v in logs.items()}
