"""Command-line pieces the benchmarks share.

Example:
    >>> names("heavy,backends", ("baselines", "backends", "heavy"))
    ('backends', 'heavy')
    >>> names("", ("a", "b"))
    ('a', 'b')
"""

from __future__ import annotations


def names(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated subset of ``known`` (empty: all), in ``known``'s order.

    Raises:
        SystemExit: a name ``known`` lacks (a typo would silently run less).
    """
    wanted = [t for t in text.split(",") if t]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(k for k in known if k in wanted) if wanted else known
