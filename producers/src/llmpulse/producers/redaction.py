"""Redaction before anything leaves the process.

Built-in maskers find emails, phone numbers, card numbers (Luhn-checked), API keys and
secrets, and IP addresses, and replace each with a tag such as ``[EMAIL]``. A user
function can run after them. The SDK applies the configured ``Redactor`` to every text
of an event (messages, retrieved documents, template variables, the response, error
messages, feedback comments and corrections) on the app's side, before encoding.

Example:
    >>> from llmpulse.producers.redaction import Redactor
    >>> r = Redactor()  # every built-in masker
    >>> r("Mail ada@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstu1234")
    'Mail [EMAIL], card [CARD], key [SECRET]'
    >>> r("order 4111 1111 1111 1112 is not a card (Luhn fails)")
    'order 4111 1111 1111 1112 is not a card (Luhn fails)'
    >>> Redactor(["email"], custom=str.upper)("x@y.io says hi")
    '[EMAIL] SAYS HI'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

__all__ = ["MASKERS", "Redactor", "luhn_valid"]

_SECRET_PATTERNS = [
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",  # OpenAI / Anthropic style keys
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{36,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{40,}",
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
    r"-----BEGIN (?:[A-Z ]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z ]+ )?PRIVATE KEY-----",
    r"(?i:bearer)\s+[A-Za-z0-9_\-\.=]{16,}",
    r"(?i:(?:api[_-]?key|secret|passw(?:or)?d|token|access[_-]?key)\s*[:=]\s*)[^\s,;]{6,}",
]
# Cheap substring tests (on the lower-cased text) that gate the slower regular expression.
_SECRET_HINTS = ("sk-", "akia", "gh", "xox", "aiza", "eyj", "-----begin", "bearer", "key",
                 "secret", "passw", "token")
_DIGITS = "0123456789"

MASKERS: dict[str, str] = {
    "secret": "[SECRET]",
    "email": "[EMAIL]",
    "card": "[CARD]",
    "phone": "[PHONE]",
    "ip": "[IP]",
}
"""Built-in maskers by name, with the tag that replaces what they find. They run in this
order: secrets first (a key may hold digits that look like a phone number)."""

_SECRET = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# One scan finds every run of digits with separators; each run is then classified.
_DIGIT_RUN = re.compile(r"[+(\d][\d .()\-+]{5,}\d")
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)")
_IPV4_IN = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){2,7}:?[0-9A-Fa-f]{0,4}(?![:\w])"
                   r"|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:)+:(?:[0-9A-Fa-f]{1,4}:?)*(?![:\w])")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_CARD_SHAPE = re.compile(r"\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}|\d{4}[ -]?\d{6}[ -]?\d{5}")


def _ip6(match: re.Match[str]) -> str:
    """An IPv6 address has '::' or at least five colons (clock times have two)."""
    found = match.group(0)
    return "[IP]" if "::" in found or found.count(":") >= 5 else found


def _plausible_phone(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 7 <= digits <= 15 and not _DATE.fullmatch(text.strip())


def luhn_valid(digits: str) -> bool:
    """True when the digits (spaces and dashes ignored) pass the Luhn check."""
    nums = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(nums) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


class Redactor:
    """Masks sensitive values in text. Callable: ``redactor(text) -> text``.

    Args:
        maskers: names from ``MASKERS`` to apply (default: all of them).
        custom: a function run on the text after the maskers, e.g. to drop a customer's
            internal ids. If it raises, the text is replaced by ``[REDACTION FAILED]``
            rather than leaving the process unmasked.
    """

    def __init__(
        self,
        maskers: Iterable[str] | None = None,
        *,
        custom: Callable[[str], str] | None = None,
    ) -> None:
        names: Sequence[str] = list(MASKERS) if maskers is None else list(maskers)
        unknown = [n for n in names if n not in MASKERS]
        if unknown:
            raise ValueError(f"unknown maskers {unknown}; choose from {sorted(MASKERS)}")
        self.maskers = tuple(n for n in MASKERS if n in names)
        self.custom = custom
        self._secret = "secret" in names
        self._email = "email" in names
        self._card = "card" in names
        self._phone = "phone" in names
        self._ip = "ip" in names

    def _ip4(self, match: re.Match[str]) -> str:
        return "[IP]" if _IPV4.fullmatch(match.group(0)) else match.group(0)

    def _card_number(self, match: re.Match[str]) -> str:
        return "[CARD]" if luhn_valid(match.group(0)) else match.group(0)

    def _digit_run(self, match: re.Match[str]) -> str:
        run = match.group(0)
        if self._ip and "." in run:
            masked = _IPV4_IN.sub(self._ip4, run)
            if masked != run:
                return masked
        if self._card and _CARD_SHAPE.search(run):
            masked = _CARD_SHAPE.sub(self._card_number, run)
            if masked != run:
                return masked
        core = run.strip(" .-")
        if self._phone and _plausible_phone(core):
            return run.replace(core, "[PHONE]", 1)
        return run

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self._secret:
            lowered = text.lower()
            if any(hint in lowered for hint in _SECRET_HINTS):
                text = _SECRET.sub("[SECRET]", text)
        if self._email and "@" in text:
            text = _EMAIL.sub("[EMAIL]", text)
        if (self._card or self._phone or self._ip) and any(d in text for d in _DIGITS):
            text = _DIGIT_RUN.sub(self._digit_run, text)
        if self._ip and text.count(":") >= 2:
            text = _IPV6.sub(_ip6, text)
        if self.custom is not None:
            try:
                text = self.custom(text)
            except Exception:  # a broken user function must not leak the text
                return "[REDACTION FAILED]"
        return text

    def __repr__(self) -> str:
        return f"Redactor(maskers={list(self.maskers)!r}, custom={self.custom!r})"
