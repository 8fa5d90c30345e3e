"""The fit's report: verdict.json, leaderboard.csv, the plots and report.html on its MLflow run.

`write_report` serialises the fit's record once (`FitRecord.to_dict`, verdict.json's form);
the tables (leaderboard.py), the plots (plots.py) and the page (html.py) read that form, as
they read a past fit's verdict.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from cellpick.output.html import html
from cellpick.output.leaderboard import leaderboard, leaderboard_csv, places_text, verdict_rows
from cellpick.output.plots import plots
from cellpick.stages.record import FitRecord
from cellpick.verdict import headline


class Report(NamedTuple):
    """The leaderboard and the HTML report of a fit (both also logged to its MLflow run)."""

    board: pd.DataFrame
    html: str


def write_report(plan, record: FitRecord, trials: list[dict], curves: dict[str, dict], *,
                 tracker) -> Report:
    """Log leaderboard.csv, verdict.json, report.html and the plots on the fit's parent run,
    with the winner's cross-validated and test scores as metrics and its configuration as
    tags, and the verdict's summary runs and view (`verdict_rows`, `Tracker.log_verdict`:
    `places_text` heads its description, scores.png is its first chart)."""
    import json
    import tempfile
    from datetime import datetime

    path, metric, winner = plan.path, plan.metric, record.winner
    verdict = record.to_dict()
    board = leaderboard(verdict, trials)
    meta = {"data": str(path), "task": plan.dataset.task, "layout": plan.dataset.layout,
            "metric": metric, "mlflow_run_id": tracker.parent_id,
            "experiment": tracker.experiment_name,
            "date": datetime.now().isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="cellpick-report-") as tmp:
        tmp = Path(tmp)
        plot_paths = plots(verdict, trials, curves, tmp)
        page = html(verdict, board, plot_paths, f"cellpick: {path.name}", meta)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "leaderboard.csv").write_text(leaderboard_csv(board), encoding="utf-8")
        (tmp / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")
        tracker.log_artifacts(tracker.parent_id, [tmp / "leaderboard.csv", tmp / "verdict.json",
                                                  tmp / "report.html", *plot_paths])
        # val_<metric>: the winner's cross-validated mean (MLflow: winner_cv_<metric>)
        tracker.log_metrics(tracker.parent_id, {f"val_{metric}": record.val_score, **(
            {f"test_{metric}": record.test_score} if record.test_score is not None else {})})
        tracker.tag_winner(winner, record.cells[winner]["config"], record.reason,
                           record.decision, record.beats_best_baseline)
        tracker.log_verdict(verdict_rows(board, verdict), headline(verdict), metric,
                            decision=places_text(board, verdict, with_headline=True),
                            picture=next(p for p in plot_paths if p.name == "scores.png"))
    return Report(board, page)
