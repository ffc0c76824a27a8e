"""Fixtures shared by every test folder (the rooms' tests and tests/): a real Kafka broker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib does not put tests/ on sys.path; the broker helper module lives there.
_TESTS_DIR = str(Path(__file__).resolve().parent / "tests")
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from kafka_broker import KafkaBroker, free_port  # noqa: E402


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One real Kafka broker (KRaft, single node) for the whole session, on a free port."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """The session broker's bootstrap address, "127.0.0.1:PORT"."""
    bootstrap: str = kafka_broker.bootstrap
    return bootstrap
