"""The Tracker: one parent run per fit, child runs through the client API, summary runs."""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpick.tracking.names import (
    _STANDING_WORDS,
    ROLES,
    cv_key,
    search_key,
    shown_metric,
    verdict_run_name,
)
from cellpick.tracking.store import _quiet_mlflow, _sqlite_init_lock, resolve_uri
from cellpick.tracking.tags import (
    _DESCRIPTION_START,
    _KIND,
    _KIND_TAG,
    _VIEW_TAG,
    BEATS_BASELINE_TAG,
    CELLS_DONE_TAG,
    CHOSEN_PREFIX,
    CHOSEN_TAG,
    DATA_CONTEXT_TAG,
    DECISION_TAG,
    DEFAULT_URI,
    DISTRIBUTED_KEY_TAG,
    DISTRIBUTED_TAG,
    ERROR_TAG,
    EXPORT_TAG,
    FIT_KEY_TAG,
    FIT_TAG,
    KIND_TAG,
    NOTE_TAG,
    OUTCOME_TAG,
    PARENT_TAG,
    PLACE_TAG,
    REGISTERED_MODEL_TAG,
    REGISTERED_URI_TAG,
    REGISTERED_VERSION_TAG,
    ROLE,
    RUN_COLOR_TAG,
    RUN_NAME_TAG,
    TRIAL_ID_TAG,
    VERDICT_TAG,
    VERDICT_VIEW_ID,
    VIEW_ID,
    WINNER_TAG,
)
from cellpick.tracking.views import runs_url, verdict_view_state, view_state
from cellpick.vocab import BASELINE_COLOR, CELL_COLORS, DATA_COLOR, FIT_COLOR


@dataclass(frozen=True)
class ChildRun:
    """A child run of the fit as plain facts (what search and distributed need to know)."""

    run_id: str
    status: str  # RUNNING, FINISHED, FAILED or KILLED
    role: str | None
    params: dict[str, str] = field(default_factory=dict)
    trial_id: str | None = None  # keras-tuner's trial id (trial runs)
    error: str | None = None

    @property
    def cell(self) -> str | None:
        return self.params.get("cell")


@dataclass(frozen=True)
class FitState:
    """A parent run as a distributed worker sees it."""

    running: bool
    cells_done: tuple[str, ...]


def _param_value(v: Any) -> str:
    return str(v)[:6000]


def parse_param(text: str) -> Any:
    """A logged param string back to the int, float or bool it was."""
    if text in ("True", "False"):
        return text == "True"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def fit_key(values: dict[str, Any]) -> str:
    """Identifies 'the same fit' for --resume: the data file and every option that shapes it."""
    import hashlib
    import json

    skip = {"resume", "json", "quiet", "time_budget", "tracking_uri"}
    data = values.get("data")
    ident = {k: v for k, v in values.items() if k not in skip}
    if data:
        ident["data"] = str(Path(data).resolve())
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Serialized:
    """An MlflowClient whose calls take turns: trials in threads (--jobs) and the per-epoch
    writer thread share one client, and one SQLite store takes one writer at a time."""

    def __init__(self, client):
        import threading

        self._client, self._lock = client, threading.RLock()

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


class Tracker:
    """A fit's connection to MLflow: the parent run and its children."""

    def __init__(self, uri: str | None, experiment: str):
        _quiet_mlflow()
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = resolve_uri(uri)
        if self.uri == DEFAULT_URI:
            Path("mlruns").mkdir(exist_ok=True)
        # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; finish_fit puts the old
        # value back, so a later fit in this process without a URI does not inherit this one.
        self._previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)
        # Two fits starting at once on a new SQLite store would both run its schema
        # migrations (alembic) and one fails: the first to take the lock creates the store.
        with _sqlite_init_lock(self.uri):
            self.client = _Serialized(MlflowClient(self.uri))
            self.client.search_experiments(max_results=1)
            self.experiment_name = experiment
            self.experiment_id = self._experiment_id(experiment)
        self.parent_id: str | None = None
        self._dataset_input = None
        self._writer = None  # one background thread for per-epoch metrics (see log_epoch)
        self._pending: dict[str, list] = {}  # run id -> futures of its unwritten epochs
        self._roles: dict[str, str | None] = {}  # run id -> its role (metric names follow it)
        self._metric: str | None = None  # the fit's task metric (the parent's `metric` param)

    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = None
        if self.uri == DEFAULT_URI:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            location = (Path("mlruns") / "artifacts" / safe).resolve().as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created meanwhile by a concurrent fit
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    # -- parent run ---------------------------------------------------------------------
    def start_fit(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        import mlflow

        run = mlflow.start_run(experiment_id=self.experiment_id, run_name=run_name,
                               tags={ROLE: "search", RUN_COLOR_TAG: FIT_COLOR, **tags})
        self.parent_id = run.info.run_id
        self._roles[self.parent_id] = "search"
        self._metric = params.get("metric") or self._metric
        self.log_params(self.parent_id, params)
        return self.parent_id

    def log_dataset(self, frame, source: str, name: str, on_parent: bool = True) -> None:
        """The data as an MLflow dataset input on the parent (unless `on_parent` is False: a
        resumed fit has it already) and on every child run started after this call."""
        import mlflow
        from mlflow.entities import DatasetInput, InputTag

        with _no_schema_hints():  # the schema is inferred lazily, by any of these calls
            dataset = mlflow.data.from_pandas(frame, source=source, name=name)
            if on_parent:
                mlflow.log_input(dataset, context="training")
            # Children log the same input, so the Dataset column is filled on every run.
            self._dataset_input = DatasetInput(dataset._to_mlflow_entity(),
                                               [InputTag(DATA_CONTEXT_TAG, "training")])

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
        baseline'/'baseline'), roles (names.ROLES keys), note (the run's description)}."""
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
            roles = tuple(row.get("roles") or ())
            tags = {KIND_TAG: row["kind"], VERDICT_TAG: _STANDING_WORDS.get(standing, standing),
                    FIT_TAG: self.parent_id}
            if roles:
                tags[PLACE_TAG] = ", ".join(ROLES[r] for r in ("first", "best", "exported")
                                            if r in roles)
            tags[NOTE_TAG] = (row.get("note") or "") + (
                f"\n\n[Its fold x seed runs]({self._unit_runs_link(row['name'])})"
                if row["kind"] == "cell" else "")
            what = {"cell" if row["kind"] == "cell" else "baseline": row["name"]}
            start, end = spans.get((row["kind"], row["name"]), (None, None))
            run_id = self.start_child(
                "summary", verdict_run_name(row["rank"], row["kind"], row["name"],
                                            row.get("params"), roles),
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
            if role == "verdict" and p.get("cell"):
                what = ("cell", p["cell"])
            elif role == "baseline" and p.get("baseline"):
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

    def finish_fit(self, status: str = "FINISHED", reason: str | None = None) -> None:
        import mlflow

        try:
            try:
                self.flush(strict=status == "FINISHED")
            finally:
                if self._writer is not None:
                    self._writer.shutdown(wait=True)
                    self._writer = None
            if self.parent_id is None:
                return
            if reason:
                self.client.set_tag(self.parent_id, ERROR_TAG, reason[:5000])
            mlflow.end_run(status=status)
        finally:
            mlflow.set_tracking_uri(self._previous_uri)

    def find_resumable(self, key: str) -> str | None:
        """The latest unfinished parent run of the same fit (same data and options), if any."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE}` = 'search' and tags.`{FIT_KEY_TAG}` = '{key}'",
            order_by=["attributes.start_time DESC"], max_results=10,
        )
        for run in runs:
            if run.info.status != "FINISHED":
                return run.info.run_id
        return None

    def reopen_fit(self, run_id: str) -> str:
        import mlflow

        mlflow.start_run(run_id=run_id)
        self.parent_id = run_id
        self._roles[run_id] = "search"
        return run_id

    def _children(self, role: str | None = None) -> list:
        filt = f"tags.`{PARENT_TAG}` = '{self.parent_id}'"
        if role:
            filt += f" and tags.`{ROLE}` = '{role}'"
        return self.client.search_runs([self.experiment_id], filter_string=filt, max_results=5000)

    def child_runs(self, role: str | None = None, cell: str | None = None,
                   status: str | None = None) -> list[ChildRun]:
        """The fit's child runs (of one role, cell, status) as plain records."""
        out = []
        for run in self._children(role):
            tags = run.data.tags
            rec = ChildRun(run.info.run_id, run.info.status, tags.get(ROLE), dict(run.data.params),
                           tags.get(TRIAL_ID_TAG), tags.get(ERROR_TAG))
            if (cell is None or rec.cell == cell) and (status is None or rec.status == status):
                out.append(rec)
        return out

    def find_chief(self, key: str) -> str | None:
        """The running parent run of the distributed fit with this key (its chief's), if any."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(f"tags.`{ROLE}` = 'search' and tags.`{DISTRIBUTED_TAG}` = 'chief' "
                           f"and tags.`{DISTRIBUTED_KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'"),
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def fit_state(self, run_id: str) -> FitState:
        run = self.client.get_run(run_id)
        done = run.data.tags.get(CELLS_DONE_TAG, "")
        return FitState(run.info.status == "RUNNING", tuple(c for c in done.split(",") if c))

    def close_children(self, roles: tuple[str, ...], status: str, reason: str,
                       only_running: bool = True) -> int:
        """Terminate child runs (e.g. those a killed process left RUNNING); returns how many."""
        n = 0
        for run in self.child_runs():
            if run.role not in roles:
                continue
            if only_running and run.status != "RUNNING":
                continue
            self.end_child(run.run_id, status, reason)
            n += 1
        return n

    def trial_records(self) -> tuple[list[dict], dict[str, dict]]:
        """Records and validation curves of this fit's finished trial runs (for a resume)."""
        records, curves = [], {}
        for run in self._children("trial"):
            if run.info.status != "FINISHED":
                continue
            p, m = run.data.params, run.data.metrics
            name = run.data.tags.get(RUN_NAME_TAG, run.info.run_id)
            history = self.client.get_metric_history(run.info.run_id, "val_loss")
            # search_val_<metric>; `score` in stores written before the names said what it is
            score = next((v for k, v in m.items() if k.startswith("search_val_")
                          and k != "search_val_loss"), m.get("score"))
            records.append({
                "trial_id": run.data.tags.get(TRIAL_ID_TAG), "name": name,
                **{k: parse_param(v) for k, v in p.items()},
                "score": score, "best_val_loss": m.get("best_val_loss"),
                "epochs": len(history), "n_params": int(m["n_params"]) if "n_params" in m else None,
                "train_seconds": m.get("train_seconds"), "status": "COMPLETED", "error": None,
                "run_id": run.info.run_id,
            })
            curves[name] = {"cell": p.get("cell"),
                            "val_loss": [h.value for h in sorted(history, key=lambda h: h.step)]}
        records.sort(key=lambda r: r["name"])
        return records, curves

    # -- children -----------------------------------------------------------------------
    def start_child(self, role: str, name: str, params: dict[str, Any],
                    tags: dict[str, str] | None = None, start_time: int | None = None) -> str:
        all_tags = {ROLE: role, PARENT_TAG: self.parent_id, **(tags or {})}
        cell = params.get("cell")
        if cell in CELL_COLORS:
            all_tags[RUN_COLOR_TAG] = CELL_COLORS[cell]
        elif role == "baseline" or params.get("baseline"):
            all_tags[RUN_COLOR_TAG] = BASELINE_COLOR
        elif role == "data":
            all_tags[RUN_COLOR_TAG] = DATA_COLOR
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags,
                                     start_time=start_time)
        self._roles[run.info.run_id] = role
        self.log_params(run.info.run_id, params)
        if self._dataset_input is not None:
            self.client.log_inputs(run.info.run_id, datasets=[self._dataset_input])
        return run.info.run_id

    def end_child(self, run_id: str, status: str = "FINISHED", error: str | None = None,
                  end_time: int | None = None) -> None:
        self.flush(run_id, strict=status == "FINISHED")
        if error:
            self.client.set_tag(run_id, ERROR_TAG, error[-5000:])
        self.client.set_terminated(run_id, status=status, end_time=end_time)

    # -- logging ------------------------------------------------------------------------
    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _param_value(v)) for k, v in params.items() if v is not None]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def _named(self, run_id: str, metrics: dict[str, Any]) -> dict[str, Any]:
        """A record's metrics under the names the run's role shows (names.shown_metric)."""
        if run_id not in self._roles:  # a run this Tracker did not start (a resumed fit)
            try:
                self._roles[run_id] = self.client.get_run(run_id).data.tags.get(ROLE)
            except Exception:  # noqa: BLE001 - no such run: the write itself says so
                self._roles[run_id] = None
        if self._metric is None and self.parent_id:
            self._metric = self.client.get_run(self.parent_id).data.params.get("metric")
        role = self._roles[run_id]
        out = {}
        for k, v in metrics.items():
            name = shown_metric(role, k, self._metric)
            if name is not None:
                out[name] = v
        return out

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        """Summary metrics, rounded as the UI's tables show them (`_shown`) and named for
        what they are (`names.shown_metric`: the records' keys stay the records')."""
        self.flush(run_id)  # the run's queued epochs first: one SQLite writer at a time
        metrics = self._named(run_id, metrics)
        items = _metric_items({k: _shown(v) for k, v in metrics.items()}, step)
        if items:
            self.client.log_batch(run_id, metrics=items)

    def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """One epoch's metrics (step = epoch), written by a background thread so training does
        not wait for SQLite (~5 ms of Python a write). One writer keeps the epochs in order;
        `end_child` and `finish_fit` wait for them (`flush`), so a finished run has them all.
        """
        items = _metric_items(self._named(run_id, metrics), step)
        if not items:
            return
        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cellpick-mlflow")
        future = self._writer.submit(self.client.log_batch, run_id, metrics=items)
        self._pending.setdefault(run_id, []).append(future)

    def flush(self, run_id: str | None = None, strict: bool = True) -> None:
        """Wait until the epochs queued by `log_epoch` (for one run, or all) are written.
        `strict`: raise the first write error, as a synchronous write would have (a run
        ended as FAILED or KILLED, or a failing fit, is not stopped by a lost epoch)."""
        if run_id is None:
            futures = [f for fs in self._pending.values() for f in fs]
            self._pending.clear()
        else:
            futures = self._pending.pop(run_id, [])
        errors = [e for e in (f.exception() for f in futures) if e is not None]
        if errors and strict:
            raise errors[0]

    def log_epochs(self, run_id: str, history: dict[str, list[float]]) -> None:
        """Per-epoch metrics (step = epoch) from a Keras-style history of lists, in one write
        (MLflow takes up to 1000 metrics a batch)."""
        items = [m for epoch in range(len(history.get("loss") or []))
                 for m in _metric_items(self._named(run_id, {k: v[epoch] for k, v in history.items()
                                                             if epoch < len(v)}), epoch)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[i : i + 1000])

    def tag_winner(self, cell: str, config: dict[str, Any], reason: str,
                   decision: str | None = None, beats_best_baseline: bool | None = None) -> None:
        """The parent run's winner tags; the verdict's sentence is the run's description."""
        facts = {DECISION_TAG: decision, BEATS_BASELINE_TAG: beats_best_baseline}
        self.set_tags(self.parent_id, {WINNER_TAG: cell, NOTE_TAG: reason,
                                       **{k: v for k, v in facts.items() if v is not None},
                                       **{f"{WINNER_TAG}.{k}": v for k, v in config.items()}})

    def log_chosen(self, values: dict[str, Any], run_id: str | None = None) -> None:
        """The data-level choice on the parent run (params `chosen.<name>`)."""
        self.log_params(run_id or self.parent_id,
                        {f"{CHOSEN_PREFIX}{k}": v for k, v in values.items()})

    def chosen_values(self, run_id: str | None = None) -> dict[str, Any] | None:
        """The data-level choice a fit logged (log_chosen), or None before it has one."""
        params = self.client.get_run(run_id or self.parent_id).data.params
        got = {k[len(CHOSEN_PREFIX):]: parse_param(v) for k, v in params.items()
               if k.startswith(CHOSEN_PREFIX)}
        return got or None

    def mark_chosen(self, run_id: str) -> None:
        self.set_tags(run_id, {CHOSEN_TAG: "true"})

    def note_outcome(self, run_id: str, outcome: str) -> None:
        """A data run's outcome under the choice rule, as a tag and its description."""
        self.set_tags(run_id, {OUTCOME_TAG: outcome, NOTE_TAG: f"Data-level rule: {outcome}."})

    def tag_export(self, path: str | Path) -> None:
        self.set_tags(self.parent_id, {EXPORT_TAG: str(path)})

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, paths: list[Path]) -> None:
        for p in paths:
            self.client.log_artifact(run_id, str(p))

    def log_model(self, model, input_example, register: str | None = None,
                  verdict: dict[str, Any] | None = None) -> dict[str, Any]:
        """Log the winner on the parent run (explicit pip requirements: inference costs ~6 s).

        With `register`, MLflow adds a new version of that registered model; the version is
        tagged with the `verdict` facts (keys become `cellpick.<key>` tags, the reason is also
        its description) and the parent run is tagged with the version it produced.
        Returns {"model_uri", "registered": {"name", "version", "uri"} or None}.
        """
        import contextlib
        import io

        import keras
        import mlflow
        import numpy as np
        import tensorflow as tf
        from mlflow.models import infer_signature

        # Two rows: one direct call (predict() would trace a new function, ~0.6 s a fit).
        feed = ({k: tf.constant(v) for k, v in input_example.items()}  # named inputs (a history graph)
                if isinstance(input_example, dict) else tf.constant(input_example))
        output = np.asarray(model(feed, training=False))
        # MLflow validates the example with predict() in verbose mode: keep its bar off stdout.
        with _example_dir_created(), _no_schema_hints(), contextlib.redirect_stdout(io.StringIO()):
            info = mlflow.keras.log_model(
                model,
                name="model",
                signature=infer_signature(input_example, output),
                input_example=input_example,
                pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"],
                registered_model_name=register,
            )
        registered = None
        if register and info.registered_model_version is not None:
            version = str(info.registered_model_version)
            registered = {"name": register, "version": version, "uri": f"models:/{register}/{version}"}
            facts = dict(verdict or {})
            for key, value in facts.items():
                if value is not None:
                    self.client.set_model_version_tag(register, version, f"cellpick.{key}", str(value)[:5000])
            if facts.get("reason"):
                self.client.update_model_version(register, version, description=str(facts["reason"]))
            self.set_tags(self.parent_id, {REGISTERED_MODEL_TAG: register,
                                           REGISTERED_VERSION_TAG: version,
                                           REGISTERED_URI_TAG: registered["uri"]})
        return {"model_uri": info.model_uri, "registered": registered}


def _shown(value: float | None) -> float | None:
    """A summary metric as the UI's tables show it: 4 significant digits, whole numbers whole
    (19.3277394... -> 19.33, 0.0123456 -> 0.01235, 1234.56 -> 1235). Per-epoch curves keep
    every digit; the verdict and the leaderboard work from unrounded values in memory."""
    import math

    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v) or v == 0 or v.is_integer():
        return v
    return round(v, max(3 - math.floor(math.log10(abs(v))), 0))


def _metric_items(metrics: dict[str, float], step: int) -> list:
    """MLflow Metric entities, skipping missing and NaN values."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and v == v]


@contextlib.contextmanager
def _no_schema_hints():
    """MLflow's warnings while it infers a schema, off for this block whatever the process's
    warning filters are by then (the global filter of `_quiet_mlflow` does not survive a
    library that resets them, and a wide classification fit showed the integer hint)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        warnings.filterwarnings("ignore", message="The specified dataset source")
        yield


@contextlib.contextmanager
def _example_dir_created():
    """MLflow 3.17's Keras flavor writes input_example.json before it creates the model
    directory (FileNotFoundError); create the directory first, for this call only."""
    import mlflow.keras.save as keras_save

    original = keras_save._save_example

    def save_example(mlflow_model, input_example, path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        return original(mlflow_model, input_example, path, *args, **kwargs)

    keras_save._save_example = save_example
    try:
        yield
    finally:
        keras_save._save_example = original


# The views module reads this package's tags and helpers: imported last, re-exported here.
