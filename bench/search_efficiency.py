"""Search efficiency: the exhaustive cell x units grid against cellpick's default tuner.

    python bench/search_efficiency.py [--epochs 25] [--grid-seeds 2] [--seeds 2] [--quick]

Data: airline (recipes/airline.toml: horizon 12, lookback 24, season 12), one split, one
epoch cap for both sides (early stopping as in a fit: patience = max(5, epochs // 4)).

Default: `cellpick.fit` with the default tuner (random) and its default 4 trials per cell
over the widths below and one layer (dropout, learning rate and the forecast preprocessing
searched too), then its verdict: each cell's best trial retrained `--seeds` times.
Grid: every cell (lstm, gru, rnn) x every width, one layer, each trained `--grid-seeds`
times with `fit_one` (tests/helpers.py). The rest of cellpick's space is held at one setting
(with all of it the grid would be 576 configurations): `--rest best` (default) where the
default search's best trial put it, so both sides compare cells and widths on equal terms;
`--rest first` at the first value of each list in cellpick/models/cells.py (FIRST below).

Both score the validation MAE (passengers, at the epoch early stopping keeps). The grid's
seeds are shared by all configurations, so its noise is that of a paired difference: the
pooled spread of per-seed differences from the best configuration; a pick is "within noise"
when its grid mean is within two such standard errors of the grid's best.
Compute: epochs trained (independent of machine load) and seconds of training.
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import _env

from cellpick.tracking import parse_param

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data" / "airline_train.csv"
CELLS = ["lstm", "gru", "rnn"]
REST = ("dropout", "learning_rate", "scaling", "linear", "log")  # the space beyond cell x units
# `--rest first`: the first value of each list in cellpick/models/cells.py, with the linear path on
# (what makes airline work, recipes/airline.toml).
FIRST = {"dropout": 0.0, "learning_rate": 1e-3, "scaling": "relative", "linear": True, "log": False}
SHAPE = {"horizon": 12, "lookback": 24, "season": 12}


def run_default(args, tmp: Path) -> dict:
    """cellpick.fit with the default tuner; trials and verdict seeds read back from MLflow."""
    from mlflow.tracking import MlflowClient

    import cellpick

    uri = f"sqlite:///{tmp}/mlflow.db"
    t0 = time.perf_counter()
    result = cellpick.fit(DATA, **SHAPE, cells=",".join(CELLS),
                          units=",".join(map(str, args.units)), layers="1",
                          max_trials=args.trials, epochs=args.epochs, seeds=args.seeds,
                          tracking_uri=uri, out=str(tmp / "model"), quiet=True)
    wall = time.perf_counter() - t0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(result.parent_run_id).info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
                              max_results=1000)
    out = {"trial": [], "verdict": []}
    for run in runs:
        role = run.data.tags.get("cellpick.role")
        if role not in out:
            continue
        p, m = run.data.params, run.data.metrics
        out[role].append({"cell": p["cell"], "units": int(p["units"]),
                          "score": m.get("search_val_mae" if role == "trial" else "fold_mae",
                                         m.get("score")),
                          "seconds": m.get("train_seconds", 0.0),
                          "epochs": len(client.get_metric_history(run.info.run_id, "val_loss")),
                          "config": {k: v for k, v in p.items() if k != "seed"}})
    out.update(result=result, wall=wall)
    return out



def run_grid(args, rest: dict) -> list[dict]:
    """Every cell x width, `grid_seeds` seeds each, trained as cellpick trains a trial."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import fit_one  # Keras' own fit of one configuration and seed

    from cellpick.config import FitConfig
    from cellpick.engine.train import summary_metrics
    from cellpick.models.cells import user_units
    from cellpick.stages.plan import make_plan

    plan = make_plan(FitConfig(data=str(DATA), **SHAPE, epochs=args.epochs).validate())
    rows = []
    for cell in CELLS:
        for units in args.units:
            for k in range(args.grid_seeds):
                t0 = time.perf_counter()  # build + fit, as a trial's train_seconds
                _, history, _ = fit_one(plan.prep, {"cell": cell, "units": units, "layers": 1, **rest},
                                        seed=42 + 1000 * (k + 1), schedule=plan.schedule)
                seconds = time.perf_counter() - t0
                history = user_units(plan.prep, history)
                rows.append({"cell": cell, "units": units, "seed": k,
                             "score": summary_metrics(history, "mae")["best_val_mae"],
                             "epochs": len(history["val_loss"]), "seconds": seconds})
                print(f"grid {cell} u{units} seed {k + 1}: val MAE {rows[-1]['score']:.2f}, "
                      f"{rows[-1]['epochs']} epochs, {seconds:.1f} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25, help="epoch cap of every training")
    ap.add_argument("--units", default="16,32,64,128")
    ap.add_argument("--grid-seeds", type=int, default=2, help="seeds per grid configuration")
    ap.add_argument("--trials", type=int, default=4, help="default tuner's trials per cell")
    ap.add_argument("--seeds", type=int, default=2, help="the default fit's verdict seeds")
    ap.add_argument("--rest", choices=("best", "first"), default="best",
                    help="where the grid holds dropout, learning rate and preprocessing")
    ap.add_argument("--quick", action="store_true",
                    help="8 epochs, units 16,64, 2 trials per cell, 1 verdict seed")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.units, args.trials, args.seeds = 8, "16,64", 2, 1
    args.units = [int(u) for u in str(args.units).split(",")]
    _env.print_env()

    with tempfile.TemporaryDirectory() as tmp:
        default = run_default(args, Path(tmp))  # first: it also turns on op determinism
    searched = [t for t in default["trial"] if t["score"] is not None]
    best_trial = min(searched, key=lambda t: t["score"])
    rest = FIRST if args.rest == "first" else \
        {k: parse_param(best_trial["config"][k]) for k in REST if k in best_trial["config"]}
    grid = run_grid(args, rest)

    # The grid: mean and seed spread per configuration, and the noise of a comparison. Seed k
    # is the same for every configuration (initialisation and batch order drawn alike), so a
    # comparison is paired: the spread of per-seed differences from the best configuration.
    by_cfg: dict[tuple[str, int], list[float]] = {}
    for r in grid:
        by_cfg.setdefault((r["cell"], r["units"]), []).append(r["score"])
    means = {c: statistics.fmean(v) for c, v in by_cfg.items()}
    n = args.grid_seeds
    g_best = min(means, key=means.get)
    diffs = [[a - b for a, b in zip(v, by_cfg[g_best])] for c, v in by_cfg.items() if c != g_best]
    se_diff = (math.sqrt(statistics.fmean(statistics.variance(d) for d in diffs) / n) if n > 1
               else float("nan"))
    cell_best = {c: min((u for (cc, u) in means if cc == c), key=lambda u: means[(c, u)])
                 for c in CELLS}
    cells_ranked = sorted(CELLS, key=lambda c: means[(c, cell_best[c])])

    # The default: its search's best trial per cell, its best trial, and its verdict.
    res = default["result"]
    trials, d_best = searched, best_trial
    d_cell_best = {c: min((t for t in trials if t["cell"] == c), key=lambda t: t["score"])
                   for c in CELLS}
    d_pick = (res.winner, int(res.config["units"]))
    gap = means[d_pick] - means[g_best]
    within = gap <= 2 * se_diff

    def compute(rows):
        return sum(r["epochs"] for r in rows), sum(r["seconds"] for r in rows)

    g_ep, g_s = compute(grid)
    s_ep, s_s = compute(default["trial"])
    v_ep, v_s = compute(default["verdict"])

    print(f"\nairline, horizon 12, lookback 24; epoch cap {args.epochs} for every training; "
          f"units {args.units}, 1 layer; grid with {n} seeds per configuration, the rest held at "
          f"{'the default search' + chr(39) + 's best trial' if args.rest == 'best' else 'models/cells.py' + chr(39) + 's first values'}: "
          f"{', '.join(f'{k} {v}' for k, v in rest.items())}\n")
    print("Grid, validation MAE (mean of seeds, +- seed sd):\n")
    print("| cell | " + " | ".join(f"u{u}" for u in args.units) + " |")
    print("|---|" + "---:|" * len(args.units))
    for c in CELLS:
        cells_txt = []
        for u in args.units:
            v = by_cfg[(c, u)]
            spread = f" +- {statistics.stdev(v):.2f}" if len(v) > 1 else ""
            mark = " **best**" if (c, u) == g_best else ""
            cells_txt.append(f"{means[(c, u)]:.2f}{spread}{mark}")
        print(f"| {c} | " + " | ".join(cells_txt) + " |")
    print(f"\nStandard error of a paired difference from the best configuration (pooled over "
          f"configurations, {n} seeds): {se_diff:.2f}\n")

    cfg_txt = lambda t: ", ".join(f"{k} {t['config'][k]}" for k in  # noqa: E731
                                  REST if k in t["config"])
    print("| | exhaustive grid | default tuner (random) |\n|---|---|---|")
    print(f"| trainings | {len(means)} configurations x {n} seeds = {len(grid)} | "
          f"{len(default['trial'])} trials ({args.trials} per cell) + "
          f"{len(default['verdict'])} verdict seeds = "
          f"{len(default['trial']) + len(default['verdict'])} |")
    print(f"| epochs trained | {g_ep} | {s_ep + v_ep} (search {s_ep}, seeds {v_ep}) |")
    print(f"| training seconds | {g_s:.0f} | {s_s + v_s:.0f} (search {s_s:.0f}, seeds {v_s:.0f}) |")
    print(f"| fraction of the grid's compute (epochs) | 1 | {(s_ep + v_ep) / g_ep:.2f} "
          f"(search alone {s_ep / g_ep:.2f}) |")
    print(f"| best by validation | {g_best[0]} u{g_best[1]}: {means[g_best]:.2f} | search: "
          f"{d_best['cell']} u{d_best['units']}: {d_best['score']:.2f} ({cfg_txt(d_best)}) |")
    print("| best per cell | " + ", ".join(f"{c} u{cell_best[c]} {means[(c, cell_best[c])]:.2f}"
                                           for c in cells_ranked) +
          " | " + ", ".join(f"{c} u{d_cell_best[c]['units']} {d_cell_best[c]['score']:.2f}"
                            for c in sorted(CELLS, key=lambda c: d_cell_best[c]['score'])) + " |")
    vcells = res.verdict.get("cells", {})
    print(f"| verdict (cell) | {cells_ranked[0]} (next {cells_ranked[1]}, "
          f"{means[(cells_ranked[1], cell_best[cells_ranked[1]])] - means[g_best]:+.2f}, "
          f"{'within' if means[(cells_ranked[1], cell_best[cells_ranked[1]])] - means[g_best] <= 2 * se_diff else 'beyond'} noise) | "
          f"{res.winner} u{d_pick[1]}, seed mean "
          + ", ".join(f"{c} {vcells[c]['mean']:.2f}" for c in vcells if 'mean' in vcells[c]) + " |")
    print(f"| same cell as the grid | | {'yes' if res.winner == g_best[0] else 'no'} |")
    print(f"| the default's pick on the grid | | {res.winner} u{d_pick[1]}: grid mean "
          f"{means[d_pick]:.2f}, {gap:+.2f} from the grid's best "
          f"({'within' if within else 'beyond'} 2 SE = {2 * se_diff:.2f}) |")
    print(f"\nWall time of the default fit (search, seeds, baselines, export): "
          f"{default['wall']:.0f} s; reason: {res.reason}")


if __name__ == "__main__":
    main()
