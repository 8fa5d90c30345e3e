"""The names and keys the MLflow UI shows: run names short enough for its run-name column
(trials, verdict units, baselines, the verdict view's summary runs, data-level candidates, the
fit), and the metric names each role's runs show (`shown_metric`), each saying what the value
is: cross-validated (cv_), one fold's score (fold_), the search split's validation (search_val_).
Folds and seeds are counted from 1 in names and params alike."""
from __future__ import annotations

from typing import Any


def trial_run_name(n: int, config: dict[str, Any]) -> str:
    """'t03-lstm-u128-l2 d0.2 lr3e-3 bi': trial 3 of the fit, its cell, units and layers,
    then its other searched values (a flag by its short name when on), so trials of one
    width read apart; the data-level values, the same in every trial, are left out."""
    rest = " ".join(_searched_words(config))
    return f"t{n:02d}-{_config_name(config)}" + (f" {rest}" if rest else "")


# Short names of searched values in trial run names; others use their first 3 letters.
_SHORT = {"dropout": "d", "learning_rate": "lr", "bidirectional": "bi", "linear": "lin",
          "log": "log", "scaling": ""}
_SHORT_VALUES = {"relative": "rel", "global": "glob"}
# Chosen once by the data-level stage (datalevel.py) and fixed in every trial.
DATA_LEVEL = ("scaling", "linear", "log", "lookback")
# What the trials view shows as columns, when the search varies it.
SEARCHED_COLUMNS = ("dropout", "learning_rate", "scaling", "linear", "log", "bidirectional")


def _searched_words(config: dict[str, Any]) -> list[str]:
    words = []
    for key, value in config.items():
        if key in ("cell", "units", "layers", "patch", *DATA_LEVEL) or key.startswith("tuner/"):
            continue  # data-level values are the same in every trial (its `data` runs say them)
        short = _SHORT.get(key, key[:3])
        if isinstance(value, bool):
            words += [short or key] if value else []
        elif isinstance(value, float):
            text = f"{value:g}" if value == 0 or abs(value) >= 0.01 else f"{value:.0e}".replace("e-0", "e-")
            words.append(f"{short}{text}")
        else:
            words.append(f"{short}{_SHORT_VALUES.get(str(value), str(value)[:6])}")
    return words


def unit_run_name(config: dict[str, Any], fold: int, repeat: int) -> str:
    """'v-gru-u64-l1-f3s2': the verdict's training of a cell's best configuration on fold 3
    (rolling origin 3 for a series), seed (repetition) 2; `fold` and `repeat` are the 0-based
    indices, shown counted from 1 (as the run's params `fold` and `repeat` are)."""
    return f"v-{_config_name(config)}-f{fold + 1}s{repeat + 1}"


def baseline_run_name(name: str) -> str:
    return f"b-{name}"


def fold_run_name(name: str, fold: int) -> str:
    """'b-arima-f2': a contestant on fold 2 (0-based `fold`), as a distributed worker ran it."""
    return f"b-{name}-f{fold + 1}"


def verdict_run_name(rank: int, kind: str, name: str, config: dict[str, Any] | None = None,
                     places: tuple[str, ...] = ()) -> str:
    """'#1 first: b-arima', '#4 best cell, exported: lstm-u16-l2', '#2 b-ridge': a summary run
    of the verdict view, its rank in the leaderboard first (charts and the name column read
    in that order), then its places in the decision (`PLACES`: first overall, best cell,
    exported) before its name, so a cut-off name column still shows it."""
    what = _config_name({"cell": name, **config}) if kind == "cell" and config else (
        name if kind == "cell" else baseline_run_name(name))
    words = ", ".join(PLACES[p] for p in ("first", "best", "exported") if p in places)
    return f"#{rank} " + (f"{words}: " if words else "") + what


# A summary run's places in the decision, as its name says them (verdict_run_name).
PLACES = {"first": "first", "best": "best cell", "exported": "exported"}


# How a summary run's name and verdict column say its standing (verdict.standing).
STANDING_WORDS = {"winner": "winner", "best mean": "best mean", "open": "within noise",
                   "worse": "practically worse", "equivalent": "equivalent, dearer",
                   "not better": "not better, dearer", "failed": "failed"}


def data_run_name(values: dict[str, Any]) -> str:
    """'d-rel-log-lin-lb24': a data-level candidate: scaling (rel, diff, glob), logs and the
    linear path when on, the lookback; 'd-p6' a patch size."""
    parts = []
    if "scaling" in values:
        parts.append({"relative": "rel", "global": "glob"}.get(values["scaling"], values["scaling"]))
    parts += [n for n, key in (("log", "log"), ("lin", "linear")) if values.get(key)]
    if "lookback" in values:
        parts.append(f"lb{values['lookback']}")
    if "patch" in values:
        parts.append(f"p{values['patch']}")
    return "d-" + "-".join(parts)


def fit_run_name(stem: str, when) -> str:
    """'fit-airline-1127-1832': the parent run; the data file's stem cut to 8 characters."""
    return f"fit-{stem[:8].rstrip('_-. ') or 'data'}-{when.strftime('%m%d-%H%M')}"


def _config_name(config: dict[str, Any]) -> str:
    return f"{config['cell']}-u{config['units']}-l{config['layers']}"


def cv_key(metric: str) -> str:
    """A cross-validated mean over every fold x seed unit, e.g. 'cv_mae' (summary and baseline
    runs; '_lower', '_upper': the 95% interval of that mean)."""
    return f"cv_{metric}"


def summary_key(metric: str) -> str:
    """The training records' key for the validation score at the epoch early stopping kept
    ('best_val_mae'); MLflow shows it as `search_key` on trials (`shown_metric`)."""
    return f"best_val_{metric}"


def search_key(metric: str) -> str:
    """A trial's score on the search split's validation part, e.g. 'search_val_mae': sorting
    trials by it ranks them as the leaderboard does."""
    return f"search_val_{metric}"


def fold_key(metric: str) -> str:
    """One fold x seed unit's score on its fold's scoring block, e.g. 'fold_mae'."""
    return f"fold_{metric}"


def shown_metric(role: str | None, key: str, metric: str | None) -> str | None:
    """The name a run of `role` shows for a record's metric `key` (None: not logged, as
    another metric of the run holds the same value). Records keep their own keys (`score`,
    `best_val_<m>`, `fold_score`, `unit_score`); MLflow shows what each value is:
      search (the parent)  val_<m> -> winner_cv_<m> (the winner's cross-validated mean)
      trial    best_val_<m> -> search_val_<m>; score -> (the same value, not logged)
      verdict  score -> fold_<m>; best_val_<m> -> early_stop_val_<m> (the fold's inner
               validation part, which stopped training)
      baseline score -> cv_<m>; fold_score -> fold_<m>; best_val_<m> -> (= cv_<m>)
      data     score -> median_fold_<m> (median over its reference folds); unit_score ->
               fold_<m>; best_val_<m> -> (= median_fold_<m>)
      fold     score -> fold_<m> (a contestant on one fold, on a distributed worker)
    and every run's per-epoch `learning_rate` (the value in effect, after decay) ->
    epoch_learning_rate, apart from the `learning_rate` param the search chose."""
    if key == "learning_rate":
        return "epoch_learning_rate"
    if metric is None:
        return key
    table = {
        "search": {f"val_{metric}": f"winner_cv_{metric}"},
        "trial": {summary_key(metric): search_key(metric), "score": None},
        "verdict": {"score": fold_key(metric), summary_key(metric): f"early_stop_val_{metric}"},
        "baseline": {"score": cv_key(metric), "fold_score": fold_key(metric),
                     summary_key(metric): None},
        "data": {"score": f"median_fold_{metric}", "unit_score": fold_key(metric),
                 summary_key(metric): None},
        "fold": {"score": fold_key(metric)},
    }.get(role or "", {})
    return table.get(key, key)
