"""The search space: cell x units x layers (+ dropout, learning rate, bidirectional) -> Keras model.

Every model takes raw input: a Normalization layer with the training split's statistics
comes first. Regression and forecast models train on standardised targets; `export_model`
appends a Rescaling layer so the exported model answers in original units. Only built-in
layers and keras.ops are used, so `model.keras` loads with `safe_mode=True` and without
cellpick installed.

Variable-length input (long sequences, text) carries an explicit mask into the first
recurrent layer, computed from the raw input before any scaling (`right_padded_mask`): a
step counts while any later step is not padding, and the first step always counts. So the
mask is right-padded by construction and never empty, the two conditions under which
Keras keeps the cuDNN kernels for a masked LSTM/GRU (an all-padding row would fail cuDNN's
mask check, a hole in the middle would leave the fused kernel), and a prediction does not
depend on how much padding follows the sequence. Text: TextVectorization (vocabulary from
the training split) -> token ids -> Embedding -> the cells.

LSTM and GRU keep their cuDNN-eligible defaults (tanh/sigmoid, no recurrent dropout,
GRU reset_after=True, unroll=False), so a GPU uses the fused kernels with no flag.
"""
from __future__ import annotations

from typing import Any

from .windows import Prepared

CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
DROPOUTS = [0.0, 0.2]
LEARNING_RATES = [1e-3, 3e-3]


def build_model(prep: Prepared, config: dict[str, Any]):
    """Compiled training model for one configuration (targets scaled for regression)."""
    import keras

    cell_cls = getattr(keras.layers, CELL_NAMES[config["cell"]])
    inputs = keras.Input(shape=prep.input_shape, name=prep.input_name, dtype=prep.input_dtype)
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
    model = keras.Model(inputs, outputs, name=f"cellpick_{config['cell']}")
    model.compile(
        optimizer=keras.optimizers.Adam(float(config.get("learning_rate", 1e-3))),
        loss=loss, metrics=metrics,
    )
    return model


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
    name = "forecast" if prep.task == "forecast" else "prediction"
    out = keras.layers.Rescaling(scale=prep.y_std, offset=prep.y_mean, name=name)(model.output)
    return keras.Model(model.input, out, name=model.name)


def hypermodel(prep: Prepared, cell: str, units: list[int], layers: list[int]):
    """A keras-tuner HyperModel with the cell fixed (one search per cell keeps budgets equal)."""
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
            return build_model(prep, config)

    return CellHyperModel(name=f"cellpick_{cell}")


def score_from_logs(prep: Prepared, logs: dict[str, float]) -> float | None:
    """The validation score in user units (MAE in original units, or accuracy) from Keras logs."""
    if prep.task == "classify":
        return logs.get("val_accuracy")
    mae = logs.get("val_mae")
    return None if mae is None else float(mae) * prep.y_std
