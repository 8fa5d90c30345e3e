"""The members engine's choices, as one record its callers pass down.

`EngineOptions()` is what every fit uses: XLA, stacking and compaction decided by the rules
in members.py (docs/engine.md says why). Benches and tests set a field to compare engines
or to keep a check fast: `EngineOptions(xla=False)`, `EngineOptions(stack=False)`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    """How a members group trains.

    xla: True / False compiles / does not compile the step with XLA; None decides by the
        rule (`members._use_xla`: two or more numeric members on a CPU, a long schedule).
    stack: False calls the K models one by one (never `stacked.Stacked`).
    compact: True rebuilds a stacked group whenever at most half its members still train,
        False never; None when the compute saved outweighs a rebuild (`members._rebuild_pays`).
    """

    xla: bool | None = None
    stack: bool = True
    compact: bool | None = None


DEFAULT = EngineOptions()
