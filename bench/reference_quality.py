"""Test scores of `cellpick fit` with the default budget on the three public sets, next to
published references, with the wall time of each fit.

For each set it runs the CLI as a user would (a fresh work folder, a fresh SQLite store),
then `cellpick predict` on the held-out file and scores the predictions:

    airline         fit airline_train.csv (1949-1959) --horizon 12 --lookback 24 --season 12;
                    forecast 1960 from 1959-12, MAE / RMSE / MASE against airline_test.csv
    gunpoint        fit GunPoint_train.csv (50 rows); accuracy on GunPoint_test.csv (150)
    vowels          fit JapaneseVowels_train.csv (270); accuracy on JapaneseVowels_test.csv (370)

References on the same splits are in ../shared/data/README.md. The best scikit-learn
baseline's validation score comes from the fit's own verdict (same split as the cells).

    PYTHONPATH=. python bench/reference_quality.py [--sets airline,gunpoint,vowels]
        [--quick] [--out DIR] [-- extra fit options]

--quick is a smoke run (2 cells, 1 trial, 2 epochs, 2 seeds): it checks the plumbing, and its
scores mean nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _env
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data"
# The subprocesses run in the work folder: import this checkout's cellpick from there too.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
QUICK = ["--cells", "gru,rnn", "--units", "8", "--layers", "1", "--max-trials", "1",
         "--epochs", "2", "--seeds", "2"]


def _airline(pred: pd.DataFrame) -> dict[str, float]:
    train = pd.read_csv(DATA / "airline_train.csv")["value"].to_numpy(float)
    test = pd.read_csv(DATA / "airline_test.csv")["value"].to_numpy(float)
    err = pred.sort_values("step")["prediction"].to_numpy(float) - test
    scale = np.mean(np.abs(train[12:] - train[:-12]))  # in-sample seasonal naive, lag 12
    mae = float(np.mean(np.abs(err)))
    return {"MAE": mae, "RMSE": float(np.sqrt(np.mean(err ** 2))), "MASE": mae / scale}


def _accuracy(test_file: str, by: str | None):
    def score(pred: pd.DataFrame) -> dict[str, float]:
        test = pd.read_csv(DATA / test_file)
        truth = test.groupby(by, sort=False)["label"].first() if by else test["label"]
        guess = pred.set_index(by)["prediction"].loc[truth.index] if by else pred["prediction"]
        return {"accuracy": float((guess.to_numpy() == truth.to_numpy()).mean())}
    return score


SETS = {
    "airline": dict(train="airline_train.csv", predict_on="airline_train.csv",
                    options=["--horizon", "12", "--lookback", "24", "--season", "12"],
                    score=_airline, headline="MASE",
                    references="SARIMA 0.44, ETS 0.66, seasonal naive 1.57 (MASE)"),
    "gunpoint": dict(train="GunPoint_train.csv", predict_on="GunPoint_test.csv",
                     options=["--target", "label", "--task", "classify"],
                     score=_accuracy("GunPoint_test.csv", None), headline="accuracy",
                     references="1-NN 0.913, 1-NN DTW 0.907, ROCKET 1.000, LSTM-FCN 1.000"),
    "vowels": dict(train="JapaneseVowels_train.csv", predict_on="JapaneseVowels_test.csv",
                   options=[], score=_accuracy("JapaneseVowels_test.csv", "sample_id"),
                   headline="accuracy",
                   references="1-NN DTW 0.949, ROCKET 0.966, LSTM-FCN 0.99, MLSTM-FCN 1.00"),
}


def run_set(name: str, work: Path, extra: list[str]) -> dict:
    spec = SETS[name]
    work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "cellpick"]
    fit = [*cli, "fit", str(DATA / spec["train"]), *spec["options"], "--out", str(work / "model"),
           "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}", "--json", *extra]
    print("$", " ".join(fit), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(fit, check=True, cwd=work, env=ENV, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    out = work / "predictions.csv"
    subprocess.run([*cli, "predict", str(work / "model"), str(DATA / spec["predict_on"]),
                    "--out", str(out)], check=True, cwd=work, env=ENV)
    scores = spec["score"](pd.read_csv(out))
    v = json.loads((work / "model" / "cellpick.json").read_text())["verdict"]
    return {"set": name, "scores": scores, "headline": spec["headline"], "seconds": seconds,
            "winner": summary["winner"], "config": summary["config"],
            "val": summary["val_score"], "metric": summary["metric"],
            "best_baseline": v.get("best_baseline"),
            "baseline_val": (v.get("baselines") or {}).get(v.get("best_baseline")),
            "ensemble": (v.get("ensemble") or {}).get("models", 1), "refit": bool(v.get("refit")),
            "references": spec["references"]}


def table(rows: list[dict]) -> str:
    lines = ["| set | test score | winner (validation, mean of seeds) | best baseline (validation) | "
             "export | fit wall time | references (test) |", "|---|---|---|---|---|---:|---|"]
    for r in rows:
        scores = ", ".join(f"{k} {v:.3f}" if k == "accuracy" or k == "MASE" else f"{k} {v:.1f}"
                           for k, v in r["scores"].items())
        cfg = r["config"]
        shape = f"{cfg['units']}x{cfg['layers']}" + (f", patch {cfg['patch']}" if cfg.get("patch") else "")
        export = (f"mean of {r['ensemble']} seeds" if r["ensemble"] > 1 else "one model") + \
                 (", refit on train+val" if r["refit"] else "")
        base = f"{r['best_baseline']} {r['baseline_val']:.3g}" if r["best_baseline"] else "-"
        lines.append(f"| {r['set']} | **{scores}** | {r['winner']} {shape} ({r['metric']} "
                     f"{r['val']:.3g}) | {base} | {export} | {r['seconds'] / 60:.1f} min | "
                     f"{r['references']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    parser.add_argument("--quick", action="store_true", help="smoke run; scores mean nothing")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("extra", nargs="*", help="extra `cellpick fit` options")
    a = parser.parse_args()
    _env.print_env()
    work = Path(a.out or tempfile.mkdtemp(prefix="cellpick-quality-"))
    extra = [*(QUICK if a.quick else []), *a.extra]
    rows = [run_set(name, work / name, extra) for name in a.sets.split(",")]
    load = os.getloadavg()
    print()
    print(table(rows))
    print(f"\nload average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
