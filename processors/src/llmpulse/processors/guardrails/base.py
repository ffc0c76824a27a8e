"""What every guardrail rule is: the common keys, the ``Rule`` base class, ``Match``.

The rule kinds (``rules``, ``injection``, ``presidio``) and the policy import from here,
so none of them imports another to get these.

Example:
    >>> from llmpulse.processors.guardrails.base import Match
    >>> Match(0, 5, "a***@***.com", "email").kind
    'email'
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

from msgspec import Struct

from llmpulse.schemas import EnrichedCall, ScoreResult

__all__ = ["ACTIONS", "APPLIES_TO", "COMMON_KEYS", "SEVERITIES", "Gate", "Match", "Rule", "RuleCommon",
           "Where"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
ACTIONS = ("flag", "block", "redact")

Where = Literal["prompt", "response", "context", "tool_arguments", "tool_result"]
"""What a rule reads: the prompt's messages, the answer, retrieved documents, the arguments
of tool calls (an answer's, an assistant message's, a tool span's) and tool results (tool
messages, a tool span's result)."""
APPLIES_TO: tuple[Where, ...] = ("prompt", "response", "context", "tool_arguments", "tool_result")
Gate = tuple[str, str, int]
"""``(label, regex, re flags)``: the rule may find something only where the regex matches."""


class Match(NamedTuple):
    """What a rule matched: the span (None for the whole text), a masked preview, a label."""

    start: int | None
    end: int | None
    preview: str
    kind: str


class RuleCommon(Struct, kw_only=True, forbid_unknown_fields=True):
    """The keys every rule has, whatever its kind."""

    id: str
    kind: str
    applies_to: list[Where] | Where
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    action: Literal["flag", "block", "redact"] = "flag"
    message: str = ""
    roles: list[str] | None = None
    """For ``prompt``: only messages of these roles (user, system, tool...)."""
    enabled: bool = True


COMMON_KEYS = set(RuleCommon.__struct_fields__)


class Rule:
    """A compiled rule. Subclasses set ``kind`` and a ``Params`` struct of their settings."""

    kind: ClassVar[str] = ""
    Params: ClassVar[type[Struct]]
    redacts_spans: ClassVar[bool] = True

    def __init__(self, common: RuleCommon, params: Any) -> None:
        self.id = common.id
        applies_to = [common.applies_to] if isinstance(common.applies_to, str) else list(common.applies_to)
        if ("prompt" in applies_to and "tool_result" not in applies_to
                and (not common.roles or "tool" in common.roles)):
            # Before v1.1 tool messages were prompt segments: a prompt rule whose roles take
            # tool messages keeps reading them, and reads a tool span's result too.
            applies_to.append("tool_result")
        self.applies_to: tuple[str, ...] = tuple(dict.fromkeys(applies_to))
        self.severity = common.severity
        self.action = common.action
        self.message = common.message
        self.roles = frozenset(common.roles) if common.roles else None
        self.enabled = common.enabled
        self.params = params

    def gates(self) -> list[Gate] | None:
        """Gate patterns, or None: run on every text."""
        return None

    def reads_every_text(self) -> bool:
        """A gated rule with a tier that reads every text too (the injection rule's n-gram
        model): ``find`` is called on a text whose gates did not fire, with no labels."""
        return False

    def prepare(self) -> None:
        """Build now what the first check of some text would build (a worker's start)."""

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        """Matches in one text; ``labels`` are the gates that fired (None: unknown, all);
        ``where`` the text's place (prompt, context, tool_result, ...)."""
        return []

    def model_name(self) -> str | None:
        """The model of this rule's heavy (batched) tier, if it has one and it is enabled."""
        return None

    def load_model(self) -> str:
        """Load the heavy tier's model now; its backend, or ``none`` when it is missing."""
        return "none"

    def model_missing(self) -> str | None:
        """Why the heavy tier's model is not available (None: it is, or not loaded yet)."""
        return None

    def classify(self, texts: list[str], wheres: list[str] | None = None
                 ) -> list[tuple[Match, dict[str, Any]] | None] | None:
        """The heavy tier on a batch of texts (``wheres``: each text's place; None: prompts):
        per text, a match and the verdict attributes that name the model and its backend, or
        None; None for all when the model is missing."""
        return None

    def score_name(self, where: str) -> str | None:
        """The score this rule compares with a threshold for ``where``, if it is a score rule."""
        return None

    def check_score(self, where: str, score: ScoreResult) -> Match | None:
        """A match when the score crosses the rule's threshold."""
        return None
