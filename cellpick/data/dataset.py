"""Dataset: what cellpick understood of the user's file, and its one-paragraph summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cellpick.data.dates import freq_word
from cellpick.data.reading import names, show

LAYOUTS = ("series", "wide", "long", "text")


@dataclass
class Dataset:
    """What cellpick understood of the user's file.

    frame:    the cleaned table, holding only the columns below, index 0..n-1.
              series: sorted by (id, time), a date-like time column parsed to datetimes;
              long: sorted by (id, step); wide and text: original row order. Features and
              regress/forecast targets are float64; a classify target holds exactly the
              values in `classes`.
    layout:   one of LAYOUTS. task: one of TASKS.
    target:   the column to predict (series: forecast target; else the per-sample label/value).
    time:     series time column or long step column (None when absent: row order is time).
    id:       series id (panel) or sample id (long); None for a single series / wide / text.
    features: numeric input columns in model order.
              series: target first, then covariates; wide: the step columns t0..tN (one
              sequence of N steps, one feature); long: the per-step feature columns; text: [].
    text:     the text column (text layout only).
    classes:  sorted distinct labels (python int or str) for classify, else None.
    freq:     pandas offset alias of the series' calendar (e.g. "MS") when every stamp lies on
              its grid, gaps (missing stamps) included; else None (irregular or no dates).
    positions: series with calendar gaps only: each row's place on its series' grid (int64,
              0 at the series' first stamp, aligned with `frame`); a window must not span a
              jump in it. None: the rows are consecutive steps (no gaps, irregular or
              step-indexed time). See docs/calendars.md.
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
    positions: np.ndarray | None = field(default=None, repr=False, compare=False)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Human summary: layout, task, columns, and which option overrides each choice.

        `notes` are not repeated here: callers print them after it, one per line."""
        f = self.frame
        if self.layout == "series":
            parts = [f"id '{self.id}', {f[self.id].nunique()} series"] if self.id else []
            parts.append(f"time column '{self.time}'" if self.time else "row order is time")
            if self.freq:
                parts.append(freq_word(self.freq))
            parts.append(_steps(f, self.id))
            layout = f"series ({', '.join(parts)}) — override with --time/--id"
        elif self.layout == "wide":
            layout = (f"wide (one row per sample: {len(f)} samples x {len(self.features)} steps)"
                      " — override with --id/--time")
        elif self.layout == "long":
            order = f"step column '{self.time}'" if self.time else "row order is step order"
            layout = (f"long (sample id '{self.id}', {order}, {f[self.id].nunique()} samples of "
                      f"{_steps(f, self.id)}) — override with --id/--time")
        else:
            layout = f"text (text column '{self.text}', {len(f)} samples) — override with --text"
        task = f"task: {self.task} target '{self.target}'"
        if self.classes is not None:
            shown = names([show(c) for c in self.classes], quote=False, limit=10)
            task += f", {len(self.classes)} classes [{shown}]"
        lines = [f"data: '{self.path}'", f"layout: {layout}",
                 f"{task} — override with --target/--task"]
        if self.layout == "text":
            lines.append("features: the text itself (vocabulary learned inside the model)")
        else:
            lines.append(f"features: {len(self.features)} ({names(self.features, quote=False)})")
        return "\n".join(lines)

def _steps(frame: pd.DataFrame, gid: str | None) -> str:
    if not gid:
        return f"{len(frame)} steps"
    sizes = frame.groupby(gid, sort=False).size()
    if sizes.min() == sizes.max():
        return f"{sizes.min()} steps each"
    return f"{sizes.min()}-{sizes.max()} steps"
