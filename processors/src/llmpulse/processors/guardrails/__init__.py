"""Guardrails: a versioned policy of rules, applied to every text of a call.

Example:
    >>> from llmpulse.processors.guardrails import GuardrailPolicy
    >>> policy = GuardrailPolicy.load()          # the shipped default_policy.yaml
    >>> sorted({rule.kind for rule in policy.rules})[:3]
    ['json_schema', 'length', 'pii']
"""

from llmpulse.processors.guardrails.base import Match, Rule
from llmpulse.processors.guardrails.policy import GuardrailPolicy, PolicyResult, PolicyStore, segments
from llmpulse.processors.guardrails.rules import ENTRY_POINT_GROUP, register_rule_kind
from llmpulse.schemas.detectors import Finding, find_pii, find_secrets, luhn_valid

__all__ = [
    "ENTRY_POINT_GROUP",
    "Finding",
    "GuardrailPolicy",
    "Match",
    "PolicyResult",
    "PolicyStore",
    "Rule",
    "find_pii",
    "find_secrets",
    "luhn_valid",
    "register_rule_kind",
    "segments",
]
