"""The enrichment of calls: light scorers and guardrails, then model scorers in batches.

Plain Python, no Kafka: the Faust agents, replay and the embedded demo all call it.

- ``Enricher.light(pairs)`` joins each prompt with its response into an ``EnrichedCall``,
  runs the light scorers and the text rules of the guardrail policy, and masks what
  ``redact`` rules matched. Cheap (well under 150 us a call): run it on every call.
- ``Enricher.heavy(calls, scorers=...)`` runs the model scorers (toxicity, embeddings,
  readability) on a micro-batch, then the score rules (toxicity threshold, similarity to
  known attacks) and the policy's model tiers (the injection classifier, when enabled).
  Each batched scorer's ``BatchSettings`` (``enricher.batching``) tell
  the stream how many calls to gather and how long to wait.
- ``Enricher.enrich(pairs)`` is both, for replay and the demo.
- ``Enricher.guard_span(span)`` runs the policy's text rules on a span's tool arguments
  and result (the step's span path; ``llmpulse.processors.agents`` checks the trace).

The light path also flags the answer's tool calls whose arguments are not a JSON object
(``tool_arguments_invalid_json``, when the ``agents`` section is enabled).

Every record carries the scorer-set version and the policy version that produced it;
every score its scorer's name, version and backend.

Example:
    >>> from llmpulse.processors.pipeline import CallPair, Enricher
    >>> from llmpulse.processors.config import load_config
    >>> from llmpulse.schemas import ChatMessage, PromptEvent, ResponseEvent
    >>> enricher = Enricher(load_config(environ={}))
    >>> prompt = PromptEvent(call_id="c1", app="shop", request_model="gpt-4o-mini",
    ...     messages=[ChatMessage(role="user", content="Mail me at ada@example.com")])
    >>> response = ResponseEvent(call_id="c1", app="shop", text="Done, ada@example.com.",
    ...                          latency_ms=420.0)
    >>> [call] = enricher.light([CallPair(prompt=prompt, response=response)])
    >>> call.response.text, [v.rule_id for v in call.verdicts]
    ('Done, [EMAIL].', ['pii-prompt', 'pii-response'])
    >>> enricher.batching["toxicity"].size
    32
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from msgspec import Struct

from llmpulse.processors._ids import derived_uuid7
from llmpulse.processors.agents import agents_version, tool_call_verdicts
from llmpulse.processors.config import BatchSettings, ProcessorConfig, load_config
from llmpulse.processors.guardrails.policy import GuardrailPolicy, PolicyStore
from llmpulse.processors.scoring.base import Scorer, not_applicable
from llmpulse.processors.scoring.embeddings import EmbeddingScorer
from llmpulse.processors.scoring.operations import OperationsScorer
from llmpulse.processors.scoring.quality import QualityScorer
from llmpulse.processors.scoring.readability import ReadabilityScorer
from llmpulse.processors.scoring.toxicity import ToxicityScorer
from llmpulse.schemas import (
    EnrichedCall,
    GuardrailVerdict,
    PromptEvent,
    ResponseEvent,
    ScoreResult,
    SpanEvent,
)

__all__ = ["CallPair", "Enricher", "join", "sampled"]

logger = logging.getLogger(__name__)


class CallPair(Struct, kw_only=True, frozen=True):
    """A prompt and its response, as the join found them (one may be missing)."""

    prompt: PromptEvent | None = None
    response: ResponseEvent | None = None
    incomplete_reason: str | None = None
    """``response_timeout`` or ``prompt_timeout`` when the join gave up on one half."""


def sampled(call_id: str, rate: float) -> bool:
    """Whether a call is in the ``rate`` share that a sampled scorer scores: decided by a
    hash of its id, so every worker and every replay picks the same calls."""
    if rate >= 1.0:
        return True
    return zlib.crc32(call_id.encode("utf-8")) / 0x1_0000_0000 < rate


def _first(value: Any, fallback: Any) -> Any:
    return value if value is not None else fallback


def join(pair: CallPair) -> EnrichedCall:
    """The unscored ``EnrichedCall`` of a pair; its ``event_id`` derives from the sources,
    so a redelivered call gets the same id (the sink is idempotent on it)."""
    p, r = pair.prompt, pair.response
    source = p if p is not None else r
    if source is None:
        raise ValueError("a CallPair needs a prompt or a response")
    ms = int(source.occurred_at.timestamp() * 1000)
    event_id = derived_uuid7(ms, b"enriched", p.event_id.bytes if p else b"-",
                             r.event_id.bytes if r else b"-")
    complete = p is not None and r is not None
    reason = pair.incomplete_reason
    if not complete and reason is None:
        reason = "response_timeout" if r is None else "prompt_timeout"
    other = r if source is p else None  # the half whose fields fill the gaps of the prompt's
    return EnrichedCall(
        event_id=event_id, occurred_at=source.occurred_at, app=source.app,
        environment=source.environment, call_id=source.call_id,
        trace_id=_first(source.trace_id, other and other.trace_id),
        span_id=_first(source.span_id, other and other.span_id),
        parent_span_id=_first(source.parent_span_id, other and other.parent_span_id),
        session_id=_first(source.session_id, other and other.session_id),
        user_id=_first(source.user_id, other and other.user_id),
        prompt_id=_first(source.prompt_id, other and other.prompt_id),
        prompt_version=_first(source.prompt_version, other and other.prompt_version),
        request_model=_first(source.request_model, other and other.request_model),
        provider=_first(source.provider, other and other.provider),
        prompt=p, response=r, complete=complete, incomplete_reason=None if complete else reason,
    )


class Enricher:
    """Scores and guards calls with one configuration.

    Args:
        config: the settings (default: ``load_config()``, the file and ``LLMPULSE_*``).
        policy: a policy or policy store to use instead of the configured file.
        light_scorers: replaces the configured light scorers.
        batched_scorers: replaces the configured model scorers.

    Attributes:
        scorer_set_version: the configured ``scoring.version`` plus a hash of the scorers'
            names, versions and settings; written on every record.
        errors: calls whose enrichment raised (each still produced a record, marked).
    """

    def __init__(self, config: ProcessorConfig | None = None, *,
                 policy: GuardrailPolicy | PolicyStore | None = None,
                 light_scorers: Sequence[Any] | None = None,
                 batched_scorers: Sequence[Any] | None = None) -> None:
        self.config = config if config is not None else load_config()
        scoring = self.config.scoring
        if light_scorers is None:
            light_scorers = []
            if scoring.operations.enabled:
                light_scorers.append(OperationsScorer(scoring.operations))
            if scoring.quality.enabled:
                light_scorers.append(QualityScorer(scoring.quality))
        if batched_scorers is None:
            batched_scorers = []
            if scoring.toxicity.enabled:
                batched_scorers.append(ToxicityScorer(scoring.toxicity))
            if scoring.embeddings.enabled:
                batched_scorers.append(EmbeddingScorer(scoring.embeddings))
            if scoring.readability.enabled:
                batched_scorers.append(ReadabilityScorer(scoring.readability))
        self.light_scorers: list[Scorer] = list(light_scorers)
        self.batched_scorers: dict[str, Scorer] = {s.name: s for s in batched_scorers}
        guard = self.config.guardrails
        if policy is None and guard.enabled:
            policy = PolicyStore(guard.policy, reload_interval_s=guard.reload_interval_s,
                                 max_verdicts_per_rule=guard.max_verdicts_per_rule)
        self._policy = policy
        names = [(s.name, s.version) for s in (*self.light_scorers, *self.batched_scorers.values())]
        digest = hashlib.sha256(msgspec.json.encode([names, self.config.fingerprint()])).hexdigest()[:8]
        self.scorer_set_version = f"{scoring.version}+{digest}"
        self.agents_version = agents_version(self.config.agents) if self.config.agents.enabled else None
        """What the agent checks' verdicts carry as ``policy_version`` (None: checks off)."""
        self.errors = 0

    @property
    def policy(self) -> GuardrailPolicy | None:
        """The guardrail policy in force (a reloaded file shows here)."""
        if isinstance(self._policy, PolicyStore):
            return self._policy.policy
        return self._policy

    @property
    def batching(self) -> dict[str, BatchSettings]:
        """The micro-batch settings of each batched scorer, by name."""
        return {name: s.batching for name, s in self.batched_scorers.items() if s.batching is not None}

    def load_models(self) -> dict[str, str]:
        """Load every model now (a worker calls this at start); returns each scorer's backend."""
        backends = {}
        for name, scorer in self.batched_scorers.items():
            load = getattr(scorer, "load", None)
            if load is not None:
                load()
            backends[name] = str(getattr(scorer, "backend", "unknown"))
        policy = self.policy
        if policy is not None:
            backends.update({f"guardrail:{rule_id}": backend
                             for rule_id, backend in policy.load_models().items()})
        return backends

    def load_light(self) -> None:
        """Load what the light scorers and the guardrails would load at their first call
        (the price table, the injection rule's de-obfuscation gate): a worker calls this at
        start, so its first batch does not pay it."""
        for scorer in self.light_scorers:
            load = getattr(scorer, "load", None)
            if load is not None:
                load()
        if self.policy is not None:
            self.policy.prepare()

    def light(self, pairs: Sequence[CallPair]) -> list[EnrichedCall]:
        """Join, run the light scorers and the guardrails' text rules, apply redactions."""
        policy = self.policy
        out = []
        for pair in pairs:
            call = join(pair)
            try:
                scores: list[ScoreResult] = []
                for scorer in self.light_scorers:
                    one = getattr(scorer, "score_one", None)
                    scores.extend(one(call) if one is not None else scorer.score([call])[0])
                verdicts = tool_call_verdicts(call, self.agents_version) \
                    if self.agents_version is not None else []
                if policy is not None:
                    result = policy.evaluate(call)
                    call = result.apply(call)
                    verdicts.extend(result.verdicts)
                    call.policy_version = policy.version
                call.verdicts = verdicts
                call.scores = scores
            except Exception as exc:  # one bad call must not stop the stream
                self.errors += 1
                logger.exception("enrichment failed for call %s", call.call_id)
                call.scores = [ScoreResult(name="enrichment", scorer_version="1", backend="pipeline",
                                           status="error", detail=f"{type(exc).__name__}: {exc}"[:500])]
            call.scorer_set_version = self.scorer_set_version
            out.append(call)
        return out

    def guard_span(self, span: SpanEvent) -> tuple[SpanEvent, list[GuardrailVerdict]]:
        """The policy's text rules on a span's tool arguments and result: the span with what
        ``redact`` rules matched masked, and the verdicts."""
        policy = self.policy
        if policy is None:
            return span, []
        result = policy.evaluate(span)
        return result.apply(span), result.verdicts

    def heavy(self, calls: Sequence[EnrichedCall], *, scorers: Iterable[str] | None = None
              ) -> list[EnrichedCall]:
        """Run batched scorers on a micro-batch, then the score rules on their new scores.

        Args:
            calls: the output of ``light`` (running it twice replaces, never duplicates).
            scorers: names of the batched scorers to run (default: all of them).
        """
        chosen = list(self.batched_scorers.values()) if scorers is None else \
            [self.batched_scorers[name] for name in scorers if name in self.batched_scorers]
        new: list[list[ScoreResult]] = [[] for _ in calls]
        for scorer in chosen:
            rate = float(getattr(getattr(scorer, "config", None), "sample_rate", 1.0))
            picked = [i for i, call in enumerate(calls) if sampled(call.call_id, rate)]
            if len(picked) < len(calls):
                skipped = f"not sampled (sample_rate {rate})"
                chosen_set = set(picked)
                for i in range(len(calls)):
                    if i not in chosen_set:
                        new[i].extend(not_applicable(n, scorer.version, "sampling", skipped)
                                      for n in scorer.produces)
            if picked:
                for i, results in zip(picked, scorer.score([calls[i] for i in picked]), strict=True):
                    new[i].extend(results)
        policy = self.policy
        modelled = policy.evaluate_models(calls) if policy is not None and scorers is None else None
        out = []
        for n, (call, fresh) in enumerate(zip(calls, new, strict=True)):
            names = {s.name for s in fresh}
            scores = [s for s in call.scores if s.name not in names] + fresh
            verdicts = list(call.verdicts)
            updated = msgspec.structs.replace(call, scores=scores)
            if policy is not None:
                policy_results = [policy.evaluate_scores(updated, fresh)]
                if modelled is not None:
                    policy_results.append(modelled[n])
                seen = {v.event_id for v in verdicts}
                for result in policy_results:
                    verdicts.extend(v for v in result.verdicts if v.event_id not in seen)
                    updated = result.apply(updated)
                updated.policy_version = policy.version
            updated.verdicts = verdicts
            updated.scorer_set_version = self.scorer_set_version
            out.append(updated)
        return out

    def enrich(self, pairs: Sequence[CallPair]) -> list[EnrichedCall]:
        """Light then heavy, in one go (replay, the demo, tests)."""
        return self.heavy(self.light(pairs))
