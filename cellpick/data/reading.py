"""Read a CSV into a DataFrame: decoding, separator, header, decimal marks, thousands.

  * The separator is the one of ``,`` ``;`` tab ``|`` that splits the first lines into
    rows of the header's width most consistently (ties: more columns, then ``,``).
  * A UTF-8 BOM is dropped; UTF-16 is decoded by its BOM; a file that is not UTF-8 is
    read as Windows-1252, else Latin-1 (noted). Binary files (zip/xlsx, gzip, NUL bytes) are refused.
  * With ``;`` as separator, columns written with a decimal comma (``1,5``) become numbers;
    quoted numbers with thousands separators (``"1,234"``) become numbers too (noted).
  * Unnamed columns (an empty header cell) that are empty, or that hold a saved row index
    0..n-1 in first position, are dropped with a note. Duplicate names are an error.
  * Rows in messages are *file line numbers* (the header is line 1).
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from cellpick.errors import DataError

_SEPARATORS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+(,\d+)?\s*")
_THOUSANDS = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?")


def read_table(path: str | Path) -> pd.DataFrame:
    """The CSV as `load` reads it (encoding, separator, decimal marks, dropped row index),
    without detection or checks on values: for applying a model to new data."""
    return read(path, require_values=False)[0]

@dataclass
class Source:
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

def read(path: str | Path, require_values: bool = True
          ) -> tuple[pd.DataFrame, Source, list[str]]:
    p, name = Path(path), str(path)
    if p.is_dir():
        raise DataError(f"data file '{name}' is a directory; pass the path of a CSV file")
    if not p.is_file():
        raise DataError(f"data file '{name}' not found; check the path")
    notes: list[str] = []
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"data file '{name}' cannot be read ({e.strerror}); check its "
                        "permissions") from None
    text = _decode(raw, name, notes)
    if not text.strip():
        raise DataError(f"data file '{name}' is empty; it needs a header line and data rows")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sep = _sniff_sep(text)
    src = Source(p, name, text, sep)
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
                        f"({names(header[:4])}); add a header line with column names")

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
        v = df[c].dropna().astype(str) if is_str(df[c]) else None
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
        if not is_str(df[c].dtype):
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
        elif i == 0 and is_num(s) and (s.to_numpy() == np.arange(len(s))).all():
            drop.append(c)
            notes.append("dropped the unnamed first column (a saved row index 0..n-1)")
    return df.drop(columns=drop)

# ----------------------------------------------------------------------------- shared by the data modules

def is_num(s) -> bool:
    """For a Series or a dtype; bool counts as numeric (0/1)."""
    return pd.api.types.is_numeric_dtype(s)

def is_str(s) -> bool:
    """For a Series or a dtype."""
    return pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)

def names(items, quote: bool = True, limit: int = 8) -> str:
    shown = [f"'{i}'" if quote else str(i) for i in items]
    if len(shown) > limit:
        shown = shown[: limit - 2] + ["...", shown[-1]]
    return ", ".join(shown)

def show(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)

def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
