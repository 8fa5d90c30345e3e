"""Every broken input of tests/test_data.py (and the errors only a fit meets) through
`cellpick fit`: exit code 2, one line on stderr, no traceback, nothing written. The README's
Troubleshooting table must show the very messages these runs print: each case compares its own
message with its README row, so any subset (`-k`, one case) checks what it ran."""
from __future__ import annotations

import functools
import re

import pytest
from troubleshooting import END, README, START, cases, data_name, readme_block, run_fit

CASES = cases()
REFRESH = "refresh it with: PYTHONPATH=. python tests/troubleshooting.py --write"


@functools.cache
def readme_rows() -> dict[str, str]:
    """The README table: case id -> the message it shows."""
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block, f"README.md lacks the {START} ... {END} table"
    rows = {}
    for line in block.splitlines()[2:]:
        what, message = (c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ", 1))
        rows[what.split(" `")[0]] = message
    return rows


def test_the_table_is_large():
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("content, args, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_fit_refuses_broken_input_cleanly(tmp_path, request, content, args, pattern):
    case = request.node.callspec.id
    result = run_fit(tmp_path, content, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    message = lines[0][len("error: "):]
    assert re.search(pattern, message), message
    assert "Traceback" not in result.output
    # No export, no temporary export, no MLflow store, no tuner folder: only the input file.
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == ([] if content is None else [data_name(content)]), left
    # The README's Troubleshooting table shows this very message.
    shown = readme_rows().get(case)
    assert shown == " ".join(message.split()), f"README row of {case!r} is out of date; {REFRESH}"


def test_readme_troubleshooting_has_one_row_per_case():
    assert set(readme_rows()) == {c[0] for c in CASES}, \
        f"README table and test cases differ; {REFRESH}"
