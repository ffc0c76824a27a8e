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

Example:
    >>> bindings = TokenBindings.parse("s3cret support-bot,faq-bot\\n")
    >>> digest = header_sha256("s3cret")
    >>> bindings.allows(digest, "faq-bot"), bindings.allows(digest, "billing")
    (True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TOKEN_HASH_ATTRIBUTE", "TokenBindings", "TokensFileError", "header_sha256"]

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
        data = Path(path).read_bytes()
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
