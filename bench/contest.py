"""What the contestants' contract costs (cellpick/contest.py): the worker process's start per
task family, one job's round trip against the same contestant called in-process, and a
kill with the next job's new worker.

    PYTHONPATH=. python bench/contest.py [--repeats 3]

Rows: `start` is a new spawned worker ready to serve (interpreter, numpy/pandas, the family's
preloaded libraries); `job` is one fold's fit + predictions of a contestant through the
worker (the Prepared pickled in, predictions and the fitted record out), beside `in-process`,
the same fit and predictions called directly (the difference is the contract's overhead);
`kill` is a job that overruns a 1 s limit, then the next job on a fresh worker.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _plan(data: Path, **options):
    from cellpick.config import resolve
    from cellpick.stages.plan import make_plan

    return make_plan(resolve({"data": str(data), **options}))


def _cases():
    data = ROOT / "recipes" / "data"
    return [
        ("forecast", "airline (132 rows)", _plan(data / "airline_train.csv", horizon=12, lookback=24,
                                                 folds=2, seeds=1), ["ets", "arima", "ridge"]),
        ("sequence", "GunPoint (50 x 150)", _plan(data / "GunPoint_train.csv", folds=2, seeds=1),
         ["minirocket", "1nn"]),
    ]


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from cellpick.data.prepared import BASELINE_LIMIT
    from cellpick.engine import isolation as contest
    from cellpick.models.contestants import fit_one

    print("\n".join(_env.describe()))
    print()
    print("| family | data | what | median s | min s | max s |")
    print("|---|---|---|---|---|---|")
    for family, label, plan, names in _cases():
        prep = plan.resampling.units[0].prep
        starts = []
        for _ in range(args.repeats):
            w = contest.Worker(family)
            t0 = time.perf_counter()
            w._ensure()
            starts.append(time.perf_counter() - t0)
            w.close()
        print(f"| {family} | {label} | start | {_median(starts):.2f} | {min(starts):.2f} | "
              f"{max(starts):.2f} |")
        w = contest.Worker(family)
        w._ensure()
        for name in names:
            through, direct = [], []
            for _ in range(args.repeats):
                got = w.run(contest.Job(name, prep, plan.season, limit=BASELINE_LIMIT), 600)
                assert got.status == "ok", got.reason
                through.append(got.seconds)
                t0 = time.perf_counter()
                fit_one(name, prep, season=plan.season).predict("score", limit=BASELINE_LIMIT)
                direct.append(time.perf_counter() - t0)
            print(f"| {family} | {label} | job {name} | {_median(through):.3f} | {min(through):.3f} | "
                  f"{max(through):.3f} |")
            print(f"| {family} | {label} | in-process {name} | {_median(direct):.3f} | "
                  f"{min(direct):.3f} | {max(direct):.3f} |")
        kills = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            w.run(contest.Job("contestants:sleeps", prep, plan.season), 1.0)
            got = w.run(contest.Job(names[0], prep, plan.season, limit=BASELINE_LIMIT), 600)
            assert got.status == "ok", got.reason
            kills.append(time.perf_counter() - t0)
        print(f"| {family} | {label} | kill at 1 s + next job on a new worker | {_median(kills):.2f} | "
              f"{min(kills):.2f} | {max(kills):.2f} |")
        w.close()


if __name__ == "__main__":
    main()
