"""How stable is the data-level stage's choice over the fit's seed? (issue 18)

    python bench/datalevel_stability.py [--recipe airline] [--seeds 1 2 3 4 5] [--units 3 5]
        [--ref-seeds 1]

Runs only the data-level stage (`datalevel.choose`, no MLflow, no search, no verdict) of a
recipe's plan for each `--seed`, once per number of reference units (`--units`: how many of
the verdict's repetition-0 resampling units the GRU-16 reference trains on; cellpick uses
`datalevel.REFERENCE_UNITS`) and reference seeds per unit (`--ref-seeds`: a unit's score is
the mean of that many reference models; cellpick uses `datalevel.REFERENCE_SEEDS`), and prints each run's choice and every candidate's per-unit
scores. A choice that changes with the seed is decided by the reference's noise, not by
the data. Scores are the units' scoring blocks (cross-validation); no test file is read.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="airline")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--units", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--ref-seeds", type=int, nargs="+", default=[1])
    args = ap.parse_args(argv)
    _env.print_env()

    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.engine.threads import deterministic
    from cellpick.stages import datalevel
    from cellpick.stages.plan import make_plan
    from cellpick.tracking import data_run_name

    deterministic(tensorflow())
    recipe = ROOT / "recipes" / f"{args.recipe}.toml"
    rows = []
    for units in args.units:
        for ref_seeds in args.ref_seeds:
            datalevel.REFERENCE_UNITS = units  # the module constants the stage reads
            datalevel.REFERENCE_SEEDS = ref_seeds
            for seed in args.seeds:
                plan = make_plan(resolve({"seed": seed}, recipe))
                t0 = time.perf_counter()
                _, choice = datalevel.choose(plan, tracker=None)
                secs = time.perf_counter() - t0
                rows.append(((units, ref_seeds), seed, choice.values, secs))
                print(f"  units {units} x {ref_seeds} seeds, --seed {seed}: {choice.values} ({secs:.0f} s)",
                      flush=True)
                for c in choice.candidates:
                    scores = " ".join(f"{s:.2f}" for s in c.scores)
                    print(f"      {data_run_name(c.values)}: {scores} -> median {c.score:.3f}", flush=True)
    print()
    print("| reference units x seeds | choices over the seeds | most common | same as most common | seconds a stage (median) |")
    print("|---|---|---|---|---|")
    for units, ref_seeds in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == (units, ref_seeds)]
        keys = [tuple(sorted(r[2].items())) for r in mine]
        common, n = Counter(keys).most_common(1)[0]
        secs = sorted(r[3] for r in mine)[len(mine) // 2]
        shown = "; ".join(f"seed {r[1]}: " + ", ".join(f"{k}={v}" for k, v in sorted(r[2].items()))
                          for r in mine)
        print(f"| {units} x {ref_seeds} | {shown} | {dict(common)} | {n} of {len(mine)} | {secs:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
