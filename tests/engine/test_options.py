"""EngineOptions: the engine's choices come from the caller, never from the environment."""
from __future__ import annotations

import ast
from pathlib import Path

from test_members import CLASSIFY, _classify_prep

from cellpick.engine.members import Member, _Group
from cellpick.engine.options import DEFAULT, EngineOptions

PACKAGE = Path(__file__).resolve().parents[2] / "cellpick"
TOLD = {"CELLPICK_WORKER_TIMEOUT"}  # the README documents it


def test_no_cellpick_environment_variable_is_read_but_those_users_are_told_about():
    found = {node.value for path in PACKAGE.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and node.value.startswith("CELLPICK_")}
    assert found == TOLD


def test_the_default_is_the_rule_and_each_field_overrides_it():
    assert DEFAULT == EngineOptions(xla=None, stack=True, compact=None)
    prep = _classify_prep()
    three = [Member(prep, 1), Member(prep, 2), Member(prep, 3)]
    by_rule = _Group(three, CLASSIFY, "train", EngineOptions(xla=False))
    assert by_rule.stacked is not None and not by_rule.jit  # three members stack without XLA
    one_by_one = _Group(three, CLASSIFY, "train", EngineOptions(xla=False, stack=False))
    assert one_by_one.stacked is None and not one_by_one.jit
    for g in (by_rule, one_by_one):
        g.train(2)
        g.stop(0)
        g.stop(1)
    assert not one_by_one.compact(10**4)  # nothing stacked, nothing to rebuild
    never = _Group(three, CLASSIFY, "train", EngineOptions(xla=False, compact=False))
    never.train(2)
    never.stop(0)
    never.stop(1)
    assert not never.compact(10**4) and never.live == [0, 1, 2]
    assert by_rule.compact(10**4) is False  # GRU-8: a rebuild would not pay
