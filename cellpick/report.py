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

# Plots use the colours of the MLflow runs (mlflow.runColor).
from .verdict import format_score
from .vocab import BASELINE_COLOR as _OTHER_COLOR
from .vocab import CELL_COLORS, display_name, metric_label

KEY_COLUMNS = [
    "kind", "name", "cell", "units", "layers", "score", "ci_lo", "ci_hi", "test_score",
    "n_params", "train_seconds", "status",
]
_KIND_ORDER = {"cell": 0, "baseline": 1, "trial": 2}
# Trial keys with a column of their own; any other key is a hyperparameter.
_TRIAL_FIELDS = {"trial_id", "cell", "units", "layers", "score", "n_params", "train_seconds",
                 "status", "run_id"}
_WIDTH = 100


# --- leaderboard ----------------------------------------------------------------------------


def leaderboard(verdict: dict, trials: list[dict]) -> pd.DataFrame:
    """One table of cells, baselines and every search trial (the leaderboard.csv).

    Rows by kind ("cell", then "baseline", then "trial"), best score first within each kind
    (missing scores last, ties to fewer parameters). Columns: KEY_COLUMNS, then `config`
    (a "units=64 layers=1 ..." summary), `note` ("winner", "best mean", "best baseline"),
    one column per other hyperparameter, and run ids last. Cell rows score their mean over
    seeds with its 95% interval; trial rows are named by trial id.
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
    for name, value in (verdict.get("baselines") or {}).items():
        rows.append({
            "kind": "baseline", "name": name, "score": value, "test_score": tests.get(name),
            "note": "best baseline" if name == verdict.get("best_baseline") else "",
        })
    for trial in trials:
        hparams = {k: v for k, v in trial.items() if k not in _TRIAL_FIELDS}
        rows.append({
            **hparams,
            "kind": "trial", "name": str(trial.get("trial_id", "")),
            **{k: trial.get(k) for k in _TRIAL_FIELDS - {"trial_id"}},
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
    for col in ("note", "status", "config"):
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


def leaderboard_text(df: pd.DataFrame, verdict: dict) -> str:
    """The cells and baselines, best first, winner marked with '*', then the reason."""
    label = metric_label(verdict.get("metric") or "score")
    rows = df[df["kind"].isin(["cell", "baseline"])].copy()
    sign = -1.0 if verdict.get("greater_is_better") else 1.0
    rows["_missing"] = rows["score"].isna()
    rows["_key"] = sign * rows["score"].fillna(0.0)
    rows = rows.sort_values(["_missing", "_key"], kind="stable")

    header = ["", "name", "kind", label, "95% interval", "test", "params", "train s", "config"]
    table = [header]
    for _, r in rows.iterrows():
        is_cell = r["kind"] == "cell"
        interval = (f"[{format_score(r['ci_lo'])}, {format_score(r['ci_hi'])}]"
                    if is_cell and pd.notna(r["ci_lo"]) else "")
        table.append([
            "*" if is_cell and r["name"] == verdict.get("winner") else "",
            display_name(r["name"]) if is_cell else str(r["name"]),
            str(r["kind"]),
            format_score(r["score"]),
            interval,
            format_score(r["test_score"]) if pd.notna(r.get("test_score")) else "",
            f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else "",
            f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else "",
            str(r["config"]),
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
    if verdict.get("test_score") is not None:
        lines.append(f"Test {label} of the winner: {format_score(verdict['test_score'])}")
    if sentence := export_sentence(verdict):
        lines.append(sentence)
    lines.append("")
    lines += textwrap.wrap(verdict.get("reason") or "", width=_WIDTH, break_on_hyphens=False)
    for note in verdict.get("baseline_notes") or []:
        lines += textwrap.wrap(f"Note: {note}", width=_WIDTH)
    return "\n".join(lines)


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
    fig, ax = _figure()
    seen = set()
    for info in curves.values():
        losses = [float(v) if v is not None else math.nan for v in info.get("val_loss") or []]
        if not losses:
            continue
        cell = info.get("cell")
        ax.plot(range(1, len(losses) + 1), losses, color=_color(cell), alpha=0.6, lw=1.2,
                label=None if cell in seen else display_name(str(cell)))
        seen.add(cell)
    if not seen:
        _empty(ax, "no learning curves recorded")
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss")
        ax.legend(title="cell")
    ax.set_title("Validation loss by cell")
    return fig


def _scores_figure(verdict: dict, label: str):
    fig, ax = _figure()
    cells = verdict.get("cells") or {}
    names = list(cells)
    for i, cell in enumerate(names):
        info = cells[cell]
        mean = _float(info.get("mean"))
        lo, hi = (_float(v) for v in (info.get("ci95") or [None, None]))
        err = [[mean - lo if math.isfinite(lo) else 0.0],
               [hi - mean if math.isfinite(hi) else 0.0]]
        winner = cell == verdict.get("winner")
        ax.errorbar([i], [mean], yerr=err, fmt="*" if winner else "o",
                    ms=14 if winner else 8, capsize=6, color=_color(cell))
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([display_name(c) + (" (winner)" if c == verdict.get("winner") else "")
                        for c in names])
    ax.set_xlim(-0.6, max(len(names), 1) - 0.4)
    baselines = {k: _float(v) for k, v in (verdict.get("baselines") or {}).items()}
    for name, value in baselines.items():
        if not math.isfinite(value):
            continue
        best = name == verdict.get("best_baseline")
        ax.axhline(value, color="#444444" if best else "#999999", ls="--", lw=1)
        ax.annotate(f" {name}", (1.0, value), xycoords=("axes fraction", "data"),
                    va="center", fontsize=8, annotation_clip=False)
    if not names:
        _empty(ax, "no cells")
    ax.set_ylabel(f"validation {label}")
    ax.set_title(f"Validation {label} by cell (mean, 95% interval) and baselines")
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
        ax.set_ylabel(f"validation {label}")
        ax.legend(title="cell")
    else:
        _empty(ax, "no scored trials")
    ax.set_title(f"Validation {label} against parameter count, one point per trial")
    return fig


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
.reason { font-size: 1.15em; background: #f3f6fa; border-left: 4px solid #1f77b4;
          padding: 0.8em 1em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #fafafa; }
table.meta th { font-weight: normal; color: #666; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
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
    """A self-contained report.html: the reason on top, meta, leaderboards, embedded PNGs."""
    esc = _html.escape
    label = metric_label(verdict.get("metric") or "score")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="reason">{esc(verdict.get("reason") or "")}</p>',
    ]
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
    if meta:
        rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>"
                       for k, v in meta.items())
        parts.append(f'<table class="meta">{rows}</table>')

    for note in verdict.get("baseline_notes") or []:
        parts.append(f'<p class="note">Note: {esc(note)}</p>')
    if (table := comparison_table(verdict)) is not None:
        res = verdict.get("resampling") or {}
        parts.append(f"<h2>Comparisons</h2><p>{esc(_design_text(res))}; ROPE "
                     f"±{esc(format_score(verdict.get('rope')))} {esc(label)}. The probabilities "
                     "are posterior probabilities, not p-values. The search chose each cell's "
                     "configuration on its own split of the same data, so the cross-validated "
                     "estimates carry some optimism from that choice.</p>")
        parts.append(_table(table))
    summary = df[df["kind"].isin(["cell", "baseline"])]
    trial_rows = df[df["kind"] == "trial"]
    parts.append("<h2>Cells and baselines</h2>")
    parts.append(_table(summary.dropna(axis=1, how="all")))
    for path in plot_paths:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f'<img alt="{esc(Path(path).stem)}" src="data:image/png;base64,{data}">')
    parts.append(f"<details><summary>All {len(trial_rows)} search trials</summary>")
    parts.append(_table(trial_rows.dropna(axis=1, how="all")))
    parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def comparison_table(verdict: dict) -> pd.DataFrame | None:
    """The verdict's paired comparisons (cells against the best, cells against the best
    baseline): mean difference (positive: `a` better), its 95% interval and the posterior
    probabilities; None for verdicts before schema 2."""
    rows = []
    for comp in (verdict.get("comparisons") or []) + (verdict.get("baseline_comparisons") or []):
        if "ci95" not in comp:
            return None
        p = comp.get("probability") or {}
        lo, hi = comp["ci95"]
        rows.append({"a": display_name(comp["a"]), "b": display_name(comp["b"]),
                     "mean diff (a better)": comp["mean_diff"],
                     "95% interval": f"[{format_score(lo)}, {format_score(hi)}]",
                     "P(a better)": p.get("a_better"), "P(equivalent)": p.get("equivalent"),
                     "P(b better)": p.get("b_better"), "test": comp.get("test")})
    return pd.DataFrame(rows) if rows else None


def _design_text(res: dict) -> str:
    if not res:
        return "seeds of one split"
    return (f"{res.get('kind')}: {res.get('folds')} folds x {res.get('seeds')} seeds, "
            f"{res.get('test') or ''}").rstrip(", ")


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="", border=0, classes="leaderboard", escape=True,
                      float_format=lambda x: f"{x:.4g}")


# --- formatting -----------------------------------------------------------------------------


def _config_text(config: dict) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in config.items()
                    if k != "cell" and v is not None
                    and not (isinstance(v, float) and math.isnan(v)))


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
    with the winner's validation and test scores as metrics and its configuration as tags."""
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
        board.to_csv(tmp / "leaderboard.csv", index=False)
        (tmp / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")
        tracker.log_artifacts(tracker.parent_id, [tmp / "leaderboard.csv", tmp / "verdict.json",
                                                  tmp / "report.html", *plot_paths])
    test = verdict["test_score"]
    tracker.log_metrics(tracker.parent_id, {f"val_{metric}": verdict["cells"][winner]["mean"], **(
        {f"test_{metric}": test} if test is not None else {})})
    tracker.tag_winner(winner, verdict["cells"][winner]["config"], verdict["reason"],
                       verdict.get("decision"), verdict.get("beats_best_baseline"))
    return Report(board, page)
