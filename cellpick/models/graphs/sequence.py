"""The labelled-sequence and text contestants as Keras graphs with the cells' raw-input
contract, built from the fitted library objects in `baseline.model` (never retrained).

`keras_model(prep, baseline)` takes `prep.input_name` as a cell does and answers
`probabilities` (n, C) or `prediction` (n, 1) in user units: minirocket (aeon's kernels,
dilations, channel combinations and stored biases, input fitted to the training length,
then the fitted scaler and linear head: ridge, or SGD at size), 1nn (the training samples inside the graph; NotExportable
above NN_EXPORT_VALUES), tfidf_* (sklearn's tokens, vocabulary, idf, norm and head, on raw
strings), majority/mean. `graph_inputs` is a split's raw input; `compare` and `margins`
measure an export against the library. The custom layers are registered (package
"cellpick"): call `custom_objects()` before loading model.keras with safe_mode=True.
docs/graphs-sequence.md says why and states the tolerances.
"""
from __future__ import annotations

import functools

import numpy as np

from cellpick.models.graphs import NotExportable

# 1-NN: the stored training set (samples x values per sample) above which it is not exported:
# 4 bytes per value in the SavedModel and again in model.keras, and a batch of n rows
# computes n x samples distances over every value.
NN_EXPORT_VALUES = 10_000_000
# 1-NN's margins (compare on differing labels): distances computed this many bytes at a time.
NN_MARGIN_BYTES = 64 << 20
# MiniRocket: rows of a batch are computed in chunks whose convolution output (rows x 84
# kernels x steps float32, per dilation) is at most this; peak memory is a few times it.
MINIROCKET_CHUNK_BYTES = 64 << 20


def graph_inputs(prep, split: str, limit: int | None = None) -> np.ndarray:
    """The raw model input for `split`'s rows (text: an array of str)."""
    x, _ = prep.arrays(split, limit)
    if prep.input_dtype == "string":
        return np.asarray([str(s) for s in x], dtype=object)
    return np.asarray(x, dtype="float32")


NEAR_TIE = 1e-5  # classify: a label may differ only where the library's margin is below this
TOLERANCE = 1e-4  # regress: |difference| / the target's training std; classify: probabilities


def margins(prep, baseline, split: str, limit: int | None = None) -> np.ndarray | None:
    """The library's decision margin per row of `split` (None for majority/mean and for
    regression): ridge and logistic heads, best minus second decision score (binary: |score|);
    1-NN, (distance to the nearest sample of another class - the nearest distance) relative
    to the former."""
    if prep.task != "classify" or baseline.name in ("majority", "mean"):
        return None
    x, _ = prep.arrays(split, limit)
    if baseline.name == "1nn":
        return _nn_margins(baseline.model, np.asarray(x, dtype="float64").reshape(len(x), -1))
    if baseline.name == "minirocket":
        steps = max(9, training_length(prep))
        panel = np.asarray(x, "float32").transpose(0, 2, 1)[:, :, :steps]
        panel = np.pad(panel, ((0, 0), (0, 0), (0, steps - panel.shape[2])))
        score = baseline.model["head"].decision_function(
            baseline.model["rocket"].transform(np.ascontiguousarray(panel)))
    else:
        score = baseline.model.decision_function([str(s) for s in x])
    score = np.asarray(score, dtype="float64")
    if score.ndim == 1:
        return np.abs(score)
    top = np.sort(score, axis=1)
    return top[:, -1] - top[:, -2]


def _nn_margins(m, flat: np.ndarray) -> np.ndarray:
    """1-NN's margins in row chunks of at most NN_MARGIN_BYTES of distances (all distances
    at once are rows x training samples x 16 bytes: gigabytes at 10k x 20k)."""
    from sklearn.metrics import pairwise_distances

    stored, lab = np.asarray(m._fit_X, dtype="float64"), np.asarray(m._y)
    out = np.empty(len(flat))
    rows = max(1, NN_MARGIN_BYTES // (8 * max(1, len(stored))))
    for start in range(0, len(flat), rows):
        _, idx = m.kneighbors(flat[start:start + rows], n_neighbors=1)
        dist = pairwise_distances(flat[start:start + rows], stored)
        near = dist[np.arange(len(dist)), idx[:, 0]]
        other = np.where(lab[None, :] != lab[idx[:, :1]], dist, np.inf).min(axis=1)
        out[start:start + rows] = (other - near) / np.maximum(other, 1e-300)
    return out


def compare(prep, baseline, got: np.ndarray, split: str, limit: int | None = None) -> dict:
    """The export's answers `got` on `split` against the library's own (baseline.predict):
    {max_difference, tolerance, checked, near_ties, reason} (reason empty when they match).
    Regress: max |difference| / prep.y_std within TOLERANCE. Classify: labels identical
    except near-ties (library margin below NEAR_TIE, counted); probabilities of the other
    rows within TOLERANCE."""
    want = np.asarray(baseline.predict(split, limit), dtype="float64")
    got = np.asarray(got, dtype="float64")
    out = {"max_difference": 0.0, "tolerance": TOLERANCE, "checked": int(len(want)),
           "near_ties": 0, "reason": ""}
    if prep.task != "classify":
        diff = np.abs(got.reshape(len(want), -1)[:, 0] - want.reshape(-1))
        out["max_difference"] = float(diff.max() / prep.y_std) if len(diff) else 0.0
        if not out["max_difference"] <= TOLERANCE:
            out["reason"] = (f"predictions differ by up to {out['max_difference']:.2e} of the "
                             f"target's std (tolerance {TOLERANCE:g})")
        return out
    differ = np.argmax(got, axis=1) != np.argmax(want, axis=1)
    same = ~differ
    if same.any():
        out["max_difference"] = float(np.abs(got[same] - want[same]).max())
    if differ.any():
        m = margins(prep, baseline, split, limit)
        ties = differ & (m < NEAR_TIE) if m is not None else np.zeros_like(differ)
        out["near_ties"] = int(ties.sum())
        if (differ & ~ties).any():
            out["reason"] = (f"{int((differ & ~ties).sum())} of {len(want)} labels differ at a "
                             f"decision margin of at least {NEAR_TIE:g}")
    if not out["reason"] and not out["max_difference"] <= TOLERANCE:
        out["reason"] = (f"probabilities differ by up to {out['max_difference']:.2e} "
                         f"(tolerance {TOLERANCE:g})")
    return out


def keras_model(prep, baseline):
    """The contestant's Keras graph; NotExportable(reason) when it cannot be matched."""
    import keras

    custom_objects()
    name = baseline.name
    inputs = keras.Input(shape=prep.input_shape, name=prep.input_name, dtype=prep.input_dtype)
    if name == "minirocket":
        out = _minirocket(prep, baseline, inputs)
    elif name == "1nn":
        out = _one_nn(prep, baseline, inputs)
    elif name in ("tfidf_logreg", "tfidf_ridge"):
        out = _tfidf(prep, baseline, inputs)
    elif name in ("majority", "mean"):
        value = np.atleast_1d(np.asarray(baseline.model, dtype="float64"))
        out = _layers()["Constant"](value.tolist(), name="constant")(inputs)
    else:
        raise NotExportable(f"the '{name}' contestant is not a sequence contestant")
    head = "probabilities" if prep.task == "classify" else "prediction"
    return keras.Model(inputs, keras.layers.Identity(name=head)(out), name=f"cellpick_{name}")


def training_length(prep) -> int:
    """Steps of the panel MiniRocket and 1-NN were fitted on (all splits share the padded
    length; MiniRocket pads to at least 9)."""
    return int(prep._x["train"].shape[1])


def custom_objects() -> dict:
    """The custom layers by name (registered with Keras as a side effect)."""
    return dict(_layers())


# --- builders ---------------------------------------------------------------------------------


def _minirocket(prep, baseline, inputs):
    rocket, head = baseline.model["rocket"], baseline.model["head"]
    n_comb, channel_idx, dilations, per_dilation, biases = rocket.parameters
    steps = max(9, training_length(prep))
    fitted = int(getattr(rocket, "metadata_", {}).get("n_timepoints", steps))
    if fitted != steps:
        raise NotExportable(f"MiniRocket was fitted on {fitted} steps, the data has {steps}")
    channels = int(prep.input_shape[1])
    # Channel combination of every (dilation, kernel), in aeon's order, as a 0/1 mask.
    masks = np.zeros((len(dilations), 84, channels), dtype="float32")
    start = 0
    for comb, count in enumerate(np.asarray(n_comb).tolist()):
        masks[comb // 84, comb % 84, np.asarray(channel_idx[start:start + count])] = 1.0
        start += count
    if channels == 1:  # aeon's univariate path ignores the combinations
        masks[:] = 1.0
    features = _layers()["MiniRocketFeatures"](
        steps=steps, channels=channels, dilations=np.asarray(dilations).tolist(),
        features_per_dilation=np.asarray(per_dilation).tolist(), masks=masks.tolist(),
        name="minirocket_features")
    z = features(inputs)
    features.set_weights([np.asarray(biases, dtype="float32")])
    return _ridge_head(prep, head, z)


def _ridge_head(prep, head, z):
    """The fitted StandardScaler and linear model (ridge, or at size SGD: a regressor on the
    standardised target has that scaling folded into its weights)."""
    scaler, ridge = head[0], head[-1]
    coef = np.atleast_2d(np.asarray(getattr(ridge, "regressor_", ridge).coef_, dtype="float64"))
    intercept = np.atleast_1d(np.asarray(getattr(ridge, "regressor_", ridge).intercept_,
                                         dtype="float64"))
    target = getattr(ridge, "transformer_", None)  # y = score * scale + mean
    if target is not None:
        coef = coef * float(target.scale_[0])
        intercept = intercept * float(target.scale_[0]) + float(target.mean_[0])
    classes = (np.asarray(ridge.classes_, dtype="int64").tolist()
               if prep.task == "classify" else [])
    layer = _layers()["RidgeHead"](features=coef.shape[1], outputs=coef.shape[0],
                                   classes=classes, width=int(prep.n_outputs), name="ridge_head")
    out = layer(z)
    layer.set_weights([np.asarray(scaler.mean_, "float64"), np.asarray(scaler.scale_, "float64"),
                       coef.T, intercept])
    return out


def _one_nn(prep, baseline, inputs):
    m = baseline.model
    stored = np.asarray(m._fit_X)
    if stored.size > NN_EXPORT_VALUES:
        raise NotExportable(
            f"1-NN stores its training set in the graph: {stored.shape[0]} samples x "
            f"{stored.shape[1]} values exceed the export's limit of {NN_EXPORT_VALUES:,} values")
    labels = np.asarray(m.classes_, dtype="int64")[np.asarray(m._y, dtype="int64")]
    if not np.array_equal(stored.astype("float32").astype("float64"), stored):
        raise NotExportable("1-NN's stored samples are not float32 values")
    layer = _layers()["NearestNeighbour"](
        steps=training_length(prep), samples=int(stored.shape[0]), values=int(stored.shape[1]),
        width=int(prep.n_outputs), name="nearest_neighbour")
    out = layer(inputs)
    layer.set_weights([stored.astype("float32"), labels])
    return out


def _tfidf(prep, baseline, inputs):
    pipe = baseline.model
    vec, lin = pipe[0], pipe[-1]
    if (vec.analyzer != "word" or not vec.lowercase or vec.strip_accents is not None
            or vec.token_pattern != r"(?u)\b\w\w+\b" or vec.ngram_range != (1, 2)
            or vec.norm != "l2" or not vec.use_idf or not vec.sublinear_tf
            or vec.preprocessor is not None or vec.tokenizer is not None
            or vec.stop_words is not None or vec.binary or vec.input != "content"):
        raise NotExportable("the TF-IDF vectorizer's settings differ from the ones the graph "
                            "reproduces (word uni+bigrams, lowercase, sklearn's token pattern, "
                            "sublinear tf, idf, l2)")
    terms = [t for t, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
    coef = np.atleast_2d(np.asarray(lin.coef_, dtype="float64"))  # (K, V)
    intercept = np.atleast_1d(np.asarray(lin.intercept_, dtype="float64"))
    classify = prep.task == "classify"
    layer = _layers()["TfidfLinear"](
        vocabulary=terms, outputs=coef.shape[0], head="logistic" if classify else "linear",
        classes=np.asarray(lin.classes_, dtype="int64").tolist() if classify else [],
        width=int(prep.n_outputs), name="tfidf_linear")
    out = layer(inputs)
    layer.set_weights([np.asarray(vec.idf_, dtype="float64"), coef.T, intercept])
    return out


# --- layers -----------------------------------------------------------------------------------


def _fit_length(x, steps: int):
    """(n, any steps, C) -> (n, steps, C): zero right-padded or cut."""
    import tensorflow as tf

    x = x[:, :steps]
    pad = steps - tf.shape(x)[1]
    x = tf.pad(x, [[0, 0], [0, pad], [0, 0]])
    return tf.ensure_shape(x, [None, steps, x.shape[-1]])


def _one_hot_columns(index, classes: list, width: int):
    """Positions in `classes` (n,) -> one-hot rows over `width` columns at classes[index]."""
    import tensorflow as tf

    columns = tf.gather(tf.constant(classes, tf.int64), index)
    return tf.one_hot(columns, width, dtype=tf.float32)


@functools.cache
def _layers() -> dict:
    """The custom layers of the sequence graphs, by class name (each registered once as
    "cellpick>Name" for model.keras)."""
    classes = (_mini_rocket_features_class(), _ridge_head_class(), _nearest_neighbour_class(),
               _tfidf_linear_class(), _constant_class())
    return {cls.__name__: cls for cls in classes}


def _kernel_taps() -> np.ndarray:
    """aeon's 84 MiniRocket kernels (9, 84): 9 taps of weight -1, three of them (the
    combinations of 3 of 9) +2."""
    from itertools import combinations

    triples = np.array(list(combinations(range(9), 3)), dtype="int64")
    taps = -np.ones((9, 84), dtype="float32")
    for k, (a, b, c) in enumerate(triples):
        taps[[a, b, c], k] = 2.0
    return taps


def _mini_rocket_features_class():
    """The MiniRocketFeatures layer class: aeon MiniRocket's transform, with the fitted kernels' dilations and biases."""
    import keras
    import tensorflow as tf

    register = keras.saving.register_keras_serializable(package="cellpick")
    taps = _kernel_taps()

    @register
    class MiniRocketFeatures(keras.layers.Layer):
        """Raw (n, steps, C) -> aeon MiniRocket's features (n, F) float32: per dilation d the
        84 kernels as one matmul over 9 taps d apart (zero padding 4d each side) and the
        channels of each kernel's combination; then the proportion of positive values
        (C > bias) over all steps or, for the kernels aeon pads with (dilation index + kernel)
        odd, over the steps with no padding. Counts: the rank of each value among the biases."""

        def __init__(self, steps, channels, dilations, features_per_dilation, masks, **kw):
            super().__init__(**kw)
            self.steps, self.channels = int(steps), int(channels)
            self.dilations = [int(d) for d in dilations]
            self.features_per_dilation = [int(f) for f in features_per_dilation]
            self.masks = np.asarray(masks, dtype="float32").reshape(
                len(self.dilations), 84, self.channels)
            total = 84 * sum(self.features_per_dilation)
            self.biases = self.add_weight(shape=(total,), initializer="zeros", trainable=False,
                                          name="biases", dtype="float32")

        def get_config(self):
            return {**super().get_config(), "steps": self.steps, "channels": self.channels,
                    "dilations": self.dilations,
                    "features_per_dilation": self.features_per_dilation,
                    "masks": self.masks.tolist()}

        def compute_output_shape(self, shape):
            return (shape[0], 84 * sum(self.features_per_dilation))

        def call(self, x):
            x = _fit_length(tf.cast(x, tf.float32), self.steps)
            # Rows in chunks of at most MINIROCKET_CHUNK_BYTES of convolution output per
            # dilation: a large batch of long series would otherwise need gigabytes.
            n = tf.shape(x)[0]
            rows = max(1, MINIROCKET_CHUNK_BYTES // (84 * self.steps * 4))
            size = tf.maximum(tf.minimum(n, rows), 1)
            chunks = (n + size - 1) // size
            x = tf.pad(x, [[0, chunks * size - n], [0, 0], [0, 0]])
            x = tf.reshape(x, [chunks, size, self.steps, self.channels])
            total = 84 * sum(self.features_per_dilation)
            out = tf.map_fn(self._traced(), x,
                            fn_output_signature=tf.TensorSpec([None, total], tf.float32))
            return tf.reshape(out, [-1, total])[:n]

        def _traced(self):
            """_features as one tf.function, traced once however often the model is (an
            export traces the model several times; _features is thousands of ops)."""
            fn = self.__dict__.get("_traced_features")
            if fn is None:
                spec = tf.TensorSpec([None, self.steps, self.channels], tf.float32)
                fn = tf.function(self._features, input_signature=[spec], autograph=False)
                object.__setattr__(self, "_traced_features", fn)  # not a Keras attribute
            return fn

        def _features(self, x):
            out, start = [], 0
            for j, (d, nf) in enumerate(zip(self.dilations, self.features_per_dilation)):
                b = tf.reshape(self.biases[start:start + 84 * nf], [84, nf])
                start += 84 * nf
                out.append(_dilation_features(x, self.steps, self.channels, taps,
                                              self.masks[j], b, j, d, nf))
            return tf.concat(out, axis=-1)

    return MiniRocketFeatures


def _dilation_features(x, t: int, c: int, taps, mask, b, j: int, d: int, nf: int):
    """aeon MiniRocket's features of dilation index `j` (dilation `d`, `nf` biases per kernel
    in `b` (84, nf)) for raw windows x (n, t, c): (n, 84 * nf) float32 proportions."""
    import tensorflow as tf

    padded = tf.pad(x, [[0, 0], [4 * d, 4 * d], [0, 0]])
    patches = tf.concat([padded[:, p * d:p * d + t] for p in range(9)], axis=-1)
    # kernel (9 * C, 84): tap weight x channel mask of the kernel's combination
    kernel = (taps[:, None, :] * mask.T[None, :, :]).reshape(9 * c, 84)
    conv = tf.einsum("ntk,kf->ntf", patches, tf.constant(kernel))  # (n, T, 84)
    conv = tf.transpose(conv, [0, 2, 1])  # (n, 84, T)
    # PPV by ranks, not by a sort of C (slow on CPU) nor a (n, 84, T, nf) comparison:
    # pos = how many of the kernel's sorted biases lie below C[t]; C[t] > the r-th smallest
    # bias <=> pos > r, so each bias's count is a suffix sum of the histogram of pos.
    order = tf.argsort(b, axis=-1, stable=True)
    rank = tf.argsort(order, axis=-1)
    n = tf.shape(conv)[0]
    pos = tf.searchsorted(tf.broadcast_to(tf.gather(b, order, batch_dims=1), [n, 84, nf]),
                          tf.ensure_shape(conv, [None, 84, t]), side="left")
    # Kernels aeon pads with (j + k odd) count only the steps 4d .. T-4d: the others go to an
    # extra bin that is dropped.
    cut = np.array([(j + k) % 2 == 1 for k in range(84)])
    step = tf.range(t)
    padded_step = (step < 4 * d) | (step >= t - 4 * d)
    outside = tf.logical_and(tf.constant(cut)[:, None], padded_step[None, :])
    pos = tf.where(outside[None], nf + 1, pos)
    hist = tf.math.bincount(tf.reshape(pos, [-1, t]), minlength=nf + 2, maxlength=nf + 2,
                            axis=-1)[:, :nf + 1]
    above = tf.cumsum(hist, axis=-1, exclusive=True, reverse=True)[:, :nf]
    above = tf.reshape(above, [n, 84, nf])
    above = tf.gather(above, tf.broadcast_to(rank, [n, 84, nf]), batch_dims=2)
    steps = np.where(cut, t - 8 * d, t).astype("float64")[:, None]
    share = tf.cast(tf.cast(above, tf.float64) / steps, tf.float32)
    return tf.reshape(share, [-1, 84 * nf])


def _ridge_head_class():
    """The RidgeHead layer class: the fitted scaler and linear head over the features."""
    import keras
    import tensorflow as tf

    register = keras.saving.register_keras_serializable(package="cellpick")

    @register
    class RidgeHead(keras.layers.Layer):
        """Features (n, F) float32 -> the fitted StandardScaler and linear model (ridge, or
        SGD at size), in sklearn's precision (scaled features rounded to float32, the product
        in float64): classify -> one-hot (n, width) at the predicted class (as the
        contestant answers, a ridge classifier having no probabilities); regress -> (n, 1)."""

        def __init__(self, features, outputs, classes, width, **kw):
            super().__init__(**kw)
            self.features, self.outputs = int(features), int(outputs)
            self.classes, self.width = [int(c) for c in classes], int(width)
            w = dict(initializer="zeros", trainable=False, dtype="float64")
            self.mean = self.add_weight(shape=(self.features,), name="mean", **w)
            self.scale = self.add_weight(shape=(self.features,), name="scale", **w)
            self.kernel = self.add_weight(shape=(self.features, self.outputs), name="kernel", **w)
            self.bias = self.add_weight(shape=(self.outputs,), name="bias", **w)

        def get_config(self):
            return {**super().get_config(), "features": self.features, "outputs": self.outputs,
                    "classes": self.classes, "width": self.width}

        def compute_output_shape(self, shape):
            return (shape[0], self.width if self.classes else 1)

        def call(self, z):
            z = tf.cast(z, tf.float64)
            z = tf.cast(tf.cast(z - self.mean, tf.float32), tf.float64)
            z = tf.cast(tf.cast(z / self.scale, tf.float32), tf.float64)
            score = tf.matmul(z, self.kernel) + self.bias
            if not self.classes:
                return tf.cast(score, tf.float32)
            if self.outputs == 1:  # binary: classes[1] where the decision is positive
                index = tf.cast(score[:, 0] > 0, tf.int64)
            else:
                index = tf.argmax(score, axis=-1)
            return _one_hot_columns(index, self.classes, self.width)

    return RidgeHead


def _nearest_neighbour_class():
    """The NearestNeighbour layer class: 1-NN over the training samples stored in the graph."""
    import keras
    import tensorflow as tf

    register = keras.saving.register_keras_serializable(package="cellpick")

    @register
    class NearestNeighbour(keras.layers.Layer):
        """Raw (n, steps, C) -> one-hot (n, width) at the label of the nearest stored training
        sample (Euclidean on the flattened, zero-padded sample; distances in float64; the
        first of equally near samples)."""

        def __init__(self, steps, samples, values, width, **kw):
            super().__init__(**kw)
            self.steps, self.samples, self.values = int(steps), int(samples), int(values)
            self.width = int(width)
            self.stored = self.add_weight(shape=(self.samples, self.values), initializer="zeros",
                                          trainable=False, name="samples", dtype="float32")
            self.labels = self.add_weight(shape=(self.samples,), initializer="zeros",
                                          trainable=False, name="labels", dtype="int64")

        def get_config(self):
            return {**super().get_config(), "steps": self.steps, "samples": self.samples,
                    "values": self.values, "width": self.width}

        def compute_output_shape(self, shape):
            return (shape[0], self.width)

        def call(self, x):
            x = _fit_length(tf.cast(x, tf.float32), self.steps)
            x = tf.cast(tf.reshape(x, [-1, self.values]), tf.float64)
            s = tf.cast(self.stored, tf.float64)
            d2 = (tf.reduce_sum(x * x, 1, keepdims=True) - 2.0 * tf.matmul(x, s, transpose_b=True)
                  + tf.reduce_sum(s * s, 1)[None, :])
            nearest = tf.argmin(d2, axis=1)
            return tf.one_hot(tf.gather(self.labels, nearest), self.width, dtype=tf.float32)

    return NearestNeighbour


def _tfidf_linear_class():
    """The TfidfLinear layer class: scikit-learn's TF-IDF tokens, vocabulary, idf and norm, then the linear head."""
    import keras
    import tensorflow as tf

    register = keras.saving.register_keras_serializable(package="cellpick")

    @register
    class TfidfLinear(keras.layers.Layer):
        """Raw strings (n,) -> sklearn's TfidfVectorizer (lowercase; tokens: runs of 2+ word
        characters, [\\p{L}\\p{N}_]; unigrams and bigrams; 1 + log(count); idf; l2 norm) and
        the linear head, in float64: logistic -> probabilities (n, width) (binary: sigmoid;
        else softmax); linear -> (n, 1). Sparse throughout: no (n, vocabulary) tensor."""

        def __init__(self, vocabulary, outputs, head, classes, width, **kw):
            super().__init__(**kw)
            self.vocabulary = [str(t) for t in vocabulary]
            self.outputs, self.head = int(outputs), str(head)
            self.classes, self.width = [int(c) for c in classes], int(width)
            self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, num_oov_indices=1,
                                                    name="terms")
            v = len(self.vocabulary)
            w = dict(initializer="zeros", trainable=False, dtype="float64")
            self.idf = self.add_weight(shape=(v,), name="idf", **w)
            self.kernel = self.add_weight(shape=(v, self.outputs), name="kernel", **w)
            self.bias = self.add_weight(shape=(self.outputs,), name="bias", **w)

        def get_config(self):
            return {**super().get_config(), "vocabulary": self.vocabulary,
                    "outputs": self.outputs, "head": self.head, "classes": self.classes,
                    "width": self.width}

        def compute_output_shape(self, shape):
            return (shape[0], self.width if self.head == "logistic" else 1)

        def call(self, text):
            text = tf.reshape(text, [-1])
            n = tf.shape(text, out_type=tf.int64)[0]
            words = tf.strings.regex_replace(tf.strings.lower(text, encoding="utf-8"),
                                             r"[^\p{L}\p{N}_]", " ")
            tokens = tf.strings.split(words, sep=" ")
            tokens = tf.ragged.boolean_mask(
                tokens, tf.strings.length(tokens, unit="UTF8_CHAR") >= 2)
            grams = tf.strings.ngrams(tokens, ngram_width=(1, 2), separator=" ")
            ids = tf.cast(self.lookup(grams.flat_values), tf.int64) - 1  # -1: not a term
            rows = tf.cast(grams.value_rowids(), tf.int64)
            known = ids >= 0
            v = len(self.vocabulary)
            keys, _, counts = tf.unique_with_counts(
                tf.boolean_mask(rows, known) * v + tf.boolean_mask(ids, known), out_idx=tf.int64)
            row, term = keys // v, keys % v
            value = (1.0 + tf.math.log(tf.cast(counts, tf.float64))) * tf.gather(self.idf, term)
            norm = tf.sqrt(tf.math.unsorted_segment_sum(value * value, row, n))
            value = value / tf.gather(norm, row)
            score = tf.math.unsorted_segment_sum(
                value[:, None] * tf.gather(self.kernel, term), row, n) + self.bias
            if self.head != "logistic":
                return tf.cast(score, tf.float32)
            if self.outputs == 1:
                p1 = tf.sigmoid(score)
                proba = tf.concat([1.0 - p1, p1], axis=-1)
            else:
                proba = tf.nn.softmax(score, axis=-1)
            cols = tf.constant(self.classes, tf.int64)
            full = tf.scatter_nd(cols[:, None], tf.transpose(proba), [self.width, n])
            return tf.cast(tf.transpose(full), tf.float32)

    return TfidfLinear


def _constant_class():
    """The Constant layer class: the majority class or the training mean."""
    import keras
    import tensorflow as tf

    register = keras.saving.register_keras_serializable(package="cellpick")

    @register
    class Constant(keras.layers.Layer):
        """Any input (n, ...) -> the fitted constant row (n, len(value)) float32."""

        def __init__(self, value, **kw):
            super().__init__(**kw)
            self.value = [float(v) for v in np.atleast_1d(value)]

        def get_config(self):
            return {**super().get_config(), "value": self.value}

        def compute_output_shape(self, shape):
            return (shape[0], len(self.value))

        def call(self, x):
            n = tf.shape(x)[0]
            return tf.tile(tf.constant([self.value], tf.float32), [n, 1])

    return Constant
