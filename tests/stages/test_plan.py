"""The plan (stages/plan.py): what make_plan resolves for a series, a panel and sequences
before anything trains, what `windowed` rebuilds, and the keys `--dry-run` prints."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellpick.config import FitConfig
from cellpick.errors import ConfigError
from cellpick.stages.plan import make_plan, windowed

SUMMARY_KEYS = {"task", "layout", "sizes", "input", "patch", "lookback", "horizon", "season",
                "cells", "units", "layers", "max_trials", "epochs", "patience", "steps_per_epoch",
                "seeds", "folds", "resampling", "test_size", "season_how", "rope", "tuner",
                "metric", "notes", "batch_size", "tracking_uri", "experiment", "out",
                "time_budget", "space", "candidates"}


def _plan(data, **options):
    return make_plan(FitConfig(data=str(data), **options).validate())


def _panel_csv(tmp_path, n=80):
    """Two monthly series of 80 rows, one level each, a 12-month cycle."""
    t = np.arange(n)
    frame = pd.concat([pd.DataFrame({"id": k, "date": pd.date_range("2000-01-01", periods=n, freq="MS"),
                                     "y": level + 5 * np.sin(2 * np.pi * t / 12)})
                       for k, level in (("a", 10.0), ("b", 1000.0))])
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_monthly_series_plans_rolling_origins_on_the_calendars_season(data_dir):
    plan = _plan(data_dir / "airline_train.csv", horizon=12, folds=2, seeds=2, epochs=3)
    assert (plan.dataset.task, plan.dataset.layout) == ("forecast", "series")
    assert (plan.metric, plan.greater_is_better) == ("mae", False)
    assert (plan.season, plan.season_how) == (12, "calendar: monthly")
    # 132 months: too few for a test block ("auto"); the lookback defaults to two seasons.
    assert plan.test_size == 0.0 and plan.prep.sizes["test"] == 0
    assert (plan.prep.lookback, plan.prep.horizon, plan.prep.input_shape) == (24, 12, (24, 1))
    res = plan.resampling
    assert (res.kind, res.folds, res.seeds) == ("rolling-origin", 2, 2)
    # Units repetition by repetition, fold by fold; a repetition's seed is seed + 1000 (k + 1).
    assert [(u.fold, u.repeat, u.seed) for u in res.units] == [
        (0, 0, 1042), (1, 0, 1042), (0, 1, 2042), (1, 1, 2042)]
    # Until the data-level stage chooses, the defaults; every unit holds the plan's choice.
    assert plan.prep.preprocessing == {"scaling": "relative", "log": False, "linear": True}
    assert all(u.prep.preprocessing is plan.prep.preprocessing for u in res.units)
    assert {(u.prep.lookback, u.prep.patch) for u in res.units} == {(24, 1)}
    # The user's epochs cap the schedule, patience at least 5, one step per batch of training.
    s = plan.schedule
    assert (s.epochs, s.patience) == (3, 5)
    assert s.steps_per_epoch == -(-plan.prep.sizes["train"] // plan.prep.batch_size())


def test_a_panel_plans_one_resampling_over_all_its_series(tmp_path):
    plan = _plan(_panel_csv(tmp_path), id="id", horizon=3, folds=2, seeds=1, patch=4)
    assert (plan.dataset.layout, plan.dataset.id, plan.season) == ("series", "id", 12)
    # 160 rows: a test block is held out ("auto"), from each series' end.
    assert plan.test_size == pytest.approx(0.2) and plan.prep.sizes["test"] > 0
    for split in ("train", "val", "test"):
        assert set(plan.prep.origins(split)[0].tolist()) == {0, 1}, split
    units = plan.resampling.units
    assert [(u.fold, u.repeat) for u in units] == [(0, 0), (1, 0)]
    for u in units:  # each origin scores windows of both series
        assert set(u.prep.origins("score")[0].tolist()) == {0, 1}
    # --patch reads fixed-length sequences only: a series ignores it and says so.
    assert plan.prep.patch == 1
    assert plan.prep.notes == ["--patch applies to fixed-length sequences (wide layout); ignored"]


def test_sequences_plan_stratified_folds_patches_and_no_season(data_dir):
    plan = _plan(data_dir / "GunPoint_train.csv", target="label", folds=2, seeds=2,
                 scaling="diff")
    assert (plan.dataset.task, plan.dataset.layout) == ("classify", "wide")
    assert (plan.metric, plan.greater_is_better) == ("accuracy", True)
    assert (plan.season, plan.season_how, plan.prep.lookback) == (None, None, None)
    res = plan.resampling
    assert (res.kind, res.folds, res.seeds, len(res.units)) == ("repeated-stratified-kfold", 2, 2, 4)
    # 150 steps are read in patches (the data-level stage may choose 12 instead); each unit too.
    assert plan.prep.patch == 6 and {u.prep.patch for u in res.units} == {6}
    # A classification takes no forecast preprocessing: the option is ignored, with a note.
    assert plan.prep.preprocessing is None
    assert plan.prep.notes == ["--scaling, --log and --linear apply to forecasts; ignored"]
    assert plan.space()["bidirectional"] == [False, True]


def test_windowed_rebuilds_the_windows_and_every_unit_for_a_patch(data_dir):
    plan = _plan(data_dir / "GunPoint_train.csv", target="label", folds=2, seeds=1)
    other = windowed(plan.config, plan.path, plan.dataset, plan.season, plan.season_how,
                     plan.test_size, None, patch=12)
    assert other.prep.patch == 12 and {u.prep.patch for u in other.resampling.units} == {12}
    # The search split does not depend on the patch: the same samples, in the same order.
    for split in ("train", "val"):
        np.testing.assert_array_equal(other.prep.arrays(split)[0], plan.prep.arrays(split)[0])


@pytest.mark.parametrize("patch", [1, 6])
def test_the_candidates_read_patches_only_when_the_plan_has_them(data_dir, patch):
    """--patch 1 reads the raw steps: no patch hyperparameter and no patch layer; a patch
    size is fixed for every candidate (a strided Conv1D of kernel 2p, stride p)."""
    import keras_tuner as kt

    from cellpick.models.cells import hypermodel

    plan = _plan(data_dir / "GunPoint_train.csv", target="label", patch=patch)
    assert plan.prep.patch == patch
    hp = kt.HyperParameters()
    model = hypermodel(plan.prep, "gru", [8], [1]).build(hp)
    names = [layer.name for layer in model.layers]
    if patch == 1:
        assert "patch" not in hp.values and "patches" not in names
    else:
        conv = model.get_layer("patches")
        assert hp.values["patch"] == 6 and (conv.kernel_size, conv.strides) == ((12,), (6,))


def test_the_summary_holds_every_key_dry_run_prints(data_dir, tmp_path):
    plan = _plan(data_dir / "airline_train.csv", horizon=12, folds=2, seeds=1,
                 out=str(tmp_path / "model"), tracking_uri=f"sqlite:///{tmp_path}/m.db")
    s = plan.summary()
    assert set(s) == SUMMARY_KEYS
    assert (s["experiment"], s["out"]) == ("airline_train", str(tmp_path / "model"))
    assert s["tracking_uri"] == f"sqlite:///{tmp_path}/m.db"
    assert (s["folds"], s["seeds"], s["resampling"]) == (2, 1, "rolling-origin")
    assert s["space"] == {"dropout": [0.0, 0.2], "learning_rate": [0.003, 0.001]}


@pytest.mark.parametrize("options,want", [
    ({"max_trials": 4}, {"kind": "grid", "grid": 4, "per_cell": 4}),
    ({"max_trials": 2}, {"kind": "quasi-random", "grid": 4, "per_cell": 2}),
    ({"max_trials": 2, "tuner": "bayesian"}, {"kind": "adaptive", "grid": 4, "per_cell": None}),
    ({"max_trials": 8, "units": [8, 16]}, {"kind": "grid", "grid": 8, "per_cell": 8}),
])
def test_the_candidate_list_is_the_grid_or_a_part_of_it(data_dir, options, want):
    # units x layers x dropout (2) x learning rate (2)
    plan = _plan(data_dir / "airline_train.csv", horizon=12, **{"units": [8], "layers": [1],
                                                                 **options})
    assert plan.candidates() == want


def test_a_plan_needs_data_and_logs_need_a_positive_target(tmp_path):
    with pytest.raises(ConfigError, match="no data file given"):
        make_plan(FitConfig().validate())
    days = pd.date_range("2020-01-01", periods=84, freq="D").strftime("%Y-%m-%d")
    pd.DataFrame({"date": days, "value": [(i % 7) - 3 for i in range(84)]}).to_csv(
        tmp_path / "signed.csv", index=False)
    with pytest.raises(ConfigError, match="The 'log' option needs a strictly positive target; "
                                          "column 'value' has values <= 0"):
        _plan(tmp_path / "signed.csv", horizon=3, log=True)
