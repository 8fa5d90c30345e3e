"""Calendars with gaps and duplicate stamps (docs/calendars.md): the season comes from the
calendar, no window spans a gap, a few duplicates keep the last line."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import hourly_with_a_missing_month

from cellpick.data.detection import load
from cellpick.data.folds import resample
from cellpick.data.prepared import prepare
from cellpick.data.season import season_for, training_rows
from cellpick.errors import DataError
from cellpick.output.inference import _future


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "d.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def window_rows(prep, split: str) -> np.ndarray:
    """(windows, lookback + horizon) rows of _values each window of `split` reads."""
    starts = prep._starts[split]
    return starts[:, None] + np.arange(prep.lookback + prep.horizon)[None, :]


def assert_no_window_spans_a_gap(ds, prep, splits) -> None:
    span = prep.lookback + prep.horizon
    for split in splits:
        pos = ds.positions[window_rows(prep, split)]
        assert (pos[:, -1] - pos[:, 0] == span - 1).all(), split


# ----------------------------------------------------------------------------- gaps


def test_hourly_calendar_with_a_missing_month_is_hourly(tmp_path):
    ds = load(hourly_with_a_missing_month(tmp_path), target="load")
    assert ds.freq == "h"
    assert ("1 gap in 'time' (expected hourly steps; 744 time stamps missing): no window "
            "spans a gap") in ds.notes
    assert ds.positions[298:302].tolist() == [298, 299, 1044, 1045]
    assert season_for(ds, training_rows(ds, 4, 0.2)) == (24, "calendar: hourly")


def test_no_window_spans_the_gap(tmp_path):
    ds = load(hourly_with_a_missing_month(tmp_path), target="load")
    prep = prepare(ds, lookback=24, horizon=4, test_size=0.2)
    assert_no_window_spans_a_gap(ds, prep, ("train", "val", "test"))
    # 600 - 28 + 1 = 573 windows, of which the 27 reading both row 299 and row 300 are gone:
    # the last before the gap ends at row 299, the first after it starts at row 300.
    kept = np.concatenate(list(prep._starts.values()))
    assert set(range(273, 300)).isdisjoint(kept)
    assert 272 in kept and 300 in kept
    assert prep.notes == ["the gaps in 'time' remove 27 of 573 windows (no window of 24 + 4 "
                          "steps spans a gap)"]
    assert prep.sizes == {"train": 306, "val": 117, "test": 117}


def test_folds_never_span_the_gap(tmp_path):
    ds = load(hourly_with_a_missing_month(tmp_path), target="load")
    r = resample(ds, lookback=24, horizon=4, folds=2, seeds=1, seed=0, test_size=0.2)
    assert r.folds == 2 and r.notes == []
    for unit in r.units:
        assert_no_window_spans_a_gap(ds, unit.prep, ("train", "val", "score"))
    # The first origin scores rows 240..359, across the gap: 27 of its 117 windows are gone.
    assert [u.prep.sizes["score"] for u in r.units] == [90, 117]


def test_monthly_calendar_with_a_short_and_a_long_gap(tmp_path):
    """A missing month (at most a quarter of the season) is closed; five missing months are a
    gap that no window spans."""
    months = pd.date_range("2010-01-01", periods=72, freq="MS")
    keep = np.setdiff1d(np.arange(72), [20, 21, 22, 23, 24, 50])
    y = 10 + np.sin(2 * np.pi * keep / 12) + 0.01 * keep
    ds = load(write(tmp_path, pd.DataFrame({"month": months[keep].strftime("%Y-%m"), "y": y})))
    assert ds.freq == "MS"
    assert ("1 short gap of at most 3 missing monthly steps in 'month' closed (the rows on "
            "either side are neighbours)") in ds.notes
    assert "1 gap in 'month' (expected monthly steps; 5 time stamps missing): no window spans " \
           "a gap" in ds.notes
    assert ds.positions.tolist() == np.where(keep > 50, keep - 1, keep).tolist()
    assert season_for(ds, training_rows(ds, 1, 0.2)) == (12, "calendar: monthly")
    prep = prepare(ds, lookback=6, horizon=1, test_size=0.2)
    assert_no_window_spans_a_gap(ds, prep, ("train", "val", "test"))
    # 66 rows: 60 windows of 7 rows, 6 of them read across the long gap.
    assert prep.notes == ["the gaps in 'month' remove 6 of 60 windows (no window of 6 + 1 "
                          "steps spans a gap)"]


def test_panel_gaps_are_per_series(tmp_path):
    days = pd.date_range("2022-01-03", periods=60, freq="D")
    a, b = days[np.r_[0:30, 35:60]], days
    frame = pd.DataFrame({"store": ["a"] * len(a) + ["b"] * len(b),
                          "date": np.r_[a.strftime("%Y-%m-%d"), b.strftime("%Y-%m-%d")],
                          "y": np.r_[np.arange(len(a)), np.arange(len(b)) * 2.0]})
    ds = load(write(tmp_path, frame), id="store", target="y")
    assert ds.freq == "D"
    assert ds.positions[:len(a)].tolist() == list(range(30)) + list(range(35, 60))
    assert ds.positions[len(a):].tolist() == list(range(60))
    prep = prepare(ds, lookback=7, horizon=2, test_size=0.2)
    assert_no_window_spans_a_gap(ds, prep, ("train", "val", "test"))
    assert prep.notes == ["the gaps in 'date' remove 8 of 99 windows (no window of 7 + 2 steps "
                          "spans a gap)"]


def test_an_origin_the_gaps_empty_is_dropped(tmp_path):
    stamps = pd.date_range("2021-01-01", periods=300, freq="D")[np.r_[0:96, 100:204]]
    ds = load(write(tmp_path, pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"),
                                            "y": np.sin(np.arange(200) / 3)})))
    # Origins at rows 80, 96, 112, 128, 144 (blocks of 16): the gap before row 96 leaves the
    # second origin no scoring window and the third no validation window (lookback 20).
    r = resample(ds, lookback=20, horizon=2, folds=5, seeds=1, seed=0, test_size=0.2)
    assert r.folds == 3 and [u.fold for u in r.units] == [0, 1, 2]
    assert r.notes == ["the gaps in 'date' leave origins 2, 3 of 5 without windows: 3 rolling "
                       "origins"]


def test_gaps_that_leave_no_window_are_refused(tmp_path):
    stamps = pd.date_range("2021-01-01", periods=400, freq="D")[np.arange(400) % 12 < 10][:200]
    ds = load(write(tmp_path, pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"),
                                            "y": np.sin(np.arange(200) / 3)})))
    with pytest.raises(DataError, match=r"the gaps in 'date' leave no training window of "
                                        r"lookback 12 \+ horizon 1 \(no window spans a gap\)"):
        prepare(ds, lookback=12, horizon=1, test_size=0.2)
    with pytest.raises(DataError, match=r"the gaps in 'date' leave 0 of 5 rolling origins"):
        resample(ds, lookback=12, horizon=1, folds=5, seeds=1, seed=0, test_size=0.2)


def test_mostly_off_grid_steps_are_irregular(tmp_path):
    # Daily stamps and one at noon all lie on an hourly grid, but hardly a step is one hour.
    stamps = [f"2020-01-0{d}" for d in range(1, 9)] + ["2020-01-09 12:00"]
    ds = load(write(tmp_path, pd.DataFrame({"date": stamps, "y": np.arange(9.0)})))
    assert (ds.freq, ds.positions) == (None, None)
    assert any("are irregular" in n for n in ds.notes)


def test_future_stamps_continue_the_grid_from_the_last_row():
    assert _future(pd.Timestamp("2024-02-25 23:00"), "h", 2) == ["2024-02-26",
                                                                 "2024-02-26T01:00:00"]
    assert _future(pd.Timestamp("2024-05-01"), "MS", 2) == ["2024-06-01", "2024-07-01"]


# ----------------------------------------------------------------------------- no gaps


def test_step_indexed_and_regular_series_keep_every_window(tmp_path):
    y = np.sin(np.arange(40) / 2)
    steps = load(write(tmp_path, pd.DataFrame({"y": y}), "s.csv"), task="forecast")
    dated = load(write(tmp_path, pd.DataFrame({
        "date": pd.date_range("2020-01-01", periods=40, freq="D").strftime("%Y-%m-%d"), "y": y}),
        "d.csv"))
    assert (steps.positions, dated.positions, dated.freq) == (None, None, "D")
    for ds in (steps, dated):
        prep = prepare(ds, lookback=5, horizon=2, test_size=0.2)
        # 40 rows: test rows 32..39, validation 24..31; a window's target span lies in its block.
        assert prep._starts["train"].tolist() == list(range(0, 18))
        assert prep._starts["val"].tolist() == list(range(19, 26))
        assert prep._starts["test"].tolist() == list(range(27, 34))
        assert prep.notes == []


# ----------------------------------------------------------------------------- duplicates


def hourly_rows(n: int) -> list[str]:
    stamps = pd.date_range("2024-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M")
    return [f"{t},{i}" for i, t in enumerate(stamps)]


def test_a_few_duplicate_stamps_keep_the_last_line(tmp_path):
    rows = hourly_rows(300)
    # Lines 12 and 41 repeat the stamps of lines 11 and 40 (line 1 is the header).
    rows.insert(10, rows[9].split(",")[0] + ",1000")
    rows.insert(39, rows[38].split(",")[0] + ",2000")
    path = tmp_path / "d.csv"
    path.write_text("time,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ds = load(path)
    assert len(ds.frame) == 300 and ds.freq == "h" and ds.positions is None
    assert ds.frame["y"].iloc[9] == 1000 and ds.frame["y"].iloc[37] == 2000
    assert ("2 time stamps in 'time' repeated: kept the last line of each and dropped 2 earlier "
            "rows (first at lines 11 and 12; a later line is taken as a correction)") in ds.notes


def test_duplicates_count_per_series_of_a_panel(tmp_path):
    a = [f"a,{r}" for r in hourly_rows(100)]
    b = [f"b,{r}" for r in hourly_rows(100)]
    a.append(a[50].rsplit(",", 1)[0] + ",-1")  # one repeat in 100 rows: 1%, kept last
    path = tmp_path / "d.csv"
    path.write_text("store,time,y\n" + "\n".join(a + b) + "\n", encoding="utf-8")
    ds = load(path, id="store", target="y")
    assert len(ds.frame) == 200 and ds.frame["y"].iloc[50] == -1
    assert any("1 time stamp in 'time' repeated" in n and "lines 52 and 102" in n
               for n in ds.notes)
    b.append(b[7].rsplit(",", 1)[0] + ",-2")
    b.append(b[8].rsplit(",", 1)[0] + ",-3")  # two repeats in series b: more than 1%
    path.write_text("store,time,y\n" + "\n".join(a + b) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"series 'b' has time '2024-01-01 07:00' 2 times .*"
                                        r"\(lines 110 and 203\)"):
        load(path, id="store", target="y")


def test_many_duplicate_stamps_are_refused(tmp_path):
    rows = hourly_rows(200)
    rows += [rows[k].split(",")[0] + ",-1" for k in (5, 6, 7)]  # 3 of 203 rows: above 1%
    path = tmp_path / "d.csv"
    path.write_text("time,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"time '2024-01-01 05:00' appears 2 times in column "
                                        r"'time' .* \(lines 7 and 202\).* pass --id COL"):
        load(path)


def test_business_day_holidays_are_not_gaps_but_a_long_break_is(tmp_path):
    days = pd.bdate_range("2023-01-02", periods=300)
    y = np.sin(np.arange(300) / 5)
    holidays = [10, 50, 51, 120]  # one day, a bridge of two, one day
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "y": y}).drop(index=holidays)
    ds = load(write(tmp_path, frame))
    assert ds.freq == "B" and ds.positions is None  # every row's neighbour is the next row
    assert ("3 short gaps of at most 2 business days in 'date' read as holidays (the rows on "
            "either side are neighbours)") in ds.notes
    away = frame.drop(index=list(range(200, 230)))  # six weeks closed: a gap
    ds = load(write(tmp_path, away, "away.csv"))
    assert ds.freq == "B" and ds.positions is not None
    assert "1 gap in 'date' (expected business-day steps; 30 time stamps missing): no window " \
           "spans a gap" in ds.notes
    assert np.diff(ds.positions).max() == 31 and (np.diff(ds.positions) > 1).sum() == 1


# --- the season a calendar gives (data/season.py; detection: test_season.py) ---------------


@pytest.mark.parametrize("freq,season,word", [("MS", 12, "monthly"), ("ME", 12, "monthly"),
                                              ("QS-JAN", 4, "quarterly"), ("QE-DEC", 4, "quarterly"),
                                              ("W-SUN", 52, "weekly"), ("D", 7, "daily"),
                                              ("h", 24, "hourly")])
def test_season_from_the_calendar(freq, season, word):
    ds = SimpleNamespace(freq=freq)
    flat = [np.ones(200)]  # no pattern at all: the calendar alone decides
    assert season_for(ds, flat) == (season, f"calendar: {word}")


def test_season_from_a_real_monthly_and_quarterly_file(tmp_path):
    def series(n, freq, name):
        return write(tmp_path, pd.DataFrame({"date": pd.date_range("2000-01-01", periods=n, freq=freq),
                                             "y": np.arange(float(n))}), name)

    monthly = load(series(60, "MS", "m.csv"), target="y", forecast_hint=True)
    assert season_for(monthly, training_rows(monthly, 1, 0.2))[0] == 12
    quarterly = load(series(40, "QS", "q.csv"), target="y", forecast_hint=True)
    assert season_for(quarterly, training_rows(quarterly, 1, 0.2)) == (4, "calendar: quarterly")
