"""Fixtures shared by every test folder (the rooms' tests and tests/): a real Kafka broker,
the real OpenTelemetry Collector, the session's chDB folder; and the order of the modules
when pytest-xdist runs the suite on several processes (``scripts/test.sh``: ``-n logical``).

Under xdist each worker process is a test session of its own: its own broker, Collector and
chDB folder (chDB hosts one engine path per process), started only if one of its tests asks.
``--dist loadfile`` (pyproject.toml) keeps a module on one worker, so module-scoped fixtures
and the order of a module's tests are what a serial run has.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib does not put tests/ on sys.path; the broker helper module lives there.
_TESTS_DIR = str(Path(__file__).resolve().parent / "tests")
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
# The shared helpers assert for the tests that call them: rewrite their asserts too, so a
# failure shows the values, not a bare AssertionError.
pytest.register_assert_rewrite("otlp_spans", "store_rows", "waiting")

from kafka_broker import KafkaBroker, free_port  # noqa: E402
from otel_collector import OtelCollector  # noqa: E402

from llmpulse.sinks.store import Store  # noqa: E402


def _slow_first(item: pytest.Item) -> int:
    """0 for a test of a module that starts brokers, workers or venvs (marked ``slow`` or
    ``kafka``), else 1."""
    return 0 if any(item.iter_markers("slow")) or any(item.iter_markers("kafka")) else 1


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build the default guardrail policy's gates (and the injection rule's de-obfuscation
    gate) before any test runs: on a cold gate cache (a fresh CI home, a new Hyperscan)
    that is about a minute of CPU, paid here once for the machine (the cache's lock makes
    the other processes wait and load it), not inside a test that waits for a worker's
    start with a timeout."""
    from llmpulse.processors.guardrails.policy import GuardrailPolicy

    GuardrailPolicy.load().prepare()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, hand out the long modules first (``--no-loadscope-reorder`` keeps this
    order): the short ones then fill in beside them and no worker is left alone at the end
    with a long module. A module's tests keep their order; a serial run is left as it is."""
    if not hasattr(config, "workerinput"):
        return
    first = {item.path for item in items if _slow_first(item) == 0}
    items.sort(key=lambda item: 0 if item.path in first else 1)


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


@pytest.fixture(scope="session")
def otel_collector(kafka_broker: KafkaBroker,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtelCollector]:
    """The real OpenTelemetry Collector (built from its Go modules by scripts/otelcol.sh,
    config deploy/otelcol.yaml) for the whole session, exporting to the session broker under
    the topic prefix ``otel.``; tokens in ``.tokens``."""
    collector = OtelCollector(tmp_path_factory.mktemp("otelcol"), kafka_broker.bootstrap,
                              prefix="otel.")
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


# chDB hosts one engine path per process, so every test of the session shares one folder
# and gets a database of its own in it; each store is closed after its test.
@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB folder of this test session (every room's tests use it)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def store_url(chdb_dir: Path) -> str:
    """A URL naming a database of its own on the session's chDB folder."""
    return f"chdb://{chdb_dir}?database=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store in a database of its own."""
    opened = Store.open(store_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


