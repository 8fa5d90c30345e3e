"""Generated inputs (issue 35): the all-pairs design of tests/inputs.py, its CSV writers, and
a slice of its cases fitted end to end (the whole matrix: bench/inputs.py).

A case at or above the documented minimum (docs/inputs.md) with legal defects must fit (exit
0) and give `predict` one finite prediction per series step or sample; a case one row or
sample below it must exit 2 with one line saying the data are too few.
"""
from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
from conftest import store_uri
from inputs import (
    EXTRA,
    FACTORS,
    LAYOUTS,
    NA,
    SERIES_LAYOUTS,
    TINY,
    allowed,
    allpairs,
    by_id,
    design,
    minimum,
    series_minimum,
    write_case,
)
from typer.testing import CliRunner

from cellpick.cli import app
from cellpick.data import detection

runner = CliRunner()
LAYOUT_OF = {"series": "series", "panel": "series", "covariates": "series", "wide": "wide",
             "long-fixed": "long", "long-var": "long", "text": "text"}


# ----------------------------------------------------------------------------- the design

def _levels(cases) -> set[tuple]:
    names = list(FACTORS)
    return {(i, a, j, b) for c in cases for (i, a), (j, b) in
            itertools.combinations([(k, getattr(c, k)) for k in names], 2)}


def test_design_covers_every_allowed_pair_and_triple():
    cases = [c for c in design() if c.length != "below"]
    names = list(FACTORS)
    full = [dict(zip(names, c)) for c in itertools.product(*FACTORS.values())
            if allowed(dict(zip(names, c)))]
    want = {(a, c[a], b, c[b]) for c in full for a, b in itertools.combinations(names, 2)}
    assert want <= _levels(cases)
    for group in EXTRA:
        seen = {tuple(getattr(c, k) for k in group) for c in cases}
        assert {tuple(c[k] for k in group) for c in full} <= seen, group


def test_design_is_about_150_distinct_allowed_cases_with_a_below_case_per_layout():
    cases = design()
    assert 110 <= len(cases) <= 160
    assert len({c.id for c in cases}) == len(cases)
    assert all(allowed(vars(c)) for c in cases if c.length != "below")
    assert {c.layout for c in cases if c.length == "below"} == set(LAYOUTS)
    assert design() == cases  # deterministic


def test_constraints():
    assert not allowed({"layout": "wide", "task": "forecast"})
    assert not allowed({"layout": "series", "horizon": NA})
    assert not allowed({"layout": "wide", "horizon": "2"})
    assert not allowed({"layout": "text", "options": "fixed"})
    assert not allowed({"defect": "rare", "task": "regress"})
    assert not allowed({"layout": "wide", "defect": "missing"})
    assert not allowed({"layout": "series", "horizon": "1", "length": "min", "defect": "duplicates"})
    assert allowed({"layout": "series", "horizon": "1", "length": "hundreds", "defect": "duplicates"})


def test_allpairs_on_a_small_space_covers_every_pair():
    factors = {"a": (1, 2, 3), "b": ("x", "y"), "c": (True, False), "d": (0, 1, 2)}
    ok = lambda c: not (c.get("a") == 3 and c.get("b") == "y")  # noqa: E731
    rows = allpairs(factors, ok)
    assert all(ok(r) for r in rows) and len(rows) < 3 * 2 * 2 * 3
    for (f, g) in itertools.combinations(factors, 2):
        for u, v in itertools.product(factors[f], factors[g]):
            if ok({f: u, g: v}):
                assert any(r[f] == u and r[g] == v for r in rows), (f, u, g, v)


def test_minimums():
    assert [series_minimum(h) for h in (1, 2, 7, 12)] == [6, 11, 36, 61]
    assert series_minimum(2, lookback=12) == 21
    assert minimum("text", "classify", None) == 6


def test_every_case_reads_as_its_layout_task_and_size(tmp_path):
    """The writers, through detection only (no training): each case's CSV and arguments."""
    for case in design():
        w = write_case(case, tmp_path)
        opts = dict(zip(w.args[1::2], w.args[2::2]))
        ds = detection.load(w.path, target=opts.get("--target"), task=opts.get("--task"),
                            text=opts.get("--text"), forecast_hint="--horizon" in opts)
        assert (ds.layout, ds.task) == (LAYOUT_OF[case.layout], case.task), case.id
        if case.layout in SERIES_LAYOUTS:
            sizes = ds.frame.groupby(ds.id).size() if ds.id else pd.Series([len(ds.frame)])
            assert (sizes == case.n).all(), (case.id, sizes.tolist())
        else:
            samples = ds.frame[ds.id].nunique() if ds.id else len(ds.frame)
            assert samples == case.n, case.id
        if case.defect == "rare":
            y = ds.frame.groupby(ds.id)[ds.target].first() if ds.id else ds.frame[ds.target]
            assert y.value_counts().min() == 2, case.id


# ----------------------------------------------------------------------------- fitted cases

# One case of every layout (small, with a defect where it is cheap), and below-minimum ones.
# The bench's flags, one cell (gru) to keep the slice near 2 minutes on 2 cores.
SLICE = ["series-fc-h2-min-intreg-partial", "panel-fc-h1-min-intreg-fixed",
         "covariates-fc-h1-min-gaps-partial", "wide-reg-min-intreg-fixed",
         "long-fixed-cls-min-rare-none", "long-var-reg-min-gaps-fixed",
         "text-cls-more-missing-none"]
BELOW = ["series-fc-h1-below-none-none", "panel-fc-h1-below-none-none",
         "long-var-cls-below-none-none", "text-cls-below-none-none"]


def _fit(case, tmp_path):
    w = write_case(case, tmp_path)
    model = tmp_path / "model"
    result = runner.invoke(app, ["fit", *w.args, *TINY, "--cells", "gru", "--tracking-uri",
                                 store_uri(tmp_path), "--out", str(model), "--quiet"])
    return w, model, result


@pytest.mark.parametrize("case_id", SLICE)
def test_a_case_at_its_minimum_fits_and_predicts(tmp_path, monkeypatch, case_id):
    monkeypatch.chdir(tmp_path)
    w, model, result = _fit(by_id()[case_id], tmp_path)
    assert result.exit_code == 0, result.output + result.stderr
    out = tmp_path / "pred.csv"
    pred = runner.invoke(app, ["predict", str(model), str(w.path), "--out", str(out)])
    assert pred.exit_code == 0, pred.stderr
    table = pd.read_csv(out)
    assert len(table) == w.rows
    assert all(math.isfinite(v) for v in pd.to_numeric(table["prediction"], errors="coerce")) \
        or table.filter(like="probability_").notna().all().all()


@pytest.mark.parametrize("case_id", BELOW)
def test_one_below_the_minimum_exits_2_with_one_line(tmp_path, monkeypatch, case_id):
    monkeypatch.chdir(tmp_path)
    case = by_id()[case_id]
    _, model, result = _fit(case, tmp_path)
    assert result.exit_code == 2, result.output + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "too few" in lines[0], result.stderr
    assert f"{case.n} " in lines[0] and not model.exists()
