"""Every broken input of tests/test_data.py (and the errors only a fit meets) through
`cellpick fit`: exit code 2, one line on stderr, no traceback, nothing written. The README's
Troubleshooting table must show the very messages these runs print."""
from __future__ import annotations

import re

import pytest

from troubleshooting import END, README, START, cases, data_name, readme_block, run_fit

CASES = cases()
SEEN: dict[str, str] = {}  # case id -> the message printed (for the README check below)


def test_the_table_is_large():
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("content, args, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_fit_refuses_broken_input_cleanly(tmp_path, request, content, args, pattern):
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
    SEEN[request.node.callspec.id] = message


def test_readme_troubleshooting_shows_these_messages():
    """Refresh with: PYTHONPATH=. python tests/troubleshooting.py --write"""
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block, f"README.md lacks the {START} ... {END} table"
    rows = {}
    for line in block.splitlines()[2:]:
        what, message = (c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ", 1))
        rows[what.split(" `")[0]] = message
    assert set(rows) == {c[0] for c in CASES}, "README table and test cases differ: refresh it"
    if len(SEEN) < len(CASES):
        pytest.skip("run the whole file to compare the messages")
    stale = {case: SEEN[case] for case in SEEN if " ".join(SEEN[case].split()) != rows[case]}
    assert not stale, f"README messages are out of date (refresh it): {stale}"
