"""A fit's progress events: `cellpick.fit(progress=callback)` calls `callback(event, info)`.

`event` is an `Event` (a str enum: `event == "trial_end"` also holds), `info` a dict whose
keys are listed beside each event. The CLI prints each event with its own handler
(tests/test_events.py fails when one has none); nothing else prints.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Callable


class Event(StrEnum):
    DATASET = "dataset"  # description, notes: the data as read
    PLAN = "plan"  # stages.plan.Plan.summary() (with dry_run, data_level on --dry-run)
    TRACKING = "tracking"  # uri, experiment, run_id, resumed: the fit's MLflow run
    STAGE = "stage"  # name (data, verdict, baselines, refit, final, export) and its sizes
    DATA = "data"  # line, reused: the data-level choice
    DATA_CANDIDATE = "data_candidate"  # values, score, metric, seconds, error: one candidate
    TRIAL_BEGIN = "trial_begin"  # n, name and the trial's values
    TRIAL_END = "trial_end"  # n (the trial's number in the fit) and the trial's record
    CELL_END = "cell_end"  # cell, units, metric, mean, low, high, seconds: a cell's verdict runs
    CONTESTANT = "contestant"  # name, status, reason, metric, mean, seconds
    NOTE = "note"  # message
    DISTRIBUTED = "distributed"  # message: the chief's and workers' coordination
    WARNING = "warning"  # message: something asked for was not done (shown with --quiet too)
    DONE = "done"  # result (pipeline.FitResult), board (the leaderboard)


Progress = Callable[[Event, dict], None]
