"""OTLP trace files: what ``llmpulse import --otlp FILE`` reads.

Three shapes are accepted: protobuf (``.binpb``/``.pb``/``.bin``: one ``TracesData`` or
``ExportTraceServiceRequest``), one OTLP/JSON document (``.json``), and OTLP/JSON lines
(``.jsonl``, or a ``.json`` file with one document per line, as the Collector's file
exporter writes). Each document goes through the same ``OtlpMapper`` as the stream.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty.json"
    >>> _ = path.write_text('{"resourceSpans": []}')
    >>> list(read_otlp_file(path, OtlpMapper()))
    []
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from llmpulse.processors.otlp.mapper import OtlpMapper
from llmpulse.schemas import DeadLetter, Event
from llmpulse.schemas.topics import DLQ, PROMPTS, RESPONSES, SPANS

__all__ = ["read_otlp_file"]


def _documents(path: Path) -> Iterator[tuple[bytes, str]]:
    data = path.read_bytes()
    if path.suffix not in {".json", ".jsonl"}:
        yield data, "protobuf"
        return
    if path.suffix == ".json":
        try:
            json.loads(data)
        except ValueError:
            pass  # JSON lines in a .json file
        else:
            yield data, "json"
            return
    for line in data.splitlines():
        if line.strip():
            yield line, "json"


def read_otlp_file(path: str | Path, mapper: OtlpMapper) -> Iterator[tuple[str, Event | DeadLetter]]:
    """(topic, event) pairs: each call span's prompt and response, each step's span event,
    and the dead letters."""
    path = Path(path)
    for number, (document, content_type) in enumerate(_documents(path)):
        record = mapper.map_record(document, content_type=content_type, topic=str(path),
                                   offset=number)
        for prompt, response in zip(record.prompts, record.responses, strict=True):
            yield PROMPTS, prompt
            yield RESPONSES, response
        for step in record.span_events:
            yield SPANS, step
        for letter in record.dead_letters:
            yield DLQ, letter
