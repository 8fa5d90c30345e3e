"""Everything that talks to MLflow.

One parent run per fit (tag cellpick.role=search) is the active fluent run for the whole
fit; trials, verdict seeds and baselines are child runs created with the client API
(tag mlflow.parentRunId), so nothing depends on a stack of active runs.

Store: --tracking-uri, else MLFLOW_TRACKING_URI, else the embedded default
sqlite:///mlruns/mlflow.db with artifacts under mlruns/artifacts/. The URI is always set
explicitly: MLflow 3 otherwise falls back to an old ./mlruns file store when one exists.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
ROLE = "cellpick.role"
COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e", "rnn": "#2ca02c"}  # one fixed colour per cell


def resolve_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _quiet_mlflow() -> None:
    for name in ("alembic", "mlflow", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With an http:// tracking server MLflow prints "View run ... at" to stdout on every run end.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _param_value(v: Any) -> str:
    return str(v)[:6000]


def _typed(text: str) -> Any:
    """A logged param string back to the int, float or bool it was."""
    if text in ("True", "False"):
        return text == "True"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


@contextlib.contextmanager
def _sqlite_init_lock(uri: str):
    """An exclusive file lock beside a local SQLite store (no-op for other stores)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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


class Tracker:
    """A fit's connection to MLflow: the parent run and its children."""

    def __init__(self, uri: str | None, experiment: str):
        _quiet_mlflow()
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = resolve_uri(uri)
        if self.uri == DEFAULT_URI:
            Path("mlruns").mkdir(exist_ok=True)
        mlflow.set_tracking_uri(self.uri)
        # Two fits starting at once on a new SQLite store would both run its schema
        # migrations (alembic) and one fails: the first to take the lock creates the store.
        with _sqlite_init_lock(self.uri):
            self.client = MlflowClient(self.uri)
            self.client.search_experiments(max_results=1)
            self.experiment_name = experiment
            self.experiment_id = self._experiment_id(experiment)
        self.parent_id: str | None = None

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
                               tags={ROLE: "search", **tags})
        self.parent_id = run.info.run_id
        self.log_params(self.parent_id, params)
        return self.parent_id

    def log_dataset(self, frame, source: str, name: str) -> None:
        import warnings

        import mlflow

        with warnings.catch_warnings():  # a local path matches two equivalent source types
            warnings.filterwarnings("ignore", message="The specified dataset source")
            dataset = mlflow.data.from_pandas(frame, source=source, name=name)
        mlflow.log_input(dataset, context="training")

    def finish_fit(self, status: str = "FINISHED", reason: str | None = None) -> None:
        import mlflow

        if self.parent_id is None:
            return
        if reason:
            self.client.set_tag(self.parent_id, "cellpick.error", reason[:5000])
        mlflow.end_run(status=status)

    def find_resumable(self, key: str) -> str | None:
        """The latest unfinished parent run of the same fit (same data and options), if any."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE}` = 'search' and tags.`cellpick.fit_key` = '{key}'",
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
        return run_id

    def children(self, role: str | None = None) -> list:
        filt = f"tags.mlflow.parentRunId = '{self.parent_id}'"
        if role:
            filt += f" and tags.`{ROLE}` = '{role}'"
        return self.client.search_runs([self.experiment_id], filter_string=filt, max_results=5000)

    def close_children(self, roles: tuple[str, ...], status: str, reason: str,
                       only_running: bool = True) -> int:
        """Terminate child runs (e.g. those a killed process left RUNNING); returns how many."""
        n = 0
        for run in self.children():
            if run.data.tags.get(ROLE) not in roles:
                continue
            if only_running and run.info.status != "RUNNING":
                continue
            self.end_child(run.info.run_id, status, reason)
            n += 1
        return n

    def trial_records(self) -> tuple[list[dict], dict[str, dict]]:
        """Records and validation curves of this fit's finished trial runs (for a resume)."""
        records, curves = [], {}
        for run in self.children("trial"):
            if run.info.status != "FINISHED":
                continue
            p, m = run.data.params, run.data.metrics
            name = run.data.tags.get("mlflow.runName", run.info.run_id)
            history = self.client.get_metric_history(run.info.run_id, "val_loss")
            records.append({
                "trial_id": run.data.tags.get("cellpick.trial_id"), "name": name,
                **{k: _typed(v) for k, v in p.items()},
                "score": m.get("score"), "best_val_loss": m.get("best_val_loss"),
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
                    tags: dict[str, str] | None = None) -> str:
        all_tags = {ROLE: role, "mlflow.parentRunId": self.parent_id, **(tags or {})}
        cell = params.get("cell")
        if cell in COLORS:
            all_tags["mlflow.runColor"] = COLORS[cell]
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def end_child(self, run_id: str, status: str = "FINISHED", error: str | None = None) -> None:
        if error:
            self.client.set_tag(run_id, "cellpick.error", error[-5000:])
        self.client.set_terminated(run_id, status=status)

    # -- logging ------------------------------------------------------------------------
    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _param_value(v)) for k, v in params.items() if v is not None]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if v is not None and v == v]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, paths: list[Path]) -> None:
        for p in paths:
            self.client.log_artifact(run_id, str(p))

    def log_model(self, model, input_example, register: str | None = None) -> str:
        """Log the winner on the parent run (explicit pip requirements: inference costs ~6 s)."""
        import keras
        import mlflow
        import tensorflow as tf
        from mlflow.models import infer_signature

        import contextlib
        import io

        output = model.predict(input_example, verbose=0)
        # MLflow validates the example with predict() in verbose mode: keep its bar off stdout.
        with _example_dir_created(), contextlib.redirect_stdout(io.StringIO()):
            info = mlflow.keras.log_model(
                model,
                name="model",
                signature=infer_signature(input_example, output),
                input_example=input_example,
                pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"],
                registered_model_name=register,
            )
        return info.model_uri


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


def load_fit(run_id: str | None = None, uri: str | None = None) -> dict[str, Any]:
    """A past fit's verdict and leaderboard, from its parent run's artifacts (latest by default)."""
    import json
    import tempfile

    import pandas as pd
    from mlflow.tracking import MlflowClient

    from .errors import CellpickError

    _quiet_mlflow()
    uri = resolve_uri(uri)
    client = MlflowClient(uri)
    if run_id is None:
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids, filter_string=f"tags.`{ROLE}` = 'search'",
                                  order_by=["attributes.start_time DESC"], max_results=20) if ids else []
        runs = [r for r in runs if r.info.status == "FINISHED"]
        if not runs:
            raise CellpickError(f"no finished cellpick fit in {uri}; run `cellpick fit DATA.csv` first "
                                f"or pass --tracking-uri")
        run = runs[0]
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
