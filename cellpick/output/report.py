"""Leaderboard table, terminal summary, plots and the self-contained HTML report.

Pure: reads the verdict (as `Verdict.to_dict()` wrote it), the trial records and the
learning curves; writes PNGs only where told. Plots are drawn on the Agg canvas directly,
without pyplot, so no global matplotlib backend is switched in the caller's process.
"""
from __future__ import annotations

import base64
import html as _html
import math
import os
import textwrap
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from cellpick.verdict import headline
from cellpick.vocab import BASELINE_COLOR as _OTHER_COLOR

# Plots use the colours of the MLflow runs (mlflow.runColor).
from cellpick.vocab import (
    CELL_COLORS,
    display_name,
    format_diff,
    format_interval,
    format_score,
    metric_label,
)

KEY_COLUMNS = [
    "kind", "name", "cell", "units", "layers", "score", "ci_lo", "ci_hi", "test_score",
    "n_params", "train_seconds", "status",
]
_KIND_ORDER = {"cell": 0, "baseline": 1, "trial": 2}
# Trial keys with a column of their own; any other key is a hyperparameter.
_TRIAL_FIELDS = {"trial_id", "name", "cell", "units", "layers", "score", "best_val_loss",
                 "epochs", "n_params", "train_seconds", "status", "error", "run_id"}
_WIDTH = 100


# --- leaderboard ----------------------------------------------------------------------------


def leaderboard(verdict: dict, trials: list[dict]) -> pd.DataFrame:
    """One table of cells, baselines and every search trial (the leaderboard.csv).

    Rows by kind ("cell", then "baseline", then "trial"), best score first within each kind
    (missing scores last, ties to fewer parameters). Columns: KEY_COLUMNS, then `config`
    (a "units=64 layers=1 ..." summary), `note` ("winner", "best mean", "best baseline"),
    one column per other hyperparameter, and run ids last. Cell and baseline rows score
    their cross-validated mean with its 95% interval; trial rows are named by their MLflow
    run name (keras-tuner's trial id is the `trial_id` column).
    """
    rows = []
    for cell, info in verdict.get("cells", {}).items():
        config = dict(info.get("config") or {})
        ci = info.get("ci95") or [None, None]
        note = ""
        if cell == verdict.get("winner"):
            note = "winner"
        elif cell == verdict.get("best_mean_cell"):
            note = "best mean"
        rows.append({
            **{k: v for k, v in config.items() if k not in ("cell", "units", "layers")},
            "kind": "cell", "name": cell, "cell": cell,
            "units": config.get("units"), "layers": config.get("layers"),
            "score": info.get("mean"), "ci_lo": ci[0], "ci_hi": ci[1],
            "n_params": info.get("n_params"), "train_seconds": info.get("train_seconds"),
            "test_score": verdict.get("test_score") if note == "winner" else None,
            "config": _config_text(config), "note": note,
        })
    tests = verdict.get("baseline_test_scores") or {}
    intervals = verdict.get("baseline_ci95") or {}
    for name, value in (verdict.get("baselines") or {}).items():
        ci = intervals.get(name) or [None, None]
        rows.append({
            "kind": "baseline", "name": name, "score": value, "test_score": tests.get(name),
            "ci_lo": ci[0], "ci_hi": ci[1],
            "note": "best baseline" if name == verdict.get("best_baseline") else "",
        })
    for trial in trials:
        hparams = {k: v for k, v in trial.items() if k not in _TRIAL_FIELDS}
        rows.append({
            **hparams,
            "kind": "trial", "name": str(trial.get("name") or trial.get("trial_id", "")),
            **{k: trial.get(k) for k in _TRIAL_FIELDS - {"name"}},
            "config": _config_text({"units": trial.get("units"), "layers": trial.get("layers"),
                                    **hparams}),
        })

    columns = KEY_COLUMNS + ["config", "note"]
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in columns]
    run_ids = [c for c in extra if c == "run_id" or c.endswith("_run_id")]
    df = df.reindex(columns=columns + [c for c in extra if c not in run_ids]
                    + (run_ids or ["run_id"]))
    for col in ("units", "layers", "n_params"):
        df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    for col in ("score", "ci_lo", "ci_hi", "test_score", "train_seconds"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("note", "status", "config", "cell"):
        df[col] = df[col].astype(object).fillna("")
    if df.empty:
        return df

    sign = -1.0 if verdict.get("greater_is_better") else 1.0
    order = pd.DataFrame({
        "kind": df["kind"].map(_KIND_ORDER),
        "missing": df["score"].isna(),
        "score": sign * df["score"].fillna(0.0),
        "n_params": df["n_params"].astype(float).fillna(math.inf),
    })
    ranked = order.sort_values(["kind", "missing", "score", "n_params"], kind="stable").index
    return df.loc[ranked].reset_index(drop=True)


def leaderboard_csv(df: pd.DataFrame) -> str:
    """leaderboard.csv: the table at 6 significant digits (what MLflow's viewer and a
    spreadsheet show, not 15)."""
    return df.to_csv(index=False, float_format="%.6g")


def leaderboard_text(df: pd.DataFrame, verdict: dict) -> str:
    """The cells and baselines, best first, winner marked with '*', then the reason."""
    label = metric_label(verdict.get("metric") or "score")
    rows = ranked(df, verdict)

    header = ["", "name", "kind", label, "95% interval", "test", "params", "train s", "config"]
    table = [header]
    for _, r in rows.iterrows():
        is_cell = r["kind"] == "cell"
        interval = _interval(r)
        table.append([
            "*" if is_cell and r["name"] == verdict.get("winner") else "",
            display_name(r["name"]) if is_cell else str(r["name"]),
            str(r["kind"]),
            format_score(r["score"]),
            interval,
            format_score(r["test_score"]) if pd.notna(r.get("test_score")) else "",
            f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else "",
            f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else "",
            _text(r.get("config")),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = []
    for row in table:
        cells = [row[0].ljust(widths[0])]
        cells += [row[i].rjust(widths[i]) if i in (3, 5, 6, 7) else row[i].ljust(widths[i])
                  for i in range(1, len(widths))]
        line = "  ".join(cells)
        room = _WIDTH - len(line) - 2
        config = row[-1] if len(row[-1]) <= room else row[-1][: max(room - 3, 0)] + "..."
        lines.append(f"{line}  {config}".rstrip())

    winner = verdict.get("winner")
    if winner:
        lines.append(f"* winner: {display_name(winner)}")
    if verdict.get("winner") and verdict.get("cells"):
        lines += textwrap.wrap(f"Verdict: {headline(verdict)}", width=_WIDTH,
                               subsequent_indent="  ", break_on_hyphens=False)
    if verdict.get("test_score") is not None:
        lines.append(f"Test {label} of the winner: {format_score(verdict['test_score'])}")
    if sentence := export_sentence(verdict):
        lines.append(sentence)
    if verdict.get("cells"):
        lines += textwrap.wrap(places_text(df, verdict), width=_WIDTH, break_on_hyphens=False)
    lines.append("")
    lines += textwrap.wrap(verdict.get("reason") or "", width=_WIDTH, break_on_hyphens=False)
    for note in verdict.get("baseline_notes") or []:
        lines += textwrap.wrap(f"Note: {note}", width=_WIDTH)
    return "\n".join(lines)


def ranked(df: pd.DataFrame, verdict: dict) -> pd.DataFrame:
    """The cells and baselines, best score first (missing scores last): the order of the
    terminal's leaderboard, the report's and the MLflow verdict view's."""
    rows = df[df["kind"].isin(["cell", "baseline"])].copy()
    sign = -1.0 if verdict.get("greater_is_better") else 1.0
    order = pd.DataFrame({"missing": rows["score"].isna(), "key": sign * rows["score"].fillna(0.0)})
    return rows.loc[order.sort_values(["missing", "key"], kind="stable").index]


# What the report and the verdict view say about where the search's configurations come from.
SEARCH_VS_VERDICT = ("The search chose each cell's configuration on one split; the verdict "
                     "compares them on all folds.")


def places(df: pd.DataFrame, verdict: dict) -> dict[str, dict]:
    """The three places a reader looks for: 'best' (the best cell: {name, mean}), 'first'
    (first overall, cells and baselines: {name, kind, mean}) and 'exported' ({name, kind}).
    From verdict.json's `best_cell`, `first_place` and `export` where present, else from
    the winner and the leaderboard (`ranked`)."""
    winner = verdict.get("winner")
    cells = verdict.get("cells") or {}
    best = dict(verdict.get("best_cell") or {})
    best.setdefault("name", winner)
    best.setdefault("mean", (cells.get(best["name"]) or {}).get("mean"))
    first = dict(verdict.get("first_place") or {})
    if not first.get("name"):
        top = ranked(df, verdict).head(1)
        if len(top):
            r = top.iloc[0]
            first = {"name": str(r["name"]), "kind": str(r["kind"]), "mean": _finite(r["score"])}
        else:
            first = {"name": best["name"], "kind": "cell", "mean": best["mean"]}
    first["kind"] = "cell" if first.get("kind") == "cell" else "baseline"  # contestant: a baseline row
    export = verdict.get("export") or {}
    if export.get("kind") == "baseline":
        exported = {"name": export.get("baseline") or export.get("name"), "kind": "baseline"}
    else:
        exported = {"name": export.get("cell") or winner, "kind": "cell"}
    return {"best": best, "first": first, "exported": exported}


def places_text(df: pd.DataFrame, verdict: dict, with_headline: bool = False) -> str:
    """'Best cell: LSTM (MAE 23.2). First overall: the arima baseline (MAE 21.1). Exported:
    LSTM, the best cell.' (then 'Verdict: <headline>.' `with_headline`) then
    SEARCH_VS_VERDICT: the decision at a glance."""
    label = metric_label(verdict.get("metric") or "score")
    p = places(df, verdict)

    def who(place: dict) -> str:
        return display_name(place["name"]) if place.get("kind", "cell") == "cell" \
            else f"the {place['name']} baseline"

    best, first, exported = p["best"], p["first"], p["exported"]
    text = f"Best cell: {who(best)} (cross-validated {label} {format_score(best.get('mean'))})."
    if (first["kind"], first["name"]) == ("cell", best["name"]):
        text += " First overall: the best cell."
    else:
        text += (f" First overall: {who(first)} (cross-validated {label} "
                 f"{format_score(first.get('mean'))}).")
    if (exported["kind"], exported["name"]) == ("cell", best["name"]):
        text += f" Exported: {who(exported)}, the best cell."
    else:
        text += f" Exported: {who(exported)}."
    if verdict.get("export_best"):  # refit.ExportChoice: what --export best ships, or why not
        text += f" {verdict['export_best']}"
    if with_headline and verdict.get("winner"):
        text += f" Verdict: {headline(verdict)}."
    return f"{text} {SEARCH_VS_VERDICT}"


def verdict_rows(df: pd.DataFrame, verdict: dict) -> list[dict]:
    """The MLflow verdict view's rows (`tracking.Tracker.log_verdict`): each cell and
    baseline in `ranked` order with its mean, interval, cost, configuration, its standing
    in the verdict, its places (`roles`: first, best, exported; see `places`) and a
    one-line description with the effect size, interval and probabilities."""
    standing = verdict.get("standing") or {verdict.get("winner"): "winner"}
    cells = verdict.get("cells") or {}
    where = places(df, verdict)
    out = []
    for rank, (_, r) in enumerate(ranked(df, verdict).iterrows(), start=1):
        name, is_cell = str(r["name"]), r["kind"] == "cell"
        if is_cell:
            params = {k: v for k, v in (cells.get(name, {}).get("config") or {}).items()}
            state = standing.get(name, "")
        else:
            params = {}
            state = "best baseline" if name == verdict.get("best_baseline") else "baseline"
        out.append({
            "kind": "cell" if is_cell else "baseline", "name": name, "rank": rank,
            "mean": _finite(r["score"]), "lo": _finite(r["ci_lo"]), "hi": _finite(r["ci_hi"]),
            "n_params": _finite(r["n_params"]), "train_seconds": _finite(r["train_seconds"]),
            "params": params, "config": _text(r.get("config")), "standing": state,
            "roles": tuple(k for k in ("first", "best", "exported")
                           if (where[k].get("kind", "cell"), where[k]["name"])
                           == ("cell" if is_cell else "baseline", name)),
            "note": _row_note(name, is_cell, state, verdict),
        })
    return out


def _row_note(name: str, is_cell: bool, state: str, verdict: dict) -> str:
    """'GRU: practically worse; GRU - LSTM = +21.2 MAE, 95% interval [9.1, 33.3] (GRU worse
    on average), ROPE ±0.33, P(LSTM practically better) 0.96, ...': a cell against the
    best-mean cell, a baseline against the winner; every interval is this run's score minus
    the one it names, and the words follow its sign. The verdict's sentence on the winner's row."""
    label = metric_label(verdict.get("metric") or "score")
    shown = display_name(name) if is_cell else f"the {name} baseline"
    if is_cell and state == "winner":
        return f"{display_name(name)}: the winner. {verdict.get('reason') or ''}".strip()
    comps = (verdict.get("comparisons") or []) if is_cell else (verdict.get("baseline_comparisons") or [])
    if is_cell:
        comp = next((c for c in comps if c.get("b") == name), None)
    else:
        comp = next((c for c in comps if c.get("b") == name and c.get("a") == verdict.get("winner")), None)
    words = {"worse": "practically worse", "equivalent": "practically equivalent, dearer",
             "not better": "not practically better, dearer", "open": "within noise",
             "failed": "failed", "best mean": "the best mean"}.get(state, state)
    if comp is None or "mean_diff" not in comp:
        return f"{shown}: {words}" if words else shown
    p = comp.get("probability") or {}
    diff, (lo, hi) = difference(comp, verdict)  # a - b; this run is b: its side is minus that
    diff, lo, hi = -diff, -hi, -lo
    this = display_name(name) if is_cell else name
    ref = display_name(comp["a"])
    better = (diff > 0) == bool(verdict.get("greater_is_better"))
    side = "the same" if diff == 0 else f"{this} {'better' if better else 'worse'} on average"
    gap = (f"{this} - {ref} = {format_diff(diff)} {label}, 95% interval "
           f"{format_interval(lo, hi)} ({side})")
    probs = ", ".join(f"{k} {v:.2f}" for k, v in (
        (f"P({display_name(comp['a'])} practically better)", p.get("a_better")),
        ("P(equivalent)", p.get("equivalent")),
        (f"P({display_name(comp['b'])} practically better)", p.get("b_better")))
        if v is not None)
    return (f"{shown}: {words}; {gap}, ROPE ±{format_score(verdict.get('rope'))}"
            + (f", {probs}" if probs else ""))


def difference(comp: dict, verdict: dict) -> tuple[float, tuple[float, float]]:
    """A comparison's a - b and its 95% interval in metric units (`a_minus_b`; from
    `mean_diff` for verdict.json files written before it: positive meant `a` better)."""
    if comp.get("a_minus_b") is not None:
        lo, hi = comp.get("a_minus_b_ci95") or [None, None]
        return _float(comp["a_minus_b"]), (_float(lo), _float(hi))
    sign = 1.0 if verdict.get("greater_is_better") else -1.0
    lo, hi = (sign * _float(v) for v in (comp.get("ci95") or [None, None]))
    return sign * _float(comp.get("mean_diff")), (min(lo, hi), max(lo, hi))


# --- plots ----------------------------------------------------------------------------------


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


def _color(cell) -> str:
    return CELL_COLORS.get(cell, _OTHER_COLOR)


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
            ax.plot(range(1, len(r) + 1), r, color=_color(cell), alpha=0.25, lw=0.8,
                    marker="o" if len(r) == 1 else None, ms=3)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no run reached
                median = np.nanmedian(grid, axis=0)
        ax.plot(range(1, width + 1), median, color=_color(cell), lw=2.2,
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
        mean, lo, hi = _float(r["score"]), _float(r["ci_lo"]), _float(r["ci_hi"])
        colour = _color(name) if is_cell else "#555555"
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
        n, s = _float(t.get("n_params")), _float(t.get("score"))
        if math.isfinite(n) and n > 0 and math.isfinite(s):
            xs, ys = by_cell.setdefault(t.get("cell"), ([], []))
            xs.append(n)
            ys.append(s)
    for cell, (xs, ys) in by_cell.items():
        ax.scatter(xs, ys, color=_color(cell), label=display_name(str(cell)), alpha=0.8)
    if by_cell:
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel(f"search validation {label}")
        ax.legend(title="cell")
    else:
        _empty(ax, "no scored trials")
    ax.set_title(f"Search validation {label} against parameters, one point per trial")
    return fig


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 1.5em auto;
       max-width: 880px; color: #222; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.headline { font-size: 1.25em; font-weight: 600; margin: 0.4em 0; }
.reason { background: #f3f6fa; border-left: 4px solid #1f77b4; padding: 0.7em 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0 1.2em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left;
         vertical-align: top; }
th { background: #fafafa; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.name { white-space: nowrap; }
td.config { min-width: 8em; overflow-wrap: anywhere; font-size: 0.95em; color: #444; }
tr.winner td { font-weight: 600; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 50%;
          margin-right: 0.4em; vertical-align: baseline; }
table.meta { width: auto; } table.meta th { font-weight: normal; color: #666; background: none; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0 1.2em; }
"""


def export_sentence(verdict: dict) -> str:
    """What the export holds (the test score is this model's), or "" for older verdicts."""
    if "ensemble" not in verdict:
        return ""
    export = verdict.get("export") or {}
    if export.get("kind") == "baseline":
        return (f"Export: the {export.get('baseline')} baseline (--export best), fitted on "
                f"all non-test data, as a Keras graph taking the same raw input.")
    n = (verdict.get("ensemble") or {}).get("models", 1)
    what = f"the mean of the winner's {n} seed models" if n > 1 else "the winner's model"
    how = (["retrained on all non-test data"] if verdict.get("refit") else []) + \
          ([f"reading patches of {verdict['patch']} steps"] if (verdict.get("patch") or 1) > 1 else [])
    tail = f", {'each ' if n > 1 else ''}{', '.join(how)}" if how else ""
    return f"Export: {what}{tail}."


def html(verdict: dict, df: pd.DataFrame, plot_paths, title: str, meta: dict) -> str:
    """A self-contained report.html, readable at 900 px and in MLflow's artifact viewer: the
    verdict (its headline, sentence and comparisons with effect sizes and probabilities),
    one leaderboard of cells and baselines, the plots, the search trials, the fit's facts."""
    esc = _html.escape
    label = metric_label(verdict.get("metric") or "score")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if verdict.get("winner") and verdict.get("cells"):
        parts.append(f'<p class="headline">{esc(headline(verdict))}</p>')
    parts.append(f'<p class="reason">{esc(verdict.get("reason") or "")}</p>')
    winner = verdict.get("winner")
    if winner:
        info = (verdict.get("cells") or {}).get(winner, {})
        line = f"Winner: {display_name(winner)} ({_config_text(info.get('config') or {})})"
        line += f", cross-validated {label} {format_score(info.get('mean'))}"
        if verdict.get("test_score") is not None:
            line += f", test {label} {format_score(verdict['test_score'])}"
        parts.append(f"<p><strong>{esc(line)}</strong></p>")
    if sentence := export_sentence(verdict):
        parts.append(f"<p>{esc(sentence)}</p>")
    if verdict.get("cells"):
        parts.append(f'<p class="places">{esc(places_text(df, verdict))}</p>')
    for note in verdict.get("baseline_notes") or []:
        parts.append(f'<p class="note">Note: {esc(note)}</p>')

    parts.append("<h2>Cells and baselines</h2>")
    parts.append(_leaderboard_html(df, verdict, label))
    if (table := comparison_table(verdict)) is not None:
        res = verdict.get("resampling") or {}
        decided = (verdict.get("data_level") or {}).get("decided") or []
        chosen = (f", and the data-level stage its {', '.join(decided)} on three of these folds "
                  "(the same for every cell)" if decided else "")
        parts.append(f"<h2>Comparisons</h2><p>{esc(_design_text(res))}; ROPE "
                     f"±{esc(format_score(verdict.get('rope')))} {esc(label)}. Each difference "
                     f"is <em>a</em>'s cross-validated {esc(label)} minus <em>b</em>'s, with "
                     "its 95% interval. The probabilities are posterior "
                     "probabilities, not p-values. The search chose each cell's configuration "
                     f"on its own split of the same data{chosen}, so the cross-validated "
                     "estimates carry some optimism from that.</p>")
        parts.append(_table(table.drop(columns=["test"])))  # the test is named above
    for path in plot_paths:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f'<img alt="{esc(Path(path).stem)}" src="data:image/png;base64,{data}">')
    if contestants := verdict.get("contestants"):
        parts.append("<h2>Contestants</h2>")
        parts.append(_contestants_html(contestants))
    trial_rows = df[df["kind"] == "trial"]
    parts.append(f"<details><summary>All {len(trial_rows)} search trials</summary>")
    parts.append(_trials_html(trial_rows, label))
    parts.append("</details>")
    if meta:
        rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                       for k, v in meta.items())
        parts.append(f'<h2>Fit</h2><table class="meta">{rows}</table>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _contestants_html(contestants: dict) -> str:
    """Each contestant's outcome and time against its limit (all folds and its refit)."""
    esc = _html.escape
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(c.get('status', ''))}</td>"
        f"<td class=\"num\">{c.get('seconds', 0):.1f}</td><td class=\"num\">{c.get('limit', 0):.0f}</td>"
        f"<td>{esc(c.get('reason') or '')}</td></tr>"
        for name, c in contestants.items())
    return ("<table><tr><th>contestant</th><th>outcome</th><th>seconds</th><th>limit (s)</th>"
            f"<th>reason</th></tr>{rows}</table>")


def _html_table(header: list[str], rows: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """rows: (tr class, [(td class, escaped html)])."""
    head = "".join(f"<th>{_html.escape(h)}</th>" for h in header)
    body = "".join(f'<tr class="{cls}">' + "".join(f'<td class="{c}">{v}</td>' for c, v in cells)
                   + "</tr>" for cls, cells in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _leaderboard_html(df: pd.DataFrame, verdict: dict, label: str) -> str:
    """The terminal's leaderboard: cells and baselines best first, colour-keyed, the
    configuration once."""
    esc = _html.escape
    board = ranked(df, verdict)
    tested = bool(board["test_score"].notna().any())  # no empty test column without a test
    rows = []
    for _, r in board.iterrows():
        is_cell = r["kind"] == "cell"
        name = str(r["name"])
        colour = _color(name) if is_cell else _OTHER_COLOR
        shown = display_name(name) if is_cell else f"{name} (baseline)"
        note = _text(r.get("note"))
        rows.append(("winner" if is_cell and name == verdict.get("winner") else "", [
            ("name", f'<span class="swatch" style="background:{colour}"></span>{esc(shown)}'
                     + (f"<br><small>{esc(note)}</small>" if note else "")),
            ("num", esc(format_score(r["score"]))),
            ("num", esc(_interval(r))),
            *([("num", esc(format_score(r["test_score"])))] if tested else []),
            ("num", f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else ""),
            ("num", f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else ""),
            ("config", esc(_text(r.get("config")))),
        ]))
    return _html_table(["name", f"cross-validated {label}", "95% interval of the mean",
                        *(["test"] if tested else []), "params",
                        "train s", "configuration"], rows)


def _trials_html(trials: pd.DataFrame, label: str) -> str:
    esc = _html.escape
    rows = []
    for _, r in trials.iterrows():
        rows.append(("", [
            ("name", f'<span class="swatch" style="background:{_color(r["cell"])}"></span>'
                     f'{esc(str(r["name"]))}'),
            ("num", esc(format_score(r["score"]))),
            ("num", f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else ""),
            ("num", f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else ""),
            ("", esc(_text(r.get("status")))),
            ("config", esc(_text(r.get("config")))),
        ]))
    return _html_table(["run", f"search validation {label}", "params", "train s", "status",
                        "configuration"], rows)


def comparison_table(verdict: dict) -> pd.DataFrame | None:
    """The verdict's paired comparisons (cells against the best, cells against the best
    baseline): a's score minus b's in metric units (`difference`), its 95% interval, which
    side that favours, and the posterior probabilities; None for verdicts before schema 2."""
    rows = []
    gib = bool(verdict.get("greater_is_better"))
    for comp in (verdict.get("comparisons") or []) + (verdict.get("baseline_comparisons") or []):
        if "ci95" not in comp:
            return None
        p = comp.get("probability") or {}
        diff, (lo, hi) = difference(comp, verdict)
        side = ("" if not math.isfinite(diff) or diff == 0 else
                display_name(comp["a"] if (diff > 0) == gib else comp["b"]))
        rows.append({"a": display_name(comp["a"]), "b": display_name(comp["b"]),
                     "a - b": format_diff(diff),
                     "95% interval of a - b": format_interval(lo, hi),
                     "better on average": side,
                     **{k: "" if p.get(key) is None else f"{p[key]:.2f}"
                        for k, key in (("P(a better)", "a_better"),
                                       ("P(equivalent)", "equivalent"),
                                       ("P(b better)", "b_better"))},
                     "test": comp.get("test")})
    return pd.DataFrame(rows) if rows else None


def _design_text(res: dict) -> str:
    if not res:
        return "seeds of one split"
    return (f"{res.get('kind')}: {res.get('folds')} folds x {res.get('seeds')} seeds, "
            f"{res.get('test') or ''}").rstrip(", ")


def _table(df: pd.DataFrame) -> str:
    return '<div class="scroll">' + df.to_html(index=False, na_rep="", border=0, classes="leaderboard", escape=True,
                      float_format=lambda x: f"{x:.4g}") + "</div>"


# --- formatting -----------------------------------------------------------------------------


def _config_text(config: dict) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in config.items()
                    if k != "cell" and v is not None
                    and not (isinstance(v, float) and math.isnan(v)))


def _text(v) -> str:
    """A cell of text: '' for missing values (pandas reads an empty CSV field as NaN)."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


def _finite(v) -> float | None:
    x = _float(v)
    return x if math.isfinite(x) else None


def _interval(r) -> str:
    if pd.isna(r.get("ci_lo")) or pd.isna(r.get("ci_hi")):
        return ""
    return format_interval(r["ci_lo"], r["ci_hi"])


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _float(v) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


# --- the fit's report stage ------------------------------------------------------------------
class Report(NamedTuple):
    """The leaderboard and the HTML report of a fit (both also logged to its MLflow run)."""

    board: pd.DataFrame
    html: str


def write_report(plan, verdict: dict, trials: list[dict], curves: dict[str, dict], *,
                 tracker) -> Report:
    """Log leaderboard.csv, verdict.json, report.html and the plots on the fit's parent run,
    with the winner's cross-validated and test scores as metrics and its configuration as
    tags, and the verdict's summary runs and view (`verdict_rows`, `Tracker.log_verdict`:
    `places_text` heads its description, scores.png is its first chart)."""
    import json
    import tempfile
    from datetime import datetime

    path, metric, winner = plan.path, plan.metric, verdict["winner"]
    board = leaderboard(verdict, trials)
    meta = {"data": str(path), "task": plan.dataset.task, "layout": plan.dataset.layout,
            "metric": metric, "mlflow_run_id": tracker.parent_id,
            "experiment": tracker.experiment_name,
            "date": datetime.now().isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="cellpick-report-") as tmp:
        tmp = Path(tmp)
        plot_paths = plots(verdict, trials, curves, tmp)
        page = html(verdict, board, plot_paths, f"cellpick: {path.name}", meta)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "leaderboard.csv").write_text(leaderboard_csv(board), encoding="utf-8")
        (tmp / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")
        tracker.log_artifacts(tracker.parent_id, [tmp / "leaderboard.csv", tmp / "verdict.json",
                                                  tmp / "report.html", *plot_paths])
        test = verdict["test_score"]
        # val_<metric>: the winner's cross-validated mean (MLflow: winner_cv_<metric>)
        tracker.log_metrics(tracker.parent_id, {f"val_{metric}": verdict["cells"][winner]["mean"], **(
            {f"test_{metric}": test} if test is not None else {})})
        tracker.tag_winner(winner, verdict["cells"][winner]["config"], verdict["reason"],
                           verdict.get("decision"), verdict.get("beats_best_baseline"))
        tracker.log_verdict(verdict_rows(board, verdict), headline(verdict), metric,
                            decision=places_text(board, verdict, with_headline=True),
                            picture=next(p for p in plot_paths if p.name == "scores.png"))
    return Report(board, page)
