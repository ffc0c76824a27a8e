"""Which apps a Collector bearer token may write.

One tokens file serves both sides. Each line is ``<token> <app>[,<app>...]`` (``*`` for any
app); the Collector's ``bearertokenauth`` extension reads the first field of every line as a
valid token and ignores the rest, so the same file both authenticates at the Collector and
binds each token to its apps here. It takes the first field of *every* line, comments
included (a line ``# <token> <app>`` makes ``Bearer #`` a valid credential), so
:meth:`TokenBindings.parse` refuses, with the line's number, any line the Collector would
take as a token that is not a token bound to apps here: a comment, a token outside RFC 6750's
``b64token`` characters, a token without apps, a token twice, or characters that Go and
Python split into lines or fields differently. Lines of spaces and tabs only are skipped by
both.

The Collector never forwards the token: its ``resource`` processor copies the request's
``Authorization`` header (client metadata) into the resource attribute
``llmpulse.auth.token_sha256`` and replaces it by its SHA-256 hash, so Kafka only ever holds
the hash. The mapper hashes ``"Bearer <token>"`` for every line the same way and looks the
attribute up; a span whose app is not bound to its token is dead-lettered with reason
``app_not_allowed``.

The Collector re-reads the file when it changes, so the stage does too: a
:class:`TokensFile` looks at the file at most once a second on the processing path, and once
more (at most ten times a second) before a span is dead-lettered ``app_not_allowed``, so a
token added a moment ago is honoured. What a new version adds takes effect at once; what it
removes (a token revoked, an app unbound) only when two looks in a row read the same bytes,
so a file caught half rewritten (an editor truncates, then writes) revokes nothing. An
invalid version (say a ``# note`` line added by hand, which the Collector now takes as a
token) is logged at ERROR once per change, and until the file is valid again the stage
honours only the tokens of its last valid version that are still first fields of the file:
a token added or revoked meanwhile, and the comment's "token", have their spans
dead-lettered (``app_not_allowed``), while the tokens in service go on.

Example:
    >>> bindings = TokenBindings.parse("s3cret support-bot,faq-bot\\n")
    >>> digest = header_sha256("s3cret")
    >>> bindings.allows(digest, "faq-bot"), bindings.allows(digest, "billing")
    (True, False)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TOKEN_HASH_ATTRIBUTE", "TokenBindings", "TokensFile", "TokensFileError",
           "header_sha256"]

logger = logging.getLogger(__name__)

TOKEN_HASH_ATTRIBUTE = "llmpulse.auth.token_sha256"  # noqa: S105 - an attribute name
"""Resource attribute the Collector config sets: SHA-256 (hex) of the Authorization header."""


# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Anything but printable ASCII, space and tab: Go and Python split lines and fields on
# different sets of such characters (Python's splitlines and split take \x1c-\x1f, \v, \f,
# U+2028 ...), so a file holding them could mean one thing to the Collector, another here.
_UNSAFE = re.compile(r"[^\x20-\x7e\t]")
# Go's bufio.Scanner stops at a line over 64 KiB: the Collector would drop every later token.
_MAX_LINE = 4096
_REFRESH_S = 0.1
"""Least seconds between two looks at the tokens file forced by a refused span."""
_CONFIRM_S = 1.0
"""Least seconds between the two looks that must read a version taking rights away."""


class TokensFileError(ValueError):
    """A tokens file line the Collector would read differently from the OTLP stage."""

    def __init__(self, line: int, problem: str, *, path: str = "tokens file") -> None:
        super().__init__(f"{path}, line {line}: {problem}")
        self.line, self.problem = line, problem


def header_sha256(token: str, scheme: str = "Bearer") -> str:
    """The hash the Collector's ``resource`` processor writes for this token."""
    return hashlib.sha256(f"{scheme} {token}".encode()).hexdigest()


@dataclass(frozen=True)
class TokenBindings:
    """Token hash -> apps it may write (``*``: any)."""

    apps_by_hash: Mapping[str, frozenset[str]] = field(default_factory=dict)
    problem: str | None = None
    """Why these are not the file's own bindings (it is invalid): said in a dead letter."""

    @classmethod
    def parse(cls, text: str) -> TokenBindings:
        """Read the tokens file's text as the Collector does, refusing what it would misread.

        Lines are split as Go's ``bufio.ScanLines`` splits them (on ``\\n``, one trailing
        ``\\r`` dropped) and fields on spaces and tabs, as ``strings.Fields`` does for the
        only characters allowed (printable ASCII, space, tab).

        Raises:
            TokensFileError: naming the first line the Collector would take as a token that
                is not one bound to apps here.
        """
        bound: dict[str, frozenset[str]] = {}
        for number, line in enumerate(text.split("\n"), start=1):
            line = line.removesuffix("\r")
            if bad := _UNSAFE.search(line):
                raise TokensFileError(number, f"character {bad.group()!r} (only printable ASCII, "
                                              "spaces and tabs)")
            if len(line) > _MAX_LINE:
                raise TokensFileError(number, f"longer than {_MAX_LINE} characters")
            fields = line.split()
            if not fields:
                continue  # the Collector skips it too: no token
            token, apps_text = fields[0], ",".join(fields[1:])
            if token.startswith(("#", "//")) or not _B64TOKEN.fullmatch(token):
                raise TokensFileError(number, "not '<token> <app>[,<app>...]': the Collector "
                                              "takes the first field of every line as a valid "
                                              "token (no comment lines); a token is RFC 6750 "
                                              "b64token characters (A-Z a-z 0-9 - . _ ~ + / =)")
            apps = frozenset(a for a in apps_text.split(",") if a)
            if not apps:
                raise TokensFileError(number, "a token without apps (the Collector would "
                                              "accept it; name its apps, or '*' for any)")
            if any(app.startswith(("#", "//")) for app in apps):
                raise TokensFileError(number, "a comment after the apps (no comments)")
            digest = header_sha256(token)
            if digest in bound:
                raise TokensFileError(number, "the same token again (bind it once, to all its apps)")
            bound[digest] = apps
        return cls(bound)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenBindings:
        """Read and check the tokens file at ``path`` (see :meth:`parse`)."""
        return cls._read(Path(path).read_bytes(), path)

    @classmethod
    def _read(cls, data: bytes, path: str | os.PathLike[str]) -> TokenBindings:
        try:
            return cls.parse(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise TokensFileError(data.count(b"\n", 0, exc.start) + 1, "the file is not UTF-8",
                                  path=str(path)) from None
        except TokensFileError as err:
            raise TokensFileError(err.line, err.problem, path=str(path)) from None

    def allows(self, token_sha256: str | None, app: str) -> bool:
        """May the token with this hash write spans of ``app``?"""
        if not token_sha256:
            return False
        apps = self.apps_by_hash.get(token_sha256)
        return apps is not None and ("*" in apps or app in apps)

    def __len__(self) -> int:
        return len(self.apps_by_hash)

    def narrows(self, before: TokenBindings) -> bool:
        """Does this version take away a right ``before`` gave (a token, or an app of one)?"""
        now = self.apps_by_hash
        return any(digest not in now or not (apps <= now[digest] or "*" in now[digest])
                   for digest, apps in before.apps_by_hash.items())

    def widened_by(self, other: TokenBindings) -> TokenBindings:
        """These rights plus ``other``'s, with ``other``'s problem (what a version not yet
        confirmed may add at once)."""
        merged = dict(self.apps_by_hash)
        for digest, apps in other.apps_by_hash.items():
            merged[digest] = merged.get(digest, frozenset()) | apps
        return TokenBindings(merged, problem=other.problem)


def _first_fields(data: bytes) -> set[str]:
    """The first field of every line: what the Collector takes as tokens, whatever else the
    lines hold (Python's field split is wider than Go's; a token it would misread is refused
    by ``parse``, so this only narrows bindings already checked)."""
    return {fields[0] for line in data.decode("utf-8", "replace").split("\n")
            if (fields := line.split())}


class TokensFile:
    """The tokens file as the stage honours it while the Collector may re-read it.

    ``bindings()`` looks at the file at most once per ``interval_s`` (by ``clock``) and
    re-reads it when its bytes changed. See the module's doc for an invalid file.

    Args:
        path: the tokens file; it must be valid now.
        interval_s: least time between two looks at the file.
        clock: monotonic seconds (tests pass their own).

    Raises:
        TokensFileError: the file is not valid now (as :meth:`TokenBindings.load`).
        OSError: it cannot be read.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
        ...     _ = f.write("s3cret support-bot\\n")
        >>> tokens = TokensFile(f.name)
        >>> tokens.bindings().allows(header_sha256("s3cret"), "support-bot")
        True
        >>> os.unlink(f.name)
    """

    def __init__(self, path: str | os.PathLike[str], *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.interval_s, self.clock = str(path), interval_s, clock
        self._data: bytes | None = Path(path).read_bytes()
        self._valid = self._applied = self._current = TokenBindings._read(self._data, self.path)
        self._pending: bytes | None = None  # a version that narrows, waiting for a second read
        self._pending_since = 0.0  # when that version was first read
        self._next_look = clock() + interval_s
        self._next_refresh = clock()

    def bindings(self) -> TokenBindings:
        """The bindings to check spans against now (cheap: a clock reading, but for one
        look at the file per interval)."""
        now = self.clock()
        if now >= self._next_look:
            self._next_look = now + self.interval_s
            self._look(now)
        return self._current

    def refresh(self) -> TokenBindings:
        """Look at the file now, at most ten times a second: the stage calls it before it
        dead-letters a span ``app_not_allowed``, so a token the Collector took a moment ago
        is not refused for the second until the next look."""
        now = self.clock()
        if now >= self._next_refresh:
            self._next_refresh = now + _REFRESH_S
            self._look(now)
        return self._current

    def _look(self, now: float) -> None:
        try:
            data = Path(self.path).read_bytes()
        except OSError as exc:
            if self._data is not None:  # once per change: the file went away or is unreadable
                logger.error("tokens file %s cannot be read (%s): the OTLP stage keeps its last "
                             "bindings", self.path, exc)
                self._data = None
            return
        if data == self._data:
            self._pending, self._current = None, self._applied  # back to the version in force
            return
        error: TokensFileError | None = None
        try:
            candidate = TokenBindings._read(data, self.path)
        except TokensFileError as err:
            error = err
            present = {header_sha256(token) for token in _first_fields(data)}
            kept = {h: apps for h, apps in self._valid.apps_by_hash.items() if h in present}
            candidate = TokenBindings(kept, problem=f"the tokens file is invalid (line {err.line}: "
                                      f"{err.problem}); only tokens of its last valid version "
                                      "are honoured")
        if candidate.narrows(self._applied) and (
                data != self._pending or now - self._pending_since < _CONFIRM_S):
            # Rights go only when a look at least a second after the first reads the same
            # bytes: a file caught half rewritten is not a revocation (a refused span's
            # looks come a tenth of a second apart). What it adds holds at once.
            if data != self._pending:
                self._pending, self._pending_since = data, now
            self._current = self._applied.widened_by(candidate)
            return
        self._pending, self._data, self._applied = None, data, candidate
        self._current = candidate
        if error is not None:
            logger.error("%s. The Collector already takes the first field of every line as a "
                         "token: fix the file. Until then the OTLP stage honours only the %d "
                         "token(s) of its last valid version still in it, and dead-letters "
                         "(app_not_allowed) the spans of any other", error, len(candidate))
            return
        self._valid = candidate
        logger.info("tokens file %s re-read: %d tokens", self.path, len(candidate))
