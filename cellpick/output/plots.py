"""The report's plots (learning curves, cross-validated scores, hyperparameters), drawn on the
Agg canvas without pyplot so no global matplotlib backend is switched in the caller's process."""
from __future__ import annotations

import math
import os
from pathlib import Path

from cellpick.output.leaderboard import (
    as_float,
    cell_color,
    leaderboard,
    places,
    ranked,
)
from cellpick.vocab import (
    display_name,
    format_score,
    metric_label,
)


def plots(
    verdict: dict, trials: list[dict], curves: dict[str, dict], out_dir: Path
) -> list[Path]:
    """Write curves.png, scores.png and params.png into `out_dir`; return their paths.

    curves: {run or trial name: {"cell": str, "val_loss": [per-epoch floats]}}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label = metric_label(verdict.get("metric") or "score")
    return [
        _save(_curves_figure(curves), out_dir / "curves.png"),
        _save(_scores_figure(verdict, label), out_dir / "scores.png"),
        _save(_params_figure(trials, label), out_dir / "params.png"),
    ]


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: Path) -> Path:
    # Write beside and rename, so a crash never leaves half a PNG under the final name.
    tmp = path.with_name(f".{path.name}.tmp")
    fig.tight_layout()
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, path)
    return path


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _curves_figure(curves: dict[str, dict]):
    """One panel per cell: each run's validation loss thin, the median over its runs (at
    each epoch they reached) bold, so cells do not tangle into one bundle of lines."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    by_cell: dict[str, list[list[float]]] = {}
    for info in curves.values():
        losses = [float(v) if v is not None else math.nan for v in info.get("val_loss") or []]
        if losses:
            by_cell.setdefault(str(info.get("cell")), []).append(losses)
    n = max(len(by_cell), 1)
    fig = Figure(figsize=(min(3.2 * n, 9.6), 3.4 if n <= 3 else 3.0 * math.ceil(n / 3)), dpi=100)
    FigureCanvasAgg(fig)
    if not by_cell:
        ax = fig.add_subplot()
        _empty(ax, "no learning curves recorded")
        ax.set_title("Validation loss by cell")
        return fig
    cols = min(n, 3)
    axes = [fig.add_subplot(math.ceil(n / cols), cols, i + 1) for i in range(n)]
    for ax, (cell, runs) in zip(axes, by_cell.items()):
        width = max(len(r) for r in runs)
        grid = np.full((len(runs), width), np.nan)
        for i, r in enumerate(runs):
            grid[i, : len(r)] = r
            ax.plot(range(1, len(r) + 1), r, color=cell_color(cell), alpha=0.25, lw=0.8,
                    marker="o" if len(r) == 1 else None, ms=3)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no run reached
                median = np.nanmedian(grid, axis=0)
        ax.plot(range(1, width + 1), median, color=cell_color(cell), lw=2.2,
                marker="o" if width == 1 else None, label="median")
        if width == 1:  # one round only: tick it, not fractions of an epoch
            ax.set_xlim(0.5, 1.5)
            ax.set_xticks([1])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{display_name(cell)} ({len(runs)} run{'s' if len(runs) != 1 else ''})",
                     fontsize=10)
        ax.set_xlabel("epoch")
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("validation loss")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Validation loss by cell: each run thin, the median bold", fontsize=11)
    return fig


def _scores_figure(verdict: dict, label: str):
    """Every cell and baseline's cross-validated mean with its 95% interval, one labelled
    row each, best first (the leaderboard's order): the best cell, the first overall and
    the export marked in the labels. The verdict view shows it as its first chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    board = leaderboard(verdict, [])
    rows = ranked(board, verdict) if not board.empty else board
    where = places(board, verdict) if not board.empty else {}
    n = len(rows)
    fig = Figure(figsize=(7.2, max(2.4, 0.42 * n + 1.3)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if not n:
        _empty(ax, "no cells")
        ax.set_title(f"Cross-validated {label}")
        return fig
    labels = []
    for i, (_, r) in enumerate(rows.iterrows()):
        is_cell, name = r["kind"] == "cell", str(r["name"])
        kind = "cell" if is_cell else "baseline"
        marks = [w for k, w in (("first", "first"), ("best", "best cell"), ("exported", "exported"))
                 if k in where and (where[k].get("kind", "cell"), where[k]["name"]) == (kind, name)]
        labels.append(f"#{i + 1} {display_name(name) if is_cell else name + ' (baseline)'}"
                      + (f"  [{', '.join(marks)}]" if marks else ""))
        mean, lo, hi = as_float(r["score"]), as_float(r["ci_lo"]), as_float(r["ci_hi"])
        colour = cell_color(name) if is_cell else "#555555"
        if not math.isfinite(mean):
            ax.annotate("  no score", (0, i), xycoords=("axes fraction", "data"), va="center",
                        fontsize=8, color="#777777")
            continue
        err = [[mean - lo if math.isfinite(lo) else 0.0], [hi - mean if math.isfinite(hi) else 0.0]]
        ax.errorbar([mean], [i], xerr=err, fmt="D" if "exported" in marks else "o",
                    ms=8 if marks else 6, capsize=4, color=colour, lw=1.6)
        ax.annotate(format_score(mean), (mean, i), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=7, color="#333333")
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_ylim(n - 0.5, -0.7)  # rank 1 on top
    ax.grid(axis="x", color="#eeeeee")
    better = "higher is better" if verdict.get("greater_is_better") else "lower is better"
    ax.set_xlabel(f"cross-validated {label} ({better})\nbars: 95% interval of the mean")
    ax.set_title(f"Cross-validated {label} of every cell and baseline")
    return fig


def _params_figure(trials: list[dict], label: str):
    fig, ax = _figure()
    by_cell: dict[str, tuple[list, list]] = {}
    for t in trials:
        n, s = as_float(t.get("n_params")), as_float(t.get("score"))
        if math.isfinite(n) and n > 0 and math.isfinite(s):
            xs, ys = by_cell.setdefault(t.get("cell"), ([], []))
            xs.append(n)
            ys.append(s)
    for cell, (xs, ys) in by_cell.items():
        ax.scatter(xs, ys, color=cell_color(cell), label=display_name(str(cell)), alpha=0.8)
    if by_cell:
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(f"search validation {label}")
        ax.legend(title="cell")
    else:
        _empty(ax, "no scored trials")
    ax.set_title(f"Search validation {label} against parameters, one point per trial")
    return fig
