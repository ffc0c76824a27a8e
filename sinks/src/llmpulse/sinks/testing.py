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
from datetime import UTC, datetime, timedelta
from typing import Any

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
    uuid7,
)

__all__ = ["dashboard_differences", "sample_alert", "sample_calls", "sample_drift", "sample_feedback",
           "sample_text"]

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
