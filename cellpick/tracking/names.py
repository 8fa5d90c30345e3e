"""The names and keys the MLflow UI shows: run names short enough for its run-name column
(trials, verdict units, baselines, the verdict view's summary runs, data-level candidates, the
fit), and the summary metric keys that sort like the leaderboard."""
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
    (rolling origin 3 for a series), seed (repetition) 2; both counted from 1."""
    return f"v-{_config_name(config)}-f{fold + 1}s{repeat + 1}"


def baseline_run_name(name: str) -> str:
    return f"b-{name}"


def verdict_run_name(rank: int, kind: str, name: str, config: dict[str, Any] | None = None,
                     standing: str = "") -> str:
    """'#1 rnn-u16-l2 (winner)', '#2 b-ridge': a summary run of the verdict view, its rank in
    the leaderboard first (so charts and the name column read in that order)."""
    what = _config_name({"cell": name, **config}) if kind == "cell" and config else (
        name if kind == "cell" else baseline_run_name(name))
    words = _STANDING_WORDS.get(standing, "").split(",")[0].replace("practically ", "") \
        if kind == "cell" else ""
    return f"#{rank} {what}" + (f" ({words})" if words else "")


# How a summary run's name and verdict column say its standing (verdict.standing).
_STANDING_WORDS = {"winner": "winner", "best mean": "best mean", "open": "within noise",
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
    """A summary run's cross-validated mean, e.g. 'cv_mae' ('_lower', '_upper': its 95% interval)."""
    return f"cv_{metric}"


def summary_key(metric: str) -> str:
    """The per-run summary metric, e.g. 'best_val_mae': sorting by it ranks like the leaderboard."""
    return f"best_val_{metric}"
