"""Fixtures of the dashboards' tests: sample traffic written once through the sink's Writer.

chDB hosts one engine path per process: every store here lives in one folder (a database
per purpose), and the shared store is closed after the last test of this folder so the
tests of other rooms can open their own path afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from llmpulse.dashboards.macros import TimeRange
from llmpulse.dashboards.testing import SampleTraffic, write_sample_traffic
from llmpulse.sinks.store import Store

_HERE = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_SHARED: dict[str, object] = {}


@pytest.fixture
def chromium_flags(tmp_path: Path) -> list[str]:
    """Debian's headless Chromium and its flags (skips the test when it is not installed)."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1000",
    ]


@pytest.fixture
def dump_dom(chromium_flags: list[str]) -> Callable[[Path], str]:
    """``dump_dom(page)``: the DOM headless Chromium built from the page, scripts run."""

    def dump(page: Path) -> str:
        return subprocess.run(
            [*chromium_flags, "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    return dump


@pytest.fixture(scope="session")
def dash_chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB folder of the dashboards' tests."""
    return tmp_path_factory.mktemp("dashboards-chdb")


@pytest.fixture(scope="session")
def traffic_url(dash_chdb_dir: Path) -> str:
    """URL of the database holding the sample traffic."""
    return f"chdb://{dash_chdb_dir}?database=traffic"


@pytest.fixture
def traffic_store(traffic_url: str) -> Store:
    """The store with 3,000 sample calls and their feedback, verdicts, drift and alerts.

    Written once (seed 7) and shared read-only by the tests; reopened if a test closed it.
    """
    store = _SHARED.get("store")
    if store is None:
        store = Store.open(traffic_url)
        store.migrate()
        if "traffic" not in _SHARED:
            _SHARED["traffic"] = write_sample_traffic(store, calls=3000, seed=7)
        _SHARED["store"] = store
    return store  # type: ignore[return-value]


@pytest.fixture
def traffic(traffic_store: Store) -> SampleTraffic:
    """What was written to ``traffic_store``."""
    return _SHARED["traffic"]  # type: ignore[return-value]


@pytest.fixture
def window(traffic: SampleTraffic) -> TimeRange:
    """A dashboard time range covering all the sample traffic."""
    return TimeRange(traffic.start - timedelta(minutes=1), traffic.end + timedelta(minutes=10))


@pytest.fixture
def fresh_store(dash_chdb_dir: Path) -> Iterator[Store]:
    """An empty, migrated database of its own on the same engine."""
    store = Store.open(f"chdb://{dash_chdb_dir}?database=t_{uuid.uuid4().hex[:12]}")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def _close_shared() -> None:
    store = _SHARED.pop("store", None)
    if store is not None:
        store.close()  # type: ignore[attr-defined]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Close the shared store after this folder's last test (other rooms open other paths)."""
    if nextitem is None or _HERE not in Path(str(nextitem.path)).resolve().parents:
        _close_shared()
