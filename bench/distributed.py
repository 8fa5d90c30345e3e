"""Issue 40: one fit's stages with a chief and 0, 1, 2 workers, and what N machines would take.

Each fit runs against one local MLflow tracking server: 0 workers is the plain one-process
fit (no --role: what a chief alone would be); N > 0 is a chief plus N `cellpick fit --role
worker` processes on this machine, started together with it. The chief (or the one process)
is `cellpick.fit`, the function under `cellpick fit`, in a child of this script, timed per
stage from its progress events as bench/scale.py does (`stage_seconds`). Per worker: its
units from its MLflow runs (tag cellpick.worker, metric train_seconds) and its stderr.
The N-machine table assumes one machine per worker and no contention: a stage of U groups
takes ceil(U/N) x its mean group's training seconds in the fit with the most workers.

    PYTHONPATH=. python bench/distributed.py                       # the tiny default budget
    PYTHONPATH=. python bench/distributed.py --max-trials 4 --epochs 20 --folds 3 --workers-list 0,2
    PYTHONPATH=. python bench/distributed.py --pin ...   # each process on one core: one-core machines
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _env
from scale import STAGES, stage_seconds

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "recipes" / "data" / "airline_train.csv"
CELLS = "gru,rnn"
SPREAD = ("data-level", "search", "verdict", "contestants")  # the stages workers run
UNITS_LINE = re.compile(r"^worker (\S+): (\d+) (\S+) units$")  # engine.distributed.work
WORKER_LINE = re.compile(r"^worker (worker-\S+): ")
SESSION_LINE = re.compile(r"^(\S+): (\d+) units on ")  # engine.units.Chief.run
ORACLE_LINE = re.compile(r"^(\S+): oracle on ")  # engine.distributed.chief_search


def fit_options(a: argparse.Namespace) -> dict:
    """The fit's options as `cellpick.fit` keywords (the CLI flags are the same, `-` for `_`)."""
    task = ({"horizon": 12, "lookback": 24, "scaling": "relative", "log": False}
            if a.data.resolve() == DATA else
            {"target": a.target, **({"id": a.id} if a.id else {}), **({"time": a.time} if a.time else {})})
    return {"data": str(a.data.resolve()), "cells": a.cells, "units": a.units, "layers": "1",
            "max_trials": a.max_trials, "epochs": a.epochs, "folds": a.folds, "seeds": a.seeds,
            **task, **({"jobs": 1} if a.pin else {})}


def cli_flags(options: dict) -> list[str]:
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        out += ([flag] if v is True else [f"--no-{k}"] if v is False else [flag, str(v)])
    return out


# -- the child: one fit (one process, or the chief), timed from its events ---------------------
def child(options: dict) -> dict:
    from cellpick._quiet import tensorflow

    tensorflow()
    import cellpick
    from cellpick.cli import _Progress

    show = _Progress(False, None)  # the chief's stderr, as `cellpick fit` prints it
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    messages: list[tuple[float, str]] = []

    def progress(event, info: dict) -> None:
        now = time.perf_counter() - t0
        key = str(event.value if hasattr(event, "value") else event)
        if key == "stage":
            key = f"stage:{info.get('name')}"
        if key == "distributed":
            messages.append((round(now, 2), info["message"]))
            if ORACLE_LINE.match(info["message"]):  # a chief's search begins with its first oracle
                first.setdefault("trial_begin", now)
        first.setdefault(key, now)
        last[key] = now
        show(event, info)

    t0 = time.perf_counter()
    options = dict(options)
    result = cellpick.fit(options.pop("data"), progress=progress, **options)
    total = time.perf_counter() - t0
    return {"total": round(total, 2), "stages": stage_seconds(first, last, total),
            "messages": messages,
            "parent_run_id": result.parent_run_id, "trials": result.trials,
            "winner": result.winner, "val_score": result.val_score,
            "test_score": result.test_score,
            "spread": (result.verdict.get("distributed") or {}).get("units")}


# -- the parent ---------------------------------------------------------------------------------
def run_fit(n: int, options: dict, uri: str, tmp: Path, env: dict, start, timeout: float,
            pin: bool = False) -> dict:
    """One fit with `n` workers (0: no --role); its stages, its workers' lines and runs. With
    `pin` every process runs on one core (taskset): the chief or the one process on core 0,
    worker i on core (i + 1) mod cores, so each worker is a one-core machine."""
    from helpers import free_port

    folder = tmp / f"w{n}"
    folder.mkdir()
    options = {**options, "tracking_uri": uri, "experiment": f"w{n}",
               "out": str(folder / "model")}
    if n:
        cells = len(options["cells"].split(","))
        oracle = f"127.0.0.1:{free_port(consecutive=cells + 8)}"  # PORT .. PORT + cells + 7
        options.update(role="chief", oracle=oracle)
    t0 = time.perf_counter()
    cores = os.cpu_count() or 1

    def on(core: int) -> list[str]:
        return ["taskset", "-c", str(core % cores)] if pin else []

    chief = start([*on(0), sys.executable, __file__, "--child", json.dumps(options)],
                  folder / "chief")
    worker_options = {k: v for k, v in options.items() if k not in ("out", "data")}
    worker_options["role"] = "worker"
    workers = [start([*on(i + 1), sys.executable, "-m", "cellpick", "fit", options["data"],
                      *cli_flags(worker_options)], folder / f"worker{i}") for i in range(n)]
    try:
        rc = chief.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    wall = time.perf_counter() - t0
    err = (folder / "chief" / "stderr.log").read_text()
    out = (folder / "chief" / "stdout.log").read_text().strip().splitlines()
    if rc != 0 or not out:
        tails = "".join(f"\n-- worker {i}:\n" + (folder / f"worker{i}" / "stderr.log").read_text()[-1500:]
                        for i in range(n))
        raise SystemExit(f"fit with {n} workers: chief exit {rc} after {wall:.0f} s\n{err[-3000:]}"
                         + tails)
    row = {"workers": n, "wall": round(wall, 2), **json.loads(out[-1]), "procs": []}
    for i, w in enumerate(workers):
        try:
            w.wait(60)
        except subprocess.TimeoutExpired:
            pass
        wdir = folder / f"worker{i}"
        lines = (wdir / "stderr.log").read_text().splitlines()
        units: dict[str, int] = defaultdict(int)
        me = None
        for line in lines:
            m = UNITS_LINE.match(line.strip())
            if m:
                units[m.group(3)] += int(m.group(2))
            m = WORKER_LINE.match(line.strip())
            me = me or (m.group(1) if m else None)
        me = me or f"worker-?-{w.pid}"
        row["procs"].append({"index": i, "pid": w.pid, "worker": me, "rc": w.poll(),
                             "units": dict(units),
                             "last": ((wdir / "stdout.log").read_text().strip().splitlines()
                                      or [""])[-1],
                             "tail": "\n".join(lines[-5:])})
    row["runs"] = mlflow_runs(uri, f"w{n}")
    return row


def mlflow_runs(uri: str, experiment: str) -> list[dict]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    return [{"role": r.data.tags.get("cellpick.role"), "worker": r.data.tags.get("cellpick.worker"),
             "status": r.info.status, "cell": r.data.params.get("cell"),
             "train_seconds": r.data.metrics.get("train_seconds"),
             "fit_seconds": r.data.metrics.get("fit_seconds")} for r in runs]


ROLES = (("data", "data-level"), ("trial", "search"), ("verdict", "verdict"))


def sessions(row: dict, options: dict) -> dict[str, list[int]]:
    """Per stage, the groups of each session the chief served (search: one session of
    max-trials trials per cell, cells one after another)."""
    out: dict[str, list[int]] = {s: [] for s in SPREAD}
    cells = len(options["cells"].split(","))
    for _, message in row["messages"]:
        m = SESSION_LINE.match(message)
        if m and m.group(1) in out:
            units = int(m.group(2))
            # The verdict's units are cells x folds x seeds, one group per cell.
            out[m.group(1)].append(cells if m.group(1) == "verdict" else units)
        elif ORACLE_LINE.match(message):
            out["search"].append(options["max_trials"])
    return out


def unit_train_seconds(row: dict) -> dict[str, float | None]:
    """Mean training seconds of one group per stage, from the fit's MLflow runs."""
    done = [r for r in row["runs"] if r["status"] == "FINISHED"]
    out: dict[str, float | None] = {}
    for role, stage in ROLES:
        if role == "verdict":  # a group is a cell: its runs' seconds add up to its wall
            per: dict[str, float] = defaultdict(float)
            for r in done:
                if r["role"] == role:
                    per[r["cell"]] += r["train_seconds"] or 0.0
            vals = list(per.values())
        else:
            vals = [r["train_seconds"] for r in done if r["role"] == role and r["train_seconds"]]
        out[stage] = sum(vals) / len(vals) if vals else None
    folds = [r["fit_seconds"] for r in done if r["role"] == "baseline" and r["fit_seconds"]]
    n = sum(row["spread"].get("contestants", {}).values()) if row.get("spread") else 0
    out["contestants"] = sum(folds) / n if folds and n else None
    return out


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_tables(rows: list[dict], options: dict) -> None:
    base = next((r for r in rows if r["workers"] == 0), None)
    print()
    print("| workers | processes | " + " | ".join(STAGES) + " | fit s | process wall s "
          "| vs 0 workers | cross-validated score | test score |")
    print("|---:|---:|" + "---:|" * (len(STAGES) + 5))
    for r in rows:
        s = r["stages"]
        ratio = f"{r['wall'] / base['wall']:.2f}x" if base else "-"
        print(f"| {r['workers']} | {r['workers'] + 1} | "
              + " | ".join(fmt(s.get(k)) for k in STAGES)
              + f" | {r['total']:.1f} | {r['wall']:.1f} | {ratio} | {fmt(r['val_score'], '.4g')} "
                f"| {fmt(r['test_score'], '.4g')} |")

    print()
    print("| workers | process | data-level units (train s) | search trials (train s) "
          "| verdict units (train s) | contestant folds | train s |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    shares = []
    for r in rows:
        done = [x for x in r["runs"] if x["status"] == "FINISHED" and x["role"] in dict(ROLES)]
        names = [("one process" if r["workers"] == 0 else "chief", None)]
        names += [(f"worker {p['index']} ({p['worker']})", p["worker"]) for p in r["procs"]]
        for label, tag in names:
            mine = [x for x in done if x["worker"] == tag]
            cols = []
            for role, _ in ROLES:
                part = [x["train_seconds"] or 0.0 for x in mine if x["role"] == role]
                cols.append(f"{len(part)} ({sum(part):.1f})")
            proc = next((p for p in r["procs"] if p["worker"] == tag), None)
            folds = (proc["units"].get("contestants", 0) if proc
                     else "all" if r["workers"] == 0 else 0)
            total = sum(x["train_seconds"] or 0.0 for x in mine)
            print(f"| {r['workers']} | {label} | " + " | ".join(cols) + f" | {folds} | {total:.1f} |")
        on_workers = sum(x["train_seconds"] or 0.0 for x in done if x["worker"])
        everything = sum(x["train_seconds"] or 0.0 for x in done)
        shares.append((r["workers"], on_workers, everything))
    print()
    print("| workers | train s on workers | train s, all runs | share on workers |")
    print("|---:|---:|---:|---:|")
    for n, mine, everything in shares:
        share = f"{mine / everything:.0%}" if everything else "-"
        print(f"| {n} | {mine:.1f} | {everything:.1f} | {share} |")
    for r in rows:  # what each worker said against what the chief counted (Chief.spread)
        for p in r["procs"]:
            print(f"- {r['workers']} workers, worker {p['index']}: exit {p['rc']}; stderr unit "
                  f"lines {p['units'] or 'none'}; last stdout line: {p['last'] or '(none)'}")
        if r["workers"]:
            print(f"- {r['workers']} workers, the chief's count per stage and worker: {r['spread']}")

    print_machines(rows, options)


def print_machines(rows: list[dict], options: dict, ns: tuple[int, ...] = (1, 2, 4, 8)) -> None:
    """Each spread stage's training with N workers: sum over its sessions of ceil(groups / N)
    x the mean group's training seconds (MLflow) in the fit with the most workers; what that
    fit's stage took beyond its own such sum (start-up, polling, logging) is its overhead."""
    dist = max((r for r in rows if r["workers"]), key=lambda r: r["workers"], default=None)
    if dist is None:
        return
    base = next((r for r in rows if r["workers"] == 0), None)
    m = dist["workers"]
    groups = sessions(dist, options)
    train = unit_train_seconds(dist)
    fixed = sum(dist["stages"][k] for k in ("setup", "refit+export"))
    print()
    print(f"N machines from the {m}-worker fit (one machine per worker, each training one group "
          f"at a time, no contention): stage = sum over its sessions of ceil(groups / N) x unit "
          f"s; overhead = the stage's wall at {m} workers minus that sum at N = {m}:")
    print()
    print(f"| stage | groups per session | unit s (mean group's train s) | wall, 0 workers "
          f"| wall, {m} workers | overhead at {m} | " + " | ".join(f"N={n}" for n in ns) + " |")
    print("|---|---|---:|---:|---:|---:|" + "---:|" * len(ns))
    ideal_sum, overheads = dict.fromkeys(ns, 0.0), 0.0
    for stage in SPREAD:
        g, unit = groups[stage], train.get(stage)
        ideal = {n: sum(math.ceil(u / n) for u in g) * (unit or 0.0) for n in ns}
        at_m = sum(math.ceil(u / m) for u in g) * (unit or 0.0)
        overhead = dist["stages"][stage] - at_m
        overheads += overhead
        for n in ns:
            ideal_sum[n] += ideal[n]
        print(f"| {stage} | {', '.join(map(str, g)) or '-'} | {fmt(unit, '.2f')} "
              f"| {fmt(base['stages'][stage] if base else None)} | {dist['stages'][stage]:.1f} "
              f"| {overhead:.1f} | " + " | ".join(f"{ideal[n]:.1f}" for n in ns) + " |")
    print("| the four stages, training only | | | | | | "
          + " | ".join(f"{ideal_sum[n]:.1f}" for n in ns) + " |")
    print(f"| fit: + setup and refit+export ({fixed:.1f} s) and the overheads ({overheads:.1f} s) "
          f"at {m} workers | | | {fmt(base['total'] if base else None)} | {dist['total']:.1f} | | "
          + " | ".join(f"{fixed + overheads + ideal_sum[n]:.1f}" for n in ns) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-trials", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--workers-list", default="0,1,2")
    ap.add_argument("--data", type=Path, default=DATA, help="the CSV (default: the airline series)")
    ap.add_argument("--target", default="label", help="its target (not the airline series)")
    ap.add_argument("--id", help="its sequence id column (long layout)")
    ap.add_argument("--time", help="its step column (long layout)")
    ap.add_argument("--cells", default=CELLS)
    ap.add_argument("--units", default="8")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--pin", action="store_true",
                    help="one core per process and --jobs 1: each worker a one-core machine")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per fit")
    ap.add_argument("--json", type=Path, help="also write every fit's measurements here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from helpers import free_port, stop_group

    _env.print_env()
    counts = [int(x) for x in args.workers_list.split(",") if x.strip()]
    options = fit_options(args)
    shown = {k: v for k, v in options.items() if k != "data"}
    data = Path(options["data"])
    data = data.relative_to(ROOT) if data.is_relative_to(ROOT) else data
    print(f"- fit: {data} {' '.join(cli_flags(shown))}; workers {counts} "
          f"(on this machine{', one core each (--pin)' if args.pin else ''}), CELLPICK_WORKER_TIMEOUT=30")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               CELLPICK_WORKER_TIMEOUT="30")
    procs: list[subprocess.Popen] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="cellpick-dist-") as tmp:
        tmp = Path(tmp)

        def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
            cwd.mkdir(parents=True, exist_ok=True)
            with open(cwd / "stdout.log", "w") as so, open(cwd / "stderr.log", "w") as se:
                p = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                                     stdout=so, stderr=se)
            procs.append(p)
            return p

        try:
            port = free_port()
            uri = f"http://127.0.0.1:{port}"
            start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                   f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", str(tmp / "artifacts"),
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], tmp / "mlflow")
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"{uri}/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise SystemExit("the MLflow server did not start")
            for n in counts:
                row = run_fit(n, options, uri, tmp, env, start, args.timeout, args.pin)
                rows.append(row)
                print(f"- {n} workers: {row['wall']:.1f} s, winner {row['winner']}, "
                      f"{row['trials']} trials; load average "
                      f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
        finally:
            for p in reversed(procs):
                stop_group(p)
    if args.json:
        args.json.write_text(json.dumps({"options": options, "fits": rows}, indent=1))
    print_tables(rows, options)


if __name__ == "__main__":
    main()
