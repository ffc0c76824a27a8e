"""Realistic sample events for the sink's tests and benchmarks (deterministic per seed).

Example:
    >>> from llmpulse.sinks.testing import sample_calls
    >>> calls = sample_calls(3, seed=1)
    >>> len(calls), calls[0].app, calls[0].response.usage.input_tokens > 0
    (3, 'support-bot', True)
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec

from llmpulse.schemas import (
    Alert,
    ChatMessage,
    DriftResult,
    EnrichedCall,
    ErrorInfo,
    FeatureDrift,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    ScoreResult,
    TokenUsage,
    ToolCall,
    uuid7,
)

__all__ = ["VARIED_AT", "dashboard_differences", "sample_alert", "sample_calls", "sample_drift",
           "sample_feedback", "sample_text", "varied_calls"]

_WORDS = ("order", "refund", "delivery", "account", "password", "invoice", "shipping", "warranty",
          "the", "my", "is", "where", "please", "help", "with", "late", "broken", "thanks")


def sample_text(rng: random.Random, words: int) -> str:
    """``words`` words drawn from a small support-chat vocabulary (seeded, reproducible)."""
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def sample_calls(n: int, *, seed: int = 0, app: str = "support-bot", start: datetime | None = None,
                 spread_s: float = 600.0, error_rate: float = 0.05) -> list[EnrichedCall]:
    """``n`` enriched calls over two prompt versions and two models, with scores,
    an occasional guardrail verdict, error or timeout, spread over ``spread_s`` seconds."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - timedelta(seconds=spread_s)
    calls = []
    for i in range(n):
        at = start + timedelta(seconds=rng.random() * spread_s)
        call_id = f"call-{seed}-{i}"
        version = rng.choice(("1", "2"))
        model = rng.choice(("gpt-4o-mini", "llama-3-8b"))
        common: dict[str, Any] = {
            "call_id": call_id, "app": app, "prompt_id": "answer", "prompt_version": version,
            "request_model": model, "provider": "openai" if model.startswith("gpt") else "vllm",
            "session_id": f"s-{i % 97}"}
        prompt = PromptEvent(
            occurred_at=at, **common,
            messages=[ChatMessage(role="system", content="You are a helpful support agent."),
                      ChatMessage(role="user", content=sample_text(rng, 30))],
            template_variables={"customer": f"cust-{i % 13}"},
            retrieved_context=[RetrievedDocument(id=f"doc-{rng.randrange(500)}", content=sample_text(rng, 40))
                               for _ in range(rng.randrange(0, 4))],
            temperature=0.2, max_tokens=512)
        failed = rng.random() < error_rate
        usage = TokenUsage(input_tokens=rng.randrange(50, 2000), output_tokens=rng.randrange(5, 400))
        latency = rng.lognormvariate(6.0, 0.5)
        response = ResponseEvent(
            occurred_at=at + timedelta(milliseconds=latency), **common,
            text=None if failed else sample_text(rng, 60),
            error=ErrorInfo(type="RateLimitError", message="429 too many requests") if failed else None,
            finish_reason=None if failed else rng.choice(("stop", "stop", "length", "content_filter")),
            usage=None if failed else usage, latency_ms=latency,
            time_to_first_token_ms=latency * 0.3, cost_usd=None if failed else usage.input_tokens * 1.5e-7,
            streamed=True)
        scores = [
            ScoreResult(name="toxicity", scorer_version="1.0", backend="detoxify:original",
                        value=rng.random() ** 4),
            ScoreResult(name="relevance", scorer_version="1.0", backend="minilm", value=rng.random()),
            ScoreResult(name="groundedness", scorer_version="1.0", backend="minilm",
                        status="unavailable", detail="no retrieved context"),
            ScoreResult(name="json_valid", scorer_version="1.0", backend="heuristic", value=1.0),
        ]
        verdicts = []
        if rng.random() < 0.1:
            verdicts.append(GuardrailVerdict(
                occurred_at=at, **common, rule_id="pii.email", rule_kind="regex", applies_to="response",
                severity=rng.choice(("low", "high")), action=rng.choice(("flag", "redact", "block")),
                policy_version="p-3", span_start=3, span_end=20, match_preview="j***@***.com",
                message="email address in the response"))
        complete = rng.random() > 0.02
        calls.append(EnrichedCall(
            occurred_at=at, **common, prompt=prompt, response=response if complete else None,
            complete=complete, incomplete_reason=None if complete else "response_timeout",
            scores=scores, verdicts=verdicts, scorer_set_version="s-7", policy_version="p-3",
            attributes={"region": "eu", "tier": 2, "beta": True}))
    return calls


VARIED_AT = datetime(2026, 11, 30, 12, 0, 0, 250000, tzinfo=UTC)
"""When ``varied_calls`` happen (fixed, so their rows can be compared across runs)."""


def _verdict(call_id: str, rule: str, severity: str, action: str) -> GuardrailVerdict:
    return GuardrailVerdict(call_id=call_id, app="bot", occurred_at=VARIED_AT, rule_id=rule,
                            rule_kind="regex", applies_to="response", severity=severity,  # type: ignore[arg-type]
                            action=action, policy_version="p-1")  # type: ignore[arg-type]


def _agent_call() -> EnrichedCall:
    """v1.1: tool calls, span ids, reasoning tokens; scores named twice, provenance, unicode."""
    ids: dict[str, Any] = {"call_id": "c-agent", "app": "bot", "trace_id": "t-9", "span_id": "s-2",
                           "parent_span_id": "s-1"}
    return EnrichedCall(
        occurred_at=VARIED_AT.astimezone(timezone(timedelta(hours=5, minutes=30))), **ids,
        prompt=PromptEvent(**ids, prompt_id="plan", prompt_version="3", request_model="o4-mini",
                           messages=[ChatMessage(role="user", content="Zoë: \"météo\"\nà Paris ? 🌧")],
                           template_variables={"ville": "Paris", "clé": "ü"}),
        response=ResponseEvent(**ids, latency_ms=50.0, tool_calls=[
            ToolCall(id="tc-1", name="weather", arguments='{"city": "Paris"}'), ToolCall(name="calendar")],
            usage=TokenUsage(input_tokens=10, reasoning_tokens=40, cache_creation_input_tokens=7)),
        scores=[ScoreResult(name="toxicity", scorer_version="1", backend="b", value=0.25),
                ScoreResult(name="toxicity", scorer_version="2", backend="b", status="error"),
                ScoreResult(name="brand", scorer_version="1", backend="b", value=1.0),
                ScoreResult(name="brand", scorer_version="4", backend="b", value=3.0),
                ScoreResult(name="pii", scorer_version="1", backend="b", status="not_applicable"),
                ScoreResult(name="judge", scorer_version="1", backend="b"),  # ok but no value
                ScoreResult(name="cost_usd", scorer_version="1", backend="b", value=0.002,
                            attributes={"price_source": "genai-prices", "price_date": "2026-12-01"})],
        verdicts=[_verdict("c-agent", "pii.email", "low", "redact"),
                  _verdict("c-agent", "secret", "critical", "flag")],
        attributes={"region": "eu", "tier": 2, "ratio": 0.5, "beta": True, "none": None})


def _edge_calls() -> list[EnrichedCall]:
    """A failed call, a v1 call, one with neither half, one with only each half, and huge texts."""
    failed = EnrichedCall(
        call_id="c-failed", app="bot", prompt=PromptEvent(call_id="c-failed", app="bot"),
        response=ResponseEvent(call_id="c-failed", app="bot", latency_ms=3.0,
                               error=ErrorInfo(type="RateLimitError", message="429")),
        verdicts=[_verdict("c-failed", "block.me", "high", "block")])
    v1 = EnrichedCall(  # a v1 call: no tool calls, no span ids, no provenance
        call_id="c-v1", app="bot", schema_version=1, prompt_id="answer", request_model="gpt-4o-mini",
        prompt=PromptEvent(call_id="c-v1", app="bot", messages=[ChatMessage(role="user", content="hi")],
                           retrieved_context=[RetrievedDocument(id="d-1"), RetrievedDocument(id="d-2")]),
        response=ResponseEvent(call_id="c-v1", app="bot", text="hello", latency_ms=9.0),
        scores=[ScoreResult(name="relevance", scorer_version="1", backend="b", value=0.5)])
    bare = EnrichedCall(call_id="c-bare", app="bot", complete=False, incomplete_reason="response_timeout")
    prompt_only = EnrichedCall(  # every field from the prompt, none on the envelope
        call_id="c-prompt", app="bot", complete=False, incomplete_reason="response_timeout",
        prompt=PromptEvent(call_id="c-prompt", app="bot", prompt_id="p", prompt_version="9",
                           request_model="m-1", provider="acme", trace_id="t-1", session_id="s",
                           user_id="u", span_id="sp", parent_span_id="pp", operation="text_completion",
                           temperature=0.0, max_tokens=0, expects_json=True))
    response_only = EnrichedCall(  # the model and provider from the response, empty texts
        call_id="c-response", app="bot", complete=False, incomplete_reason="prompt_timeout",
        response=ResponseEvent(call_id="c-response", app="bot", latency_ms=0.0, text="",
                               response_model="m-2", provider="other", span_id="rs",
                               parent_span_id="rp", finish_reason="length", cost_usd=0.0,
                               usage=TokenUsage(output_tokens=4_000_000_000)),
        scores=[ScoreResult(name="quality", scorer_version="1", backend="b", value=-0.0),
                ScoreResult(name="refusal", scorer_version="1", backend="b", status="unavailable")])
    huge = "é🌧\u0000\t\"\\" + "x" * 1_000_000
    big = EnrichedCall(
        call_id="c-huge", app="bot", prompt=PromptEvent(
            call_id="c-huge", app="bot", messages=[ChatMessage(role="user", content=huge)] * 3,
            template_variables={"doc": huge}),
        response=ResponseEvent(call_id="c-huge", app="bot", text=huge, latency_ms=1.0,
                               error=ErrorInfo(type="Cut", message=huge)),
        attributes={"big": huge, "list": [1, "a"]})  # type: ignore[dict-item]
    return [msgspec.structs.replace(call, occurred_at=VARIED_AT)
            for call in (failed, v1, bare, prompt_only, response_only, big)]


def varied_calls() -> list[EnrichedCall]:
    """40 ``sample_calls`` with the edge cases among them: v1 and v1.1 calls, duplicate
    scorers, provenance, tool calls, unicode, huge texts, each half missing. Every id and
    time is fixed (event ids count up from 1), so the rows they make are the same each run."""
    calls = sample_calls(40, seed=5, start=VARIED_AT)
    agent, edges = _agent_call(), _edge_calls()
    batch = [*calls[:20], agent, edges[2], *calls[20:30], edges[0], edges[1], *calls[30:], *edges[3:]]
    pinned, counter = [], 0
    for call in batch:
        verdicts = []
        for verdict in call.verdicts:
            counter += 1
            verdicts.append(msgspec.structs.replace(verdict, event_id=uuid.UUID(int=counter)))
        counter += 1
        pinned.append(msgspec.structs.replace(call, event_id=uuid.UUID(int=counter), verdicts=verdicts,
                                              processed_at=VARIED_AT + timedelta(seconds=counter)))
    return pinned


def sample_feedback(calls: list[EnrichedCall], *, seed: int = 0, share: float = 0.3,
                    attributed: bool = False) -> list[FeedbackEvent]:
    """Feedback on a share of ``calls``; without ``attributed`` it names only the call id."""
    rng = random.Random(seed)
    events = []
    for call in calls:
        if rng.random() >= share:
            continue
        extra: dict[str, Any] = ({"prompt_id": call.prompt_id, "prompt_version": call.prompt_version,
                  "request_model": call.request_model} if attributed else {})
        events.append(FeedbackEvent(
            call_id=call.call_id, app=call.app, occurred_at=call.occurred_at + timedelta(seconds=5),
            thumbs=rng.choice(("up", "down")), rating=rng.randrange(1, 6),
            comment="great" if rng.random() < 0.5 else None, **extra))
    return events


def sample_alert(*, app: str = "support-bot", status: str = "firing") -> Alert:
    """A toxicity alert on prompt version 2."""
    return Alert(app=app, rule="toxicity_rate", status=status, severity="high",  # type: ignore[arg-type]
                 dedup_key=f"{app}/answer/2/toxicity_rate", summary="toxicity rate above 5%",
                 prompt_id="answer", prompt_version="2", value=0.08, threshold=0.05,
                 started_at=datetime.now(UTC) - timedelta(minutes=3))


def sample_drift(*, app: str = "support-bot") -> DriftResult:
    """A drifted window for prompt version 2."""
    now = datetime.now(UTC)
    return DriftResult(
        app=app, prompt_id="answer", prompt_version="2", request_model="gpt-4o-mini",
        window_start=now - timedelta(hours=1), window_end=now,
        reference_start=now - timedelta(days=8), reference_end=now - timedelta(days=1),
        window_size=1200, reference_size=9000, share_drifted=0.5, drifted=True,
        features=[FeatureDrift(feature="prompt_length", test="ks", statistic=0.31, p_value=0.001,
                               threshold=0.05, drifted=True),
                  FeatureDrift(feature="embedding", test="mmd", statistic=0.02, threshold=0.1,
                               drifted=False)],
        event_id=uuid7())


def dashboard_differences(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[str]:
    """Where two runs of the dashboard queries differ, ignoring float noise.

    Counts, ids and labels must match exactly. Float sums may differ in the last bits
    (summation order changes when ClickHouse merges rollup parts) and t-digest quantiles
    by a little more (merging digests in another grouping); both are compared loosely.
    """
    problems = []
    for name in sorted(set(before) | set(after)):
        rows_a, rows_b = before.get(name, []), after.get(name, [])
        if len(rows_a) != len(rows_b):
            problems.append(f"{name}: {len(rows_a)} rows, then {len(rows_b)}")
            continue
        for row_a, row_b in zip(rows_a, rows_b, strict=True):
            for a, b in zip(row_a, row_b, strict=True):
                if not _same(a, b):
                    problems.append(f"{name}: {row_a} != {row_b}")
                    break
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            math.isclose(x, y, rel_tol=0.02) if isinstance(x, float) else x == y
            for x, y in zip(a, b, strict=True))
    return bool(a == b)
