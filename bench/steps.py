"""Gradient steps behind a whole fit's search and verdict, old code against new (issue 15).

    python bench/steps.py RECORDS.json DIR [RECORDS.json DIR ...]

Reads the records `bench/engine.py fits --json RECORDS.json --keep DIR` wrote and the MLflow
store each fit left in DIR (DIR/RECIPE-SIDE-REPEAT/mlflow.db), and prints, per fit, the search's and the verdict's models,
the gradient steps they trained, the stage's wall seconds and its milliseconds a step.
"Equal work" in engine.py counts trials, seeds and refits; two fits with the same counts can
still train different numbers of steps (early stopping reads another split, validation comes
every epoch in the old code and every round in the new), and this says how many.

Steps per model come from the runs' logged history: the old code logs one point an epoch
(steps an epoch from the fit's `epochs` and `patience` params, inverted through
`train.Schedule.for_data`'s default rule), the new code one a round (`members.round_steps`
of the same schedule). Both are exact for the search's split; a verdict fold's training part
differs from it by a few samples, so its epoch length may differ by a step (the round's does
not on these recipes: 24 steps). The refit is not logged as runs by either side: not counted.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cellpick.engine.members import round_steps  # noqa: E402
from cellpick.engine.train import Schedule  # noqa: E402


def default_schedule(epochs: int, patience: int) -> Schedule:
    """The default schedule with this cap and patience (its epoch length found by trying each:
    `Schedule.for_data(spe, 1, None)` is the rule for an epoch of spe steps)."""
    for spe in range(1, 10_000):
        schedule = Schedule.for_data(spe, 1, None)
        if (schedule.epochs, schedule.patience) == (epochs, patience):
            return schedule
    raise ValueError(f"no epoch length gives epochs={epochs}, patience={patience}")


def store_steps(db: Path, side: str) -> dict[str, dict]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    fit = con.execute("select run_uuid from runs where name like 'fit-%' order by start_time").fetchone()[0]
    params = dict(con.execute("select key, value from params where run_uuid = ?", (fit,)).fetchall())
    schedule = default_schedule(int(params["epochs"]), int(params["patience"]))
    per_point = schedule.steps_per_epoch if side == "old" else round_steps(schedule)
    out = {"search": {"models": 0, "steps": 0, "seconds": 0.0},
           "verdict": {"models": 0, "steps": 0, "seconds": 0.0}}
    rows = con.execute("select name, run_uuid, (end_time - start_time) / 1000.0 from runs").fetchall()
    for name, run, seconds in rows:
        stage = "search" if name[:1] == "t" and name[1:3].isdigit() else "verdict" if name.startswith("v-") else None
        if stage is None:
            continue
        points = con.execute("select count(*) from metrics where run_uuid = ? and key = 'loss'",
                             (run,)).fetchone()[0]
        out[stage]["models"] += 1
        out[stage]["steps"] += points * per_point
        out[stage]["seconds"] += seconds or 0.0
    out["per_point"] = per_point
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="RECORDS.json DIR")
    args = ap.parse_args(argv)
    if len(args.pairs) % 2:
        ap.error("give each records file with its --keep folder: RECORDS.json DIR [...]")
    print("| recipe | code | steps a point | search models | search steps | search s | ms a step "
          "| trial-seconds | verdict models | verdict steps | verdict s | ms a step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path, keep in zip(args.pairs[::2], args.pairs[1::2]):
        for fit in json.loads(Path(path).read_text())["fits"]:
            if "error" in fit:
                continue
            work = Path(keep) / f"{fit['recipe']}-{fit['code']}-{fit['repeat']}"
            s = store_steps(work / "mlflow.db", fit["code"])
            cells = [fit["recipe"], f"{fit['code']} {fit['commit']}", str(s["per_point"])]
            for stage in ("search", "verdict"):
                wall = fit["stages"][stage]
                st = s[stage]
                cells += [str(st["models"]), str(st["steps"]), f"{wall:.1f}",
                          f"{1000 * wall / st['steps']:.1f}" if st["steps"] else "-"]
                if stage == "search":
                    cells.append(f"{st['seconds']:.1f}")
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
