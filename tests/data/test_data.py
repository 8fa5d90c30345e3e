"""cellpick.reading, .detection and .layouts: reading, layout/task detection and the one-line errors users read."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellpick.data.dataset import Dataset
from cellpick.data.detection import load
from cellpick.data.reading import read_table
from cellpick.errors import ConfigError, DataError

DATA = Path(__file__).resolve().parents[2] / "recipes" / "data"


def write(tmp_path: Path, content: str | bytes, name: str = "d.csv") -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def days(n: int, start: str = "2020-01-01") -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, periods=n, freq="D")]


def csv(header: str, rows) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def wide_rows(n: int = 6, steps: int = 3, classes=(1, 2)) -> list[str]:
    return [",".join([str(classes[i % len(classes)])] + [f"{i + j * 0.5}" for j in range(steps)])
            for i in range(n)]


# ----------------------------------------------------------------------------- real data

@pytest.mark.parametrize("name, steps", [("airline", 144), ("airline_train", 132),
                                         ("airline_test", 12)])
def test_airline_is_a_monthly_series(name, steps):
    ds = load(DATA / f"{name}.csv")
    assert (ds.layout, ds.task, ds.target, ds.time, ds.id) == ("series", "forecast", "value",
                                                                "date", None)
    assert ds.freq == "MS"
    assert ds.features == ["value"]
    assert len(ds.frame) == steps
    assert pd.api.types.is_datetime64_any_dtype(ds.frame["date"])
    assert ds.frame["date"].is_monotonic_increasing
    assert "series (time column 'date', monthly" in ds.describe()


def test_gunpoint_wide():
    ds = load(DATA / "GunPoint_train.csv", target="label")
    assert (ds.layout, ds.task, ds.target, ds.id, ds.time) == ("wide", "classify", "label",
                                                                None, None)
    assert ds.classes == [1, 2] and all(type(c) is int for c in ds.classes)
    assert len(ds.features) == 150 and ds.features[0] == "t0" and ds.features[-1] == "t149"
    assert len(ds.frame) == 50


def test_gunpoint_long():
    ds = load(DATA / "GunPoint_long_train.csv")
    assert (ds.layout, ds.task, ds.id, ds.time, ds.target) == ("long", "classify", "sample_id",
                                                                "step", "label")
    assert ds.features == ["value"]
    assert ds.classes == [1, 2]
    assert ds.frame.groupby("sample_id").size().eq(150).all()


def test_japanese_vowels_long_variable_length():
    ds = load(DATA / "JapaneseVowels_train.csv")
    assert (ds.layout, ds.task, ds.id, ds.time) == ("long", "classify", "sample_id", "step")
    assert ds.classes == list(range(1, 10))
    assert ds.features == [f"lpc_{i}" for i in range(1, 13)]
    sizes = ds.frame.groupby("sample_id").size()
    assert sizes.nunique() > 1 and sizes.min() >= 7
    assert ds.frame["sample_id"].nunique() == 270
    assert any("sequence lengths vary" in n for n in ds.notes)


# ----------------------------------------------------------------------------- synthetic: layouts

def test_panel_series(tmp_path):
    rows = [f"{s},{d},{v}" for d, v in zip(days(8), range(8)) for s in ("a", "b")]
    ds = load(write(tmp_path, csv("series_id,date,value", rows)))
    assert (ds.layout, ds.task, ds.id, ds.time, ds.target) == ("series", "forecast", "series_id",
                                                                "date", "value")
    assert ds.freq == "D"
    assert list(ds.frame["series_id"]) == ["a"] * 8 + ["b"] * 8
    assert not any("sorted" in n for n in ds.notes)  # each series was already in time order
    assert "id 'series_id', 2 series" in ds.describe()


def test_panel_series_without_time_by_varying_target(tmp_path):
    rows = [f"{s},{v}" for s in "ab" for v in np.sin(np.arange(6) + ord(s))]
    ds = load(write(tmp_path, csv("series_id,value", rows)))
    assert (ds.layout, ds.id, ds.time, ds.target) == ("series", "series_id", None, "value")


def test_series_covariates(tmp_path):
    rows = [f"{d},{i * 2 + 1},{np.cos(i):.3f},{i % 3}" for i, d in enumerate(days(10))]
    ds = load(write(tmp_path, csv("date,sales,temp,promo", rows)), target="sales")
    assert ds.layout == "series" and ds.features == ["sales", "temp", "promo"]
    assert all(ds.frame[c].dtype == float for c in ds.features)


def test_series_named_target_and_few_missing_covariates_filled(tmp_path):
    rows = [f"{d},{i * 1.5},{'' if i == 4 else i}" for i, d in enumerate(days(30))]
    ds = load(write(tmp_path, csv("date,y,temp", rows)))
    assert ds.target == "y" and ds.features == ["y", "temp"]
    assert ds.frame["temp"][4] == 3.0  # forward-filled
    assert any("filled 1 missing value in 'temp'" in n for n in ds.notes)


def test_single_column_named_by_target_option_is_a_series(tmp_path):
    ds = load(write(tmp_path, csv("sales", ["3", "5", "4", "6"])), target="sales")
    assert (ds.layout, ds.task, ds.features) == ("series", "forecast", ["sales"])


def test_panel_with_given_id_bool_covariate_and_thousands_separators(tmp_path):
    rows = [f'{s},2021-01-0{7 - i},"{i + 1},{ord(s)}0",{i % 2 == 0}' for s in "ba"
            for i in range(6)]
    ds = load(write(tmp_path, csv("store,date,sales,holiday", rows)), id="store")
    assert (ds.layout, ds.id, ds.target, ds.features) == ("series", "store", "sales",
                                                           ["sales", "holiday"])
    assert ds.frame["sales"][0] == 6970 and list(ds.frame["store"][:1]) == ["a"]
    assert "sorted 12 rows by 'store', 'date' (file was not in time order)" in ds.notes
    assert any("thousands separators" in n for n in ds.notes)


def test_forecast_hint_makes_a_series_of_a_plain_table(tmp_path):
    rows = [f"{i},{i * i % 7}" for i in range(12)]
    path = write(tmp_path, csv("y,x", rows))
    assert load(path).layout == "wide"
    ds = load(path, forecast_hint=True)
    assert (ds.layout, ds.task, ds.features, ds.time) == ("series", "forecast", ["y", "x"], None)


def test_single_numeric_column_is_a_series(tmp_path):
    ds = load(write(tmp_path, csv("passengers", [str(v) for v in (3, 5, 4, 6, 8, 7)])))
    assert (ds.layout, ds.target, ds.time, ds.freq) == ("series", "passengers", None, None)


def test_unsorted_time_is_sorted_with_note(tmp_path):
    rows = [f"{d},{v}" for d, v in zip(days(5), [1, 2, 3, 4, 5])]
    rows = [rows[i] for i in (3, 0, 4, 1, 2)]
    ds = load(write(tmp_path, csv("date,value", rows)))
    assert list(ds.frame["value"]) == [1, 2, 3, 4, 5]
    assert "sorted 5 rows by 'date' (file was not in time order)" in ds.notes
    assert ds.freq == "D"


def test_gaps_are_reported_and_keep_the_calendar(tmp_path):
    months = pd.date_range("2020-01-01", periods=12, freq="MS").strftime("%Y-%m-%d").tolist()
    kept = [m for i, m in enumerate(months) if i not in (3, 7, 8)]
    ds = load(write(tmp_path, csv("date,value", [f"{m},{i}" for i, m in enumerate(kept)])))
    assert ds.freq == "MS"  # gaps of one and two months: at most a quarter of the season
    assert ("2 short gaps of at most 3 missing monthly steps in 'date' closed (the rows on either "
            "side are neighbours)") in ds.notes
    assert ds.positions is None


def test_off_grid_stamps_are_irregular_not_gaps(tmp_path):
    stamps = ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05 12:00"]
    ds = load(write(tmp_path, csv("date,value", [f"{d},{i}" for i, d in enumerate(stamps)])))
    assert (ds.freq, ds.positions) == (None, None)


@pytest.mark.parametrize("dates, freq", [
    (["1949-01", "1949-02", "1949-03", "1949-04"], "MS"),
    (["01/31/2020", "02/01/2020", "02/02/2020", "02/03/2020"], "D"),
    (["31.01.2020", "01.02.2020", "02.02.2020", "03.02.2020"], "D"),
    (["2020-01-01 00:00:00", "2020-01-01 01:00:00", "2020-01-01 02:00:00",
      "2020-01-01 03:00:00"], "h"),
    (["Jan 2020", "Feb 2020", "Mar 2020", "Apr 2020"], "MS"),
    (["1949Q1", "1949Q2", "1949Q3", "1949Q4"], "QS-JAN"),
    (["1577836800", "1577840400", "1577844000", "1577847600"], "h"),  # epoch seconds
    (["20200101", "20200102", "20200103", "20200104"], "D"),
])
def test_date_formats(tmp_path, dates, freq):
    rows = [f"{d},{v}" for d, v in zip(dates, [3, 1, 4, 1])]
    ds = load(write(tmp_path, csv("timestamp,value", rows)))
    assert ds.layout == "series" and ds.time == "timestamp"
    assert pd.api.types.is_datetime64_any_dtype(ds.frame["timestamp"])
    assert ds.freq == freq


def test_unnamed_string_column_of_dates_is_time(tmp_path):
    rows = [f"{d},{v}" for d, v in zip(days(4), [3, 1, 4, 1])]
    ds = load(write(tmp_path, csv("when,value", rows)))
    assert (ds.layout, ds.time, ds.freq) == ("series", "when", "D")


def test_ambiguous_month_day_is_noted(tmp_path):
    rows = [f"0{m}/01/2020,{m}" for m in range(1, 6)]
    ds = load(write(tmp_path, csv("date,value", rows)))
    assert ds.freq == "MS"
    assert any("read as month/day (ambiguous)" in n for n in ds.notes)


def test_text_layout(tmp_path):
    rows = [f'"this film was {w} and I would watch it again",{lab}'
            for w, lab in [("great", "pos"), ("awful", "neg")] * 3]
    ds = load(write(tmp_path, csv("review,sentiment", rows)))
    assert (ds.layout, ds.task, ds.text, ds.target) == ("text", "classify", "review", "sentiment")
    assert ds.features == [] and ds.classes == ["neg", "pos"]
    assert "override with --text" in ds.describe()


def test_wide_sequence_regression(tmp_path):
    rows = [f"{i * 0.37:.2f},{i},{i + 1},{i + 2}" for i in range(10)]
    ds = load(write(tmp_path, csv("y,t0,t1,t2", rows)))
    assert (ds.layout, ds.task, ds.classes) == ("wide", "regress", None)
    assert ds.features == ["t0", "t1", "t2"]


def test_long_sequence_regression(tmp_path):
    rows = [f"{s},{k},{s + k * 0.1},{s * 1.25}" for s in range(6) for k in range(3 + s % 2)]
    ds = load(write(tmp_path, csv("sample_id,step,x,target", rows)))
    assert (ds.layout, ds.task, ds.id, ds.time, ds.features) == ("long", "regress", "sample_id",
                                                                  "step", ["x"])


def test_long_rows_sorted_by_sample_and_step(tmp_path):
    rows = [f"{s},{k},{k},{s % 2}" for s in range(6) for k in (2, 0, 1)]
    ds = load(write(tmp_path, csv("sample_id,step,x,label", rows)))
    assert list(ds.frame["step"][:3]) == [0, 1, 2]
    assert any("sorted 18 rows" in n for n in ds.notes)


def test_unique_id_column_is_a_row_id_and_ignored(tmp_path):
    rows = [f"{i},{r}" for i, r in enumerate(wide_rows())]
    ds = load(write(tmp_path, csv("id,label,t0,t1,t2", rows)))
    assert ds.layout == "wide" and ds.features == ["t0", "t1", "t2"] and ds.id is None
    assert "column 'id' has one row per value: a row id, ignored" in ds.notes


def test_task_override_and_string_and_bool_classes(tmp_path):
    path = write(tmp_path, csv("label,t0,t1,t2", wide_rows(8, classes=(1, 2, 3, 4))))
    assert load(path, task="regress").task == "regress"
    rows = wide_rows(6, classes=("cat", "dog"))
    assert load(write(tmp_path, csv("label,t0,t1,t2", rows), "s.csv")).classes == ["cat", "dog"]
    rows = wide_rows(6, classes=("True", "False"))
    ds = load(write(tmp_path, csv("label,t0,t1,t2", rows), "b.csv"))
    assert ds.classes == ["False", "True"] and set(ds.frame["label"]) == {"False", "True"}


# ----------------------------------------------------------------------------- synthetic: reading

@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_separators(tmp_path, sep):
    rows = [r.replace(",", sep) for r in wide_rows()]
    ds = load(write(tmp_path, csv(sep.join(["label", "t0", "t1", "t2"]), rows)))
    assert ds.layout == "wide" and ds.features == ["t0", "t1", "t2"]


def test_semicolon_with_decimal_comma(tmp_path):
    rows = [f"2020-01-0{i + 1};{i},5" for i in range(5)]
    ds = load(write(tmp_path, csv("date;value", rows)))
    assert list(ds.frame["value"]) == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_bom_quotes_and_trailing_separators(tmp_path):
    text = csv('"label","t0","t1","t2",', [r + "," for r in wide_rows()])
    ds = load(write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert ds.target == "label" and ds.features == ["t0", "t1", "t2"]


def test_quoted_separator_inside_field(tmp_path):
    rows = [f'"{w}, really, truly",{lab}' for w, lab in [("nice film overall", "a"),
                                                        ("bad film overall", "b")] * 3]
    ds = load(write(tmp_path, csv("comment,label", rows)))
    assert ds.layout == "text" and ds.frame["comment"][0] == "nice film overall, really, truly"


def test_saved_row_index_is_dropped(tmp_path):
    rows = [f"{i},{r}" for i, r in enumerate(wide_rows())]
    ds = load(write(tmp_path, csv(",label,t0,t1,t2", rows)))
    assert ds.features == ["t0", "t1", "t2"]
    assert any("saved row index" in n for n in ds.notes)


def test_latin1_and_utf16(tmp_path):
    rows = [f"{d},{v}" for d, v in zip(days(4), [3, 1, 4, 1])]
    text = csv("date,température", rows)
    ds = load(write(tmp_path, text.encode("latin-1")))
    assert ds.target == "température" and any("Latin-1" in n for n in ds.notes)
    assert load(write(tmp_path, text.encode("utf-16"), "u.csv")).target == "température"


def test_thousands_of_columns(tmp_path):
    steps = 3000
    header = "label," + ",".join(f"t{j}" for j in range(steps))
    rows = [f"{i % 2}," + ",".join(["0.5"] * steps) for i in range(8)]
    ds = load(write(tmp_path, csv(header, rows)))
    assert ds.layout == "wide" and len(ds.features) == steps


def test_read_table_reads_like_load_without_checks(tmp_path):
    text = csv(";label;t0;t1", ["0;;1,5;2", "1;;2,5;3"])
    frame = read_table(write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert list(frame.columns) == ["label", "t0", "t1"]  # row index dropped
    assert frame["label"].isna().all() and list(frame["t0"]) == [1.5, 2.5]


def test_unlabeled_data_for_predict(tmp_path):
    rows = [r.split(",", 1)[1] for r in wide_rows()]
    ds = load(write(tmp_path, csv("t0,t1,t2", rows)), target="label", task="classify",
              labeled=False)
    assert (ds.layout, ds.features, ds.classes) == ("wide", ["t0", "t1", "t2"], None)


def test_describe_names_every_override(tmp_path):
    text = load(DATA / "JapaneseVowels_train.csv").describe()
    assert "layout: long (sample id 'sample_id', step column 'step'" in text
    assert "— override with --id/--time" in text
    assert "task: classify target 'label', 9 classes [1, 2, 3" in text
    assert "— override with --target/--task" in text
    assert isinstance(load(DATA / "airline.csv"), Dataset)


# ----------------------------------------------------------------------------- bad input

SERIES = csv("date,value", [f"{d},{v}" for d, v in zip(days(6), [3, 1, 4, 1, 5, 9])])
WIDE = csv("label,t0,t1,t2", wide_rows())
LONG = csv("sample_id,step,value,label",
           [f"{s},{k},{s + k},{s % 2}" for s in range(6) for k in range(3)])

BAD = [
    # (case id, file content or None for no file, load options, error type, message pattern)
    ("missing file", None, {}, DataError, r"data file '.*nope\.csv' not found; check the path"),
    ("empty file", "", {}, DataError, r"is empty; it needs a header"),
    ("blank lines only", "\n \n\n", {}, DataError, r"is empty"),
    ("header only", "date,value\n", {}, DataError, r"has a header but no data rows"),
    ("binary junk", bytes(range(256)) * 4, {}, DataError, r"not a text CSV \(it holds binary"),
    ("control chars", bytes(range(1, 32)) * 40, {}, DataError, r"not a text CSV"),
    ("xlsx", b"PK\x03\x04" + bytes(200), {}, DataError, r"zip archive \(an Excel \.xlsx\?\)"),
    ("gzip", gzip.compress(SERIES.encode()), {}, DataError, r"gzip-compressed"),
    ("duplicate columns", "a,b,a\n1,2,3\n4,5,6\n", {}, DataError,
     r"duplicate column names in .*: 'a' at columns 1, 3"),
    ("no header", "1,2\n3,4\n", {}, DataError, r"first line of .* looks like data"),
    ("row too long", "a,label\n1,2\n3,4,5\n", {}, DataError,
     r"line 3 of .* has 3 fields but the header has 2"),
    ("target missing", SERIES, {"target": "sales"}, DataError,
     r"column 'sales' \(--target\) not found in .*; columns are: 'date', 'value'"),
    ("time missing", SERIES, {"time": "when"}, DataError, r"column 'when' \(--time\) not found"),
    ("all-empty column", "label,t0,t1,x\n1,2,3,\n2,3,4,\n", {}, DataError,
     r"column 'x' in .* has no values"),
    ("nan in target", WIDE.replace("\n2,1.0", "\n,1.0"), {}, DataError,
     r"missing value in target 'label' at line 3"),
    ("inf in target", csv("y,t0,t1", ["1.5,1,2", "inf,2,3", "2.5,3,4"]), {}, DataError,
     r"infinite value in target 'y' at line 3"),
    ("inf in feature", csv("label,t0,t1", ["1,1,2", "2,2,-inf", "1,3,4", "2,4,5"]), {},
     DataError, r"infinite value in column 't1' at line 3"),
    ("nan inside wide row", csv("label,t0,t1", ["1,1,2", "2,,3", "1,3,4", "2,4,5"]), {},
     DataError, r"missing value in column 't0' at line 3"),
    ("ragged wide row", csv("label,t0,t1,t2", ["1,1,2,3", "2,1", "1,3,4,5", "2,4,5,6"]), {},
     DataError, r"row at line 3 of .* has 1 of 3 steps .* use the long layout"),
    ("too many nan covariate", csv("date,value,temp", [f"{d},{i},{'' if i % 3 else i}"
                                                       for i, d in enumerate(days(9))]),
     {"target": "value"},
     DataError, r"column 'temp' .* misses 6 of 9 values .* fills at most 5%"),
    ("class with one sample", csv("label,t0,t1", [f"{c},{i},{i + 1}" for i, c in
                                                    enumerate([1, 1, 1, 2, 2, 2, 3])]), {}, DataError, r"class 3 of target 'label' has only one sample"),
    ("single class", csv("label,t0,t1", ["1,1,2", "1,2,3", "1,3,4"]), {}, DataError,
     r"target 'label' in .* has a single class \(1\)"),
    ("constant series", csv("date,value", [f"{d},7" for d in days(5)]), {}, DataError,
     r"target 'value' in .* is constant \(every value is 7\)"),
    ("constant regression target", csv("y,t0,t1", [f"2.5,{i},{i}" for i in range(5)]),
     {"task": "regress"}, DataError, r"target 'y' in .* is constant"),
    ("label changes in sample", LONG.replace("2,2,4,0", "2,2,4,1"), {}, DataError,
     r"label 'label' changes within sample 2 .*\(0 at line 8, 1 at line 10\)"),
    ("non-numeric wide column", csv("label,t0,color", ["1,1,red", "2,2,blue"]), {}, DataError,
     r"column 'color' in .* is not numeric \(first value 'red' at line 2\)"),
    ("non-numeric covariate", csv("date,value,city", [f"{d},{i},x" for i, d in
                                                      enumerate(days(4))]), {"target": "value"},
     DataError, r"column 'city' .* not numeric .* drop the column or encode it as numbers"),
    ("series id not given", csv("store,date,sales", [f"{s},{d},{i}" for s in "ab"
                                                     for i, d in enumerate(days(3))]), {},
     DataError, r"column 'store' .* not numeric .* or pass --id 'store' if it names the series"),
    ("no number to forecast", csv("date,city", [f"{d},x" for d in days(3)]), {}, DataError,
     r"column 'city' .* not numeric .* a series needs a numeric column to forecast"),
    ("bad date in --time", SERIES.replace("2020-01-03", "2020-13-45"), {"time": "date"},
     DataError, r"cannot read '2020-13-45' in column 'date' at line 4 .* as a date"),
    ("bad date in date column", SERIES.replace("2020-01-03", "yesterday"), {}, DataError,
     r"cannot read 'yesterday' in column 'date' at line 4"),
    ("missing date", SERIES.replace("2020-01-02", ""), {}, DataError,
     r"missing time value in column 'date' at line 3"),
    # One repeated stamp in 6 (or 3) rows is more than the 1% kept-last (test_calendar.py).
    ("duplicate timestamp", SERIES.replace("2020-01-03", "2020-01-02"), {}, DataError,
     r"time '2020-01-02' appears 2 times in column 'date' .*\(lines 3 and 4\).* pass --id"),
    ("duplicate timestamp in series", csv("series_id,date,value",
                                          ["a,2020-01-01,1", "a,2020-01-02,2", "a,2020-01-02,3",
                                           "b,2020-01-01,4"]), {}, DataError,
     r"series 'a' has time '2020-01-02' 2 times .*\(lines 3 and 4\)"),
    ("duplicate step in sample", LONG.replace("0,1,1,0", "0,0,1,0"), {}, DataError,
     r"step '0' appears 2 times in sample 0"),
    ("bad task", SERIES, {"task": "foo"}, ConfigError,
     r"^The 'task' option must be one of \['classify', 'forecast', 'regress'\]\. "
     r"Got 'foo' instead\.$"),
    ("no target among numbers", csv("a,b,c", ["1,2,3", "4,5,6"]), {}, DataError,
     r"cannot tell which column to predict .* pass --target COL"),
    ("no target in series", csv("date,a,b", [f"{d},{i},{-i}" for i, d in enumerate(days(4))]),
     {}, DataError, r"cannot tell which column to forecast .* 2 numeric columns \('a', 'b'\)"),
    ("text with forecast", SERIES, {"text": "date", "task": "forecast"}, ConfigError,
     r"'forecast' needs a series, not a --text column"),
    ("regress on strings", csv("label,t0,t1", ["a,1,2", "b,2,3"]), {"task": "regress"},
     DataError, r"column 'label' .* not numeric \(first value 'a' at line 2\); task 'regress' needs a "
     r"numeric target"),
    ("numeric --text", WIDE, {"text": "t0"}, DataError, r"column 't0' \(--text\) .* holds numbers"),
    ("long without features", csv("sample_id,step,label", [f"{s},{k},{s % 2}" for s in range(4)
                                                           for k in range(2)]), {}, DataError,
     r"no numeric feature columns in .* besides id 'sample_id'"),
    ("nan in long feature", LONG.replace("1,1,2,1", "1,1,,1"), {}, DataError,
     r"missing value in column 'value' at line 6"),
    ("missing sample id", LONG.replace("\n3,0,3,1", "\n,0,3,1"), {"id": "sample_id"}, DataError,
     r"missing sample id in column 'sample_id' at line 11"),
    ("same column twice", WIDE, {"target": "t0", "id": "t0"}, ConfigError,
     r"--target and --id both name column 't0'"),
    ("classify a single series", SERIES, {"task": "classify"}, ConfigError,
     r"'classify' needs one row per sample or an --id; .* pass --id COL"),
    ("string forecast target", csv("date,label", [f"{d},{w}" for d, w in zip(days(4), "abab")]),
     {}, DataError, r"column 'label' .* is not numeric .* a forecast target must be numbers"),
    ("unlabeled without task", WIDE, {"labeled": False}, ConfigError,
     r"'task' and 'target' options are required"),
]


@pytest.mark.parametrize("content, options, error, pattern",
                         [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_input(tmp_path, content, options, error, pattern):
    path = tmp_path / "nope.csv" if content is None else write(tmp_path, content)
    with pytest.raises(error, match=pattern) as caught:
        load(path, **options)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message


def test_directory_is_refused(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load(tmp_path)
