"""The ``spans`` columns: the attributes are one ``Map(String, String)`` column for the
batch (no dict per span), with the values ``attributes_map`` gives one span, and
``span_row`` reads the columns as Python values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from llmpulse.schemas import SpanEvent, ToolCall
from llmpulse.sinks.columns import attributes_map
from llmpulse.sinks.rows import SPAN_COLUMNS, span_columns, span_row

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _span(n: int, attributes: dict[str, object]) -> SpanEvent:
    span_id = f"{n:016x}"
    return SpanEvent(call_id=span_id, span_id=span_id, trace_id="ab" * 16, app="shop",
                     name="lookup", operation="execute_tool", started_at=END - timedelta(seconds=1),
                     occurred_at=END, latency_ms=1000.0, attributes=attributes,  # type: ignore[arg-type]
                     tool=ToolCall(id=None, name="lookup", arguments="{}") if n % 2 else None)


ATTRIBUTES: list[dict[str, object]] = [
    {}, {"llmpulse.source": "otlp", "otel.span_name": "lookup"},
    {"a": 1, "b": 2.5, "c": True, "d": False, "e": None, "f": "ü"},
    {"big": 2**62, "neg": -3, "nan": float("nan"), "inf": float("-inf"), "list": [1, "x"]},
    {"only": None}, {"s": ""},
]


def test_the_attributes_column_is_one_map_array_with_attributes_map_values() -> None:
    spans = [_span(n, attrs) for n, attrs in enumerate(ATTRIBUTES)]
    columns = span_columns(spans)
    column = columns[SPAN_COLUMNS.index("attributes")]
    assert isinstance(column, pa.MapArray) and len(column) == len(spans)
    assert [dict(pairs) for pairs in column.to_pylist()] == [attributes_map(a) for a in ATTRIBUTES]
    assert [list(dict(pairs)) for pairs in column.to_pylist()] == [list(a) for a in ATTRIBUTES]


def test_span_row_is_the_columns_of_one_span_as_python_values() -> None:
    for n, attrs in enumerate(ATTRIBUTES):
        span = _span(n, attrs)
        row = dict(zip(SPAN_COLUMNS, span_row(span), strict=True))
        assert row["attributes"] == attributes_map(attrs)
        assert (row["span_id"], row["tool_name"], row["latency_ms"]) == (span.span_id, "lookup", 1000.0)
        others = [column[0] for column in span_columns([span])[:-1]]
        assert list(row.values())[:-1] == others
