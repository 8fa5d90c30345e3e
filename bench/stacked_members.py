"""What vectorised members would buy (issue 15's "10 members cost at most 3x one"): a prototype.

    python bench/stacked_members.py [--ks 1 3 5 10 15] [--rounds 10] [--cell-check]

cellpick's members engine (cellpick/members.py) trains K members as K ordinary Keras models
in one graph: the per-step framework overhead is shared, but each member's recurrent loop
runs on its own, so a round costs K times one member's (bench/RESULTS.md, "Training
engine"). This script measures the alternative before anyone builds it: the same K GRU
members with their weights stacked on a member axis, so that one recurrent loop (`tf.scan`
over time steps) runs all of them with one batched matmul (`einsum` over the member axis)
per step, and Adam (elementwise, so K members' optimizer states stay independent) takes
a per-member learning rate (halving or freezing a member is an assignment, as in
members.py).

Shapes: the airline recipe's (batch 8, lookback 24, 1 feature, 12 outputs), GRU 16 x 2
layers, rounds of 24 gradient steps (members.ROUND_STEPS) on random data of those shapes
(the speed of a step does not depend on the values). For each K it prints the compile
(first round) and the median later round of: the prototype with XLA, without XLA, and
cellpick's engine (`members._Group` through `fit_members` on the airline plan, GRU 16x2;
its `round_seconds`). The prototype's GRU is checked against `keras.layers.GRU` (Keras 3,
reset_after=True) with member k's slice of the stacked weights: the largest output
difference is printed (the prototype computes the same cell).

It is a measurement, not a code path: nothing in cellpick imports it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import _env

BATCH, STEPS_IN, FEATURES, UNITS, OUT, ROUND = 8, 24, 1, 16, 12, 24


def _tf():
    from cellpick._quiet import tensorflow

    return tensorflow()


def gru_stacked(x, kernel, recurrent, bias, units):
    """Keras 3's GRU (reset_after=True, gates z, r, h) for K members at once.
    x: (K, B, T, f); kernel (K, f, 3u); recurrent (K, u, 3u); bias (K, 2, 3u).
    Returns every step's state, (K, B, T, u)."""
    tf = _tf()
    xw = tf.einsum("kbtf,kfg->kbtg", x, kernel) + bias[:, None, None, 0, :]
    h0 = tf.zeros((tf.shape(x)[0], tf.shape(x)[1], units))

    def step(h, xt):
        hu = tf.einsum("kbu,kug->kbg", h, recurrent) + bias[:, None, 1, :]
        xz, xr, xh = tf.split(xt, 3, axis=-1)
        hz, hr, hh = tf.split(hu, 3, axis=-1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return z * h + (1.0 - z) * tf.tanh(xh + r * hh)

    states = tf.scan(step, tf.transpose(xw, [2, 0, 1, 3]), initializer=h0)
    return tf.transpose(states, [1, 2, 0, 3])


def stacked_params(k: int, seed: int = 0) -> list:
    import numpy as np

    tf = _tf()
    rng = np.random.default_rng(seed)
    params = []
    for fin in (FEATURES, UNITS):  # two GRU layers
        lim = (6.0 / (fin + 3 * UNITS)) ** 0.5
        params += [rng.uniform(-lim, lim, (k, fin, 3 * UNITS)),
                   rng.normal(0, 0.1, (k, UNITS, 3 * UNITS)),
                   rng.normal(0, 0.01, (k, 2, 3 * UNITS))]
    params += [rng.normal(0, 0.1, (k, UNITS, OUT)), np.zeros((k, OUT))]
    return [tf.Variable(p.astype("float32")) for p in params]


def forward(params, x):
    tf = _tf()
    h = gru_stacked(x, *params[0:3], UNITS)
    h = gru_stacked(h, *params[3:6], UNITS)[:, :, -1]
    return tf.einsum("kbu,kuo->kbo", h, params[6]) + params[7][:, None]


def check_against_keras() -> float:
    """Member 1 of 3, through two keras.layers.GRU and a Dense with its weight slices."""
    import keras
    import numpy as np

    tf = _tf()
    params = stacked_params(3)
    x = np.random.default_rng(1).random((3, 5, STEPS_IN, FEATURES), dtype=np.float32)
    ours = forward(params, tf.constant(x)).numpy()[1]
    inp = keras.Input((STEPS_IN, FEATURES))
    g1, g2 = keras.layers.GRU(UNITS, return_sequences=True), keras.layers.GRU(UNITS)
    d = keras.layers.Dense(OUT)
    model = keras.Model(inp, d(g2(g1(inp))))
    w = [p.numpy()[1] for p in params]
    g1.set_weights(w[0:3])
    g2.set_weights(w[3:6])
    d.set_weights(w[6:8])
    return float(np.max(np.abs(model.predict(x[1], verbose=0) - ours)))


def stacked_rounds(k: int, jit: bool, rounds: int) -> tuple[float, float]:
    """(first round incl. trace and compile, median later round) of the stacked prototype."""
    import numpy as np

    tf = _tf()
    params = stacked_params(k)
    m = [tf.Variable(tf.zeros_like(p)) for p in params]
    v = [tf.Variable(tf.zeros_like(p)) for p in params]
    lr = tf.Variable(np.full((k,), 1e-3, "float32"))  # per member: halve or freeze by assignment
    t = tf.Variable(0.0)
    rng = np.random.default_rng(0)
    xs = tf.constant(rng.random((ROUND, k, BATCH, STEPS_IN, FEATURES), dtype=np.float32))
    ys = tf.constant(rng.random((ROUND, k, BATCH, OUT), dtype=np.float32))

    @tf.function(jit_compile=jit)
    def one_round():
        total = tf.constant(0.0)
        for s in tf.range(ROUND):
            with tf.GradientTape() as tape:
                per_member = tf.reduce_mean((forward(params, xs[s]) - ys[s]) ** 2, axis=[1, 2])
                loss = tf.reduce_sum(per_member)  # disjoint weights: each gets its own gradient
            grads = tape.gradient(loss, params)
            t.assign_add(1.0)
            for p, g, mm, vv in zip(params, grads, m, v):
                mm.assign(0.9 * mm + 0.1 * g)
                vv.assign(0.999 * vv + 0.001 * g * g)
                rate = tf.reshape(lr, [k] + [1] * (len(p.shape) - 1))
                p.assign_sub(rate * (mm / (1 - 0.9 ** t)) / (tf.sqrt(vv / (1 - 0.999 ** t)) + 1e-7))
            total += loss
        return total

    t0 = time.perf_counter()
    one_round()
    first = time.perf_counter() - t0
    later = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        one_round()
        later.append(time.perf_counter() - t0)
    return first, statistics.median(later)


def engine_round(k: int) -> tuple[float, float]:
    """cellpick's members engine on the airline plan, GRU 16x2: (first round, later round)."""
    from pathlib import Path

    from cellpick.config import resolve
    from cellpick.engine.members import Member, fit_members
    from cellpick.engine.train import Schedule
    from cellpick.pipeline import make_plan

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "airline.toml"
    plan = make_plan(resolve({"lookback": STEPS_IN}, recipe))
    config = {"cell": "gru", "units": UNITS, "layers": 2, "dropout": 0.0, "learning_rate": 1e-3,
              "scaling": "relative", "linear": False}
    spe = plan.schedule.steps_per_epoch
    # 12 rounds of 4 epochs and no early stop within them: enough later rounds for a median
    schedule = Schedule(epochs=48, patience=48, steps_per_epoch=spe)
    res = fit_members([Member(plan.prep, 1000 * (i + 1)) for i in range(k)], config, schedule)
    return res[0].extra["first_round_seconds"], res[0].extra["round_seconds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5, 10, 15])
    ap.add_argument("--rounds", type=int, default=10, help="later rounds timed (median)")
    args = ap.parse_args(argv)
    _env.print_env()
    tf = _tf()
    tf.config.experimental.enable_op_determinism()  # as cellpick trains on a CPU
    print(f"- prototype GRU against keras.layers.GRU (member 1 of 3): max |diff| = "
          f"{check_against_keras():.2e}")
    rows = []
    for k in args.ks:
        xla = stacked_rounds(k, True, args.rounds)
        plain = stacked_rounds(k, False, args.rounds)
        engine = engine_round(k)
        rows.append((k, xla, plain, engine))
        print(f"  K={k}: stacked XLA {xla[1] * 1e3:.0f} ms, stacked {plain[1] * 1e3:.0f} ms, "
              f"engine {engine[1] * 1e3:.0f} ms a round", flush=True)
    one = {name: rows[0][i][1] for i, name in ((1, "xla"), (2, "plain"), (3, "engine"))} \
        if rows and rows[0][0] == 1 else None
    print()
    print("| K | stacked, XLA: compile / round (ms) | x K=1 | stacked, no XLA: first / round (ms) "
          "| x K=1 | engine today: first / round (ms) | x K=1 | engine / stacked XLA |")
    print("|---|---|---|---|---|---|---|---|")
    for k, xla, plain, engine in rows:
        def rel(name, value):
            return f"{value / one[name]:.2f}x" if one else "-"
        print(f"| {k} | {xla[0]:.1f} s / {xla[1] * 1e3:.0f} | {rel('xla', xla[1])} "
              f"| {plain[0]:.1f} s / {plain[1] * 1e3:.0f} | {rel('plain', plain[1])} "
              f"| {engine[0]:.1f} s / {engine[1] * 1e3:.0f} | {rel('engine', engine[1])} "
              f"| {engine[1] / xla[1]:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
