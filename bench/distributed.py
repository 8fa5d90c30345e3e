"""Wall time of a distributed fit (a chief and N workers) against one process, same budget.

Both fits run against the same local MLflow tracking server (SQL store) on 127.0.0.1 and
the airline series (horizon 12, lookback 24), cells gru,rnn, units 8, layers 1, one seed.
Times are from the start of the `cellpick fit` process (the chief's, for the distributed
fit) to its exit, so both include TensorFlow's start-up, the verdict and the export; the
workers start together with the chief. Trials per worker are read from the runs' tags.

    PYTHONPATH=. python bench/distributed.py                       # the test's budget
    PYTHONPATH=. python bench/distributed.py --max-trials 4 --epochs 20 --workers 2
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _env  # noqa: E402
from helpers import free_port, stop_group  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data" / "airline_train.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-trials", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    _env.print_env()
    options = ["--cells", "gru,rnn", "--units", "8", "--layers", "1", "--max-trials",
               str(args.max_trials), "--epochs", str(args.epochs), "--seeds", "1",
               "--horizon", "12", "--lookback", "24", "--quiet"]
    print(f"- budget: {' '.join(options[:-1])}; {args.workers} workers")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="cellpick-dist-") as tmp:
        tmp = Path(tmp)

        def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
            cwd.mkdir(exist_ok=True)
            p = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=open(cwd / f"{len(procs)}.err", "w"))
            procs.append(p)
            return p

        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        try:
            start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                            f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination",
                            str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                            "--workers", "1"], tmp)
            for _ in range(180):
                try:
                    urllib.request.urlopen(f"{uri}/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            fit = [sys.executable, "-m", "cellpick", "fit", str(DATA), *options, "--tracking-uri", uri]

            t0 = time.perf_counter()
            one = start([*fit, "--experiment", "one"], tmp / "one")
            assert one.wait() == 0, (tmp / "one").glob("*.err")
            single = time.perf_counter() - t0

            oracle = f"127.0.0.1:{free_port(consecutive=2)}"
            t0 = time.perf_counter()
            chief = start([*fit, "--experiment", "dist", "--role", "chief", "--oracle", oracle],
                          tmp / "chief")
            workers = [start([*fit, "--experiment", "dist", "--role", "worker", "--oracle", oracle],
                             tmp / f"worker{i}") for i in range(args.workers)]
            assert chief.wait() == 0, "chief failed"
            distributed = time.perf_counter() - t0
            for w in workers:
                w.wait(60)

            from mlflow.tracking import MlflowClient

            client = MlflowClient(uri)
            exp = client.get_experiment_by_name("dist")
            runs = client.search_runs([exp.experiment_id], max_results=1000,
                                      filter_string="tags.`cellpick.role` = 'trial' and "
                                                    "attributes.status = 'FINISHED'")
            per = collections.Counter(r.data.tags.get("cellpick.worker") for r in runs)
            busy = collections.defaultdict(float)
            for r in runs:
                busy[r.data.tags.get("cellpick.worker")] += r.data.metrics.get("train_seconds", 0)
        finally:
            for p in reversed(procs):
                stop_group(p)
    print()
    print("| fit | processes | wall s | vs one process |")
    print("|---|---:|---:|---:|")
    print(f"| one process | 1 | {single:.1f} | 1.00x |")
    print(f"| chief + {args.workers} workers | {args.workers + 1} | {distributed:.1f} | "
          f"{distributed / single:.2f}x |")
    print()
    print("| worker | trials | trial seconds |")
    print("|---|---:|---:|")
    for w, n in sorted(per.items()):
        print(f"| {w} | {n} | {busy[w]:.1f} |")


if __name__ == "__main__":
    main()
