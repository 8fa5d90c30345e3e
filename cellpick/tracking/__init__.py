"""The only code that knows MLflow objects, tag names and run roles.

  tags          Role (a run's role), every tag name, the default store URI, the views' ids
  store         which store a fit uses (--tracking-uri, MLFLOW_TRACKING_URI, the default
                sqlite:///mlruns/mlflow.db), MLflow kept quiet
  tracker       Tracker: the parent run, child runs, metrics, tags, the fit read back
  verdict_view  the saved views, the verdict's summary runs and picture (a Tracker mixin)
  registry      the winner's MLflow model and registered version (a Tracker mixin)
  names         run names and the metric names each role shows (cv_, fold_, search_val_)
  views         the views' state, a fit's URLs, a past fit read back (`load_fit`)
  ui            `cellpick ui`: MLflow's UI behind a proxy that opens Model training
Other packages import from here (`cellpick ui` from tracking.ui). What a fit puts in MLflow and
why: docs/mlflow.md.
"""
from cellpick.tracking.names import (
    DATA_LEVEL,
    PLACES,
    SEARCHED_COLUMNS,
    baseline_run_name,
    cv_key,
    data_run_name,
    fit_run_name,
    fold_key,
    fold_run_name,
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
    READY_PREFIX,
    SERVING_TAG,
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
    "ORACLE_TAG", "PLACES", "READY_PREFIX", "SEARCHED_COLUMNS", "SERVING_TAG", "TASK_TAG", "TRIAL_ID_TAG", "UI_PORT",
    "VERDICT_VIEW_ID", "VIEW_ID", "WORKER_TAG", "ChildRun", "FitState", "Role", "Tracker",
    "_quiet_mlflow", "baseline_run_name", "cv_key", "data_run_name", "fit_key", "fit_run_name",
    "fit_url", "fit_urls", "fold_key", "fold_run_name", "load_fit", "parse_param", "resolve_uri", "run_url",
    "runs_url", "search_key", "shown_metric", "summary_key", "trial_run_name", "unit_run_name",
    "verdict_run_name", "verdict_view_state", "view_state"]
