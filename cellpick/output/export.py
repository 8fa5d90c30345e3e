"""Writing and loading exports; the only module that writes models. An export directory:

DIR/saved_model/   TF SavedModel: serving_default maps the raw input (`window`, `sequence` or
                   `text`) to named outputs (`forecast`; `probabilities` + `label`; `prediction`),
                   scaling and label lookup inside the graph; forecasts add `rolling` (every
                   window of one raw series). A history graph (models/graphs/series.py) takes
                   each series from its first row instead of a window.
DIR/model.keras    the same Keras model (loads with safe_mode=True; a history graph after
                   cellpick.models.graphs.series.register()).
DIR/model.onnx     optional (`onnx=True`), checked against the SavedModel with onnxruntime.
DIR/cellpick.json  schema version, columns, window, classes, scaling, scores, the fit's record
                   (`verdict`), versions, MLflow ids, sha256 of every model file (checked on load).
DIR/report.html    the fit's report.
Written atomically (`write_export`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cellpick.engine import internals
from cellpick.errors import ExportError
from cellpick.stages.record import FitRecord

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


def _rolling_fn(model, prep):
    """Forecast exports: every window of one raw series, for backtests without client-side slicing."""
    import tensorflow as tf

    lookback, n_feat = prep.input_shape

    @tf.function(input_signature=[tf.TensorSpec([None, n_feat], tf.float32, name="series")])
    def rolling(series):
        windows = tf.signal.frame(series, lookback, 1, axis=0)  # (steps - lookback + 1, lookback, features)
        return {"forecast": model(windows, training=False)}

    return rolling


def write_export(out: str | Path, model, prep, meta: dict[str, Any],
                 report_html: str | None = None, onnx: bool = False,
                 warn: Callable[[str], None] | None = None) -> Path:
    """Write DIR atomically; return its path. With `onnx`, also DIR/model.onnx when the model
    converts and onnxruntime reproduces the SavedModel; otherwise `warn` says why, and the
    export goes on without it.

    DIR is written into a hidden temporary sibling and renamed into place; an existing DIR
    is kept as DIR.bak (replacing an older one), so a crash leaves the old export or the new
    one, never a mix (killed between the two renames, DIR is absent and the old one is
    DIR.bak). Temporary siblings left by a killed process are removed here."""
    import keras

    out = Path(out).resolve()
    _remove_stale_temporaries(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        model.save(tmp / "model.keras")
        history = (meta.get("input") or {}).get("kind") == "history"
        with portable_rnns(model):
            archive = keras.export.ExportArchive()
            archive.track(model)
            if history:  # a series graph over the whole history (graphs/series.py)
                from cellpick.models.graphs.series import endpoints

                functions = endpoints(model)
                for name, fn in functions.items():
                    archive.add_endpoint(name, fn)
            else:
                serve = _serving_fn(model, prep, meta.get("classes"))
                archive.add_endpoint("serving_default", serve)
                if prep.task == "forecast":
                    archive.add_endpoint("rolling", _rolling_fn(model, prep))
            archive.write_out(str(tmp / "saved_model"), verbose=False)
            if onnx and history and warn:
                warn("ONNX skipped: the model scans the whole history (a while loop over "
                     "float64 state); the export has no model.onnx")
            elif onnx:
                problem = write_onnx(tmp / "saved_model", tmp / "model.onnx", serve, prep,
                                     [layer.name for layer in model.layers])
                if problem and warn:
                    warn(problem)
        if report_html is not None:
            (tmp / "report.html").write_text(report_html, encoding="utf-8")
        meta = {"schema_version": SCHEMA_VERSION, **meta, "onnx": (tmp / "model.onnx").is_file(),
                "files": _checksums(tmp)}
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


@contextlib.contextmanager
def portable_rnns(model):
    """Trace LSTM/GRU layers with the generic kernel, not cuDNN's. Keras 3 puts CudnnRNNV3 ops
    straight into a graph traced where a GPU is visible; such a SavedModel fails on CPU-only
    serving ("No OpKernel was registered to support Op 'CudnnRNNV3'", keras-team/keras#18504)
    and has no ONNX mapping. `use_cudnn` is not part of a layer's config, so model.keras is
    unaffected and still picks cuDNN wherever it is loaded."""
    switched = []
    for layer in model._flatten_layers(include_self=False, recursive=True):  # ensemble members too
        for rnn in (layer, getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)):
            if rnn is not None and getattr(rnn, "use_cudnn", False) not in (False, None):
                switched.append((rnn, rnn.use_cudnn))
                rnn.use_cudnn = False
    try:
        yield switched
    finally:
        for rnn, value in switched:
            rnn.use_cudnn = value


def _remove_stale_temporaries(out: Path) -> None:
    """Delete `.DIR.tmp-PID` siblings whose writer process is gone (a killed fit)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, owned by someone else
            pass


def write_onnx(saved_model: Path, path: Path, serve, prep, layer_names: list[str]) -> str | None:
    """Convert the SavedModel's serving_default to ONNX at `path` and check it with
    onnxruntime against `serve` (within 1e-4). Returns None when written, else the reason
    (and no file). Converting the SavedModel rather than the Keras model keeps the named
    input and outputs (label included) and the scaling constants inside the graph."""
    import logging

    import numpy as np

    try:
        import onnxruntime
        from tf2onnx import tf_loader
    except ImportError as e:
        return (f"ONNX skipped: {e.name} is not installed (pip install 'cellpick[onnx]'); "
                f"the export has no model.onnx")
    unsupported: list[tuple[str, str]] = []  # (TF node, op type) tf2onnx has no mapping for

    class _Collect(logging.Handler):
        def emit(self, record):
            if "is not supported" in str(record.msg) and len(record.args or ()) == 2:
                unsupported.append((str(record.args[0]), str(record.args[1])))

    log = logging.getLogger("tf2onnx")
    handler, level, propagate = _Collect(level=logging.ERROR), log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.ERROR)
    log.propagate = False  # the reason goes to `warn`, not as log lines on stderr
    try:
        internals.patch_tf2onnx()  # the numpy 2 fixes Keras applies too
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(saved_model), None, None, signatures=["serving_default"],
            return_initialized_tables=True, return_tensors_to_rename=True)
        internals.tf2onnx_convert(graph_def, name="cellpick", input_names=inputs,
                                  output_names=outputs, tensors_to_rename=renames,
                                  initialized_tables=tables, output_path=str(path))
        if unsupported:
            raise ValueError("unsupported TensorFlow ops")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = _probe_input(prep)
        got = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {prep.input_name: x})))
        want = {k: v.numpy() for k, v in serve(x).items()}
        for name, ref in want.items():
            if name not in got:
                raise ValueError(f"output '{name}' is missing from the ONNX graph")
            if ref.dtype.kind in "SOU":
                same = [a.decode() if isinstance(a, bytes) else str(a) for a in ref] == [str(a) for a in got[name]]
            else:
                same = np.allclose(got[name], ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))
            if not same:
                raise ValueError(f"onnxruntime's '{name}' differs from the SavedModel's by more than 1e-4")
    except Exception as e:  # noqa: BLE001 - ONNX is an extra: report and export without it
        path.unlink(missing_ok=True)
        if unsupported:
            layers = sorted({layer for node, _ in unsupported for layer in layer_names
                             if _in_scope(layer, node)})
            where = f"layer(s) {', '.join(layers)}" if layers else "the graph"
            ops = ", ".join(sorted({op for _, op in unsupported}))
            return (f"ONNX skipped: {where} use(s) TensorFlow ops tf2onnx cannot convert ({ops}); "
                    f"the export has no model.onnx")
        return f"ONNX skipped: {type(e).__name__}: {str(e)[:300]}; the export has no model.onnx"
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
    return None


def _in_scope(layer: str, node: str) -> bool:
    """Whether a TF node name lies in a Keras layer's name scope (Keras may add `_1`)."""
    parts = node.split("/")
    return layer in parts or f"{layer}_1" in parts


def _probe_input(prep):
    """A few raw inputs around the training statistics; padded models also get zero-padded
    tails, so the mask is part of the check."""
    import numpy as np

    rng = np.random.default_rng(0)
    mean = np.asarray(prep.x_mean, dtype="float64").reshape(-1)
    std = np.sqrt(np.asarray(prep.x_var, dtype="float64").reshape(-1)) + 1e-3
    x = mean + std * rng.standard_normal((4, *prep.input_shape))
    x[x == 0] = 1e-3
    if prep.masked:
        steps = prep.input_shape[0]
        x[1, steps - max(1, steps // 4):] = 0.0
        x[2, max(1, steps // 2):] = 0.0
    return x.astype("float32")


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
    from cellpick._quiet import tensorflow

    meta = read_meta(model_dir)
    tf = tensorflow()
    loaded = tf.saved_model.load(str(Path(model_dir) / "saved_model"))
    fn = loaded.signatures["serving_default"]
    fn._cellpick_keepalive = loaded  # the signature needs its object alive
    return meta, fn


# -- the fit's export stage: cellpick.json's contents, the model logged -------------------
@dataclass(frozen=True)
class Exported:
    """Where the winner went: the export directory and its MLflow model."""

    path: Path
    model_uri: str
    registered: dict[str, str] | None  # {"name", "version", "uri"} with --register


def versions() -> dict[str, str]:
    """Versions of the packages an export depends on (cellpick.json's `versions`)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("cellpick", "tensorflow", "keras", "keras-tuner", "mlflow", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def fit_meta(plan, winner, record: FitRecord, test, *,
             tracking: dict[str, Any]) -> dict[str, Any]:
    """cellpick.json's contents (write_export adds the schema version, onnx and checksums);
    its `verdict` is `record.to_dict()`. `tracking`: tracking_uri, experiment, parent_run_id,
    model_uri, registered_model."""
    ds, prep = plan.dataset, plan.prep
    return {
        "task": ds.task, "layout": ds.layout,
        "columns": {"target": ds.target, "time": ds.time, "id": ds.id, "features": ds.features,
                    "text": ds.text},
        "input": _input_meta(prep, winner.model),
        "outputs": (["probabilities", "label"] if ds.task == "classify"
                    else ["forecast"] if ds.task == "forecast" else ["prediction"]),
        "lookback": prep.lookback, "horizon": prep.horizon, "season": plan.season, "freq": ds.freq,
        "classes": ds.classes, "masked": prep.masked,
        "scaling": {"x_mean": prep.x_mean, "x_var": prep.x_var, "y_mean": prep.y_mean,
                    "y_std": prep.y_std},
        "winner": {"cell": record.winner, "config": winner.config,
                   "n_params": int(winner.model.count_params()), "models": len(winner.models)},
        "model": {"kind": winner.kind, "name": winner.cell,
                  **{k: winner.baseline[k] for k in ("library", "contains_training_data")
                     if k in winner.baseline}},
        "scores": {"metric": plan.metric, "greater_is_better": plan.greater_is_better,
                   "val": record.exported_val_score, "test": test.winner},
        "verdict": record.to_dict(), "versions": versions(),
        "mlflow": tracking,
    }


def _input_meta(prep, model) -> dict[str, Any]:
    """cellpick.json's `input`: the cells' input, or a history graph's (graphs/series.py)."""
    from cellpick.models.graphs.series import input_meta, is_history

    return input_meta(model) if is_history(model) else prep.input_meta()


def export_fit(plan, winner, record: FitRecord, test, *, tracker, report_html: str,
               warn: Callable[[str], None] | None = None) -> Exported:
    """Log the winner on the fit's MLflow run (and register it with --register), then write
    the export directory (--out) with its cellpick.json."""
    from cellpick.data.prepared import split_arrays
    from cellpick.models.graphs.series import example as history_example
    from cellpick.models.graphs.series import is_history

    config = plan.config
    # A history graph's example is a dict {"history", ["series_id"]} (tracker.log_model must
    # accept it); the cells' is two windows.
    example = (history_example(winner.model, plan.prep) if is_history(winner.model)
               else split_arrays(plan.prep, "val")[0][:2])
    logged = tracker.log_model(winner.model, example, register=config.register, verdict={
        "winner": winner.cell, "metric": plan.metric,
        "val_score": record.exported_val_score, "test_score": test.winner,
        "beats_best_baseline": record.beats_best_baseline,
        "best_baseline": record.best_baseline, "reason": record.reason,
        "parent_run_id": tracker.parent_id, "config": json.dumps(winner.config)})
    meta = fit_meta(plan, winner, record, test, tracking={
        "tracking_uri": tracker.uri, "experiment": tracker.experiment_name,
        "parent_run_id": tracker.parent_id, "model_uri": logged["model_uri"],
        "registered_model": logged["registered"]})
    out = write_export(config.out, winner.model, plan.prep, meta, report_html=report_html,
                       onnx=config.onnx, warn=warn)
    tracker.tag_export(out)
    return Exported(out, logged["model_uri"], logged["registered"])
