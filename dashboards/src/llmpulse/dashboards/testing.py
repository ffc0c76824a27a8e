"""Sample traffic for the dashboards, the report and the comparison, written through the sink.

Two apps, two environments, two models; prompt ``answer`` in versions ``1`` and ``2``
(version 2 gets more thumbs up and higher relevance, and is slower and longer; toxicity,
refusals and errors are drawn from the same distributions for both), prompt
``summarize`` in version ``1``; guardrail verdicts of three rules with all three actions;
feedback on about a third of the calls (half of it naming only the call id, attributed
by the writer); drift windows every 30 minutes, with version 2 of ``answer`` drifting
(``prompt_length`` and ``embedding``) in the last third; alert transitions and dead
letters; and agent runs of ``support-bot`` (``llmpulse.dashboards.agent_traffic``: LLM calls and
tool spans in one trace, a flaky tool, a loop, an injection in a tool result), one per 40
calls, drawn from their own random stream so the calls above are the same with or without
them. Deterministic per seed; the times follow ``start``.

Example:
    >>> from llmpulse.dashboards.testing import sample_traffic
    >>> events = sample_traffic(calls=50, seed=1)
    >>> sorted({type(e).__name__ for e in events})
    ['Alert', 'DeadLetter', 'DriftResult', 'EnrichedCall', 'FeedbackEvent', 'GuardrailVerdict', 'SpanEvent']
    >>> from llmpulse.dashboards.testing import write_sample_traffic
    >>> traffic = write_sample_traffic(store, calls=3000)     # doctest: +SKIP
    >>> traffic.written["calls"]                               # doctest: +SKIP
    3000
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmpulse.dashboards.agent_traffic import agent_runs
from llmpulse.schemas import (
    Alert,
    ChatMessage,
    DeadLetter,
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
)
from llmpulse.sinks.testing import sample_text

__all__ = ["VERSION_EFFECTS", "SampleTraffic", "sample_traffic", "write_sample_traffic"]

VERSION_EFFECTS: dict[tuple[str, str], dict[str, float]] = {
    ("answer", "1"): {"thumbs_up": 0.55, "relevance": 0.62, "latency_mu": 6.0, "output_tokens": 180},
    ("answer", "2"): {"thumbs_up": 0.72, "relevance": 0.74, "latency_mu": 6.25, "output_tokens": 240},
    ("summarize", "1"): {"thumbs_up": 0.65, "relevance": 0.70, "latency_mu": 6.4, "output_tokens": 300},
}
"""What differs between prompt versions (everything else is drawn alike)."""

_PRICES = {"gpt-4o-mini": (1.5e-7, 6e-7), "llama-3-8b": (5e-8, 1e-7)}
_SCORERS: dict[str, Any] = {"scorer_version": "1.0"}


@dataclass
class SampleTraffic:
    """What ``write_sample_traffic`` wrote: the time range, the events, the counts per table."""

    start: datetime
    end: datetime
    events: list[Any] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)


def _call(rng: random.Random, i: int, seed: int, at: datetime, drift_from: datetime) -> EnrichedCall:
    app = "support-bot" if rng.random() < 0.7 else "search-assistant"
    prompt_id = "answer" if app == "support-bot" else rng.choice(("answer", "summarize"))
    version = rng.choice(("1", "2")) if prompt_id == "answer" else "1"
    effects = VERSION_EFFECTS[(prompt_id, version)]
    model = "gpt-4o-mini" if rng.random() < 0.6 else "llama-3-8b"
    environment = "production" if rng.random() < 0.85 else "staging"
    call_id = f"call-{seed}-{i}"
    common: dict[str, Any] = {
        "call_id": call_id,
        "app": app,
        "environment": environment,
        "prompt_id": prompt_id,
        "prompt_version": version,
        "request_model": model,
        "provider": "openai" if model.startswith("gpt") else "vllm",
        "session_id": f"s-{i % 211}",
    }
    drifting = prompt_id == "answer" and version == "2" and at >= drift_from
    docs = [
        RetrievedDocument(id=f"doc-{rng.randrange(500)}", content=sample_text(rng, 30))
        for _ in range(rng.randrange(0, 4))
    ]
    prompt = PromptEvent(
        occurred_at=at,
        **common,
        messages=[
            ChatMessage(role="system", content="You are a helpful support agent."),
            ChatMessage(role="user", content=sample_text(rng, 60 if drifting else 20)),
        ],
        retrieved_context=docs,
        temperature=0.2,
        max_tokens=512,
    )
    failed = rng.random() < 0.03
    refused = not failed and rng.random() < 0.04
    input_tokens = rng.randrange(200, 1200) + (600 if drifting else 0)
    output_tokens = max(5, int(rng.gauss(effects["output_tokens"], 60)))
    usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
    price_in, price_out = _PRICES[model]
    latency = rng.lognormvariate(effects["latency_mu"], 0.45)
    response = ResponseEvent(
        occurred_at=at + timedelta(milliseconds=latency),
        **common,
        text=None if failed else ("I can't help with that." if refused else sample_text(rng, 40)),
        error=ErrorInfo(type="RateLimitError", message="429 too many requests") if failed else None,
        finish_reason=None if failed else ("content_filter" if refused and rng.random() < 0.5 else "stop"),
        usage=None if failed else usage,
        latency_ms=latency,
        time_to_first_token_ms=latency * 0.25,
        cost_usd=None if failed else input_tokens * price_in + output_tokens * price_out,
        streamed=True,
    )
    toxicity = rng.random() ** 9
    relevance = min(1.0, max(0.0, rng.gauss(effects["relevance"], 0.15)))
    scores = [
        ScoreResult(name="toxicity", backend="detoxify:original", value=toxicity, **_SCORERS),
        ScoreResult(name="relevance", backend="minilm", value=relevance, **_SCORERS),
        ScoreResult(
            name="quality", backend="heuristic", value=min(1.0, max(0.0, rng.gauss(0.7, 0.12))), **_SCORERS
        ),
        ScoreResult(
            name="refusal", backend="heuristic", value=0.92 if refused else rng.random() * 0.1, **_SCORERS
        ),
        (
            ScoreResult(
                name="groundedness",
                backend="minilm",
                value=min(1.0, max(0.0, rng.gauss(0.68, 0.15))),
                **_SCORERS,
            )
            if docs
            else ScoreResult(
                name="groundedness",
                backend="minilm",
                status="unavailable",
                detail="no retrieved context",
                **_SCORERS,
            )
        ),
    ]
    verdicts = []
    rules: list[tuple[str, str, Any, Any, Any]] = []
    if rng.random() < 0.05:
        rules.append(("pii.email", "regex", "response", "medium", "redact"))
    if toxicity >= 0.8:
        rules.append(("toxicity.threshold", "score", "response", "high", "block"))
    if rng.random() < 0.02:
        rules.append(("jailbreak.prompt", "classifier", "prompt", "low", "flag"))
    for rule_id, kind, applies_to, severity, action in rules:
        verdicts.append(
            GuardrailVerdict(
                occurred_at=at,
                **common,
                rule_id=rule_id,
                rule_kind=kind,
                applies_to=applies_to,
                severity=severity,
                action=action,
                policy_version="p-1",
                message=f"{rule_id} matched",
            )
        )
    complete = rng.random() > 0.01
    return EnrichedCall(
        occurred_at=at,
        **common,
        prompt=prompt,
        response=response if complete else None,
        complete=complete,
        incomplete_reason=None if complete else "response_timeout",
        scores=scores,
        verdicts=verdicts,
        scorer_set_version="s-1",
        policy_version="p-1",
    )


def _feedback(rng: random.Random, call: EnrichedCall) -> FeedbackEvent | None:
    if rng.random() >= 0.35:
        return None
    effects = VERSION_EFFECTS[(call.prompt_id or "", call.prompt_version or "")]
    up = rng.random() < effects["thumbs_up"]
    rating = max(1, min(5, round(rng.gauss(4.0 if up else 2.3, 0.8))))
    named: dict[str, Any] = (
        {
            "prompt_id": call.prompt_id,
            "prompt_version": call.prompt_version,
            "request_model": call.request_model,
        }
        if rng.random() < 0.5
        else {}
    )
    comment = rng.choice(("great answer", "wrong order number", "too long", "thanks!", "did not help"))
    return FeedbackEvent(
        call_id=call.call_id,
        app=call.app,
        environment=call.environment,
        occurred_at=call.occurred_at + timedelta(seconds=rng.randrange(5, 120)),
        thumbs="up" if up else "down",
        rating=rating,
        comment=comment if rng.random() < 0.2 else None,
        correction="The order ships on Monday." if rng.random() < 0.05 else None,
        **named,
    )


def _drift(start: datetime, end: datetime, drift_from: datetime) -> list[DriftResult]:
    results = []
    targets = (
        ("support-bot", "answer", "1"),
        ("support-bot", "answer", "2"),
        ("search-assistant", "summarize", "1"),
    )
    window = timedelta(minutes=30)
    at = start + window
    while at <= end:
        for app, prompt_id, version in targets:
            drifting = version == "2" and at > drift_from + window / 2
            stats = {
                "prompt_length": 0.31 if drifting else 0.04,
                "embedding": 0.18 if drifting else 0.02,
                "response_length": 0.05,
                "toxicity": 0.03,
            }
            features = [
                FeatureDrift(
                    feature=name,
                    test="mmd" if name == "embedding" else "ks",
                    statistic=value,
                    p_value=None if name == "embedding" else (0.0004 if value > 0.1 else 0.41),
                    threshold=0.1,
                    drifted=value > 0.1,
                )
                for name, value in stats.items()
            ]
            share = sum(f.drifted for f in features) / len(features)
            results.append(
                DriftResult(
                    occurred_at=at,
                    app=app,
                    prompt_id=prompt_id,
                    prompt_version=version,
                    request_model="gpt-4o-mini",
                    window_start=at - window,
                    window_end=at,
                    reference_start=start - timedelta(days=7),
                    reference_end=start,
                    window_size=400,
                    reference_size=5000,
                    features=features,
                    share_drifted=share,
                    drifted=share >= 0.5,
                )
            )
        at += window
    return results


def _alerts(start: datetime, drift_from: datetime) -> list[Alert]:
    key = "support-bot/answer/2/drift"
    return [
        Alert(
            occurred_at=drift_from + timedelta(minutes=31),
            app="support-bot",
            rule="drift",
            status="firing",
            severity="high",
            dedup_key=key,
            summary="answer v2: 2 of 4 features drifted",
            prompt_id="answer",
            prompt_version="2",
            value=0.5,
            threshold=0.5,
        ),
        Alert(
            occurred_at=start + timedelta(minutes=40),
            app="support-bot",
            rule="error_rate",
            status="firing",
            severity="medium",
            dedup_key="support-bot/error_rate",
            summary="error rate above 2%",
            value=0.041,
            threshold=0.02,
        ),
        Alert(
            occurred_at=start + timedelta(minutes=70),
            app="support-bot",
            rule="error_rate",
            status="resolved",
            severity="medium",
            dedup_key="support-bot/error_rate",
            summary="error rate back under 2%",
            value=0.012,
            threshold=0.02,
        ),
    ]


def sample_traffic(
    *, calls: int = 3000, seed: int = 0, start: datetime | None = None, hours: float = 6.0
) -> list[Any]:
    """The events of ``calls`` calls over ``hours`` from ``start`` (default: ending now).

    Enriched calls (with their verdicts), feedback, drift results, alerts and dead
    letters, in time order per kind.
    """
    rng = random.Random(seed)
    span = timedelta(hours=hours)
    start = start or datetime.now(UTC).replace(microsecond=0) - span
    end = start + span
    drift_from = start + span * (2 / 3)
    times = sorted(start + timedelta(seconds=rng.random() * span.total_seconds()) for _ in range(calls))
    enriched = [_call(rng, i, seed, at, drift_from) for i, at in enumerate(times)]
    feedback = [f for f in (_feedback(rng, c) for c in enriched) if f is not None]
    agents = agent_runs(random.Random(f"agents-{seed}"), start, span, max(6, calls // 40))
    dead = [
        DeadLetter(
            occurred_at=start + timedelta(minutes=5 * k),
            reason=reason,
            detail="sample",
            stage="validate",
            source_topic="llm.prompts",
            payload=b"{",
        )
        for k, reason in enumerate(("invalid_json", "invalid_json", "unknown_version"))
    ]
    return [*enriched, *agents, *feedback, *_drift(start, end, drift_from), *_alerts(start, drift_from),
            *dead]


def write_sample_traffic(
    store: Any,
    *,
    calls: int = 3000,
    seed: int = 0,
    start: datetime | None = None,
    hours: float = 6.0,
    batch_size: int = 5000,
) -> SampleTraffic:
    """Write ``sample_traffic`` through the sinks' ``Writer`` (so rollups fill as in production).

    Args:
        store: an open, migrated ``llmpulse.sinks.Store``.
        calls: how many calls.
        seed: the random seed.
        start: the first call's earliest time (default: ``hours`` before now; raw rows older
            than the raw retention are dropped by ClickHouse at insert).
        hours: how long the traffic lasts.
        batch_size: events per write.
    """
    from llmpulse.sinks.writer import Sourced, Writer

    span = timedelta(hours=hours)
    start = start or datetime.now(UTC).replace(microsecond=0) - span
    events = sample_traffic(calls=calls, seed=seed, start=start, hours=hours)
    writer = Writer(store)
    written: dict[str, int] = {}
    # Calls first: feedback that names only its call id is attributed from stored calls.
    for index in range(0, len(events), batch_size):
        result = writer.write([Sourced(e) for e in events[index : index + batch_size]])
        for table, count in result.written.items():
            written[table] = written.get(table, 0) + count
    return SampleTraffic(start=start, end=start + span, events=events, written=written)
