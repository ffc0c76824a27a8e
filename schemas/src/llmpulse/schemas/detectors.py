"""Detectors of personal data and secrets in text: spans and masked previews, stdlib only.

Every detector returns ``Finding``s: the kind, the span, and a preview with the sensitive
part masked (``j***@***.com``, ``**** **** **** 1111``, ``AKIA…[20 chars]``); the value
itself is never kept. Candidates are validated where a checksum exists (Luhn for cards,
ISO 7064 mod 97 for IBANs, the SSN and DNI rules), so ``4111 1111 1111 1111`` is a card
and ``4111 1111 1111 1112`` is not.

One module for both users of it: the SDK's redaction (``llmpulse.producers.redaction``)
masks what it finds before anything leaves the app, and the guardrails report it. It
depends on the standard library only. It is built for the stream's light path: cheap
substring tests gate every regular expression (Python's ``re`` scans ~20 ns a character
on the reference CPU), so text with nothing to find costs a few microseconds per KB.

Example:
    >>> from llmpulse.schemas.detectors import find_pii, find_secrets
    >>> [(f.kind, f.preview) for f in find_pii("mail ada@example.com, card 4111 1111 1111 1111")]
    [('email', 'a***@***.com'), ('credit_card', '**** **** **** 1111')]
    >>> find_pii("order 4111 1111 1111 1112")
    []
    >>> [(f.kind, f.preview) for f in find_secrets("key AKIAIOSFODNN7EXAMPLE")]
    [('aws_access_key', 'AKIA…[20 chars]')]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from typing import NamedTuple

__all__ = [
    "PII_KINDS",
    "SECRET_KINDS",
    "Finding",
    "find_pii",
    "find_secrets",
    "iban_valid",
    "luhn_valid",
]

PII_KINDS = ("email", "phone", "credit_card", "iban", "national_id", "ip_address")
"""Personal data kinds. ``national_id`` covers US SSN, UK NINO and Spanish DNI."""

SECRET_KINDS = ("aws_access_key", "github_token", "openai_key", "anthropic_key", "slack_token",
                "google_api_key", "stripe_key", "jwt", "private_key", "bearer_token",
                "password_in_url", "credential_assignment")
"""Secret kinds: vendor key formats, tokens, private keys and ``password=...`` pairs."""


class Finding(NamedTuple):
    """One thing found: what, where (``text[start:end]``), and a masked preview."""

    kind: str
    start: int
    end: int
    preview: str
    subtype: str = ""


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (spaces, dashes and other non-digits ignored)."""
    total = 0
    i = 0
    for ch in reversed(digits):
        d = ord(ch) - 48
        if not 0 <= d <= 9:
            continue
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        i += 1
    return i > 0 and total % 10 == 0


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def iban_valid(iban: str) -> bool:
    """An IBAN's country length and ISO 7064 mod-97 check (spaces ignored)."""
    compact = iban.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


# --- masking: the preview keeps the shape, never the value -------------------------------

def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    tld = domain.rsplit(".", 1)[-1]
    return f"{local[:1]}***@***.{tld}"


def _keep_tail(value: str, keep: int) -> str:
    seen = 0
    out = []
    for ch in reversed(value):
        if ch.isalnum():
            seen += 1
            out.append(ch if seen <= keep else "*")
        else:
            out.append(ch)
    return "".join(reversed(out))


def _mask_secret(value: str, prefix: str) -> str:
    return f"{prefix}…[{len(value)} chars]"


# --- personal data ------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Every run of digits with separators, and IBAN-shaped tokens, in one scan.
_CANDIDATE = re.compile(
    r"(?P<iban>\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b)"
    r"|(?P<nino>\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b)"
    r"|(?P<run>(?<![\w.\-])\+?\(?[0-9](?:[ ().\-/\u00a0]{0,3}[0-9]){3,}(?P<letter>[A-Z])?(?!\w))"
)
_SSN = re.compile(r"([0-9]{3})[- ]([0-9]{2})[- ]([0-9]{4})")
_DATE = re.compile(r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)(?![\w:])")
_PHONE_WORDS = ("phone", "tel", "call", "mobile", "cell", "whatsapp", "sms", "fax")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_DIGITS = "0123456789"
_DIGIT_KINDS = frozenset({"phone", "credit_card", "iban", "national_id", "ip_address"})


def _digit_count(text: str) -> int:
    return sum(text.count(d) for d in _DIGITS)


def _ip_finding(text: str, start: int, end: int, private_ips: bool) -> Finding | None:
    value = text[start:end]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if not private_ips and not address.is_global:
        return None
    if address.version == 4:
        head = value.split(".")
        return Finding("ip_address", start, end, f"{head[0]}.{head[1]}.*.*", "ipv4")
    return Finding("ip_address", start, end, value.split(":", 1)[0] + ":…", "ipv6")


def _classify_run(text: str, m: re.Match[str], wanted: Collection[str],
                  private_ips: bool, loose_phones: bool) -> Finding | None:
    start, end = m.span("run")
    letter = m.group("letter")
    if letter:
        end -= 1
    value = text[start:end]
    digits = "".join(ch for ch in value if ch.isdigit())
    n = len(digits)
    if letter:
        if "national_id" in wanted and n == 8 and value.isdigit() \
                and _DNI_LETTERS[int(digits) % 23] == letter:
            return Finding("national_id", start, end + 1, "********" + letter, "es_dni")
        return None
    if "ip_address" in wanted and _IPV4.fullmatch(value):
        return _ip_finding(text, start, end, private_ips)
    if "national_id" in wanted and n == 9 and _SSN.fullmatch(value):
        area, group, serial = _SSN.fullmatch(value).groups()  # type: ignore[union-attr]
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            return Finding("national_id", start, end, "***-**-****", "us_ssn")
        return None
    if "credit_card" in wanted and 13 <= n <= 19 and luhn_valid(digits) \
            and not any(ch in value for ch in "()./"):
        return Finding("credit_card", start, end, _keep_tail(value, 4))
    if "phone" in wanted and (7 if loose_phones else 8) <= n <= 15 and not _DATE.match(value):
        plus = value.startswith("+")
        separated = any(ch in value for ch in " -().")
        if loose_phones or plus or (separated and n >= 10) or (
                n >= 10 and _near(text, start, _PHONE_WORDS)):
            return Finding("phone", start, end, _keep_tail(value, 2))
    return None


def _near(text: str, start: int, words: tuple[str, ...]) -> bool:
    before = text[max(0, start - 24):start].lower()
    return any(word in before for word in words)


def find_pii(text: str, kinds: Collection[str] = PII_KINDS, *,
             private_ips: bool = False, loose_phones: bool = False) -> list[Finding]:
    """Personal data in ``text``, in order of position.

    Args:
        text: the text to scan.
        kinds: which of ``PII_KINDS`` to look for.
        private_ips: also report private, loopback and reserved IP addresses.
        loose_phones: any run of 7-15 digits that is not a date is a phone (redaction
            would rather mask an order number than leak a phone); by default a phone needs
            a ``+``, separators, or a word such as "call" before it.
    """
    found: list[Finding] = []
    if "email" in kinds and "@" in text:
        found.extend(Finding("email", m.start(), m.end(), _mask_email(m.group()))
                     for m in _EMAIL.finditer(text))
    if "ip_address" in kinds and ("::" in text or text.count(":") >= 7):
        for m in _IPV6.finditer(text):
            value = m.group()
            if sum(ch != ":" for ch in value) >= 6:
                finding = _ip_finding(text, m.start(), m.end(), private_ips)
                if finding is not None:
                    found.append(finding)
    if not _DIGIT_KINDS.isdisjoint(kinds) and _digit_count(text) >= (4 if "ip_address" in kinds else 6):
        for m in _CANDIDATE.finditer(text):
            kind = m.lastgroup
            if kind == "iban":
                if "iban" in kinds and iban_valid(m.group()):
                    value = m.group()
                    found.append(Finding("iban", m.start(), m.end(), value[:2] + "**…" + value[-2:]))
            elif kind == "nino":
                if "national_id" in kinds:
                    found.append(Finding("national_id", m.start(), m.end(), "** ** ** ** *", "uk_nino"))
            else:
                finding = _classify_run(text, m, kinds, private_ips, loose_phones)
                if finding is not None:
                    found.append(finding)
    if len(found) > 1:
        found.sort(key=lambda f: f.start)
    return found


# --- secrets ------------------------------------------------------------------------------

class _SecretPattern(NamedTuple):
    kind: str
    hints: tuple[str, ...]
    """Literal substrings one of which must be in the text (case-sensitive)."""
    regex: re.Pattern[str]
    prefix_chars: int
    """How much of the match is a public prefix the preview may show."""


_SECRETS = (
    _SecretPattern("aws_access_key", ("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 4),
    _SecretPattern("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
                   re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"), 4),
    _SecretPattern("anthropic_key", ("sk-ant-",), re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"), 7),
    _SecretPattern("openai_key", ("sk-",),
                   re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"), 3),
    _SecretPattern("slack_token", ("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), 5),
    _SecretPattern("google_api_key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), 4),
    _SecretPattern("stripe_key", ("sk_live_", "rk_live_", "sk_test_", "rk_test_"),
                   re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"), 8),
    _SecretPattern("jwt", ("eyJ",),
                   re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), 3),
    _SecretPattern("private_key", ("-----BEGIN",),
                   re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----"
                              r"(?:[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)"), 10),
)
_BEARER = re.compile(r"bearer\s+([A-Za-z0-9_\-.=~+/]{16,})", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]+:([^\s@/]{3,})@")
_ASSIGNMENT = re.compile(
    r"(?:api[_\-]?key|apikey|secret(?:[_\-]?key)?|access[_\-]?(?:key|token)|auth[_\-]?token|token"
    r"|passw(?:or)?d|pwd|client[_\-]?secret)[\"']?\s*[:=]\s*[\"']?([^\s\"',;()<>{}\[\]]{8,})",
    re.IGNORECASE,
)
_ASSIGNMENT_HINTS = ("key", "secret", "token", "passw", "pwd")
_PLACEHOLDER = re.compile(r"^(?:x+|\*+|\.+|<.*>|\$\{?.*|your[_\-].*|os\.environ.*|getenv.*|env\..*"
                          r"|process\.env.*|none|null|true|false|redacted|\[redacted\].*|example.*)$",
                          re.IGNORECASE)


def _credential_value(value: str) -> bool:
    if _PLACEHOLDER.match(value):
        return False
    has_digit = any(ch.isdigit() for ch in value)
    has_alpha = any(ch.isalpha() for ch in value)
    return (has_digit and has_alpha) or len(value) >= 16


def find_secrets(text: str, kinds: Collection[str] = SECRET_KINDS) -> list[Finding]:
    """Secrets and credentials in ``text``, in order of position."""
    found: list[Finding] = []
    for pattern in _SECRETS:
        if pattern.kind in kinds and any(hint in text for hint in pattern.hints):
            for m in pattern.regex.finditer(text):
                value = m.group()
                found.append(Finding(pattern.kind, m.start(), m.end(),
                                     _mask_secret(value, value[:pattern.prefix_chars])))
    lowered: str | None = None
    if "bearer_token" in kinds:
        lowered = text.lower()
        if "bearer" in lowered:
            for m in _BEARER.finditer(text):
                found.append(Finding("bearer_token", m.start(1), m.end(1), _mask_secret(m.group(1), "")))
    if "password_in_url" in kinds and "://" in text and "@" in text:
        for m in _URL_PASSWORD.finditer(text):
            found.append(Finding("password_in_url", m.start(1), m.end(1), "***"))
    if "credential_assignment" in kinds and ("=" in text or ":" in text):
        lowered = lowered if lowered is not None else text.lower()
        if any(hint in lowered for hint in _ASSIGNMENT_HINTS):
            taken = [(f.start, f.end) for f in found]
            for m in _ASSIGNMENT.finditer(text):
                start, end = m.span(1)
                if _credential_value(m.group(1)) and not any(s < end and start < e for s, e in taken):
                    found.append(Finding("credential_assignment", start, end,
                                         _mask_secret(m.group(1), "")))
    if len(found) > 1:
        found.sort(key=lambda f: f.start)
    return found
