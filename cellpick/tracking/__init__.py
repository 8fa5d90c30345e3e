"""Everything that talks to MLflow: the Tracker (this module), the run names the UI shows
(names.py), the saved views, their URLs and reading a past fit back (views.py).

One parent run per fit (tag cellpick.role=search) is the active fluent run for the whole
fit; trials, verdict seeds and baselines are child runs created with the client API
(tag mlflow.parentRunId), so nothing depends on a stack of active runs. After the verdict,
one summary run per cell and per baseline (role summary; `cell` in stores written before)
carries its cross-validated mean and interval: the verdict view (VERDICT_VIEW_ID) shows them
under the parent, with a picture of every mean and interval logged on the parent.

What the MLflow UI shows is decided here too: run names short enough for the run-name
column, one colour per cell (mlflow.runColor), metric names that say what each value is
(names.shown_metric: cv_, fold_, search_val_), summary metrics rounded to 4 significant
digits, and two saved views of the latest fit, opened by `runs_url`: its verdict (cells and
baselines) and its trials (the UI reads `viewStateShareKey`, `compareRunsMode` and
`workflowType` from the URL).

Store: --tracking-uri, else MLFLOW_TRACKING_URI, else the embedded default
sqlite:///mlruns/mlflow.db with artifacts under mlruns/artifacts/. The URI is always set
explicitly: MLflow 3 otherwise falls back to an old ./mlruns file store when one exists.
"""
from cellpick.tracking.names import (
    DATA_LEVEL,
    ROLES,
    SEARCHED_COLUMNS,
    baseline_run_name,
    cv_key,
    data_run_name,
    fit_run_name,
    fold_key,
    search_key,
    shown_metric,
    summary_key,
    trial_run_name,
    unit_run_name,
    verdict_run_name,
)
from cellpick.tracking.store import _quiet_mlflow, resolve_uri
from cellpick.tracking.tags import (
    CELLS_DONE_TAG,
    DEFAULT_URI,
    DISTRIBUTED_KEY_TAG,
    DISTRIBUTED_TAG,
    FIT_KEY_TAG,
    LAYOUT_TAG,
    ORACLE_TAG,
    TASK_TAG,
    TRIAL_ID_TAG,
    UI_PORT,
    VERDICT_VIEW_ID,
    VIEW_ID,
    WORKER_TAG,
    Role,
)
from cellpick.tracking.tracker import ChildRun, FitState, Tracker, fit_key, parse_param
from cellpick.tracking.views import (
    fit_url,
    fit_urls,
    load_fit,
    run_url,
    runs_url,
    verdict_view_state,
    view_state,
)
from cellpick.vocab import BASELINE_COLOR, CELL_COLORS, DATA_COLOR, FIT_COLOR

__all__ = [
    "BASELINE_COLOR", "CELLS_DONE_TAG", "CELL_COLORS", "DATA_COLOR", "DATA_LEVEL", "DEFAULT_URI",
    "DISTRIBUTED_KEY_TAG", "DISTRIBUTED_TAG", "FIT_COLOR", "FIT_KEY_TAG", "LAYOUT_TAG",
    "ORACLE_TAG", "ROLES", "SEARCHED_COLUMNS", "TASK_TAG", "TRIAL_ID_TAG", "UI_PORT",
    "VERDICT_VIEW_ID", "VIEW_ID", "WORKER_TAG", "ChildRun", "FitState", "Role", "Tracker",
    "_quiet_mlflow", "baseline_run_name", "cv_key", "data_run_name", "fit_key", "fit_run_name",
    "fit_url", "fit_urls", "fold_key", "load_fit", "parse_param", "resolve_uri", "run_url",
    "runs_url", "search_key", "shown_metric", "summary_key", "trial_run_name", "unit_run_name",
    "verdict_run_name", "verdict_view_state", "view_state"]
