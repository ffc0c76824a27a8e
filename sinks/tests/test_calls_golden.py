"""The rows the writer stores for a fixed, varied batch of calls never change unnoticed.

``sinks/tests/data/calls_golden.json`` holds, for ``varied_calls()`` (sample calls with the
edge cases: v1 and v1.1 calls, duplicate scorers, provenance, tool calls, unicode, NUL
bytes, 1 MB texts, each half of a call missing), the ``calls`` columns as Python values
and the rows of ``calls`` and ``guardrail_verdicts`` as chDB stores them, written by the
writer of 2026-12-02 (c3d86bd); a change to the mapping or the writer must give the same
values, or regenerate the file on purpose:

    uv run python sinks/tests/test_calls_golden.py    # rewrites the golden file

Texts over 200 characters are kept as their length and SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from llmpulse.schemas import EnrichedCall, GuardrailVerdict
from llmpulse.sinks.rows import CALL_COLUMNS, VERDICT_COLUMNS, call_values
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import varied_calls
from llmpulse.sinks.writer import Sourced, Writer

GOLDEN = Path(__file__).parent / "data" / "calls_golden.json"


def _plain(value: Any) -> Any:
    """A value as JSON that tells every difference apart (type included)."""
    if isinstance(value, str | bytes):
        kind = "s" if isinstance(value, str) else "b"
        if len(value) > 200:
            data = value.encode() if isinstance(value, str) else value
            return f"{kind}{len(value)}:sha256:{hashlib.sha256(data).hexdigest()}"
        return f"{kind}:{value if isinstance(value, str) else value.hex()}"
    if isinstance(value, float):
        return f"f:{value!r}"
    if isinstance(value, uuid.UUID):
        return f"uuid:{value}"
    if isinstance(value, datetime):
        return f"t:{value.isoformat()}"
    if isinstance(value, dict):
        return {"map": [[_plain(k), _plain(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value  # None, bool, int


def _bad_call() -> EnrichedCall:
    """A call the store refuses (5 billion tokens in a ``UInt32``): the dead-letter path."""
    call = varied_calls()[0]
    assert call.response is not None and call.response.usage is not None
    usage = msgspec.structs.replace(call.response.usage, input_tokens=5_000_000_000)
    return msgspec.structs.replace(call, call_id="c-refused", event_id=uuid.UUID(int=10_000), verdicts=[],
                                   response=msgspec.structs.replace(call.response, usage=usage))


def _bad_verdict() -> GuardrailVerdict:
    """A verdict Arrow takes and the engine refuses (not a value of the ``applies_to`` enum)."""
    verdict = next(v for c in varied_calls() for v in c.verdicts)
    return msgspec.structs.replace(verdict, call_id="c-refused-verdict", event_id=uuid.UUID(int=10_001),
                                   applies_to="nowhere")  # type: ignore[arg-type]


def _values() -> list[Any]:
    """``call_values`` of the varied batch, row by row."""
    return [_plain(list(row)) for row in zip(*call_values(varied_calls()), strict=True)]


def _stored(store: Store) -> dict[str, Any]:
    """The varied batch (and one refused call) written by the writer, then read back."""
    calls = varied_calls()
    batch = [*calls[:30], _bad_verdict(), *calls[30:], _bad_call()]
    writer = Writer(store)
    result = writer.write([Sourced(c, "llm.enriched", 0, i) for i, c in enumerate(batch)])
    assert sorted((r.item.event.call_id, r.table, r.reason) for r in result.rejected) == [
        ("c-refused", "calls", "rejected_by_store"),
        ("c-refused-verdict", "guardrail_verdicts", "rejected_by_store")]
    again = writer.write([Sourced(c) for c in calls])  # redelivered: nothing twice
    assert (again.total_written, again.duplicates) == (0, result.total_written)
    calls = store.query(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls ORDER BY call_id").rows
    verdicts = store.query(f"SELECT {', '.join(VERDICT_COLUMNS)} FROM guardrail_verdicts "
                           "ORDER BY event_id").rows
    return {"calls": [_plain(list(row)) for row in calls],
            "verdicts": [_plain(list(row)) for row in verdicts]}


@functools.cache
def _golden() -> dict[str, Any]:
    """The golden file, read once for the module's tests (they only read it)."""
    return json.loads(GOLDEN.read_text())  # type: ignore[no-any-return]


def test_the_calls_columns_are_the_golden_values() -> None:
    golden = _golden()["values"]
    values = _values()
    assert len(values) == len(golden) == len(varied_calls())
    for got, want in zip(values, golden, strict=True):
        assert dict(zip(CALL_COLUMNS, got, strict=True)) == dict(zip(CALL_COLUMNS, want, strict=True))


def test_the_stored_rows_are_the_golden_rows(store: Store) -> None:
    golden, stored = _golden(), _stored(store)
    assert len(stored["calls"]) == len(golden["calls"]) == len(varied_calls())
    for got, want in zip(stored["calls"], golden["calls"], strict=True):
        assert dict(zip(CALL_COLUMNS, got, strict=True)) == dict(zip(CALL_COLUMNS, want, strict=True))
    assert stored["verdicts"] == golden["verdicts"]
    assert len(stored["verdicts"]) == sum(len(c.verdicts) for c in varied_calls())


def test_a_huge_text_is_stored_whole() -> None:
    huge = next(c for c in varied_calls() if c.call_id == "c-huge")
    assert huge.response is not None and huge.response.text is not None
    # the row the store gave back (golden "calls"), not what the mapping handed it
    [row] = [row for row in (dict(zip(CALL_COLUMNS, values, strict=True)) for values in _golden()["calls"])
             if row["call_id"] == "s:c-huge"]  # plain-encoded: s: a string
    text = huge.response.text
    assert row["response_text"] == f"s{len(text)}:sha256:{hashlib.sha256(text.encode()).hexdigest()}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="llmpulse-golden-") as folder, \
            Store.open(f"chdb://{folder}?database=golden") as opened:
        opened.migrate()
        document = {"values": _values(), **_stored(opened)}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN} ({len(document['values'])} calls)", file=sys.stderr)
