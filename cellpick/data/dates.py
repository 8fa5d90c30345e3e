"""Dates and time steps: reading a date column in one format, naming its frequency."""
from __future__ import annotations

import re
import warnings

import pandas as pd

_DATE_FORMATS = (
    "ISO8601", "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y",
    "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%Y/%m/%d", "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S", "%Y.%m.%d", "%b %Y", "%B %Y", "%Y-%b", "%Y %b", "%b-%Y", "%b-%y",
    "%d-%b-%Y", "%d %b %Y", "%d %B %Y",
)
_QUARTER = re.compile(r"^\s*(\d{4})[- ]?[Qq]([1-4])\s*$")
_FREQ_WORDS = {
    "Y": "yearly", "YS": "yearly", "YE": "yearly", "A": "yearly", "AS": "yearly",
    "Q": "quarterly", "QS": "quarterly", "QE": "quarterly", "M": "monthly", "MS": "monthly",
    "ME": "monthly", "W": "weekly", "B": "business-day", "D": "daily", "h": "hourly",
    "H": "hourly", "min": "minutely", "T": "minutely", "s": "secondly", "S": "secondly",
}



def try_format(s: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(s, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            return pd.Series(pd.NaT, index=s.index)

def parse_dates(s: pd.Series) -> tuple[pd.Series | None, str | None, float]:
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
        ok = try_format(sample, fmt).notna().mean()
        if ok == 1.0:
            dates = try_format(s, fmt)
            if dates.notna().all():
                return dates, fmt, 1.0
        if ok > best_ok:
            best, best_ok = fmt, ok
    if best is None:
        return None, None, 0.0
    return try_format(s, best), best, best_ok

def infer_freq(t: pd.DatetimeIndex) -> str | None:
    if len(t) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f = pd.infer_freq(t)
        except (TypeError, ValueError):
            return None
    return _first_anchor(getattr(f, "freqstr", f))


_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def _first_anchor(freq: str | None) -> str | None:
    """One name per quarterly grid: pandas 2 calls Jan/Apr/Jul/Oct starts 'QS-OCT', pandas 3
    'QS-JAN'; both are the same grid. Starts are named by their first month of the year
    (QS-JAN), ends by their last (QE-DEC), as pandas 3 does."""
    head, _, month = (freq or "").partition("-")
    kind = head.lstrip("0123456789")
    if kind not in ("Q", "QS", "QE", "BQS", "BQE") or month not in _MONTHS:
        return freq
    first = _MONTHS.index(month) % 3
    return f"{head}-{_MONTHS[first if kind.endswith('S') else first + 9]}"

def grid_freq(t: pd.DatetimeIndex) -> str | None:
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

def freq_word(freq: str) -> str:
    m = re.fullmatch(r"(\d*)([A-Za-z]+)(-\w+)?", freq)
    word = _FREQ_WORDS.get(m.group(2)) if m else None
    if word is None or (m and m.group(1) not in ("", "1")):
        return f"every '{freq}'"
    return word
