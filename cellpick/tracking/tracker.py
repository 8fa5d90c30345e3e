"""The Tracker: a fit's connection to MLflow. One parent run per fit (the active fluent run),
child runs through the client API, metrics named for what they are (names.shown_metric),
per-epoch metrics written by one background thread, and the fit's runs read back for
--resume and distributed workers. Its UI side (saved views, summary runs) is in
verdict_view.py, the model log in registry.py; both are mixed into `Tracker`."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpick.tracking.names import shown_metric
from cellpick.tracking.registry import ModelLog
from cellpick.tracking.store import (
    _quiet_mlflow,
    _sqlite_init_lock,
    no_schema_hints,
    resolve_uri,
)
from cellpick.tracking.tags import (
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
    NOTE_TAG,
    OUTCOME_TAG,
    PARENT_TAG,
    READY_PREFIX,
    ROLE,
    RUN_COLOR_TAG,
    RUN_NAME_TAG,
    SERVING_TAG,
    TRIAL_ID_TAG,
    WINNER_TAG,
    Role,
)
from cellpick.tracking.verdict_view import VerdictView
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
    serving: dict | None = None  # the chief's open stage (SERVING_TAG), if it announced one
    workers: tuple[str, ...] = ()  # the workers that joined it (READY_PREFIX tags)


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


class Tracker(VerdictView, ModelLog):
    """A fit's connection to MLflow: the parent run and its children. The mixins keep each
    concern in its own module while callers see one object with every method."""

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
                               tags={ROLE: Role.SEARCH, RUN_COLOR_TAG: FIT_COLOR, **tags})
        self.parent_id = run.info.run_id
        self._roles[self.parent_id] = Role.SEARCH
        self._metric = params.get("metric") or self._metric
        self.log_params(self.parent_id, params)
        return self.parent_id

    def log_dataset(self, frame, source: str, name: str, on_parent: bool = True) -> None:
        """The data as an MLflow dataset input on the parent (unless `on_parent` is False: a
        resumed fit has it already) and on every child run started after this call."""
        import mlflow
        from mlflow.entities import DatasetInput, InputTag

        with no_schema_hints():  # the schema is inferred lazily, by any of these calls
            dataset = mlflow.data.from_pandas(frame, source=source, name=name)
            if on_parent:
                mlflow.log_input(dataset, context="training")
            # Children log the same input, so the Dataset column is filled on every run.
            self._dataset_input = DatasetInput(dataset._to_mlflow_entity(),
                                               [InputTag(DATA_CONTEXT_TAG, "training")])

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
        self._roles[run_id] = Role.SEARCH
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
        serving = run.data.tags.get(SERVING_TAG)
        joined = tuple(k[len(READY_PREFIX):] for k in run.data.tags if k.startswith(READY_PREFIX))
        return FitState(run.info.status == "RUNNING", tuple(c for c in done.split(",") if c),
                        json.loads(serving) if serving else None, joined)

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
        for run in self._children(Role.TRIAL):
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
        elif role == Role.BASELINE or params.get("baseline"):
            all_tags[RUN_COLOR_TAG] = BASELINE_COLOR
        elif role == Role.DATA:
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
        not wait for SQLite (docs/mlflow.md). One writer keeps the epochs in order;
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
