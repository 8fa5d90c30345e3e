"""Members: several models of one configuration trained together, as one graph.

`fit_members(members, config, schedule)` trains K members (verdict seeds, folds x seeds),
each an ordinary `cells.build_model` model with its own data stream, seed, loss and Adam,
and returns each at its own best validation round, as `fit_one` would have trained it alone
(up to float summation order). Between rounds of `round_steps(schedule)` gradient steps,
Python applies per member the policy `train.callbacks` gives Keras' fit: learning-rate
halving on a plateau, early stopping with the best weights restored, stop on NaN; a stopped
member's rate is 0. `fit_groups` trains several groups in threads; `refit_members` trains
each member for a fixed number of steps without validation. The step is XLA-compiled,
stacked (`stacked.Stacked`) or calls the K models one by one, as `EngineOptions` and the
rules here decide. docs/engine.md says why and what each choice measured.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cellpick.data.prepared import Prepared
from cellpick.engine import internals
from cellpick.engine.options import DEFAULT, EngineOptions
from cellpick.engine.stacked import Stacked, StackedAdam, sample_macs, stackable
from cellpick.engine.threads import SEEDED, gc_paused, set_seeds
from cellpick.engine.train import Schedule
from cellpick.models.cells import build_model

ROUND_STEPS = 24  # tiny data: validate every ~24 steps (several tiny epochs), not every epoch
MIN_PATIENCE_ROUNDS = 8  # ...but never so rarely that patience spans fewer rounds than this
MIN_LR = 1e-5  # ReduceLROnPlateau's floor in train.callbacks
VAL_CHUNK = 2048  # validation rows per call
# A stacked group drops its stopped members (`_Group.compact`) when the compute saved, at
# STACKED_MACS_PER_SECOND (multiply-adds of a member's forward pass per second of its
# training step), outweighs REBUILD_SECONDS (a rebuilt group's trace and XLA compile).
# Estimates, not timings, so the choice does not depend on the machine's load
# (docs/engine.md, "Compaction").
STACKED_MACS_PER_SECOND = 1e10
REBUILD_SECONDS = 10.0
# XLA's compile pays only over many steps: a group that may train fewer gradient steps than
# this (a short explicit --epochs) runs without it. The default schedule always reaches it.
XLA_FROM_STEPS = 400
# Without XLA, a stacked step traces one loop where K models called one by one trace K:
# from this many members the stacked group is the faster one (docs/engine.md, "Stacking").
STACK_FROM_MEMBERS = 3


@dataclass
class Member:
    """One model to train: its data (and training-split constants) and its seed."""

    prep: Prepared  # trains on prep's "train" split, early-stops on its "val" split
    seed: int  # initial weights, dropout and batch order


@dataclass
class MemberResult:
    model: Any  # the keras.Model build_model returns, best weights restored
    history: dict[str, list[float]]  # per validation round: loss, metric, val_*, learning_rate
    best_round: int  # round with the lowest val_loss (the weights restored)
    steps: int  # gradient steps up to and including the best round
    seconds: float  # the group's wall time / number of members
    rounds_trained: int = 0  # rounds before this member stopped
    round_steps: int = 0  # gradient steps per round
    by_deadline: bool = False  # the deadline stopped it: neither its policy nor the epoch cap
    extra: dict = field(default_factory=dict)  # xla, first_round_seconds (trace + compile), round_seconds


def round_steps(schedule: Schedule) -> int:
    """Gradient steps between validations: at least an epoch and about ROUND_STEPS, but
    short enough that early stopping's patience spans at least MIN_PATIENCE_ROUNDS rounds."""
    spe = schedule.steps_per_epoch
    patience_steps = schedule.patience * spe
    return max(1, min(max(spe, ROUND_STEPS), patience_steps // MIN_PATIENCE_ROUNDS))


def _use_xla(members: list[Member], steps: int | None = None) -> bool:
    """The rule when `EngineOptions.xla` is None: XLA on a CPU for two or more members with
    numeric input that may train at least XLA_FROM_STEPS gradient steps (`steps`: the most
    the group may train; None: unknown). String ops cannot compile; one member or a few
    hundred steps do not earn back the compile (docs/engine.md, "XLA")."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):  # cuDNN's fused RNN kernels are not XLA ops
        return False
    if steps is not None and steps < XLA_FROM_STEPS:
        return False
    return len(members) >= 2 and all(m.prep.input_dtype != "string" for m in members)


def _stack_without_xla(members: list[Member]) -> bool:
    """Stack a group that trains without XLA: STACK_FROM_MEMBERS or more on a CPU (on a GPU
    Keras' layers may run cuDNN's fused kernels, which a stacked loop would give up)."""
    if len(members) < STACK_FROM_MEMBERS:
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def _metric_name(prep: Prepared) -> str:
    return "accuracy" if prep.task == "classify" else "mae"


def _padded(ds, batch_size: int):
    """Batches of a fixed size, a short last batch filled up with copies of its own rows at
    weight 0: one shape, so XLA compiles the step once; the loss is still the real rows' mean."""
    import tensorflow as tf

    def pad(x, y):
        n = tf.shape(y)[0]
        idx = tf.range(batch_size) % n
        w = tf.cast(tf.range(batch_size) < n, tf.float32)
        return tf.gather(x, idx), tf.gather(y, idx), w

    return ds.map(pad)


def _stacked(models: list, members: list[Member], datasets: list, split: str):
    """A `stacked.Stacked` forward pass for these members, or None to call the models one by
    one: it needs two or more members with one static input shape, layers it supports and
    (trained with validation) a val split each."""
    if len(models) < 2:
        return None
    shapes = {tuple(ds.element_spec[0].shape[1:]) for ds in datasets}
    if len(shapes) != 1 or None in next(iter(shapes)):
        return None
    if split == "train" and any(m.prep.sizes.get("val", 0) == 0 for m in members):
        return None
    return Stacked(models) if stackable(models) else None


class _Group:
    """K built models and one compiled round function over their zipped streams."""

    def __init__(self, members: list[Member], config: dict[str, Any], split: str,
                 options: EngineOptions = DEFAULT, steps: int | None = None):
        import keras
        import tensorflow as tf

        self.members = members
        self.options = options
        self.models, datasets = [], []
        with SEEDED:  # groups built in several threads (trials in parallel) take turns
            for m in members:
                # As fit_one: the global seed decides the weights, the dropout seeds and (with
                # the op seed) the shuffle order, so each stream is made right after its model.
                set_seeds(m.seed)
                self.models.append(build_model(m.prep, config))
                datasets.append(m.prep.dataset(split, m.prep.batch_size(), shuffle=True, seed=m.seed))
        self.jit = options.xla if options.xla is not None else _use_xla(members, steps)
        stack = options.stack and (self.jit or _stack_without_xla(members))
        self.stacked = _stacked(self.models, members, datasets, split) if stack else None
        # Stacked members need one batch shape: every batch is filled up to the largest
        # member's batch size (each member still sees exactly its own batches).
        common = max(m.prep.batch_size() for m in members)
        streams = [_padded(ds, common if self.stacked else m.prep.batch_size()).repeat()
                   for m, ds in zip(members, datasets)]
        self.opts = [model.optimizer for model in self.models]  # build_model's Adam, per member
        for model, opt in zip(self.models, self.opts):
            opt.build(model.trainable_variables)
            internals.skip_all_reduce(opt)  # Keras' identity all-reduce leaks a graph per trace
        # Stacked members: one Adam over member-stacked state, each member's own rate. `live`:
        # the members the stacked step computes (all, until `compact` drops stopped ones).
        self.adam = None
        self.live = list(range(len(members)))
        if self.stacked is not None:  # a member's share of a stacked step, estimated (see `compact`)
            self.adam = StackedAdam(self.models, self.opts)
            steps = datasets[0].element_spec[0].shape[1]
            self._member_step_seconds = common * sample_macs(self.models[0], steps) / STACKED_MACS_PER_SECOND
        self.compactions: list[int] = []  # live members after each `compact`
        self.losses = [keras.losses.get(model.loss) for model in self.models]
        self.classify = [m.prep.task == "classify" for m in members]
        # No tf.data autotuning: freeing an iterator waits for its autotuning thread, whose
        # period grows to seconds (docs/engine.md, "Threads"). Tiny in-memory streams;
        # batches and order do not depend on it.
        options = tf.data.Options()
        options.autotune.enabled = False
        self.iterator = iter(tf.data.Dataset.zip(tuple(streams)).prefetch(tf.data.AUTOTUNE)
                             .with_options(options))
        # A stopped member's step is skipped (tf.cond), not only frozen by its zero rate;
        # stacked, its gradients are zeroed (a NaN member must not move its weights).
        self.active = tf.Variable(tf.ones(len(members), tf.bool), trainable=False)
        self._step = tf.function(self._stacked_step_py if self.stacked else self._step_py,
                                 jit_compile=self.jit)
        self._round = tf.function(self._round_py, reduce_retracing=True)
        # Trained with validation ("train" split): every member's val split, evaluated per round.
        self.validate = _Validator(self) if split == "train" else None

    def _per_sample(self, i, y, pred):
        """(loss, metric) per sample for member i, as compile's loss and metric compute them."""
        import keras
        from keras import ops

        loss = self.losses[i](y, pred)
        if self.classify[i]:
            metric = keras.metrics.sparse_categorical_accuracy(ops.reshape(y, (-1, 1)), pred)
            metric = ops.reshape(metric, (-1,))
        else:
            # y as pred's shape: a one-value target (n,) against (n, 1) would broadcast to n x n
            y = ops.reshape(ops.cast(y, pred.dtype), ops.shape(pred))
            metric = ops.mean(ops.abs(y - pred), axis=-1)
        return loss, metric

    def _round_py(self, n):
        import tensorflow as tf

        k = len(self.models)
        sums = tf.zeros((k, 3), tf.float32)  # per member: loss sum, metric sum, samples
        for _ in tf.range(n):
            sums += self._step(next(self.iterator))
        return sums

    def _step_py(self, batch):
        import tensorflow as tf

        rows = []
        for i in range(len(self.models)):
            rows.append(tf.cond(self.active[i], lambda i=i: self._member_step(i, batch[i]),
                                lambda: tf.zeros((3,), tf.float32)))
        return tf.stack(rows)

    def _stacked_step_py(self, batch):
        """One gradient step of every live member through the stacked forward pass: one tape,
        the sum of the members' losses (disjoint weights: each member gets its own gradient),
        and the stacked Adam with each member's own rate. Every member's stream advances (its
        batch order stays fit_one's); members dropped by `compact` get zero rows."""
        import tensorflow as tf

        live = self.live
        with tf.GradientTape() as tape:
            preds = self.stacked([batch[i][0] for i in live], training=True)
            rows, means = {}, []
            for i, pred in zip(live, preds):
                _, y, w = batch[i]
                loss, metric = self._per_sample(i, y, pred)
                nb = tf.reduce_sum(w)
                mean = tf.reduce_sum(w * tf.cast(loss, tf.float32)) / nb  # the real rows' mean
                means.append(mean)
                rows[i] = tf.stack([mean * nb, tf.reduce_sum(w * tf.cast(metric, tf.float32)), nb])
            total = tf.add_n(means)
        grads = tape.gradient(total, self.adam.variables)  # nested: per member, per variable
        self.adam.apply(grads, tf.gather(self.active, live))
        zero = tf.zeros((3,), tf.float32)
        return tf.stack([rows.get(i, zero) for i in range(len(self.models))])

    def _member_step(self, i, batch):
        """One gradient step of member i: (loss sum, metric sum, rows) of its real rows."""
        import tensorflow as tf

        model = self.models[i]
        x, y, w = batch
        nb = tf.reduce_sum(w)
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss, metric = self._per_sample(i, y, pred)
            mean = tf.reduce_sum(w * tf.cast(loss, tf.float32)) / nb  # the real rows' mean
        variables = model.trainable_variables
        grads = tape.gradient(mean, variables)
        self.opts[i].apply_gradients(zip(grads, variables))
        return tf.stack([mean * nb, tf.reduce_sum(w * tf.cast(metric, tf.float32)), nb])

    def train(self, n: int) -> np.ndarray:
        import tensorflow as tf

        return self._round(tf.constant(n, tf.int64)).numpy()

    def compact(self, steps_left: int) -> bool:
        """Stacked: rebuild the stacked step over the members still training when that pays
        (a stacked step computes every live member, stopped or not). Weights, Adam moments,
        rates and streams carry over, so each member trains on as before. `steps_left`: the
        fewest steps the group still trains. Rebuilds when at most half the live members are
        active and, with `EngineOptions.compact` None, `_rebuild_pays` (an estimate from the
        model's multiply-adds, never timed: the same members rebuild at the same round
        whatever the machine's load); compact=True: whenever at most half are active;
        False: never. Returns whether it rebuilt."""
        force = self.options.compact
        if self.stacked is None or force is False:
            return False
        active = [i for i in self.live if bool(self.active[i].numpy())]
        if not active or len(active) > len(self.live) // 2 or steps_left < 1:
            return False
        if force is not True and not _rebuild_pays(len(self.live), len(active), self._member_step_seconds,
                                                   steps_left):
            return False
        import tensorflow as tf

        self.adam = self.adam.subset([self.live.index(i) for i in active])
        self.live = active
        self.stacked = Stacked([self.models[i] for i in active])
        self._step = tf.function(self._stacked_step_py, jit_compile=self.jit)
        self._round = tf.function(self._round_py, reduce_retracing=True)
        if self.validate is not None:
            self.validate.rebuild()
        self.compactions.append(len(active))
        return True

    def set_lr(self, i: int, lr: float) -> None:
        self.opts[i].learning_rate.assign(lr)  # the rate the model's optimizer ends with
        if self.stacked is not None and i in self.live:
            self.adam.set_lr(self.live.index(i), lr)

    def stop(self, i: int) -> None:
        """Freeze member i exactly (rate 0) and skip its steps from now on."""
        self.set_lr(i, 0.0)
        self.active[i].assign(False)

    def lr(self, i: int) -> float:
        if self.stacked is not None and i in self.live:
            return self.adam.lr(self.live.index(i))
        return float(self.opts[i].learning_rate.numpy())


def _rebuild_pays(live: int, active: int, member_step_seconds: float, steps_left: int) -> bool:
    """Whether dropping `live - active` stopped members from a stacked step for the
    `steps_left` steps the group still trains saves more than a rebuild costs."""
    return (live - active) * member_step_seconds * steps_left > REBUILD_SECONDS


class _Validator:
    """Every member's val split, materialised once, evaluated in one call when small."""

    def __init__(self, group: _Group):
        import tensorflow as tf

        self.group = group
        self.chunks = []
        if group.stacked is not None:
            self._stacked_chunks()
            return
        for m in group.members:
            n = m.prep.sizes.get("val", 0)
            ds = m.prep.dataset("val", max(1, min(VAL_CHUNK, n)))
            self.chunks.append([b for b in ds])
        self.fused = sum(len(c) for c in self.chunks) <= 16
        self._eval = tf.function(self._eval_py, reduce_retracing=True)

    def _eval_py(self, chunks):
        import tensorflow as tf

        rows = []
        for i, member_chunks in enumerate(chunks):
            total = tf.zeros((3,), tf.float32)
            for x, y in member_chunks:
                pred = self.group.models[i](x, training=False)
                loss, metric = self.group._per_sample(i, y, pred)
                total += tf.stack([tf.reduce_sum(loss), tf.reduce_sum(tf.cast(metric, tf.float32)),
                                   tf.cast(tf.shape(loss)[0], tf.float32)])
            rows.append(total)
        return tf.stack(rows)

    def _stacked_chunks(self) -> None:
        """Stacked members: chunk j holds every member's rows j*C..(j+1)*C of its own val
        split, filled up to C with its first row at weight 0 (one shape for every chunk)."""
        import tensorflow as tf

        arrays = []
        for m in self.group.members:
            batches = list(m.prep.dataset("val", VAL_CHUNK).as_numpy_iterator())
            arrays.append((np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])))
        longest = max(len(y) for _, y in arrays)
        size = min(VAL_CHUNK, longest)
        for start in range(0, longest, size):
            rows = np.arange(start, start + size)
            chunk = []
            for x, y in arrays:
                real = rows < len(y)
                idx = np.where(real, rows, 0)
                chunk.append((tf.constant(x[idx]), tf.constant(y[idx]), tf.constant(real.astype("float32"))))
            self.chunks.append(tuple(chunk))
        self.rebuild()

    def rebuild(self) -> None:
        """A new evaluation function for the group's live members (after `_Group.compact`)."""
        import tensorflow as tf

        self._eval = tf.function(self._eval_stacked_py, jit_compile=self.group.jit)

    def _eval_stacked_py(self, chunk):
        import tensorflow as tf

        live = self.group.live
        preds = self.group.stacked([chunk[i][0] for i in live], training=False)
        rows = {}
        for i, pred in zip(live, preds):
            _, y, w = chunk[i]
            loss, metric = self.group._per_sample(i, y, pred)
            rows[i] = tf.stack([tf.reduce_sum(w * tf.cast(loss, tf.float32)),
                                tf.reduce_sum(w * tf.cast(metric, tf.float32)), tf.reduce_sum(w)])
        zero = tf.zeros((3,), tf.float32)
        return tf.stack([rows.get(i, zero) for i in range(len(chunk))])

    def __call__(self) -> np.ndarray:
        """(K, 3): val loss sum, metric sum, samples per member."""
        if self.group.stacked is not None:
            return sum(self._eval(chunk).numpy() for chunk in self.chunks)
        if self.fused:
            return self._eval(self.chunks).numpy()
        # Large validation splits: one member at a time keeps the graph small.
        out = np.zeros((len(self.chunks), 3), np.float32)
        for i, member_chunks in enumerate(self.chunks):
            for chunk in member_chunks:
                out[i] += self._eval([[chunk] if j == i else [] for j in range(len(self.chunks))]).numpy()[i]
        return out


@dataclass
class _Policy:
    """One member's EarlyStopping + ReduceLROnPlateau + TerminateOnNaN state, in rounds."""

    patience: int
    lr_patience: int
    best: float = math.inf
    best_round: int = 0
    wait: int = 0
    lr_best: float = math.inf
    lr_wait: int = 0
    stopped: bool = False
    weights: list | None = None

    def update(self, r: int, val_loss: float, train_loss: float, lr: float, model) -> float | None:
        """Apply one round's validation; return a new learning rate (or None for unchanged)."""
        if not np.isfinite(train_loss):  # TerminateOnNaN
            self.stopped = True
            return None
        new_lr = None
        # ReduceLROnPlateau(factor=0.5, min_lr=MIN_LR, min_delta=1e-4, cooldown=0)
        if val_loss < self.lr_best - 1e-4:
            self.lr_best, self.lr_wait = val_loss, 0
        else:
            self.lr_wait += 1
            if self.lr_wait >= self.lr_patience and lr > np.float32(MIN_LR):
                new_lr, self.lr_wait = max(lr * 0.5, MIN_LR), 0
        # EarlyStopping(patience, restore_best_weights=True, min_delta=0)
        self.wait += 1
        if val_loss < self.best or self.weights is None:
            if val_loss < self.best:
                self.best, self.best_round = val_loss, r
            self.wait = 0
            self.weights = model.get_weights()
        if self.wait >= self.patience and r > 0:
            self.stopped = True
        return new_lr


def fit_members(members: list[Member], config: dict[str, Any], schedule: Schedule, *,
                deadline: float | None = None, options: EngineOptions = DEFAULT) -> list[MemberResult]:
    """Train members of one configuration together; each ends at its own best round."""
    [results] = fit_groups([(members, config)], schedule, deadline=deadline, options=options)
    return results


def fit_groups(groups: list[tuple[list[Member], dict[str, Any]]],
               schedule: Schedule | list[Schedule], *, jobs: int = 1,
               deadline: float | list | None = None, options: EngineOptions = DEFAULT,
               errors: str = "raise") -> list:
    """Several independent groups (each: members of one configuration), `jobs` of them
    training at once in threads; one list of results per group, in order. `schedule` is one
    for all groups or one per group; `deadline` (time.time()) one for all, or one per group,
    each a time or a function giving it, called when the group starts training (so a group
    that waits for a thread gets its time from its own start). errors="return": a group that fails to build or train
    gets its exception in place of its results (the others finish). The models are built
    here, one group after another, and only the training runs in threads, so a group's
    members are the same models whatever `jobs` is."""
    n = len(groups)
    schedules = schedule if isinstance(schedule, list) else [schedule] * n
    keep = errors == "return"

    def guarded(fn, *args):
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - handed back to the caller (errors="return")
            if not keep:
                raise
            return e

    built = [guarded(_Group, members, config, "train", options, sched.epochs * sched.steps_per_epoch)
             if members else None for (members, config), sched in zip(groups, schedules)]

    deadlines = deadline if isinstance(deadline, list) else [deadline] * n

    def run(g, sched, until):
        if g is None:
            return []
        if isinstance(g, Exception):
            return g
        return guarded(_train, g, sched, until() if callable(until) else until)

    if jobs <= 1 or sum(isinstance(g, _Group) for g in built) <= 1:
        return [run(*args) for args in zip(built, schedules, deadlines)]
    from concurrent.futures import ThreadPoolExecutor

    with gc_paused(), ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cellpick-group") as pool:
        futures = [pool.submit(run, *args) for args in zip(built, schedules, deadlines)]
        return [f.result() for f in futures]


def _train(group: "_Group", schedule: Schedule, deadline: float | None) -> list[MemberResult]:
    """The validated training loop of one built group: rounds of steps, then each member's
    policy, until every member stops, the schedule ends or the deadline passes."""
    members = group.members
    t0 = time.perf_counter()
    validate = group.validate
    n = round_steps(schedule)
    spe = schedule.steps_per_epoch
    max_rounds = max(1, math.ceil(schedule.epochs * spe / n))
    patience = max(1, math.ceil(schedule.patience * spe / n))
    lr_patience = max(2, math.ceil(max(2, schedule.patience // 2) * spe / n))
    policies = [_Policy(patience, lr_patience) for _ in members]
    names = [_metric_name(m.prep) for m in members]
    histories = [{"loss": [], names[i]: [], "val_loss": [], f"val_{names[i]}": [], "learning_rate": []}
                 for i in range(len(members))]
    trained = [0] * len(members)
    round_seconds = []
    for r in range(max_rounds):
        lrs = [group.lr(i) for i in range(len(members))]
        t_round = time.perf_counter()
        train = group.train(n)
        round_seconds.append(time.perf_counter() - t_round)
        val = validate()
        for i, (pol, h) in enumerate(zip(policies, histories)):
            if pol.stopped:
                continue
            trained[i] = r + 1
            loss, metric = train[i, 0] / train[i, 2], train[i, 1] / train[i, 2]
            val_loss, val_metric = val[i, 0] / max(val[i, 2], 1), val[i, 1] / max(val[i, 2], 1)
            for key, v in (("loss", loss), (names[i], metric), ("val_loss", val_loss),
                           (f"val_{names[i]}", val_metric), ("learning_rate", lrs[i])):
                h[key].append(float(v))
            new_lr = pol.update(r, float(val_loss), float(loss), lrs[i], group.models[i])
            if pol.stopped:
                group.stop(i)
            elif new_lr is not None:
                group.set_lr(i, new_lr)
        if all(p.stopped for p in policies) or (deadline is not None and time.time() >= deadline):
            break
        # The group trains at least as long as its most patient active member may still wait.
        waits = [pol.patience - pol.wait for pol in policies if not pol.stopped]
        group.compact(n * min(max_rounds - r - 1, max(waits)))
    seconds = (time.perf_counter() - t0) / len(members)
    results = []
    for i, (model, pol) in enumerate(zip(group.models, policies)):
        if pol.weights is not None:
            model.set_weights(pol.weights)
        # The compiled optimizer keeps the rate it ended with, as after fit_one.
        results.append(MemberResult(model=model, history=histories[i], best_round=pol.best_round,
                                    steps=(pol.best_round + 1) * n, seconds=seconds,
                                    rounds_trained=trained[i], round_steps=n,
                                    by_deadline=not pol.stopped and trained[i] < max_rounds,
                                    extra={"xla": group.jit, "compactions": list(group.compactions),
                                           "first_round_seconds": round_seconds[0],
                                           "round_seconds": float(np.median(round_seconds[1:] or round_seconds))}))
    return results


def refit_members(members: list[Member], config: dict[str, Any], steps: list[int], *,
                  options: EngineOptions = DEFAULT) -> list:
    """Train each member on its prep's "trainval" split for its own number of steps, no
    validation (steps: MemberResult.steps of its validated run)."""
    if not members:
        return []
    if len(steps) != len(members):
        raise ValueError(f"refit_members needs one step count per member; got {len(steps)} "
                         f"for {len(members)} members")
    group = _Group(members, config, "trainval", options, steps=max(int(s) for s in steps))
    left = [max(1, int(s)) for s in steps]
    while any(left):
        n = min(s for s in left if s > 0)
        group.train(n)
        for i in range(len(left)):
            if left[i] > 0:
                left[i] -= n
                if left[i] == 0:
                    group.stop(i)
        group.compact(max(left))
    return group.models
