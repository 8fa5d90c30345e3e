"""The season detected in a series' values (data/season.py): autocorrelation on training rows
only, the most common per series of a panel. The calendar's season: test_calendar.py."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from cellpick.data import season as season_mod
from cellpick.data.season import detect_season

AIRLINE = Path(__file__).resolve().parents[2] / "recipes" / "data" / "airline_train.csv"


def test_detect_season_airline_monthly():
    y = pd.read_csv(AIRLINE)["value"].to_numpy()
    assert detect_season(y, 24) == 12
    assert detect_season(y, 48) == 12


def test_detect_season_white_noise_and_short_series():
    rng = np.random.default_rng(0)
    assert detect_season(rng.normal(size=200), 50) is None
    assert detect_season(np.cumsum(rng.normal(size=200)), 50) is None
    assert detect_season([1.0, 2.0, 3.0], 12) is None
    assert detect_season(np.ones(50), 12) is None


def test_detect_season_noisy_weekly_sine():
    rng = np.random.default_rng(3)
    t = np.arange(140)
    y = 10 + np.sin(2 * np.pi * t / 7) + 0.3 * rng.normal(size=140) + 0.05 * t
    assert detect_season(y, 21) == 7


def test_season_is_detected_on_training_rows_only():
    t = np.arange(300)
    # Training rows cycle every 7 steps; the later rows (validation, test) every 10 steps.
    y = np.concatenate([np.sin(2 * np.pi * t[:180] / 7), 3 * np.sin(2 * np.pi * t[180:] / 10)])
    ds = SimpleNamespace(freq=None, frame=pd.DataFrame({"y": y}), id=None, target="y")
    rows = season_mod.training_rows(ds, horizon=1, test_size=0.2)
    assert len(rows[0]) == 180
    assert season_mod.season_for(ds, rows) == (7, "detected on training rows")


def test_panel_season_is_the_most_common_per_series():
    t = np.arange(90)  # fewer than two weekly seasons (104 rows)
    rows = [np.sin(2 * np.pi * t / 6), np.sin(2 * np.pi * t / 6) + 0.1, np.sin(2 * np.pi * t / 9)]
    ds = SimpleNamespace(freq="2h")  # a multiple: the calendar says nothing
    assert season_mod.season_for(ds, rows) == (6, "detected on training rows")
    # Too few training rows for the calendar's season: detected instead, and said so.
    season, how = season_mod.season_for(SimpleNamespace(freq="W-SUN"), rows)
    assert season == 6 and how.startswith("calendar: weekly (52) needs 104 training rows per series, the shortest has 90")
