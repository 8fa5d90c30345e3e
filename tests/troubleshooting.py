"""Broken inputs as `cellpick fit` sees them: the data-level table of tests/test_data.py (BAD)
turned into command lines, plus option and split errors that only a fit meets.

The README's "Troubleshooting" table is generated from these cases (with the messages the
CLI really prints), and tests/test_bad_input.py checks that the README is up to date:

    PYTHONPATH=. python tests/troubleshooting.py --write    # refresh the README table
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_data import BAD, SERIES, WIDE, csv, days  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- troubleshooting:start -->", "<!-- troubleshooting:end -->"
TINY = ["--cells", "gru", "--units", "8", "--layers", "1", "--max-trials", "1", "--epochs", "1",
        "--folds", "2", "--seeds", "1"]
_FLAGS = {"target": "--target", "time": "--time", "id": "--id", "text": "--text", "task": "--task"}

# Errors only a fit meets: option values, splits and windows, text without words.
SHORT = csv("date,value", [f"2020-01-{d:02d},{v}" for d, v in zip(range(1, 21), [3, 1, 4, 1, 5] * 4)])
FEW = csv("label,t0,t1", ["1,1,2", "2,2,3", "1,3,4"])
SIGNED = csv("date,value", [f"{d},{(i % 7) - 3}" for i, d in enumerate(days(60))])
WORDLESS = csv("review,label", [f'"!!! ... ??? -- !!! ...",{"ab"[i % 2]}' for i in range(10)])
FIT_ONLY = [
    # (case id, file content, extra fit arguments, message pattern)
    ("series too short for lookback + horizon", SHORT, ["--lookback", "12", "--horizon", "6"],
     r"20 rows are too few for lookback 12 \+ horizon 6 .* need at least"),
    ("too few samples to split", FEW, ["--target", "label"], r"too few for training, validation"),
    ("text without words", WORDLESS, ["--text", "review"], r"hold no words"),
    ("unknown cell", SERIES, ["--cells", "lstn"], r"'cells' option must be a subset of"),
    ("unknown tuner", SERIES, ["--tuner", "genetic"], r"'tuner' option must be one of"),
    ("width of zero", SERIES, ["--units", "0,16"], r"'units' option must be a comma-separated list"),
    ("zero epochs", SERIES, ["--epochs", "0"], r"'epochs' option must be an integer >= 1"),
    ("patch of zero", WIDE, ["--patch", "0"], r"'patch' option must be an integer >= 1"),
    ("test share too large", WIDE, ["--test-size", "0.7"], r"'test_size' option must be 'auto' or a fraction"),
    ("a single fold", SERIES, ["--folds", "1"], r"'folds' option must be an integer >= 2"),
    ("negative ROPE", SERIES, ["--rope", "-1"], r"'rope' option must be a number >= 0"),
    ("unknown export choice", SERIES, ["--export", "all"], r"'export' option must be one of"),
    ("unknown scaling", SERIES, ["--scaling", "foo"], r"'scaling' option must be one of"),
    ("logs of a target with values <= 0", SIGNED, ["--log"],
     r"'log' option needs a strictly positive target; column 'value' has values <= 0"),
    ("unreadable time budget", SERIES, ["--time-budget", "soon"], r"duration like 90s, 20m or 2h"),
    ("no jobs", SERIES, ["--jobs", "0"], r"'jobs' option must be an integer >= 1"),
]


def cases() -> list[tuple[str, str | bytes | None, list[str], str]]:
    """(case id, file content or None for no file, fit arguments, message pattern)."""
    out = []
    for case, content, options, _error, pattern in BAD:
        if "labeled" in options:  # an API-only option (predict on unlabeled data)
            continue
        args = [a for k, v in options.items() for a in (_FLAGS[k], str(v))]
        out.append((case, content, args, pattern))
    return out + FIT_ONLY


def data_name(content) -> str:
    return "nope.csv" if content is None else "data.csv"


def run_fit(folder: Path, content, args: list[str]):
    """Write the case's file into `folder` and run `cellpick fit` there (cwd = folder)."""
    from typer.testing import CliRunner

    from cellpick.cli import app

    name = data_name(content)
    if content is not None:
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(folder / name, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(content)
    extra = [a for i in range(0, len(TINY), 2) if TINY[i] not in args for a in TINY[i:i + 2]]
    with _cwd(folder):
        return CliRunner().invoke(app, ["fit", name, *args, *extra, "--out", "model"])


@contextlib.contextmanager
def _cwd(folder: Path):
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def markdown() -> str:
    """The README table: one row per case with the message `cellpick fit` prints."""
    rows = ["| broken input | what `cellpick fit` says (exit code 2) |", "|---|---|"]
    for case, content, args, _ in cases():
        with tempfile.TemporaryDirectory() as tmp:
            result = run_fit(Path(tmp), content, args)
        message = result.stderr.strip()
        if result.exit_code != 2 or not message.startswith("error: "):
            raise RuntimeError(f"case {case!r}: exit {result.exit_code}: {message}")
        shown = f"`{' '.join(args)}`" if args else ""
        what = f"{case} {shown}".strip()
        rows.append(f"| {_cell(what)} | {_cell(message[len('error: '):])} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


def readme_block(text: str) -> str:
    if START not in text or END not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme() -> None:
    text = README.read_text(encoding="utf-8")
    table = markdown()
    if START not in text:
        raise SystemExit(f"{README}: add {START} and {END} where the table goes")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme()
    else:
        print(markdown())
