"""Training in threads: how many at once, and what keeps one thread from stalling the others.

`--jobs` trains a search round's trials, the data-level candidates and the verdict's cells
in threads of one process (TensorFlow runs a graph without the GIL, and a tiny model's graph
keeps about one core busy). Two process-wide operations run from one thread stalled the
others, and this module replaces both: Keras' seeding (which clears TensorFlow's kernel
caches) and Python's automatic garbage collection (which finalised finished trials'
TensorFlow objects in a training thread). bench/threads.py measures them; bench/RESULTS.md,
"Threads".
"""
from __future__ import annotations

import contextlib
import gc
import threading

import numpy as np

SEEDED = threading.Lock()  # the seeds set_seeds sets are global: one group builds at a time


def default_jobs() -> int:
    """Groups trained at once by default: one per core (a tiny model's graph keeps about one
    core busy; two groups on two cores: bench/RESULTS.md, "Jobs")."""
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextlib.contextmanager
def gc_paused():
    """No automatic garbage collection while models train in threads; one collection after.

    A full collection run from a training thread finalises TensorFlow objects of finished
    trials and groups (functions, graphs, iterators), and on airline's default fit such a
    collection took 17-30 s in a trial's thread while the other trial's thread stood still
    (6 of 6 fits without the pause lost 8-28 s so; bench/RESULTS.md "Threads"). Paused
    while the threads run (reference counting still frees everything without cycles) and
    run once they are joined, no collection stalls a training thread; the search's
    per-round collections then take 0.1-0.2 s. (The ones that took 2-7 s now and then were
    freed groups waiting for their tf.data autotuning thread, now off: `members._Group`.)
    Nested uses collect once, at the outermost exit; with collection already off (a
    caller's choice), nothing changes."""
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

    `tf.random.set_seed` also clears the eager context's kernel caches (so that an eager
    stateful random op restarts its sequence), and that context is the whole process': every
    group built while another thread trains (the search builds each trial in its thread)
    makes that thread instantiate its round function again (bench/threads.py seeding: an
    LSTM 16x2's rounds of 24 steps while another thread seeds every 0.3 s, 157 ms with no
    seeding, 831 ms with Keras' function, 154 ms with this one). Nothing here draws
    from a cached stateful kernel (Keras 3 draws through seeded stateless ops, tf.data takes
    its seeds as inputs), so the seeds alone give the same weights, dropout seeds and shuffle
    orders (tests/test_members.py checks it against Keras' own; airline's default fit gives
    the very same trial scores). Falls back to Keras' function if TensorFlow's context no
    longer has the attributes this sets."""
    import random

    import keras
    from tensorflow.python.eager import context

    ctx = context.context()
    if not (hasattr(ctx, "_seed") and hasattr(ctx, "_rng")):
        keras.utils.set_random_seed(seed)
        return
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)  # recreated from the seed
    random.seed(seed)
    np.random.seed(seed)
    ctx._seed, ctx._rng = seed, random.Random(seed)  # what tf.random.set_seed sets, less the clear


_FROZEN = [0]  # frozen_heap's nesting depth (the fit, then its search and verdict inside)



@contextlib.contextmanager
def frozen_heap():
    """Python's full garbage collections skip the objects alive when the block starts.

    TensorFlow, keras-tuner and MLflow (with SQLAlchemy and alembic) leave ~800,000 objects
    that every full collection walks again: ~0.3 s each, ~10 of them in a short search,
    twice what plain keras-tuner pays without MLflow (bench/RESULTS.md, Overhead); in a
    long-lived process (the tests, a notebook) every earlier fit leaves ~10,000 more (it was
    ~190,000 before members._without_all_reduce). Objects made inside are collected as
    usual. Nested (the whole fit, then its search and its verdict), an inner block freezes
    what has appeared since (the libraries a fit imports late) and only the outermost exit
    gives the heap back (`gc.unfreeze`). A caller that froze its own heap keeps it as it is.
    """
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
