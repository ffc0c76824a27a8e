"""Fixtures of the sink's tests (``store`` and ``chdb_dir`` live in the root conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmpulse.sinks.store import Store


@pytest.fixture
def count(store: Store) -> Callable[[str], int]:
    """``count("calls")`` -> rows in a table (``count("calls WHERE ...")`` works too)."""

    def _count(table: str) -> int:
        return int(store.query(f"SELECT count() FROM {table}").scalar())

    return _count
