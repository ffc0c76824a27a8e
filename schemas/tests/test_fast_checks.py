"""The fast path of validation accepts only what the full checks accept, and the common
events take it (so it is not dead code)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import replace

from llmpulse.schemas import (
    ChatMessage,
    EnrichedCall,
    ErrorInfo,
    GuardrailVerdict,
    Limits,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    SchemaError,
    ScoreResult,
    SpanEvent,
    ToolCall,
    _fast_checks,
    _limits,
    validate_event,
)
from llmpulse.schemas._fast_checks import passes, prompt_of_a_span

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(minutes=1)
LIMITS = Limits(max_id_chars=20, max_text_chars=50, max_attributes=3, max_attribute_chars=10,
                max_messages=2, max_documents=2, max_tool_calls=2, max_tool_arguments_chars=10,
                max_tool_result_chars=10)
IDS = {"app": "shop", "call_id": "c1", "trace_id": "t" * 20, "span_id": "s1",
       "occurred_at": AT, "attributes": {"k": "v", "n": 3}}
PROMPT = PromptEvent(**IDS, request_model="gpt-4o-mini", provider="openai",
                     messages=[ChatMessage(role="user", content="Where is my order?")],
                     retrieved_context=[RetrievedDocument(id="d1", content="Order 1 ships")],
                     template_variables={"order": "1"})
RESPONSE = ResponseEvent(**IDS, text="It ships today.", response_id="r1", finish_reason="stop",
                         latency_ms=5.0)
SPAN = SpanEvent(**{**IDS, "call_id": "s1"}, name="lookup_order", operation="execute_tool",
                 started_at=AT - timedelta(seconds=1), latency_ms=3.0, result_preview="ok",
                 tool=ToolCall(id="call_1", name="lookup_order", arguments="{}"))
ENRICHED = EnrichedCall(**IDS, prompt=PROMPT, response=RESPONSE, processed_at=NOW,
                        scores=[ScoreResult(name="toxicity", scorer_version="1", backend="x")])
VALID = [PROMPT, RESPONSE, SPAN, ENRICHED,
         replace(RESPONSE, text=None, error=ErrorInfo(type="timeout", message="late")),
         replace(SPAN, status="error", error=ErrorInfo(type="boom"), tool=None),
         replace(PROMPT, schema_version=1, operation="Free Text"),
         replace(ENRICHED, response=None), replace(ENRICHED, prompt=None)]

LONG_ID, LONG_TEXT, CTRL = "x" * 21, "y" * 51, "bad\x07id"
COMMON: list[dict[str, Any]] = [
    {"schema_version": 99}, {"occurred_at": NOW + timedelta(days=1)},
    {"occurred_at": NOW - timedelta(days=400)}, {"attributes": {CTRL: "v"}},
    {"attributes": {"k" * 11: "v"}}, {"attributes": {"k": "v" * 11}},
    {"attributes": {"a": 1, "b": 2, "c": 3, "d": 4}}, {"app": LONG_ID}, {"app": CTRL},
    {"call_id": CTRL}, {"trace_id": LONG_ID}, {"environment": "prod\n"},
    {"user_id": LONG_ID}, {"provider": "\x85"},
]
MUTATIONS: dict[str, list[dict[str, Any]]] = {
    "prompt": [
        {"operation": "Chat!"}, {"operation": CTRL}, {"operation": LONG_ID},
        {"messages": [ChatMessage(role="user", content="a")] * 3},
        {"messages": [ChatMessage(role="user", content=LONG_TEXT)]},
        {"messages": [ChatMessage(role="assistant", content="", tool_calls=[
            ToolCall(name="t", arguments="z" * 11)])]},
        {"messages": [ChatMessage(role="tool", content="", tool_call_id=CTRL)]},
        {"retrieved_context": [RetrievedDocument(id=LONG_ID)]},
        {"retrieved_context": [RetrievedDocument(id=CTRL)]},
        {"retrieved_context": [RetrievedDocument(id="d", content=LONG_TEXT)]},
        {"retrieved_context": [RetrievedDocument(id="d")] * 3},
        {"template_variables": {"v": LONG_TEXT}},
        {"template_variables": {str(i): "" for i in range(4)}},
    ],
    "response": [
        {"text": None}, {"text": LONG_TEXT}, {"response_id": LONG_ID},
        {"finish_reason": CTRL}, {"error": ErrorInfo(type=CTRL)},
        {"error": ErrorInfo(type="e", message=LONG_TEXT)},
        {"tool_calls": [ToolCall(name="t")] * 3}, {"tool_calls": [ToolCall(name=CTRL)]},
    ],
    "span": [
        {"call_id": "other"}, {"started_at": NOW}, {"started_at": datetime(1800, 1, 1, tzinfo=UTC)},
        {"name": CTRL}, {"operation": "Tool"}, {"result_preview": "r" * 11},
        {"tool": ToolCall(name="t", arguments="z" * 11)}, {"tool": ToolCall(id=CTRL, name="t")},
        {"error": ErrorInfo(type="e", message=LONG_TEXT)}, {"error": ErrorInfo(type=LONG_ID)},
    ],
    "enriched": [
        {"prompt": None, "response": None}, {"processed_at": NOW + timedelta(days=1)},
        {"incomplete_reason": CTRL}, {"policy_version": LONG_ID},
        {"prompt": replace(PROMPT, operation="Chat!")}, {"response": replace(RESPONSE, text=None)},
        {"prompt": replace(PROMPT, occurred_at=NOW - timedelta(days=400))},
        {"response": replace(RESPONSE, attributes={CTRL: 1})},
        {"scores": [ScoreResult(name=CTRL, scorer_version="1", backend="x")]},
        {"verdicts": [GuardrailVerdict(**IDS, rule_id="r", rule_kind="pii", applies_to="prompt",
                                       severity="high", action="flag", policy_version=LONG_ID)]},
    ],
}
BASES = {"prompt": PROMPT, "response": RESPONSE, "span": SPAN, "enriched": ENRICHED}
CASES = [(kind, change) for kind, changes in MUTATIONS.items()
         for change in COMMON + changes]


def _full(event: object) -> SchemaError | None:
    """What the full checks alone say."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_limits, "passes", lambda *_: False)
        try:
            validate_event(event, LIMITS, now=NOW)
        except SchemaError as err:
            return err
    return None


def _window() -> Any:
    return _limits._Window(LIMITS, NOW)


@pytest.mark.parametrize("event", VALID, ids=lambda e: type(e).__name__)
def test_common_events_take_the_fast_path(event: object) -> None:
    assert _full(event) is None
    assert passes(event, LIMITS, _window())
    validate_event(event, LIMITS, now=NOW)


def _case_id(value: object) -> str:
    """The start of the case's repr, its random event ids masked (every pytest-xdist worker
    must collect the same ids)."""
    return re.sub(r"UUID\('[0-9a-f-]+'\)", "UUID(...)", repr(value))[:60]


@pytest.mark.parametrize(("kind", "change"), CASES, ids=_case_id)
def test_the_fast_path_never_accepts_what_the_full_checks_reject(
        kind: str, change: dict[str, Any]) -> None:
    event = replace(BASES[kind], **change)
    expected = _full(event)
    assert expected is not None, "every change here breaks a rule"
    assert not passes(event, LIMITS, _window())
    with pytest.raises(SchemaError) as raised:
        validate_event(event, LIMITS, now=NOW)
    assert (raised.value.reason, raised.value.field) == (expected.reason, expected.field)


SPAN_PROMPT = replace(PROMPT, retrieved_context=[], trace_id="0af765", span_id="b7ad6b",
                      parent_span_id="00f067", call_id="otel-0af765-b7ad6b")
"""A prompt as the OTLP mapper makes one: no documents, the span's ids in hex (short, for
the small id cap here), the call id built from them (``prompt_of_a_span`` checks that
shape, not their characters)."""


def test_a_span_prompt_takes_its_shortcut_and_remembers_what_it_found_clean() -> None:
    clean: set[str] = set()
    assert passes(SPAN_PROMPT, LIMITS, _window())
    assert prompt_of_a_span(SPAN_PROMPT, LIMITS, _window(), clean)
    assert clean >= {"shop", "gpt-4o-mini", "openai", "chat", "k", "n"}
    assert not clean & {SPAN_PROMPT.call_id, SPAN_PROMPT.trace_id, SPAN_PROMPT.span_id}
    assert prompt_of_a_span(SPAN_PROMPT, LIMITS, _window(), clean)  # (from what it kept)


@pytest.mark.parametrize("change", COMMON + MUTATIONS["prompt"], ids=_case_id)
def test_the_span_prompts_shortcut_never_accepts_what_the_fast_path_refuses(
        change: dict[str, Any]) -> None:
    """Every rule ``passes`` holds a prompt to holds in ``prompt_of_a_span`` too, also after
    a clean prompt filled its memo (a changed hex id no longer has the mapper's shape)."""
    event = replace(SPAN_PROMPT, **change)
    assert not passes(event, LIMITS, _window())
    clean: set[str] = set()
    assert not prompt_of_a_span(event, LIMITS, _window(), clean)
    assert prompt_of_a_span(SPAN_PROMPT, LIMITS, _window(), clean)
    assert not prompt_of_a_span(event, LIMITS, _window(), clean)


def test_the_span_prompts_shortcut_holds_the_longest_hex_id_to_the_id_cap() -> None:
    """``otel-<32 hex>-<16 hex>`` is 54 characters: refused under a cap below that."""
    hex_ids = {"call_id": f"otel-{'a' * 32}-{'b' * 16}", "trace_id": "a" * 32, "span_id": "b" * 16}
    event = replace(SPAN_PROMPT, **hex_ids)
    window = _limits._Window(Limits(max_id_chars=54), NOW)
    assert passes(event, Limits(max_id_chars=54), window)
    assert prompt_of_a_span(event, Limits(max_id_chars=54), window, set())
    window = _limits._Window(Limits(max_id_chars=53), NOW)
    assert not passes(event, Limits(max_id_chars=53), window)
    assert not prompt_of_a_span(event, Limits(max_id_chars=53), window, set())


def test_the_span_prompts_shortcut_reads_every_identifier_but_the_hex_ids() -> None:
    """An identifier added to the prompt's is checked by the shortcut too."""
    read = set(_fast_checks._SPAN_PROMPT_IDS.__reduce__()[1])
    assert read | set(_fast_checks._SPAN_HEX_IDS) == set(_fast_checks._PROMPT_IDS.__reduce__()[1])
    assert not read & set(_fast_checks._SPAN_HEX_IDS)


@pytest.mark.parametrize("hex_ids", [
    {"trace_id": "t\x00"}, {"span_id": "s\x07", "call_id": "otel-0af765-s\x07"},
    {"trace_id": "t\x00", "call_id": "otel-t\x00-b7ad6b"}, {"parent_span_id": "p\x1b"},
    {"parent_span_id": "p" * 300}, {"call_id": "c1"}], ids=repr)
def test_the_span_prompts_shortcut_refuses_ids_not_in_the_mappers_shape(
        hex_ids: dict[str, str]) -> None:
    event = replace(SPAN_PROMPT, **hex_ids)
    assert not prompt_of_a_span(event, LIMITS, _window(), set())


def test_a_long_clean_attribute_key_does_not_vouch_for_an_identifier() -> None:
    """Keys have no length cap, identifiers do: a key kept as clean must not let an
    identifier of the same text skip the cap."""
    limits = replace(LIMITS, max_attribute_chars=LIMITS.max_id_chars * 2)
    long = "m" * (LIMITS.max_id_chars + 1)
    clean: set[str] = set()
    assert prompt_of_a_span(replace(SPAN_PROMPT, attributes={long: "v"}), limits, _window(), clean)
    event = replace(SPAN_PROMPT, request_model=long)
    assert not passes(event, limits, _window())
    assert not prompt_of_a_span(event, limits, _window(), clean)
