"""What tests and benches need beside cellpick: one plain Keras training, free ports, stopping
a process group, a calendar with a gap, the built-in contestants fitted in-process, a
sequence set with a known answer. Tests import it as `from helpers import ...` (tests/ is on sys.path);
bench scripts put tests/ on sys.path first."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from cellpick.data.prepared import Prepared
from cellpick.engine.train import Schedule, callbacks
from cellpick.models import contestants


def fit_one(prep: Prepared, config: dict[str, Any], seed: int, schedule: Schedule,
            deadline: float | None = None, distribute=None):
    """Train one configuration with one seed through Keras' own `fit` (what a members group
    is compared against); return (model, history dict, seconds)."""
    import keras

    from cellpick.models.cells import build_model

    keras.utils.set_random_seed(seed)
    with distribute.scope() if distribute is not None else contextlib.nullcontext():
        model = build_model(prep, config)
    bs = prep.batch_size()
    t0 = time.perf_counter()
    history = model.fit(
        prep.dataset("train", bs, shuffle=True, seed=seed),
        validation_data=prep.dataset("val", bs),
        epochs=schedule.epochs, callbacks=callbacks(schedule, deadline), shuffle=False, verbose=0,
    )
    return model, history.history, time.perf_counter() - t0


def free_port(consecutive: int = 1) -> int:
    """A port p with p .. p + consecutive - 1 free on 127.0.0.1 (for an oracle at p and its
    cells at p + i, or an MLflow server)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + consecutive > 65535:
            continue
        try:
            for p in range(port, port + consecutive):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no free ports")


def stop_group(proc) -> None:
    """Stop a process started in its own process group (`start_new_session=True`: a chief, a
    worker, an MLflow server) and its children: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def hourly_with_a_missing_month(tmp_path: Path) -> Path:
    """600 hourly rows, a 24-hour load cycle and a covariate on a 63-row cycle (which
    autocorrelation detection would pick), the 744 stamps of a month missing after row 300."""
    rng = np.random.default_rng(0)
    stamps = pd.date_range("2024-01-01", periods=600 + 744, freq="h")[np.r_[0:300, 1044:1344]]
    k = np.arange(600)
    temp = np.sin(2 * np.pi * k / 63) + 0.1 * rng.standard_normal(600)
    load_ = 100 + 20 * np.sin(2 * np.pi * k / 24) + 5 * temp + rng.standard_normal(600)
    path = tmp_path / "d.csv"
    pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M"), "temp": temp.round(3),
                  "load": load_.round(2)}).to_csv(path, index=False)
    return path


def fit_baselines(prep: Prepared, *, season: int | None, fit_on: str = "trainval",
                  choose_on: tuple[str, str] = ("train", "val"),
                  skip: Callable[[str, str], None] | None = None) -> list:
    """Every built-in contestant of prep's task fitted in this process, as `fit_one` fits
    them; one that is skipped or fails is reported to `skip(name, reason)`. (The fit itself
    runs them under cellpick/engine/isolation.py's contract.)"""
    skip = skip or (lambda name, reason: None)
    out = []
    for name in contestants.names_for(prep):
        try:
            out.append(contestants.fit_one(name, prep, season=season, fit_on=fit_on, choose_on=choose_on))
        except contestants.Skip as s:
            skip(name, str(s))
        except Exception as e:
            skip(name, f"failed: {type(e).__name__}: {e}"[:300])
    return out


def sign_of_mean(n: int, steps: int, seed: int = 0):
    """A wide Dataset of `n` sequences whose class is the sign of their mean: a known answer."""
    from cellpick.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, steps)) + np.repeat([-0.7, 0.7], n // 2)[:, None]
    frame = pd.DataFrame(x, columns=[f"t{i}" for i in range(steps)])
    frame.insert(0, "label", np.where(x.mean(axis=1) > 0, "up", "down"))
    return Dataset(path=Path("sign.csv"), frame=frame, layout="wide", task="classify",
                   target="label", features=[f"t{i}" for i in range(steps)], classes=["down", "up"])
