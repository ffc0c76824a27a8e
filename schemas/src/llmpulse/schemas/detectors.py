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

from llmpulse.schemas._checksums import (
    bsn_valid,
    codice_fiscale_valid,
    cpf_valid,
    isbn_valid,
    luhn_valid,
    nif_pt_valid,
    nir_valid,
    shannon_entropy,
    steuer_id_valid,
)

__all__ = [
    "PII_KINDS",
    "SECRET_KINDS",
    "Finding",
    "find_pii",
    "find_secrets",
    "iban_valid",
    "luhn_valid",
    "secret_gate_patterns",
]

PII_KINDS = ("email", "phone", "credit_card", "iban", "national_id", "ip_address")
"""Personal data kinds. ``national_id`` covers the US SSN, UK NINO, Spanish DNI and NIE,
Italian codice fiscale, and (with a keyword such as "BSN" or "CPF" nearby, or their
written shape) the French NIR, German tax id, Dutch BSN, Portuguese NIF and Brazilian CPF,
each with its check digits."""

SECRET_KINDS = ("aws_access_key", "github_token", "gitlab_token", "npm_token", "openai_key",
                "anthropic_key", "slack_token", "google_api_key", "stripe_key", "azure_storage_key", "jwt",
                "private_key", "bearer_token", "password_in_url", "credential_assignment")
"""Secret kinds: vendor key formats (AWS, GitHub, GitLab, npm, OpenAI, Anthropic, Slack tokens
and webhooks, Google, Stripe, Azure storage keys and connection strings), JWTs, private keys,
bearer tokens, passwords in URLs and ``password=...`` pairs."""


class Finding(NamedTuple):
    """One thing found: what, where (``text[start:end]``), and a masked preview."""

    kind: str
    start: int
    end: int
    preview: str
    subtype: str = ""


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
# Every repetition is bounded (an e-mail's local part is at most 64 characters, a digit
# run at most 40 groups), so no input makes a pattern scan more than a fixed distance
# from each start: the cost stays linear in the text's length.

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}"
                    r"\.[A-Za-z]{2,24}")
# Every run of digits with separators, IBAN-shaped tokens and letter-bearing ids, in one scan.
_CANDIDATE = re.compile(
    r"(?P<iban>\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b)"
    r"|(?P<nino>\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b)"
    r"|(?P<cf>\b[A-Z]{6}[0-9LMNP-V]{2}[ABCDEHLMPRST][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]\b)"
    r"|(?P<nie>\b[XYZ]-?[0-9]{7}-?[A-Z]\b)"
    r"|(?P<run>(?<![\w.\-])\+?\(?[0-9](?:[ ().\-/\u00a0]{0,3}[0-9]){3,40}(?P<letter>[A-Z])?(?!\w))"
)
_SSN = re.compile(r"([0-9]{3})[- ]([0-9]{2})[- ]([0-9]{4})")
_DATE = re.compile(r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)(?![\w:])")
_DECIMAL = re.compile(r"[0-9]+[.,][0-9]+")
_CPF_SHAPE = re.compile(r"[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}")
_THOUSANDS = re.compile(r"[1-9][0-9]{0,2}(?:[ ,.\u00a0][0-9]{3})+")
_PHONE_WORDS = ("phone", "tel", "call", "mobile", "cell", "whatsapp", "sms", "fax", "ring", "dial",
                "téléphone", "portable", "appel", "telefon", "handy", "ruf", "teléfono", "telefono",
                "móvil", "movil", "llama", "cellulare", "chiama", "telemóvel", "telefone", "celular",
                "ligue", "mobiel", "bel ", "nummer", "numéro", "número", "numero")
# An id, a version, a product or an order: the digits after these words are not a phone.
_NOT_PHONE = re.compile(
    r"(?:\b(?:order|invoice|ticket|tracking|ref|reference|case|booking|confirmation|serial|sku|isbn|issn"
    r"|version|build|release|part|item|range|ports?|commande|facture|bestell\w*|rechnung\w*|pedido|factura"
    r"|ordine|fattura|encomenda|bestelling\w*|factuur\w*|id|no|nr)\b|n°|#)[^0-9]{0,3}$", re.IGNORECASE)
_VERSION_WORDS = ("version", "ver", "v", "build", "release", "firmware", "kernel", "python", "node",
                  "versión", "versione", "versão", "versie", "Version",
                  "java", "chrome", "ios", "android", "windows", "macos", "oid", "snmp")
_ID_CONTEXT = {
    "de_steuer_id": ("steuer", "idnr", "identifikationsnummer", "tax id", "tin"),
    "nl_bsn": ("bsn", "burgerservicenummer", "sofinummer", "citizen service"),
    "pt_nif": ("nif", "contribuinte", "fiscal", "tax number"),
    "br_cpf": ("cpf", "cadastro de pessoas"),
    "fr_nir": ("sécurité sociale", "securite sociale", "nir", "insee", "social security", "sécu"),
}
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_DIGITS = "0123456789"
_DIGIT_KINDS = frozenset({"phone", "credit_card", "iban", "national_id", "ip_address"})


def _digit_count(text: str) -> int:
    return sum(text.count(d) for d in _DIGITS)


def _before(text: str, start: int, width: int = 24) -> str:
    return text[max(0, start - width):start].lower()


def _near(text: str, start: int, words: tuple[str, ...], width: int = 24) -> bool:
    before = _before(text, start, width)
    return any(word in before for word in words)


def _after_version_word(text: str, start: int) -> bool:
    """``v1.2.3.4``, ``version 10.0.2.15``, ``Chrome 120.0.6099.109``: a version, not an address."""
    words = text[max(0, start - 16):start].lower().replace("-", " ").split()
    last = words[-1].rstrip(":=") if words else ""
    return text[start - 1:start] in ("v", "V") or last in _VERSION_WORDS


def _after_code(text: str, start: int) -> bool:
    """The digits continue a code that has letters and digits (``1Z 999 AA1 01 2345 6784``)."""
    words = text[max(0, start - 12):start].split()
    last = words[-1] if words and text[start - 1:start] == " " else ""
    return any(ch.isdigit() for ch in last) and any(ch.isalpha() for ch in last)


def _ip_finding(text: str, start: int, end: int, private_ips: bool) -> Finding | None:
    value = text[start:end]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if not private_ips and not address.is_global:
        return None
    if address.version == 4:
        if _after_version_word(text, start):
            return None
        head = value.split(".")
        return Finding("ip_address", start, end, f"{head[0]}.{head[1]}.*.*", "ipv4")
    return Finding("ip_address", start, end, value.split(":", 1)[0] + ":…", "ipv6")


def _national_id(text: str, start: int, end: int, value: str, digits: str) -> Finding | None:
    """The digit-only national ids of other countries: checksum, and a shape or a keyword."""
    n = len(digits)
    subtype = ""
    if n == 15 and nir_valid(digits) and (value.count(" ") >= 4
                                          or _near(text, start, _ID_CONTEXT["fr_nir"], 40)):
        subtype = "fr_nir"
    elif n == 11 and cpf_valid(digits) and (_CPF_SHAPE.fullmatch(value)
                                            or _near(text, start, _ID_CONTEXT["br_cpf"], 40)):
        subtype = "br_cpf"
    elif n == 11 and steuer_id_valid(digits) and _near(text, start, _ID_CONTEXT["de_steuer_id"], 40):
        subtype = "de_steuer_id"
    elif n == 9 and bsn_valid(digits) and _near(text, start, _ID_CONTEXT["nl_bsn"], 40):
        subtype = "nl_bsn"
    elif n == 9 and nif_pt_valid(digits) and _near(text, start, _ID_CONTEXT["pt_nif"], 40):
        subtype = "pt_nif"
    if not subtype:
        return None
    return Finding("national_id", start, end, _keep_tail(value, 2), subtype)


def _phone(text: str, start: int, value: str, n: int, loose: bool) -> bool:
    if loose:
        return 7 <= n <= 15 and not _DATE.match(value)
    if not 8 <= n <= 15 or _DATE.match(value) or _DECIMAL.fullmatch(value):
        return False
    if value.startswith("+"):
        return True
    if _NOT_PHONE.search(text, max(0, start - 16), start) or _after_version_word(text, start) \
            or _CPF_SHAPE.fullmatch(value) or _after_code(text, start):
        return False
    if value.startswith("00") and n >= 11:
        return True
    worded = _near(text, start, _PHONE_WORDS, 32)
    separated = any(ch in value for ch in " -().\u00a0/")
    if n >= 10 and ((separated and not _THOUSANDS.fullmatch(value)) or worded):
        return True
    # Nine-digit national formats (Spain, Portugal): 612 34 56 78, 912 345 678.
    return n == 9 and separated and (worded or value[0] in "679")


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
    address = _IPV4.match(value) if "." in value else None
    if address is not None:  # an address, or one with a prefix length (10.0.0.0/8)
        if "ip_address" not in wanted:
            return None
        return _ip_finding(text, start, start + address.end(), private_ips)
    if n in (10, 13) and not value.startswith("+") and (n == 13 or _near(text, start, ("isbn",))) \
            and isbn_valid(digits):
        return None
    if "national_id" in wanted and n == 9 and _SSN.fullmatch(value):
        area, group, serial = _SSN.fullmatch(value).groups()  # type: ignore[union-attr]
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            return Finding("national_id", start, end, "***-**-****", "us_ssn")
        return None
    if "credit_card" in wanted and 13 <= n <= 19 and digits[0] in "23456" and luhn_valid(digits) \
            and not any(ch in value for ch in "()./"):
        return Finding("credit_card", start, end, _keep_tail(value, 4))
    if "national_id" in wanted and n in (9, 11, 15):
        found = _national_id(text, start, end, value, digits)
        if found is not None:
            return found
    if "phone" in wanted and _phone(text, start, value, n, loose_phones):
        return Finding("phone", start, end, _keep_tail(value, 2))
    return None


def _letter_id(text: str, m: re.Match[str], kind: str | None) -> Finding | None:
    value = m.group()
    if kind == "nino":
        return Finding("national_id", m.start(), m.end(), "** ** ** ** *", "uk_nino")
    if kind == "cf":
        if codice_fiscale_valid(value):
            return Finding("national_id", m.start(), m.end(), "*" * 15 + value[-1], "it_codice_fiscale")
        return None
    compact = value.replace("-", "")
    number = str("XYZ".index(compact[0])) + compact[1:8]
    if _DNI_LETTERS[int(number) % 23] == compact[8]:
        return Finding("national_id", m.start(), m.end(), "*********", "es_nie")
    return None


def _is_email(text: str, start: int, end: int) -> bool:
    """Not the ``user@host`` of a URL (``ssh://git@host/...``, ``https://u:p@host``) nor
    of an scp-style git remote (``git@github.com:org/repo.git``)."""
    if text[end:end + 1] == ":" and text[end + 1:end + 2] not in ("", " ", "\n", "\t"):
        return False
    head = text[max(0, start - 200):start]
    token_start = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"), head.rfind("("), head.rfind("<"))
    return "://" not in head[token_start + 1:]


def find_pii(text: str, kinds: Collection[str] = PII_KINDS, *,
             private_ips: bool = False, loose_phones: bool = False) -> list[Finding]:
    """Personal data in ``text``, in order of position.

    Args:
        text: the text to scan.
        kinds: which of ``PII_KINDS`` to look for.
        private_ips: also report private, loopback and reserved IP addresses.
        loose_phones: any run of 7-15 digits that is not a date is a phone (redaction
            would rather mask an order number than leak a phone); by default a phone needs
            a ``+``, separators, or a word such as "call" before it, and digits after
            "order", "invoice", "ISBN"... are not one.
    """
    found: list[Finding] = []
    if "email" in kinds and "@" in text:
        found.extend(Finding("email", m.start(), m.end(), _mask_email(m.group()))
                     for m in _EMAIL.finditer(text) if _is_email(text, m.start(), m.end()))
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
            finding = None
            if kind == "iban":
                if "iban" in kinds and iban_valid(m.group()):
                    value = m.group()
                    finding = Finding("iban", m.start(), m.end(), value[:2] + "**…" + value[-2:])
            elif kind in ("nino", "cf", "nie"):
                if "national_id" in kinds:
                    finding = _letter_id(text, m, kind)
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


_B64 = r"[A-Za-z0-9+/]"
_SECRETS = (
    _SecretPattern("aws_access_key", ("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), 4),
    _SecretPattern("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
                   re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"), 4),
    _SecretPattern("gitlab_token", ("glpat-", "gldt-", "glrt-", "glptt-"),
                   re.compile(r"\b(?:glpat|gldt|glrt|glptt)-[0-9A-Za-z_\-]{20,64}"), 6),
    _SecretPattern("npm_token", ("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 4),
    _SecretPattern("anthropic_key", ("sk-ant-",), re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,200}"), 7),
    _SecretPattern("openai_key", ("sk-",),
                   re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,200}"), 3),
    _SecretPattern("slack_token", ("xox", "hooks.slack.com"),
                   re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{10,200}"
                              r"|https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}"
                              r"/[A-Za-z0-9]{20,32}"), 5),
    _SecretPattern("google_api_key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), 4),
    _SecretPattern("stripe_key", ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"),
                   re.compile(r"\b(?:[rs]k_(?:live|test)_[0-9A-Za-z]{16,247}|whsec_[0-9A-Za-z]{32,64})"), 8),
    _SecretPattern("azure_storage_key",
                   ("AccountKey=", "SharedAccessKey=", "accountkey=", "sharedaccesskey="),
                   re.compile(rf"(?i:AccountKey|SharedAccessKey)=({_B64}{{40,100}}={{0,2}})"), 0),
    _SecretPattern("jwt", ("eyJ",),
                   re.compile(r"\beyJ[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{8,8192}"
                              r"\.[A-Za-z0-9_\-]{8,4096}"), 3),
    _SecretPattern("private_key", ("-----BEGIN",),
                   re.compile(r"-----BEGIN (?:[A-Z]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----"
                              r"(?:[\s\S]{0,16384}?-----END (?:[A-Z]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----"
                              r"|[A-Za-z0-9+/=\s]{0,16384})"), 10),
)
_BEARER = re.compile(r"bearer\s{1,8}([A-Za-z0-9_\-.=~+/]{16,4096})", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^\s:/@]{0,128}:([^\s@/]{3,256})@")
_ASSIGNMENT = re.compile(
    r"(?:api[_\-]?key|apikey|secret(?:[_\-]?key)?|access[_\-]?(?:key|token)|auth[_\-]?token|token"
    r"|passw(?:or)?d|pwd|client[_\-]?secret)[\"']?\s{0,8}[:=]\s{0,8}[\"']?([^\s\"',;()<>{}\[\]]{8,256})",
    re.IGNORECASE,
)
_ASSIGNMENT_HINTS = ("key", "secret", "token", "passw", "pwd")
_PLACEHOLDER = re.compile(
    r"^(?:x+|\*+|\.+|<.*>|\[.*\]|\{.*\}|\$.*|%.*|your[_\-].*|.*[_\-]here|os\.environ.*|getenv.*|env\..*"
    r"|process\.env.*|none|null|nil|true|false|undefined|redacted|example.*|sample.*|dummy.*|placeholder.*"
    r"|changeme|change[_\-]?me|password1?|passwd|secret|mysecret|mypassword|test(?:ing)?|admin|root"
    r"|foo(?:bar)?|bar|qwerty|12345678|123456789|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
    # the most common passwords of the public breach lists: known to everyone, examples
    r"|password123|passw0rd|admin123|letmein|welcome1?|iloveyou|abc123|qwerty123|monkey123)$",
    re.IGNORECASE,
)
_VENDOR_PLACEHOLDER = re.compile(r"x{6}|X{6}|0{8}|your|YOUR|placeholder|PLACEHOLDER|<|\.\.\.")
_MIN_ENTROPY = 2.5
"""Bits per character a value must carry to be a credential: ``aaaaaaaa`` has 0,
``hunter2hunter2`` 2.8, a random base62 key ~5."""


def _credential_value(value: str, user: str = "") -> bool:
    """A value that looks like a real credential, not a placeholder or a variable."""
    value = value.strip("\"'`")
    if _PLACEHOLDER.match(value) or value == user or shannon_entropy(value) < _MIN_ENTROPY:
        return False
    classes = (any(ch.isdigit() for ch in value) + any(ch.islower() for ch in value)
               + any(ch.isupper() for ch in value) + any(not ch.isalnum() for ch in value))
    has_digit_and_alpha = any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)
    return has_digit_and_alpha or classes >= 3 or len(value) >= 16


def _vendor_token(value: str, prefix_chars: int) -> bool:
    """A vendor-format token with a random body (``sk-xxxxxxxx...`` is a placeholder)."""
    body = value[prefix_chars:]
    if _VENDOR_PLACEHOLDER.search(body):
        return False
    return len(body) < 12 or shannon_entropy(body) >= (3.0 if len(body) >= 16 else _MIN_ENTROPY)


def secret_gate_patterns(kinds: Collection[str] = SECRET_KINDS) -> list[tuple[str, str, int]]:
    """``(kind, regex, re flags)`` for each secret kind: a superset of where it can match,
    for a one-pass prefilter (the guardrails' Hyperscan gate)."""
    patterns = [(p.kind, p.regex) for p in _SECRETS]
    patterns += [("bearer_token", _BEARER), ("password_in_url", _URL_PASSWORD),
                 ("credential_assignment", _ASSIGNMENT)]
    return [(kind, regex.pattern, regex.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL))
            for kind, regex in patterns if kind in kinds]


def find_secrets(text: str, kinds: Collection[str] = SECRET_KINDS) -> list[Finding]:
    """Secrets and credentials in ``text``, in order of position.

    Vendor formats are matched by their prefix and shape, then kept only if their random
    part looks random (Shannon entropy); ``password=``-style values, passwords in URLs and
    bearer tokens must not be placeholders (``YOUR_API_KEY``, ``<token>``, ``${VAR}``,
    ``changeme``) and must carry at least 2.5 bits per character.
    """
    found: list[Finding] = []
    for pattern in _SECRETS:
        if pattern.kind in kinds and any(hint in text for hint in pattern.hints):
            for m in pattern.regex.finditer(text):
                group = 1 if pattern.regex.groups else 0
                value = m.group(group)
                if pattern.kind != "private_key" and not _vendor_token(value, pattern.prefix_chars):
                    continue
                found.append(Finding(pattern.kind, m.start(group), m.end(group),
                                     _mask_secret(value, value[:pattern.prefix_chars])))
    lowered: str | None = None
    if "bearer_token" in kinds:
        lowered = text.lower()
        if "bearer" in lowered:
            for m in _BEARER.finditer(text):
                if _credential_value(m.group(1)) and len(set(m.group(1))) > 6:
                    found.append(Finding("bearer_token", m.start(1), m.end(1), _mask_secret(m.group(1), "")))
    if "password_in_url" in kinds and "://" in text and "@" in text:
        for m in _URL_PASSWORD.finditer(text):
            user = m.group()[m.group().index("://") + 3:m.start(1) - m.start() - 1]
            password = m.group(1)
            if not _PLACEHOLDER.match(password) and password != user and shannon_entropy(password) >= 2.0:
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
