"""Shared fixtures: the real data sets bundled in recipes/data, and a quiet TensorFlow."""
from __future__ import annotations

import os
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


# The data-level choices given, so a forecast fit trains no data-level stage: for the tests
# that are not about that stage (test_fit_e2e's and test_mlflow_ui's airline fits run it).
DATA_LEVEL = {"scaling": "relative", "log": False, "linear": True}
DATA_LEVEL_ARGS = ["--scaling", "relative", "--no-log", "--linear"]


@pytest.fixture(autouse=True)
def _no_inherited_tracking_uri(monkeypatch):
    """mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI; keep one test's store out of the next."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
