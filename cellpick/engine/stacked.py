"""K models of one architecture run as one graph, their recurrent and dense layers batched.

`Stacked(models)(xs)` gives each of K same-architecture functional models' outputs on its
own input, computed together: every LSTM/GRU/SimpleRNN (and Bidirectional around them) as
one loop over time steps with one batched product over a member axis, every Dense as one
batched product, every other node as the member's own operation on its own tensors. The
members' own Keras variables are stacked at run time, so gradients reach each member's
variables and the models stay the members. `stackable(models)` says whether it applies (the
layers `cells.build_model` makes for numeric input, with their defaults). `StackedAdam`
updates the K members in one elementwise Adam, a learning rate per member. A member's
outputs are its model's up to float summation order. docs/engine.md, "Stacking".
"""
from __future__ import annotations

import math
from typing import Any

from cellpick.engine import internals

_RNNS = ("LSTM", "GRU", "SimpleRNN")


def _walk(model) -> list:
    """The model's computing nodes in the order Keras' own `_run_through_graph` visits them."""
    by_depth = internals.nodes_by_depth(model)
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]
            if node.operation is not None and not node.is_input]


def _plain_rnn(layer) -> bool:
    """An LSTM/GRU/SimpleRNN with the defaults this module computes."""
    name = type(layer).__name__
    if name not in _RNNS or layer.stateful or layer.return_state or layer.unroll:
        return False
    cell = layer.cell
    ok = (cell.use_bias and getattr(cell, "dropout", 0) == 0 and getattr(cell, "recurrent_dropout", 0) == 0
          and cell.activation.__name__ == "tanh")
    if name != "SimpleRNN":
        ok = ok and cell.recurrent_activation.__name__ == "sigmoid"
    if name == "GRU":
        ok = ok and cell.reset_after
    return ok


def _kind(op) -> str | None:
    """How a node runs: "rnn", "bidirectional", "dense" stacked; None as the member's own op."""
    name = type(op).__name__
    if name in _RNNS:
        return "rnn" if _plain_rnn(op) else "unsupported"
    if name == "Bidirectional":
        ok = (op.merge_mode == "concat" and _plain_rnn(op.forward_layer) and _plain_rnn(op.backward_layer)
              and not op.forward_layer.go_backwards and op.backward_layer.go_backwards)
        return "bidirectional" if ok else "unsupported"
    if name == "Dense":
        plain = op.use_bias and not getattr(op, "lora_enabled", False) and getattr(op, "quantization_mode", None) is None
        return "dense" if plain else None  # an unusual Dense still runs correctly per member
    if name in ("TextVectorization", "StringLookup"):
        return "unsupported"  # string input: text members are called one by one
    return None


def stackable(models: list) -> bool:
    """Whether `Stacked(models)` can run these models: same graph, supported layers."""
    try:
        walks = [_walk(m) for m in models]
    except AttributeError:  # not a functional model
        return False
    first = walks[0]
    if len(models[0].inputs) != 1 or len(models[0].outputs) != 1:
        return False
    for walk in walks[1:]:
        if len(walk) != len(first) or any(type(a.operation) is not type(b.operation)
                                          for a, b in zip(first, walk)):
            return False
    for j, node in enumerate(first):
        kind = _kind(node.operation)
        if kind == "unsupported":
            return False
        if kind is not None and any(_config(walk[j].operation) != _config(node.operation) for walk in walks[1:]):
            return False  # a batched layer must be one layer K times (units, flags, activation)
    return True


def _config(layer) -> dict:
    config = dict(layer.get_config())
    config.pop("name", None)
    for key in ("layer", "backward_layer"):  # Bidirectional: its wrapped layers, without names
        if isinstance(config.get(key), dict):
            inner = {**config[key], "config": {k: v for k, v in config[key]["config"].items() if k != "name"}}
            config[key] = inner
    return config


class Stacked:
    """Call K same-architecture functional models on K inputs as one computation."""

    def __init__(self, models: list):
        if not stackable(models):
            raise ValueError("Stacked needs functional models of one architecture with supported layers")
        self.models = models
        self.walks = [_walk(m) for m in models]
        self.kinds = [_kind(node.operation) for node in self.walks[0]]

    def __call__(self, xs: list, training: bool = False) -> list:
        """Each model's output on its own input (K tensors in, K tensors out)."""
        values = [{id(m.inputs[0]): x} for m, x in zip(self.models, xs)]
        for j, kind in enumerate(self.kinds):
            nodes = [walk[j] for walk in self.walks]
            filled = [node.arguments.fill_in(v) for node, v in zip(nodes, values)]
            ops = [node.operation for node in nodes]
            if kind is None:
                outs = [internals.call_operation(op, args, kwargs, training)
                        for op, (args, kwargs) in zip(ops, filled)]
            elif kind == "dense":
                outs = _dense(ops, [args[0] for args, _ in filled])
            else:
                outs = _recurrent(kind, ops, filled)
            for node, v, out in zip(nodes, values, outs):
                flat = out if isinstance(out, (list, tuple)) else [out]
                for ref, y in zip(node.outputs, flat):
                    v[id(ref)] = y
        return [v[id(m.outputs[0])] for m, v in zip(self.models, values)]


def _stack(variables) -> Any:
    import tensorflow as tf

    return tf.stack([tf.convert_to_tensor(v.value if hasattr(v, "value") else v) for v in variables])


def _dense(layers: list, xs: list) -> list:
    """K Dense layers on K inputs (..., in) as one batched product."""
    import tensorflow as tf

    x = tf.stack(xs)  # (K, B, ..., in)
    shape = tf.shape(x)
    flat = tf.reshape(x, [shape[0], -1, shape[-1]])
    y = tf.einsum("kni,kio->kno", flat, _stack([layer.kernel for layer in layers]))
    y = y + _stack([layer.bias for layer in layers])[:, None, :]
    y = tf.reshape(y, tf.concat([shape[:-1], [layers[0].units]], axis=0))
    y = layers[0].activation(y)  # activations act on the last axis: one call for all members
    return tf.unstack(y, num=len(layers))


def _recurrent(kind: str, layers: list, filled: list) -> list:
    """K recurrent (or Bidirectional) layers on K inputs, masks as Keras applies them."""
    import tensorflow as tf

    xs = [args[0] for args, _ in filled]
    masks = [kwargs.get("mask") if kwargs.get("mask") is not None else internals.keras_mask(x)
             for x, (_, kwargs) in zip(xs, filled)]
    mask = None if any(m is None for m in masks) else tf.stack([tf.cast(m, tf.bool) for m in masks])
    x = tf.stack(xs)  # (K, B, T, f)
    return_sequences = layers[0].return_sequences
    if kind == "rnn":
        y = _run(layers, x, mask, backwards=False, zero_output=False)
    else:
        # Bidirectional sets zero_output_for_mask = return_sequences on both of its layers.
        fwd = _run([b.forward_layer for b in layers], x, mask, backwards=False, zero_output=return_sequences)
        bwd = _run([b.backward_layer for b in layers], x, mask, backwards=True, zero_output=return_sequences)
        if return_sequences:
            bwd = tf.reverse(bwd, [2])  # back to time order, as Bidirectional does
        y = tf.concat([fwd, bwd], axis=-1)
    outs = tf.unstack(y, num=len(layers))
    if return_sequences and mask is not None:
        for out, m in zip(outs, masks):  # the next recurrent layer reads it, as in Keras
            internals.set_keras_mask(out, m)
    return outs


def _run(layers: list, x, mask, backwards: bool, zero_output: bool):
    """One plain recurrent layer per member over x (K, B, T, f): every step's output
    (K, B, T, u) in processing order if the layers return sequences, else the last (K, B, u).
    Masked steps keep the previous state (and output zeros when `zero_output`), as Keras'
    TensorFlow backend does."""
    import tensorflow as tf

    name = type(layers[0]).__name__
    cells = [layer.cell for layer in layers]
    units = cells[0].units
    kernel = _stack([c.kernel for c in cells])
    recurrent = _stack([c.recurrent_kernel for c in cells])
    bias = _stack([c.bias for c in cells])
    xw = tf.einsum("kbtf,kfg->kbtg", x, kernel)
    if name == "GRU":  # bias (K, 2, 3u): input bias, recurrent bias (reset_after)
        xw = xw + bias[:, None, None, 0, :]
        rbias = bias[:, None, 1, :]
    else:
        xw = xw + bias[:, None, None, :]
        rbias = None
    seq = tf.transpose(xw, [2, 0, 1, 3])  # (T, K, B, g)
    m = None if mask is None else tf.transpose(mask, [2, 0, 1])[..., None]  # (T, K, B, 1)
    if backwards:
        seq = tf.reverse(seq, [0])
        m = None if m is None else tf.reverse(m, [0])
    zeros = tf.zeros(tf.concat([tf.shape(x)[:2], [units]], axis=0), x.dtype)

    def cell(state, xt):
        h = state[0]
        hu = tf.einsum("kbu,kug->kbg", h, recurrent)
        if name == "GRU":
            hu = hu + rbias
            xz, xr, xh = tf.split(xt, 3, axis=-1)
            hz, hr, hh = tf.split(hu, 3, axis=-1)
            z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
            h_new = z * h + (1.0 - z) * tf.tanh(xh + r * hh)
            return (h_new,)
        if name == "LSTM":
            zi, zf, zc, zo = tf.split(xt + hu, 4, axis=-1)
            c_new = tf.sigmoid(zf) * state[1] + tf.sigmoid(zi) * tf.tanh(zc)
            return (tf.sigmoid(zo) * tf.tanh(c_new), c_new)
        return (tf.tanh(xt + hu),)

    init = (zeros, zeros) if name == "LSTM" else (zeros,)

    def step(carry, inputs):
        state = carry[:-1]
        if m is None:
            new = cell(state, inputs)
            return (*new, new[0])
        xt, mt = inputs
        new = tuple(tf.where(mt, n, s) for n, s in zip(cell(state, xt), state))
        out = tf.where(mt, new[0], tf.zeros_like(new[0])) if zero_output else new[0]
        return (*new, out)

    elems = seq if m is None else (seq, m)
    carries = tf.scan(step, elems, initializer=(*init, zeros))
    outputs = carries[-1]  # (T, K, B, u)
    if layers[0].return_sequences:
        return tf.transpose(outputs, [1, 2, 0, 3])
    return outputs[-1]


def sample_macs(model, steps: int) -> int:
    """Multiply-adds of one sample's forward pass through the model's recurrent and dense
    layers (input weights and recurrent weights, every time step): a deterministic measure
    of a member's compute, for members.py's choice to rebuild a stacked group. `steps`: the
    input's time steps where the model leaves them open (variable-length sequences)."""
    total = 0
    for node in _walk(model):
        kind = _kind(node.operation)
        if kind not in ("rnn", "bidirectional", "dense"):
            continue
        shape = node.input_tensors[0].shape
        t = (shape[1] or steps) if len(shape) == 3 else 1
        total += t * sum(math.prod(w.shape) for w in node.operation.weights if len(w.shape) == 2)
    return total


class StackedAdam:
    """Keras' Adam (keras.optimizers.Adam.update_step, amsgrad off) for K members at once:
    moments stacked on a member axis per variable position, one learning rate per member.
    Elementwise, so each member's update is the one its own Adam would make; a member whose
    `active` flag is off gets zero gradients and, stopped, rate 0 (its weights stay exactly
    where they are, even if its loss went NaN). One update for all members instead of K
    Keras optimizers shortens the stacked step's trace and compile (docs/engine.md)."""

    def __init__(self, models: list, opts: list):
        import tensorflow as tf

        opt = opts[0]
        if getattr(opt, "amsgrad", False) or any(getattr(opt, a, None) for a in ("clipnorm", "clipvalue",
                                                                              "global_clipnorm", "weight_decay")):
            raise ValueError("stacked members implement plain Adam only")
        self.beta_1, self.beta_2, self.epsilon = float(opt.beta_1), float(opt.beta_2), float(opt.epsilon)
        self.variables = [model.trainable_variables for model in models]
        k = len(models)
        self.m = [tf.Variable(tf.zeros((k, *v.shape)), trainable=False) for v in self.variables[0]]
        self.v = [tf.Variable(tf.zeros((k, *v.shape)), trainable=False) for v in self.variables[0]]
        self.rates = tf.Variable([float(o.learning_rate.numpy()) for o in opts], trainable=False)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)

    def subset(self, keep: list[int]) -> "StackedAdam":
        """The same optimiser for members `keep` only (positions in this one): their moments,
        rates and step count carry over, so each keeps the update its own Adam would make."""
        import tensorflow as tf

        out = object.__new__(StackedAdam)
        out.beta_1, out.beta_2, out.epsilon = self.beta_1, self.beta_2, self.epsilon
        out.variables = [self.variables[k] for k in keep]
        out.m = [tf.Variable(tf.gather(m, keep), trainable=False) for m in self.m]
        out.v = [tf.Variable(tf.gather(v, keep), trainable=False) for v in self.v]
        out.rates = tf.Variable(tf.gather(self.rates, keep), trainable=False)
        out.iterations = tf.Variable(self.iterations.numpy(), dtype=tf.int64, trainable=False)
        return out

    def set_lr(self, i: int, lr: float) -> None:
        self.rates[i].assign(lr)

    def lr(self, i: int) -> float:
        return float(self.rates[i].numpy())

    def apply(self, grads: list[list], active) -> None:
        """grads[k][p]: member k's gradient for its p-th trainable variable."""
        import tensorflow as tf

        step = tf.cast(self.iterations + 1, tf.float32)
        alpha = self.rates * tf.sqrt(1 - tf.pow(self.beta_2, step)) / (1 - tf.pow(self.beta_1, step))
        for p, (m, v) in enumerate(zip(self.m, self.v)):
            g = tf.stack([tf.convert_to_tensor(grads[k][p]) for k in range(len(grads))])
            shape = [-1] + [1] * (len(g.shape) - 1)
            g = tf.where(tf.reshape(active, shape), g, tf.zeros_like(g))
            m.assign_add((g - m) * (1 - self.beta_1))
            v.assign_add((tf.square(g) - v) * (1 - self.beta_2))
            update = m * tf.reshape(alpha, shape) / (tf.sqrt(v) + self.epsilon)
            for k, delta in enumerate(tf.unstack(update, num=len(grads))):
                self.variables[k][p].assign_sub(delta)
        self.iterations.assign_add(1)
