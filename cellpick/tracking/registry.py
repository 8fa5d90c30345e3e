"""The winner's MLflow model on the parent run and, with --register, its registered version
tagged with the verdict. `ModelLog` is mixed into the Tracker (tracking/tracker.py), so
callers keep calling `tracker.log_model`."""
from __future__ import annotations

import contextlib
import os
from typing import Any

from cellpick.tracking.store import no_schema_hints
from cellpick.tracking.tags import (
    REGISTERED_MODEL_TAG,
    REGISTERED_URI_TAG,
    REGISTERED_VERSION_TAG,
)


class ModelLog:
    """A mixin: it uses the Tracker's `client`, `parent_id` and `set_tags`."""

    client: Any
    parent_id: str | None

    def log_model(self, model, input_example, register: str | None = None,
                  verdict: dict[str, Any] | None = None) -> dict[str, Any]:
        """Log the winner on the parent run (with explicit pip requirements, which MLflow
        would otherwise infer by loading the model).

        With `register`, MLflow adds a new version of that registered model; the version is
        tagged with the `verdict` facts (keys become `cellpick.<key>` tags, the reason is also
        its description) and the parent run is tagged with the version it produced.
        Returns {"model_uri", "registered": {"name", "version", "uri"} or None}.
        """
        import io

        import keras
        import mlflow
        import numpy as np
        import tensorflow as tf
        from mlflow.models import infer_signature

        # Two rows: one direct call (predict() would trace a new function).
        feed = ({k: tf.constant(v) for k, v in input_example.items()}  # named inputs (a history graph)
                if isinstance(input_example, dict) else tf.constant(input_example))
        output = np.asarray(model(feed, training=False))
        # MLflow validates the example with predict() in verbose mode: keep its bar off stdout.
        with _example_dir_created(), no_schema_hints(), contextlib.redirect_stdout(io.StringIO()):
            info = mlflow.keras.log_model(
                model,
                name="model",
                signature=infer_signature(input_example, output),
                input_example=input_example,
                pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"],
                registered_model_name=register,
            )
        registered = None
        if register and info.registered_model_version is not None:
            version = str(info.registered_model_version)
            registered = {"name": register, "version": version, "uri": f"models:/{register}/{version}"}
            facts = dict(verdict or {})
            for key, value in facts.items():
                if value is not None:
                    self.client.set_model_version_tag(register, version, f"cellpick.{key}", str(value)[:5000])
            if facts.get("reason"):
                self.client.update_model_version(register, version, description=str(facts["reason"]))
            self.set_tags(self.parent_id, {REGISTERED_MODEL_TAG: register,
                                           REGISTERED_VERSION_TAG: version,
                                           REGISTERED_URI_TAG: registered["uri"]})
        return {"model_uri": info.model_uri, "registered": registered}



@contextlib.contextmanager
def _example_dir_created():
    """MLflow 3.17's Keras flavor writes input_example.json before it creates the model
    directory (FileNotFoundError); create the directory first, for this call only."""
    import mlflow.keras.save as keras_save

    original = keras_save._save_example

    def save_example(mlflow_model, input_example, path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        return original(mlflow_model, input_example, path, *args, **kwargs)

    keras_save._save_example = save_example
    try:
        yield
    finally:
        keras_save._save_example = original
