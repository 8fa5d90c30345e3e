"""The self-contained HTML report: the verdict, leaderboard, contestants, trials and plots.

Reads the verdict in verdict.json's form, as leaderboard.py does.
"""
from __future__ import annotations

import base64
import html as _html
from pathlib import Path

import pandas as pd

from cellpick.output.leaderboard import (
    cell_color,
    cell_text,
    comparison_table,
    config_text,
    design_text,
    export_sentence,
    interval_text,
    places_text,
    ranked,
)
from cellpick.verdict import headline
from cellpick.vocab import BASELINE_COLOR as _OTHER_COLOR
from cellpick.vocab import (
    display_name,
    format_score,
    metric_label,
)


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
        line = f"Winner: {display_name(winner)} ({config_text(info.get('config') or {})})"
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
        parts.append(f"<h2>Comparisons</h2><p>{esc(design_text(res))}; ROPE "
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


def _table(df: pd.DataFrame) -> str:
    return '<div class="scroll">' + df.to_html(index=False, na_rep="", border=0, classes="leaderboard", escape=True,
                      float_format=lambda x: f"{x:.4g}") + "</div>"


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
        colour = cell_color(name) if is_cell else _OTHER_COLOR
        shown = display_name(name) if is_cell else f"{name} (baseline)"
        note = cell_text(r.get("note"))
        rows.append(("winner" if is_cell and name == verdict.get("winner") else "", [
            ("name", f'<span class="swatch" style="background:{colour}"></span>{esc(shown)}'
                     + (f"<br><small>{esc(note)}</small>" if note else "")),
            ("num", esc(format_score(r["score"]))),
            ("num", esc(interval_text(r))),
            *([("num", esc(format_score(r["test_score"])))] if tested else []),
            ("num", f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else ""),
            ("num", f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else ""),
            ("config", esc(cell_text(r.get("config")))),
        ]))
    return _html_table(["name", f"cross-validated {label}", "95% interval of the mean",
                        *(["test"] if tested else []), "params",
                        "train s", "configuration"], rows)


def _trials_html(trials: pd.DataFrame, label: str) -> str:
    esc = _html.escape
    rows = []
    for _, r in trials.iterrows():
        rows.append(("", [
            ("name", f'<span class="swatch" style="background:{cell_color(r["cell"])}"></span>'
                     f'{esc(str(r["name"]))}'),
            ("num", esc(format_score(r["score"]))),
            ("num", f"{int(r['n_params']):,}" if pd.notna(r["n_params"]) else ""),
            ("num", f"{r['train_seconds']:.1f}" if pd.notna(r["train_seconds"]) else ""),
            ("", esc(cell_text(r.get("status")))),
            ("config", esc(cell_text(r.get("config")))),
        ]))
    return _html_table(["run", f"search validation {label}", "params", "train s", "status",
                        "configuration"], rows)


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
