"""Models trained in threads beside each other: what stalls them.

`--jobs` trains a search round's trials, the data-level candidates and the verdict's cells
in threads of one process. Two process-wide operations run from one thread stall the others;
cellpick/engine/threads.py avoids both.

- seeding: one thread trains an LSTM 16x2 on airline's windows (recipes/airline.toml, rounds
  of 24 steps, validated after each) for 30 rounds while another seeds every 0.3 s (as
  building a trial's model does): with nothing, with `keras.utils.set_random_seed` (whose
  `tf.random.set_seed` clears the eager context's kernel caches, so the trainer instantiates
  its round function again), with `threads.set_seeds` (the same seeds, no clear).
- collections: a whole default fit (airline's recipe) in this process with every full
  garbage collection logged: when, how long, in which thread. A collection that finalises the
  TensorFlow functions of finished trials while another thread trains stalls every thread;
  `--no-pause` runs the fit as before `threads.gc_paused` (collections whenever Python
  decides). A synthetic version (a thread leaving three trained groups as garbage and
  collecting beside a trainer) took 0.28 s and did not reproduce the stall: it needs a
  fit's garbage, so this runs a fit.

- search: a search's rounds as `--jobs 2` trains them (search._run_round: one member per
  trial, two threads, collections paused), four candidates x three cells on a recipe's
  data, without XLA (members._use_xla's rule for one member) or with it (EngineOptions(xla=True)):
  alone, one member's XLA rounds are 3-4x faster for 1-1.5 s more compile; beside another
  thread compiling too, is it still a gain?

- heap: tiny airline fits one after another in one process (as the tests' workers and a
  notebook run them), each fit's full collections timed, split by whether the heap was
  frozen (threads.frozen_heap) while they ran, and the objects and resident memory the
  process holds after it.
  PYTHONPATH=<other checkout> runs the same on other code.
- round-ends: the search stage of airline's default fit, several times in fresh processes,
  each collection threads.gc_paused runs after a round timed: a group freed there waited
  for its tf.data iterator's autotuning thread to end (now off: members._Group).

    PYTHONPATH=. python bench/threads.py seeding [--rounds 30]
    PYTHONPATH=. python bench/threads.py collections [--no-pause] [--recipe airline]
    PYTHONPATH=. python bench/threads.py search [--xla] [--recipe japanese_vowels]
    PYTHONPATH=. python bench/threads.py heap [--fits 5]
    PYTHONPATH=. python bench/threads.py round-ends [--runs 4]

Results: bench/RESULTS.md, "Threads".
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _env  # noqa: E402

CONFIG = {"cell": "lstm", "units": 16, "layers": 2, "dropout": 0.0, "learning_rate": 3e-3,
          "bidirectional": False}


def _setup():
    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.pipeline import make_plan

    tf = tensorflow()
    tf.config.experimental.enable_op_determinism()  # as pipeline.run on a CPU
    plan = make_plan(resolve({"scaling": "relative", "log": False, "linear": True, "lookback": 24},
                             ROOT / "recipes" / "airline.toml"))
    return plan.prep, plan.schedule


def _trainer(prep, schedule, seed: int):
    """A built group, traced and run once, and a function training `rounds` more rounds
    (each validated) that returns every round's seconds."""
    from cellpick.engine import members

    group = members._Group([members.Member(prep, seed)], CONFIG, "train")
    n = members.round_steps(schedule)
    group.train(n)
    group.validate()

    def train(rounds: int) -> list[float]:
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            group.train(n)
            group.validate()
            out.append(time.perf_counter() - t)
        return out

    return train


def _row(name: str, rounds: list[float], other: str = "") -> str:
    return (f"| {name} | {1000 * statistics.median(rounds):.0f} | {1000 * max(rounds):.0f} "
            f"| {sum(rounds):.2f} | {other} |")


def seeding(prep, schedule, rounds: int) -> None:
    import keras

    from cellpick.engine import threads as parallel

    print("\n| other thread | median round (ms) | slowest round (ms) | rounds' total (s) | seeds set |")
    print("|---|---|---|---|---|")
    for name, fn in (("nothing", None), ("keras.utils.set_random_seed every 0.3 s", keras.utils.set_random_seed),
                     ("parallel.set_seeds every 0.3 s", parallel.set_seeds)):
        train = _trainer(prep, schedule, 7)
        stop, count = threading.Event(), [0]

        def seed_loop():
            while not stop.is_set():
                if fn is not None:
                    fn(100 + count[0])
                    count[0] += 1
                time.sleep(0.3)

        other = threading.Thread(target=seed_loop)
        other.start()
        times = train(rounds)
        stop.set()
        other.join()
        print(_row(name, times, str(count[0])), flush=True)


def collections(no_pause: bool, recipe: str) -> None:
    """A whole default fit of the recipe in this process, every full collection logged (when,
    how long, which thread); with `no_pause` parallel.gc_paused does nothing (the fit before)."""
    import contextlib
    import tempfile

    from cellpick.engine import members, search
    from cellpick.engine import threads as parallel

    if no_pause:  # what the fit did before (members and search bind the name at import)
        members.gc_paused = search.gc_paused = parallel.gc_paused = contextlib.nullcontext
    log: list[tuple[float, float, str, int]] = []
    start: dict[str, float] = {}
    t0 = time.perf_counter()

    def watch(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            start["t"] = time.perf_counter()
        else:
            log.append((start["t"] - t0, time.perf_counter() - start["t"], threading.current_thread().name,
                        info["collected"]))

    from cellpick.cli import main as cli

    gc.callbacks.append(watch)
    with tempfile.TemporaryDirectory(prefix="cellpick-threads-") as work:
        argv = sys.argv
        sys.argv = ["cellpick", "fit", "--recipe", str(ROOT / "recipes" / f"{recipe}.toml"),
                    "--tracking-uri", f"sqlite:///{work}/mlflow.db", "--out", f"{work}/model"]
        try:
            cli()
        except SystemExit as e:
            if e.code not in (0, None):
                raise
        finally:
            sys.argv = argv
            gc.callbacks.remove(watch)
    total = time.perf_counter() - t0
    slow = sorted(log, key=lambda r: -r[1])[:5]
    print(f"\n- {'without' if no_pause else 'with'} parallel.gc_paused: fit {total:.1f} s, "
          f"{len(log)} full collections taking {sum(r[1] for r in log):.1f} s in all; the longest:")
    print("\n| at (s) | seconds | thread | objects collected |\n|---|---|---|---|")
    for at, secs, thread, collected in slow:
        print(f"| {at:.1f} | {secs:.2f} | {thread} | {collected} |", flush=True)


# The search probe's candidates: the defaults, a wide deep one, dropout, a deep narrow one.
CANDIDATES = [dict(units=16, layers=1, dropout=0.0, learning_rate=3e-3),
              dict(units=128, layers=2, dropout=0.0, learning_rate=3e-3),
              dict(units=32, layers=1, dropout=0.2, learning_rate=1e-3),
              dict(units=16, layers=2, dropout=0.0, learning_rate=3e-3)]
RECIPE_VALUES = {"airline": {"scaling": "relative", "log": False, "linear": True, "lookback": 24},
                 "gunpoint": {"patch": 6}, "japanese_vowels": {}}


def trial_config(prep, cand: dict, cell: str) -> dict:
    """A search trial's configuration as `space.hypermodel` builds it: the candidate, the
    cell, no bidirectional layer, and the data-level values it fixes (the patch, a
    forecast's preprocessing). Without the patch GunPoint's models would read 150 raw steps
    instead of 25 patches (rounds ~4x slower)."""
    from cellpick.models.cells import preprocessing

    config = {**cand, "cell": cell, "bidirectional": False}
    if prep.patch > 1:
        config["patch"] = prep.patch
    if prep.task == "forecast":
        config.update(preprocessing(prep))
    return config


def search(recipe: str, xla: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cellpick._quiet import tensorflow
    from cellpick.config import resolve
    from cellpick.engine.members import Member, fit_members
    from cellpick.engine.options import EngineOptions
    from cellpick.engine.threads import gc_paused
    from cellpick.pipeline import make_plan

    options = EngineOptions(xla=xla)
    tensorflow().config.experimental.enable_op_determinism()
    plan = make_plan(resolve(RECIPE_VALUES[recipe], ROOT / "recipes" / f"{recipe}.toml"))
    print(f"- {recipe}: {plan.prep.sizes}, XLA {'on' if xla else 'off'} for every trial, 2 threads")
    print("\n| round | cell | units x layers | seconds | first round (trace + compile) s | rounds |")
    print("|---|---|---|---|---|---|")
    t0, n, rows = time.perf_counter(), 0, []
    for r, cand in enumerate(CANDIDATES):
        def one(args):
            cell, seed = args
            t = time.perf_counter()
            [res] = fit_members([Member(plan.prep, seed)], trial_config(plan.prep, cand, cell),
                                plan.schedule, options=options)
            return cell, time.perf_counter() - t, res.extra["first_round_seconds"], res.rounds_trained

        with gc_paused(), ThreadPoolExecutor(2) as pool:
            trials = [(c, 43 + n + i) for i, c in enumerate(["lstm", "gru", "rnn"])]
            for cell, secs, first, rounds in pool.map(one, trials):
                rows.append((secs, first))
                print(f"| {r} | {cell} | {cand['units']}x{cand['layers']} | {secs:.1f} | {first:.2f} "
                      f"| {rounds} |", flush=True)
        n += 3
    print(f"\nsearch {time.perf_counter() - t0:.1f} s; trial-seconds {sum(s for s, _ in rows):.1f}, "
          f"of them first rounds {sum(f for _, f in rows):.1f}")


def round_ends(runs: int) -> None:
    """The search stage of airline's default fit (data-level values given), `runs` times in
    fresh processes; every collection parallel.gc_paused runs once a round's threads are
    joined is timed. A group freed there waited for its tf.data autotuning thread."""
    import json
    import subprocess
    import tempfile

    child = """
import gc, json, sys, time
import cellpick
from cellpick import members
ends, t0 = [], time.perf_counter()
collect = gc.collect
def timed(*a, **k):
    s = time.perf_counter()
    try:
        return collect(*a, **k)
    finally:
        if sys._getframe(1).f_code.co_name == "gc_paused":
            ends.append(round(time.perf_counter() - s, 3))
gc.collect = timed
class Stop(Exception):
    pass
def progress(event, info):
    if event == "stage" and info.get("name") == "verdict":
        raise Stop
try:
    cellpick.fit(recipe=sys.argv[1], tracking_uri="sqlite:///" + sys.argv[2] + "/m.db",
                 out=sys.argv[2] + "/model", quiet=True, progress=progress,
                 **json.loads(sys.argv[3]))
except Stop:
    pass
print(json.dumps({"search_ends": ends, "seconds": round(time.perf_counter() - t0, 1)}))
"""
    values = RECIPE_VALUES["airline"]
    print(f"- airline's search, data-level values {values}, {runs} runs in fresh processes\n")
    print("| run | seconds to the verdict | collections after each search round (s) |")
    print("|---|---|---|")
    all_ends = []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as work:
            out = subprocess.run([sys.executable, "-c", child, str(ROOT / "recipes" / "airline.toml"),
                                  work, json.dumps(values)], capture_output=True, text=True, check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        ends = rec["search_ends"][-4:]  # the search's rounds (earlier ones: the data stage's)
        all_ends += ends
        print(f"| {run} | {rec['seconds']} | {' / '.join(f'{e:.2f}' for e in ends)} |", flush=True)
    slow = [e for e in all_ends if e >= 1.0]
    print(f"\n{len(slow)} of {len(all_ends)} round ends took 1 s or more"
          f"{' (' + ', '.join(f'{e:.2f}' for e in slow) + ' s)' if slow else ''}; "
          f"the longest {max(all_ends):.2f} s")


def _rss_mb() -> float:
    """The process's resident memory now (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def heap(fits: int) -> None:
    import tempfile

    import cellpick

    print(f"- cellpick from {Path(cellpick.__file__).parent}; {fits} tiny airline fits (2 cells, "
          "1 trial, 2 epochs, 2 x 2 verdict, the data-level stage)")
    print("\n| fit | seconds | full collections, heap not frozen: n / s | heap frozen: n / s "
          "| objects after | resident MB after |\n|---|---|---|---|---|---|")
    log: list[tuple[float, int]] = []
    began: list[float] = []

    def watch(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                began[:] = [time.perf_counter()]
            else:
                log.append((time.perf_counter() - began[0], gc.get_freeze_count()))

    for i in range(fits):
        work = tempfile.mkdtemp(prefix="cellpick-heap-")
        log.clear()
        gc.callbacks.append(watch)
        t0 = time.perf_counter()
        cellpick.fit(ROOT / "recipes" / "data" / "airline_train.csv", tracking_uri=f"sqlite:///{work}/m.db",
                     out=f"{work}/model", quiet=True, horizon=12, lookback=24, cells="lstm,gru",
                     units="8", layers="1", max_trials=1, epochs=2, folds=2, seeds=2)
        seconds = time.perf_counter() - t0
        gc.callbacks.remove(watch)
        open_ = [d for d, frozen in log if not frozen]
        shut = [d for d, frozen in log if frozen]
        print(f"| {i} | {seconds:.1f} | {len(open_)} / {sum(open_):.2f} | {len(shut)} / {sum(shut):.2f} "
              f"| {len(gc.get_objects())} | {_rss_mb():.0f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["seeding", "collections", "search", "heap", "round-ends"])
    ap.add_argument("--runs", type=int, default=4, help="round-ends: fits to the verdict")
    ap.add_argument("--fits", type=int, default=5, help="heap: fits one after another")
    ap.add_argument("--rounds", type=int, default=30, help="seeding: the trainer's rounds")
    ap.add_argument("--recipe", default=None, help="collections (default airline), search "
                    "(default japanese_vowels): the recipe")
    ap.add_argument("--xla", action="store_true", help="search: every trial on XLA")
    ap.add_argument("--no-pause", action="store_true", help="collections: without parallel.gc_paused")
    args = ap.parse_args(argv)
    _env.print_env()
    if args.what == "collections":
        collections(args.no_pause, args.recipe or "airline")
        return 0
    if args.what == "heap":
        heap(args.fits)
        return 0
    if args.what == "round-ends":
        round_ends(args.runs)
        return 0
    if args.what == "search":
        search(args.recipe or "japanese_vowels", args.xla)
        return 0
    prep, schedule = _setup()
    print(f"- data: {prep.sizes}, batch {prep.batch_size()}, config {CONFIG}, {args.rounds} rounds")
    seeding(prep, schedule, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
