"""The topic catalogue: names, keys, contracts, partitions, retention, compaction.

The three input topics are co-partitioned (same partition count, keyed by ``call_id``
with Kafka's default hash), so a call's prompt, response and feedback meet in the same
partition and one worker joins them without a repartition.

Example:
    >>> from llmpulse.schemas.topics import CATALOGUE, topic_name
    >>> [t.name for t in CATALOGUE][:3]
    ['llm.prompts', 'llm.responses', 'llm.feedback']
    >>> topic_name("llm.prompts", prefix="staging.")
    'staging.llm.prompts'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec
from msgspec import Struct

from llmpulse.schemas import environment as env

__all__ = [
    "ALERTS",
    "CATALOGUE",
    "DLQ",
    "DRIFT",
    "DRIFT_INPUT",
    "ENRICHED",
    "ENRICHED_PENDING",
    "FEEDBACK",
    "OTLP_SPANS",
    "PROMPTS",
    "PROMPT_VERSIONS",
    "RESPONSES",
    "SPANS",
    "TopicSpec",
    "catalogue",
    "topic_name",
]

DAY_MS = 24 * 60 * 60 * 1000

PROMPTS = "llm.prompts"
RESPONSES = "llm.responses"
FEEDBACK = "llm.feedback"
ENRICHED = "llm.enriched"
ALERTS = "llm.alerts"
DRIFT = "llm.drift"
DLQ = "llm.dlq"
PROMPT_VERSIONS = "llm.prompt-versions"
ENRICHED_PENDING = "llm.enriched.pending"
DRIFT_INPUT = "llm.drift.input"
OTLP_SPANS = "llm.otlp.spans"
SPANS = "llm.spans"


class TopicSpec(Struct, kw_only=True, frozen=True):
    """One topic of the catalogue."""

    name: str
    key: str
    """What the record key is."""
    value: str
    """The contract(s) of the record values."""
    description: str
    partitions: int = 6
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    co_partitioned: bool = False
    """Must have the same partition count as the other co-partitioned topics."""
    max_message_bytes: int = 8 * 1024 * 1024
    """A batch record's cap (``max.message.bytes``), matching ``Limits.max_record_bytes``."""

    def configs(self) -> dict[str, str]:
        """The topic-level Kafka configuration to create it with."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(self.max_message_bytes),
            "compression.type": "producer",
        }


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(name=PROMPTS, key="call_id", value="PromptEvent, or a batch of them",
              description="Prompts sent by instrumented apps.", co_partitioned=True),
    TopicSpec(name=RESPONSES, key="call_id", value="ResponseEvent, or a batch of them",
              description="Responses (or errors) received by instrumented apps.",
              co_partitioned=True),
    TopicSpec(name=FEEDBACK, key="call_id", value="FeedbackEvent, or a batch of them",
              description="Human feedback, sent any time after the call.",
              retention_ms=30 * DAY_MS, co_partitioned=True),
    TopicSpec(name=SPANS, key="trace_id",
              value="SpanEvent, or a batch of them",
              description="The steps of a trace that are not LLM calls (tool executions, "
                          "agent steps, retrievals), one event per finished step. Keyed by "
                          "trace_id, so one worker sees a whole trace (loop detection)."),
    TopicSpec(name=ENRICHED, key="call_id", value="EnrichedCall, or a batch of them",
              description="Joined, scored and guarded calls, for the sink and replay."),
    TopicSpec(name=ALERTS, key="call_id for verdicts, dedup_key for alerts",
              value="GuardrailVerdict and Alert, or a batch of them",
              description="Guardrail verdicts and alerts raised or resolved.",
              retention_ms=30 * DAY_MS),
    TopicSpec(name=DRIFT, key="app/prompt_id/prompt_version",
              value="DriftResult, or a batch of them",
              description="One record per evaluated window of traffic.",
              retention_ms=30 * DAY_MS, partitions=1),
    TopicSpec(name=DLQ, key="the rejected record's key",
              value="DeadLetter, or a batch of them",
              description="Records any stage rejected, with the reason and the source offset.",
              retention_ms=30 * DAY_MS, partitions=1),
    TopicSpec(name=PROMPT_VERSIONS, key="<prompt_id>@<version> or <prompt_id>#<label>",
              value="PromptVersion and PromptLabel",
              description="The prompt registry: every published version and where each "
                          "label points. Compacted: the latest record per key is kept forever.",
              cleanup_policy="compact", retention_ms=-1, partitions=1),
    TopicSpec(name=ENRICHED_PENDING, key="call_id", value="EnrichedCall, or a batch of them",
              description="Internal to the workers: light-scored calls waiting for the model "
                          "scorers.", retention_ms=1 * DAY_MS),
    TopicSpec(name=DRIFT_INPUT, key="call_id", value="EnrichedCall and FeedbackEvent batches",
              description="Internal to the workers: finished calls and feedback for the drift "
                          "agent (one partition; its state is one table partition).",
              retention_ms=1 * DAY_MS, partitions=1),
    TopicSpec(name=OTLP_SPANS, key="trace id (the Collector's partition_traces_by_id)",
              value="OTLP TracesData, protobuf (the Collector's kafka exporter, otlp_proto)",
              description="Spans from OpenTelemetry-instrumented apps, written by the "
                          "OpenTelemetry Collector; the OTLP stage maps the GenAI ones onto "
                          "prompts and responses.", retention_ms=3 * DAY_MS),
)
"""Every topic llmpulse uses, with its defaults."""


def topic_name(base: str, prefix: str | None = None) -> str:
    """The full name of a catalogue topic: ``LLMPULSE_TOPIC_PREFIX`` + base."""
    if prefix is None:
        prefix = os.environ.get(env.TOPIC_PREFIX, "")
    return f"{prefix}{base}"


def catalogue(
    *,
    prefix: str | None = None,
    partitions: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[TopicSpec]:
    """The catalogue with the prefix applied and the partitions of the call topics set.

    ``partitions`` (or ``LLMPULSE_TOPIC_PARTITIONS``) sets every topic that has more
    than one partition by default, so co-partitioned topics always agree.
    """
    source = os.environ if environ is None else environ
    if prefix is None:
        prefix = source.get(env.TOPIC_PREFIX, "")
    if partitions is None and source.get(env.TOPIC_PARTITIONS):
        partitions = int(source[env.TOPIC_PARTITIONS])
    if partitions is not None and partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    specs = []
    for spec in CATALOGUE:
        n = partitions if partitions is not None and spec.partitions > 1 else spec.partitions
        specs.append(msgspec.structs.replace(spec, name=f"{prefix}{spec.name}", partitions=n))
    return specs
