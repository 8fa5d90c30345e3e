import math

import pytest

from cellpick.report import KEY_COLUMNS, html, leaderboard, leaderboard_text, plots
from cellpick.verdict import CellResult, decide


@pytest.fixture
def verdict():
    cells = [
        CellResult("lstm", {"units": 64, "layers": 1, "dropout": 0.1},
                   [10.0, 12.0, 11.0, 13.0], 4000, 50.0),
        CellResult("gru", {"units": 64, "layers": 1, "dropout": 0.1},
                   [10.02, 12.03, 11.01, 13.0], 3040, 41.0),
        CellResult("rnn", {"units": 32, "layers": 2, "dropout": 0.0},
                   [20.0, 21.0, 22.0, 23.0], 1200, 20.0),
    ]
    v = decide(cells, "mae", False, baselines={"naive": 25.0, "snaive": 15.0, "ridge": 14.1})
    v.test_score = 11.9
    return v.to_dict()


@pytest.fixture
def trials():
    return [
        {"trial_id": "0001", "cell": "lstm", "units": 64, "layers": 1, "dropout": 0.1,
         "score": 11.5, "n_params": 4000, "train_seconds": 12.0, "status": "COMPLETED",
         "run_id": "r1"},
        {"trial_id": "0002", "cell": "gru", "units": 64, "layers": 1, "dropout": 0.1,
         "score": 11.2, "n_params": 3040, "train_seconds": 10.0, "status": "COMPLETED",
         "run_id": "r2"},
        {"trial_id": "0003", "cell": "rnn", "units": 32, "layers": 2, "dropout": 0.0,
         "score": 21.0, "n_params": 1200, "train_seconds": 5.0, "status": "COMPLETED",
         "run_id": "r3"},
        {"trial_id": "0004", "cell": "lstm", "units": 128, "layers": 2, "dropout": 0.2,
         "score": None, "n_params": 200000, "train_seconds": 1.0, "status": "FAILED",
         "run_id": "r4"},
    ]


def test_leaderboard_columns_and_order(verdict, trials):
    df = leaderboard(verdict, trials)
    assert list(df.columns[: len(KEY_COLUMNS)]) == KEY_COLUMNS
    assert df.columns[-1] == "run_id"
    assert {"config", "note", "dropout"} <= set(df.columns)
    assert list(df["kind"]) == ["cell"] * 3 + ["baseline"] * 3 + ["trial"] * 4
    assert list(df["name"]) == ["lstm", "gru", "rnn", "ridge", "snaive", "naive",
                                "0002", "0001", "0003", "0004"]
    cells = df[df["kind"] == "cell"].set_index("name")
    assert cells.loc["gru", "note"] == "winner" and cells.loc["lstm", "note"] == "best mean"
    assert cells.loc["gru", "config"] == "units=64 layers=1 dropout=0.1"
    assert cells.loc["lstm", "ci_lo"] < cells.loc["lstm", "score"] < cells.loc["lstm", "ci_hi"]
    assert cells.loc["rnn", "layers"] == 2
    assert df.set_index("name").loc["ridge", "note"] == "best baseline"
    failed = df.set_index("name").loc["0004"]
    assert failed["status"] == "FAILED" and math.isnan(failed["score"])
    assert failed["run_id"] == "r4"


def test_leaderboard_accuracy_sorts_descending():
    v = decide([CellResult("lstm", {"units": 16}, [0.8, 0.82], 100, 1.0),
                CellResult("gru", {"units": 16}, [0.5, 0.52], 90, 1.0)],
               "accuracy", True, baselines={"majority": 0.4, "logreg": 0.7}).to_dict()
    trials = [{"trial_id": "a", "cell": "gru", "score": 0.5},
              {"trial_id": "b", "cell": "lstm", "score": 0.9}]
    df = leaderboard(v, trials)
    assert list(df["name"]) == ["lstm", "gru", "logreg", "majority", "b", "a"]
    assert list(df["score"][df["kind"] == "trial"]) == [0.9, 0.5]


def test_leaderboard_without_trials_or_baselines():
    v = decide([CellResult("gru", {"units": 8}, [1.0], 10, 1.0)], "mae", False).to_dict()
    df = leaderboard(v, [])
    assert list(df["kind"]) == ["cell"]
    assert list(df.columns[: len(KEY_COLUMNS)]) == KEY_COLUMNS


def test_leaderboard_text_marks_winner(verdict, trials):
    text = leaderboard_text(leaderboard(verdict, trials), verdict)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    marked = [line for line in lines if line.startswith("*")]
    assert len(marked) == 2 and marked[0].split()[1] == "GRU" and marked[1] == "* winner: GRU"
    assert "0001" not in text  # trials are not listed
    names = [line.split()[1 if line.startswith("*") else 0] for line in lines[1:7]]
    assert names == ["LSTM", "GRU", "ridge", "snaive", "SimpleRNN", "naive"]
    assert "Test MAE of the winner: 11.9" in text
    assert " ".join(text.split()).endswith(verdict["reason"])


def test_plots_write_three_pngs(tmp_path, verdict, trials):
    curves = {
        "trial 0001": {"cell": "lstm", "val_loss": [1.0, 0.6, 0.5]},
        "trial 0002": {"cell": "gru", "val_loss": [1.1, 0.5, 0.45, 0.44]},
        "trial 0003": {"cell": "rnn", "val_loss": [2.0, 1.5]},
    }
    paths = plots(verdict, trials, curves, tmp_path / "plots")
    assert [p.name for p in paths] == ["curves.png", "scores.png", "params.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 1000
    assert sorted(x.name for x in (tmp_path / "plots").iterdir()) == sorted(
        p.name for p in paths)


def test_plots_with_nothing_to_draw(tmp_path):
    v = decide([CellResult("gru", {"units": 8}, [1.0], 10, 1.0)], "mae", False).to_dict()
    paths = plots(v, [], {}, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)


def test_html_is_self_contained(tmp_path, verdict, trials):
    df = leaderboard(verdict, trials)
    paths = plots(verdict, trials, {"t": {"cell": "gru", "val_loss": [1.0, 0.5]}}, tmp_path)
    page = html(verdict, df, paths, "cellpick <airline>",
                {"data": "airline.csv", "task": "forecast", "mlflow run": "abc123"})
    assert page.startswith("<!DOCTYPE html>")
    assert verdict["reason"] in page
    assert page.index(verdict["reason"]) < page.index("<table")
    assert page.count('src="data:image/png;base64,') == 3
    assert "<table" in page and "0004" in page and "abc123" in page
    assert "cellpick &lt;airline&gt;" in page
    assert "http://" not in page and "https://" not in page


def test_export_sentence_says_what_the_export_holds():
    from cellpick.report import export_sentence

    assert export_sentence({"ensemble": {"models": 3}, "refit": {"on": "train+validation"}, "patch": 1}) \
        == "Export: the mean of the winner's 3 seed models, each retrained on all non-test data."
    assert export_sentence({"ensemble": None, "refit": None, "patch": 1}) == "Export: the winner's model."
    assert export_sentence({"ensemble": None, "refit": None, "export": {"kind": "baseline",
                                                                         "baseline": "ridge"}}) \
        == ("Export: the ridge baseline (--export best), fitted on all non-test data, as a Keras "
            "graph taking the same raw input.")
    assert export_sentence({}) == ""  # a verdict.json from before the ensemble existed
