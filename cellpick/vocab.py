"""The shared vocabulary: cells, tasks and metrics, their names and colours, and how scores
are written (three significant digits).

A leaf: it imports nothing of cellpick, so every other module can import it.
"""
from __future__ import annotations

import math

CELLS = ("lstm", "gru", "rnn")
# The built-in contestants (models/contestants.py), in the order they are tried.
CONTESTANTS = ("snaive", "ets", "arima", "theta", "ridge", "minirocket", "1nn", "logreg",
               "majority", "mean", "tfidf_logreg", "tfidf_ridge")
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
# Forecast target scalings (models/cells.py): a data-level choice (stages/datalevel.py).
SCALINGS = ("global", "relative", "diff")


def display_name(cell: str) -> str:
    """'lstm' -> 'LSTM', 'gru' -> 'GRU', 'rnn' -> 'SimpleRNN'; other names unchanged."""
    return CELL_NAMES.get(cell, cell)


def metric_label(metric: str) -> str:
    """How a metric is named in sentences and tables: 'mae' -> 'MAE'."""
    return METRIC_LABELS.get(metric, metric)


def format_interval(lo, hi) -> str:
    """'[0.0, 43.8]': both bounds at the decimals `format_score` gives the larger one, so
    an interval never mixes precisions ('[0.000, 43.8]'); '' when a bound is missing."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return ""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    a = max(abs(lo), abs(hi))
    if a >= 100:
        return f"[{lo:,.0f}, {hi:,.0f}]"
    if a >= 0.01 or a == 0:
        places = 2 if 1 <= a < 10 else 1 if a >= 10 else 3
        return f"[{lo:.{places}f}, {hi:.{places}f}]"
    return f"[{lo:.3g}, {hi:.3g}]"



def format_diff(x) -> str:
    """A signed difference: '+2.09', '-0.120' (format_score with its sign always shown)."""
    text = format_score(x)
    return text if not text or text.startswith("-") else f"+{text}"



def format_score(x) -> str:
    """Three significant digits, no scientific notation for everyday sizes; '' when missing."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(x):
        return ""
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.{2 if a < 10 else 1}f}"
    if a >= 0.01 or a == 0:
        return f"{x:.3f}"
    return f"{x:.3g}"
