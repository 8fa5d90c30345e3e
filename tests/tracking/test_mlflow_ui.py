"""What the MLflow UI shows of a fit, read back from the store of one real tiny fit.

Run names, roles, colours per cell, metric names that say what each value is, summary
metrics equal to the best epoch's value, one numbering base, the parent's verdict and its
places (best cell, first overall, export), intervals whose sign follows their sentence, the
dataset input, the saved views and the URLs that open them. The browser check at the end
runs whenever Chromium is installed (CELLPICK_BROWSER_TESTS=0 skips it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pandas as pd
import pytest
from conftest import store_uri, tiny
from helpers import free_port

import cellpick
from cellpick import tracking

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fit(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("mlflow_ui")
    uri = store_uri(root)
    result = cellpick.fit(data_dir / "airline_train.csv", horizon=12, lookback=24,
                          tracking_uri=uri, out=str(root / "model"),
                          **tiny(cells="lstm,gru", test_size=0.2))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {"root": root, "uri": uri, "result": result, "client": client, "parent": parent,
            "children": {r.info.run_name: r for r in children}}


def _by_role(fit, role):
    return {n: r for n, r in fit["children"].items() if r.data.tags["cellpick.role"] == role}


def test_run_names_say_what_each_run_is_and_fit_the_name_column(fit):
    parent = fit["parent"]
    assert re.fullmatch(r"fit-airline-\d{4}-\d{4}", parent.info.run_name)
    trials = _by_role(fit, "trial")
    assert {n.split()[0] for n in trials} == {"t01-lstm-u8-l1", "t02-gru-u8-l1"}
    for name, run in trials.items():  # then the other searched values: trials read apart
        p = run.data.params
        words = name.split()[1:]
        assert f"d{float(p['dropout']):g}" in words and f"lr{float(p['learning_rate']):.0e}".replace(
            "e-0", "e-") in words, name
        assert not {"rel", "glob", "diff", "lin", "log"} & set(words), name  # data-level: fixed
    assert set(_by_role(fit, "verdict")) == {f"v-{c}-u8-l1-f{f}s{k}" for c in ("lstm", "gru")
                                             for f in (1, 2) for k in (1, 2)}
    assert set(_by_role(fit, "baseline")) == {"b-snaive", "b-ets", "b-arima", "b-theta", "b-ridge"}
    assert len(_by_role(fit, "summary")) == 2 + 5  # the verdict view's rows
    # The data-level stage (--lookback given): 3 scalings, the linear path, logs.
    data = _by_role(fit, "data")
    assert len(data) == 5 and all(re.fullmatch(r"d-(rel|diff|glob)(-log)?(-lin)?-lb24", n)
                                  for n in data), sorted(data)
    assert len(fit["children"]) == 2 + 8 + 5 + 5 + 7
    # One numbering base: a unit's name and params count folds and seeds from 1.
    for name, run in _by_role(fit, "verdict").items():
        p = run.data.params
        assert name.endswith(f"-f{p['fold']}s{p['repeat']}") and p["repeat"] in ("1", "2")
    assert max(len(n) for n in [*_by_role(fit, "verdict"), *_by_role(fit, "baseline"), *data,
                                parent.info.run_name]) <= 21
    # A trial and a verdict seed of the same configuration read alike.
    for name, run in {**_by_role(fit, "trial"), **_by_role(fit, "verdict")}.items():
        p = run.data.params
        assert f"-{p['cell']}-u{p['units']}-l{p['layers']}" in name


def test_every_run_of_a_cell_has_that_cells_colour_and_baselines_are_grey(fit):
    colours = {}
    for name, run in fit["children"].items():
        colour = run.data.tags.get("mlflow.runColor")
        role = run.data.tags["cellpick.role"]
        if role == "baseline" or "baseline" in run.data.params:
            assert colour == tracking.BASELINE_COLOR, name
        elif role == "data":
            assert colour == tracking.DATA_COLOR, name
        else:
            cell = run.data.params["cell"]
            assert colour == tracking.CELL_COLORS[cell], name
            colours.setdefault(cell, set()).add(colour)
    assert len({c for cs in colours.values() for c in cs}) == 2  # lstm and gru differ
    from cellpick.output import leaderboard

    assert leaderboard.CELL_COLORS is tracking.CELL_COLORS  # the plots and the report use them


def test_metric_names_say_what_each_value_is_and_rank_like_the_leaderboard(fit):
    """Trials: search_val_mae (the search split's validation at the kept epoch); verdict
    units: fold_mae (the fold's scoring block) and early_stop_val_mae; baselines and
    summary runs: cv_mae (cross-validated); the decayed learning rate per epoch is
    epoch_learning_rate, apart from the searched `learning_rate` param."""
    client, result = fit["client"], fit["result"]
    assert result.metric == "mae"
    for name, run in {**_by_role(fit, "trial"), **_by_role(fit, "verdict")}.items():
        m = run.data.metrics
        loss = [x.value for x in sorted(client.get_metric_history(run.info.run_id, "val_loss"),
                                        key=lambda x: x.step)]
        mae = [x.value for x in sorted(client.get_metric_history(run.info.run_id, "val_mae"),
                                       key=lambda x: x.step)]
        assert len(loss) == len(mae) >= 1, name  # one value per validation round
        best = loss.index(min(loss))
        assert m["best_epoch"] == best
        assert not {"score", "best_val_mae", "val_mae_best", "learning_rate"} & set(m), name
        kept = "search_val_mae" if run.data.tags["cellpick.role"] == "trial" else "early_stop_val_mae"
        # Summary metrics at 4 significant digits (the UI shows what was logged); the
        # curves keep every digit.
        assert m["best_val_loss"] == pytest.approx(loss[best], rel=1e-3)
        assert m[kept] == pytest.approx(mae[best], rel=1e-3)
        for key in (kept, "train_seconds"):
            assert len(f"{m[key]:.15g}".lstrip("-0.").replace(".", "")) <= 4, (name, key, m[key])
        if kept == "early_stop_val_mae":  # a fold model's score is on its fold's scoring block
            assert 1 < m["fold_mae"] < 1000, name
        lr = client.get_metric_history(run.info.run_id, "epoch_learning_rate")
        assert lr and max(x.value for x in lr) <= float(run.data.params["learning_rate"]) + 1e-9
    for name, run in _by_role(fit, "baseline").items():
        assert "cv_mae" in run.data.metrics and "best_val_mae" not in run.data.metrics
        assert run.data.metrics["cv_mae"] == pytest.approx(
            fit["result"].verdict["baselines"][run.data.params["baseline"]], rel=1e-3)
    for name, run in _by_role(fit, "data").items():
        assert {"median_fold_mae", "val_loss"} <= set(run.data.metrics), name
        steps = [x.step for x in client.get_metric_history(run.info.run_id, "fold_mae")]
        assert sorted(steps) == [1, 2], name  # its reference folds, counted from 1
    # Trials sorted by their search score come in the leaderboard's order.
    board = pd.read_csv(client.download_artifacts(fit["parent"].info.run_id, "leaderboard.csv",
                                                  str(fit["root"])))
    trials = board[board["kind"] == "trial"]
    ranked = client.search_runs([fit["parent"].info.experiment_id],
                                filter_string="tags.`cellpick.role` = 'trial'",
                                order_by=["metrics.`search_val_mae` ASC"])
    assert [r.info.run_id for r in ranked] == list(trials["run_id"])


def test_each_data_run_says_what_the_choice_rule_made_of_it(fit):
    data = _by_role(fit, "data")
    outcomes = {n: r.data.tags["cellpick.outcome"] for n, r in data.items()}
    assert all(re.match(r"(won \d of 2 origins|the default|failed)", o) for o in outcomes.values())
    for name, run in data.items():
        assert run.data.tags["mlflow.note.content"] == f"Data-level rule: {outcomes[name]}."
    [chosen] = [n for n, r in data.items() if r.data.tags.get("cellpick.chosen") == "true"]
    assert outcomes[chosen].endswith("(the final choice)")
    level = fit["result"].verdict["data_level"]
    assert {c["outcome"] for c in level["candidates"]} <= {o.replace(" (the final choice)", "")
                                                          for o in outcomes.values()}


def test_parent_run_carries_the_verdict(fit):
    parent, result, client = fit["parent"], fit["result"], fit["client"]
    tags, metrics = parent.data.tags, parent.data.metrics
    assert tags["cellpick.role"] == "search"
    assert tags["mlflow.runColor"] == tracking.FIT_COLOR
    assert tags["cellpick.winner"] == result.winner
    assert tags["cellpick.winner.units"] == "8" and tags["cellpick.winner.layers"] == "1"
    # The run's description in the UI: the verdict's sentence, then links to the fit's pages.
    note = tags["mlflow.note.content"]
    assert note.startswith("Best cell: ") and "The search chose each cell's configuration" in note
    assert (result.reason + "\n\n[The verdict: cells and baselines](#/experiments/") in note
    assert "viewStateShareKey=cellpick-verdict" in note and "[The search trials](" in note
    assert metrics["winner_cv_mae"] == pytest.approx(result.val_score, rel=1e-3)
    assert "val_mae" not in metrics
    assert metrics["test_mae"] == pytest.approx(result.test_score, rel=1e-3)
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.csv", "verdict.json", "report.html", "curves.png", "scores.png",
            "params.png"} <= artifacts
    board = pd.read_csv(client.download_artifacts(parent.info.run_id, "leaderboard.csv",
                                                  str(fit["root"])))
    assert list(board.columns[:6]) == ["kind", "name", "cell", "units", "layers", "score"]
    assert board.columns[-1] == "run_id"
    models = client.search_logged_models(experiment_ids=[parent.info.experiment_id])
    assert [(m.name, m.source_run_id) for m in models] == [("model", parent.info.run_id)]


def test_dataset_input_names_the_data_with_digest_source_and_schema(fit, data_dir):
    runs = [fit["parent"], *fit["children"].values()]
    for run in runs:  # the parent and every child, so the UI's Dataset column is filled
        (inp,) = run.inputs.dataset_inputs
        assert {t.key: t.value for t in inp.tags} == {"mlflow.data.context": "training"}
    ds = fit["parent"].inputs.dataset_inputs[0].dataset
    assert ds.name == "airline_train" and ds.source_type == "local" and len(ds.digest) == 8
    assert json.loads(ds.source)["uri"] == str((data_dir / "airline_train.csv").resolve())
    columns = {c["name"]: c["type"] for c in json.loads(ds.schema)["mlflow_colspec"]}
    assert columns == {"date": "datetime", "value": "double"}
    assert json.loads(ds.profile)["num_rows"] == 132


def test_saved_view_selects_this_fits_trials_sorted_by_the_summary_metric(fit):
    client, parent = fit["client"], fit["parent"]
    exp = client.get_experiment(parent.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(exp.tags[f"mlflow.sharedViewState.{tracking.VIEW_ID}"])
    assert view["name"] == "cellpick: latest fit's trials by search_val_mae"
    assert isinstance(view["createdAt"], int) and isinstance(view["state"], str)
    state = json.loads(view["state"])
    assert state["orderByKey"] == "metrics.`search_val_mae`" and state["orderByAsc"] is True
    assert state["runsHiddenMode"] == "SHOW_ALL"
    assert "metrics.`search_val_mae`" in state["selectedColumns"]
    charts = state["compareRunCharts"]
    assert [c.get("metricKey") for c in charts][:2] == ["search_val_mae", "val_mae"]
    assert {c["metricSectionId"] for c in charts} == {s["uuid"] for s in state["compareRunSections"]}
    # Every trial its own point: no group aggregate (a min of each axis matches no trial).
    assert "groupBy" not in state and not state.get("useGroupedValuesInCharts")
    assert {"params.`dropout`", "params.`learning_rate`", "params.`scaling`"} <= set(
        state["selectedColumns"])
    # The view's filter is a valid MLflow search: exactly this fit's trials.
    found = client.search_runs([exp.experiment_id], filter_string=state["searchFilter"])
    assert {r.info.run_name for r in found} == set(_by_role(fit, "trial"))
    # Classification ranks the other way.
    assert tracking.view_state("x", "accuracy", True)["orderByAsc"] is False


def test_url_opens_the_saved_view_and_falls_back_to_url_parameters(fit):
    parent, uri = fit["parent"], fit["uri"]
    exp_id = parent.info.experiment_id
    url = tracking.fit_url(parent.info.run_id, uri)
    assert url == tracking.fit_url(None, uri)  # the latest fit
    assert url == (f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs?workflowType=machine_learning"
                   f"&viewStateShareKey=cellpick&compareRunsMode=CHART")
    assert tracking.runs_url("7", port=5123, chart=False) == (
        "http://127.0.0.1:5123/#/experiments/7/runs?workflowType=machine_learning"
        "&viewStateShareKey=cellpick")
    assert tracking.runs_url("7", base="https://mlflow.example.org/").startswith(
        "https://mlflow.example.org/#/experiments/7/runs?")  # a tracking server's own UI
    plain = urlsplit(tracking.runs_url(exp_id, view=None, metric="mae",
                                       parent_run_id=parent.info.run_id))
    assert urlsplit(plain.fragment).path == f"/experiments/{exp_id}/runs"
    query = {k: v[0] for k, v in parse_qs(urlsplit(plain.fragment).query).items()}
    assert query == {
        "workflowType": "machine_learning",
        "searchFilter": f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
                        f"and tags.`cellpick.role` = 'trial'",
        "orderByKey": "metrics.`search_val_mae`", "orderByAsc": "true", "compareRunsMode": "CHART",
    }
    found = fit["client"].search_runs([exp_id], filter_string=query["searchFilter"])
    assert {r.info.run_name for r in found} == set(_by_role(fit, "trial"))
    # A fit from before the saved view gets the same filter and sort as URL parameters.
    client, key = fit["client"], f"mlflow.sharedViewState.{tracking.VIEW_ID}"
    saved = client.get_experiment(exp_id).tags[key]
    client.delete_experiment_tag(exp_id, key)
    try:
        assert tracking.fit_url(parent.info.run_id, uri) == urlunsplit(plain)
    finally:
        client.set_experiment_tag(exp_id, key, saved)


def test_fit_and_ui_commands_print_the_verdict_url_first(fit):
    from cellpick.cli import _ui_lines

    uri, run_id = fit["uri"], fit["parent"].info.run_id
    urls = tracking.fit_urls(run_id, uri)
    assert list(urls) == ["verdict", "trials", "run", "runs"]
    exp_id = fit["parent"].info.experiment_id
    assert urls["run"] == (f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs/{run_id}"
                           f"?workflowType=machine_learning")
    assert urls["runs"] == (f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs"
                            f"?workflowType=machine_learning")
    lines = _ui_lines(uri, run_id)
    assert lines == [f"verdict: {urls['verdict']}", f"trials:  {urls['trials']}",
                     f"run:     {urls['run']}", f"runs:    {urls['runs']}",
                     f"inspect: cellpick ui --tracking-uri {uri}   "
                     f"(or: mlflow ui --backend-store-uri {uri} --port 5000)"]
    # Every URL lands on the Model training layout (MLflow 3.17 reads workflowType).
    assert all("workflowType=machine_learning" in u for u in urls.values())
    # `cellpick ui` prints the latest fit's URL before it starts the server; stop it there.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cellpick", "ui", "--tracking-uri", uri,
                             "--port", str(port)], stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        first = [proc.stderr.readline().strip() for _ in range(5)]
    finally:
        _stop(proc)
    assert first[:4] == [f"latest fit's {what}: {url.replace(':5000/', f':{port}/')}"
                         for what, url in urls.items()]
    assert first[4].startswith(f"MLflow UI on http://127.0.0.1:{port}  (store {uri})")


def test_verdict_view_shows_each_cell_and_baseline_ranked_under_the_parent(fit):
    from cellpick.output.leaderboard import ranked
    from cellpick.verdict import headline

    client, parent = fit["client"], fit["parent"]
    verdict = fit["result"].verdict
    exp = client.get_experiment(parent.info.experiment_id)
    view = json.loads(exp.tags[f"mlflow.sharedViewState.{tracking.VERDICT_VIEW_ID}"])
    words = headline(verdict)
    assert view["name"] == words and words.split()[0] in ("LSTM", "GRU", "Undecided")
    board = pd.read_csv(client.download_artifacts(parent.info.run_id, "leaderboard.csv",
                                                  str(fit["root"])))
    from cellpick.output.leaderboard import SEARCH_VS_VERDICT, places, places_text

    decision = places_text(board, verdict, with_headline=True)
    assert decision.endswith(SEARCH_VS_VERDICT) and decision.startswith("Best cell: ")
    assert f"Verdict: {words}." in decision
    assert exp.tags["mlflow.note.content"] == f"Latest fit, {parent.info.run_name}: {decision}"
    trials_view = json.loads(exp.tags[f"mlflow.sharedViewState.{tracking.VIEW_ID}"])
    assert view["createdAt"] > trials_view["createdAt"]  # first in MLflow's Views menu
    state = json.loads(view["state"])
    assert state["orderByKey"] == "metrics.`rank`" and state["orderByAsc"] is True
    assert {"metrics.`cv_mae`", "metrics.`cv_mae_lower`", "metrics.`cv_mae_upper`",
            "tags.`cellpick.verdict`", "tags.`cellpick.place`"} <= set(state["selectedColumns"])
    # First the picture of every mean with its interval (logged on the parent), then the means.
    charts = state["compareRunCharts"]
    assert [(c["type"], c.get("imageKeys") or c.get("metricKey")) for c in charts[:2]] == [
        ("IMAGE", ["verdict"]), ("BAR", "cv_mae")]
    images = [f.path for f in client.list_artifacts(parent.info.run_id, "images")]
    assert any(p.startswith("images/verdict+step+0+") for p in images)
    # The view's filter: the parent (rank 0, the headline in its verdict column), then one
    # run per cell and per baseline in the leaderboard's order.
    rows = client.search_runs([exp.experiment_id], filter_string=state["searchFilter"],
                              order_by=["metrics.`rank` ASC"])
    assert rows[0].info.run_id == parent.info.run_id
    assert rows[0].data.tags["cellpick.verdict"] == words and rows[0].data.metrics["rank"] == 0
    order = list(ranked(board, verdict)["name"])
    where = places(board, verdict)
    summary = rows[1:]
    assert [r.data.params.get("cell") or r.data.params["baseline"] for r in summary] == order
    assert len(order) == 2 + 5
    for rank, run in enumerate(summary, start=1):
        tags, m, p = run.data.tags, run.data.metrics, run.data.params
        assert tags["cellpick.role"] == "summary" and tags["mlflow.parentRunId"] == parent.info.run_id
        assert m["rank"] == rank and run.info.run_name.startswith(f"#{rank} ")
        assert "best_val_mae" not in m and "val_mae" not in m
        # Its duration is what it summarizes (a cell's fold x seed runs, a contestant's fit),
        # not the ~20 ms of writing it.
        took = run.info.end_time - run.info.start_time
        if tags["cellpick.kind"] == "cell":
            units = [r for r in _by_role(fit, "verdict").values() if r.data.params["cell"] == p["cell"]]
            assert took == max(r.info.end_time for r in units) - min(r.info.start_time for r in units)
        else:
            [own] = [r for r in _by_role(fit, "baseline").values()
                     if r.data.params["baseline"] == p["baseline"]]
            assert took == pytest.approx(1000 * own.data.metrics["fit_seconds"], abs=2)
        kind, name = tags["cellpick.kind"], p.get("cell") or p["baseline"]
        mine = [k for k in ("first", "best", "exported")
                if (where[k].get("kind", "cell"), where[k]["name"]) == (kind, name)]
        shown = [tracking.PLACES[k] for k in mine]
        assert tags.get("cellpick.place", "") == ", ".join(shown)
        if shown:  # before the name: a cut-off name column still shows it
            assert run.info.run_name.startswith(f"#{rank} {', '.join(shown)}: ")
        _assert_interval_follows_its_sentence(tags["mlflow.note.content"], verdict)
        if tags["cellpick.kind"] == "cell":
            info = verdict["cells"][p["cell"]]
            lo, hi = info["ci95"]
            assert m["cv_mae"] == pytest.approx(info["mean"], rel=1e-3)
            assert (m["cv_mae_lower"], m["cv_mae_upper"]) == (pytest.approx(lo, rel=1e-3, abs=1e-3),
                                                              pytest.approx(hi, rel=1e-3))
            assert m["n_params"] == info["n_params"] and p["units"] == "8"
            assert tags["mlflow.runColor"] == tracking.CELL_COLORS[p["cell"]]
            note = tags["mlflow.note.content"]
            if p["cell"] == verdict["winner"]:
                assert "best" in mine and tags["cellpick.verdict"] == "winner"
                assert verdict["reason"] in note
            else:  # its effect size and probabilities against the best mean, in its description
                assert "ROPE" in note and "P(" in note
            # ... and a link to its fold x seed runs: a filter that finds exactly them
            link = re.search(r"\[Its fold x seed runs\]\(#(/experiments/[^)]+)\)", note).group(1)
            query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
            found = client.search_runs([exp.experiment_id], filter_string=query["searchFilter"])
            assert sorted(r.info.run_name for r in found) == sorted(
                n for n, r in _by_role(fit, "verdict").items() if r.data.params["cell"] == p["cell"])
        else:
            assert m["cv_mae"] == pytest.approx(verdict["baselines"][p["baseline"]], rel=1e-3)
            assert tags["mlflow.runColor"] == tracking.BASELINE_COLOR
            assert run.info.run_name.endswith(f"b-{p['baseline']}")
    assert [r.data.tags["cellpick.verdict"] for r in summary].count("best baseline") == 1


def _assert_interval_follows_its_sentence(note: str, verdict: dict) -> None:
    """'X - Y = +d MAE, 95% interval [lo, hi] (X worse on average)': the interval holds d,
    d is X's score minus Y's, and the words follow d's sign (MAE: lower is better)."""
    from cellpick.vocab import display_name

    found = re.search(r"(\S+) - (\S+) = ([-+][\d.,]+) MAE, 95% interval \[([-\d.,]+), "
                      r"([-\d.,]+)\] \((\S+) (better|worse) on average\)", note)
    if found is None:
        return
    this, ref, d, lo, hi, who, side = found.groups()
    d, lo, hi = (float(x.replace(",", "")) for x in (d, lo, hi))
    assert lo <= d <= hi and who == this, note
    assert side == ("worse" if d > 0 else "better"), note
    means = {display_name(c): i["mean"] for c, i in verdict["cells"].items()}
    means.update(verdict.get("baselines") or {})
    assert d == pytest.approx(means[this] - means[ref], rel=0.02, abs=0.06), note


def test_report_html_says_the_places_the_design_and_signed_intervals(fit):
    client, parent, verdict = fit["client"], fit["parent"], fit["result"].verdict
    page = Path(client.download_artifacts(parent.info.run_id, "report.html",
                                          str(fit["root"]))).read_text()
    from cellpick.output.leaderboard import SEARCH_VS_VERDICT

    assert "Best cell: " in page and "First overall: " in page and "Exported: " in page
    assert SEARCH_VS_VERDICT.replace("'", "&#x27;") in page
    assert "<th>a - b</th>" in page and "<th>95% interval of a - b</th>" in page
    assert "as good or better" not in page and "Validation MAE" not in page
    assert not re.search(r"\[0\.000, \d{2,}", page)  # one precision per interval
    saved = json.loads(Path(client.download_artifacts(parent.info.run_id, "verdict.json",
                                                      str(fit["root"]))).read_text())
    for comp in saved["comparisons"] + (saved["baseline_comparisons"] or []):
        lo, hi = comp["a_minus_b_ci95"]
        a, b = (verdict["cells"].get(x, {}).get("mean", (verdict["baselines"] or {}).get(x))
                for x in (comp["a"], comp["b"]))
        assert comp["a_minus_b"] == pytest.approx(a - b, rel=1e-6, abs=1e-9)
        assert lo <= comp["a_minus_b"] <= hi or comp["degenerate"]


# --- the real UI in headless Chromium ----------------------------------------------------------

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not BROWSER or os.environ.get("CELLPICK_BROWSER_TESTS") == "0",
                    reason="Chromium is not installed (apt-get install chromium), or "
                           "CELLPICK_BROWSER_TESTS=0")
def test_ui_shows_the_verdict_and_the_trials_in_headless_chromium(fit, tmp_path):
    """`cellpick ui`'s server (tracking.ui.serve): the printed views show the verdict and
    the trials, and an experiment opened as MLflow's home page links it (no workflowType)
    in a fresh browser lands on the runs (Model training), not the GenAI overview."""
    port = free_port()
    serve = f"import sys; from cellpick.tracking.ui import serve; sys.exit(serve({fit['uri']!r}, {port}))"
    proc = subprocess.Popen([sys.executable, "-c", serve], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait_healthy(port, timeout=300)
        urls = tracking.fit_urls(fit["parent"].info.run_id, fit["uri"], port=port)
        home = f"http://127.0.0.1:{port}/#/experiments/{fit['parent'].info.experiment_id}"
        dom, verdict_dom, home_dom = (subprocess.run(
            [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / f'profile{i}'}",
             "--window-size=1400,900", "--virtual-time-budget=30000", "--dump-dom",
             url.replace("CHART", "TABLE")],
            capture_output=True, text=True, timeout=180).stdout
            for i, url in enumerate((urls["trials"], urls["verdict"], home)))
    finally:
        _stop(proc)
    assert "Judges" not in home_dom and "Detect Issues" not in home_dom, "GenAI layout"
    assert fit["parent"].info.run_name in home_dom
    for name in _by_role(fit, "trial"):
        assert name.split()[0] in dom
    assert "cellpick: latest fit" in dom and "Sort: search_val_mae" in dom
    # The verdict: its headline (view name, experiment description), every cell and baseline.
    from cellpick.verdict import headline

    assert _html_text(headline(fit["result"].verdict)) in verdict_dom
    for name in _by_role(fit, "summary"):
        assert _html_text(name) in verdict_dom
    assert "best cell" in verdict_dom and "Best cell: " in verdict_dom
    assert fit["parent"].info.run_name in verdict_dom and "Sort: rank" in verdict_dom
    for cell in ("lstm", "gru"):
        assert tracking.CELL_COLORS[cell] in verdict_dom


def test_the_ui_proxy_stores_model_training_as_the_default_layout_only():
    from cellpick.tracking.ui import DEFAULT_LAYOUT, with_default_layout

    page = b"<!doctype html><html><head><meta charset=utf-8><script src=main.js></script>"
    out = with_default_layout(page)
    assert out.index(DEFAULT_LAYOUT.encode()) < out.index(b"main.js")  # before MLflow's code
    assert b"if(!localStorage.getItem('mlflow.workflowType_v1'))" in out  # a user's choice stays
    assert b"JSON.stringify('machine_learning')" in out
    assert with_default_layout(b"{}") == b"{}"  # not a page: unchanged


def _html_text(text: str) -> str:
    import html

    return html.escape(text, quote=False)




def _wait_healthy(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(2)
    raise AssertionError(f"mlflow ui did not answer on port {port} within {timeout}s")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a server we started and everything it spawned (its own process group): Ctrl-C
    first, as mlflow ui's job consumers ignore SIGTERM, then SIGKILL whatever is left."""
    import signal

    for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
