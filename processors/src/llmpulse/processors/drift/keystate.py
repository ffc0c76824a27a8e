"""One key's drift state: what ``DriftMonitor`` holds per key, and how it is stored.

``KeyData`` is the live state (the open window, the reference being built, the pinned or
trailing reference, the last windows' rate counts, the seasonal slots, the rates' long
baseline); ``KeyState`` is its msgpack form, in two parts that change at different paces:
``window`` (the open window and the reference being built: every call) and ``reference``
(the references, the rate counts and the baseline: each closed window), so a table can
store each part on its own. ``KeyData.state`` writes one or both parts; ``KeyData.load``
reads them back. ``KeyData.rate_history`` gives the rate tests their windows and baseline,
and ``KeyData.keep_rates`` moves a closed window into them (and the windows leaving the
scan into the long baseline, ``drift.baseline``).

Example:
    >>> import msgspec
    >>> from llmpulse.processors.drift.keystate import KeyData, KeyState
    >>> data = KeyData()
    >>> data.recent = [{"error": [1, 200]}]
    >>> data.baseline.calls = [200]
    >>> state = msgspec.msgpack.decode(data.state(["error"], ["reference"]), type=KeyState)
    >>> state.parts, state.recent
    (['reference'], [{'error': [1, 200]}])
    >>> back = KeyData()
    >>> back.load(state, guess=100)
    >>> back.recent, back.baseline.calls
    ([{'error': [1, 200]}], [200])
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from llmpulse.processors.drift.baseline import RateBaseline, trailing_span
from llmpulse.processors.drift.compare import RateCounts, add_counts, counted_calls
from llmpulse.processors.drift.config import DriftConfig
from llmpulse.processors.drift.reference import Summary, SummaryState
from llmpulse.processors.drift.window import WindowData, WindowState

__all__ = ["KeyData", "KeyState"]


class KeyState(Struct, kw_only=True, omit_defaults=True):
    """One key's state as stored: ``window`` parts change with every call, ``reference``
    parts when a window closes (write each part to its own table if that helps)."""

    version: int = 1
    parts: list[str]
    columns: list[str]
    next_index: int = 0
    window: WindowState | None = None
    builder: WindowState | None = None
    reference: SummaryState | None = None
    ring: list[SummaryState] = []
    recent: list[RateCounts] = []
    """The rate counts of the last windows (tests over several windows)."""
    slots: dict[int, list[SummaryState]] = {}
    """``seasonal``: the last windows of each slot of the season."""
    baseline: RateBaseline | None = None
    """The rates' long baseline (``drift.baseline``); None in states written before it."""


class KeyData:
    """One key's live state in ``DriftMonitor``."""

    def __init__(self) -> None:
        self.next_index = 0
        self.window: WindowData | None = None
        self.builder: WindowData | None = None
        self.reference: Summary | None = None
        self.ring: list[Summary] = []
        self.recent: list[RateCounts] = []
        self.slots: dict[int, list[Summary]] = {}
        self.baseline = RateBaseline()

    def state(self, columns: list[str], parts: list[str]) -> bytes:
        """The ``parts`` (``window``, ``reference``) as msgpack, with the feature columns."""
        state = KeyState(parts=parts, columns=columns, next_index=self.next_index)
        if "window" in parts:
            state.window = self.window.to_state() if self.window else None
            state.builder = self.builder.to_state() if self.builder else None
        if "reference" in parts:
            state.reference = self.reference.to_state() if self.reference else None
            state.ring = [s.to_state() for s in self.ring]
            state.recent = self.recent
            state.slots = {slot: [s.to_state() for s in held] for slot, held in self.slots.items()}
            state.baseline = self.baseline
        return msgspec.msgpack.encode(state)

    def load(self, state: KeyState, *, guess: int) -> None:
        """Take the parts ``state`` holds (its columns already checked); ``guess``: the calls
        of each rate window in a state written before windows' calls were kept."""
        self.next_index = max(self.next_index, state.next_index)
        if "window" in state.parts:
            self.window = WindowData.from_state(state.window) if state.window else None
            self.builder = WindowData.from_state(state.builder) if state.builder else None
        if "reference" in state.parts:
            self.reference = Summary.from_state(state.reference) if state.reference else None
            self.ring = [Summary.from_state(s) for s in state.ring]
            self.recent = [dict(c) for c in state.recent]
            self.slots = {slot: [Summary.from_state(s) for s in held_states]
                          for slot, held_states in state.slots.items()}
            # a state saved before the baseline: its alarms are unknown, so absorb nothing
            self.baseline = state.baseline or RateBaseline(absorbing=False, stopped="unknown_history")
            known = self.baseline.calls[-len(self.recent):] if self.recent else []
            self.baseline.calls = [guess] * (len(self.recent) - len(known)) + known

    # -- the rates' history ----------------------------------------------------------------

    def keep_rates(self, cfg: DriftConfig, counts: RateCounts, calls: int, reference: Summary | None, *,
                   drifted: bool, fired: list[str] | None = None) -> None:
        """Keep the closed window's rate counts for the next scans; the windows that leave
        them go into a pinned reference's rate baseline (until an alarm or the cap), or stay
        in a trailing one's (cut back to ``reference_windows`` windows at an alarm). The
        rates that ``fired`` scan only the windows after this one (``RateBaseline.passed``)."""
        base = self.baseline
        base.passed(fired or [], cfg.rate_scan_windows)
        recent, sizes = [*self.recent, counts], [*base.calls, calls]
        scanned = cfg.rate_scan_windows - 1  # the windows the next scan looks at besides its own
        if drifted:
            base.stop("alarm")
        if cfg.reference == "trailing":
            older = max(0, len(recent) - scanned)
            start = older - trailing_span(sizes[:older], cfg.reference_windows,
                                          0 if drifted else cfg.rate_reference_calls)
        else:
            start = max(0, len(recent) - scanned)
            if cfg.reference == "pinned" and reference is not None and cfg.rate_reference_calls:
                for left, size in zip(recent[:start], sizes[:start], strict=True):
                    base.absorb(left, size, reference_calls=counted_calls(reference),
                                cap=cfg.rate_reference_calls)
        self.recent, base.calls = recent[start:], sizes[start:]

    def rate_history(self, cfg: DriftConfig, counts: RateCounts, calls: int, reference_counts: RateCounts,
                     reference_calls: int) -> tuple[list[RateCounts], RateCounts, int] | None:
        """The rate counts of the last windows (``counts``, the window being closed, last), of
        their baseline, and the baseline's calls: the pinned reference (``reference_counts``
        of ``reference_calls``) with the windows it absorbed, the seasonal reference, or the
        windows before them (``trailing_span``); None while a trailing key has too few."""
        windows = [*self.recent, counts]
        if cfg.reference != "trailing":
            base, counted = reference_counts, reference_calls
            if cfg.reference == "pinned" and self.baseline.absorbed_calls:
                base = add_counts([base, self.baseline.absorbed])
                counted += self.baseline.absorbed_calls
            return windows[-cfg.rate_scan_windows:], base, counted
        span = min(cfg.rate_scan_windows, len(windows) - cfg.reference_windows)
        if span < 1:
            return None
        older = [*self.baseline.calls, calls][:len(windows) - span]
        taken = trailing_span(older, cfg.reference_windows, cfg.rate_reference_calls)
        return windows[-span:], add_counts(windows[:len(windows) - span][-taken:]), sum(older[-taken:])
