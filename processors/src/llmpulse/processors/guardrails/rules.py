"""The rule kinds of a guardrail policy, and the registry of custom ones.

Built-in kinds: ``pii``, ``secrets``, ``prompt_injection``, ``toxicity``, ``banned_terms``,
``json_schema``, ``length`` and ``presidio``. A custom kind is a Python callable
``fn(text, params) -> iterable of (start, end)`` or ``(start, end, label)``, registered
in-process with ``register_rule_kind`` or by an entry point in the group
``llmpulse.guardrail_rules`` (the entry point's name is the kind)::

    [project.entry-points."llmpulse.guardrail_rules"]
    order_ids = "acme_guards:find_order_ids"

Text rules find spans; score rules (``toxicity``, and ``prompt_injection``'s similarity
part) compare a model score with a threshold once the model scorer has run.

Example:
    >>> from llmpulse.processors.guardrails.rules import build_rule
    >>> rule = build_rule({"id": "no-cards", "kind": "pii", "entities": ["credit_card"],
    ...                    "applies_to": "response", "action": "redact"})
    >>> [(m.kind, m.preview) for m in rule.find("card 4111-1111-1111-1111", None, None)]
    [('credit_card', '****-****-****-1111')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Literal

import msgspec
from msgspec import Struct

from llmpulse.processors.errors import PolicyError
from llmpulse.processors.guardrails.base import (
    ACTIONS,
    APPLIES_TO,
    COMMON_KEYS,
    SEVERITIES,
    Gate,
    Match,
    Rule,
    RuleCommon,
)
from llmpulse.processors.guardrails.injection import InjectionRule
from llmpulse.schemas import EnrichedCall, ScoreResult
from llmpulse.schemas.detectors import PII_KINDS, SECRET_KINDS, find_pii, find_secrets, secret_gate_patterns

__all__ = [
    "ACTIONS",
    "APPLIES_TO",
    "ENTRY_POINT_GROUP",
    "SEVERITIES",
    "Match",
    "Rule",
    "build_rule",
    "register_rule_kind",
]

ENTRY_POINT_GROUP = "llmpulse.guardrail_rules"


# --- personal data and secrets ------------------------------------------------------------

class _PiiParams(Struct, kw_only=True, forbid_unknown_fields=True):
    entities: list[str] = msgspec.field(default_factory=lambda: list(PII_KINDS))
    private_ips: bool = False


_DIGIT_RUN_GATE = "[0-9](?:[ ().\\-/\u00a0]{0,3}[0-9]){5}"


class PiiRule(Rule):
    """Emails, phones, cards (Luhn), IBANs (mod 97), national ids, IP addresses."""

    kind = "pii"
    Params = _PiiParams

    def __init__(self, common: RuleCommon, params: _PiiParams) -> None:
        super().__init__(common, params)
        unknown = set(params.entities) - set(PII_KINDS)
        if unknown:
            raise PolicyError(f"rule {common.id!r}: unknown entities {sorted(unknown)}; "
                              f"known: {', '.join(PII_KINDS)}")
        self.entities = frozenset(params.entities)
        self._by_label = {"email": {"email"}, "ipv4": {"ip_address"}, "ipv6": {"ip_address"},
                          "digits": {"phone", "credit_card", "iban", "national_id"},
                          "letter_ids": {"national_id"}}

    def gates(self) -> list[Gate]:
        gates: list[Gate] = []
        if "email" in self.entities:
            gates.append(("email", "@", 0))
        if self.entities & {"phone", "credit_card", "iban", "national_id"}:
            gates.append(("digits", _DIGIT_RUN_GATE, 0))
        if "national_id" in self.entities:  # the Italian codice fiscale: 16 letters and digits
            gates.append(("letter_ids", "[A-Z]{6}[0-9LMNP-V]{2}[ABCDEHLMPRST][0-9LMNP-V]{2}[A-Z]", 0))
        if "ip_address" in self.entities:
            gates.append(("ipv4", r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", 0))
            gates.append(("ipv6", r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:", 0))
        return gates

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        kinds: frozenset[str] | set[str] = self.entities
        if labels is not None:
            kinds = {k for label in labels for k in self._by_label.get(label, ())} & self.entities
        found = find_pii(text, kinds, private_ips=self.params.private_ips)
        return [Match(f.start, f.end, f.preview, f.subtype or f.kind) for f in found]


class _SecretParams(Struct, kw_only=True, forbid_unknown_fields=True):
    kinds: list[str] = msgspec.field(default_factory=lambda: list(SECRET_KINDS))


class SecretsRule(Rule):
    """API keys, tokens, private keys, passwords in URLs and ``password=...`` pairs."""

    kind = "secrets"
    Params = _SecretParams

    def __init__(self, common: RuleCommon, params: _SecretParams) -> None:
        super().__init__(common, params)
        unknown = set(params.kinds) - set(SECRET_KINDS)
        if unknown:
            raise PolicyError(f"rule {common.id!r}: unknown secret kinds {sorted(unknown)}; "
                              f"known: {', '.join(SECRET_KINDS)}")
        self.kinds = frozenset(params.kinds)

    def gates(self) -> list[Gate]:
        return secret_gate_patterns(self.kinds)

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        kinds = self.kinds if labels is None else self.kinds & labels
        return [Match(f.start, f.end, f.preview, f.kind) for f in find_secrets(text, kinds)]


# --- toxicity, terms, format, length --------------------------------------------------------

class _ToxicityParams(Struct, kw_only=True, forbid_unknown_fields=True):
    threshold: float = 0.8


class ToxicityRule(Rule):
    """The toxicity score (``toxicity`` for responses, ``prompt_toxicity`` for prompts)."""

    kind = "toxicity"
    Params = _ToxicityParams
    redacts_spans = False

    def score_name(self, where: str) -> str | None:
        return {"response": "toxicity", "prompt": "prompt_toxicity"}.get(where)

    def check_score(self, where: str, score: ScoreResult) -> Match | None:
        threshold = self.params.threshold
        if score.value is None or score.value < threshold:
            return None
        return Match(None, None, f"{score.name} {score.value:.2f} >= {threshold} ({score.backend})",
                     score.label or "toxicity")


class _TermsParams(Struct, kw_only=True, forbid_unknown_fields=True):
    terms: list[str] = []
    topics: dict[str, list[str]] = {}
    """Banned topics, each a list of the terms that name it."""
    case_sensitive: bool = False


class TermsRule(Rule):
    """Banned terms and topics: whole words or phrases."""

    kind = "banned_terms"
    Params = _TermsParams

    def __init__(self, common: RuleCommon, params: _TermsParams) -> None:
        super().__init__(common, params)
        self.topic_of: dict[str, str] = {}
        for term in params.terms:
            self.topic_of[term.lower()] = "banned_term"
        for topic, terms in params.topics.items():
            for term in terms:
                self.topic_of[term.lower()] = topic
        if not self.topic_of:
            raise PolicyError(f"rule {common.id!r}: banned_terms needs terms or topics")
        words = sorted(self.topic_of, key=len, reverse=True)
        alternation = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
        self.flags = 0 if params.case_sensitive else re.IGNORECASE
        self.source = rf"\b(?:{alternation})\b"
        self.regex = re.compile(self.source, self.flags)

    def gates(self) -> list[Gate]:
        return [("terms", self.source, self.flags)]

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        return [Match(m.start(), m.end(), m.group(),
                      self.topic_of.get(" ".join(m.group().lower().split()), "banned_term"))
                for m in self.regex.finditer(text)]


class _JsonSchemaParams(Struct, kw_only=True, forbid_unknown_fields=True):
    schema: dict[str, Any] | bool = True
    when: Literal["expects_json", "always"] = "expects_json"


class JsonSchemaRule(Rule):
    """The answer must be JSON valid against a JSON Schema (when the prompt asked for JSON)."""

    kind = "json_schema"
    Params = _JsonSchemaParams
    redacts_spans = False

    def __init__(self, common: RuleCommon, params: _JsonSchemaParams) -> None:
        super().__init__(common, params)
        import jsonschema

        try:
            cls = jsonschema.validators.validator_for(params.schema)
            cls.check_schema(params.schema)
        except jsonschema.SchemaError as exc:
            raise PolicyError(f"rule {common.id!r}: invalid JSON Schema: {exc.message}") from None
        self.validator = cls(params.schema)

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        from llmpulse.processors.scoring.quality import JSON_FENCE, asks_for_json

        if self.params.when == "expects_json" and not asks_for_json(call.prompt if call else None):
            return []
        fenced = JSON_FENCE.match(text)
        try:
            document = json.loads(fenced.group(1) if fenced else text)
        except ValueError as exc:
            return [Match(None, None, f"not JSON (line {getattr(exc, 'lineno', '?')})", "invalid_json")]
        error = next(iter(self.validator.iter_errors(document)), None)
        if error is None:
            return []
        return [Match(None, None, f"{error.json_path}: '{error.validator}' failed", "schema_violation")]


class _LengthParams(Struct, kw_only=True, forbid_unknown_fields=True):
    max_chars: int | None = None
    min_chars: int | None = None
    max_words: int | None = None


class LengthRule(Rule):
    """Length limits in characters or words."""

    kind = "length"
    Params = _LengthParams
    redacts_spans = False

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        p = self.params
        n = len(text)
        if p.max_chars is not None and n > p.max_chars:
            return [Match(None, None, f"{n} chars > {p.max_chars}", "too_long")]
        if p.min_chars is not None and n < p.min_chars:
            return [Match(None, None, f"{n} chars < {p.min_chars}", "too_short")]
        if p.max_words is not None and n > p.max_words:
            words = len(text.split())
            if words > p.max_words:
                return [Match(None, None, f"{words} words > {p.max_words}", "too_long")]
        return []


# --- custom kinds ---------------------------------------------------------------------------

RuleFunction = Callable[[str, Mapping[str, Any]], Iterable[tuple[int, int] | tuple[int, int, str]]]
_REGISTERED: dict[str, RuleFunction] = {}


def register_rule_kind(kind: str, function: RuleFunction) -> None:
    """Make ``kind`` usable in policies: ``function(text, params)`` yields spans."""
    if kind in _BUILTIN:
        raise ValueError(f"{kind!r} is a built-in rule kind")
    _REGISTERED[kind] = function


def _custom_function(kind: str) -> RuleFunction | None:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == kind:
            function = entry.load()
            _REGISTERED[kind] = function
            return function  # type: ignore[no-any-return]
    return None


class CustomRule(Rule):
    """A rule whose matches come from a registered Python callable."""

    kind = "custom"

    def __init__(self, common: RuleCommon, params: dict[str, Any], function: RuleFunction) -> None:
        super().__init__(common, params)
        self.kind_name = common.kind
        self.function = function

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        out = []
        for item in self.function(text, self.params):
            start, end = int(item[0]), int(item[1])
            label = str(item[2]) if len(item) > 2 else self.kind_name
            out.append(Match(start, end, f"[{label}: {end - start} chars]", label))
        return out


def _presidio_rule() -> type[Rule]:
    from llmpulse.processors.guardrails.presidio import PresidioRule

    return PresidioRule


def _builtin(cls: type[Rule]) -> Callable[[], type[Rule]]:
    return lambda: cls


_BUILTIN: dict[str, Callable[[], type[Rule]]] = {
    cls.kind: _builtin(cls)
    for cls in (PiiRule, SecretsRule, InjectionRule, ToxicityRule, TermsRule, JsonSchemaRule, LengthRule)
}
_BUILTIN["presidio"] = _presidio_rule


def build_rule(entry: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Rule:
    """Compile one policy entry (a mapping from the YAML file) into a rule.

    Raises:
        PolicyError: naming the rule id and what is wrong with it.
    """
    data = {**(defaults or {}), **entry}
    rule_id = data.get("id", "?")
    common_data = {k: v for k, v in data.items() if k in COMMON_KEYS}
    params_data = {k: v for k, v in data.items() if k not in COMMON_KEYS}
    params_data.pop("params", None)
    params_data.update(data.get("params") or {})
    try:
        common = msgspec.convert(common_data, RuleCommon)
    except msgspec.ValidationError as exc:
        raise PolicyError(f"rule {rule_id!r}: {exc}") from None
    factory = _BUILTIN.get(common.kind)
    if factory is None:
        function = _custom_function(common.kind)
        if function is None:
            known = ", ".join(sorted([*_BUILTIN, *_REGISTERED]))
            raise PolicyError(f"rule {rule_id!r}: unknown kind {common.kind!r} (built-in: {known}; "
                              f"custom kinds come from the entry point group {ENTRY_POINT_GROUP!r})")
        return CustomRule(common, params_data, function)
    cls = factory()
    try:
        params = msgspec.convert(params_data, cls.Params)
    except msgspec.ValidationError as exc:
        raise PolicyError(f"rule {rule_id!r} ({common.kind}): {exc}") from None
    return cls(common, params)
