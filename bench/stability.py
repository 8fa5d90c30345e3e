"""How stable is the verdict over the fit's own seed? (issues 16 and 18)

    python bench/stability.py [--recipes airline gunpoint japanese_vowels adding_problem known_gap]
                              [--seeds 1 2 3 4 5] [--extra K=V ...] [--old COMMIT]
                              [--before FILE ...] [--json FILE] [--keep DIR]

Each recipe is fitted with every option at its recipe value except `--seed` (1..5 by
default), each fit in a fresh process with this checkout's cellpick (bench/engine.py's child).
Per recipe: how often the verdict repeats (the winner when decided, else "undecided between"
the cells the data could not separate from the best; read from the export's verdict), how
often it is decided, the spread of the winner's cross-validated score (min / median / max and
the largest deviation from the median), and the export's held-out score on the recipe's
official test file (min / median / max), scored after the fit and never used to choose
(adding_problem has none: its cross-validated estimate only). `known_gap` is a synthetic
memory task with a known answer (KNOWN_GAP below): GRU must be decided better than SimpleRNN.

`--old COMMIT` fits with that commit's cellpick instead (`git archive`, same venv, as
bench/engine.py does): the "before" rows, saved once with `--json` (bench/stability-*.json)
and printed again beside new rows with `--before FILE`.
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import _env
import engine

ROOT = Path(__file__).resolve().parents[1]
# The known-gap case: the adding problem (recipes/make_adding_problem.py) at 1,000 samples of
# 40 steps, where a plain RNN cannot carry a value 20+ steps (plain Keras, 32 units, 60 epochs,
# 800 training samples: GRU val MAE 0.022, SimpleRNN 0.169, predicting the mean ~0.31). The
# fit compares GRU and SimpleRNN only, one width and depth (the question is the cell), with
# every other option at its default; the verdict must say GRU is better, every seed.
KNOWN_GAP = {"samples": 1000, "length": 40, "seed": 1997}
KNOWN_GAP_OPTIONS = {"id": "sample_id", "time": "step", "target": "target", "task": "regress",
                     "cells": ["gru", "rnn"], "units": [32], "layers": [1], "max_trials": 2,
                     "experiment": "known_gap"}


def known_gap_data(base: Path) -> Path:
    import sys

    sys.path.insert(0, str(ROOT / "recipes"))
    from make_adding_problem import make_adding_problem

    path = base / "known_gap.csv"
    if not path.exists():
        make_adding_problem(KNOWN_GAP["samples"], KNOWN_GAP["length"], KNOWN_GAP["seed"]).to_csv(
            path, index=False)
    return path


def verdict_of(work: Path) -> str:
    """'gru' when decided; 'undecided: gru,lstm' (the best and the cells it could not be
    separated from) otherwise; read from the export's cellpick.json."""
    meta = json.loads((work / "model" / "cellpick.json").read_text())
    v = meta["verdict"]
    if v.get("decision") != "undecided":
        return v["winner"]
    open_ = [c["b"] for c in v["comparisons"] if _open(c)]
    return "undecided: " + ",".join(sorted([v["best_mean_cell"], *open_]))


def _open(comp: dict) -> bool:
    p = comp.get("probability")
    if p is None:
        return not comp.get("degenerate")
    return p["a_better"] < 0.95 and p["equivalent"] + p["b_better"] < 0.95


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    dev = max(abs(v - med) for v in values) / abs(med) if med else float("nan")
    return f"{min(values):.4g} / {med:.4g} / {max(values):.4g} (max {dev:.0%} from the median)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["airline", "gunpoint", "japanese_vowels"],
                    choices=[*engine.RECIPES, "adding_problem", "known_gap"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--extra", nargs="*", default=[], metavar="K=V", help="more fit options")
    ap.add_argument("--old", default=None, metavar="COMMIT", help="fit with that commit's code")
    ap.add_argument("--before", nargs="*", default=[], metavar="FILE",
                    help="saved rows (--json of an earlier run) to print beside these")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", default=None, metavar="DIR")
    args = ap.parse_args(argv)
    _env.print_env()
    extra = engine.parse_options(args.extra)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cellpick-stability-"))
    base.mkdir(parents=True, exist_ok=True)
    code, label = ROOT, "now " + engine.git_head()
    if args.old:
        full, code = engine.old_code(args.old, base / "old-code")
        label = "before " + full[:7]
    print(f"- code: {label} ({code}); options: recipe values, --seed {args.seeds}, "
          f"extra {extra or 'none'}", flush=True)
    rows = []
    for name in args.recipes:
        for seed in args.seeds:
            work = base / f"{name}-seed{seed}"
            options, recipe = {**extra, "seed": seed}, str(ROOT / "recipes" / f"{name}.toml")
            if name == "known_gap":
                recipe = None
                options = {"data": str(known_gap_data(base)), **KNOWN_GAP_OPTIONS, **options}
            spec = {"kind": "fit", "name": name, "recipe": recipe, "code": str(code),
                    "work": str(work), "options": options}
            r = engine._spawn(spec, work, code)
            r.update(recipe=name, seed=seed, code=label, extra=extra)
            if "error" in r:
                print(f"  {name} seed {seed}: FAILED\n{r['error']}", flush=True)
                rows.append(r)
                continue
            r.update(verdict=verdict_of(work), held=r["held_out"].get(r["headline"]))
            rows.append(r)
            held = f"held-out {r['headline']} {r['held']:.4g}, " if r["headline"] else ""
            print(f"  {name} seed {seed}: {r['verdict']}, cv {r['metric']} {r['val_score']:.4g}, "
                  f"{held}{r['process_seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    before = [r for f in args.before for r in json.loads(Path(f).read_text())]
    print()
    print(table(before + rows))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if any("error" in r for r in rows) else 0


def table(rows: list[dict]) -> str:
    """One line per (recipe, code, extra options): the stability summary."""
    lines = ["| recipe | code | fits | verdict repeats | decided | winner's score "
             "(min / median / max) | held-out (min / median / max) | verdicts |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = collections.defaultdict(list)
    for r in rows:
        groups[(r["recipe"], r.get("code", "now"), json.dumps(r.get("extra") or {}))].append(r)
    for (name, label, extra), group in groups.items():
        ok = [r for r in group if "error" not in r]
        if not ok:
            lines.append(f"| {name} | {label} | {len(group)} failed | | | | | |")
            continue
        counts = collections.Counter(r["verdict"] for r in ok)
        top, n = counts.most_common(1)[0]
        decided = sum(not r["verdict"].startswith("undecided") for r in ok)
        held = [r["held"] for r in ok if r.get("held") is not None]
        extra_note = "" if extra == "{}" else f" {extra}"
        lines.append(
            f"| {name}{extra_note} | {label} | {len(ok)} | {n} of {len(ok)} ({top}) | "
            f"{decided} of {len(ok)} | {ok[0]['metric']} {spread([r['val_score'] for r in ok])} | "
            f"{(ok[0]['headline'] + ' ' + spread(held)) if held else '-'} | "
            f"{'; '.join(f'{k} x{v}' for k, v in counts.items())} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
