"""Detect the layout and task of a table read by data/reading.py; `load` is the entry point.

Decides, in order: the time column, a text column, the id, the target, the layout (series,
wide, long, text), the task. Each choice is noted (`Dataset.describe` prints them) and an
option overrides it (--time --text --id --target --task); data/layouts.py then builds and
checks the Dataset. The rules step by step, and what happens to missing values: docs/data.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellpick.data.dataset import Dataset
from cellpick.data.dates import parse_dates, try_format
from cellpick.data.layouts import TARGET_NAMES, Found, build
from cellpick.data.reading import is_num, is_str, names, read
from cellpick.errors import ConfigError, DataError
from cellpick.vocab import TASKS

_TIME_NAMES = ("date", "time", "timestamp", "ds", "datetime", "period", "month", "year",
               "week", "step", "t", "position", "timestep", "time_step")
_ID_NAMES = ("id", "series", "sample", "item", "group", "subject", "key", "unique_id")
_EPOCH_NAMES = ("date", "time", "timestamp", "datetime", "ds")


def load(
    path: str | Path,
    *,
    target: str | None = None,
    task: str | None = None,
    id: str | None = None,
    time: str | None = None,
    text: str | None = None,
    forecast_hint: bool = False,
    labeled: bool = True,
) -> Dataset:
    """Read `path` and detect layout and task; raise DataError with a one-line fix.

    `labeled=False` (for predict on new data) lets a wide, long or text file lack its target
    column and skips the checks on labels; `task` is then required, and `classes` is None.
    """
    if task is not None and task not in TASKS:
        raise ConfigError(f"The 'task' option must be one of {sorted(TASKS)}. Got {task!r} instead.")
    if not labeled and (task is None or target is None):
        raise ConfigError("The 'task' and 'target' options are required when the data may lack "
                          "labels (labeled=False); pass those the model was fitted with.")
    frame, src, notes = read(path)
    return _Detector(frame, src, notes, target=target, task=task, id=id, time=time, text=text,
                     forecast_hint=forecast_hint, labeled=labeled).run()


class _Detector(Found):
    """Decides the role of each column and the layout; `layouts.build` does the rest."""

    def __init__(self, df, src, notes, *, target, task, id, time, text, forecast_hint, labeled):
        opt = {"target": target, "id": id, "time": time, "text": text}
        super().__init__(df, src, notes, opt, task, labeled)
        self.hint = forecast_hint
        self._check_options()

    def _check_options(self) -> None:
        named = {k: v for k, v in self.opt.items() if v is not None}
        for opt, col in named.items():
            if col not in self.df.columns and not (opt == "target" and not self.labeled):
                raise DataError(f"column '{col}' (--{opt}) not found in '{self.src.name}'; "
                                f"columns are: {names(list(self.df.columns))}")
        seen: dict[str, str] = {}
        for opt, col in named.items():
            if col in seen:
                raise ConfigError(f"--{seen[col]} and --{opt} both name column '{col}'; "
                                  "each option needs its own column")
            seen[col] = opt
        if self.opt["text"] and self.task == "forecast":
            raise ConfigError("The 'task' option 'forecast' needs a series, not a --text column; "
                              "drop --text or choose --task classify or regress")

    def _named_target(self) -> str | None:
        if self.opt["target"]:
            return self.opt["target"]
        for c in self._free():
            if c.lower() in TARGET_NAMES:
                self.notes.append(f"target '{c}' chosen by its name")
                return c
        return None

    def run(self) -> Dataset:
        self.time, self.dates = self._find_time()
        self.text = self._find_text()
        self.id = self._find_id() if not self.text else None
        self.target = self._named_target()
        layout = self._layout()
        return build(self, layout)

    def _find_time(self) -> tuple[str | None, pd.Series | None]:
        df, given = self.df, self.opt["time"]
        if given:
            return given, self._time_values(given, strict=True)
        skip = [c for c in df.columns if c.lower() in TARGET_NAMES]
        for c in self._free(*skip):
            if c.lower() in _TIME_NAMES:
                dates = self._time_values(c, strict=False)
                if dates is False:
                    self.notes.append(f"column '{c}' has a time-like name but does not hold "
                                      "dates; not used as time (pass --time to choose one)")
                    continue
                self.notes.append(f"time/step column '{c}' chosen by its name")
                return c, dates
        for c in self._free(*skip):
            if is_str(self.dtype[c]) and df[c].notna().all():
                dates, fmt, _ = parse_dates(df[c])
                if dates is not None and dates.notna().all():
                    self.notes.append(f"time column '{c}' detected: its values are dates")
                    self._date_note(c, df[c], fmt)
                    return c, dates
        return None, None

    def _time_values(self, col: str, *, strict: bool):
        """Datetimes for a date-like column, None for a plain order column, False when a
        column found by name is not time after all (only with strict=False)."""
        s, name = self.df[col], self.src.name
        if s.isna().any():
            row = int(s.index[s.isna()][0])
            raise DataError(f"missing time value in column '{col}' at line {self.src.line(row)} "
                            f"of '{name}'; fill it or drop the row")
        if is_str(s):
            dates, fmt, ok = parse_dates(s)
            if not strict and ok < 0.5:
                return False
            if dates is None or dates.isna().any():
                row = int(s.index[dates.isna()][0]) if dates is not None else int(s.index[0])
                raise DataError(
                    f"cannot read '{s[row]}' in column '{col}' at line {self.src.line(row)} of "
                    f"'{name}' as a date; write every date in one format, e.g. 2020-01-31 or "
                    "2020-01-31 13:45 (ISO), 01/31/2020 or 1949-01")
            self._date_note(col, s, fmt)
            return dates
        if not is_num(s) or s.dtype == bool:
            return None if strict else False
        v = s.to_numpy(float)
        if not np.all(v == np.round(v)):
            return None
        low = col.lower()
        if low == "year" and v.min() >= 1000 and v.max() < 3000:
            return pd.to_datetime(s.astype("int64").astype(str), format="%Y")
        if low in _EPOCH_NAMES:
            if 1e8 <= v.min() and v.max() < 1e10:
                return pd.to_datetime(s, unit="s")
            if 1e11 <= v.min() and v.max() < 1e13:
                return pd.to_datetime(s, unit="ms")
            if 1e7 <= v.min() and v.max() < 3e7:
                d = pd.to_datetime(s.astype("int64").astype(str), format="%Y%m%d", errors="coerce")
                if d.notna().all():
                    return d
        return None

    def _date_note(self, col: str, s: pd.Series, fmt: str | None) -> None:
        if fmt and fmt.startswith("%m/%d"):
            other = "%d/%m" + fmt[5:]
            if try_format(s, other).notna().all():
                self.notes.append(f"dates in '{col}' read as month/day (ambiguous); write them "
                                  "as 2020-01-31 if they are day/month")

    def _find_text(self) -> str | None:
        if self.opt["text"]:
            return self.opt["text"]
        if (self.task == "forecast" or self.hint or self.opt["id"] or self.opt["time"]
                or self.dates is not None):
            return None
        target = self.opt["target"]
        for c in self._free():
            if c != target and c.lower() not in TARGET_NAMES and is_str(self.dtype[c]) \
                    and _looks_like_text(self.df[c]):
                self.notes.append(f"text column '{c}' detected: its values are free text")
                return c
        return None

    def _find_id(self) -> str | None:
        if self.opt["id"]:
            return self.opt["id"]
        for c in self._free():
            low = c.lower()
            if low in TARGET_NAMES or not (low in _ID_NAMES or low.endswith(("_id", " id"))):
                continue
            s = self.df[c]
            if s.nunique() < s.notna().sum():
                self.notes.append(f"id column '{c}' chosen by its name ({s.nunique()} values "
                                  "that repeat)")
                return c
            self.ignored.append(c)
            self.notes.append(f"column '{c}' has one row per value: a row id, ignored")
        return None

    def _layout(self) -> str:
        if self.text:
            return "text"
        forecast = self.task == "forecast" or self.hint
        if self.id:
            if forecast:
                return "series"
            if self.task in ("classify", "regress"):
                return "long"
            if self.dates is not None or self.target is None:
                return "series"
            return "long" if _mostly_constant(self.df, self.id, self.target) else "series"
        if self.time and self.task in ("classify", "regress"):
            raise ConfigError(
                f"The 'task' option '{self.task}' needs one row per sample or an --id; "
                f"'{self.src.name}' has time column '{self.time}' and no id: pass --id COL for "
                "long sequences, or drop --task to forecast the series")
        if self.time or forecast:
            return "series"
        target = self.target
        numeric = [c for c in self._free(None) + [target] * bool(self.opt["target"])
                   if c in self.dtype and is_num(self.dtype[c])]
        if self.task is None and len(numeric) == 1 and target in (None, numeric[0]):
            return "series"
        if target is not None or not self.labeled:
            return "wide"
        raise DataError(f"cannot tell which column to predict in '{self.src.name}': no column "
                        f"is named label/target/y/class; pass --target COL (one of "
                        f"{names(list(self.df.columns))}), and --task forecast for a time series")

def _looks_like_text(s: pd.Series) -> bool:
    if not is_str(s):
        return False
    v = s.dropna().astype(str).head(1000)
    return bool(len(v)) and v.str.contains(r"\s").mean() >= 0.5 and v.str.len().mean() > 15

def _mostly_constant(df: pd.DataFrame, gid: str, target: str) -> bool:
    """Whether `target` looks like one label per `gid` (a few exceptions are data errors)."""
    grouped = df.groupby(gid, sort=False)[target]
    multi = grouped.size() > 1
    if not multi.any():
        return True
    return bool((grouped.nunique(dropna=False)[multi] == 1).mean() >= 0.5)
