"""Build the Dataset of each layout (series, wide, long, text) from the detected columns.

Checks the values as it goes (missing, infinite, constant, one label per sample, duplicate
time stamps) and says where, by file line. The rules are in docs/data.md; what a
series' calendar gaps and duplicate stamps do is in docs/calendars.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from cellpick.data.dataset import Dataset
from cellpick.data.dates import freq_word, grid_freq, infer_freq
from cellpick.data.reading import Source, count, is_num, is_str, names, show
from cellpick.data.season import calendar_season
from cellpick.errors import DataError

TARGET_NAMES = ("label", "target", "y", "class")
_MAX_CLASSES = 20
_FILL_LIMIT = 0.05  # share of a series covariate that may be filled instead of refused
_CALENDAR_SHARE = 0.5  # share of steps that must be one grid step for a gappy grid to count
_DUPLICATE_LIMIT = 0.01  # share of a series' rows that may repeat a stamp (the last line wins)


@dataclass
class Found:
    """The file and what detection decided about its columns (None: not found)."""

    df: pd.DataFrame
    src: Source
    notes: list[str]
    opt: dict[str, str | None]  # the columns named by --target --id --time --text
    task: str | None
    labeled: bool
    ignored: list[str] = field(default_factory=list)
    time: str | None = None
    dates: pd.Series | None = None  # the time column as datetimes when date-like
    text: str | None = None
    id: str | None = None
    target: str | None = None

    dtype: dict = field(init=False, repr=False)  # column -> dtype

    def __post_init__(self) -> None:
        self.dtype = dict(zip(self.df.columns, self.df.dtypes))

    def _free(self, *more: str | None) -> list[str]:
        """Columns not claimed by an option, a detected role, `more` or the ignore list."""
        taken = {v for v in self.opt.values() if v} | set(self.ignored) | {
            c for c in (self.time, self.id, self.text, *more) if c}
        return [c for c in self.df.columns if c not in taken]

def build(found: Found, layout: str) -> Dataset:
    """The Dataset of `layout` ("series", "wide", "long" or "text")."""
    builder = _Builder(**{f.name: getattr(found, f.name) for f in fields(Found) if f.init})
    return getattr(builder, f"_{layout}")()

class _Builder(Found):
    """One method per layout, then the checks they share."""

    def _subset(self, *cols: str | None) -> pd.DataFrame:
        """A copy of the named columns, in file order."""
        keep = set(cols)
        return self.df[[c for c in self.df.columns if c in keep]].copy()

    def _series(self) -> Dataset:
        df, name, tid, tcol = self.df, self.src.name, self.id, self.time
        if self.opt["target"] and self.opt["target"] not in df.columns:
            raise DataError(f"column '{self.opt['target']}' (--target) not found in '{name}'; a "
                            "series needs the history of its target to forecast")
        free = self._free()
        target = self.target or self._only_numeric(free)
        if not is_num(df[target]) or df[target].dtype == bool:
            self._not_numeric(target, "a forecast target must be numbers: pass --target with a "
                                      "numeric column")
        for c in _non_numeric(df, [c for c in free if c != target])[:1]:
            panel = f", or pass --id '{c}' if it names the series" if df[c].duplicated().any() \
                else ""
            self._not_numeric(c, "a series takes numeric covariates only: drop the column or "
                                 f"encode it as numbers{panel}")
        covariates = [c for c in free if c != target]
        frame = self._subset(tid, tcol, target, *covariates)
        self._check_ids(frame, tid, "series")
        self._check_target(frame, target)
        frame = self._sort(frame, tid, tcol, "series")
        frame = self._floats(frame, covariates)
        for c in covariates:
            self._fill_covariate(frame, c, tid)
        frame[target] = frame[target].astype(float)
        if frame[target].nunique() == 1:
            raise DataError(f"target '{target}' in '{name}' is constant (every value is "
                            f"{frame[target].iloc[0]:g}); there is nothing to forecast")
        freq, positions = self._freq(frame, tid, tcol) if self.dates is not None else (None, None)
        return self._dataset(frame, "series", "forecast", target, features=[target, *covariates],
                             time=tcol, id=tid, freq=freq, positions=positions)

    def _only_numeric(self, free: list[str]) -> str:
        """A series' target when none is named: its only numeric column."""
        numeric = [c for c in free if is_num(self.dtype[c]) and self.dtype[c] != bool]
        if not numeric and free:
            self._not_numeric(free[0], "a series needs a numeric column to forecast")
        if len(numeric) != 1:
            raise DataError(f"cannot tell which column to forecast in '{self.src.name}': "
                            f"{len(numeric)} numeric columns ({names(numeric)}); pass "
                            "--target COL")
        self.notes.append(f"target '{numeric[0]}' is the only numeric column")
        return numeric[0]

    def _wide(self) -> Dataset:
        df, name = self.df, self.src.name
        target = self.target
        free = [c for c in self._free() if c != target]
        for c in _non_numeric(df, free)[:1]:
            self._not_numeric(c, "a wide file holds a label and numeric step columns only: "
                                 "drop the column or encode it as numbers")
        if not free:
            raise DataError(f"no numeric step columns in '{name}' besides target '{target}'; a "
                            "wide file needs a label and columns t0..tN")
        has_y = target in df.columns
        frame = self._subset(target, *free)
        x = frame[free].to_numpy(float)
        missing = np.isnan(x)
        if missing.any():
            r = int(np.flatnonzero(missing.any(axis=1))[0])
            k = int(np.flatnonzero(missing[r])[0])
            line = self.src.line(int(frame.index[r]))
            if missing[r, k:].all():
                raise DataError(
                    f"the row at line {line} of '{name}' has {k} of {len(free)} steps (columns "
                    f"'{free[k]}'..'{free[-1]}' are empty); every wide row needs all steps: for "
                    "sequences of different lengths use the long layout (one row per step, --id)")
            raise DataError(f"missing value in column '{free[k]}' at line {line} of '{name}'; "
                            "fill it or drop the row")
        frame = self._floats(frame, free)
        if has_y:
            self._check_target(frame, target)
        return self._labeled(frame, "wide", target, frame[target] if has_y else None,
                             features=free)

    def _long(self) -> Dataset:
        df, name, sid, step = self.df, self.src.name, self.id, self.time
        target = self.target
        if target is None:
            raise DataError(f"cannot tell which column is the label of each sample in '{name}'; "
                            f"pass --target COL (one of {names(self._free())})")
        free = [c for c in self._free() if c != target]
        for c in _non_numeric(df, free)[:1]:
            self._not_numeric(c, "a long file holds numeric feature columns besides id, step "
                                 "and label: drop the column or encode it as numbers")
        if not free:
            raise DataError(f"no numeric feature columns in '{name}' besides id '{sid}'"
                            f"{f', step {step!r}' if step else ''} and target '{target}'")
        has_y = target in df.columns
        frame = self._subset(sid, step, target, *free)
        self._check_ids(frame, sid, "sample")
        frame = self._sort(frame, sid, step, "sample")
        missing = np.argwhere(frame[free].isna().to_numpy())
        if len(missing):
            r, k = missing[0]
            raise DataError(f"missing value in column '{free[k]}' at line "
                            f"{self.src.line(int(frame.index[r]))} of '{name}'; fill it or drop "
                            "the row")
        frame = self._floats(frame, free)
        y = self._one_label_per_sample(frame, sid, target) if has_y else None
        sizes = frame.groupby(sid, sort=False).size()
        if sizes.min() != sizes.max():
            self.notes.append(f"sequence lengths vary from {sizes.min()} to {sizes.max()} steps "
                              "(padded and masked)")
        return self._labeled(frame, "long", target, y, features=free, time=step, id=sid)

    def _one_label_per_sample(self, frame: pd.DataFrame, sid: str, target: str) -> pd.Series:
        """The label of each sample of a long file; a label that changes within one is an error."""
        self._check_target(frame, target)
        per = frame.groupby(sid, sort=False)[target]
        varying = per.nunique() > 1
        if varying.any():
            bad = varying.index[varying.argmax()]
            rows = frame[frame[sid] == bad]
            first = rows[target].iloc[0]
            other = rows[rows[target] != first].index[0]
            raise DataError(
                f"label '{target}' changes within sample {show(bad)} in '{self.src.name}' "
                f"({show(first)} at line {self.src.line(int(rows.index[0]))}, "
                f"{show(rows[target][other])} at line {self.src.line(int(other))}); each "
                f"sample (--id '{sid}') needs one label")
        return per.first()

    def _text(self) -> Dataset:
        df, name, col = self.df, self.src.name, self.text
        if not is_str(df[col]):
            raise DataError(f"column '{col}' (--text) in '{name}' holds numbers, not text; pass "
                            "the column with the text")
        target = self.target
        if target is None:
            rest = self._free()
            if len(rest) != 1:
                raise DataError(f"cannot tell which column is the label in '{name}'; pass "
                                f"--target COL (one of {names(rest)})")
            target = rest[0]
            self.notes.append(f"target '{target}' is the only column besides the text")
        has_y = target in df.columns
        frame = self._subset(col, target)
        missing = int(frame[col].isna().sum())
        if missing:
            frame[col] = frame[col].fillna("")
            self.notes.append(f"{count(missing, 'empty text')} in '{col}' read as ''")
        frame[col] = frame[col].astype(str)
        if has_y:
            self._check_target(frame, target)
        rest = self._free(target)
        if rest:
            self.notes.append(f"ignored columns {names(rest)} (a text model reads only "
                              f"'{col}')")
        return self._labeled(frame, "text", target, frame[target] if has_y else None, text=col)

    def _labeled(self, frame, layout, target, y, **kw) -> Dataset:
        """Task and classes from one label per sample `y` (None: unlabeled data)."""
        if y is None:
            return self._dataset(frame, layout, self.task, target, **kw)
        task = self.task or _detect_task(y)
        if self.task is None:
            self.notes.append(f"task {task}: {_task_reason(y, task)}")
        classes = None
        if task == "classify":
            labels = _class_values(frame[target])
            classes = sorted({_py(v) for v in labels})
            if self.labeled:
                self._check_classes(_class_values(y), target)
            frame[target] = labels
        else:
            if not is_num(y) or y.dtype == bool:
                self._not_numeric(target, f"task '{task}' needs a numeric target: use --task "
                                          "classify or another --target")
            frame[target] = frame[target].astype(float)
            if self.labeled and y.nunique() == 1:
                raise DataError(f"target '{target}' in '{self.src.name}' is constant (every "
                                f"value is {y.iloc[0]:g}); there is nothing to learn")
        return self._dataset(frame, layout, task, target, classes=classes, **kw)

    def _dataset(self, frame, layout, task, target, **kw) -> Dataset:
        return Dataset(path=self.src.path, frame=frame.reset_index(drop=True), layout=layout,
                       task=task, target=target, notes=self.notes, **kw)

    def _line_of(self, mask: pd.Series) -> int:
        return self.src.line(int(mask.index[mask.to_numpy()][0]))

    def _not_numeric(self, col: str, fix: str) -> None:
        s = self.df[col]
        bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
        row = int(s.index[bad.to_numpy()][0]) if bad.any() else int(s.index[0])
        raise DataError(f"column '{col}' in '{self.src.name}' is not numeric (first value "
                        f"'{s[row]}' at line {self.src.line(row)}); {fix}")

    def _check_target(self, frame: pd.DataFrame, target: str) -> None:
        s = frame[target]
        if s.isna().any():
            raise DataError(f"missing value in target '{target}' at line "
                            f"{self._line_of(s.isna())} of '{self.src.name}'; fill it or drop "
                            "the row")
        if is_num(s) and s.dtype != bool:
            self._floats(frame, [target], what="target")

    def _floats(self, frame: pd.DataFrame, cols: list[str], what: str = "column") -> pd.DataFrame:
        """`frame` with `cols` as float64; an infinite value is an error naming the first."""
        if not cols:
            return frame
        x = frame[cols].to_numpy(float)
        bad = np.argwhere(np.isinf(x))
        if len(bad):
            r, k = bad[0]
            raise DataError(f"infinite value in {what} '{cols[k]}' at line "
                            f"{self.src.line(int(frame.index[r]))} of '{self.src.name}'; replace "
                            "it with a finite number or drop the row")
        rest = frame.drop(columns=cols)
        out = pd.concat([rest, pd.DataFrame(x, columns=cols, index=frame.index)], axis=1)
        return out[list(frame.columns)]

    def _check_ids(self, frame: pd.DataFrame, sid: str | None, what: str) -> None:
        if sid and frame[sid].isna().any():
            raise DataError(f"missing {what} id in column '{sid}' at line "
                            f"{self._line_of(frame[sid].isna())} of '{self.src.name}'; fill it "
                            "or drop the row")

    def _check_classes(self, y: pd.Series, target: str) -> None:
        counts = y.value_counts()
        if len(counts) < 2:
            raise DataError(f"target '{target}' in '{self.src.name}' has a single class "
                            f"({show(counts.index[0])}); classification needs at least two")
        once = counts[counts == 1]
        if len(once):
            raise DataError(f"class {show(once.index[0])} of target '{target}' has only one "
                            f"sample in '{self.src.name}'; a stratified split needs at least 2 per "
                            "class: add samples or drop that class")

    def _sort(self, frame, gid, tcol, what) -> pd.DataFrame:
        """Sort by (id, time) and report unsorted input. Duplicate time stamps are refused,
        except in a series where they are at most _DUPLICATE_LIMIT of its rows: there the last
        line of each stamp is kept (a later line is taken as a correction) and noted."""
        if tcol is None:
            return frame.sort_values(gid, kind="stable") if gid else frame
        raw = frame[tcol]
        if self.dates is not None:
            frame[tcol] = self.dates
        keys = [gid, tcol] if gid else [tcol]
        ordered = frame.sort_values(keys, kind="stable")  # stable: file order within a stamp
        by_id = frame.sort_values(gid, kind="stable") if gid else frame
        in_order = bool((ordered.index == by_id.index).all())
        dup = ordered.duplicated(keys, keep=False)
        if dup.any():
            over = self._too_many(ordered, gid, keys) if what == "series" else dup
            if not over.any():
                ordered = self._keep_last(ordered, keys, tcol)
            else:
                self._refuse_duplicates(ordered, dup & over, raw, gid, tcol, keys, what)
        if not in_order:
            by = f"'{gid}', '{tcol}'" if gid else f"'{tcol}'"
            self.notes.append(f"sorted {len(frame)} rows by {by} (file was not in "
                              f"{'time' if what == 'series' else 'step'} order)")
        return ordered

    @staticmethod
    def _too_many(ordered: pd.DataFrame, gid: str | None, keys: list[str]) -> pd.Series:
        """The rows of the series that repeat a stamp in more than _DUPLICATE_LIMIT of
        their rows."""
        extra = ordered.duplicated(keys, keep="last")
        by = ordered[gid] if gid else np.zeros(len(ordered), dtype=int)
        per = extra.groupby(by, sort=False)
        return per.transform("sum") > _DUPLICATE_LIMIT * per.transform("size")

    def _keep_last(self, ordered: pd.DataFrame, keys: list[str], tcol: str) -> pd.DataFrame:
        """`ordered` without the earlier lines of each duplicated stamp; a note names them."""
        extra = ordered.duplicated(keys, keep="last")
        stamps = int(ordered[extra].drop_duplicates(keys).shape[0])
        first = ordered[ordered.duplicated(keys, keep=False)].iloc[0]
        same = ordered[(ordered[keys] == first[keys]).all(axis=1)]
        lines = " and ".join(str(self.src.line(int(i))) for i in same.index)
        self.notes.append(
            f"{count(stamps, 'time stamp')} in '{tcol}' repeated: kept the last line of each "
            f"and dropped {count(int(extra.sum()), 'earlier row')} (first at lines {lines}; a "
            "later line is taken as a correction)")
        return ordered[~extra]

    def _refuse_duplicates(self, ordered, dup, raw, gid, tcol, keys, what) -> None:
        first = ordered[dup].iloc[0]
        same = ordered[dup & (ordered[keys] == first[keys]).all(axis=1)]
        lines = " and ".join(str(self.src.line(int(i))) for i in sorted(same.index)[:2])
        value = raw[same.index[0]]
        if gid and what == "sample":
            raise DataError(f"step '{value}' appears {len(same)} times in sample "
                            f"{show(first[gid])} of '{self.src.name}' (lines {lines}); "
                            f"each sample needs one row per value of '{tcol}'")
        if gid:
            raise DataError(f"series {show(first[gid])} has time '{value}' {len(same)} times "
                            f"in '{self.src.name}' (lines {lines}); each series needs one row "
                            "per time step: drop or aggregate the duplicates")
        raise DataError(f"time '{value}' appears {len(same)} times in column '{tcol}' of "
                        f"'{self.src.name}' (lines {lines}); one row per time step: if the "
                        "file holds several series pass --id COL, else drop the duplicates")

    def _fill_covariate(self, frame: pd.DataFrame, col: str, gid: str | None) -> None:
        s = frame[col]
        n = int(s.isna().sum())
        if not n:
            return
        first = self._line_of(s.isna())
        if n > _FILL_LIMIT * len(s):
            raise DataError(f"column '{col}' in '{self.src.name}' misses {n} of {len(s)} values "
                            f"({n / len(s):.0%}, first at line {first}); cellpick fills at most "
                            "5% of a covariate: fill the gaps or drop the column")
        filled = (s.groupby(frame[gid], sort=False).transform(lambda g: g.ffill().bfill()) if gid
                  else s.ffill().bfill())
        if filled.isna().any():
            raise DataError(f"column '{col}' in '{self.src.name}' has no values in one series "
                            f"(line {self._line_of(filled.isna())}); fill it or drop the column")
        frame[col] = filled
        self.notes.append(f"filled {count(n, 'missing value')} in '{col}' (first at line {first}) "
                          "forward, then backward, within each series")

    def _freq(self, frame: pd.DataFrame, gid: str | None,
              tcol: str) -> tuple[str | None, np.ndarray | None]:
        """(freq, positions) of sorted series rows. freq: the calendar step (a pandas alias)
        when every stamp lies on one grid, gaps (missing stamps) included, and most steps
        are one grid step (_CALENDAR_SHARE); else what infer_freq says of the first series
        (usually None). positions: each row's place on its series' grid (0 at the series'
        first stamp), only when a gap makes it differ from the row number; else None. Gaps
        and off-grid stamps are noted."""
        groups = (list(frame.groupby(gid, sort=False)[tcol]) if gid else [(None, frame[tcol])])
        times = [pd.DatetimeIndex(t) for _, t in groups]
        freq = infer_freq(times[0])
        grid = freq or grid_freq(times[0])
        if grid is None:
            self.notes.append(f"time steps in '{tcol}' are irregular; forecasts are numbered "
                              "steps, not dates")
            return None, None
        gaps = missing = steps = 0
        positions, row = np.arange(len(frame), dtype="int64"), 0
        for t in times:
            if len(t) >= 2:
                full = pd.date_range(t[0], t[-1], freq=grid)
                if len(full) > 10 * len(t) + 1000 or not t.isin(full).all():
                    self.notes.append(f"time steps in '{tcol}' do not all follow "
                                      f"{freq_word(grid)} steps")
                    return freq, None
                present = full.isin(t)
                missing += int((~present).sum())
                gaps += int((np.diff(present.astype(int)) == -1).sum())
                positions[row:row + len(t)] = full.get_indexer(t)
                steps += int((np.diff(positions[row:row + len(t)]) == 1).sum())
            else:
                positions[row:row + len(t)] = 0
            row += len(t)
        if not missing:
            return grid, None
        if steps < _CALENDAR_SHARE * (len(frame) - len(times)):
            self.notes.append(f"time steps in '{tcol}' are irregular (most are not one "
                              f"{freq_word(grid)} step apart); forecasts are numbered steps, "
                              "not dates")
            return None, None
        limit = short_gap(grid)
        positions, closed = _close_short_gaps(positions, [len(t) for t in times], limit)
        if closed:
            what = (f"business days in '{tcol}' read as holidays" if grid == "B" else
                    f"missing {freq_word(grid)} steps in '{tcol}' closed")
            self.notes.append(f"{count(closed, 'short gap')} of at most {limit} {what} (the rows "
                              "on either side are neighbours)")
        jumps = np.concatenate([np.diff(positions[a:b]) for a, b in _bounds(times)])
        gaps, missing = int((jumps > 1).sum()), int((jumps[jumps > 1] - 1).sum())
        if not gaps:
            return grid, None
        self.notes.append(f"{count(gaps, 'gap')} in '{tcol}' (expected {freq_word(grid)} "
                          f"steps; {count(missing, 'time stamp')} missing): no window spans "
                          "a gap")
        return grid, positions


def short_gap(freq: str) -> int:
    """The most missing stamps a gap may have and still be closed (its neighbours read as
    adjacent rows): a quarter of the calendar's season, at least 1; business days 2 (holidays)."""
    if freq == "B":
        return 2
    season, _ = calendar_season(freq)
    return max(1, (season or 0) // 4)


def _bounds(times: list) -> list[tuple[int, int]]:
    """(first, end) rows of each series in the sorted frame."""
    ends = np.cumsum([len(t) for t in times])
    return list(zip(np.concatenate([[0], ends[:-1]]).tolist(), ends.tolist()))


def _close_short_gaps(positions: np.ndarray, lengths: list[int],
                      limit: int) -> tuple[np.ndarray, int]:
    """Positions with each gap of at most `limit` missing stamps closed (per series); returns
    (positions, gaps closed)."""
    out, closed, row = positions.copy(), 0, 0
    for n in lengths:
        step = np.diff(positions[row:row + n])
        short = (step > 1) & (step <= limit + 1)
        closed += int(short.sum())
        out[row:row + n] = np.concatenate([[0], np.cumsum(np.where(short, 1, step))])
        row += n
    return out, closed


def _non_numeric(df: pd.DataFrame, cols: list[str]) -> list[str]:
    return [c for c, t in zip(cols, df[cols].dtypes) if not is_num(t)]

def _py(v):
    """numpy scalar -> python int or str, as `Dataset.classes` promises."""
    return int(v) if isinstance(v, (int, np.integer)) else str(v)

def _detect_task(y: pd.Series) -> str:
    """classify or regress for one label per sample (a series is forecast before this)."""
    if y.dtype == bool or not is_num(y):
        return "classify"
    v = y.to_numpy(float)
    n = y.nunique()
    if np.all(v == np.round(v)) and n <= _MAX_CLASSES and n < len(y) / 2:
        return "classify"
    return "regress"

def _task_reason(y: pd.Series, task: str) -> str:
    if task == "regress":
        return "numeric target with many values"
    if y.dtype == bool or not is_num(y):
        return "text or true/false labels"
    return f"integer target with {y.nunique()} distinct values"

def _class_values(y: pd.Series) -> pd.Series:
    """Labels as python-friendly values: int64 when integer-valued numbers, else str."""
    if is_num(y) and y.dtype != bool:
        v = y.to_numpy(float)
        if np.all(v == np.round(v)):
            return y.astype("int64")
        return y.map(lambda x: f"{x:g}")
    return y.astype(str)
