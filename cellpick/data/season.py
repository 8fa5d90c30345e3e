"""The season of a series: from the calendar first, detected on training rows otherwise.

A regular time column (Dataset.freq, a pandas offset alias such as "MS", "QS-JAN", "W-SUN",
"D", "h") fixes the season: the cycle a calendar repeats (12 months a year, 7 days a week,
...). A calendar with gaps (missing stamps) is still its calendar. Only when the time step
is irregular, step-indexed (no dates), a multiple ("2h"), yearly, or when the training rows
hold fewer than two calendar seasons, is it detected from the autocorrelation of the
training rows (`detect_season`): per series for a panel, and the most common value is
the fit's one season. Validation and test rows never take part.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from cellpick.data.prepared import series_blocks, series_groups

# Offset alias (without its anchor, e.g. "QS" of "QS-JAN") -> (season, word).
CALENDAR: dict[str, tuple[int | None, str]] = {
    "Y": (None, "yearly"), "YS": (None, "yearly"), "YE": (None, "yearly"),
    "A": (None, "yearly"), "AS": (None, "yearly"),
    "Q": (4, "quarterly"), "QS": (4, "quarterly"), "QE": (4, "quarterly"),
    "M": (12, "monthly"), "MS": (12, "monthly"), "ME": (12, "monthly"),
    "W": (52, "weekly"),
    "B": (5, "business-day"),
    "D": (7, "daily"),
    "h": (24, "hourly"), "H": (24, "hourly"),
    "min": (60, "minutely"), "T": (60, "minutely"),
    "s": (60, "secondly"), "S": (60, "secondly"),
}


def calendar_season(freq: str | None) -> tuple[int | None, str | None]:
    """(season, word) for a pandas offset alias; (None, None) when the calendar says nothing
    (no or an unknown alias, or a multiple such as "2h"). Yearly data: (None, "yearly")."""
    if not freq:
        return None, None
    m = re.fullmatch(r"(\d*)([A-Za-z]+)(-\w+)?", freq)
    if not m or m.group(1) not in ("", "1") or m.group(2) not in CALENDAR:
        return None, None
    return CALENDAR[m.group(2)]


def detect(train_rows_per_series: list[np.ndarray]) -> int | None:
    """The most common season detected per series on its training rows (None when most
    series show none). Ties go to the shorter season."""
    found = []
    for y in train_rows_per_series:
        y = np.asarray(y, dtype=float).reshape(-1)
        found.append(detect_season(y, max_lag=max(2, len(y) // 3)) if len(y) >= 6 else None)
    seasons = Counter(s for s in found if s is not None)
    if not seasons:
        return None
    best, count = min(seasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return best if count >= found.count(None) else None


def season_for(ds, train_rows_per_series: list[np.ndarray]) -> tuple[int | None, str]:
    """(season, how) for a series Dataset: the calendar's season when `ds.freq` is regular
    and the shortest series has two seasons of training rows, else detected on
    `train_rows_per_series` (1-D target arrays, training rows only). `how` is for printing:
    "calendar: monthly", "detected on training rows", "none detected on training rows", ...
    """
    season, word = calendar_season(getattr(ds, "freq", None))
    shortest = min((len(y) for y in train_rows_per_series), default=0)
    if season is not None and shortest >= 2 * season:
        return season, f"calendar: {word}"
    if season is not None:
        why = (f"calendar: {word} ({season}) needs {2 * season} training rows per series, "
               f"the shortest has {shortest}; ")
    elif word == "yearly":
        why = "calendar: yearly (no season within a year); "
    else:
        why = ""
    found = detect(train_rows_per_series)
    if found is None:
        return None, why + "none detected on training rows"
    return found, why + "detected on training rows"


def training_rows(ds, horizon: int, test_size: float) -> list[np.ndarray]:
    """Each series' training target rows, split as data.prepared.prepare splits them (so the
    season is known before the windows, whose default lookback depends on it)."""
    out = []
    for g in series_groups(ds):
        y = g[ds.target].to_numpy(dtype="float64")
        n_val, n_test = series_blocks(len(y), horizon, test_size)
        out.append(y[: max(0, len(y) - n_val - n_test)])
    return out


def detect_season(y, max_lag: int) -> int | None:
    """The seasonal period of a training target from its autocorrelation, or None.

    The series is detrended with a least-squares line (a trend would otherwise dominate every
    lag). A lag in 2..max_lag (at most half the length) is a candidate when its ACF is a local
    maximum, exceeds max(0.3, 2.5/sqrt(n)) (noise alone rarely does) and rises at least 0.3
    above the lowest ACF at a shorter lag (a real cycle dips between peaks; a slow drift
    does not). The candidate with the highest ACF wins, except that a candidate dividing it
    with at least 80% of its ACF wins instead (12 rather than its multiple 24).
    """
    y = np.asarray(y, dtype=float).reshape(-1)
    y = y[np.isfinite(y)]
    n = len(y)
    max_lag = min(int(max_lag), n // 2)
    if max_lag < 2:
        return None
    t = np.arange(n)
    x = y - np.polyval(np.polyfit(t, y, 1), t)
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 1e-12 * max(1.0, float(np.dot(y, y))):
        return None
    nlags = min(max_lag + 1, n - 1)
    acf = np.array([1.0] + [float(np.dot(x[k:], x[:-k])) / denom for k in range(1, nlags + 1)])
    threshold = max(0.3, 2.5 / math.sqrt(n))
    candidates = {}
    for k in range(2, max_lag + 1):
        peak = acf[k] > acf[k - 1] and (k + 1 >= len(acf) or acf[k] >= acf[k + 1])
        if peak and acf[k] > threshold and acf[k] - acf[1:k].min() >= 0.3:
            candidates[k] = acf[k]
    if not candidates:
        return None
    best = max(candidates, key=candidates.get)
    for k in sorted(candidates):
        if k < best and candidates[k] >= 0.8 * candidates[best]:
            ratio = best / k
            if abs(ratio - round(ratio)) < 0.1:
                return k
    return best
