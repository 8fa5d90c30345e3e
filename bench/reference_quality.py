"""Test accuracy of `cellpick fit` with the default budget on JapaneseVowels, and its wall time.

Fits on JapaneseVowels_train.csv with default options (the CLI, as a user runs it), then
`cellpick predict` on JapaneseVowels_test.csv (370 samples, up to 29 steps while training
has at most 26) and scores the predictions against the test labels. Reference results on
the same split are in ../shared/data/README.md (1-NN DTW 0.949, ROCKET 0.966, MLSTM-FCN 1.00).

    PYTHONPATH=. python bench/reference_quality.py [--out DIR] [-- extra fit options]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data"
# The subprocesses run in the work folder: import this checkout's cellpick from there too.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("extra", nargs="*", help="extra `cellpick fit` options")
    a = parser.parse_args()
    work = Path(a.out or tempfile.mkdtemp(prefix="cellpick-vowels-"))
    work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "cellpick"]
    fit = [*cli, "fit", str(DATA / "JapaneseVowels_train.csv"), "--out", str(work / "model"),
           "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}", *a.extra]
    load0 = os.getloadavg()
    print("$", " ".join(fit), flush=True)
    t0 = time.perf_counter()
    subprocess.run(fit, check=True, cwd=work, env=ENV)
    fit_s = time.perf_counter() - t0
    predictions = work / "predictions.csv"
    subprocess.run([*cli, "predict", str(work / "model"), str(DATA / "JapaneseVowels_test.csv"),
                    "--out", str(predictions)], check=True, cwd=work, env=ENV)
    test = pd.read_csv(DATA / "JapaneseVowels_test.csv")
    truth = test.groupby("sample_id", sort=False)["label"].first()
    pred = pd.read_csv(predictions).set_index("sample_id")["prediction"]
    accuracy = float((pred.loc[truth.index] == truth).mean())
    load1 = os.getloadavg()
    print(f"\nJapaneseVowels test accuracy {accuracy:.3f} ({len(truth)} samples); fit wall time "
          f"{fit_s / 60:.1f} min; load average {load0[0]:.1f} at the start, {load1[0]:.1f} at "
          f"the end, {os.cpu_count()} CPU cores")


if __name__ == "__main__":
    main()
