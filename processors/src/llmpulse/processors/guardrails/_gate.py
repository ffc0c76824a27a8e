"""One pass over a text that says which of many patterns may occur in it.

Rules register *gate* patterns: regular expressions that match wherever the rule could
find something (a superset). With Hyperscan installed, all gates of a policy are compiled
into one database and a text is scanned once (~3 us a kilobyte on the reference CPU,
whatever the number of rules); only the rules whose gate fired then run their exact
Python expressions. Without Hyperscan, or for a pattern it cannot compile, the gate
answers "maybe" and the rule runs on every text: the same findings, more slowly.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Hashable, Sequence
from functools import lru_cache
from typing import Any

from llmpulse.processors.guardrails._gate_cache import cached_compile

__all__ = ["TextGate", "hyperscan_available", "relax"]

logger = logging.getLogger(__name__)

_hs: Any
try:  # pragma: no cover - depends on the platform's wheel
    import hyperscan as _hs
except ImportError:  # pragma: no cover
    _hs = None


def hyperscan_available() -> bool:
    """Whether the Hyperscan gate can be used on this machine."""
    return _hs is not None


_LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
_BOUNDED = re.compile(r"\{([0-9]+),[0-9]+\}")


def _group_end(regex: str, i: int) -> int:
    """The index just past the group that opens at ``regex[i]``."""
    depth, in_class, n = 0, False, len(regex)
    while i < n:
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if regex.startswith("^", i + 1):
                i += 1
            if regex.startswith("]", i + 1):
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


_NON_ASCII = "\\x{80}-\\x{10ffff}"
_UNICODE_SPACE = ("\\x{1c}-\\x{1f}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
                  "\\x{205f}\\x{3000}")
# Python's classes are Unicode-aware; the gate compiles in ASCII mode (UCP is 2-3x slower
# to compile), so each class is widened to an ASCII class plus what Unicode may add.
_IN_CLASS = {"w": "\\w" + _NON_ASCII, "d": "0-9" + _NON_ASCII, "s": "\\s" + _UNICODE_SPACE}


def _code_points(c: str) -> str:
    """A non-ASCII character as Hyperscan escapes, with its other case (Hyperscan's
    caseless mode folds ASCII only): ``é`` -> ``\\x{e9}\\x{c9}``."""
    variants = dict.fromkeys(v for v in (c, c.lower(), c.upper()) if len(v) == 1)
    return "".join(f"\\x{{{ord(v):x}}}" for v in variants)


def relax(regex: str) -> str:
    """A pattern that matches wherever ``regex`` does (and maybe more), in a form Hyperscan
    compiles fast: no word boundaries, lookarounds or upper bounds on repeats, Python's
    Unicode classes (``\\w``, ``\\d``, ``\\s``) widened for Hyperscan's ASCII ones, and
    non-ASCII letters written as code points in both cases, so the result is ASCII."""
    out: list[str] = []
    i, n = 0, len(regex)
    while i < n:
        c = regex[i]
        if not c.isascii():
            points = _code_points(c)
            out.append(points if points.count("\\x") == 1 else f"[{points}]")
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            nxt = regex[i + 1]
            if nxt in "bB":
                pass
            elif nxt in _IN_CLASS:
                out.append(f"[{_IN_CLASS[nxt]}]")
            else:
                out.append(regex[i:i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(regex, i)
            out.append(_widen_class(regex[i:end]))
            i = end
            continue
        if c == "{":
            bounded = _BOUNDED.match(regex, i)
            if bounded:  # x{2,120} -> x{2,}: bounded repeats make Hyperscan's compile explode
                low = bounded.group(1)
                out.append("*" if low == "0" else "+" if low == "1" else f"{{{low},}}")
                i = bounded.end()
                continue
        if regex.startswith(_LOOKAROUNDS, i):
            i = _group_end(regex, i)
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _class_end(regex: str, i: int) -> int:
    """The index just past the character class that opens at ``regex[i]``."""
    j = i + 1
    if regex.startswith("^", j):
        j += 1
    if regex.startswith("]", j):
        j += 1
    while j < len(regex) and regex[j] != "]":
        j += 2 if regex[j] == "\\" else 1
    return j + 1


def _widen_class(cls: str) -> str:
    negated = cls.startswith("[^")
    body = cls[2:-1] if negated else cls[1:-1]
    out: list[str] = []
    j = 0
    while j < len(body):
        if body[j] == "\\" and j + 1 < len(body):
            esc = body[j + 1]
            if negated and esc in "WDS":
                return "[\\s\\S]"  # Python's [^\\W] has letters Hyperscan's lacks: take any
            out.append(_IN_CLASS[esc] if esc in _IN_CLASS and not negated else body[j:j + 2])
            j += 2
        elif not body[j].isascii():
            ranged = body[j + 1:j + 2] == "-" or body[j - 1:j] == "-"
            out.append(f"\\x{{{ord(body[j]):x}}}" if ranged or negated else _code_points(body[j]))
            j += 1
        else:
            out.append(body[j])
            j += 1
    return ("[^" if negated else "[") + "".join(out) + "]"


def _compiles(expression: bytes, flag: int) -> bool:
    try:
        _hs.Database(mode=_hs.HS_MODE_BLOCK).compile(expressions=[expression], ids=[0], elements=1,
                                                     flags=[flag])
    except _hs.error:
        return False
    return True


@lru_cache(maxsize=32)
def _compile(patterns: tuple[tuple[bytes, int], ...]) -> tuple[Any, frozenset[int]]:
    """One database for the patterns that compile (ids follow the kept ones), and the
    indexes of those that do not. Cached: reloading an unchanged rule set is free, and a
    rule set compiled by an earlier process is loaded from disk (``_gate_cache``)."""
    if not patterns:
        return None, frozenset()
    return cached_compile(_hs, patterns, _compile_database, recipe=_RECIPE)


_RECIPE = "gate-1"
"""The version of ``_compile_database``'s recipe (mode, how refused patterns are left out):
bump it when the recipe changes, so no process loads an entry the old recipe compiled."""


def _compile_database(patterns: tuple[tuple[bytes, int], ...]) -> tuple[Any, frozenset[int]]:
    failed: frozenset[int] = frozenset()
    try:
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        db.compile(expressions=[e for e, _ in patterns], ids=list(range(len(patterns))),
                   elements=len(patterns), flags=[f for _, f in patterns])
        return db, failed
    except _hs.error:
        failed = frozenset(i for i, (e, f) in enumerate(patterns) if not _compiles(e, f))
    kept = [p for i, p in enumerate(patterns) if i not in failed]
    if not kept:
        return None, failed
    db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
    db.compile(expressions=[e for e, _ in kept], ids=list(range(len(kept))), elements=len(kept),
               flags=[f for _, f in kept])
    return db, failed


def _on_match(pattern_id: int, start: int, end: int, flags: int, hits: list[int]) -> None:
    hits.append(pattern_id)


class TextGate:
    """Which keys' patterns occur in a text.

    Args:
        patterns: ``(key, regex, flags)`` with Python ``re`` flags (IGNORECASE, MULTILINE,
            DOTALL are honoured); several patterns may share a key.
        use_hyperscan: False forces the pure-Python answer (every key, always).

    Attributes:
        backend: ``hyperscan`` or ``none``.
        always: keys whose pattern could not be compiled: reported for every text.
    """

    def __init__(self, patterns: Sequence[tuple[Hashable, str, int]], *,
                 use_hyperscan: bool = True) -> None:
        self.keys = sorted({key for key, _, _ in patterns}, key=repr)
        self.always: set[Hashable] = set()
        self._keys_by_id: list[Hashable] = []
        self._db: Any = None
        self._local = threading.local()
        self.backend = "none"
        if not (use_hyperscan and _hs is not None and patterns):
            self.always = set(self.keys)
            return
        prepared: list[tuple[Hashable, bytes, int]] = []
        for key, original, re_flags in patterns:
            regex = relax(original)
            flag = _hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_UTF8 | _hs.HS_FLAG_ALLOWEMPTY
            if re_flags & re.MULTILINE:
                flag |= _hs.HS_FLAG_MULTILINE
            if re_flags & re.DOTALL:
                flag |= _hs.HS_FLAG_DOTALL
            if re_flags & re.IGNORECASE:
                if not regex.isascii():  # Unicode case folding is Python's, not the gate's
                    self.always.add(key)
                    continue
                flag |= _hs.HS_FLAG_CASELESS
            prepared.append((key, regex.encode("utf-8"), flag))
        db, failed = _compile(tuple((e, f) for _, e, f in prepared))
        for index in sorted(failed):
            logger.info("guardrail gate: a pattern of %r runs ungated (Hyperscan cannot compile it)",
                        prepared[index][0])
            self.always.add(prepared[index][0])
        self._keys_by_id = [key for i, (key, _, _) in enumerate(prepared) if i not in failed]
        if db is not None:
            self._db = db
            self.backend = "hyperscan"

    def triggered(self, text: str) -> set[Hashable]:
        """The keys whose patterns match somewhere in ``text`` (plus the ungated keys)."""
        if self._db is None:
            return self.always
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _hs.Scratch(self._db)
        hits: list[int] = []
        self._db.scan(text.encode("utf-8", "surrogatepass"), match_event_handler=_on_match,
                      context=hits, scratch=scratch)
        keys = self._keys_by_id
        found = {keys[i] for i in hits}
        if self.always:
            found |= self.always
        return found
