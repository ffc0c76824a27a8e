"""JSON Schema export of the contracts, for producers written in other languages.

The files under ``schemas/jsonschema/`` are generated from the models by
``llmpulse schemas export`` and committed; a test fails when they drift.

Example:
    >>> from llmpulse.schemas import json_schemas
    >>> sorted(json_schemas())[:3]
    ['alert.schema.json', 'batch.schema.json', 'dead_letter.schema.json']
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from msgspec import Struct

from llmpulse.schemas._events import (
    SCHEMA_VERSION,
    Alert,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    Event,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    PromptLabel,
    PromptVersion,
    ResponseEvent,
    SpanEvent,
)

__all__ = ["BatchRecord", "export_json_schemas", "json_schemas"]


class BatchRecord(Struct, tag="batch", tag_field="type", kw_only=True):
    """A Kafka record value holding several events bound for one partition."""

    schema_version: int = SCHEMA_VERSION
    count: int
    """Must equal the number of events."""
    events: list[Event]


_MODELS: dict[str, type[Struct]] = {
    "prompt": PromptEvent,
    "response": ResponseEvent,
    "feedback": FeedbackEvent,
    "enriched_call": EnrichedCall,
    "guardrail_verdict": GuardrailVerdict,
    "span": SpanEvent,
    "drift_result": DriftResult,
    "alert": Alert,
    "dead_letter": DeadLetter,
    "prompt_version": PromptVersion,
    "prompt_label": PromptLabel,
    "batch": BatchRecord,
}


def json_schemas() -> dict[str, str]:
    """Every contract's JSON Schema (2020-12), by file name, as stable text."""
    out: dict[str, str] = {}
    for name, model in _MODELS.items():
        schema = msgspec.json.schema(model)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://llmpulse.dev/schemas/v{SCHEMA_VERSION}/{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export_json_schemas(directory: Path) -> list[Path]:
    """Write every schema file into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in json_schemas().items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
