"""The OTLP mapper on a recording of OpenLIT 1.45's own instrumentation of the real openai
client (``otlp_fixtures/record_openlit.py``, run in ``.venv-openlit``): the current GenAI
attributes as OpenLIT writes them (``gen_ai.input.messages`` with the system message in
it, ``gen_ai.system_instructions``, array finish reasons, zero-valued cache counts), its
httpx child spans, and a failed call with its exception events."""

from __future__ import annotations

from pathlib import Path

from otlp_spans import RECORDED, recorded_calls

from llmpulse.processors.otlp import OtlpMapper

FIXTURE = Path(__file__).resolve().parent / "otlp_fixtures" / "openlit_chat.binpb"


def test_openlit_recording_maps_every_chat_span_and_skips_the_http_spans() -> None:
    record = OtlpMapper(limits=RECORDED).map_record(FIXTURE.read_bytes())
    assert (record.spans, record.skipped, record.dead_letters) == (6, 3, [])
    _, streamed, failed = recorded_calls(record)
    assert [(m.role, m.content) for m in streamed[0].messages] == [("user", "Stream a greeting")]
    assert streamed[1].streamed and streamed[1].text == "Echo: Stream a greeting"
    assert (streamed[1].usage.input_tokens, streamed[1].usage.output_tokens) == (3, 4)
    # OpenLIT writes gen_ai.server.time_to_first_token, the model server's own metric in the
    # conventions, which the mapper does not take for the client's (schemas/OTEL_MAPPING.md).
    assert streamed[1].time_to_first_token_ms is None
    assert failed[1].text is None and failed[1].error is not None
    assert failed[1].error.type == "InternalServerError" and "model crashed" in failed[1].error.message


def test_the_system_message_openlit_writes_twice_is_stored_once() -> None:
    """OpenLIT puts the system message in gen_ai.input.messages and in
    gen_ai.system_instructions; the stored prompt has it once."""
    record = OtlpMapper(limits=RECORDED).map_record(FIXTURE.read_bytes())
    roles = [[m.role for m in p.messages] for p in record.prompts]
    assert sorted(roles) == [[], ["system", "user"], ["user"]]  # the failed call: no messages
