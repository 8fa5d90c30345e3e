"""Generated inputs for `cellpick fit` (issue 35): one CSV writer per layout and an all-pairs
design over layout x task x horizon x length x defect x data-level options.

Shared by tests/test_inputs.py (a slice) and bench/inputs.py (the whole matrix):

    from inputs import design, write_case      # tests/ on sys.path
    for case in design():                      # ~150 Case, each with a stable `id`
        args = write_case(case, folder)        # writes folder/<id>.csv; the fit's CLI arguments

Every case is deterministic (a seeded numpy generator per case id). A case at or above the
layout's documented minimum (docs/inputs.md; `minimum`) with its legal defects must fit
(exit 0) and give `predict` rows; a "below" case is one row or sample under the minimum and
must exit 2 with the one-line message `Case.message`.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SERIES_LAYOUTS = ("series", "panel", "covariates")
LAYOUTS = ("series", "panel", "covariates", "wide", "long-fixed", "long-var", "text")
NA = "-"  # the level of a factor that does not apply (horizon of a sequence, ...)

FACTORS: dict[str, tuple] = {
    "layout": LAYOUTS,
    "task": ("forecast", "classify", "regress"),
    "horizon": ("1", "2", "season", NA),
    "length": ("min", "more", "hundreds"),
    "defect": ("none", "gaps", "duplicates", "missing", "constant", "rare", "intreg"),
    "options": ("none", "fixed", "partial"),
}

# Where a defect is legal (anywhere else it is an error by the product's rules: a missing
# value in a wide or long file, a target of a one-column series, ...).
DEFECT_LAYOUTS = {
    "none": LAYOUTS,
    "gaps": ("series", "panel", "covariates", "long-fixed", "long-var"),
    "duplicates": LAYOUTS,
    "missing": ("panel", "covariates", "text"),  # a covariate (<= 5%), an empty text
    "constant": LAYOUTS,
    "rare": ("wide", "long-fixed", "long-var", "text"),  # one class with 2 samples
    "intreg": LAYOUTS,  # integer-valued targets of a regression (or a forecast)
}

# Calendars: the season each series layout has, so horizon "season" is a number.
SEASON = {"series": 12, "panel": 7, "covariates": 6}
PANEL_SERIES = 3
WIDE_STEPS, LONG_STEPS, LONG_FEATURES = 64, 16, 2
HUNDREDS = 300


def allowed(c: dict) -> bool:
    """Whether a (partial) assignment of factor levels is a case the product must take.
    Factors missing from `c` are unconstrained."""
    lay, task, h, defect, opt = (c.get(k) for k in ("layout", "task", "horizon", "defect", "options"))
    series = lay in SERIES_LAYOUTS if lay else None
    if series is not None and task is not None and series != (task == "forecast"):
        return False
    if h is not None:
        if series is not None and series != (h != NA):
            return False
        if task is not None and (task == "forecast") != (h != NA):
            return False
    if defect is not None:
        if lay is not None and lay not in DEFECT_LAYOUTS[defect]:
            return False
        if defect == "rare" and task not in (None, "classify"):
            return False
        if defect == "intreg" and task not in (None, "regress", "forecast"):
            return False
        if series and c.get("length") is not None and h is not None:
            rows = _rows(lay, h, c["length"])
            if defect == "duplicates" and rows < 100:
                return False  # a series may repeat a stamp in 1% of its rows (keeps the last)
            if defect == "missing" and rows * (PANEL_SERIES if lay == "panel" else 1) < 20:
                return False  # a covariate may miss 5% of its values (filled)
    if opt is not None and lay == "text" and opt != "none":
        return False  # a text model has no data-level options
    if defect == "rare" and lay is None and h is not None and h != NA:
        return False
    return True


def _rows(layout: str, horizon: str, length: str) -> int:
    """Rows per series of a series layout for a length level."""
    h = SEASON[layout] if horizon == "season" else int(horizon)
    return _length(series_minimum(h), length)


def _length(least: int, level: str) -> int:
    return {"min": least, "more": least + max(2, -(-least // 4)), "hundreds": max(HUNDREDS, least),
            "below": least - 1}[level]


@dataclass(frozen=True)
class Case:
    layout: str
    task: str
    horizon: str  # "1", "2", "season" or NA
    length: str  # "min", "more", "hundreds" or "below"
    defect: str
    options: str

    @property
    def id(self) -> str:
        short = {"forecast": "fc", "classify": "cls", "regress": "reg"}[self.task]
        h = "" if self.horizon == NA else f"-h{self.horizon}"
        return f"{self.layout}-{short}{h}-{self.length}-{self.defect}-{self.options}"

    @property
    def h(self) -> int | None:
        """The horizon as a number (None for sequences)."""
        if self.horizon == NA:
            return None
        return SEASON[self.layout] if self.horizon == "season" else int(self.horizon)

    @property
    def n(self) -> int:
        """Rows per series (series layouts) or samples (the others) the CSV holds."""
        return _length(minimum(self.layout, self.task, self.h), self.length)

    @property
    def expect(self) -> int:
        """The exit code the fit must end with."""
        return 2 if self.length == "below" else 0

    @property
    def message(self) -> str | None:
        """A phrase the one-line error of a "below" case must hold."""
        if self.length != "below":
            return None
        return "too few"


@dataclass
class Written:
    """A written case: its CSV, the fit's arguments and what predict must give."""

    path: Path
    args: list[str]
    rows: int  # rows `predict` writes for the same CSV (horizon x series, or samples)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- minimums

# Found by trying (docs/inputs.md; tests/test_inputs.py checks both sides of each boundary).
MIN_SAMPLES = 6  # sequences and text at --folds 2: 3 per fold, each split 2 + 1 inside


def minimum(layout: str, task: str, horizon: int | None) -> int:
    """The least rows per series (series layouts, default lookback) or samples that fit with
    the bench's budget (`--folds 2`), as docs/inputs.md documents."""
    if layout in SERIES_LAYOUTS:
        return series_minimum(horizon)
    return MIN_SAMPLES


def series_minimum(horizon: int, lookback: int | None = None) -> int:
    """Rows per series for `horizon`: lookback + 4 horizon + 1 (2 rolling origins and a
    validation block of `horizon` rows each, 2 training windows); the default lookback shrinks
    to a third of the rows left, so without one 5 horizon + 1."""
    return (horizon if lookback is None else lookback) + 4 * horizon + 1


# ----------------------------------------------------------------------------- design

def _pairs_of(combo: tuple, groups: list[tuple[int, ...]]) -> list[tuple]:
    return [(g, tuple(combo[i] for i in g)) for g in groups]


def allpairs(factors: dict[str, tuple], ok=allowed, extra: tuple[tuple[str, ...], ...] = ()
             ) -> list[dict]:
    """A greedy covering design: every pair of levels of two factors that some allowed full
    combination holds appears in at least one returned combination, and so does every
    allowed combination of each factor group in `extra` (e.g. triples). Deterministic:
    ties go to the first combination in product order."""
    names = list(factors)
    combos = [c for c in itertools.product(*factors.values()) if ok(dict(zip(names, c)))]
    groups = [tuple(p) for p in itertools.combinations(range(len(names)), 2)]
    groups += [tuple(names.index(f) for f in g) for g in extra]
    keys: dict[tuple, int] = {}
    table = np.array([[keys.setdefault(k, len(keys)) for k in _pairs_of(c, groups)]
                      for c in combos])
    covered = np.zeros(len(keys), bool)
    chosen = []
    while not covered.all():
        gain = (~covered[table]).sum(axis=1)
        best = int(np.argmax(gain))
        chosen.append(dict(zip(names, combos[best])))
        covered[table[best]] = True
    return chosen


# Beyond all pairs, every allowed triple of these: a defect's handling, a length's minimum and
# the data-level options depend on the layout (and task) together.
EXTRA = (("layout", "task", "defect"), ("layout", "horizon", "length"),
         ("layout", "defect", "length"), ("layout", "options", "defect"))


def design() -> list[Case]:
    """The matrix: the all-pairs cases, then one below-minimum case per layout."""
    cases = [Case(**c) for c in allpairs(FACTORS, allowed, EXTRA)]
    for lay in LAYOUTS:
        task = "forecast" if lay in SERIES_LAYOUTS else "classify"
        cases.append(Case(lay, task, "1" if task == "forecast" else NA, "below", "none", "none"))
    return cases


def by_id() -> dict[str, Case]:
    return {c.id: c for c in design()}


# ----------------------------------------------------------------------------- writers

def write_case(case: Case, folder: Path) -> Written:
    """Write `case`'s CSV into `folder` (named after its id); the fit's arguments."""
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    writer = {"series": _series, "panel": _panel, "covariates": _covariates, "wide": _wide,
              "long-fixed": _long, "long-var": _long, "text": _text}[case.layout]
    path = Path(folder) / f"{case.id}.csv"
    out = writer(case, rng, path)
    out.args = [str(path), *out.args, *_options(case)]
    return out


def _options(case: Case) -> list[str]:
    if case.options == "none":
        return []
    if case.layout in SERIES_LAYOUTS:
        if case.options == "fixed":
            return ["--scaling", "relative", "--no-log", "--linear"]
        return ["--scaling", "diff", "--log"]
    return ["--patch", "1"] if case.options == "fixed" else ["--patch", "4"]


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    def cell(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{float(v):.4f}"
        return str(v)
    lines = [",".join(header)] + [",".join(cell(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _wave(rng, n: int, season: int, level: float = 50.0) -> np.ndarray:
    t = np.arange(n)
    return level + 8 * np.sin(2 * np.pi * t / season) + 0.1 * t + rng.normal(0, 1, n)


def _calendar(start: str, n: int, freq: str) -> list[str]:
    import pandas as pd

    fmt = "%Y-%m-%d %H:%M" if freq == "h" else "%Y-%m-%d"
    return [d.strftime(fmt) for d in pd.date_range(start, periods=n, freq=freq)]


def _gap_rows(n: int, k: int, rng) -> list[int]:
    """`k` rows to drop for the gaps defect: inside the series, never the first or last 2."""
    return sorted(rng.choice(np.arange(2, n - 2), size=k, replace=False).tolist())


def _series_rows(case: Case, rng, season: int, times: list, extra_cols) -> tuple[list, list[str]]:
    """Rows of one series of `case.n` rows (after gaps and duplicates), with defects."""
    notes = []
    n = case.n
    gaps = case.defect == "gaps"
    k_gap = max(1, n // 20) if gaps else 0
    total = n + k_gap
    y = _wave(rng, total, season)
    if case.defect == "intreg":
        y = np.round(y).astype(int)
    rows = [[times[i], y[i], *[col[i] for col in extra_cols(total)]] for i in range(total)]
    if gaps:
        drop = set(_gap_rows(total, k_gap, rng))
        rows = [r for i, r in enumerate(rows) if i not in drop]
        notes.append(f"{len(drop)} time stamps missing")
    if case.defect == "duplicates":
        i = int(rng.integers(1, len(rows) - 1))
        rows.insert(i + 1, list(rows[i]))
        notes.append("1 duplicate row")
    return rows, notes


def _series(case: Case, rng, path: Path) -> Written:
    extra = (lambda m: [np.ones(m)]) if case.defect == "constant" else (lambda m: [])
    times = _calendar("2000-01-01", case.n + case.n // 20 + 2, "MS")
    rows, notes = _series_rows(case, rng, 12, times, extra)
    header = ["date", "value"] + (["flag"] if case.defect == "constant" else [])
    _csv(path, header, rows)
    args = ["--horizon", str(case.h)] + (["--target", "value"] if case.defect == "constant" else [])
    return Written(path, args, case.h, notes)


def _panel(case: Case, rng, path: Path) -> Written:
    cov = case.defect in ("missing", "constant")
    times = _calendar("2021-01-04", case.n + case.n // 20 + 2, "D")
    rows, notes = [], []
    for s in range(PANEL_SERIES):
        def extra(m):
            if case.defect == "constant":
                return [np.full(m, 3.0)]
            return [rng.normal(20, 3, m)] if cov else []
        part, part_notes = _series_rows(case, rng, 7, times, extra)
        rows += [[f"s{s}", *r] for r in part]
        notes = part_notes
    header = ["store_id", "date", "value"] + (["price"] if cov else [])
    if case.defect == "missing":
        notes.append(_blank(rows, 3, rng))
    _csv(path, header, rows)
    args = ["--horizon", str(case.h)] + (["--target", "value"] if cov else [])
    return Written(path, args, case.h * PANEL_SERIES, notes)


def _blank(rows: list[list], col: int, rng) -> str:
    """Empty at most 5% of column `col` (the fill limit), at least one cell when that
    is still within 5%."""
    k = len(rows) // 20
    if k == 0:
        return "too short for a legal missing value (5% of the column): none"
    for i in rng.choice(np.arange(1, len(rows)), size=k, replace=False):
        rows[int(i)][col] = None
    return f"{k} missing values in column {col + 1}"


def _covariates(case: Case, rng, path: Path) -> Written:
    """An integer step column (no calendar), a target and two covariates."""
    times = list(range(case.n + case.n // 20 + 2))

    def extra(m):
        temp = rng.normal(15, 5, m)
        promo = (rng.random(m) < 0.3).astype(int)
        return [temp, np.full(m, 1) if case.defect == "constant" else promo]
    rows, notes = _series_rows(case, rng, SEASON["covariates"], times, extra)
    if case.defect == "missing":
        notes.append(_blank(rows, 2, rng))
    _csv(path, ["t", "value", "temp", "promo"], rows)
    return Written(path, ["--target", "value", "--horizon", str(case.h)], case.h, notes)


def _labels(case: Case, rng, n: int, signal: np.ndarray) -> tuple[list, list[str]]:
    """One label per sample: classes by the signal's tertile (two classes, a third with 2
    samples when "rare"), or a float / integer-valued regression target."""
    notes = []
    if case.task == "regress":
        y = 10 * signal + rng.normal(0, 1, n)
        if case.defect == "intreg":
            y = np.round(np.abs(y))
            return [int(v) for v in y], ["integer-valued target"]
        return [float(v) for v in y], notes
    names = ["down", "up"] if case.layout != "long-fixed" else [0, 1]
    order = np.argsort(signal, kind="stable")
    y = [None] * n
    for rank, i in enumerate(order):
        y[i] = names[int(rank >= n // 2)]
    if case.defect == "rare":
        rare = "rare" if case.layout != "long-fixed" else 2
        for i in order[n // 2 - 1: n // 2 + 1]:  # 2 samples at the class boundary
            y[i] = rare
        notes.append("one class has 2 samples")
    return y, notes


def _duplicate_samples(case: Case, rng, n: int) -> int:
    return 1 if case.defect == "duplicates" else 0


def _wide(case: Case, rng, path: Path) -> Written:
    n = case.n
    dup = _duplicate_samples(case, rng, n)
    base = n - dup
    shift = rng.normal(0, 1, base)
    t = np.arange(WIDE_STEPS)
    x = shift[:, None] + np.sin(2 * np.pi * t[None, :] / 16 + rng.uniform(0, 6, (base, 1))) \
        + rng.normal(0, 0.3, (base, WIDE_STEPS))
    if case.defect == "constant":
        x[:, 0] = 0.0
    y, notes = _labels(case, rng, base, shift)
    rows = [[y[i], *x[i]] for i in range(base)]
    if dup:
        rows.append(list(rows[1]))
        notes.append("1 duplicate row")
    _csv(path, ["label", *[f"t{i}" for i in range(WIDE_STEPS)]], rows)
    args = ["--task", "regress"] if case.defect == "intreg" else []
    return Written(path, args, n, notes)


def _long(case: Case, rng, path: Path) -> Written:
    n = case.n
    dup = _duplicate_samples(case, rng, n)
    base = n - dup
    shift = rng.normal(0, 1, base)
    y, notes = _labels(case, rng, base, shift)
    rows, samples = [], []
    for i in range(base):
        steps = LONG_STEPS if case.layout == "long-fixed" else int(rng.integers(6, LONG_STEPS + 1))
        order = np.arange(steps)
        if case.defect == "gaps":
            order = order + np.cumsum(rng.random(steps) < 0.2)  # step numbers skip some values
        x1 = shift[i] + np.sin(order / 3 + rng.uniform(0, 6)) + rng.normal(0, 0.3, steps)
        x2 = np.full(steps, 1.0) if case.defect == "constant" else rng.normal(0, 1, steps)
        samples.append([[int(o), a, b] for o, a, b in zip(order, x1, x2)])
    if dup:
        samples.append(samples[1])
        y = list(y) + [y[1]]
        notes.append("1 sample repeated under a new id")
    for i, s in enumerate(samples):
        rows += [[f"p{i:04d}", o, y[i], a, b] for o, a, b in s]
    if case.defect == "gaps":
        notes.append("step numbers with gaps")
    _csv(path, ["sample_id", "step", "label", "x1", "x2"], rows)
    args = []
    if case.task == "regress" and case.defect == "intreg" or \
            case.layout == "long-fixed" and case.task == "classify":
        args = ["--task", case.task]  # integer labels: the task is the user's to say
    return Written(path, args, n, notes)


_WORDS = {"up": "great fine lovely superb good happy bright warm".split(),
          "down": "awful poor bad gloomy sad broken cold dull".split(),
          "rare": "odd strange curious unusual weird".split()}
_FILLER = "the a this that it was is very quite and but really so product service day".split()


def _text(case: Case, rng, path: Path) -> Written:
    n = case.n
    dup = _duplicate_samples(case, rng, n)
    base = n - dup
    signal = rng.normal(0, 1, base)
    y, notes = _labels(case, rng, base, signal)
    rows = []
    for i in range(base):
        mood = y[i] if case.task == "classify" else ("up" if signal[i] > 0 else "down")
        words = list(rng.choice(_FILLER, size=int(rng.integers(4, 9)))) + \
            list(rng.choice(_WORDS[mood], size=2))
        rng.shuffle(words)
        rows.append([" ".join(words), y[i]])
    if case.defect == "missing":
        k = max(1, n // 20)
        for i in rng.choice(np.arange(base), size=min(k, base), replace=False):
            rows[int(i)][0] = None
        notes.append(f"{min(k, base)} empty texts")
    header = ["review", "label"]
    if case.defect == "constant":
        header.append("source")
        rows = [r + ["web"] for r in rows]
    if dup:
        rows.append(list(rows[1]))
        notes.append("1 duplicate row")
    _csv(path, header, rows)
    args = ["--text", "review", "--target", "label"] if case.defect in ("constant", "missing") else []
    if case.defect == "intreg":
        args += ["--task", "regress"]
    return Written(path, args, n, notes)


# ----------------------------------------------------------------------------- running a case

TINY = ["--units", "8", "--layers", "1", "--max-trials", "1", "--epochs", "1", "--folds", "2",
        "--seeds", "1"]


@dataclass
class Outcome:
    """How a case ended: `outcome` is "ok" (exit 0 and predict gave the rows, all finite),
    "refused" (the expected exit 2 with one line naming the problem) or a failure: "exit N",
    "timeout" (killed), "late" (ok, but after budget + grace), "predict", "message"."""

    case: Case
    outcome: str
    code: int | None
    seconds: float
    note: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.outcome in ("ok", "refused")


def _fit_flags() -> list[str]:
    """Flags of options that may not exist yet (--contestant-limit): used when `fit` has them."""
    import subprocess
    import sys

    text = subprocess.run([sys.executable, "-m", "cellpick", "fit", "--help"], capture_output=True,
                          text=True, timeout=120).stdout
    return ["--contestant-limit", "30"] if "--contestant-limit" in text else []


def run_case(case: Case, folder: Path, *, budget: int = 60, grace: int = 60,
             flags: list[str] | None = None, log: Path | None = None,
             store: str | None = None, kill: int | None = None) -> Outcome:
    """Write `case` into `folder`, fit it as a subprocess at the tiniest budget with
    `--time-budget budget` (killed at budget + grace s), its own MLflow store and export,
    then `predict` on the same CSV. `flags`: extra fit flags (None: `_fit_flags()`); `log`:
    a file for the fit's and predict's output (with --debug tracebacks); `store`: the
    tracking URI (None: a new SQLite store in `folder`, which MLflow creates: seconds);
    `kill`: seconds before the fit is killed (None: budget + grace). A fit that passes but
    ends after budget + grace is "late"."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_case(case, folder)
    model = folder / f"{case.id}-model"
    cmd = [sys.executable, "-m", "cellpick", "fit", *written.args, *TINY,
           "--time-budget", f"{budget}s", "--tracking-uri", store or f"sqlite:///{folder / case.id}.db",
           "--out", str(model), "--debug", *(_fit_flags() if flags is None else flags)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=folder, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=kill or budget + grace)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    seconds = time.monotonic() - start
    if log is not None:
        log.write_text(" ".join(cmd) + "\n" + out + "\n--- stderr\n" + err)
    result = Outcome(case, "", code, seconds, notes=written.notes)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    last = errors[-1] if errors else next((line for line in reversed(err.splitlines())
                                           if line.strip()), "")
    result.note = last.strip()[:300]
    if code is None:
        stage = next((line for line in reversed(err.splitlines()) if line.strip()), "")
        result.outcome, result.note = "timeout", f"killed after {kill or budget + grace} s; last: {stage[:200]}"
        return result
    if code != case.expect:
        result.outcome = f"exit {code}"
        return result
    if code == 2:
        one = len(errors) == 1 and "Traceback" not in err
        result.outcome = "refused" if one and case.message in errors[0] else "message"
        return result
    result.outcome, result.note = _check_predict(model, written, env, folder, log)
    if result.outcome == "ok" and seconds > budget + grace:
        result.outcome = "late"
    return result


def _check_predict(model: Path, written: Written, env: dict, folder: Path,
                   log: Path | None) -> tuple[str, str]:
    import subprocess
    import sys

    import pandas as pd

    out = folder / "predictions.csv"
    proc = subprocess.run([sys.executable, "-m", "cellpick", "predict", str(model),
                           str(written.path), "--out", str(out), "--debug"],
                          capture_output=True, text=True, timeout=300, cwd=folder, env=env)
    if log is not None:
        with log.open("a") as f:
            f.write("\n--- predict\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return "predict", f"predict exit {proc.returncode}: {(lines or [''])[-1][:250]}"
    pred = pd.read_csv(out)
    values = pred["prediction"] if "prediction" in pred else None
    if len(pred) != written.rows:
        return "predict", f"predict gave {len(pred)} rows, expected {written.rows}"
    if values is None:
        return "predict", f"no prediction column in {list(pred.columns)}"
    numeric = pd.to_numeric(values, errors="coerce")
    probs = pred[[c for c in pred.columns if c.startswith("probability_")]]
    if probs.shape[1]:
        if not np.isfinite(probs.to_numpy(float)).all():
            return "predict", "non-finite probabilities"
    elif not np.isfinite(numeric.to_numpy(float)).all():
        return "predict", "non-finite predictions"
    return "ok", f"predict: {len(pred)} rows"
