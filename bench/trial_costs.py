"""Where one search trial's time goes: its fixed costs against its rounds, with and without XLA.

    PYTHONPATH=. python bench/trial_costs.py [--recipes airline gunpoint japanese_vowels]
        [--cells lstm gru rnn] [--rounds 5]

The search trains each trial as a single member of the members engine
(search._train_on_members), without XLA (members._use_xla: one member does not earn back the
compile). For each recipe (its data-level values given, as bench/threads.py gives them) and
cell, one trial's model (the candidate below, built as space.hypermodel builds it:
bench/threads.py trial_config) is timed in its parts, each in this process, one after
another, once with the round's step as the search compiles it and once XLA-compiled:

    build       the Keras model, its optimizer and data streams (members._Group)
    trace       tracing the round function (Python: Keras layers called in graph mode)
    first call  its first call: TensorFlow's graph set-up (grappler) and, with XLA, the compile,
                then one round of steps
    validation  the first validation (its trace and set-up), then a later one
    round       the median of `--rounds` later rounds of round_steps(schedule) steps

A trial pays build + trace + first call + first validation once, then one round and one
validation per round (up to 50 rounds in the default schedule; patience ~9 rounds).
Results: bench/RESULTS.md, "A search trial's fixed costs".
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import _env  # noqa: E402
from threads import RECIPE_VALUES, trial_config  # noqa: E402

CANDIDATE = {"units": 16, "layers": 2, "dropout": 0.0, "learning_rate": 3e-3}


def costs(plan, cell: str, xla: bool, rounds: int) -> dict[str, float]:
    import tensorflow as tf

    from cellpick.engine.members import Member, _Group, round_steps
    from cellpick.engine.options import EngineOptions

    n = round_steps(plan.schedule)
    t0 = time.perf_counter()
    group = _Group([Member(plan.prep, 43)], trial_config(plan.prep, CANDIDATE, cell), "train",
                   EngineOptions(xla=xla))
    t1 = time.perf_counter()
    group._round.get_concrete_function(tf.TensorSpec((), tf.int64))
    t2 = time.perf_counter()
    group.train(n)
    t3 = time.perf_counter()
    group.validate()
    t4 = time.perf_counter()
    group.validate()
    t5 = time.perf_counter()
    later = []
    for _ in range(rounds):
        t = time.perf_counter()
        group.train(n)
        later.append(time.perf_counter() - t)
    return {"build": t1 - t0, "trace": t2 - t1, "first call": t3 - t2, "first validation": t4 - t3,
            "validation": t5 - t4, "round": statistics.median(later), "steps": n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=list(RECIPE_VALUES), choices=list(RECIPE_VALUES))
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    _env.print_env()
    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.pipeline import make_plan

    tensorflow().config.experimental.enable_op_determinism()  # as a fit runs (plan.deterministic)
    print(f"- candidate {CANDIDATE}, one member (seed 43)\n")
    print("| recipe | cell | XLA | build s | trace s | first call s | first validation s "
          "| fixed s | later round s (steps) | validation s | rounds that pay the fixed cost |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        plan = make_plan(resolve(RECIPE_VALUES[recipe], ROOT / "recipes" / f"{recipe}.toml"))
        for cell in args.cells:
            for xla in (False, True):
                c = costs(plan, cell, xla, args.rounds)
                fixed = c["build"] + c["trace"] + c["first call"] + c["first validation"]
                per_round = c["round"] + c["validation"]
                print(f"| {recipe} | {cell} | {'on' if xla else 'off'} | {c['build']:.2f} "
                      f"| {c['trace']:.2f} | {c['first call']:.2f} | {c['first validation']:.2f} "
                      f"| {fixed:.2f} | {c['round']:.3f} ({c['steps']}) | {c['validation']:.3f} "
                      f"| {fixed / per_round:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
