"""Check digits of the numbers the detectors validate, and the entropy of a token.

Each function takes the digits (or the compact alphanumeric id) and says whether the
check digit is right, following the issuer's published rule: Luhn (cards), ISO 7064
mod 97 (IBAN, French NIR key), ISO 7064 mod 11,10 (German tax id), the Dutch "11-proef"
(BSN), mod 11 (Portuguese NIF, Brazilian CPF), the Italian codice fiscale's odd/even
table, and ISBN-10/13. A random number passes a one-digit check about one time in ten,
so the detectors also want a shape or a keyword for the weaker ones.

Example:
    >>> from llmpulse.schemas._checksums import bsn_valid, cpf_valid, shannon_entropy
    >>> bsn_valid("111222333"), cpf_valid("52998224725"), cpf_valid("52998224724")
    (True, True, False)
    >>> round(shannon_entropy("aaaa"), 2), round(shannon_entropy("abcd"), 2)
    (0.0, 2.0)
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["bsn_valid", "codice_fiscale_valid", "cpf_valid", "isbn_valid", "luhn_valid", "nif_pt_valid",
           "nir_valid", "shannon_entropy", "steuer_id_valid"]


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


def isbn_valid(digits: str) -> bool:
    """ISBN-13 (weights 1,3; prefix 978/979) or ISBN-10 (weights 10..1, mod 11; X is 10)."""
    if len(digits) == 13 and digits.isdigit() and digits[:3] in ("978", "979"):
        return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    if len(digits) == 10 and digits[:9].isdigit() and (digits[9].isdigit() or digits[9] in "xX"):
        values = [int(d) for d in digits[:9]] + [10 if digits[9] in "xX" else int(digits[9])]
        return sum(v * (10 - i) for i, v in enumerate(values)) % 11 == 0
    return False


def nir_valid(digits: str) -> bool:
    """French social security number (NIR): 13 digits, sex 1 or 2, key = 97 - n mod 97."""
    if len(digits) != 15 or not digits.isdigit() or digits[0] not in "12":
        return False
    month = int(digits[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return 97 - int(digits[:13]) % 97 == int(digits[13:])


def steuer_id_valid(digits: str) -> bool:
    """German tax id (Steuer-IdNr): 11 digits, no leading 0, one digit repeated in the first
    ten, ISO 7064 mod 11,10 check digit."""
    if len(digits) != 11 or not digits.isdigit() or digits[0] == "0":
        return False
    counts = Counter(digits[:10]).values()
    if not (9 - len(counts) in (0, 1) and max(counts) in (2, 3)):
        return False
    product = 10
    for d in digits[:10]:
        total = (int(d) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(digits[10])


def bsn_valid(digits: str) -> bool:
    """Dutch citizen service number (BSN): 9 digits, the "11-proef" (weights 9..2, -1)."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


def nif_pt_valid(digits: str) -> bool:
    """Portuguese tax number (NIF): 9 digits, first 1-3, 5, 6, 8 or 9, mod 11 check digit."""
    if len(digits) != 9 or not digits.isdigit() or digits[0] not in "1235689":
        return False
    check = 11 - sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) % 11
    return (0 if check >= 10 else check) == int(digits[8])


def cpf_valid(digits: str) -> bool:
    """Brazilian CPF: 11 digits, two mod-11 check digits, not all the same digit."""
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    for n in (9, 10):
        check = sum(int(d) * w for d, w in zip(digits[:n], range(n + 1, 1, -1), strict=True)) * 10 % 11
        if check % 10 != int(digits[n]):
            return False
    return True


_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]


def codice_fiscale_valid(code: str) -> bool:
    """Italian codice fiscale (16 characters): the check letter from the odd/even tables."""
    code = code.upper()
    if len(code) != 16 or not code.isalnum():
        return False
    total = 0
    for i, ch in enumerate(code[:15]):
        value = int(ch) if ch.isdigit() else ord(ch) - 65
        total += _CF_ODD[value] if i % 2 == 0 else value
    return chr(65 + total % 26) == code[15]


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value`` (0 for one repeated character, log2(n) at most)."""
    if not value:
        return 0.0
    n = len(value)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(value).values()))
