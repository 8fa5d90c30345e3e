"""Machine and library facts printed at the top of every bench script.

Import this before TensorFlow in a bench script, or run it alone:
``python bench/_env.py``. Timings mean little without the machine they came
from, so every table in bench/RESULTS.md starts with these lines.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys

# Quiet TF's C++ start-up chatter for every bench script that imports this first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what platform reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the GPUs the Keras backend sees (empty on a CPU-only machine)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":  # e.g. a GPU machine that has JAX but no TensorFlow
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def _load() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def device() -> str:
    """One line naming what the model runs on: the GPU(s) if any, else the CPU."""
    gpus = gpu_names()
    cpu = f"{cpu_model()}, {os.cpu_count()} cores"
    if gpus:
        return f"GPU: {', '.join(gpus)} (host CPU: {cpu})"
    return f"CPU: {cpu}, no GPU"


def describe() -> list[str]:
    """Markdown-ready lines: date, device, Python/TF/Keras/NumPy versions, command."""
    import keras
    import numpy as np

    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:
        tf_version = "not installed"
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return [
        f"- date: {now}",
        f"- device: {device()}",
        f"- platform: {platform.platform()}",
        # The machine may be shared: a busy neighbour slows every timing below.
        f"- load average at start (1/5/15 min): {_load()}",
        f"- python {platform.python_version()}, tensorflow {tf_version}, "
        f"keras {keras.__version__} (backend {keras.backend.backend()}), numpy {np.__version__}",
        f"- command: `python {' '.join(sys.argv)}`",
    ]


def print_env() -> None:
    print("\n".join(describe()), flush=True)


if __name__ == "__main__":
    print_env()


def engine_everywhere(**options) -> None:
    """Every members group this process builds from now on (a whole fit's search, data-level
    stage, verdict and refit included) trains with `EngineOptions(**options)`, for benches
    that compare engines on whole fits; the fit itself has no such switch."""
    from cellpick.engine import members
    from cellpick.engine.options import EngineOptions

    init = members._Group.__init__
    chosen = EngineOptions(**options)

    def patched(self, group_members, config, split, options=None, steps=None):
        init(self, group_members, config, split, chosen, steps)

    members._Group.__init__ = patched
