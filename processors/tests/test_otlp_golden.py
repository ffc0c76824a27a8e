"""The mapper's output on a checked-in corpus, held byte for byte to what it was recorded as.

``otlp_fixtures/golden_inputs.jsonl.gz`` holds OTLP records (the recorded fixtures, the
benchmark's chat spans, hand-made spans of every convention generation, OTLP/JSON, and
generated and mutated records of every attribute kind, bad ids, events and statuses);
``otlp_fixtures/golden_outcomes.json`` the digest of what one mapper made of each, in
order, under two sets of limits: every event's encoded bytes, every dead letter (reason,
detail, field, payload), the counts, and the stage's batch records (partition, key,
value). A speed-up of the mapper must leave every digest as it is; a change of behaviour
re-records them (``otlp_fixtures/record_golden.py``, run from the repository's root) and
says why in its commit.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from llmpulse.processors.otlp import OtlpMapper
from llmpulse.processors.otlp.stage import records_by_partition
from llmpulse.schemas import Limits, encode_event

FIXTURES = Path(__file__).resolve().parent / "otlp_fixtures"
INPUTS = FIXTURES / "golden_inputs.jsonl.gz"
OUTCOMES = FIXTURES / "golden_outcomes.json"
_PAST = 20 * 365 * 86_400  # the recorded spans age: accepted for twenty years
LIMITS = {"recorded": Limits(max_past_seconds=_PAST),
          "tight": Limits(max_past_seconds=_PAST, max_id_chars=60, max_text_chars=64,
                          max_attribute_chars=64, max_messages=3)}
"""The limits each input is mapped under (the tight ones make every size rule bite)."""
_CLOCK = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
"""The mapper's clock in a time window's detail (the only output that moves with time)."""


def golden_inputs() -> Iterator[tuple[str, bytes]]:
    """The corpus: (content type, record bytes), in order."""
    with gzip.open(INPUTS, "rt", encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            yield item["content_type"], base64.b64decode(item["data"])


def outcome(mapper: OtlpMapper, content_type: str, data: bytes) -> bytes:
    """What ``mapper`` makes of one record, as canonical bytes."""
    record = mapper.map_record(data, content_type=content_type, topic="llm.otlp.spans",
                               partition=1, offset=7)
    parts: list[object] = [record.spans, record.skipped]
    for events in (record.prompts, record.responses, record.span_events):
        parts.append([encode_event(e) for e in events])
        parts.append(list(records_by_partition(events, 6)))
    parts.append([(d.reason, _CLOCK.sub("<now>", d.detail), d.error_field, d.stage,
                   d.source_topic, d.source_partition, d.source_offset, d.payload,
                   d.payload_truncated) for d in record.dead_letters])
    return repr(parts).encode()


def digests() -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    """Per set of limits, the sha256 of each input's outcome, one mapper per set (its
    caches filled as the records go by, as in a running stage), and the mapper's counts."""
    inputs = list(golden_inputs())
    out, counts = {}, {}
    for name, limits in LIMITS.items():
        mapper = OtlpMapper(limits=limits)
        out[name] = [hashlib.sha256(outcome(mapper, kind, data)).hexdigest()
                     for kind, data in inputs]
        counts[name] = dict(sorted(mapper.counts.items()))
    return out, counts


def test_the_mapper_makes_what_it_was_recorded_making() -> None:
    recorded = json.loads(OUTCOMES.read_text())
    now, counts = digests()
    assert len(now["recorded"]) == len(recorded["digests"]["recorded"]) > 500
    for name in LIMITS:  # the corpus reaches calls, steps, skips and many kinds of dead letter
        assert min(counts[name]["calls"], counts[name]["steps"], counts[name]["skipped"]) > 50
        assert sum(key.startswith("dlq:") for key in counts[name]) >= 5
    assert counts == recorded["counts"]
    for name in LIMITS:
        changed = [n for n, (a, b) in enumerate(zip(now[name], recorded["digests"][name],
                                                    strict=True)) if a != b]
        assert not changed, f"limits {name}: inputs {changed[:20]} map differently"
