"""Shared fixtures: the real data sets bundled in recipes/data, and a quiet TensorFlow."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

DATA = Path(__file__).resolve().parents[1] / "recipes" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def tiny(**extra) -> dict:
    """The smallest honest budget: real trials, real seeds, seconds each."""
    return {"units": "8", "layers": "1", "max_trials": 1, "epochs": 2, "folds": 2, "seeds": 2,
            **extra}


_EMPTY_STORE: Path | None = None


def store_uri(folder: Path, name: str = "mlflow.db") -> str:
    """A tracking URI for a new SQLite store in `folder`: a copy of one empty store made once
    per test process. MLflow creates a store's tables by running its migrations, 2.5-3 s a
    store; the suite opens about twenty. Tests of that creation itself (two fits starting at
    once on a new store, the embedded default ./mlruns) let cellpick create theirs."""
    global _EMPTY_STORE
    if _EMPTY_STORE is None:
        from mlflow.tracking import MlflowClient

        from cellpick.tracking import _quiet_mlflow

        _quiet_mlflow()
        path = Path(tempfile.mkdtemp(prefix="cellpick-empty-store-")) / "mlflow.db"
        MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
        atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
        _EMPTY_STORE = path
    shutil.copyfile(_EMPTY_STORE, Path(folder) / name)
    return f"sqlite:///{Path(folder) / name}"


# The data-level choices given, so a forecast fit trains no data-level stage: for the tests
# that are not about that stage (test_fit_e2e's and test_mlflow_ui's airline fits run it).
DATA_LEVEL = {"scaling": "relative", "log": False, "linear": True}
DATA_LEVEL_ARGS = ["--scaling", "relative", "--no-log", "--linear"]


# The heaviest test files first (their seconds in a 2-core run, 2026-12-01: 383, 255, 190,
# ...), so that xdist's whole-file scheduling (pyproject: --dist loadfile
# --no-loadscope-reorder) ends on small files on both workers. Its default order (most tests
# first) left test_fit_e2e.py for last: one worker ran it alone for the last ~5 minutes.
# tests/test_layout.py checks that every name here is a test file that exists.
HEAVY_FIRST = ["test_fit_e2e", "test_robust", "test_inputs", "test_layouts", "test_export",
               "test_distributed", "test_horizon_one", "test_members", "test_recipes",
               "test_mlflow_ui", "test_contestants", "test_forecast", "test_tracking",
               "test_stacked", "test_baselines", "test_refit", "test_crossval", "test_train",
               "test_cli", "test_candidates"]


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than cores (pyproject caps it at 4). A worker keeps about
    0.75 of a core busy (it waits on subprocesses, servers, SQLite and thread barriers): on
    2 cores, 2 workers used 1.5 cores (817 s), 3 workers 1.7 (642 s; 2026-12-01)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).stem, len(rank)))


@pytest.fixture(autouse=True)
def _no_inherited_tracking_uri(monkeypatch):
    """mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI; keep one test's store out of the next."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
