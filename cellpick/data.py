"""Read a CSV, detect its layout and task, and describe it.

Reading
  * The separator is the one of ``,`` ``;`` tab ``|`` that splits the first lines into
    rows of the header's width most consistently (ties: more columns, then ``,``).
  * A UTF-8 BOM is dropped; UTF-16 is decoded by its BOM; a file that is not UTF-8 is
    read as Windows-1252, else Latin-1 (noted). Binary files (zip/xlsx, gzip, NUL bytes) are refused.
  * With ``;`` as separator, columns written with a decimal comma (``1,5``) become numbers;
    quoted numbers with thousands separators (``"1,234"``) become numbers too (noted).
  * Unnamed columns (an empty header cell) that are empty, or that hold a saved row index
    0..n-1 in first position, are dropped with a note. Duplicate names are an error.
  * Rows in messages are *file line numbers* (the header is line 1).

Detection, in this order; `Dataset.describe` prints every choice and the option that
overrides it (--target --task --id --time --text):
  1. time: ``time=``; else a column named date, time, timestamp, ds, datetime, period, month,
     year, week, step, t, position, timestep (any case); else a string column whose values
     all parse as dates. It is *date-like* when it holds dates (ISO 2020-01-31, 1949-01,
     01/31/2020, 31.01.2020, Jan 2020, 1949Q1, ... one format per column; month/day is
     preferred to day/month when both read, with a note), epoch seconds or milliseconds,
     YYYYMMDD numbers, or years; other numbers (0, 1, 2...) only order rows. A column found
     by its name that mostly does not read as dates is not used as time (noted); a given one,
     or one that mostly reads, must read completely.
  2. text: ``text=``; else, unless task is forecast, a forecast hint, an ``id=``/``time=`` or
     a date-like column points at a series, the first string column other than the target
     whose values look like prose (half or more contain whitespace, mean length > 15).
  3. id (not for text): ``id=``; else the first column named id, *_id, series, sample, item, group,
     subject, key, unique_id whose values repeat. Such a column whose values do not repeat
     is a row id: it is ignored, with a note.
  4. target: ``target=``; else the first column named label, target, y or class (any case);
     else, for a series, its only numeric column that is not true/false (several: error
     asking for --target).
  5. layout: text when 2. found a text column. With an id: series (panel) for task
     forecast, a forecast hint or a date-like time; long for task classify/regress; else
     long when the target is constant within at least half of the multi-row ids (a sample
     whose label changes is then an error naming it), series otherwise. Without an id:
     series for a time column, task forecast or a forecast hint (the CLI passes it when
     --lookback/--horizon/--season is given), or when the only numeric column is the
     target; else wide when a target is known; else an error asking for --target.
  6. task: ``task=``; else forecast for a series; classify for a string or bool target, or an
     integer-valued one with at most 20 distinct values and fewer than half the samples;
     regress otherwise. Classes are python ints when the labels are integer-valued, else
     strings (true/false labels become 'False'/'True').
  7. features: series: the target, then the other numeric columns (covariates); a
     non-numeric column is an error (drop it, encode it as numbers, or pass it as --id when
     it names the series): cellpick does not guess encodings. True/false columns count as
     numbers (0/1). wide: the numeric columns other than the target, in file order.
     long: the numeric columns other than id, step and target. text: none.
Missing values: never in the target, id or time. In a series, a covariate missing at most
5% of its values is forward- then back-filled within its series (noted); otherwise, and in
wide and long files, a missing value is an error (a wide row with empty trailing cells
gets its own message pointing at the long layout). Infinite values are always an error.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from cellpick.errors import ConfigError, DataError

LAYOUTS = ("series", "wide", "long", "text")
TASKS = ("forecast", "classify", "regress")

_SEPARATORS = (",", ";", "\t", "|")
_TARGET_NAMES = ("label", "target", "y", "class")
_TIME_NAMES = ("date", "time", "timestamp", "ds", "datetime", "period", "month", "year",
               "week", "step", "t", "position", "timestep", "time_step")
_ID_NAMES = ("id", "series", "sample", "item", "group", "subject", "key", "unique_id")
_EPOCH_NAMES = ("date", "time", "timestamp", "datetime", "ds")
_MAX_CLASSES = 20
_FILL_LIMIT = 0.05  # share of a series covariate that may be filled instead of refused
_DATE_FORMATS = (
    "ISO8601", "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y",
    "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%Y/%m/%d", "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S", "%Y.%m.%d", "%b %Y", "%B %Y", "%Y-%b", "%Y %b", "%b-%Y", "%b-%y",
    "%d-%b-%Y", "%d %b %Y", "%d %B %Y",
)
_QUARTER = re.compile(r"^\s*(\d{4})[- ]?[Qq]([1-4])\s*$")
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+(,\d+)?\s*")
_THOUSANDS = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?")
_FREQ_WORDS = {
    "Y": "yearly", "YS": "yearly", "YE": "yearly", "A": "yearly", "AS": "yearly",
    "Q": "quarterly", "QS": "quarterly", "QE": "quarterly", "M": "monthly", "MS": "monthly",
    "ME": "monthly", "W": "weekly", "B": "business-day", "D": "daily", "h": "hourly",
    "H": "hourly", "min": "minutely", "T": "minutely", "s": "secondly", "S": "secondly",
}


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
        """Human summary: layout, task, columns, and which option overrides each choice.

        `notes` are not repeated here: callers print them after it, one per line."""
        f = self.frame
        if self.layout == "series":
            parts = [f"id '{self.id}', {f[self.id].nunique()} series"] if self.id else []
            parts.append(f"time column '{self.time}'" if self.time else "row order is time")
            if self.freq:
                parts.append(_freq_word(self.freq))
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
            shown = _names([_show(c) for c in self.classes], quote=False, limit=10)
            task += f", {len(self.classes)} classes [{shown}]"
        lines = [f"data: '{self.path}'", f"layout: {layout}",
                 f"{task} — override with --target/--task"]
        if self.layout == "text":
            lines.append("features: the text itself (vocabulary learned inside the model)")
        else:
            lines.append(f"features: {len(self.features)} ({_names(self.features, quote=False)})")
        return "\n".join(lines)


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
    frame, src, notes = _read(path)
    return _Detector(frame, src, notes, target=target, task=task, id=id, time=time, text=text,
                     forecast_hint=forecast_hint, labeled=labeled).run()


def read_table(path: str | Path) -> pd.DataFrame:
    """The CSV as `load` reads it (encoding, separator, decimal marks, dropped row index),
    without detection or checks on values: for applying a model to new data."""
    return _read(path, require_values=False)[0]


# ----------------------------------------------------------------------------- reading

@dataclass
class _Source:
    """The decoded file, kept to turn a data row back into the line a user can open."""

    path: Path
    name: str
    text: str
    sep: str
    _starts: list[int] | None = None

    def line(self, row: int) -> int:
        """File line (1-based, header = line 1) where data row `row` (0-based) starts."""
        if self._starts is None:
            self._starts = [start for start, _ in _records(self.text, self.sep)][1:]
        return self._starts[row]


def _records(text: str, sep: str):
    """Yield (first line, fields) for each record pandas reads (it skips blank lines)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep, skipinitialspace=True)
    end = 0
    for fields in reader:
        start, end = end + 1, reader.line_num
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            yield start, fields


def _read(path: str | Path, require_values: bool = True
          ) -> tuple[pd.DataFrame, _Source, list[str]]:
    p, name = Path(path), str(path)
    if p.is_dir():
        raise DataError(f"data file '{name}' is a directory; pass the path of a CSV file")
    if not p.is_file():
        raise DataError(f"data file '{name}' not found; check the path")
    notes: list[str] = []
    text = _decode(p.read_bytes(), name, notes)
    if not text.strip():
        raise DataError(f"data file '{name}' is empty; it needs a header line and data rows")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sep = _sniff_sep(text)
    src = _Source(p, name, text, sep)
    header = [h.strip() for h in next(_records(text, sep))[1]]
    _check_header(header, name)
    df = _parse(text, sep, name, len(header), notes)
    if df.empty:
        raise DataError(f"data file '{name}' has a header but no data rows; add rows below it")
    df.columns = [str(c).strip() for c in df.columns]
    if sep == ";":
        df = _decimal_comma(df, text, name, notes)
    df = _thousands(df, notes)
    df = _drop_unnamed(df, notes)
    for c in df.columns[df.isna().all().to_numpy()][:1] if require_values else []:
        raise DataError(f"column '{c}' in '{name}' has no values (every cell is empty); "
                        "fill it or drop the column")
    return df, src, notes


def _parse(text: str, sep: str, name: str, width: int, notes: list[str], **kw) -> pd.DataFrame:
    """pandas.read_csv, but a row longer than the header is an error, not a shifted index."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, index_col=False,
                             low_memory=False, **kw)
        except pd.errors.ParserError:
            df = None
    if df is None or any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        for line, fields in islice(_records(text, sep), 1, None):
            if len(fields) > width and any(f.strip() for f in fields[width:]):
                raise DataError(f"line {line} of '{name}' has {len(fields)} fields but the header "
                                f"has {width}; quote values that contain '{_show_sep(sep)}' or "
                                "fix the row")
        if df is None:
            raise DataError(f"data file '{name}' is not a readable CSV; check its quoting")
        if "ignored empty trailing fields" not in " ".join(notes):
            notes.append("ignored empty trailing fields (rows end with a separator)")
    return df


def _decode(raw: bytes, name: str, notes: list[str]) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if raw.startswith(b"PK\x03\x04"):
        raise DataError(f"data file '{name}' is a zip archive (an Excel .xlsx?), not a CSV; "
                        "save or export it as CSV")
    if raw.startswith(b"\x1f\x8b"):
        raise DataError(f"data file '{name}' is gzip-compressed; decompress it to a CSV first")
    if b"\x00" in raw[:65536]:
        raise DataError(f"data file '{name}' is not a text CSV (it holds binary data); "
                        "export the data as CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        notes.append(f"read '{name}' as Windows-1252/Latin-1 (it is not valid UTF-8)")
    if _control_share(text[:65536]) > 0.01:
        raise DataError(f"data file '{name}' is not a text CSV (it holds binary data); "
                        "export the data as CSV")
    return text


def _control_share(text: str) -> float:
    bad = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f") or ch == "\x7f")
    return bad / max(len(text), 1)


def _sniff_sep(text: str) -> str:
    """The separator that gives the header's width on most of the first lines."""
    sample = "\n".join(text.split("\n", 60)[:60])
    best, best_score = ",", None
    for sep in _SEPARATORS:
        rows = [f for _, f in islice(_records(sample, sep), 50)]
        if not rows or len(rows[0]) < 2:
            continue
        agree = sum(len(r) == len(rows[0]) for r in rows) / len(rows)
        score = (agree, len(rows[0]))
        if best_score is None or score > best_score:
            best, best_score = sep, score
    return best


def _check_header(header: list[str], name: str) -> None:
    seen: dict[str, list[int]] = {}
    for i, h in enumerate(header, 1):
        if h:
            seen.setdefault(h, []).append(i)
    dups = {h: pos for h, pos in seen.items() if len(pos) > 1}
    if dups:
        what = "; ".join(f"'{h}' at columns {', '.join(map(str, pos))}" for h, pos in dups.items())
        raise DataError(f"duplicate column names in '{name}': {what}; rename them so each "
                        "column has its own name")
    if all(_is_number(h) for h in header):
        raise DataError(f"the first line of '{name}' looks like data, not column names "
                        f"({_names(header[:4])}); add a header line with column names")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _show_sep(sep: str) -> str:
    return "\\t" if sep == "\t" else sep


def _decimal_comma(df: pd.DataFrame, text: str, name: str, notes: list[str]) -> pd.DataFrame:
    for c in df.columns:
        v = df[c].dropna().astype(str) if _is_str(df[c]) else None
        if v is not None and len(v) and v.str.contains(",").any() \
                and v.str.fullmatch(_DECIMAL_COMMA).all():
            notes.append("read ',' as the decimal mark (the separator is ';')")
            out = _parse(text, ";", name, len(df.columns), notes, decimal=",")
            out.columns = df.columns
            return out
    return df


def _thousands(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Numbers written with thousands separators ("1,234", quoted) become numbers."""
    for c in df.columns:
        if not _is_str(df[c].dtype):
            continue
        v = df[c].dropna().astype(str).str.strip()
        if len(v) and v.str.contains(",").any() and v.str.fullmatch(_THOUSANDS).all():
            df[c] = pd.to_numeric(df[c].str.replace(",", "", regex=False))
            notes.append(f"read values such as '{v[v.str.contains(',')].iloc[0]}' in '{c}' as "
                         "numbers with thousands separators")
    return df


def _drop_unnamed(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    drop = []
    for i, c in enumerate(df.columns):
        if not c.startswith("Unnamed: "):
            continue
        s = df[c]
        if s.isna().all():
            drop.append(c)
            notes.append(f"dropped empty unnamed column {i + 1} (a trailing separator?)")
        elif i == 0 and _is_num(s) and (s.to_numpy() == np.arange(len(s))).all():
            drop.append(c)
            notes.append("dropped the unnamed first column (a saved row index 0..n-1)")
    return df.drop(columns=drop)


# ----------------------------------------------------------------------------- detection

class _Detector:
    """Decides layout, task and columns for one file; builds the Dataset."""

    def __init__(self, df, src, notes, *, target, task, id, time, text, forecast_hint, labeled):
        self.df, self.src, self.notes = df, src, notes
        self.opt = {"target": target, "id": id, "time": time, "text": text}
        self.task, self.hint, self.labeled = task, forecast_hint, labeled
        self.dtype = dict(zip(df.columns, df.dtypes))
        self.ignored: list[str] = []
        self.time = self.dates = self.text = self.id = self.target = None
        self._check_options()

    # -- options and columns

    def _check_options(self) -> None:
        named = {k: v for k, v in self.opt.items() if v is not None}
        for opt, col in named.items():
            if col not in self.df.columns and not (opt == "target" and not self.labeled):
                raise DataError(f"column '{col}' (--{opt}) not found in '{self.src.name}'; "
                                f"columns are: {_names(list(self.df.columns))}")
        seen: dict[str, str] = {}
        for opt, col in named.items():
            if col in seen:
                raise ConfigError(f"--{seen[col]} and --{opt} both name column '{col}'; "
                                  "each option needs its own column")
            seen[col] = opt
        if self.opt["text"] and self.task == "forecast":
            raise ConfigError("The 'task' option 'forecast' needs a series, not a --text column; "
                              "drop --text or choose --task classify or regress")

    def _free(self, *more: str | None) -> list[str]:
        """Columns not claimed by an option, a detected role, `more` or the ignore list."""
        taken = {v for v in self.opt.values() if v} | set(self.ignored) | {
            c for c in (self.time, self.id, self.text, *more) if c}
        return [c for c in self.df.columns if c not in taken]

    def _subset(self, *cols: str | None) -> pd.DataFrame:
        """A copy of the named columns, in file order."""
        keep = set(cols)
        return self.df[[c for c in self.df.columns if c in keep]].copy()

    def _named_target(self) -> str | None:
        if self.opt["target"]:
            return self.opt["target"]
        for c in self._free():
            if c.lower() in _TARGET_NAMES:
                self.notes.append(f"target '{c}' chosen by its name")
                return c
        return None

    # -- the decisions, in docstring order

    def run(self) -> Dataset:
        self.time, self.dates = self._find_time()
        self.text = self._find_text()
        self.id = self._find_id() if not self.text else None
        self.target = self._named_target()
        layout = self._layout()
        return getattr(self, f"_{layout}")()

    def _find_time(self) -> tuple[str | None, pd.Series | None]:
        df, given = self.df, self.opt["time"]
        if given:
            return given, self._time_values(given, strict=True)
        skip = [c for c in df.columns if c.lower() in _TARGET_NAMES]
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
            if _is_str(self.dtype[c]) and df[c].notna().all():
                dates, fmt, _ = _parse_dates(df[c])
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
        if _is_str(s):
            dates, fmt, ok = _parse_dates(s)
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
        if not _is_num(s) or s.dtype == bool:
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
            if _try_format(s, other).notna().all():
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
            if c != target and c.lower() not in _TARGET_NAMES and _is_str(self.dtype[c]) \
                    and _looks_like_text(self.df[c]):
                self.notes.append(f"text column '{c}' detected: its values are free text")
                return c
        return None

    def _find_id(self) -> str | None:
        if self.opt["id"]:
            return self.opt["id"]
        for c in self._free():
            low = c.lower()
            if low in _TARGET_NAMES or not (low in _ID_NAMES or low.endswith(("_id", " id"))):
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
                   if c in self.dtype and _is_num(self.dtype[c])]
        if self.task is None and len(numeric) == 1 and target in (None, numeric[0]):
            return "series"
        if target is not None or not self.labeled:
            return "wide"
        raise DataError(f"cannot tell which column to predict in '{self.src.name}': no column "
                        f"is named label/target/y/class; pass --target COL (one of "
                        f"{_names(list(self.df.columns))}), and --task forecast for a time series")

    # -- builders, one per layout

    def _series(self) -> Dataset:
        df, name, tid, tcol = self.df, self.src.name, self.id, self.time
        if self.opt["target"] and self.opt["target"] not in df.columns:
            raise DataError(f"column '{self.opt['target']}' (--target) not found in '{name}'; a "
                            "series needs the history of its target to forecast")
        target = self.target
        free = self._free()
        if target is None:
            numeric = [c for c in free if _is_num(self.dtype[c]) and self.dtype[c] != bool]
            if not numeric and free:
                self._not_numeric(free[0], "a series needs a numeric column to forecast")
            if len(numeric) != 1:
                raise DataError(f"cannot tell which column to forecast in '{name}': "
                                f"{len(numeric)} numeric columns ({_names(numeric)}); pass "
                                "--target COL")
            target = numeric[0]
            self.notes.append(f"target '{target}' is the only numeric column")
        if not _is_num(df[target]) or df[target].dtype == bool:
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
        freq = self._freq(frame, tid, tcol) if self.dates is not None else None
        return self._dataset(frame, "series", "forecast", target, features=[target, *covariates],
                             time=tcol, id=tid, freq=freq)

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
                            f"pass --target COL (one of {_names(self._free())})")
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
        y = None
        if has_y:
            self._check_target(frame, target)
            per = frame.groupby(sid, sort=False)[target]
            varying = per.nunique() > 1
            if varying.any():
                bad = varying.index[varying.argmax()]
                rows = frame[frame[sid] == bad]
                first = rows[target].iloc[0]
                other = rows[rows[target] != first].index[0]
                raise DataError(
                    f"label '{target}' changes within sample {_show(bad)} in '{name}' "
                    f"({_show(first)} at line {self.src.line(int(rows.index[0]))}, "
                    f"{_show(rows[target][other])} at line {self.src.line(int(other))}); each "
                    f"sample (--id '{sid}') needs one label")
            y = per.first()
        sizes = frame.groupby(sid, sort=False).size()
        if sizes.min() != sizes.max():
            self.notes.append(f"sequence lengths vary from {sizes.min()} to {sizes.max()} steps "
                              "(padded and masked)")
        return self._labeled(frame, "long", target, y, features=free, time=step, id=sid)

    def _text(self) -> Dataset:
        df, name, col = self.df, self.src.name, self.text
        if not _is_str(df[col]):
            raise DataError(f"column '{col}' (--text) in '{name}' holds numbers, not text; pass "
                            "the column with the text")
        target = self.target
        if target is None:
            rest = self._free()
            if len(rest) != 1:
                raise DataError(f"cannot tell which column is the label in '{name}'; pass "
                                f"--target COL (one of {_names(rest)})")
            target = rest[0]
            self.notes.append(f"target '{target}' is the only column besides the text")
        has_y = target in df.columns
        frame = self._subset(col, target)
        missing = int(frame[col].isna().sum())
        if missing:
            frame[col] = frame[col].fillna("")
            self.notes.append(f"{_count(missing, 'empty text')} in '{col}' read as ''")
        frame[col] = frame[col].astype(str)
        if has_y:
            self._check_target(frame, target)
        rest = self._free(target)
        if rest:
            self.notes.append(f"ignored columns {_names(rest)} (a text model reads only "
                              f"'{col}')")
        return self._labeled(frame, "text", target, frame[target] if has_y else None, text=col)

    # -- shared checks and finishing

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
            if not _is_num(y) or y.dtype == bool:
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
        if _is_num(s) and s.dtype != bool:
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
                            f"({_show(counts.index[0])}); classification needs at least two")
        once = counts[counts == 1]
        if len(once):
            raise DataError(f"class {_show(once.index[0])} of target '{target}' has only one "
                            f"sample in '{self.src.name}'; a stratified split needs at least 2 per "
                            "class: add samples or drop that class")

    def _sort(self, frame, gid, tcol, what) -> pd.DataFrame:
        """Sort by (id, time), report unsorted input, refuse duplicate time stamps."""
        if tcol is None:
            return frame.sort_values(gid, kind="stable") if gid else frame
        raw = frame[tcol]
        if self.dates is not None:
            frame[tcol] = self.dates
        keys = [gid, tcol] if gid else [tcol]
        ordered = frame.sort_values(keys, kind="stable")
        by_id = frame.sort_values(gid, kind="stable") if gid else frame
        in_order = bool((ordered.index == by_id.index).all())
        dup = ordered.duplicated(keys, keep=False)
        if dup.any():
            first = ordered[dup].iloc[0]
            same = ordered[dup & (ordered[keys] == first[keys]).all(axis=1)]
            lines = " and ".join(str(self.src.line(int(i))) for i in sorted(same.index)[:2])
            value = raw[same.index[0]]
            if gid and what == "sample":
                raise DataError(f"step '{value}' appears {len(same)} times in sample "
                                f"{_show(first[gid])} of '{self.src.name}' (lines {lines}); "
                                f"each sample needs one row per value of '{tcol}'")
            if gid:
                raise DataError(f"series {_show(first[gid])} has time '{value}' {len(same)} times "
                                f"in '{self.src.name}' (lines {lines}); each series needs one row "
                                "per time step: drop or aggregate the duplicates")
            raise DataError(f"time '{value}' appears {len(same)} times in column '{tcol}' of "
                            f"'{self.src.name}' (lines {lines}); one row per time step: if the "
                            "file holds several series pass --id COL, else drop the duplicates")
        if not in_order:
            by = f"'{gid}', '{tcol}'" if gid else f"'{tcol}'"
            self.notes.append(f"sorted {len(frame)} rows by {by} (file was not in "
                              f"{'time' if what == 'series' else 'step'} order)")
        return ordered

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
        self.notes.append(f"filled {_count(n, 'missing value')} in '{col}' (first at line {first}) "
                          "forward, then backward, within each series")

    def _freq(self, frame: pd.DataFrame, gid: str | None, tcol: str) -> str | None:
        """Regular step of the first series; report gaps against the step it seems to have."""
        times = ([pd.DatetimeIndex(t) for _, t in frame.groupby(gid, sort=False)[tcol]] if gid
                 else [pd.DatetimeIndex(frame[tcol])])
        freq = _infer_freq(times[0])
        grid = freq or _grid_freq(times[0])
        if grid is None:
            self.notes.append(f"time steps in '{tcol}' are irregular; forecasts are numbered "
                              "steps, not dates")
            return None
        gaps = missing = 0
        for t in times:
            if len(t) < 2:
                continue
            full = pd.date_range(t[0], t[-1], freq=grid)
            if len(full) > 10 * len(t) + 1000 or not t.isin(full).all():
                self.notes.append(f"time steps in '{tcol}' do not all follow {_freq_word(grid)} "
                                  "steps")
                return freq
            present = full.isin(t)
            missing += int((~present).sum())
            gaps += int((np.diff(present.astype(int)) == -1).sum())
        if missing:
            self.notes.append(f"{_count(gaps, 'gap')} in '{tcol}' (expected {_freq_word(grid)} "
                              f"steps; {_count(missing, 'time stamp')} missing)")
        return freq


# ----------------------------------------------------------------------------- helpers

def _is_num(s) -> bool:
    """For a Series or a dtype; bool counts as numeric (0/1)."""
    return pd.api.types.is_numeric_dtype(s)


def _non_numeric(df: pd.DataFrame, cols: list[str]) -> list[str]:
    return [c for c, t in zip(cols, df[cols].dtypes) if not _is_num(t)]


def _is_str(s) -> bool:
    """For a Series or a dtype."""
    return pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)


def _show(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _names(items, quote: bool = True, limit: int = 8) -> str:
    shown = [f"'{i}'" if quote else str(i) for i in items]
    if len(shown) > limit:
        shown = shown[: limit - 2] + ["...", shown[-1]]
    return ", ".join(shown)


def _steps(frame: pd.DataFrame, gid: str | None) -> str:
    if not gid:
        return f"{len(frame)} steps"
    sizes = frame.groupby(gid, sort=False).size()
    if sizes.min() == sizes.max():
        return f"{sizes.min()} steps each"
    return f"{sizes.min()}-{sizes.max()} steps"


def _looks_like_text(s: pd.Series) -> bool:
    if not _is_str(s):
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


def _try_format(s: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(s, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            return pd.Series(pd.NaT, index=s.index)


def _parse_dates(s: pd.Series) -> tuple[pd.Series | None, str | None, float]:
    """Dates read with the first format that reads a sample of `s`; NaT where a value does
    not read. Returns (dates or None, format, share of the sample read)."""
    s = s.astype(str).str.strip()
    sample = s.head(50)
    if sample.str.fullmatch(_QUARTER).all():
        q = s.str.replace(_QUARTER, r"\1Q\2", regex=True)
        ok = q.str.fullmatch(r"\d{4}Q[1-4]")
        dates = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
        dates[ok] = pd.PeriodIndex(q[ok], freq="Q").to_timestamp()
        return dates, "quarter", 1.0
    best, best_ok = None, 0.0
    for fmt in _DATE_FORMATS:
        ok = _try_format(sample, fmt).notna().mean()
        if ok == 1.0:
            dates = _try_format(s, fmt)
            if dates.notna().all():
                return dates, fmt, 1.0
        if ok > best_ok:
            best, best_ok = fmt, ok
    if best is None:
        return None, None, 0.0
    return _try_format(s, best), best, best_ok


def _infer_freq(t: pd.DatetimeIndex) -> str | None:
    if len(t) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f = pd.infer_freq(t)
        except (TypeError, ValueError):
            return None
    return getattr(f, "freqstr", f)


def _grid_freq(t: pd.DatetimeIndex) -> str | None:
    """The coarsest common step whose grid from the first to the last stamp holds them all."""
    if len(t) < 3:
        return None
    mon, day = t[0].month_name()[:3].upper(), t[0].day_name()[:3].upper()
    candidates = [f"YS-{mon}", f"YE-{mon}", f"QS-{mon}", f"QE-{mon}", "MS", "ME", f"W-{day}"]
    if (t.day_of_week < 5).all():
        candidates.append("B")
    candidates += ["D", "h", "min", "s"]
    for alias in candidates:
        try:
            full = pd.date_range(t[0], t[-1], freq=alias)
        except ValueError:
            continue
        if 0 < len(full) <= 10 * len(t) + 1000 and t.isin(full).all():
            return alias
    return None


def _freq_word(freq: str) -> str:
    m = re.fullmatch(r"(\d*)([A-Za-z]+)(-\w+)?", freq)
    word = _FREQ_WORDS.get(m.group(2)) if m else None
    if word is None or (m and m.group(1) not in ("", "1")):
        return f"every '{freq}'"
    return word


def _py(v):
    """numpy scalar -> python int or str, as `Dataset.classes` promises."""
    return int(v) if isinstance(v, (int, np.integer)) else str(v)


def _detect_task(y: pd.Series) -> str:
    """classify or regress for one label per sample (a series is forecast before this)."""
    if y.dtype == bool or not _is_num(y):
        return "classify"
    v = y.to_numpy(float)
    n = y.nunique()
    if np.all(v == np.round(v)) and n <= _MAX_CLASSES and n < len(y) / 2:
        return "classify"
    return "regress"


def _task_reason(y: pd.Series, task: str) -> str:
    if task == "regress":
        return "numeric target with many values"
    if y.dtype == bool or not _is_num(y):
        return "text or true/false labels"
    return f"integer target with {y.nunique()} distinct values"


def _class_values(y: pd.Series) -> pd.Series:
    """Labels as python-friendly values: int64 when integer-valued numbers, else str."""
    if _is_num(y) and y.dtype != bool:
        v = y.to_numpy(float)
        if np.all(v == np.round(v)):
            return y.astype("int64")
        return y.map(lambda x: f"{x:g}")
    return y.astype(str)
