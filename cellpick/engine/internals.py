"""Every private API of Keras, keras-tuner and TensorFlow that cellpick reaches, in one place.

Each function wraps one internal the public API does not offer (a `keras.src` or
`keras_tuner.src` module, a private attribute); docs/engine.md says what each is for. They
were written for the versions in SUPPORTED: at import this module reads the installed
versions (package metadata; no library is imported) and warns once when they differ, so a
failure after an upgrade points here. The libraries themselves are imported inside the
functions.
"""
from __future__ import annotations

import random
import warnings
from importlib import metadata

# distribution name -> the release (a prefix: "3.15" is any 3.15.x) these wrappers were written for
SUPPORTED = {"keras": "3.15", "keras-tuner": "1.4.8", "tensorflow": "2.21"}


class UnsupportedVersionWarning(UserWarning):
    """An installed library's version differs from the one cellpick's internals were written for."""


def _matches(installed: str, supported: str) -> bool:
    return installed == supported or installed.startswith(supported + ".")


def _shown(supported: str) -> str:
    return supported + ".x" if supported.count(".") == 1 else supported


def unsupported(installed: dict[str, str | None] | None = None) -> list[str]:
    """The installed libraries (name -> version; default: read from package metadata) whose
    version is not the supported one, as "name installed (supported x)"; a library that is
    not installed is left out."""
    if installed is None:
        installed = {}
        for name in SUPPORTED:
            try:
                installed[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed[name] = None
    return [f"{name} {version} (supported {_shown(SUPPORTED[name])})" for name, version in installed.items()
            if version is not None and name in SUPPORTED and not _matches(version, SUPPORTED[name])]


def check_versions(installed: dict[str, str | None] | None = None) -> list[str]:
    """Warn (UnsupportedVersionWarning) when an installed version differs from SUPPORTED;
    returns the differences. Called once at import."""
    found = unsupported(installed)
    if found:
        warnings.warn("cellpick reaches private APIs written for "
                      + ", ".join(f"{n} {_shown(v)}" for n, v in SUPPORTED.items())
                      + "; installed: " + ", ".join(found)
                      + ". Training or distribution may fail; cellpick/engine/internals.py lists them.",
                      UnsupportedVersionWarning, stacklevel=2)
    return found


check_versions()


# --- Keras: the functional graph, masks, the optimizer -------------------------------------


def nodes_by_depth(model) -> dict:
    """A functional model's nodes by depth (what Keras' own graph runner walks)."""
    return model._nodes_by_depth


def call_operation(op, args, kwargs, training: bool):
    """Run one node's operation as the functional model would (passing `training` to the
    layers that take it)."""
    from keras.src.models.functional import operation_fn

    return operation_fn(op, training=training)(*args, **kwargs)


def keras_mask(x):
    """The Keras mask carried by tensor `x`, or None."""
    from keras.src import backend

    return backend.get_keras_mask(x)


def set_keras_mask(x, mask) -> None:
    """Attach `mask` to tensor `x`, as a Keras layer's output carries it."""
    from keras.src import backend

    backend.set_keras_mask(x, mask)


def skip_all_reduce(optimizer) -> None:
    """The optimizer's `apply_gradients` without Keras' all-reduce of the gradients over the
    distribution strategy's replicas (with none, an identity that leaks a traced graph per
    trace; docs/engine.md, "The all-reduce")."""
    optimizer._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)


# --- TensorFlow and Keras: the global seeds -------------------------------------------------


def seed_without_clearing_caches(seed: int) -> bool:
    """Set the seeds `keras.utils.set_random_seed(seed)` sets (Python, NumPy, Keras' global
    seed generator, TensorFlow's global seed) without clearing TensorFlow's kernel caches.
    Returns False, having set nothing, when TensorFlow's context lacks what this sets."""
    import numpy as np
    from tensorflow.python.eager import context

    ctx = context.context()
    if not (hasattr(ctx, "_seed") and hasattr(ctx, "_rng")):
        return False
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)  # recreated from the seed
    random.seed(seed)
    np.random.seed(seed)
    ctx._seed, ctx._rng = seed, random.Random(seed)  # what tf.random.set_seed sets, less the clear
    return True


# --- keras-tuner: its state writer and its distribution -------------------------------------


def keras_tuner_utils():
    """keras-tuner's utils module (its `save_json` writes every state file)."""
    from keras_tuner.src import utils

    return utils


def keras_tuner_protos():
    """keras-tuner's gRPC protos module (`get_service_grpc()`: the oracle's service)."""
    from keras_tuner.src import protos

    return protos


def oracle_servicer_class():
    """keras-tuner's chief-side gRPC servicer class (OracleServicer)."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    return OracleServicer


def keras_tuner_trial():
    """keras-tuner's trial module (Trial, TrialStatus)."""
    from keras_tuner.src.engine import trial

    return trial


def oracle_lock(oracle):
    """The lock keras-tuner's oracle methods hold while they change the oracle's trials."""
    from keras_tuner.src.engine.oracle import LOCKS

    return LOCKS[oracle]


def retry_queue(oracle) -> list:
    """The oracle's queue of trial ids to run again (a lost worker's trial goes there)."""
    return oracle._retry_queue


# --- Keras' tf2onnx fixes -------------------------------------------------------------------


def patch_tf2onnx() -> None:
    """Apply the NumPy 2 fixes Keras applies to tf2onnx before converting; nothing when this
    Keras has none."""
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx as patch
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        patch()


def tf2onnx_convert(graph_def, **kwargs):
    """tf2onnx's private `convert._convert_common`, on the graph `tf_loader.from_saved_model`
    loaded (with its initialized tables and renamed tensors)."""
    from tf2onnx import convert

    return convert._convert_common(graph_def, **kwargs)
