"""The heap a fit freezes (engine/threads.py, frozen_heap): full collections skip what was
alive before a stage, and the heap is given back as the caller left it."""
from __future__ import annotations

import gc

from cellpick.engine.threads import frozen_heap


def test_nested_frozen_heaps_give_the_heap_back_once_at_the_outermost_exit():
    """The fit freezes the heap, its stages freeze what appeared since (libraries imported
    late); an inner exit must not unfreeze the fit's heap, a caller's own freeze stays."""
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        outer = gc.get_freeze_count()
        late = [[i] for i in range(1000)]  # tracked containers made after the outer freeze
        with frozen_heap():
            assert gc.get_freeze_count() >= outer + len(late)
        assert gc.get_freeze_count() >= outer + len(late)
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with frozen_heap():
            assert gc.get_freeze_count() == mine
        assert gc.get_freeze_count() == mine
    finally:
        gc.unfreeze()


def test_a_heap_its_caller_froze_is_left_as_it_was():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with frozen_heap():
            pass
        # Still frozen (no unfreeze) and nothing frozen again (no second freeze); a frozen
        # object freed meanwhile (pytest-xdist's I/O thread) leaves the count, so not `==`.
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
