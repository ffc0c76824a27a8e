"""Encode + decode cost of one event: llmpulse's msgspec contracts against pydantic v2.

Both sides model the same fields with the same constraints, encode to JSON bytes and
decode with validation, in the same process. Prints JSON.

    uv run python benchmarks/codec.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
import pydantic
from pydantic import BaseModel, Field

from llmpulse.schemas import (
    ChatMessage,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    TokenUsage,
    decode_event,
    decode_record,
    encode_batch,
    encode_event,
)


class PMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str
    name: str | None = None


class PDoc(BaseModel):
    id: Annotated[str, Field(min_length=1)]
    content: str = ""
    score: float | None = None
    source: str | None = None


class PBase(BaseModel):
    event_id: uuid.UUID
    schema_version: int = 1
    occurred_at: pydantic.AwareDatetime
    app: Annotated[str, Field(min_length=1)]
    environment: str = "production"
    attributes: dict[str, str | int | float | bool | None] = {}
    call_id: Annotated[str, Field(min_length=1)]
    trace_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    prompt_id: str | None = None
    prompt_version: str | None = None
    request_model: str | None = None
    provider: str | None = None


class PPrompt(PBase):
    type: Literal["prompt"] = "prompt"
    operation: str = "chat"
    messages: list[PMessage] = []
    template_variables: dict[str, str] = {}
    retrieved_context: list[PDoc] = []
    temperature: float | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    top_p: float | None = None
    expects_json: bool = False


class PUsage(BaseModel):
    input_tokens: Annotated[int, Field(ge=0)] = 0
    output_tokens: Annotated[int, Field(ge=0)] = 0
    cached_input_tokens: Annotated[int, Field(ge=0)] = 0


class PResponse(PBase):
    type: Literal["response"] = "response"
    text: str | None = None
    finish_reason: str | None = None
    response_model: str | None = None
    usage: PUsage | None = None
    latency_ms: Annotated[float, Field(ge=0)]
    time_to_first_token_ms: Annotated[float, Field(ge=0)] | None = None
    cost_usd: Annotated[float, Field(ge=0)] | None = None
    streamed: bool = False


PEvent = pydantic.TypeAdapter(Annotated[PPrompt | PResponse, Field(discriminator="type")])


def _events() -> tuple[PromptEvent, ResponseEvent]:
    common = dict(call_id=str(uuid.uuid4()), app="support-bot", prompt_id="answer",
                  prompt_version="7f3a9c", request_model="gpt-4o-mini", provider="openai",
                  session_id="s-42", user_id="u-9d8c", attributes={"tenant": "acme", "tier": 2})
    prompt = PromptEvent(
        **common,  # type: ignore[arg-type]
        messages=[ChatMessage(role="system", content="You are a helpful support agent. " * 4),
                  ChatMessage(role="user", content="My parcel has not arrived, order 1234. " * 3)],
        retrieved_context=[RetrievedDocument(id=f"kb-{i}", content="Parcels ship in two days. " * 6,
                                             score=0.8 - i / 10) for i in range(3)],
        template_variables={"customer": "Ada", "order": "1234"}, temperature=0.2, max_tokens=300)
    response = ResponseEvent(
        **common,  # type: ignore[arg-type]
        text="I am sorry about the delay. Your parcel left our warehouse yesterday. " * 3,
        finish_reason="stop", response_model="gpt-4o-mini-2024-07-18",
        usage=TokenUsage(input_tokens=412, output_tokens=61), latency_ms=812.5,
        time_to_first_token_ms=210.0, cost_usd=0.00021)
    return prompt, response


def _per_op_us(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(min(2000, n)):
        fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    prompt, response = _events()
    p_prompt = PPrompt.model_validate(msgspec.to_builtins(prompt))
    p_response = PResponse.model_validate(msgspec.to_builtins(response))
    results: dict[str, object] = {}
    for label, ours, theirs in (("prompt", prompt, p_prompt), ("response", response, p_response)):
        data = encode_event(ours)
        pdata = theirs.model_dump_json().encode()
        enc = _per_op_us(lambda o=ours: encode_event(o), n)
        dec = _per_op_us(lambda d=data: decode_event(d), n)
        penc = _per_op_us(lambda t=theirs: t.model_dump_json(), n)
        pdec = _per_op_us(lambda d=pdata: PEvent.validate_json(d), n)
        results[label] = {
            "bytes": len(data),
            "msgspec_encode_us": round(enc, 2), "msgspec_decode_validate_us": round(dec, 2),
            "pydantic_encode_us": round(penc, 2), "pydantic_decode_validate_us": round(pdec, 2),
            "roundtrip_speedup_vs_pydantic": round((penc + pdec) / (enc + dec), 2),
        }
    batch = encode_batch([encode_event(e) for e in (prompt, response) * 50])
    per_batch = _per_op_us(lambda: decode_record(batch), max(200, n // 100))
    results["batch_of_100_decode_us_per_event"] = round(per_batch / 100, 2)
    results["n"] = n
    results["python"] = platform.python_version()
    results["msgspec"] = msgspec.__version__
    results["pydantic"] = pydantic.VERSION
    results["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
