"""The generated input matrix of issue 35: every case of tests/inputs.py's all-pairs design
fitted at the tiniest budget, then predicted.

    nice -n 10 python bench/inputs.py [--only ID,...] [--limit N] [--layouts series,text]
        [--budget 60] [--grace 60] [--kill S] [--start N] [--logs DIR] [--markdown]

Each case is a subprocess `cellpick fit CSV <case args> --units 8 --layers 1 --max-trials 1
--epochs 1 --folds 2 --seeds 1 --time-budget <budget>s` (plus `--contestant-limit 30` when
`fit` has it) with its own MLflow store (a copy of an empty one: MLflow's schema migrations
cost seconds, paid once per store) and `--out`, killed at budget + grace seconds, then
`cellpick predict` on the same CSV (`--kill S`: let a fit run to S seconds instead, to tell a
slow fit, "late", from a hang, "timeout"). A case passes with exit 0 and a prediction per series
step or sample, all finite ("ok"), or, below the documented minimum, exit 2 with one line
naming the problem ("refused"). Prints one row per case as it finishes, then a summary
(counts by outcome, the slowest case); `--markdown` prints the table for bench/RESULTS.md.
Fit and predict output (with --debug tracebacks) go to `--logs` (one file per case).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import store_uri  # noqa: E402
from inputs import LAYOUTS, NA, _fit_flags, design, run_case  # noqa: E402

COLUMNS = ("case", "layout", "task", "horizon", "length", "defects", "options", "outcome",
           "exit", "seconds", "note")


def row(r) -> list[str]:
    c = r.case
    h = "-" if c.horizon == NA else (f"{c.h} (season)" if c.horizon == "season" else c.horizon)
    note = r.note if not r.notes else f"{r.note} [{'; '.join(r.notes)}]"
    return [c.id, c.layout, c.task, h, f"{c.length} ({c.n})", c.defect, c.options, r.outcome,
            "-" if r.code is None else str(r.code), f"{r.seconds:.0f}", note]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--limit", type=int, default=None, help="the first N cases")
    ap.add_argument("--layouts", default="", help=f"comma-separated, of {', '.join(LAYOUTS)}")
    ap.add_argument("--budget", type=int, default=60, help="--time-budget of each fit, seconds")
    ap.add_argument("--grace", type=int, default=60, help="seconds past the budget before a kill")
    ap.add_argument("--kill", type=int, default=None,
                    help="seconds before a fit is killed (default budget + grace); a fit that "
                         "passes after budget + grace is 'late'")
    ap.add_argument("--logs", default=None, help="folder for each case's fit/predict output")
    ap.add_argument("--markdown", action="store_true", help="the table as Markdown at the end")
    ap.add_argument("--start", type=int, default=0, help="skip the first N cases (resume a run)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)
    cases = design()
    if args.only:
        wanted = args.only.split(",")
        known = {c.id for c in cases}
        missing = [w for w in wanted if w not in known]
        if missing:
            ap.error(f"unknown case ids: {', '.join(missing)}")
        cases = [c for c in cases if c.id in wanted]
    if args.layouts:
        cases = [c for c in cases if c.layout in args.layouts.split(",")]
    cases = cases[args.start:]
    cases = cases[: args.limit] if args.limit else cases
    if args.list:
        for c in cases:
            print(c.id, c.n)
        return 0
    _env.print_env()
    flags = _fit_flags()
    print(f"{len(cases)} cases; budget {args.budget} s + {args.grace} s grace; extra flags: "
          f"{' '.join(flags) or 'none'}", flush=True)
    logs = Path(args.logs) if args.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    results = []
    start = time.monotonic()
    print(" | ".join(COLUMNS), flush=True)
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="cellpick-inputs-") as tmp:
            r = run_case(case, Path(tmp), budget=args.budget, grace=args.grace, flags=flags,
                         log=logs / f"{case.id}.log" if logs else None,
                         store=store_uri(Path(tmp)), kill=args.kill)
        results.append(r)
        print(" | ".join(row(r)), flush=True)
    total = time.monotonic() - start
    counts = Counter(r.outcome for r in results)
    slowest = max(results, key=lambda r: r.seconds, default=None)
    print(f"\n{len(results)} cases in {total / 60:.1f} min: "
          + ", ".join(f"{k} {v}" for k, v in counts.most_common()), flush=True)
    if slowest:
        print(f"slowest: {slowest.case.id} {slowest.seconds:.0f} s ({slowest.outcome})")
    if args.markdown:
        print("\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
        for r in results:
            print("| " + " | ".join(v.replace("|", "/") for v in row(r)) + " |")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
