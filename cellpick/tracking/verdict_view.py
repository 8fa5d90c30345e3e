"""What a fit shows in MLflow's UI beyond its runs: the saved views of its trials and its
verdict, the verdict's summary runs (one per cell and contestant, in the leaderboard's order)
with its picture, and the experiment's description. `VerdictView` is mixed into the Tracker
(tracking/tracker.py), so callers keep calling `tracker.log_verdict` and `tracker.show_in_ui`.
What the views hold and why: docs/mlflow.md.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cellpick.tracking.names import (
    PLACES,
    STANDING_WORDS,
    cv_key,
    search_key,
    verdict_run_name,
)
from cellpick.tracking.tags import (
    _DESCRIPTION_START,
    _KIND,
    _KIND_TAG,
    _VIEW_TAG,
    FIT_TAG,
    KIND_TAG,
    NOTE_TAG,
    PARENT_TAG,
    PLACE_TAG,
    ROLE,
    VERDICT_TAG,
    VERDICT_VIEW_ID,
    VIEW_ID,
    Role,
)
from cellpick.tracking.views import runs_url, verdict_view_state, view_state


class VerdictView:
    """The Tracker's UI side. A mixin: it uses the Tracker's `client`, `experiment_id`,
    `parent_id`, `_metric`, `_children`, `start_child`, `end_child`, `log_metrics` and
    `set_tags`."""

    client: Any
    experiment_id: str
    parent_id: str | None
    _metric: str | None

    def show_in_ui(self, metric: str, greater_is_better: bool) -> None:
        """Experiment tags for the UI: the model-training kind and the saved view VIEW_ID
        (this fit's trials, best first, with key columns and charts; see `view_state`)."""
        import json

        now = int(time.time() * 1000)
        self._metric = metric
        view = {"name": f"cellpick: latest fit's trials by {search_key(metric)}",
                "createdAt": now, "updatedAt": now,
                "state": json.dumps(view_state(self.parent_id, metric, greater_is_better))}
        tags = {_VIEW_TAG + VIEW_ID: json.dumps(view)}
        if _KIND_TAG not in self.client.get_experiment(self.experiment_id).tags:
            tags[_KIND_TAG] = _KIND  # a kind the user chose stays
        for k, v in tags.items():
            self.client.set_experiment_tag(self.experiment_id, k, v)

    def log_verdict(self, rows: list[dict[str, Any]], headline: str, metric: str,
                    decision: str = "", picture: Path | None = None) -> list[str]:
        """The verdict as MLflow shows it: one summary run (role summary) per cell and per
        baseline, in `rows`' (the leaderboard's) order, carrying its cross-validated mean
        and interval as metrics, and the saved view VERDICT_VIEW_ID named by `headline` that
        shows them under the parent run. `decision`: the sentences naming the best cell,
        what ranks first and what was exported (and the verdict), at the head of the
        parent's and the experiment's descriptions (else `headline` heads the latter); `picture`: a PNG of every mean with its interval, logged
        on the parent as the image `verdict` (the view's first chart). A summary run spans
        the runs it summarizes (its fold x seed runs, or its baseline run). Returns the
        summary runs' ids.

        rows: {kind: cell|baseline, name, rank, mean, lo, hi, n_params, train_seconds,
        params (logged as params), config (text), standing (verdict.standing, or 'best
        baseline'/'baseline'), places (names.PLACES keys), note (the run's description)}."""
        import json

        key = cv_key(metric)
        self._metric = metric
        if picture is not None:
            self._log_picture(picture)
        # rank 0: the parent heads the view's table, its headline in the verdict column; its
        # description (the verdict's sentence) links the views and the fold x seed runs.
        note = self.client.get_run(self.parent_id).data.tags.get(NOTE_TAG, "")
        head = f"{decision}\n\n" if decision else ""
        self.set_tags(self.parent_id, {FIT_TAG: self.parent_id, VERDICT_TAG: headline,
                                       NOTE_TAG: f"{head}{note}\n\n{self._links()}".strip()})
        self.log_metrics(self.parent_id, {"rank": 0})
        spans = self._spans()
        ids = []
        for row in rows:
            standing = row.get("standing") or ""
            places = tuple(row.get("places") or ())
            tags = {KIND_TAG: row["kind"], VERDICT_TAG: STANDING_WORDS.get(standing, standing),
                    FIT_TAG: self.parent_id}
            if places:
                tags[PLACE_TAG] = ", ".join(PLACES[r] for r in ("first", "best", "exported")
                                            if r in places)
            tags[NOTE_TAG] = (row.get("note") or "") + (
                f"\n\n[Its fold x seed runs]({self._unit_runs_link(row['name'])})"
                if row["kind"] == "cell" else "")
            what = {"cell" if row["kind"] == "cell" else "baseline": row["name"]}
            start, end = spans.get((row["kind"], row["name"]), (None, None))
            run_id = self.start_child(
                Role.SUMMARY, verdict_run_name(row["rank"], row["kind"], row["name"],
                                            row.get("params"), places),
                {**(row.get("params") or {}), **what, "config": row.get("config") or "-"}, tags,
                start_time=start)
            self.log_metrics(run_id, {key: row.get("mean"), f"{key}_lower": row.get("lo"),
                                      f"{key}_upper": row.get("hi"), "rank": row["rank"],
                                      "n_params": row.get("n_params"),
                                      "train_seconds": row.get("train_seconds")})
            self.end_child(run_id, end_time=end)
            ids.append(run_id)
        self._describe_experiment(headline, decision)
        now = int(time.time() * 1000)
        view = {"name": headline, "createdAt": now, "updatedAt": now,
                "state": json.dumps(verdict_view_state(self.parent_id, metric))}
        self.client.set_experiment_tag(self.experiment_id, _VIEW_TAG + VERDICT_VIEW_ID,
                                       json.dumps(view))
        return ids

    def _log_picture(self, picture: Path) -> None:
        """The image `verdict` on the parent, for the view's IMAGE chart. That chart shows
        the image's "compressed" copy, which MLflow 3.17 shrinks to 256 px (labels become
        unreadable); here that copy keeps the picture's own size (the click preview is the
        full PNG either way)."""
        import mlflow.tracking.client as client_module
        from PIL import Image

        shrink = client_module.compress_image_size
        with Image.open(picture) as image:
            rgb = image.convert("RGB")
        client_module.compress_image_size = lambda im, max_size=None: shrink(im, max(im.size))
        try:
            self.client.log_image(self.parent_id, rgb, key="verdict", step=0)
        finally:
            client_module.compress_image_size = shrink

    def _spans(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(kind, name) -> (start, end) in ms of what a summary run stands for: a cell's fold
        x seed runs (first start to last end); a baseline's fit (its run's `fit_seconds`,
        all folds and its refit in a worker, ending where its run ends)."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for run in self._children():
            role, p, info = run.data.tags.get(ROLE), run.data.params, run.info
            if info.start_time is None or info.end_time is None:
                continue
            start = info.start_time
            if role == Role.VERDICT and p.get("cell"):
                what = ("cell", p["cell"])
            elif role == Role.BASELINE and p.get("baseline"):
                what = ("baseline", p["baseline"])
                seconds = run.data.metrics.get("fit_seconds")
                if seconds is not None:
                    start = info.end_time - int(round(seconds * 1000))
            else:
                continue
            lo, hi = out.get(what, (start, info.end_time))
            out[what] = (min(lo, start), max(hi, info.end_time))
        return out

    def _links(self) -> str:
        """Markdown links (relative: they work on any host) to this fit's pages."""
        def page(view: str) -> str:
            return runs_url(self.experiment_id, view=view, chart=False, base="").lstrip("/")

        return (f"[The verdict: cells and baselines]({page(VERDICT_VIEW_ID)}) · "
                f"[The search trials]({page(VIEW_ID)}) · "
                f"[The verdict's fold x seed runs]({self._unit_runs_link()})")

    def _unit_runs_link(self, cell: str | None = None) -> str:
        from urllib.parse import quote, urlencode

        filt = f"tags.`{PARENT_TAG}` = '{self.parent_id}' and tags.`{ROLE}` = 'verdict'"
        if cell:
            filt += f" and params.`cell` = '{cell}'"
        query = {"workflowType": "machine_learning", "searchFilter": filt,
                 "orderByKey": "attributes.run_name", "orderByAsc": "true"}
        return (f"#/experiments/{self.experiment_id}/runs?"
                + urlencode(query, quote_via=quote, safe=""))

    def _describe_experiment(self, headline: str, decision: str = "") -> None:
        """The experiment's description (shown above its runs): the latest fit's `decision`
        (its places) and verdict, unless the user wrote one (cellpick only replaces its own)."""
        current = self.client.get_experiment(self.experiment_id).tags.get(NOTE_TAG)
        if current and not current.startswith(_DESCRIPTION_START):
            return
        run = self.client.get_run(self.parent_id)
        # The places first: the UI shows the description's first two lines unless opened.
        text = f"{_DESCRIPTION_START}{run.info.run_name}: {decision or headline + '.'}"
        self.client.set_experiment_tag(self.experiment_id, NOTE_TAG, text)
