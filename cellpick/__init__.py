"""cellpick: which recurrent cell, and how wide, for my data?

    import cellpick
    result = cellpick.fit("data.csv", horizon=12, lookback=24)
    result.winner, result.test_score, result.export_path

Heavy libraries (TensorFlow, MLflow) are imported only when a function needs them. `fit` and
`predict` import their modules when called: every `import cellpick.<module>` runs this file
first, and should not load the whole pipeline. The code map: docs/README.md.
"""
from cellpick.config import FitConfig
from cellpick.errors import CellpickError, ConfigError, DataError, ExportError

__version__ = "0.1.0"
__all__ = ["fit", "predict", "FitConfig", "CellpickError", "ConfigError", "DataError", "ExportError"]


def fit(data=None, **options):
    """Search cells and widths on `data`, decide, export; returns a FitResult."""
    from cellpick.pipeline import fit as _fit

    return _fit(data, **options)


def predict(model_dir, data):
    """Predictions of an export for a CSV, as a pandas DataFrame."""
    from cellpick.output.inference import predict as _predict

    return _predict(model_dir, data)
