"""The mapper's check of a prompt it built (``prompt_of_a_span``: its hex ids not searched,
what it found clean remembered) keeps and refuses what ``validate_event`` does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from otlp_spans import T0, shortcut_outcomes, traces

from llmpulse.schemas import Limits

CURRENT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
           "gen_ai.request.model": "gpt-4o",
           "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
               {"type": "text", "content": "hi"}]}]),
           "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
               {"type": "text", "content": "hello"}], "finish_reason": "stop"}])}


def test_the_prompts_shortcut_never_keeps_what_validation_would_refuse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Spans that stress a prompt's rules (identifiers, keys, texts, messages, attributes,
    times), each clean one first so that its values are remembered, map to the same events
    and dead letters (reasons, fields) as with every prompt validated in full."""
    limits = Limits(max_id_chars=60, max_text_chars=64, max_attribute_chars=64, max_messages=3,
                    max_attributes=4)  # (a call id: 54 characters)
    inputs = [{"role": "user", "parts": [{"type": "text", "content": "q"}]}]
    variants: list[dict[str, Any]] = [
        {}, {"gen_ai.conversation.id": "conv-1"}, {"user.id": "u1", "gen_ai.request.seed": 7},
        {"llmpulse.prompt.id": "p1", "gen_ai.prompt.version": "3"}, {"llmpulse.app": "app\x00"},
        {"llmpulse.app": "a" * 61}, {"llmpulse.app": "a" * 60},
        {"llmpulse.environment": "prod\n"}, {"gen_ai.request.model": "gpt\x85"},
        {"gen_ai.request.model": "m" * 61}, {"gen_ai.provider.name": "Open\x07AI"},
        {"gen_ai.conversation.id": "conv\x1b"}, {"gen_ai.conversation.id": "c" * 61},
        {"user.id": "u\x9f"}, {"llmpulse.prompt.id": "p\x01"}, {"gen_ai.prompt.version": "v" * 61},
        {"gen_ai.operation.name": "text_completion"}, {"gen_ai.operation.name": "generate_content"},
        {"gen_ai.request.seed": "s" * 65}, {"gen_ai.request.top_k": 5, "server.address": "h",
                                              "gen_ai.request.seed": 1},
        {"gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
            {"type": "text", "content": "q" * 65}]}])},
        {"gen_ai.input.messages": json.dumps(inputs * 4)},
        {"gen_ai.input.messages": json.dumps([{"role": "tool", "parts": [
            {"type": "tool_call_response", "id": "c\x02", "response": "ok"}]}])},
    ]
    spans = [{"attrs": {**CURRENT, **variant}, "start": start, "end": start + 10**9,
              "span_id": n.to_bytes(8, "big"), "name": "chat\x1b" if n % 5 == 0 else "chat m"}
             for n, (variant, start) in enumerate(
                 ((v, t) for v in variants for t in (T0, T0 - 40 * 86_400 * 10**9)), start=1)]
    data = traces(*spans).SerializeToString()
    checked, taken, unchecked = shortcut_outcomes(monkeypatch, data, limits, "prompt_of_a_span")
    assert sum(taken) >= 5 and not all(taken)  # the shortcut is taken, and declined
    assert checked == unchecked
    assert len(checked[0]) >= 10 and len(checked[1]) >= 20  # both outcomes are exercised
    assert {reason for reason, _ in checked[1]} >= {
        "control_character", "limit_exceeded", "timestamp_out_of_range"}
