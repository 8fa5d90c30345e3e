"""Read a CSV, detect its layout and task, and describe it (contract; implementation pending)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

LAYOUTS = ("series", "wide", "long", "text")
TASKS = ("forecast", "classify", "regress")


@dataclass
class Dataset:
    """What cellpick understood of the user's file.

    frame:    the cleaned table. series: sorted by (id, time); long: sorted by (id, step);
              wide and text: original row order.
    layout:   one of LAYOUTS. task: one of TASKS.
    target:   the column to predict (series: forecast target; else the per-sample label/value).
    time:     series time column or long step column (None when absent: row order is time).
    id:       series id (panel) or sample id (long); None for a single series / wide / text.
    features: numeric input columns in model order.
              series: target first, then covariates; wide: the step columns t0..tN (one
              sequence of N steps, one feature); long: the per-step feature columns; text: [].
    text:     the text column (text layout only).
    classes:  sorted distinct labels (python int or str) for classify, else None.
    freq:     pandas offset alias of the series time step when regular (e.g. "MS"), else None.
    notes:    one line per thing the user should know (detection, sorting, gaps, NaN policy).
    """

    path: Path
    frame: pd.DataFrame
    layout: str
    task: str
    target: str
    time: str | None = None
    id: str | None = None
    features: list[str] = field(default_factory=list)
    text: str | None = None
    classes: list | None = None
    freq: str | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Human summary: layout, task, columns, and which option overrides each choice."""
        raise NotImplementedError


def load(
    path: str | Path,
    *,
    target: str | None = None,
    task: str | None = None,
    id: str | None = None,
    time: str | None = None,
    text: str | None = None,
    forecast_hint: bool = False,
) -> Dataset:
    """Read `path` and detect layout and task; raise DataError with a one-line fix."""
    raise NotImplementedError
