import io
import math
import re

import pandas as pd
import pytest

from cellpick.output.html import html
from cellpick.output.leaderboard import (
    KEY_COLUMNS,
    leaderboard,
    leaderboard_csv,
    leaderboard_text,
    verdict_rows,
)
from cellpick.output.plots import plots
from cellpick.verdict import CellResult, decide
from cellpick.vocab import CELL_COLORS


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
    # No curves and no trials still give the three pictures (empty axes), under their names.
    assert [p.name for p in paths] == ["curves.png", "scores.png", "params.png"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["curves.png", "params.png", "scores.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


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
    from cellpick.output.leaderboard import export_sentence

    assert export_sentence({"ensemble": {"models": 3}, "refit": {"on": "train+validation"}, "patch": 1}) \
        == "Export: the mean of the winner's 3 seed models, each retrained on all non-test data."
    assert export_sentence({"ensemble": None, "refit": None, "patch": 1}) == "Export: the winner's model."
    assert export_sentence({"ensemble": None, "refit": None, "export": {"kind": "baseline",
                                                                         "baseline": "ridge"}}) \
        == ("Export: the ridge baseline (--export best), fitted on all non-test data, as a Keras "
            "graph taking the same raw input.")
    assert export_sentence({}) == ""  # a verdict.json from before the ensemble existed


@pytest.fixture
def run_trials(trials):
    """Trials as the search records them: run names, and fields that are not hyperparameters."""
    names = ["t01-lstm-u64-l1 d0.1", "t02-gru-u64-l1 d0.1", "t03-rnn-u32-l2 d0", "t04-lstm-u128-l2 d0.2"]
    return [{**t, "name": n, "best_val_loss": 0.123456789, "epochs": 7, "error": None}
            for t, n in zip(trials, names)]


def test_leaderboard_csv_names_trials_by_run_with_clean_config_and_rounding(verdict, run_trials):
    df = leaderboard(verdict, run_trials)
    trials = df[df["kind"] == "trial"]
    assert list(trials["name"]) == ["t02-gru-u64-l1 d0.1", "t01-lstm-u64-l1 d0.1",
                                    "t03-rnn-u32-l2 d0", "t04-lstm-u128-l2 d0.2"]
    assert list(trials["trial_id"]) == ["0002", "0001", "0003", "0004"]
    assert set(trials["config"]) == {"units=64 layers=1 dropout=0.1", "units=32 layers=2 dropout=0",
                                     "units=128 layers=2 dropout=0.2"}
    text = leaderboard_csv(df)
    assert not re.search(r"\d\.\d{7,}", text)  # 6 significant digits, not 15
    assert "0.123457" in text
    back = pd.read_csv(io.StringIO(text))
    assert list(back["name"]) == list(df["name"])


def test_report_command_reads_the_csv_back_without_nan(verdict, run_trials):
    """`cellpick report` prints the leaderboard from leaderboard.csv: empty fields, not nan."""
    back = pd.read_csv(io.StringIO(leaderboard_csv(leaderboard(verdict, run_trials))))
    text = leaderboard_text(back, verdict)
    assert "nan" not in text.lower() and "<NA>" not in text
    ridge = next(line for line in text.splitlines() if line.split()[:1] == ["ridge"])
    assert ridge.split()[1:3] == ["baseline", "14.1"]
    assert "Verdict: GRU wins: practically equivalent to LSTM and cheaper" in text


def test_html_one_clean_colour_keyed_leaderboard_and_the_verdict(tmp_path, verdict, run_trials):
    df = leaderboard(verdict, run_trials)
    paths = plots(verdict, run_trials, {"t": {"cell": "gru", "val_loss": [1.0, 0.5]}}, tmp_path)
    page = html(verdict, df, paths, "cellpick: airline", {"data": "airline.csv"})
    body = re.sub(r'src="data:image/png;base64,[^"]+"', "", page)
    assert "&lt;NA&gt;" not in body and "<NA>" not in body and ">nan<" not in body
    assert "GRU wins: practically equivalent to LSTM and cheaper" in body  # the headline
    assert body.index("GRU wins:") < body.index("<table")
    board = body[body.index("<h2>Cells and baselines</h2>"):body.index("<h2>Comparisons</h2>")]
    # The configuration once: one column, no column per hyperparameter.
    assert board.count("units=64 layers=1 dropout=0.1") == 2  # LSTM and GRU rows
    assert "<th>configuration</th>" in board and "<th>dropout</th>" not in board
    assert " name=t0" not in body and "best_val_loss=" not in body and "epochs=" not in body
    for cell in ("lstm", "gru", "rnn"):  # the colour key
        assert f"background:{CELL_COLORS[cell]}" in board
    # Rows in the terminal's order.
    names = re.findall(r'</span>([^<]+)<', board)
    assert names == ["LSTM", "GRU", "ridge (baseline)", "snaive (baseline)", "SimpleRNN",
                     "naive (baseline)"]
    assert "<th>test</th>" in board and ">11.9<" in board
    untested = {**verdict, "test_score": None}  # no test block: no empty column
    assert "<th>test</th>" not in html(untested, leaderboard(untested, []), [], "t", {})
    comparisons = body[body.index("<h2>Comparisons</h2>"):]
    assert "P(equivalent)" in comparisons and "ROPE" in comparisons
    assert not re.search(r"\d\.\d{6,}", comparisons)  # effect sizes and P rounded
    assert "max-width: 880px" in page and "overflow-x: auto" in page


def test_scores_plot_labels_every_run_on_its_own_row_with_its_place(verdict):
    """One row per cell and baseline, rank 1 on top, no label drawn over another; the best
    cell (the winner), the first overall and the export marked in the labels."""
    from matplotlib.colors import to_hex

    from cellpick.output.plots import _scores_figure

    fig = _scores_figure(verdict, "MAE")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["#1 LSTM  [first]", "#2 GRU  [best cell, exported]",
                      "#3 ridge (baseline)", "#4 snaive (baseline)", "#5 SimpleRNN",
                      "#6 naive (baseline)"]
    assert list(ax.get_yticks()) == list(range(6)) and ax.get_ylim()[0] > ax.get_ylim()[1]
    colours = {to_hex(line.get_color()) for line in ax.lines}
    assert {CELL_COLORS[c] for c in ("lstm", "gru", "rnn")} <= colours
    assert "cross-validated MAE" in ax.get_xlabel() and "95% interval" in ax.get_xlabel()


def test_curves_plot_one_panel_per_cell_with_its_median(verdict):
    from cellpick.output.plots import _curves_figure

    curves = {f"v-{c}-f{i}": {"cell": c, "val_loss": [3.0 + i, 2.0 + i, 1.5 + i]}
              for c in ("lstm", "gru") for i in range(3)}
    fig = _curves_figure(curves)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["LSTM (3 runs)", "GRU (3 runs)"]
    median = panels[0].lines[-1]  # bold, the middle run's curve
    assert list(median.get_ydata()) == [4.0, 3.0, 2.5] and median.get_linewidth() > 2


def test_intervals_have_one_precision_and_the_baseline_sentence_reads_plainly():
    from cellpick.vocab import format_diff, format_interval

    assert format_interval(0.0, 43.8) == "[0.0, 43.8]"
    assert format_interval(-21.04, 16.8) == "[-21.0, 16.8]"
    assert format_interval(0.5, 1.25) == "[0.50, 1.25]" and format_interval(None, 1) == ""
    assert format_diff(2.09) == "+2.09" and format_diff(-0.12) == "-0.120"
    cells = [CellResult("lstm", {"units": 8, "layers": 1}, [20.0, 22.0, 21.0, 23.0], 100, 1.0)]
    v = decide(cells, "mae", False, baselines={"theta": [19.0, 23.5, 18.2, 22.1]})
    assert "as good or better" not in v.reason
    assert "The best baseline (theta, MAE 20.7) scores 4% better than LSTM (ROPE" in v.reason


def test_verdict_rows_rank_cells_and_baselines_with_their_standing(verdict):
    rows = verdict_rows(leaderboard(verdict, []), verdict)
    assert [(r["rank"], r["name"], r["kind"]) for r in rows] == [
        (1, "lstm", "cell"), (2, "gru", "cell"), (3, "ridge", "baseline"),
        (4, "snaive", "baseline"), (5, "rnn", "cell"), (6, "naive", "baseline")]
    by = {r["name"]: r for r in rows}
    assert by["gru"]["standing"] == "winner" and by["lstm"]["standing"] == "best mean"
    assert by["rnn"]["standing"] == "worse" and by["ridge"]["standing"] == "best baseline"
    assert by["gru"]["note"].endswith(verdict["reason"])
    # Every interval is this run minus the one its sentence names, and the words follow it.
    assert by["rnn"]["note"].startswith(
        "SimpleRNN: practically worse; SimpleRNN - LSTM = +10.0 MAE, 95% interval [")
    assert "(SimpleRNN worse on average)" in by["rnn"]["note"]
    lo, hi = re.search(r"interval \[([-\d.]+), ([-\d.]+)\]", by["rnn"]["note"]).groups()
    assert float(lo) <= 10.0 <= float(hi)
    assert "ROPE ±0.115" in by["rnn"]["note"] and "P(LSTM practically better) 1.00" in by["rnn"]["note"]
    assert by["ridge"]["note"].startswith("the ridge baseline: best baseline; ridge - GRU = +2.")
    assert "(ridge worse on average)" in by["ridge"]["note"]
    # The places: first overall (LSTM), the best cell and the export (the winner, GRU).
    assert {r["name"]: r["places"] for r in rows if r["places"]} == {
        "lstm": ("first",), "gru": ("best", "exported")}
    baseline_first = {**verdict, "first_place": {"name": "ridge", "kind": "contestant", "mean": 9.0},
                      "best_cell": {"name": "gru", "mean": 11.5},
                      "export": {"kind": "baseline", "baseline": "ridge"}}
    rows = verdict_rows(leaderboard(verdict, []), baseline_first)
    assert {r["name"]: r["places"] for r in rows if r["places"]} == {
        "ridge": ("first", "exported"), "gru": ("best",)}
    lo, hi = verdict["cells"]["lstm"]["ci95"]
    assert (by["lstm"]["mean"], by["lstm"]["lo"], by["lstm"]["hi"]) == (
        verdict["cells"]["lstm"]["mean"], lo, hi)
    assert by["lstm"]["params"] == {"units": 64, "layers": 1, "dropout": 0.1}


def test_the_data_level_rule_says_its_outcome_for_each_candidate_and_in_the_line():
    """A challenger with the better median that won only 2 of 3 origins is not chosen, and
    its run and the stage's terminal line say so (records only: no training)."""
    from types import SimpleNamespace

    from cellpick.stages.datalevel import Candidate, DataChoice, _pick

    plan = SimpleNamespace(greater_is_better=False, prep=SimpleNamespace(task="forecast"))
    default = Candidate({"scaling": "relative", "lookback": 24}, 21.09, 0.5, [20.0, 21.09, 25.0])
    near = Candidate({"scaling": "diff", "lookback": 24}, 18.83, 0.4, [15.0, 18.83, 26.0])
    clear = Candidate({"scaling": "global", "lookback": 24}, 30.0, 0.6, [30.0, 30.0, 31.0])
    tried: list = []
    assert _pick([default, near, clear], plan, tried) is default
    assert near.outcome == ("won 2 of 3 origins: kept the default (a challenger must win "
                            "every one)")
    assert clear.outcome.startswith("won 0 of 3 origins: kept the default")
    assert default.outcome == "the default: kept (no challenger won every origin)"
    choice = DataChoice(values=default.values, decided=["scaling"], given=[], candidates=tried)
    assert choice.line().endswith("; d-diff-lb24 had a better median (18.83) but won 2 of 3 "
                                  "origins: kept the default (a challenger must win every one)")
    # A challenger that wins every origin replaces the default, and both say so.
    better = Candidate({"scaling": "diff", "lookback": 36}, 19.0, 0.4, [19.0, 20.0, 24.0])
    assert _pick([default, better], plan, tried) is better
    assert better.outcome == "won 3 of 3 origins: chosen over the default"
    assert default.outcome.endswith("; then replaced by d-diff-lb36, which won every origin")
