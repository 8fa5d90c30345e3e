"""FitConfig: every `cellpick fit` option in one dataclass, and recipe (TOML) loading.

Precedence: built-in defaults < recipe values < command-line options. Recipe keys are the
option names with `_` for `-`; unknown keys and wrong types are rejected with the file, the
line and the list of valid keys.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpick.errors import ConfigError
from cellpick.vocab import CELLS, CONTESTANTS, SCALINGS, TASKS

TUNERS = ("random", "bayesian", "hyperband", "grid")
STRATEGIES = ("none", "mirrored")
ROLES = ("chief", "worker")
EXPORTS = ("cell", "best")


def _cli(help: str, *decls: str, type: type | None = None) -> dict[str, Any]:
    """How a FitConfig field appears in `cellpick fit`: its help, its flag declarations when
    not --NAME, and its command-line type when it differs from the field's (the CLI builds its
    options from these; see cli.py)."""
    return {"help": help, "decls": decls, "type": type}


def _opt(default: Any, help: str, *decls: str, type: type | None = None) -> Any:
    meta = _cli(help, *decls, type=type)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class FitConfig:
    """Options of one fit. Construct, then call `validate()` (the CLI and API do).

    Each field is a `cellpick fit` option of the same name (`-` for `_`), in `--help` order;
    its metadata holds the help text. `data` is the command's argument.
    """

    data: str | None = _opt(None, "CSV file (or give 'data' in --recipe).", type=Path)
    target: str | None = _opt(None, "Column to predict.")
    task: str | None = _opt(None, "forecast | classify | regress (default: detected).")
    id: str | None = _opt(None, "Series id (panel) or sample id (long sequences).")
    time: str | None = _opt(None, "Time or step column.")
    text: str | None = _opt(None, "Free-text column (text layout).")
    # None: chosen from the season and the series length
    lookback: int | None = _opt(None, "Past steps per window (series; default: chosen by the "
                                      "data-level stage around two seasons).")
    horizon: int | None = _opt(None, "Steps to forecast (series; default 1).")
    season: int | None = _opt(None, "Seasonal period (default: detected).")
    cells: list[str] = _opt(list(CELLS), "Cells to compare, e.g. lstm,gru,rnn.")
    units: list[int] = _opt([16, 32, 64, 128], "Widths, e.g. 16,32,64,128.")
    layers: list[int] = _opt([1, 2], "Depths, e.g. 1,2.")
    # random and grid: one fixed candidate list for every cell (candidates.py)
    tuner: str = _opt("random", "random | grid (every cell tries the same fixed list: the grid, "
                                "or a quasi-random subset of it) | bayesian | hyperband.")
    # per cell: every cell gets the same budget
    max_trials: int = _opt(4, "Trials per cell (same for every cell).")
    # None: 40 epochs, at least 1200 gradient steps (train.Schedule)
    epochs: int | None = _opt(None, "Epochs per trial and seed (default: 40, and at least 1200 "
                                    "gradient steps on small data).")
    # None: from the data size (folds.default_folds: 5 x 3 on small data, 3 x 2 on large)
    folds: int | None = _opt(None, "Folds of the verdict's cross-validation (rolling origins for "
                                   "series; default: 5, 3 from 10,000 samples).")
    seeds: int | None = _opt(None, "Seeds (repetitions) per fold in the verdict (default: 3, 2 "
                                   "from 1,000 samples).")
    # None: 1% of the best cell's score; accuracy: at least one validated sample
    rope: float | None = _opt(None, "Region of practical equivalence in metric units (default: 1% "
                                    "of the best score; accuracy: at least one sample).")
    time_budget: float | None = _opt(None, "Wall-clock budget, e.g. 90s, 20m, 2h.", type=str)  # s
    # None: one per core (engine.threads.default_jobs); trials of one round, the verdict's cells
    jobs: int | None = _opt(None, "Models trained at once, in threads: a round's trials (one "
                                  "per cell) and the verdict's cells (default: the cores).")
    # "auto": a test block only where the data is large enough (data.folds.auto_test_size)
    test_size: float | str = _opt("auto", "Fraction held out for the test split, or auto (20% "
                                          "where the data is large enough, else none).", type=str)
    tracking_uri: str | None = _opt(None, "MLflow tracking URI.")
    experiment: str | None = _opt(None, "MLflow experiment (default: the data file's stem).")
    out: str = _opt("cellpick-model", "Export directory (default ./cellpick-model).", type=Path)
    seed: int = _opt(42, "Random seed of the training (initial weights, batch order, dropout, "
                            "folds); the candidate list does not depend on it.")
    resume: bool = _opt(False, "Continue an interrupted fit.", "--resume")
    register: str | None = _opt(None, "Register the winner in the MLflow Model Registry.")
    # "mirrored": one trial on all local GPUs (tf.distribute)
    strategy: str = _opt("none", "none | mirrored (one trial on all local GPUs).")
    # distributed tuning: "chief" serves the oracles, "worker" runs trials
    role: str | None = _opt(None, "Distributed tuning: chief (serves the oracles, decides, "
                                  "exports) | worker (runs trials).")
    # HOST:PORT of the chief's oracle (cell i listens on PORT + i)
    oracle: str | None = _opt(None, "HOST:PORT of the chief's oracle, with --role (cell i uses "
                                    "PORT + i).")
    # None: refit the winner on train+val when data is small
    refit: bool | None = _opt(None, "Retrain the winner on train+validation before the test "
                                    "(default: when under 5000 training samples).",
                              "--refit/--no-refit")
    # export the winner's seed models averaged (False: the best seed alone)
    ensemble: bool = _opt(True, "Export the winner's seed models averaged (default) or the best "
                                "seed alone.", "--ensemble/--no-ensemble")
    # steps per patch for long fixed-length sequences; None: chosen, 1: off
    patch: int | None = _opt(None, "Steps per patch for fixed-length sequences (default: chosen "
                                   "by the data-level stage from about 25 patches from 64 steps "
                                   "up; 1: off).")
    # Data-level choices (stages/datalevel.py): None = chosen on three of the verdict's folds by a
    # small reference model before the cells are searched; a value here skips that choice.
    scaling: str | None = _opt(None, "Forecast target scaling: global | relative | diff (default: "
                                     "chosen by the data-level stage).")
    log: bool | None = _opt(None, "Forecast in logs (strictly positive targets only; default: "
                                  "chosen by the data-level stage).", "--log/--no-log")
    linear: bool | None = _opt(None, "A linear path beside the cells (forecasts; default: chosen "
                                     "by the data-level stage).", "--linear/--no-linear")
    # None: every built-in contestant that fits the task (models/contestants.py); "none": the cells alone
    contestants: str | None = _opt(None, "Models beside the cells, e.g. ets,arima,ridge; all "
                                         "(default: every one that fits the task), none, or "
                                         "package.module:function.")
    # None: engine.isolation.default_limit (the cells' verdict time, at least 60 s; a budget share)
    contestant_limit: float | None = _opt(None, "Time limit per contestant, all its folds and its "
                                               "refit, e.g. 90s (default: as long as the cells' "
                                               "verdict took, at least 60s).", type=str)
    # "best": a contestant that beats every cell is exported instead (stages/refit.py)
    export: str = _opt("cell", "cell | best (export a linear baseline when it beats every cell).")
    onnx: bool = _opt(False, "Also write DIR/model.onnx (needs the onnx extra: tf2onnx, "
                             "onnxruntime).", "--onnx")
    json: bool = _opt(False, "Print a JSON summary as the last line of stdout.", "--json")
    quiet: bool = _opt(False, "No progress output.", "--quiet")

    def validate(self) -> "FitConfig":
        """Normalise list/duration options and check every value; return self."""
        self.cells = _names(self.cells, "cells", CELLS)
        self.units = _ints(self.units, "units", minimum=1)
        self.layers = _ints(self.layers, "layers", minimum=1)
        _choice(self.tuner, "tuner", TUNERS)
        _choice(self.strategy, "strategy", STRATEGIES)
        if self.task is not None:
            _choice(self.task, "task", TASKS)
        _choice(self.export, "export", EXPORTS)
        if self.scaling is not None:
            _choice(self.scaling, "scaling", SCALINGS)
        _positive(self.max_trials, "max_trials")
        for name in ("lookback", "horizon", "season", "epochs", "patch", "seeds", "jobs"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), name)
        if self.folds is not None and (not isinstance(self.folds, int) or isinstance(self.folds, bool)
                                       or self.folds < 2):
            raise ConfigError(f"The 'folds' option must be an integer >= 2. Got {self.folds!r} instead.")
        if self.rope is not None and (isinstance(self.rope, bool) or not isinstance(self.rope, (int, float))
                                      or self.rope < 0):
            raise ConfigError(f"The 'rope' option must be a number >= 0 in the metric's units. "
                              f"Got {self.rope!r} instead.")
        self.test_size = _test_size(self.test_size)
        if self.time_budget is not None:
            self.time_budget = parse_duration(self.time_budget)
        if self.contestant_limit is not None:
            self.contestant_limit = parse_duration(self.contestant_limit, "contestant_limit")
        self.contestants = _contestants(self.contestants)
        if self.onnx:
            _onnx_installed()
        self._validate_role()
        return self

    def _validate_role(self) -> None:
        if self.role is None and self.oracle is None:
            return
        if self.role is None:
            raise ConfigError("The 'oracle' option needs a role: add --role chief (one process) "
                              "or --role worker (each trial runner).")
        _choice(self.role, "role", ROLES)
        if self.oracle is None:
            raise ConfigError(f"The 'role' option needs the chief's address: add --oracle HOST:PORT "
                              f"to the {self.role}.")
        host, port = parse_oracle(self.oracle)
        last = port + len(self.cells) + STAGE_PORTS - 1
        if last > 65535:
            raise ConfigError(f"The 'oracle' option uses ports {port}..{last} (one per cell, then "
                              f"{STAGE_PORTS} for the stages' units); choose a port <= "
                              f"{65535 - len(self.cells) - STAGE_PORTS + 1}.")
        if self.resume:
            raise ConfigError("The 'resume' option is not supported with --role; "
                              "run the distributed fit without it.")


STAGE_PORTS = 8  # oracle ports after the cells' for the stages' units (engine/units.py)


def _contestants(value: Any) -> str | None:
    """The --contestants value normalised to "a,b,c" (None: all); unknown names refused."""

    if value is None:
        return None
    try:
        names = contestant_names(value)
        _check_contestants(names)
    except ValueError as e:
        raise ConfigError(f"The 'contestants' option: {e}. Got {value!r}.") from None
    if names is None:
        return None
    return ",".join(names) if names else "none"


def parse_oracle(value: Any) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port)."""
    host, _, port = str(value).strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"The 'oracle' option must be HOST:PORT with a port in 1..65535, "
                          f"e.g. 10.0.0.5:8470. Got {value!r} instead.")
    return host, int(port)


def option_names() -> list[str]:
    return [f.name for f in dataclasses.fields(FitConfig)]


def parse_duration(value: Any, name: str = "time_budget") -> float:
    """'90s', '20m', '2h', '1h30m' or a number of seconds -> seconds (`name`: the option, for
    the message)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    text = str(value).strip().lower()
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?", text)
    if text and parts and any(parts.groups()):
        h, m, s = (float(g) if g else 0.0 for g in parts.groups())
        seconds = h * 3600 + m * 60 + s
        if seconds > 0:
            return seconds
    raise ConfigError(
        f"The '{name}' option must be a duration like 90s, 20m or 2h. Got {value!r} instead."
    )


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe TOML into option values; `data` is taken relative to the recipe's folder.

    Every key must be a `fit` option name (with `_`), of the option's type and with a valid
    value; any problem is a ConfigError naming the file, the line and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe '{path}' not found; check the path given to --recipe")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"recipe '{path}' is not valid TOML: {e}") from None
    valid = option_names()
    types = {f.name: f.type for f in dataclasses.fields(FitConfig)}
    for key, value in raw.items():
        where = f"recipe '{path}' line {_line_of(text, key)}"
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: unknown key '{key}'{hint}. Valid keys: {', '.join(valid)}")
        if not _type_ok(value, types[key]):
            raise ConfigError(
                f"{where}: key '{key}' expects {_type_word(types[key])}, "
                f"got {type(value).__name__} {value!r}"
            )
        try:  # each option is checked on its own, so the message can point at its line
            FitConfig(**{key: value}).validate()
        except ConfigError as e:
            raise ConfigError(f"{where}: key '{key}': {e}") from None
    if "data" in raw:
        data = Path(raw["data"])
        raw["data"] = str(data if data.is_absolute() else (path.parent / data))
    return raw


def resolve(given: dict[str, Any], recipe: str | Path | None = None) -> FitConfig:
    """The options of one fit: defaults < recipe values < `given` (None means not given).

    A recipe's `data` file is checked here, not in `load_recipe`, because data given on the
    command line replaces it: a recipe can be reused on other data.
    """
    values = load_recipe(recipe) if recipe else {}
    values.update({k: v for k, v in given.items() if v is not None})
    data = values.get("data")
    if recipe and given.get("data") is None and data and not Path(data).is_file():
        text = Path(recipe).read_text(encoding="utf-8")
        raise ConfigError(
            f"recipe '{recipe}' line {_line_of(text, 'data')}: key 'data': file '{data}' not found "
            "(a relative path is read from the recipe's folder); fix the path or pass DATA.csv"
        )
    config = FitConfig(**values).validate()
    if config.role != "worker":  # workers export nothing
        _check_out(config.out)
    return config


def _check_out(out: str) -> None:
    """Fail before training, not after, when the export folder cannot be created."""
    folder = Path(out).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"The 'out' option names '{out}', but '{folder}' is not a writable "
                          "folder; choose another --out.")


def _line_of(text: str, key: str) -> int | None:
    """Line of `key = ...` (also quoted, dotted, or a [key] table header)."""
    pattern = re.compile(rf"\s*\[*\s*[\"']?{re.escape(key)}[\"']?\s*[=.\]]")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return i
    return None


def _type_word(t: str) -> str:
    if "list[str]" in t:
        return "a list of names or a comma-separated string"
    if "list[int]" in t:
        return "a list of integers or a comma-separated string"
    if "bool" in t:
        return "true or false"
    if "float" in t:
        return "a number" + (" or a duration string" if "None" in t else "")
    if "int" in t:
        return "an integer"
    return "a string"


def _type_ok(value: Any, t: str) -> bool:
    if "list[" in t:
        return isinstance(value, (str, list))
    if t.startswith("bool"):
        return isinstance(value, bool)
    if t.startswith("int"):
        return isinstance(value, int) and not isinstance(value, bool)
    if t.startswith("float"):
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    return isinstance(value, str)


def _split(value: Any) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def _names(value: Any, name: str, allowed: tuple[str, ...]) -> list[str]:
    got = [str(v).lower() for v in _split(value)]
    bad = [v for v in got if v not in allowed]
    if bad or not got:
        raise ConfigError(
            f"The '{name}' option must be a subset of {sorted(allowed)}. Got {bad or got} instead."
        )
    return list(dict.fromkeys(got))


def _ints(value: Any, name: str, minimum: int) -> list[int]:
    try:
        got = [int(v) for v in _split(value)]
    except (TypeError, ValueError):
        got = []
    if not got or any(v < minimum for v in got):
        raise ConfigError(
            f"The '{name}' option must be a comma-separated list of integers >= {minimum}. "
            f"Got {value!r} instead."
        )
    return sorted(set(got))


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"The '{name}' option must be one of {sorted(allowed)}. Got {value!r} instead.")


def _test_size(value: Any) -> float | str:
    """'auto' or a fraction in [0, 0.5) (the command line gives it as a string)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        fraction = float(value) if not isinstance(value, bool) else None
    except ValueError:
        fraction = None
    if fraction is None or not 0 <= fraction < 0.5:
        raise ConfigError(f"The 'test_size' option must be 'auto' or a fraction in [0, 0.5). "
                          f"Got {value!r} instead.")
    return fraction


def _onnx_installed() -> None:
    """Fail before training, not after, when ONNX was asked for but cannot be written."""
    from importlib.util import find_spec

    missing = [m for m in ("tf2onnx", "onnxruntime") if find_spec(m) is None]
    if missing:
        raise ConfigError(f"The 'onnx' option needs {' and '.join(missing)}: install them with "
                          f"pip install 'cellpick[onnx]', or leave --onnx out.")


def _positive(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"The '{name}' option must be an integer >= 1. Got {value!r} instead.")


def contestant_names(value: str | list[str] | None) -> list[str] | None:
    """`--contestants` -> the names asked for; None for all built-ins that fit the data."""
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    if items == ["all"]:
        return None
    if items == ["none"]:
        return []
    return ["snaive" if i == "naive" else i for i in items]



def _check_contestants(names: list[str] | None) -> None:
    """Raise ValueError naming an unknown contestant (a `module:function` is checked when run)."""
    for n in names or []:
        if ":" not in n and n not in CONTESTANTS:
            raise ValueError(f"unknown contestant '{n}'; built-in ones are {', '.join(CONTESTANTS)} "
                             "(or all, none, or package.module:function)")
