"""Redaction before anything leaves the process.

Built-in maskers replace what the shared detectors (``llmpulse.schemas.detectors``, the
same ones the guardrails report with) find: secrets and API keys, emails, card numbers
(Luhn-checked), phone numbers, IP addresses, IBANs (mod-97 checked) and national ids,
each with a tag such as ``[EMAIL]``. A user function can run after them. The SDK applies
the configured ``Redactor`` to every text of an event (messages, retrieved documents,
template variables, the response, error messages, feedback comments and corrections)
before it is encoded.

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

from collections.abc import Callable, Iterable, Sequence

from llmpulse.schemas.detectors import Finding, find_pii, find_secrets, luhn_valid

__all__ = ["MASKERS", "Redactor", "luhn_valid"]

MASKERS: dict[str, str] = {
    "secret": "[SECRET]",
    "email": "[EMAIL]",
    "card": "[CARD]",
    "phone": "[PHONE]",
    "ip": "[IP]",
    "iban": "[IBAN]",
    "national_id": "[NATIONAL_ID]",
}
"""Built-in maskers by name, with the tag that replaces what they find. Secrets win where
a secret and personal data overlap (a key may hold digits that look like a phone)."""

_PII_KIND = {"email": "email", "card": "credit_card", "phone": "phone", "ip": "ip_address",
             "iban": "iban", "national_id": "national_id"}
_TAG = {kind: MASKERS[name] for name, kind in _PII_KIND.items()}


class Redactor:
    """Masks sensitive values in text. Callable: ``redactor(text) -> text``.

    Args:
        maskers: names from ``MASKERS`` to apply (default: all of them).
        custom: a function run on the text after the maskers, e.g. to drop a customer's
            internal ids. If it raises, the text is replaced by ``[REDACTION FAILED]``
            rather than leaving the process unmasked.

    Phones are matched loosely (any 7-15 digits that are not a date) and private IP
    addresses are masked too: here a false alarm costs a masked order number, a miss
    leaks personal data.
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
        self._pii = tuple(_PII_KIND[n] for n in self.maskers if n in _PII_KIND)

    def _findings(self, text: str) -> list[tuple[Finding, str]]:
        found = [(f, MASKERS["secret"]) for f in find_secrets(text)] if self._secret else []
        if self._pii:
            taken = [(f.start, f.end) for f, _ in found]
            found.extend((f, _TAG[f.kind]) for f in find_pii(text, self._pii, private_ips=True,
                                                             loose_phones=True)
                         if not any(f.start < e and s < f.end for s, e in taken))
        return found

    def __call__(self, text: str) -> str:
        if not text:
            return text
        found = self._findings(text)
        if found:
            found.sort(key=lambda item: item[0].start)
            parts, at = [], 0
            for finding, tag in found:
                if finding.start < at:  # overlaps what is masked already
                    continue
                parts += [text[at:finding.start], tag]
                at = finding.end
            text = "".join(parts) + text[at:]
        if self.custom is not None:
            try:
                text = self.custom(text)
            except Exception:  # a broken user function must not leak the text
                return "[REDACTION FAILED]"
        return text

    def __repr__(self) -> str:
        return f"Redactor(maskers={list(self.maskers)!r}, custom={self.custom!r})"
