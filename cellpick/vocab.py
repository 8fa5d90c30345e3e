"""The shared vocabulary: cells, tasks and metrics, with their names and colours.

A leaf: it imports nothing of cellpick, so every other module can import it.
"""
from __future__ import annotations

CELLS = ("lstm", "gru", "rnn")
# Display names; they are also the Keras layer classes the cells are built from.
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
# One fixed colour per cell, on every MLflow run of that cell and in the report's plots.
CELL_COLORS = {"lstm": "#1f77b4", "gru": "#ff7f0e", "rnn": "#2ca02c"}
BASELINE_COLOR = "#7f7f7f"  # baselines: neutral grey
DATA_COLOR = "#9467bd"  # the data-level stage's reference-model runs
FIT_COLOR = "#3c3c3c"  # the parent run of a fit

TASKS = ("forecast", "classify", "regress")
# The metric of each task and whether greater is better.
METRICS: dict[str, tuple[str, bool]] = {
    "forecast": ("mae", False),
    "regress": ("mae", False),
    "classify": ("accuracy", True),
}
METRIC_LABELS = {"mae": "MAE", "accuracy": "accuracy"}
# Forecast target scalings (space.forecast_inputs): a data-level choice (datalevel.py).
SCALINGS = ("global", "relative", "diff")


def display_name(cell: str) -> str:
    """'lstm' -> 'LSTM', 'gru' -> 'GRU', 'rnn' -> 'SimpleRNN'; other names unchanged."""
    return CELL_NAMES.get(cell, cell)


def metric_label(metric: str) -> str:
    """How a metric is named in sentences and tables: 'mae' -> 'MAE'."""
    return METRIC_LABELS.get(metric, metric)
