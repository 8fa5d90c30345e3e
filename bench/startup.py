"""Start-up latency of the CLI: `--help`, `fit --dry-run` and `predict`, median of N runs.

    python bench/startup.py [--runs 5] [--quick]

`predict` needs an export: one tiny fit (1 trial, 2 epochs) is made first in a temp folder.
Each command runs in a fresh process, as a user would start it.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _env

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data" / "airline_train.csv"
CLI = [sys.executable, "-m", "cellpick"]


def _time(cmd: list[str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 runs each")
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    _env.print_env()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([*CLI, "fit", str(DATA), "--horizon", "12", "--lookback", "24", "--cells", "gru",
                        "--units", "8", "--layers", "1", "--max-trials", "1", "--epochs", "2",
                        "--seeds", "1", "--quiet"], cwd=tmp, check=True, capture_output=True)
        rows = [
            ("cellpick --help", [*CLI, "--help"]),
            ("cellpick fit --dry-run (airline)", [*CLI, "fit", str(DATA), "--horizon", "12",
                                                  "--lookback", "24", "--dry-run"]),
            ("cellpick predict (airline, SavedModel)", [*CLI, "predict", "cellpick-model", str(DATA)]),
        ]
        print("\n| command | median s | min s | max s | runs |\n|---|---:|---:|---:|---:|")
        for name, cmd in rows:
            t = _time(cmd, tmp, runs)
            print(f"| `{name}` | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} | {runs} |",
                  flush=True)


if __name__ == "__main__":
    main()
