"""Writing and loading exports; the only module that writes models.

DIR/saved_model/   TF SavedModel, signature serving_default: raw input (named `window`,
                   `sequence` or `text`: strings) -> named outputs (`forecast`; `probabilities` + `label`;
                   `prediction`), all scaling and label lookup inside the graph.
DIR/model.keras    the same Keras model (built-in layers only: loads with safe_mode=True).
DIR/cellpick.json  schema version, columns, window, classes, scaling, scores, verdict,
                   versions, MLflow ids, and sha256 of every model file (verified on load).
DIR/report.html    the fit's report.

An export is written into a hidden temporary sibling and renamed into place. An existing
DIR is kept as DIR.bak (replacing an older DIR.bak), so a crash at any moment leaves the
old export or the new one, never a mix.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import ExportError

SCHEMA_VERSION = 1
META = "cellpick.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _checksums(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (META, "report.html"))
    return {p.relative_to(root).as_posix(): _sha256(p) for p in files}


def _serving_fn(model, prep, classes: list | None):
    import tensorflow as tf

    dtype = tf.string if prep.input_dtype == "string" else tf.float32
    spec = tf.TensorSpec([None, *prep.input_shape], dtype, name=prep.input_name)
    if prep.task == "classify":
        dtype = tf.int64 if all(isinstance(c, int) for c in classes) else tf.string
        labels = tf.constant([c if dtype == tf.int64 else str(c) for c in classes], dtype=dtype)

        @tf.function(input_signature=[spec])
        def serve(x):
            probs = model(x, training=False)
            return {"probabilities": probs, "label": tf.gather(labels, tf.argmax(probs, axis=-1))}
    else:
        name = "forecast" if prep.task == "forecast" else "prediction"

        @tf.function(input_signature=[spec])
        def serve(x):
            return {name: model(x, training=False)}

    return serve


def write_export(out: str | Path, model, prep, meta: dict[str, Any],
                 report_html: str | None = None) -> Path:
    """Write DIR atomically; return its path."""
    import keras

    out = Path(out).resolve()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        model.save(tmp / "model.keras")
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", _serving_fn(model, prep, meta.get("classes")))
        archive.write_out(str(tmp / "saved_model"), verbose=False)
        if report_html is not None:
            (tmp / "report.html").write_text(report_html, encoding="utf-8")
        meta = {"schema_version": SCHEMA_VERSION, **meta, "files": _checksums(tmp)}
        (tmp / META).write_text(json.dumps(meta, indent=2, default=_json_default), encoding="utf-8")
        if out.exists():
            bak = out.with_name(out.name + ".bak")
            if bak.exists():
                shutil.rmtree(bak)
            out.rename(bak)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _json_default(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_meta(model_dir: str | Path, verify: bool = True) -> dict[str, Any]:
    """Read and check DIR/cellpick.json; refuse unknown schemas and altered or missing files."""
    root = Path(model_dir)
    path = root / META
    if not path.is_file():
        raise ExportError(f"'{root}' is not a cellpick export: {META} is missing; pass the --out "
                          f"directory of a finished fit")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ExportError(f"'{path}' is not valid JSON ({e}); re-run the fit to export again") from None
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ExportError(f"'{path}' has schema_version {version!r}; this cellpick reads "
                          f"{SCHEMA_VERSION}: use the cellpick version that wrote it or re-run the fit")
    if verify:
        expected = meta.get("files", {})
        for rel, digest in expected.items():
            f = root / rel
            if not f.is_file():
                raise ExportError(f"'{root}': file '{rel}' is missing; the export is incomplete, "
                                  f"re-run the fit")
            if _sha256(f) != digest:
                raise ExportError(f"'{root}': file '{rel}' was altered after export (checksum "
                                  f"mismatch); re-run the fit or restore the file")
    return meta


def load_serving(model_dir: str | Path):
    """(meta, serving function) from DIR, using only TensorFlow."""
    from ._quiet import tensorflow

    meta = read_meta(model_dir)
    tf = tensorflow()
    loaded = tf.saved_model.load(str(Path(model_dir) / "saved_model"))
    fn = loaded.signatures["serving_default"]
    fn._cellpick_keepalive = loaded  # the signature needs its object alive
    return meta, fn
