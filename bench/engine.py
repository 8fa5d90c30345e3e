"""Per-model wall cost of K members trained together in one graph against K separate
`fit_one` trainings, on the airline recipe's shapes.

    python bench/engine.py [--ks 1 3 5 10] [--solo 3] [--xla auto|on|off] [--config ...]

Data: recipes/airline.toml on recipes/data/airline_train.csv, prepared as `cellpick fit`
prepares it (`pipeline.make_plan`: 45 training windows, batch 8, 6 steps an epoch, the default
step-counted schedule: up to 1200 steps, patience 204 steps). One configuration (default
LSTM 16x2, relative scaling, linear path, the issue's probe), seeds 1000, 2000, ...

Members: `members.fit_members` with K members (seeds 1000..1000K), wall time from building
the models to the restored weights, so it includes tracing and XLA compilation (reported
separately as "first round": trace + compile + one round of steps). Separate: `train.fit_one`
for `--solo` seeds one after another; K separate trainings cost K times their mean (each is
independent of the others, so timing all 10 would only repeat the measurement). Both use
early stopping, so their step counts differ per seed: the table reports the mean gradient
steps and the median best val_loss (same configuration, same scale) next to the times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "airline.toml"
CONFIG = {"cell": "lstm", "units": 16, "layers": 2, "dropout": 0.0, "learning_rate": 1e-3,
          "scaling": "relative", "linear": True}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5, 10])
    ap.add_argument("--solo", type=int, default=3, help="separate fit_one trainings to time")
    ap.add_argument("--xla", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--cell", default=CONFIG["cell"])
    args = ap.parse_args(argv)
    if args.xla != "auto":
        os.environ["CELLPICK_XLA"] = "1" if args.xla == "on" else "0"
    _env.print_env()

    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.members import Member, fit_members
    from cellpick.pipeline import make_plan
    from cellpick.train import best_epoch, fit_one

    tf = tensorflow()
    tf.config.experimental.enable_op_determinism()  # as pipeline.run on a CPU
    plan = make_plan(resolve({}, RECIPE))
    prep, schedule = plan.prep, plan.schedule
    config = {**CONFIG, "cell": args.cell}
    print(f"- data: {prep.sizes}, batch {prep.batch_size()}, {schedule}, config {config}")

    solo_s, solo_steps, solo_loss = [], [], []
    for k in range(args.solo):
        _, history, secs = fit_one(prep, config, 1000 * (k + 1), schedule)
        solo_s.append(secs)
        solo_steps.append(len(history["val_loss"]) * schedule.steps_per_epoch)
        solo_loss.append(history["val_loss"][best_epoch(history)])
        print(f"  fit_one seed {1000 * (k + 1)}: {secs:.1f} s, {solo_steps[-1]} steps", flush=True)
    solo = statistics.mean(solo_s)

    rows = []
    for k in args.ks:
        t0 = time.perf_counter()
        results = fit_members([Member(prep, 1000 * (i + 1)) for i in range(k)], config, schedule)
        wall = time.perf_counter() - t0
        extra = results[0].extra
        steps = statistics.mean(r.rounds_trained * r.round_steps for r in results)
        loss = statistics.median(r.history["val_loss"][r.best_round] for r in results)
        rows.append((k, wall, extra, steps, loss))
        print(f"  members K={k}: {wall:.1f} s (first round {extra['first_round_seconds']:.1f} s)", flush=True)

    one = rows[0][1] if rows and rows[0][0] == 1 else None
    print()
    print(f"fit_one, one at a time ({args.solo} seeds): {solo:.1f} s per model, "
          f"{statistics.mean(solo_steps):.0f} steps, median best val_loss {statistics.median(solo_loss):.4f}")
    print()
    print("| K | XLA | members wall (s) | first round: trace+compile (s) | later round (s) "
          "| per model (s) | K x fit_one (s) | speed-up per model | wall / one member | wall / one fit_one "
          "| mean steps | median best val_loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, wall, extra, steps, loss in rows:
        rel_one = f"{wall / one:.2f}x" if one else "-"
        print(f"| {k} | {'on' if extra['xla'] else 'off'} | {wall:.1f} | {extra['first_round_seconds']:.1f} "
              f"| {extra['round_seconds']:.3f} | {wall / k:.1f} | {k * solo:.1f} | {k * solo / wall:.1f}x "
              f"| {rel_one} | {wall / solo:.2f}x | {steps:.0f} | {loss:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
