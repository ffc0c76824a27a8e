"""The rates' long baseline: counts of far more calls than the sample reference holds.

A rate test's power is limited by its reference's own noise: a pinned reference of 1,600
calls holds 16 errors at 1%, and a rise to 2.9% in the last windows is hard to tell from
that noise. Rates are cheap to keep (two integers per rate and window), so the rate scans
get a baseline of their own, up to ``DriftConfig.rate_reference_calls`` calls:

- ``pinned``: the reference's counts over every call it was built from (``pin_reference``'s
  calls, a ``reference_start``-``reference_end`` period's), not only its sample, up to the
  cap (``WindowData.rate_counts``: last week's 20,000 calls pinned give the rates 20,000 from
  the first window, not the sample's 2,000), plus the windows that passed, **absorbed** once they
  leave the scan (a window older than ``rate_scan_windows`` windows was part of that many
  scans without an alarm, and the windows a scan looks at are never in its baseline).
  Absorption **stops for good** at the first drifted window (of any feature: the windows
  pending then are not absorbed, and what follows may be the drift) and once the baseline
  reaches the cap, so a slow drift is learnt for at most ``rate_reference_calls`` calls
  after the reference and never after an alarm. A new reference (``pin_reference``,
  ``reset_reference``) starts it again. A key's state saved before this baseline existed
  restores with absorbing stopped (its alarms are not known). The calls counted are the
  calls the rates are counted on: each window's sample (``sample_size``).
- ``trailing``: the windows before the scanned ones, at least ``reference_windows`` and as
  many more as fit in the cap (it slides). At a drifted window it is cut back to
  ``reference_windows`` windows, so a shift resolves as fast as the trailing reference's.
- ``seasonal``: the slot's reference, as before (counts of other hours are other traffic).

- **cut at an alarm**: a rate whose scan fired scans only the windows since (the one that
  fired is not scanned again; ``since_alarm``), so one burst raises one alarm, not one per
  window it stays in the scan, and each new alarm rests on new evidence (a CUSUM's reset).
  A new pinned reference cuts every rate's scan: the windows before it were measured
  against another reference.

``rate_reference_calls: 0`` gives the rates the sample reference's counts alone (pinned)
or the ``reference_windows`` windows before the scan (trailing), as before it existed.

Example:
    >>> from llmpulse.processors.drift.baseline import RateBaseline
    >>> base = RateBaseline()
    >>> base.absorb({"error": [2, 200]}, 200, reference_calls=1600, cap=2000)
    True
    >>> base.absorb({"error": [1, 200]}, 200, reference_calls=1600, cap=2000)
    True
    >>> base.absorbed, base.absorbed_calls, base.absorbing, base.stopped
    ({'error': [3, 400]}, 400, False, 'cap')
    >>> base.absorb({"error": [0, 200]}, 200, reference_calls=1600, cap=2000)
    False
    >>> base.passed(["error"], scan_windows=6)  # the error scan fired in this window
    >>> base.scan_limits()  # the next window scans itself alone, then one more each time
    {'error': 1}
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

__all__ = ["RateBaseline", "trailing_span"]


class RateBaseline(Struct, kw_only=True, omit_defaults=True):
    """One key's rate baseline beyond its reference (stored with the key's state)."""

    calls: list[int] = []
    """The calls of each window whose counts ``KeyState.recent`` holds, same order."""
    absorbed: dict[str, list[int]] = {}
    """``pinned``: ``{rate: [events, calls]}`` of the windows absorbed since the reference."""
    absorbed_calls: int = 0
    """The calls of those windows."""
    absorbing: bool = True
    """``pinned``: whether windows leaving the scan are still absorbed."""
    stopped: str | None = None
    """Why absorbing stopped: ``alarm`` (a window was called drifted), ``cap``, or
    ``unknown_history`` (a state saved before the baseline existed: whether its key alarmed
    is not known, so it absorbs nothing until a new reference is pinned)."""
    since_alarm: dict[str, int] = {}
    """Rates whose scan fired lately: windows closed since; such a rate scans only those
    and the window being closed (absent: the last ``rate_scan_windows``)."""

    def absorb(self, counts: dict[str, list[int]], calls: int, *, reference_calls: int, cap: int) -> bool:
        """Add one window that left the scan (pinned); False when absorbing has stopped."""
        if not self.absorbing:
            return False
        if reference_calls + self.absorbed_calls + calls > cap:  # never beyond the cap
            self.stop("cap")
            return False
        for name, (hits, n) in counts.items():
            held = self.absorbed.setdefault(name, [0, 0])
            held[0] += hits
            held[1] += n
        self.absorbed_calls += calls
        if reference_calls + self.absorbed_calls >= cap:
            self.stop("cap")
        return True

    def stop(self, reason: str) -> None:
        """Absorb nothing more (``alarm`` or ``cap``); the first reason is kept."""
        if self.absorbing:
            self.absorbing, self.stopped = False, reason

    def restart(self) -> None:
        """A new reference: nothing absorbed yet, absorbing again (the windows' calls kept)."""
        self.absorbed, self.absorbed_calls, self.absorbing, self.stopped = {}, 0, True, None
        self.since_alarm = {}

    def scan_limits(self) -> dict[str, int]:
        """The windows each cut rate may scan now, the one being closed included."""
        return {name: since + 1 for name, since in self.since_alarm.items()}

    def passed(self, fired: Sequence[str], scan_windows: int) -> None:
        """A window closed: the cut rates scan one window more (until the whole
        ``scan_windows``); the rates in ``fired`` alarmed in it and start again after it."""
        self.since_alarm = {name: since + 1 for name, since in self.since_alarm.items()
                            if since + 2 < scan_windows}
        self.since_alarm.update(dict.fromkeys(fired, 0))


def trailing_span(older_calls: Sequence[int], reference_windows: int, cap: int) -> int:
    """How many of the windows before the scanned ones a trailing baseline takes.

    Args:
        older_calls: their calls, oldest first.
        reference_windows: at least this many (all if fewer).
        cap: and more while their calls stay within it.

    Example:
        >>> trailing_span([200] * 20, 4, 2000), trailing_span([200] * 20, 4, 0)
        (10, 4)
        >>> trailing_span([200] * 3, 4, 0)
        3
    """
    taken = total = 0
    for calls in reversed(older_calls):
        if taken >= reference_windows and total + calls > cap:
            break
        taken += 1
        total += calls
    return taken
