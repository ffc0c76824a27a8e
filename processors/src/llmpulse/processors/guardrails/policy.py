"""A guardrail policy: the rules of one YAML file, compiled, versioned, and reloaded when
the file changes.

The policy's version is the file's own ``version`` plus a hash of its bytes
(``3+a1b2c3d4``), so an edit that forgets to bump the version still shows. Every verdict
records the rule, the segment and span it matched (``messages[1]``, ``response``,
``retrieved_context[0]``), a masked preview, the action, and the policy version.

Example:
    >>> from llmpulse.processors.guardrails.policy import GuardrailPolicy
    >>> from llmpulse.schemas import EnrichedCall, ResponseEvent
    >>> policy = GuardrailPolicy.from_yaml('''
    ... version: "7"
    ... rules:
    ...   - {id: cards, kind: pii, entities: [credit_card], applies_to: response, action: redact}
    ... ''')
    >>> call = EnrichedCall(call_id="c", app="a", response=ResponseEvent(
    ...     call_id="c", app="a", latency_ms=5.0, text="Card 4111 1111 1111 1111 on file."))
    >>> result = policy.evaluate(call)
    >>> [(v.rule_id, v.match_preview, v.span_start, v.span_end) for v in result.verdicts]
    [('cards', '**** **** **** 1111', 5, 24)]
    >>> result.apply(call).response.text
    'Card [CREDIT_CARD] on file.'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import msgspec
import yaml
from msgspec import Struct

from llmpulse.processors._ids import derived_uuid7
from llmpulse.processors._verdicts import envelope
from llmpulse.processors.config import yaml_problem
from llmpulse.processors.errors import PolicyError
from llmpulse.processors.guardrails._gate import TextGate
from llmpulse.processors.guardrails.base import APPLIES_TO, Match, Rule, RuleCommon, Where
from llmpulse.processors.guardrails.rules import build_rule
from llmpulse.schemas import EnrichedCall, GuardrailVerdict, ScoreResult, SpanEvent, ToolCall

__all__ = ["GuardrailPolicy", "PolicyResult", "PolicyStore", "Segment", "segments"]

logger = logging.getLogger(__name__)

_CACHED_ROLES = frozenset({"system", "developer"})
_CACHE_MIN_CHARS = 200
_CACHE_SIZE = 2048
_WHERE = APPLIES_TO
_CACHED_WHERE = frozenset({"context", "tool_result"})
DEFAULT_MAX_SCAN_CHARS = 65_536
Redactable = TypeVar("Redactable", EnrichedCall, SpanEvent)


class Segment(NamedTuple):
    """One text of a call or span that rules look at."""

    where: str
    """``prompt``, ``response``, ``context``, ``tool_arguments`` or ``tool_result``."""
    name: str
    """Where in the event: ``messages[2]``, ``messages[1].tool_calls[0]``, ``response``,
    ``response.tool_calls[0]``, ``retrieved_context[0]``; on a span ``tool.arguments``,
    ``result_preview``."""
    role: str | None
    text: str


def segments(event: EnrichedCall | SpanEvent) -> list[Segment]:
    """The texts of a call (each message, each tool call's arguments, each retrieved
    document, the answer and its tool calls) or of a span (its tool's arguments, its
    result). Tool messages are ``tool_result`` segments (role ``tool``)."""
    if isinstance(event, SpanEvent):
        return _span_segments(event)
    out: list[Segment] = []
    prompt = event.prompt
    if prompt is not None:
        for i, message in enumerate(prompt.messages):
            if message.content:
                where = "tool_result" if message.role == "tool" else "prompt"
                out.append(Segment(where, f"messages[{i}]", message.role, message.content))
            for j, tool in enumerate(message.tool_calls):
                if tool.arguments:
                    out.append(Segment("tool_arguments", f"messages[{i}].tool_calls[{j}]", None,
                                       tool.arguments))
        for i, doc in enumerate(prompt.retrieved_context):
            if doc.content:
                out.append(Segment("context", f"retrieved_context[{i}]", None, doc.content))
    response = event.response
    if response is not None:
        if response.text:
            out.append(Segment("response", "response", None, response.text))
        for j, tool in enumerate(response.tool_calls):
            if tool.arguments:
                out.append(Segment("tool_arguments", f"response.tool_calls[{j}]", None, tool.arguments))
    return out


def _span_segments(span: SpanEvent) -> list[Segment]:
    out = []
    if span.tool is not None and span.tool.arguments:
        out.append(Segment("tool_arguments", "tool.arguments", None, span.tool.arguments))
    if span.result_preview:
        out.append(Segment("tool_result", "result_preview", "tool", span.result_preview))
    return out


def _last_user_segment(call: EnrichedCall) -> str:
    messages = call.prompt.messages if call.prompt is not None else []
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return f"messages[{i}]"
    return f"messages[{len(messages) - 1}]" if messages else "prompt"


class PolicyResult(NamedTuple):
    """The verdicts on one call, and the spans the ``redact`` rules want masked."""

    verdicts: list[GuardrailVerdict]
    redactions: dict[str, list[tuple[int, int, str]]]

    def apply(self, event: Redactable) -> Redactable:
        """The call or span with every redacted span of text replaced by ``[KIND]``."""
        if not self.redactions:
            return event
        return _redact(event, self.redactions)


def _mask_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for start, end, label in sorted(spans):
        if end <= pos:
            continue
        start = max(start, pos)
        out.append(text[pos:start])
        out.append(f"[{label.upper()}]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


_NAME = re.compile(r"(messages|retrieved_context|response)(?:\[(\d+)\])?(?:\.tool_calls\[(\d+)\])?")


def _masked(text: str, spans: list[tuple[int, int, str]] | None) -> str:
    return _mask_spans(text, spans) if spans else text


def _masked_tools(tools: list[ToolCall], spans_by_index: dict[int, list[tuple[int, int, str]]] | None
                  ) -> list[ToolCall]:
    if not spans_by_index:
        return tools
    return [msgspec.structs.replace(tool, arguments=_mask_spans(tool.arguments, spans_by_index[j]))
            if j in spans_by_index else tool for j, tool in enumerate(tools)]


def _redact(event: Redactable, redactions: dict[str, list[tuple[int, int, str]]]) -> Redactable:
    replace = msgspec.structs.replace
    if isinstance(event, SpanEvent):
        tool = event.tool
        if tool is not None and "tool.arguments" in redactions:
            tool = replace(tool, arguments=_mask_spans(tool.arguments, redactions["tool.arguments"]))
        result = _masked(event.result_preview, redactions.get("result_preview")) \
            if event.result_preview else event.result_preview
        return replace(event, tool=tool, result_preview=result)
    texts: dict[tuple[str, int], list[tuple[int, int, str]]] = {}
    arguments: dict[tuple[str, int], dict[int, list[tuple[int, int, str]]]] = {}
    for name, spans in redactions.items():
        found = _NAME.fullmatch(name)
        if found is None:
            continue
        place = (found.group(1), int(found.group(2) or 0))
        if found.group(3) is None:
            texts[place] = spans
        else:
            arguments.setdefault(place, {})[int(found.group(3))] = spans
    prompt, response = event.prompt, event.response
    if prompt is not None and any(part != "response" for part, _ in (*texts, *arguments)):
        messages = [replace(message, content=_masked(message.content, texts.get(("messages", i))),
                            tool_calls=_masked_tools(message.tool_calls, arguments.get(("messages", i))))
                    if ("messages", i) in texts or ("messages", i) in arguments else message
                    for i, message in enumerate(prompt.messages)]
        docs = [replace(doc, content=_mask_spans(doc.content, texts[("retrieved_context", i)]))
                if ("retrieved_context", i) in texts else doc
                for i, doc in enumerate(prompt.retrieved_context)]
        prompt = replace(prompt, messages=messages, retrieved_context=docs)
    if response is not None and (("response", 0) in texts or ("response", 0) in arguments):
        text = _masked(response.text, texts.get(("response", 0))) if response.text else response.text
        response = replace(response, text=text,
                           tool_calls=_masked_tools(response.tool_calls, arguments.get(("response", 0))))
    return replace(event, prompt=prompt, response=response)


class _ScanLimit(Rule):
    """The policy's own note that a text was too long to scan whole."""

    kind = "scan_limit"


class _PolicyFile(Struct, kw_only=True, forbid_unknown_fields=True):
    version: str | int | float = ""
    description: str = ""
    max_scan_chars: int = DEFAULT_MAX_SCAN_CHARS
    defaults: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []


class GuardrailPolicy:
    """Compiled rules, their gate, and the version that every verdict carries.

    Args:
        rules: the compiled rules (disabled ones are kept out).
        version: the policy version written on verdicts and enriched calls.
        source: where the rules came from (a path, or ``default``).
        max_verdicts_per_rule: matches of one rule in one text beyond this are counted in
            the last verdict's ``attributes["omitted_matches"]``.
        use_hyperscan: False forces the pure-Python gates (same verdicts, slower).
        max_scan_chars: a longer text is scanned in two windows, its first three quarters
            of this many characters and its last quarter; the middle is not looked at, and
            a ``scan-limit`` verdict (severity info) says so with the text's length. This
            bounds every rule's cost per text, whatever the input.
    """

    def __init__(self, rules: Sequence[Rule], *, version: str, source: str = "",
                 max_verdicts_per_rule: int = 20, use_hyperscan: bool = True,
                 max_scan_chars: int = DEFAULT_MAX_SCAN_CHARS) -> None:
        self.rules = [rule for rule in rules if rule.enabled]
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise PolicyError(f"rule ids must be unique; repeated: {duplicates}", source=source or None)
        self.version = version
        self.source = source
        self.max_verdicts_per_rule = max_verdicts_per_rule
        if max_scan_chars < 1024:
            raise PolicyError(f"max_scan_chars must be at least 1024, not {max_scan_chars}",
                              source=source or None)
        self.max_scan_chars = max_scan_chars
        self._score_rules: dict[str, list[tuple[str, Rule]]] = {}
        self._ungated: dict[str, list[tuple[int, Rule]]] = {w: [] for w in _WHERE}
        self._every_text: dict[str, list[int]] = {w: [] for w in _WHERE}
        """Gated rules that read every text as well (``Rule.reads_every_text``), by place."""
        gates: dict[str, list[tuple[Any, str, int]]] = {w: [] for w in _WHERE}
        for index, rule in enumerate(self.rules):
            is_text_rule = type(rule).find is not Rule.find
            rule_gates = rule.gates() if is_text_rule else None
            for where in rule.applies_to:
                name = rule.score_name(where)
                if name is not None:
                    self._score_rules.setdefault(name, []).append((where, rule))
                if not is_text_rule:
                    continue
                if rule_gates is None:
                    self._ungated[where].append((index, rule))
                else:
                    gates[where].extend(((index, label), regex, flags) for label, regex, flags in rule_gates)
                    if rule.reads_every_text():
                        self._every_text[where].append(index)
        compiled: dict[tuple[Any, ...], TextGate] = {}  # places with the same rules share a gate
        self.gates: dict[str, TextGate] = {}
        for where in _WHERE:
            key = tuple(gates[where])
            if key not in compiled:
                compiled[key] = TextGate(gates[where], use_hyperscan=use_hyperscan)
            self.gates[where] = compiled[key]
        self._scan_limit = _ScanLimit(RuleCommon(
            id="scan-limit", kind="scan_limit", applies_to=list(APPLIES_TO), severity="info",
            message=f"text longer than {max_scan_chars} chars: only its head and tail were scanned"), None)
        self._cache: dict[tuple[str, str | None, str], list[tuple[int, list[Match]]]] = {}
        self.model_rules = [rule for rule in self.rules if rule.model_name() is not None]
        """Rules with a heavy (model) tier: ``evaluate_models`` runs them on batches."""

    @property
    def gate_backend(self) -> str:
        """``hyperscan`` when the one-pass gate is in use, else ``none``."""
        return "hyperscan" if any(g.backend == "hyperscan" for g in self.gates.values()) else "none"

    @classmethod
    def from_yaml(cls, text: str | bytes, *, source: str = "<string>", max_verdicts_per_rule: int = 20,
                  use_hyperscan: bool = True, max_scan_chars: int | None = None) -> GuardrailPolicy:
        """Compile a policy from its YAML text.

        Raises:
            PolicyError: the file or a rule is invalid (the rule id is in the message).
        """
        raw = text.encode("utf-8") if isinstance(text, str) else text
        try:
            data = msgspec.convert(yaml.safe_load(raw) or {}, _PolicyFile)
        except yaml.YAMLError as exc:
            raise PolicyError(yaml_problem(exc), source=source) from None
        except msgspec.ValidationError as exc:
            raise PolicyError(str(exc), source=source) from None
        try:
            rules = [build_rule(entry, data.defaults) for entry in data.rules]
        except PolicyError as exc:
            raise PolicyError(str(exc), source=source) from None
        declared = str(data.version) if data.version != "" else "0"
        version = f"{declared}+{hashlib.sha256(raw).hexdigest()[:8]}"
        return cls(rules, version=version, source=source, max_verdicts_per_rule=max_verdicts_per_rule,
                   use_hyperscan=use_hyperscan,
                   max_scan_chars=data.max_scan_chars if max_scan_chars is None else max_scan_chars)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> GuardrailPolicy:
        """Load a policy file; None loads the shipped ``default_policy.yaml``."""
        if path is None:
            data = resources.files("llmpulse.processors.guardrails").joinpath(
                "default_policy.yaml").read_bytes()
            return cls.from_yaml(data, source="default", **kwargs)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise PolicyError(str(exc), source=str(path)) from None
        return cls.from_yaml(data, source=str(path), **kwargs)

    def _find(self, segment: Segment, call: EnrichedCall | None) -> list[tuple[int, list[Match]]]:
        text = segment.text
        if len(text) <= self.max_scan_chars:
            return self._find_in(segment, call)
        head = self.max_scan_chars * 3 // 4
        tail_start = len(text) - (self.max_scan_chars - head)
        merged: dict[int, list[Match]] = {}
        for offset, window in ((0, text[:head]), (tail_start, text[tail_start:])):
            for index, matches in self._find_in(segment._replace(text=window), call):
                merged.setdefault(index, []).extend(
                    m if m.start is None or m.end is None
                    else m._replace(start=m.start + offset, end=m.end + offset) for m in matches)
        return sorted(merged.items())

    def _find_in(self, segment: Segment, call: EnrichedCall | None) -> list[tuple[int, list[Match]]]:
        gate = self.gates[segment.where]
        ungated = self._ungated[segment.where]
        every_text = self._every_text[segment.where]
        if not ungated and not gate.keys and not every_text:
            return []
        key = None
        if len(segment.text) >= _CACHE_MIN_CHARS and (segment.where in _CACHED_WHERE
                                                       or segment.role in _CACHED_ROLES):
            key = (segment.where, segment.role, segment.text)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
        found: list[tuple[int, list[Match]]] = []
        role = segment.role
        for index, rule in ungated:
            if rule.roles is None or role is None or role in rule.roles:
                matches = rule.find(segment.text, None, call, segment.where)
                if matches:
                    found.append((index, matches))
        fired = gate.triggered(segment.text) if gate.keys else ()
        if fired or every_text:
            by_rule: dict[int, set[str]] = {index: set() for index in every_text}  # no gate of theirs yet
            for fired_key in fired:
                index, label = cast(tuple[int, str], fired_key)
                by_rule.setdefault(index, set()).add(label)
            exact = gate.backend != "none"
            for index in sorted(by_rule):
                rule = self.rules[index]
                if rule.roles is None or role is None or role in rule.roles:
                    labels = by_rule[index] if exact else None
                    matches = rule.find(segment.text, labels, call, segment.where)
                    if matches:
                        found.append((index, matches))
            if ungated:
                found.sort(key=lambda item: item[0])
        if key is not None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = found
        return found

    def check_text(self, text: str, where: str = "prompt",
                   role: str | None = "user") -> list[tuple[Rule, list[Match]]]:
        """The text rules' matches in one text, as if it were a segment of a call (``where``
        prompt, response, context, tool_arguments or tool_result; ``role`` for prompt
        messages). For evaluating a policy on a labelled corpus; the worker calls ``evaluate``."""
        segment = Segment(where, "text", role, text)
        found = self._find(segment, EnrichedCall(call_id="-", app="-"))
        return [(self.rules[index], matches) for index, matches in found]

    def evaluate(self, event: EnrichedCall | SpanEvent) -> PolicyResult:
        """Run the text rules on every segment of a call or span (a span's tool arguments
        and result: ``tool_arguments`` and ``tool_result`` rules)."""
        verdicts: list[GuardrailVerdict] = []
        redactions: dict[str, list[tuple[int, int, str]]] = {}
        call = event if isinstance(event, EnrichedCall) else None  # what rules may read besides the text
        for segment in segments(event):
            if len(segment.text) > self.max_scan_chars:
                note = f"scanned {self.max_scan_chars} of {len(segment.text)} chars"
                verdicts.append(self._verdict(event, self._scan_limit, segment.where, segment.name,
                                              Match(None, None, note, "partly_scanned"), 0))
            for index, matches in self._find(segment, call):
                rule = self.rules[index]
                kept = matches[:self.max_verdicts_per_rule]
                omitted = len(matches) - len(kept)
                for n, match in enumerate(kept):
                    verdicts.append(self._verdict(event, rule, segment.where, segment.name, match,
                                                  omitted if n == len(kept) - 1 else 0))
                if rule.action == "redact":
                    spans = redactions.setdefault(segment.name, [])
                    for match in matches:
                        start = 0 if match.start is None else match.start
                        end = len(segment.text) if match.end is None else match.end
                        spans.append((start, end, match.kind if match.start is not None else rule.id))
        return PolicyResult(verdicts, redactions)

    def evaluate_scores(self, call: EnrichedCall, scores: Sequence[ScoreResult]) -> PolicyResult:
        """Run the score rules (toxicity, attack similarity) on newly computed scores."""
        verdicts: list[GuardrailVerdict] = []
        redactions: dict[str, list[tuple[int, int, str]]] = {}
        for score in scores:
            if score.status != "ok" or score.value is None:
                continue
            for where, rule in self._score_rules.get(score.name, ()):
                match = rule.check_score(where, score)
                if match is None:
                    continue
                segment = "response" if where == "response" else _last_user_segment(call)
                verdicts.append(self._verdict(call, rule, where, segment, match, 0))
                if rule.action == "redact":
                    redactions.setdefault(segment, []).append((0, 1 << 30, rule.id))
        return PolicyResult(verdicts, redactions)

    def prepare(self) -> None:
        """Build now what the rules would build at their first check of some text (the
        injection rule's de-obfuscation gate): a worker's start, or an image's build."""
        for rule in self.rules:
            rule.prepare()

    def load_models(self) -> dict[str, str]:
        """Load the heavy tiers' models now (a worker's start); each rule's backend, by id."""
        return {rule.id: rule.load_model() for rule in self.model_rules}

    @property
    def models_missing(self) -> dict[str, str]:
        """The rules whose model tier could not load, and why, by rule id (each named once
        in the log too); their pattern tiers run all the same."""
        return {rule.id: why for rule in self.model_rules if (why := rule.model_missing()) is not None}

    def evaluate_models(self, calls: Sequence[EnrichedCall]) -> list[PolicyResult]:
        """Run the rules' model tiers (the injection classifier) on a batch of calls: one
        model run per rule over every segment it applies to; one result per call."""
        results = [PolicyResult([], {}) for _ in calls]
        for rule in self.model_rules:
            slots: list[tuple[int, Segment]] = []
            for i, call in enumerate(calls):
                for segment in segments(call):
                    if segment.where in rule.applies_to and (
                            rule.roles is None or segment.role is None or segment.role in rule.roles):
                        slots.append((i, segment))
            if not slots:
                continue
            try:
                found = rule.classify([segment.text for _, segment in slots],
                                      [segment.where for _, segment in slots])
            except Exception:  # a model failure must not stop the stream
                logger.exception("guardrails: rule %s failed on a batch of %d texts", rule.id, len(slots))
                continue
            if found is None:
                continue
            for (i, segment), hit in zip(slots, found, strict=True):
                if hit is None:
                    continue
                match, attributes = hit
                results[i].verdicts.append(
                    self._verdict(calls[i], rule, segment.where, segment.name, match, 0, attributes))
                if rule.action == "redact":
                    results[i].redactions.setdefault(segment.name, []).append((0, len(segment.text), rule.id))
        return results

    def _verdict(self, call: EnrichedCall | SpanEvent, rule: Rule, where: str, segment: str, match: Match,
                 omitted: int, extra: dict[str, Any] | None = None) -> GuardrailVerdict:
        ms = int(call.occurred_at.timestamp() * 1000)
        event_id = derived_uuid7(ms, str(call.event_id), rule.id, segment, str(match.start),
                                 str(match.end), match.kind)
        attributes: dict[str, str | int | float | bool | None] = {"segment": segment,
                                                                  "match_kind": match.kind}
        if omitted:
            attributes["omitted_matches"] = omitted
        if extra:
            attributes.update(extra)
        return GuardrailVerdict(
            event_id=event_id, **envelope(call), rule_id=rule.id,
            rule_kind=getattr(rule, "kind_name", rule.kind),
            applies_to=cast(Where, where), severity=rule.severity, action=rule.action,
            policy_version=self.version, span_start=match.start, span_end=match.end,
            match_preview=match.preview, message=rule.message, attributes=attributes,
        )


class PolicyStore:
    """The current policy of a worker, reloaded when its file changes.

    ``policy`` looks at the file at most once per ``reload_interval_s`` (a ``stat``); a
    changed file is compiled and swapped in. A file that does not compile is logged and
    the previous policy stays in force. With no path the shipped default is used.

    Args:
        path: the policy file (None: the shipped default, never reloaded).
        reload_interval_s: how often to look at the file; 0 looks on every access.
        **policy_options: passed to ``GuardrailPolicy`` (``max_verdicts_per_rule``...).

    Attributes:
        reloads: how many times a changed file was loaded.
        reload_errors: how many changed files failed to compile.
        last_error: the last compile error, if any.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, reload_interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, **policy_options: Any) -> None:
        self.path = Path(path) if path is not None else None
        self.reload_interval_s = reload_interval_s
        self._clock = clock
        self._options = policy_options
        self._lock = threading.Lock()
        self.reloads = 0
        self.reload_errors = 0
        self.last_error: str | None = None
        self._signature = self._stat()
        self._policy = GuardrailPolicy.load(self.path, **policy_options)
        self._checked_at = clock()

    def _stat(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    @property
    def policy(self) -> GuardrailPolicy:
        """The policy in force (reloaded first if the file changed)."""
        if self.path is not None and self._clock() - self._checked_at >= self.reload_interval_s:
            self.check()
        return self._policy

    def check(self) -> bool:
        """Look at the file now; True when a new policy was loaded."""
        with self._lock:
            self._checked_at = self._clock()
            signature = self._stat()
            if signature is None or signature == self._signature:
                return False
            self._signature = signature
            try:
                policy = GuardrailPolicy.load(self.path, **self._options)
            except PolicyError as exc:
                self.reload_errors += 1
                self.last_error = str(exc)
                logger.error("guardrail policy not reloaded, keeping version %s: %s",
                             self._policy.version, exc)
                return False
            if policy.version == self._policy.version:
                return False
            policy.prepare()  # its de-obfuscation gate now, not at the first obfuscated text
            logger.info("guardrail policy reloaded from %s: version %s -> %s",
                        self.path, self._policy.version, policy.version)
            self._policy = policy
            self.reloads += 1
            self.last_error = None
            return True
