"""Contestants under one contract: every model that is not a cell is fitted and scored here.

A contestant is a function `(prep, *, season, fit_on, choose_on) -> contestants.Baseline`: the
built-in ones (contestants.names_for), or `package.module:function` given to `--contestants`.
Each job (fit on one fold's rows, predict the splits asked for) runs in one reusable worker
process started with spawn (never fork: the fit holds TensorFlow's threads), which imports no
TensorFlow. A contestant has one time limit for all its folds and its final refit; a job
that runs past what is left of it kills the worker (a new one serves the next job). What it
returns is checked (shape, finite values). A contestant that is skipped, fails, returns
the wrong thing or overruns is left out with a reason; the fit goes on. docs/contestants.md
says why it is built this way and what a call costs.
"""
from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cellpick.models.contestants import Skip, fit_one

LIMIT_FLOOR = 60.0  # seconds: the least a contestant gets by default
BUDGET_FLOOR = 5.0  # seconds: the least a contestant gets from what --time-budget has left
START_SECONDS = 300.0  # a worker that is not ready after this is given up
_PRELOAD = {  # imported by a new worker before its first job, per task family
    "forecast": ("statsforecast.models", "sklearn.linear_model"),
    "sequence": ("aeon.transformations.collection.convolution_based", "sklearn.linear_model",
                 "sklearn.neighbors"),
    "text": ("sklearn.feature_extraction.text", "sklearn.linear_model"),
}


@dataclass
class Job:
    """One contestant fitted on one Prepared's `fit_on` rows, answering for `splits`."""

    name: str  # a built-in name, or "module:function"
    prep: Any  # windows.Prepared (numpy arrays only)
    season: int | None
    fit_on: str = "trainval"
    choose_on: tuple[str, str] = ("train", "val")
    splits: tuple[str, ...] = ("score",)
    limit: int | None = None  # samples per split (Prepared.arrays)
    keep_model: bool = False  # send the fitted model back (a final refit)


@dataclass
class Outcome:
    """What one job came to. status: ok | skipped | failed | killed."""

    status: str
    reason: str = ""
    baseline: Any = None  # baselines.Baseline without its predict function (status ok)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0  # wall time in the parent, the worker's round trip included


def default_limit(cells_seconds: float, n: int, budget_left: float | None = None) -> float:
    """Seconds per contestant, all its folds and its refit together: as long as the cells'
    verdict took, at least LIMIT_FLOOR; with a time budget, at most an equal share of what
    it has left (at least BUDGET_FLOOR)."""
    limit = max(LIMIT_FLOOR, float(cells_seconds))
    if budget_left is not None:
        limit = min(limit, max(BUDGET_FLOOR, budget_left / max(n, 1)))
    return limit


def display(name: str) -> str:
    """A contestant's name in tables and runs: `module:function` -> `function`."""
    return name.rpartition(":")[2]


class Worker:
    """One spawned process that runs jobs in turn; `run` kills and forgets it on overrun."""

    def __init__(self, family: str = "forecast"):
        self.family = family
        self._proc = None
        self._conn = None
        self.starts = 0

    def run(self, job: Job, seconds: float) -> Outcome:
        """Send `job`, wait at most `seconds` for its answer (the worker's start-up is not
        counted), check the answer. Never raises for what the contestant does."""
        try:
            self._ensure()
        except _NoWorker as e:
            return Outcome("failed", str(e))
        t0 = time.perf_counter()
        try:
            self._conn.send(job)
            ready = self._conn.poll(max(seconds, 0.0))
            if not ready:
                self.close(kill=True)
                return Outcome("killed", f"ran past its limit ({seconds_text(seconds)})",
                               seconds=time.perf_counter() - t0)
            status, payload = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as e:
            self.close(kill=True)
            return Outcome("failed", f"its worker process died ({type(e).__name__})",
                           seconds=time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
        if status != "ok":
            return Outcome(status, payload, seconds=elapsed)
        baseline, predictions = payload
        problem = _check(job, predictions)
        if problem:
            return Outcome("failed", problem, seconds=elapsed)
        return Outcome("ok", baseline=baseline, predictions=predictions, seconds=elapsed)

    def close(self, kill: bool = False) -> None:
        proc, conn, self._proc, self._conn = self._proc, self._conn, None, None
        if proc is None:
            return
        try:
            if not kill:
                conn.send(None)
                proc.join(5)
        except (OSError, BrokenPipeError):
            pass
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        conn.close()

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        self.close(kill=True)
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child, _PRELOAD.get(self.family, ())),
                           name="cellpick-contestants", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self.starts += 1
        if not parent.poll(START_SECONDS):
            self.close(kill=True)
            raise _NoWorker(f"the contestants' worker process did not start in {START_SECONDS:g} s")
        try:
            parent.recv()
        except (EOFError, OSError) as e:
            self.close(kill=True)
            raise _NoWorker(f"the contestants' worker process failed to start ({type(e).__name__})")


class _NoWorker(Exception):
    pass


_SHARED: Worker | None = None
_SHARED_LOCK = threading.Lock()


def worker(family: str) -> Worker:
    """The process's worker, started on first use and reused by later fits."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            import atexit

            _SHARED = Worker(family)
            atexit.register(_SHARED.close)
        _SHARED.family = family
        return _SHARED


def family(prep) -> str:
    return "forecast" if prep.task == "forecast" else ("text" if prep.kind == "text" else "sequence")


# --- in the worker process --------------------------------------------------------------------


def serve(conn, preload: tuple[str, ...] = ()) -> None:
    """The worker's loop: import `preload`, say ready, then answer jobs until None arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the fit handles Ctrl-C and ends this process
    os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # a job that needs it will fail with the reason
            pass
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(_answer(job))


def _answer(job: Job) -> tuple[str, Any]:
    try:
        b = resolve(job.name)(job.prep, season=job.season, fit_on=job.fit_on,
                              choose_on=job.choose_on)
        predictions = {s: b.predict(s, limit=job.limit) for s in job.splits}
    except Skip as s:
        return "skipped", str(s)
    except BaseException as e:  # the contestant's own failure, whatever it is
        return "failed", f"{type(e).__name__}: {e}"[:300]
    b.predict = None  # a closure over the Prepared: not sent back
    if not job.keep_model:
        b.model = None
    try:
        import pickle

        pickle.dumps(b)
    except Exception as e:
        b.model = None
        b.params = dict(b.params, model_not_kept=f"{type(e).__name__}")
    return "ok", (b, predictions)


def resolve(name: str) -> Callable:
    """The contestant function for a built-in name or `package.module:function`."""
    if ":" not in name:
        def builtin(prep, *, season, fit_on, choose_on):
            return fit_one(name, prep, season=season, fit_on=fit_on, choose_on=choose_on)

        return builtin
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


# --- checks -----------------------------------------------------------------------------------


def expected_shape(prep, split: str, limit: int | None) -> tuple[int, ...]:
    """The shape a contestant must answer `split` with: forecast (n, H), classify (n, C),
    regress (n,)."""
    n = len(prep.arrays(split, limit=limit)[1]) if prep.kind != "window" else \
        len(prep.origins(split, limit=limit)[1])
    if prep.task == "forecast":
        return (n, prep.horizon)
    if prep.task == "classify":
        return (n, prep.n_outputs)
    return (n,)


def _check(job: Job, predictions: dict[str, Any]) -> str | None:
    for split in job.splits:
        p = predictions.get(split)
        want = expected_shape(job.prep, split, job.limit)
        if not isinstance(p, np.ndarray) or p.shape != want:
            got = getattr(p, "shape", type(p).__name__)
            return f"returned shape {got} for the '{split}' rows, expected {want}"
        if not np.issubdtype(p.dtype, np.number):
            return f"returned {p.dtype} values for the '{split}' rows, expected numbers"
        bad = int(np.size(p) - np.isfinite(p).sum())
        if bad:
            return f"returned {bad} non-finite values (NaN or inf) for the '{split}' rows"
    return None


def seconds_text(seconds: float) -> str:
    """12.3 -> '12 s', 1.5 -> '1.5 s' (a limit as the notes say it)."""
    return f"{seconds:.0f} s" if seconds >= 10 or math.isclose(seconds, round(seconds)) \
        else f"{seconds:.1f} s"
