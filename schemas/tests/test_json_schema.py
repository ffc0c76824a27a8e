"""The committed JSON Schema files match the models, and describe what we encode."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from llmpulse.schemas import (
    ChatMessage,
    FeedbackEvent,
    PromptEvent,
    ResponseEvent,
    encode_batch,
    encode_event,
    json_schemas,
)

JSONSCHEMA_DIR = Path(__file__).resolve().parents[1] / "jsonschema"


def test_committed_files_match_the_models() -> None:
    generated = json_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in JSONSCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(generated), "run: uv run llmpulse schemas export"
    stale = [name for name, text in generated.items() if committed[name] != text]
    assert not stale, f"stale JSON Schema files {stale}; run: uv run llmpulse schemas export"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSONSCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_encoded_events_validate_against_their_schema() -> None:
    prompt = PromptEvent(call_id="c", app="a", messages=[ChatMessage(role="user", content="hi")])
    response = ResponseEvent(call_id="c", app="a", text="hello", latency_ms=3.0)
    feedback = FeedbackEvent(call_id="c", app="a", thumbs="up", rating=5)
    for name, event in [("prompt", prompt), ("response", response), ("feedback", feedback)]:
        _validator(f"{name}.schema.json").validate(json.loads(encode_event(event)))
    batch = encode_batch([encode_event(e) for e in (prompt, response, feedback)])
    _validator("batch.schema.json").validate(json.loads(batch))


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("feedback.schema.json", {"type": "feedback", "app": "a", "call_id": "c", "rating": 7}),
        ("response.schema.json", {"type": "response", "app": "a", "call_id": "c"}),
        ("prompt.schema.json", {"type": "prompt", "app": "", "call_id": "c"}),
    ],
)
def test_schemas_reject_what_the_decoder_rejects(name: str, document: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator(name).validate(document)
