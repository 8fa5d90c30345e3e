"""Training in threads: how many at once, and what keeps one thread from stalling the others.

`--jobs` trains a search round's trials, the data-level candidates and the verdict's cells
in threads of one process. Two process-wide operations run from one thread stalled the
others, and this module replaces both: Keras' seeding (`set_seeds`, which keeps TensorFlow's
kernel caches) and Python's automatic garbage collection (`gc_paused`, `frozen_heap`).
`deterministic` turns on TensorFlow's op determinism on a CPU. docs/engine.md, "Threads",
says why and what each cost.
"""
from __future__ import annotations

import contextlib
import gc
import threading

from cellpick.engine import internals

SEEDED = threading.Lock()  # the seeds set_seeds sets are global: one group builds at a time


def default_jobs() -> int:
    """Groups trained at once by default: one per core (a tiny model's graph keeps about one
    core busy)."""
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextlib.contextmanager
def gc_paused():
    """No automatic garbage collection while models train in threads; one collection after.

    A full collection run from a training thread finalises TensorFlow objects of finished
    trials and stalls that thread; paused while the threads run (reference counting still
    frees everything without cycles), it runs once they are joined. Nested uses collect
    once, at the outermost exit; with collection already off (a caller's choice), nothing
    changes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def set_seeds(seed: int) -> None:
    """`keras.utils.set_random_seed(seed)` without clearing TensorFlow's kernel caches.

    `tf.random.set_seed` also clears the whole process' eager kernel caches, which makes
    every other training thread instantiate its round function again. Nothing cellpick runs
    draws from a cached stateful kernel, so the seeds alone give the same weights, dropout
    seeds and shuffle orders (tests/engine/test_members.py checks it against Keras' own).
    Falls back to Keras' function if TensorFlow's context no longer has what this sets."""
    if not internals.seed_without_clearing_caches(seed):
        import keras

        keras.utils.set_random_seed(seed)


_FROZEN = [0]  # frozen_heap's nesting depth (the fit, then its search and verdict inside)


@contextlib.contextmanager
def frozen_heap():
    """Python's full garbage collections skip the objects alive when the block starts.

    TensorFlow, keras-tuner and MLflow leave a heap of long-lived objects that every full
    collection would walk again; objects made inside are collected as usual. Nested (the
    whole fit, then its search and its verdict), an inner block freezes what has appeared
    since and only the outermost exit gives the heap back (`gc.unfreeze`). A caller that
    froze its own heap keeps it as it is."""
    if gc.get_freeze_count() and not _FROZEN[0]:
        yield
        return
    gc.collect()
    gc.freeze()
    _FROZEN[0] += 1
    try:
        yield
    finally:
        _FROZEN[0] -= 1
        if not _FROZEN[0]:
            gc.unfreeze()


def deterministic(tf) -> None:
    """Same seed, same result on a CPU: TensorFlow's op determinism. On a GPU the cuDNN
    kernels stay non-deterministic (and fast); results there can differ in the last digits."""
    if not tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()
