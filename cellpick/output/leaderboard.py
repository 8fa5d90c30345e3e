"""The leaderboard: one row per cell, baseline and trial, its places and its text forms.

Every function reads a verdict in verdict.json's form: `stages.record.FitRecord.to_dict()`,
or a past fit's verdict.json of any version (`cellpick report`), where keys an older
cellpick did not write are absent (`verdict.Verdict.to_dict()` alone also reads).
"""
from __future__ import annotations

import math
import textwrap

import pandas as pd

from cellpick.verdict import headline
from cellpick.vocab import BASELINE_COLOR as _OTHER_COLOR
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
            "config": config_text(config), "note": note,
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
            "config": config_text({"units": trial.get("units"), "layers": trial.get("layers"),
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
        interval = interval_text(r)
        table.append([
            "*" if is_cell and r["name"] == verdict.get("winner") else "",
            display_name(r["name"]) if is_cell else str(r["name"]),
            str(r["kind"]),
            format_score(r["score"]),
            interval,
            format_score(r["test_score"]) if pd.notna(r.get("test_score")) else "",
            f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else "",
            f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else "",
            cell_text(r.get("config")),
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
    in the verdict, its places (first, best, exported; see `places`) and a
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
            "params": params, "config": cell_text(r.get("config")), "standing": state,
            "places": tuple(k for k in ("first", "best", "exported")
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
        return as_float(comp["a_minus_b"]), (as_float(lo), as_float(hi))
    sign = 1.0 if verdict.get("greater_is_better") else -1.0
    lo, hi = (sign * as_float(v) for v in (comp.get("ci95") or [None, None]))
    return sign * as_float(comp.get("mean_diff")), (min(lo, hi), max(lo, hi))


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


def design_text(res: dict) -> str:
    """The resampling scheme in words: 'rolling-origin: 4 folds x 2 seeds, ...'."""
    if not res:
        return "seeds of one split"
    return (f"{res.get('kind')}: {res.get('folds')} folds x {res.get('seeds')} seeds, "
            f"{res.get('test') or ''}").rstrip(", ")


def cell_text(v) -> str:
    """A cell of text: '' for missing values (pandas reads an empty CSV field as NaN)."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


def _finite(v) -> float | None:
    x = as_float(v)
    return x if math.isfinite(x) else None


def interval_text(r) -> str:
    """A row's 95% interval as text ('' without one)."""
    if pd.isna(r.get("ci_lo")) or pd.isna(r.get("ci_hi")):
        return ""
    return format_interval(r["ci_lo"], r["ci_hi"])


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def as_float(v) -> float:
    """A table's value as a float (NaN when missing or not a number)."""
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def config_text(config: dict) -> str:
    """A configuration as 'units=64 layers=1 dropout=0.2' (the cell and missing values left out)."""
    return " ".join(f"{k}={_value(v)}" for k, v in config.items()
                    if k != "cell" and v is not None
                    and not (isinstance(v, float) and math.isnan(v)))


def cell_color(cell) -> str:
    """A cell's colour in plots and tables (a contestant's grey otherwise)."""
    return CELL_COLORS.get(cell, _OTHER_COLOR)


# What the report and the verdict view say about where the search's configurations come from.
SEARCH_VS_VERDICT = ("The search chose each cell's configuration on one split; the verdict "
                     "compares them on all folds.")
