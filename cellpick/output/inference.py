"""Apply an export to new raw data, using only the export directory and TensorFlow."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellpick.data.detection import load
from cellpick.data.reading import read_table
from cellpick.errors import DataError, ExportError
from cellpick.output.export import load_serving


def predict(model_dir: str | Path, data: str | Path) -> pd.DataFrame:
    """Predictions for `data` as a table: a series gives `horizon` rows per series, sequences
    and text one row per input sample, in input order (README.md, "Using the export")."""
    meta, fn = load_serving(model_dir)
    if meta["layout"] == "series" and (meta.get("input") or {}).get("kind") == "history":
        return _predict_history(meta, fn, data)
    if meta["layout"] == "series":
        return _predict_series(meta, fn, data)
    if meta["layout"] == "text":
        return _predict_text(meta, fn, data)
    return _predict_sequences(meta, fn, data)


def _call(fn, name: str, x: np.ndarray, batch: int = 1024) -> dict[str, np.ndarray]:
    """The serving function over `x` in batches (strings for text, else float32)."""
    import tensorflow as tf

    dtype = tf.string if x.dtype == object else tf.float32
    parts = [{k: v.numpy() for k, v in fn(**{name: tf.constant(x[i:i + batch], dtype=dtype)}).items()}
             for i in range(0, len(x), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def _predict_series(meta, fn, data) -> pd.DataFrame:
    cols = meta["columns"]
    ds = load(data, target=cols["target"], id=cols["id"], time=cols["time"], task="forecast",
              forecast_hint=True)
    missing = [c for c in cols["features"] if c not in ds.frame.columns]
    if missing:
        raise DataError(f"{Path(data).name}: column(s) {missing} used in training are missing; "
                        f"the file needs the columns {cols['features']}")
    lookback, horizon = meta["lookback"], meta["horizon"]
    groups = list(ds.frame.groupby(cols["id"], sort=False)) if cols["id"] else [(None, ds.frame)]
    windows, keys, last_times = [], [], []
    for key, g in groups:
        if len(g) < lookback:
            where = f" for series {key!r}" if key is not None else ""
            raise DataError(f"{Path(data).name}: {len(g)} rows{where}, but the model needs the last "
                            f"{lookback} steps (its lookback); provide a longer history")
        windows.append(g[cols["features"]].to_numpy(dtype="float32")[-lookback:])
        keys.append(key)
        last_times.append(g[cols["time"]].iloc[-1] if cols["time"] else None)
    forecast = _call(fn, meta["input"]["name"], np.stack(windows))["forecast"]
    if forecast.shape != (len(windows), horizon):  # a block (series, horizon), even at horizon 1
        raise ExportError(f"the export's forecast has shape {forecast.shape}; its cellpick.json "
                          f"promises ({len(windows)}, {horizon}) (series, horizon): the export "
                          f"does not match its metadata, re-run the fit")
    return _rows(meta, keys, last_times, forecast)


def _predict_history(meta, fn, data) -> pd.DataFrame:
    """A history export (models/graphs/series.py): every series of the file from its first row
    (the target read as float32, as the fit stored it), in one call, NaN right-padded."""
    import tensorflow as tf

    cols, inp = meta["columns"], meta["input"]
    ds = load(data, target=cols["target"], id=cols["id"], time=cols["time"], task="forecast",
              forecast_hint=True)
    if cols["target"] not in ds.frame.columns:
        raise DataError(f"{Path(data).name}: the target column '{cols['target']}' is missing; "
                        f"this model forecasts from the series' own history")
    groups = list(ds.frame.groupby(cols["id"], sort=False)) if cols["id"] else [(None, ds.frame)]
    key_spec, need = inp.get("series_key"), int(inp.get("min_history", 1))
    known = set(key_spec["keys"]) if key_spec else set()
    unknown = [str(k) for k, _ in groups if key_spec and str(k) not in known]
    if unknown:
        raise DataError(f"{Path(data).name}: series {unknown[:5]} were not in the training data; "
                        f"this model has one fitted model per series ({sorted(known)[:5]}...)")
    histories, keys, last_times = [], [], []
    for key, g in groups:
        y = g[cols["target"]].to_numpy(dtype="float32").astype("float64")
        where = f" for series {key!r}" if key is not None else ""
        if not np.isfinite(y).all():
            raise DataError(f"{Path(data).name}: missing values in '{cols['target']}'{where}; "
                            f"this model reads the whole series: fill or drop them")
        if len(y) < need:
            raise DataError(f"{Path(data).name}: {len(y)} rows{where}, but the model needs at "
                            f"least {need}; provide a longer history")
        histories.append(y)
        keys.append(key)
        last_times.append(g[cols["time"]].iloc[-1] if cols["time"] else None)
    x = np.full((len(histories), max(len(h) for h in histories)), np.nan)
    for i, h in enumerate(histories):
        x[i, : len(h)] = h
    args = {inp["name"]: tf.constant(x, tf.float64)}
    if key_spec:
        args[key_spec["name"]] = tf.constant([str(k) for k in keys])
    forecast = fn(**args)["forecast"].numpy()
    horizon = meta["horizon"]
    if forecast.shape != (len(histories), horizon):
        raise ExportError(f"the export's forecast has shape {forecast.shape}; its cellpick.json "
                          f"promises ({len(histories)}, {horizon}) (series, horizon): the export "
                          f"does not match its metadata, re-run the fit")
    return _rows(meta, keys, last_times, forecast)


def _rows(meta, keys, last_times, forecast) -> pd.DataFrame:
    """horizon rows per series: id, step, future time stamp when known, prediction."""
    cols, horizon, freq = meta["columns"], meta["horizon"], meta.get("freq")
    rows = []
    for key, last, values in zip(keys, last_times, forecast):
        stamps = _future(last, freq, horizon)
        for step in range(horizon):
            row = {} if key is None else {cols["id"]: key}
            row["step"] = step + 1
            if stamps is not None:
                row[cols["time"]] = stamps[step]
            row["prediction"] = float(values[step])
            rows.append(row)
    return pd.DataFrame(rows)


def _future(last, freq: str | None, horizon: int):
    if last is None or not freq:
        return None
    try:
        stamps = pd.date_range(pd.Timestamp(last), periods=horizon + 1, freq=freq)[1:]
    except (ValueError, TypeError):
        return None
    return [s.isoformat() if (s.hour or s.minute or s.second) else s.date().isoformat() for s in stamps]


def _predict_sequences(meta, fn, data) -> pd.DataFrame:
    cols = meta["columns"]
    frame = read_table(data)
    missing = [c for c in cols["features"] + ([cols["id"]] if cols["id"] else []) if c not in frame.columns]
    if missing:
        raise DataError(f"{Path(data).name}: column(s) {missing[:5]} used in training are missing; "
                        f"the file needs {cols['features'][:5]}{'...' if len(cols['features']) > 5 else ''}")
    steps, n_feat = meta["input"]["shape"]  # steps is None for long: any length
    bad = frame[cols["features"]].apply(pd.to_numeric, errors="coerce").isna() & frame[cols["features"]].notna()
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise DataError(f"{Path(data).name}: column '{cols['features'][c]}' row {r + 1} is not a "
                        f"number; sequences must be numeric")
    values = frame[cols["features"]].apply(pd.to_numeric, errors="coerce")
    if meta["layout"] == "wide":
        x = values.to_numpy(dtype="float32")[:, :, None]
        ids = None
    else:
        keys = list(dict.fromkeys(frame[cols["id"]]))  # input order of samples
        if cols["time"]:
            order = pd.to_numeric(frame[cols["time"]], errors="coerce")
            values = values.loc[order.sort_values(kind="stable").index]
        position = {k: i for i, k in enumerate(keys)}
        blocks = {key: g.to_numpy(dtype="float32")
                  for key, g in values.groupby(frame.loc[values.index, cols["id"]], sort=False)}
        longest = max((len(b) for b in blocks.values()), default=0)
        if steps is not None and longest > steps:
            key = next(k for k, b in blocks.items() if len(b) == longest)
            raise DataError(f"{Path(data).name}: sample {key!r} has {longest} steps; the model "
                            f"takes at most {steps}")
        # Zero right-padding to the longest sample here: the model masks it.
        x = np.zeros((len(keys), steps or longest, n_feat), dtype="float32")
        for key, block in blocks.items():
            x[position[key], : len(block)] = block
        ids = keys
    if np.isnan(x).any():
        raise DataError(f"{Path(data).name}: missing values in the sequences; fill or drop them")
    out = _call(fn, meta["input"]["name"], x)
    table = pd.DataFrame({cols["id"]: ids}) if ids is not None else pd.DataFrame(index=range(len(x)))
    return _table(meta, out, table, len(x))


def _predict_text(meta, fn, data) -> pd.DataFrame:
    """One row per input row, in input order; an empty text is read as ''."""
    col = meta["columns"]["text"]
    frame = read_table(data)
    if col not in frame.columns:
        raise DataError(f"{Path(data).name}: text column '{col}' used in training is missing; "
                        f"columns are {list(frame.columns)[:8]}")
    texts = frame[col].fillna("").astype(str).to_numpy(dtype=object)
    out = _call(fn, meta["input"]["name"], texts)
    return _table(meta, out, pd.DataFrame(index=range(len(texts))), len(texts))


def _table(meta, out: dict[str, np.ndarray], table: pd.DataFrame, n: int) -> pd.DataFrame:
    if meta["task"] == "classify":
        labels = out["label"]
        table["prediction"] = [v.decode() if isinstance(v, bytes) else v.item() for v in labels]
        for j, c in enumerate(meta["classes"]):
            table[f"probability_{c}"] = out["probabilities"][:, j]
    else:
        table["prediction"] = out["prediction"].reshape(n, -1)[:, 0]
    return table.reset_index(drop=True)
