"""The names cellpick writes into MLflow: run roles, tags, the store's default URI and views."""
from enum import StrEnum


class Role(StrEnum):
    """What a run is, in its `cellpick.role` tag."""

    SEARCH = "search"  # the fit's parent run
    DATA = "data"  # a data-level candidate
    TRIAL = "trial"  # a search trial
    VERDICT = "verdict"  # a verdict unit: cell x fold x seed
    BASELINE = "baseline"  # a contestant on every fold
    FOLD = "fold"  # a contestant on one fold, run by a distributed worker
    SUMMARY = "summary"  # a verdict view's row: a cell or contestant's cross-validated mean
    OLD_SUMMARY = "cell"  # the summary role in stores written before it was renamed


DEFAULT_URI = "sqlite:///mlruns/mlflow.db"

# -- every tag cellpick writes or reads (no other module spells one) -------------------------
ROLE = "cellpick.role"  # search (the parent run), data, trial, verdict, baseline, fold, summary
SUMMARY_ROLES = (Role.SUMMARY, Role.OLD_SUMMARY)
KIND_TAG = "cellpick.kind"  # a summary run's row: cell or baseline
VERDICT_TAG = "cellpick.verdict"  # the parent: the verdict's headline; a summary run: its standing
PLACE_TAG = "cellpick.place"  # a summary run's part: first, best cell, exported (comma-joined)
FIT_TAG = "cellpick.fit"  # the parent's run id, on it and its summary runs (the verdict view)
CHOSEN_TAG = "cellpick.chosen"  # on the data run whose values the data-level stage chose
OUTCOME_TAG = "cellpick.outcome"  # a data run: the choice rule's outcome for it
CHOSEN_PREFIX = "chosen."  # parent params: the data-level values every cell used
ERROR_TAG = "cellpick.error"  # why a run failed or was killed
TRIAL_ID_TAG = "cellpick.trial_id"  # keras-tuner's trial id of a trial run
FIT_KEY_TAG = "cellpick.fit_key"  # identifies "the same fit" for --resume
TASK_TAG = "cellpick.task"
LAYOUT_TAG = "cellpick.layout"
WINNER_TAG = "cellpick.winner"  # the winning cell; cellpick.winner.<param> its configuration
DECISION_TAG = "cellpick.decision"  # better | equivalent | undecided (verdict.decide)
BEATS_BASELINE_TAG = "cellpick.beats_best_baseline"  # the winner beats the best baseline
EXPORT_TAG = "cellpick.export"  # the export directory
REGISTERED_MODEL_TAG = "cellpick.registered_model"
REGISTERED_VERSION_TAG = "cellpick.registered_version"
REGISTERED_URI_TAG = "cellpick.registered_model_uri"
WORKER_TAG = "cellpick.worker"  # the worker that ran a distributed trial
DISTRIBUTED_TAG = "cellpick.distributed"  # 'chief' on a distributed fit's parent run
DISTRIBUTED_KEY_TAG = "cellpick.distributed_key"  # finds the chief's parent run for workers
CELLS_DONE_TAG = "cellpick.cells_done"  # cells whose distributed search the chief has closed
ORACLE_TAG = "cellpick.oracle"  # the chief's HOST:PORT
READY_PREFIX = "cellpick.ready."  # + a worker's id, on the chief's run: that worker has joined
SERVING_TAG = "cellpick.serving"  # the chief's open stage for workers: JSON {n, stage, port, done}
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
RUN_COLOR_TAG = "mlflow.runColor"
NOTE_TAG = "mlflow.note.content"  # the run's description in the UI
DATA_CONTEXT_TAG = "mlflow.data.context"
UI_PORT = 5000
VIEW_ID = "cellpick"  # the saved view `mlflow.sharedViewState.cellpick` on each experiment
VERDICT_VIEW_ID = "cellpick-verdict"  # the latest fit's verdict: its cells and baselines
_VIEW_TAG = "mlflow.sharedViewState."
# How cellpick's experiment description starts: one that starts otherwise is the user's.
_DESCRIPTION_START = "Latest fit, "
# The experiment's kind, for MLflow UIs that choose the GenAI or model-training layout by it
# (MLflow 3.17's own UI ignores it; docs/mlflow.md, "Why not MLflow's home page").
_KIND_TAG, _KIND = "mlflow.experimentKind", "custom_model_development"
