"""Import TensorFlow without its start-up noise on the user's terminal.

TF's C++ runtime writes oneDNN/CUDA lines straight to file descriptor 2 at import time,
before Python logging exists, so the only reliable silencer is to point fd 2 at /dev/null
for the duration of the import. Real errors raised by the import still propagate.
"""
from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, notebooks
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def tensorflow():
    """Return the `tensorflow` module, imported quietly once."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _stderr_to_devnull():
        import keras  # its import also prints through TF
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    keras.config.disable_interactive_logging()  # no progress bars from predict() inside MLflow
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    return tf
