"""Events, messages, tool calls and scores stay out of the cycle collector (``gc=False``):
a worker holds tens of thousands of them per micro-batch, and every tracked one is walked
by each collection. Decoding gives the same values as before."""

from __future__ import annotations

import gc

from llmpulse.schemas import (
    ChatMessage,
    EnrichedCall,
    PromptEvent,
    ResponseEvent,
    ScoreResult,
    ToolCall,
    decode_record,
    encode_batch,
    encode_event,
)


def _call() -> tuple[PromptEvent, ResponseEvent, EnrichedCall]:
    prompt = PromptEvent(call_id="c1", app="shop", span_id="a" * 16,
                         messages=[ChatMessage(role="user", content="Where is my parcel?"),
                                   ChatMessage(role="assistant", content="",
                                               tool_calls=[ToolCall(id="t1", name="lookup",
                                                                    arguments='{"id": 1}')])])
    response = ResponseEvent(call_id="c1", app="shop", text="Tomorrow.", latency_ms=12.0,
                             tool_calls=[ToolCall(name="lookup", arguments="{}")])
    call = EnrichedCall(call_id="c1", app="shop", prompt=prompt, response=response,
                        scores=[ScoreResult(name="cost_usd", scorer_version="1", backend="t",
                                            value=0.5, attributes={"price_source": "x"})])
    return prompt, response, call


def test_decoded_events_and_their_parts_are_not_tracked() -> None:
    prompt, response, call = _call()
    decoded = decode_record(encode_batch([encode_event(e) for e in (prompt, response, call)]))
    assert not decoded.failures
    assert decoded.events == [prompt, response, call]  # the same values as before
    back_call = decoded.events[2]
    assert isinstance(back_call, EnrichedCall) and back_call.prompt is not None
    parts = [*decoded.events, *back_call.scores, *back_call.prompt.messages,
             *back_call.prompt.messages[1].tool_calls]
    assert [type(p).__name__ for p in parts if gc.is_tracked(p)] == []


def test_structs_made_in_code_are_not_tracked_and_stay_mutable() -> None:
    prompt, response, call = _call()
    for struct in (prompt, response, call, *call.scores, *prompt.messages, *response.tool_calls):
        assert not gc.is_tracked(struct), type(struct).__name__
    call.verdicts = []  # the step still sets fields after scoring
    call.scores.append(ScoreResult(name="latency_ms", scorer_version="1", backend="r", value=1.0))
    assert [s.name for s in call.scores] == ["cost_usd", "latency_ms"]
