"""Members without XLA: K Keras models called one by one against one stacked step.

    PYTHONPATH=. python bench/stack_no_xla.py groups [--ks 2 3 4 6] [--recipes ...] [--configs 8x1 16x2]
    PYTHONPATH=. python bench/stack_no_xla.py fits [--repeats 2]

A group trains without XLA when its schedule is short (members.XLA_FROM_STEPS: an explicit
small --epochs, the tests' tiny fits) or on a GPU. Called one by one, its K models put K
recurrent loops into the step (about a second of tracing each); `stacked.Stacked` traces one
loop for all K. members._stack_without_xla stacks such groups on a CPU from
members.STACK_FROM_MEMBERS members.

- groups: one `members._Group` per K, recipe (its data-level values given) and
  configuration (cell `--cell`, units x layers, dropout 0), without XLA, each in a fresh
  process, one engine after the other: `one by one` (EngineOptions(stack=False)) and `stacked`
  (STACK_FROM_MEMBERS lowered to 2 in the child, so that K=2 is measured stacked too).
  Times: build (models, optimizers, streams), first step (trace, graph set-up and one
  gradient step), first validation (its trace and one call), and the fastest of three
  later rounds of 24 steps.
- fits: whole tiny fits as the tests run them (conftest.tiny: 1 trial per cell, 2 epochs,
  2 folds x 2 seeds, units 8, 1 layer): GunPoint's 36-sequence sample (tests/test_fit_e2e.py,
  3 folds), GunPoint, JapaneseVowels and airline (data-level values given), each in a fresh
  process, one by one (every group with EngineOptions(stack=False), the engine before:
  _env.engine_everywhere) against the default, alternating.
  Their verdict groups (folds x seeds members) are the groups stacked.

Results: bench/RESULTS.md, "Stacked without XLA".
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import _env  # noqa: E402

GROUP_CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1] + "/bench")
import _env
from threads import RECIPE_VALUES, trial_config
from cellpick._quiet import tensorflow
tf = tensorflow()
tf.config.experimental.enable_op_determinism()
from cellpick.engine import members
from cellpick.engine.options import EngineOptions
from cellpick.config import resolve
from cellpick.pipeline import make_plan
members.STACK_FROM_MEMBERS = 2
recipe, cell, units, layers, k = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
options = EngineOptions(xla=False, **json.loads(sys.argv[7]))
plan = make_plan(resolve(RECIPE_VALUES[recipe], Path(sys.argv[1]) / "recipes" / f"{recipe}.toml"))
config = trial_config(plan.prep, {"units": units, "layers": layers, "dropout": 0.0, "learning_rate": 3e-3}, cell)
t0 = time.perf_counter()
g = members._Group([members.Member(plan.prep, 43 + i) for i in range(k)], config, "train", options)
t1 = time.perf_counter()
g.train(1)
t2 = time.perf_counter()
g.validate()
t3 = time.perf_counter()
rounds = []
for _ in range(3):
    t = time.perf_counter()
    g.train(24)
    rounds.append(time.perf_counter() - t)
print(json.dumps({"stacked": g.stacked is not None, "build": t1 - t0, "first": t2 - t1,
                  "validation": t3 - t2, "round": min(rounds)}))
"""

FIT_CHILD = r"""
import json, sys, time
from pathlib import Path
import pandas as pd
sys.path.insert(0, sys.argv[1] + "/tests")
sys.path.insert(0, sys.argv[1] + "/bench")
from conftest import DATA_LEVEL, store_uri, tiny
import _env
import cellpick
if json.loads(sys.argv[4]):
    _env.engine_everywhere(**json.loads(sys.argv[4]))
data, work = Path(sys.argv[1]) / "recipes" / "data", Path(sys.argv[3])
name = sys.argv[2]
if name == "gp36":
    from sklearn.model_selection import train_test_split
    frame = pd.read_csv(data / "GunPoint_train.csv")
    small, _ = train_test_split(frame, train_size=36, stratify=frame["label"], random_state=7)
    small.to_csv(work / "gp36.csv", index=False)
    path, options = work / "gp36.csv", tiny(target="label", cells="gru,rnn", folds=3, patch=6)
elif name == "gunpoint":
    path, options = data / "GunPoint_train.csv", tiny(target="label", cells="gru,rnn", patch=6)
elif name == "japanese_vowels":
    path, options = data / "JapaneseVowels_train.csv", tiny(cells="lstm,gru")
else:
    path, options = data / "airline_train.csv", tiny(horizon=12, lookback=24, cells="lstm,gru", **DATA_LEVEL)
t = time.perf_counter()
result = cellpick.fit(path, tracking_uri=store_uri(work), out=str(work / "model"), quiet=True, **options)
seconds = time.perf_counter() - t
v = result.verdict
print(json.dumps({"seconds": seconds, "winner": result.config["cell"], "decision": v["decision"],
                  "cv": {c: round(t["mean"], 4) for c, t in v["cells"].items()}}))
"""

ENGINES = {"one by one": {"stack": False}, "stacked": {}}  # EngineOptions fields


def _child(code: str, args: list[str], options: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), *args, json.dumps(options)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode:
        raise SystemExit(f"child failed ({' '.join(args)}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def groups(args) -> None:
    print("| recipe | cell | units x layers | K | engine | build s | first step s | first validation s | round of 24 s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        for spec in args.configs:
            units, layers = spec.split("x")
            for k in args.ks:
                for engine, options in ENGINES.items():
                    r = _child(GROUP_CHILD, [recipe, args.cell, units, layers, str(k)], options)
                    assert r["stacked"] == (engine == "stacked"), r
                    print(f"| {recipe} | {args.cell} | {spec} | {k} | {engine} | {r['build']:.2f} | {r['first']:.2f} "
                          f"| {r['validation']:.2f} | {r['round']:.3f} |", flush=True)


def fits(args) -> None:
    print("| fit | repeat | engine | seconds | winner (decision) | cells' CV score |")
    print("|---|---|---|---|---|---|")
    for name in args.fits:
        for repeat in range(1, args.repeats + 1):
            for engine, options in ENGINES.items():
                with tempfile.TemporaryDirectory() as work:
                    r = _child(FIT_CHILD, [name, work], options)
                cv = ", ".join(f"{c} {s}" for c, s in sorted(r["cv"].items()))
                print(f"| {name} | {repeat} | {engine} | {r['seconds']:.1f} | {r['winner']} ({r['decision']}) "
                      f"| {cv} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    g = sub.add_parser("groups")
    g.add_argument("--recipes", nargs="+", default=["gunpoint", "japanese_vowels", "airline"])
    g.add_argument("--configs", nargs="+", default=["8x1", "16x2"])
    g.add_argument("--ks", type=int, nargs="+", default=[2, 3, 4, 6])
    g.add_argument("--cell", default="gru")
    f = sub.add_parser("fits")
    f.add_argument("--fits", nargs="+", default=["gp36", "gunpoint", "japanese_vowels", "airline"])
    f.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    _env.print_env()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"- started {started}\n")
    {"groups": groups, "fits": fits}[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
