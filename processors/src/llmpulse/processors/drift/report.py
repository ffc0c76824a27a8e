"""The Evidently HTML report of a drifted window, written in a background thread.

A full Evidently report takes about a second of CPU for a window once Evidently is
imported, and the import itself takes 5-15 s here: far too slow for every window, and
never on the stream's thread. Only drifted windows get one. ``submit`` returns the
report's ``file://`` URI at once (it goes into ``DriftResult.report_uri`` and the alert's
link) and a thread writes it; when the queue is full the report is skipped, counted, and
no URI is returned.

The report holds the window's sampled rows and the reference's: each text descriptor and
score as a column, compared by Evidently's ``DataDriftPreset`` with KS and chi-square at
the strictest level the monitor used (the smallest of weighted Holm's levels); its title names
each feature and test that fired in the monitor (tails, rates over several windows and
topics are the monitor's own tests, not Evidently's).

Example:
    >>> from llmpulse.processors.drift.report import DriftReportWriter, report_path
    >>> from llmpulse.processors.drift.window import DriftKey
    >>> from datetime import datetime, UTC
    >>> report_path("/tmp/r", DriftKey("shop", "prod", "faq", "3"), 7,
    ...             datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)).as_posix()
    '/tmp/r/shop/prod/faq/3/20250102T030405Z-w7.html'
"""

from __future__ import annotations

import html
import logging
import queue
import re
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llmpulse.processors.drift.window import DriftKey
from llmpulse.processors.errors import missing_dependency
from llmpulse.schemas import DriftResult

if TYPE_CHECKING:
    from llmpulse.processors.drift.features import FeatureSet
    from llmpulse.processors.drift.reference import Summary

__all__ = ["DriftReportWriter", "build_report", "report_path"]

logger = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("._") or "-"


def report_path(folder: str | Path, key: DriftKey, index: int, end: datetime) -> Path:
    """Where the report of window ``index`` of ``key`` goes."""
    parts = [_safe(p) for p in (key.app, key.environment, key.prompt_id, key.prompt_version)]
    if key.model:
        parts[-1] += f"_{_safe(key.model)}"
    return Path(folder).joinpath(*parts, f"{end:%Y%m%dT%H%M%SZ}-w{index}.html")


def _frame(summary: Summary, features: FeatureSet) -> Any:
    import pandas as pd

    data: dict[str, Any] = {name: summary.numeric[:, j] for j, name in enumerate(features.numeric)}
    for j, name in enumerate(features.categorical):
        data[name] = [row[j] for row in summary.categories]
    return pd.DataFrame(data)


def build_report(reference: Summary, current: Summary, features: FeatureSet, threshold: float,
                 path: str | Path, *, title: str = "") -> Path:
    """Run Evidently's ``DataDriftPreset`` on the two samples and save the HTML at ``path``."""
    try:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        raise missing_dependency("evidently", "the drift report") from None
    ref, cur = _frame(reference, features), _frame(current, features)
    numeric = [n for n in features.numeric if n not in features.binary
               and np.isfinite(ref[n]).sum() > 1 and np.isfinite(cur[n]).sum() > 1]
    categorical = [n for n in (*features.binary, *features.categorical)
                   if ref[n].notna().any() and cur[n].notna().any()]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = numeric + categorical
    preset = DataDriftPreset(columns=columns, num_method="ks", cat_method="chisquare",
                             threshold=threshold)
    snapshot = Report([preset], metadata={"title": title} if title else None).run(
        Dataset.from_pandas(cur[columns], data_definition=definition),
        Dataset.from_pandas(ref[columns], data_definition=definition))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    snapshot.save_html(str(tmp))
    if title:  # Evidently does not show the metadata's title: a heading of our own, escaped
        page = tmp.read_text(encoding="utf-8")
        heading = f'<h2 style="font-family:sans-serif;margin:16px">{html.escape(title)}</h2>'
        page = re.sub(r"<body[^>]*>", lambda m: m.group(0) + heading, page, count=1)
        tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


class DriftReportWriter:
    """Writes reports of drifted windows under ``folder``, one thread, a bounded queue.

    Args:
        folder: the reports folder (``drift.reports_dir``).
        max_pending: reports waiting beyond this are skipped (counted as ``dropped``).
        background: False writes in ``submit`` itself (scripts, tests).

    Attributes:
        counts: ``written``, ``failed``, ``dropped``.
    """

    def __init__(self, folder: str | Path, *, max_pending: int = 8, background: bool = True) -> None:
        self.folder = Path(folder)
        self.background = background
        self.counts: Counter[str] = Counter()
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    def submit(self, key: DriftKey, result: DriftResult, reference: Summary, current: Summary,
               features: FeatureSet) -> str | None:
        """Queue the report of a drifted window; its ``file://`` URI, or None if skipped."""
        index = int(result.attributes.get("window_index", 0) or 0)
        path = report_path(self.folder, key, index, result.window_end).resolve()
        threshold = min((f.threshold for f in result.features), default=0.05)  # Holm's first level
        fired = ", ".join(f"{f.feature} ({f.test}, p={f.p_value:.2g})" for f in result.features if f.drifted)
        title = f"Drift of {key.label()}, window {index} ({result.window_start:%Y-%m-%d %H:%M} - " \
                f"{result.window_end:%Y-%m-%d %H:%M} UTC): {fired or 'no test fired'}"
        job = (reference, current, features, threshold, path, title)
        if not self.background:
            return path.as_uri() if self._write(job) else None
        with self._lock:
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.counts["dropped"] += 1
                logger.warning("drift: report queue full, no report for %s window %d", key.label(), index)
                return None
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llmpulse-drift-report", daemon=True)
                self._thread.start()
        return path.as_uri()

    def _write(self, job: tuple[Any, ...]) -> bool:
        reference, current, features, threshold, path, title = job
        try:
            build_report(reference, current, features, threshold, path, title=title)
        except Exception:
            self.counts["failed"] += 1
            logger.exception("drift: report %s failed", path)
            return False
        self.counts["written"] += 1
        logger.info("drift: report written to %s", path)
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._write(job)
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queued reports are written; False if ``timeout`` passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then stop the thread."""
        self.flush(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
