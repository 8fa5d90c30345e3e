"""How stable is the verdict over the fit's own seed? (issues 16 and 18)

    python bench/stability.py [--recipes airline gunpoint japanese_vowels] [--seeds 1 2 3 4 5]
                              [--extra K=V ...] [--json FILE] [--keep DIR]

Each recipe is fitted with every option at its recipe value except `--seed` (1..5 by
default), each fit in a fresh process with this checkout's cellpick (bench/engine.py's child).
Per recipe: how often the verdict repeats (the winner when decided, else "undecided between"
the cells the data could not separate from the best; read from the export's verdict), how
often it is decided, the spread of the winner's cross-validated score (min / median / max and
the largest deviation from the median), and the export's held-out score on the recipe's
official test file (min / median / max), scored after the fit and never used to choose.
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
                    choices=list(engine.RECIPES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--extra", nargs="*", default=[], metavar="K=V", help="more fit options")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", default=None, metavar="DIR")
    args = ap.parse_args(argv)
    _env.print_env()
    extra = engine.parse_options(args.extra)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cellpick-stability-"))
    print(f"- options: recipe values, --seed {args.seeds}, extra {extra or 'none'}", flush=True)
    rows = []
    for name in args.recipes:
        for seed in args.seeds:
            work = base / f"{name}-seed{seed}"
            spec = {"kind": "fit", "name": name, "recipe": str(ROOT / "recipes" / f"{name}.toml"),
                    "code": str(ROOT), "work": str(work), "options": {**extra, "seed": seed}}
            r = engine._spawn(spec, work, ROOT)
            if "error" in r:
                print(f"  {name} seed {seed}: FAILED\n{r['error']}", flush=True)
                rows.append({"recipe": name, "seed": seed, **r})
                continue
            r.update(recipe=name, seed=seed, verdict=verdict_of(work),
                     held=r["held_out"][r["headline"]])
            rows.append(r)
            print(f"  {name} seed {seed}: {r['verdict']}, cv {r['metric']} {r['val_score']:.4g}, "
                  f"held-out {r['headline']} {r['held']:.4g}, {r['process_seconds']:.0f} s", flush=True)
    print()
    print("| recipe | fits | verdict repeats | decided | winner's cross-validated score "
          "(min / median / max) | held-out (min / median / max) | verdicts |")
    print("|---|---|---|---|---|---|---|")
    for name in args.recipes:
        ok = [r for r in rows if r["recipe"] == name and "error" not in r]
        if not ok:
            continue
        counts = collections.Counter(r["verdict"] for r in ok)
        top, n = counts.most_common(1)[0]
        decided = sum(not r["verdict"].startswith("undecided") for r in ok)
        print(f"| {name} | {len(ok)} | {n} of {len(ok)} ({top}) | {decided} of {len(ok)} | "
              f"{ok[0]['metric']} {spread([r['val_score'] for r in ok])} | "
              f"{ok[0]['headline']} {spread([r['held'] for r in ok])} | "
              f"{'; '.join(f'{k} x{v}' for k, v in counts.items())} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
