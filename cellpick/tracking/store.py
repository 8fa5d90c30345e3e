"""The MLflow store: which URI a fit uses, and MLflow kept quiet."""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from cellpick.tracking.tags import DEFAULT_URI


def resolve_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def _quiet_mlflow() -> None:
    import warnings

    # MLflow's advice on integer columns (a label column in the logged dataset or schema) is
    # for its own serving; it reached the user's terminal on every classification fit.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer",
                            category=UserWarning)
    for name in ("alembic", "mlflow", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # With an http:// tracking server MLflow prints "View run ... at" to stdout on every run end.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


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


@contextlib.contextmanager
def no_schema_hints():
    """MLflow's warnings while it infers a schema, off for this block whatever the process's
    warning filters are by then (the global filter of `_quiet_mlflow` does not survive a
    library that resets them, and a wide classification fit showed the integer hint)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        warnings.filterwarnings("ignore", message="The specified dataset source")
        yield
