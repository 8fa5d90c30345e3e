"""`cellpick fit --time-budget` at the command line: the dry run prints the budget's division
(one more line, the rest unchanged) and a budget below the minimum exits 2 naming the smallest
that would do, after the plan is shown. Nothing trains beyond the calibration's few steps."""
from __future__ import annotations

import re

from typer.testing import CliRunner

from cellpick.cli import app

TINY = ["--horizon", "12", "--lookback", "24", "--cells", "gru", "--units", "8", "--layers", "1",
        "--max-trials", "2", "--folds", "2", "--seeds", "1", "--scaling", "global", "--no-log",
        "--no-linear"]


def _dry(data_dir, tmp_path, *extra):
    args = ["fit", str(data_dir / "airline_train.csv"), *TINY, "--dry-run",
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--out", str(tmp_path / "m"), *extra]
    return CliRunner().invoke(app, args)


def _text(result) -> str:
    try:
        return result.output + result.stderr
    except ValueError:  # stderr mixed into output
        return result.output


def test_the_dry_run_prints_the_division_and_otherwise_the_same_plan(data_dir, tmp_path):
    plain = _dry(data_dir, tmp_path)
    budgeted = _dry(data_dir, tmp_path, "--time-budget", "10m")
    assert plain.exit_code == 0 and budgeted.exit_code == 0, _text(budgeted)
    before, after = plain.output.splitlines(), budgeted.output.splitlines()
    assert after[:-1] == [line.replace("time budget: none", "time budget: 600.0")
                          for line in before]
    assert re.fullmatch(
        r"time budget 10m: start \S+ \(spent\), data-level \S+, search \S+, verdict \S+, "
        r"contestants \S+, refit\+export \S+, reserve 1m; ends by 10m \+ 1m tolerance\. A trial "
        r"trains at least \d+ steps before it is scored \(a first-round trial, measured: gru "
        r"\d+\.\ds\)", after[-1])
    assert not (tmp_path / "m").exists()


def test_a_budget_below_the_minimum_exits_2_naming_the_smallest(data_dir, tmp_path):
    result = _dry(data_dir, tmp_path, "--time-budget", "2s")
    assert result.exit_code == 2
    text = _text(result)
    assert "split: " in text  # the plan is shown first
    m = re.search(r"--time-budget 2s is too small for this data: one trained trial per cell and "
                  r"one seed per fold need about (\S+); pass --time-budget (\S+) or more", text)
    from cellpick.config import parse_duration

    assert m and parse_duration(m.group(2)) >= 1.5 * parse_duration(m.group(1)) > 2
