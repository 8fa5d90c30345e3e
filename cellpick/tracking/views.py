"""The MLflow UI's side of a fit: the saved views' state (the trials view and the verdict
view), the URLs of a fit's pages, and a past fit read back (`cellpick report`, `cellpick ui`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cellpick.errors import CellpickError
from cellpick.tracking.names import SEARCHED_COLUMNS, cv_key, search_key
from cellpick.tracking.store import _quiet_mlflow, resolve_uri
from cellpick.tracking.tags import (
    _VIEW_TAG,
    FIT_TAG,
    PARENT_TAG,
    PLACE_TAG,
    ROLE,
    UI_PORT,
    VERDICT_TAG,
    VERDICT_VIEW_ID,
    VIEW_ID,
)
from cellpick.vocab import METRICS


def view_state(parent_run_id: str, metric: str, greater_is_better: bool) -> dict[str, Any]:
    """The trials view's state, as MLflow 3.17's runs page stores one (search facets and UI
    state): a fit's trials sorted by their search validation score (`search_key`), key
    columns in the table, and charts: that score, its per-epoch curve, that score against
    parameter count, val_loss per epoch, training time; every trial its own point or line,
    every run charted (docs/mlflow.md, "The trials view")."""
    key = search_key(metric)
    section = "cellpick"
    many = 1000  # runs per chart

    def chart(n: int, kind: str, **spec) -> dict[str, Any]:
        return {"uuid": f"cellpick-{n}", "type": kind, "metricSectionId": section,
                "runsCountToCompare": many, "deleted": False, "isGenerated": False, **spec}

    line = {"lineSmoothness": 0, "xAxisScaleType": "linear", "scaleType": "linear", "range": {},
            "xAxisKey": "step", "selectedXAxisMetricKey": "", "yAxisKey": "metric",
            "yAxisExpressions": [], "ignoreOutliers": False, "useGlobalXaxisKey": False,
            "useGlobalLineSmoothing": False}
    return {
        "searchFilter": f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{ROLE}` = 'trial'",
        "orderByKey": f"metrics.`{key}`", "orderByAsc": not greater_is_better,
        "selectedColumns": ["params.`cell`", "params.`units`", "params.`layers`",
                            *[f"params.`{k}`" for k in SEARCHED_COLUMNS],
                            f"metrics.`{key}`", "metrics.`n_params`", "metrics.`train_seconds`"],
        "runsHiddenMode": "SHOW_ALL",
        "compareRunSections": [{"uuid": section, "name": "cellpick trials",
                                "display": True, "isReordered": False, "deleted": False,
                                "isGenerated": False}],
        "compareRunCharts": [
            chart(1, "BAR", metricKey=key),
            chart(2, "LINE", metricKey=f"val_{metric}", selectedMetricKeys=[f"val_{metric}"], **line),
            chart(3, "SCATTER", xaxis={"key": "n_params", "type": "METRIC"},
                  yaxis={"key": key, "type": "METRIC"}),
            chart(4, "LINE", metricKey="val_loss", selectedMetricKeys=["val_loss"], **line),
            chart(5, "BAR", metricKey="train_seconds"),
        ],
    }


def verdict_view_state(parent_run_id: str, metric: str) -> dict[str, Any]:
    """The verdict view's state: the fit's parent run first (metric rank 0), then its summary
    runs, one per cell and per baseline in the leaderboard's order (metric `rank`), with
    place, cross-validated mean and interval, cost, configuration and standing as columns;
    charts: the parent's image `verdict`, the means as bars, the mean against parameter
    count (docs/mlflow.md, "The verdict view")."""
    key = cv_key(metric)
    section, means = "cellpick-verdict", "cellpick-verdict-means"

    def chart(n: int, kind: str, where: str = means, **spec) -> dict[str, Any]:
        return {"uuid": f"cellpick-verdict-{n}", "type": kind, "metricSectionId": where,
                "runsCountToCompare": 100, "deleted": False, "isGenerated": False, **spec}

    def part(uuid: str, name: str, columns: int, height: int) -> dict[str, Any]:
        return {"uuid": uuid, "name": name, "display": True, "isReordered": False,
                "deleted": False, "isGenerated": False, "columns": columns, "cardHeight": height}

    return {
        # KILLED: summary runs of an attempt that --resume superseded
        "searchFilter": f"tags.`{FIT_TAG}` = '{parent_run_id}' and attributes.status != 'KILLED'",
        "orderByKey": "metrics.`rank`", "orderByAsc": True,
        "selectedColumns": [f"tags.`{PLACE_TAG}`", f"metrics.`{key}`", f"metrics.`{key}_lower`",
                            f"metrics.`{key}_upper`", "metrics.`n_params`", "params.`config`",
                            f"tags.`{VERDICT_TAG}`"],
        "runsHiddenMode": "SHOW_ALL",
        "hideEmptyCharts": True,
        # The picture alone and full width in the first section; the means below it.
        "compareRunSections": [
            # (MLflow lists sections by name: "at a glance" sorts first)
            part(section, "cellpick verdict: at a glance, every mean with its 95% interval", 1, 560),
            part(means, "cellpick verdict: the means as bars, and against parameters", 2, 420)],
        "compareRunCharts": [
            chart(1, "IMAGE", section, imageKeys=["verdict"], step=0, showRunParams=False),
            chart(2, "BAR", metricKey=key),
            chart(3, "SCATTER", xaxis={"key": "n_params", "type": "METRIC"},
                  yaxis={"key": key, "type": "METRIC"}),
        ],
    }


def runs_url(experiment_id: str, *, port: int = UI_PORT, view: str | None = VIEW_ID,
             metric: str | None = None, greater_is_better: bool = False,
             parent_run_id: str | None = None, chart: bool = True, base: str | None = None,
             filters: bool = True) -> str:
    """The experiment's runs page in `mlflow ui` on 127.0.0.1 (or at `base`, a tracking server).

    With `view` (the default), the saved view that `Tracker.show_in_ui` wrote. Without it,
    the latest fit's trials by filter and sort URL parameters (which make MLflow 3.17's runs
    page ignore a view), or with `filters=False` the experiment's whole runs list. Every URL
    carries `workflowType=machine_learning` (else the UI opens the experiment as GenAI).
    """
    from urllib.parse import quote, urlencode

    query: dict[str, str] = {"workflowType": "machine_learning"}
    if view:
        query["viewStateShareKey"] = view
    elif filters:
        filters = [f"tags.`{ROLE}` = 'trial'"]
        if parent_run_id:
            filters.insert(0, f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
        query["searchFilter"] = " and ".join(filters)
        if metric:
            query["orderByKey"] = f"metrics.`{search_key(metric)}`"
            query["orderByAsc"] = "false" if greater_is_better else "true"
    if chart:
        query["compareRunsMode"] = "CHART"
    base = (f"http://127.0.0.1:{port}" if base is None else base).rstrip("/")
    return (f"{base}/#/experiments/{experiment_id}/runs?"
            + urlencode(query, quote_via=quote, safe=""))


def run_url(experiment_id: str, run_id: str, *, port: int = UI_PORT,
            base: str | None = None) -> str:
    """A run's own page (the parent's: the verdict's sentence as its description)."""
    base = (f"http://127.0.0.1:{port}" if base is None else base).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def fit_urls(run_id: str | None = None, uri: str | None = None,
             port: int = UI_PORT) -> dict[str, str]:
    """A fit's pages in the UI (the latest fit in the store by default; {} if none):
    'verdict' (the verdict view, once the fit has one), 'trials' (`runs_url`), 'run' (the
    parent run) and 'runs' (the experiment's runs list, Model training layout). On a
    tracking server (an http(s) URI) they point at its own UI."""
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()
    uri = resolve_uri(uri)
    base = uri if uri.startswith(("http://", "https://")) else None
    client = MlflowClient(uri)
    run = client.get_run(run_id) if run_id else _latest_fit(client, finished=False)
    if run is None:
        return {}
    exp = client.get_experiment(run.info.experiment_id)
    urls = {}
    if _VIEW_TAG + VERDICT_VIEW_ID in exp.tags:
        urls["verdict"] = runs_url(exp.experiment_id, port=port, base=base, view=VERDICT_VIEW_ID)
    if _VIEW_TAG + VIEW_ID in exp.tags:
        urls["trials"] = runs_url(exp.experiment_id, port=port, base=base)
    else:
        metric = run.data.params.get("metric")  # a fit from before the saved view
        greater = {m: g for m, g in METRICS.values()}.get(metric, False)
        urls["trials"] = runs_url(exp.experiment_id, port=port, view=None, metric=metric,
                                  greater_is_better=greater, parent_run_id=run.info.run_id,
                                  base=base)
    urls["run"] = run_url(exp.experiment_id, run.info.run_id, port=port, base=base)
    # The experiment's runs list in the Model training layout: what to bookmark instead of
    # MLflow's home page, whose links open the browser's default layout (GenAI).
    urls["runs"] = runs_url(exp.experiment_id, port=port, base=base, view=None, chart=False,
                            filters=False)
    return urls


def fit_url(run_id: str | None = None, uri: str | None = None, port: int = UI_PORT) -> str | None:
    """The trials page of a fit (`fit_urls`' 'trials'; None if the store has no fit)."""
    return fit_urls(run_id, uri, port).get("trials")


def _latest_fit(client, finished: bool = True):
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string=f"tags.`{ROLE}` = 'search'",
                              order_by=["attributes.start_time DESC"], max_results=20) if ids else []
    runs = [r for r in runs if r.info.status == "FINISHED" or not finished]
    return runs[0] if runs else None


def load_fit(run_id: str | None = None, uri: str | None = None) -> dict[str, Any]:
    """A past fit's verdict and leaderboard, from its parent run's artifacts (latest by default)."""
    import json
    import tempfile

    import pandas as pd
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()
    uri = resolve_uri(uri)
    client = MlflowClient(uri)
    if run_id is None:
        run = _latest_fit(client)
        if run is None:
            raise CellpickError(f"no finished cellpick fit in {uri}; run `cellpick fit DATA.csv` first "
                                f"or pass --tracking-uri")
    else:
        try:
            run = client.get_run(run_id)
        except Exception:
            raise CellpickError(f"run '{run_id}' not found in {uri}; check the id or --tracking-uri") from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            v = client.download_artifacts(run.info.run_id, "verdict.json", tmp)
            b = client.download_artifacts(run.info.run_id, "leaderboard.csv", tmp)
        except Exception:
            raise CellpickError(f"run '{run.info.run_id}' has no verdict (status {run.info.status}); "
                                f"pass the id of a finished fit") from None
        verdict = json.loads(Path(v).read_text())
        board = pd.read_csv(b)
    exp = client.get_experiment(run.info.experiment_id)
    return {"run_id": run.info.run_id, "experiment": exp.name, "status": run.info.status,
            "verdict": verdict, "leaderboard": board}
