"""Which apps a Collector bearer token may write.

One tokens file serves both sides. Each line is ``<token> <app>[,<app>...]`` (``*`` for any
app); the Collector's ``bearertokenauth`` extension reads the first field of every line as a
valid token and ignores the rest, so the same file both authenticates at the Collector and
binds each token to its apps here. The Collector never forwards the token: its ``resource``
processor copies the request's ``Authorization`` header (client metadata) into the resource
attribute ``llmpulse.auth.token_sha256`` and replaces it by its SHA-256 hash, so Kafka only
ever holds the hash. The mapper hashes ``"Bearer <token>"`` for every line the same way and
looks the attribute up; a span whose app is not bound to its token is dead-lettered with
reason ``app_not_allowed``.

Example:
    >>> bindings = TokenBindings.parse("s3cret support-bot,faq-bot\\n")
    >>> digest = header_sha256("s3cret")
    >>> bindings.allows(digest, "faq-bot"), bindings.allows(digest, "billing")
    (True, False)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TOKEN_HASH_ATTRIBUTE", "TokenBindings", "header_sha256"]

TOKEN_HASH_ATTRIBUTE = "llmpulse.auth.token_sha256"  # noqa: S105 - an attribute name
"""Resource attribute the Collector config sets: SHA-256 (hex) of the Authorization header."""


def header_sha256(token: str, scheme: str = "Bearer") -> str:
    """The hash the Collector's ``resource`` processor writes for this token."""
    return hashlib.sha256(f"{scheme} {token}".encode()).hexdigest()


@dataclass(frozen=True)
class TokenBindings:
    """Token hash -> apps it may write (``*``: any)."""

    apps_by_hash: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> TokenBindings:
        """Read the tokens file's text; a line without apps binds its token to no app."""
        bound: dict[str, frozenset[str]] = {}
        for line in text.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            apps = frozenset(a for a in ",".join(fields[1:]).split(",") if a)
            bound[header_sha256(fields[0])] = apps
        return cls(bound)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenBindings:
        return cls.parse(Path(path).read_text(encoding="utf-8"))

    def allows(self, token_sha256: str | None, app: str) -> bool:
        """May the token with this hash write spans of ``app``?"""
        if not token_sha256:
            return False
        apps = self.apps_by_hash.get(token_sha256)
        return apps is not None and ("*" in apps or app in apps)

    def __len__(self) -> int:
        return len(self.apps_by_hash)
