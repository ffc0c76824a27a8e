"""``freeze_start_heap``: what exists when it is called leaves every later collection's walk;
what is made after it is collected as before, cycles included."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from llmpulse.schemas.runtime import freeze_start_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


@pytest.mark.usefixtures("unfrozen")
def test_the_start_heap_is_frozen_and_later_cycles_are_still_collected() -> None:
    before = _Node()
    garbage = _Node()
    dropped = weakref.ref(garbage)
    del garbage  # start-up garbage: collected by the call, not frozen
    frozen = freeze_start_heap()
    # other threads of the test process (a Kafka client's, a server's) may free a frozen
    # object meanwhile: the count can only have fallen since the call returned it
    assert 0 < gc.get_freeze_count() <= frozen
    assert dropped() is None
    walked = gc.get_objects()
    assert gc.is_tracked(before) and not any(o is before for o in walked)
    later = _Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None  # made after start-up: the collector still frees its cycles
