"""The ``calls`` columns built for a whole batch at once give each call its own row.

``call_columns`` builds the nested columns (scores, verdicts, maps, lists, the prompt's
JSON) from all the batch's values with offsets, so a mistake shows as one call's values
landing on another row. Each call's row in a varied batch must equal the row of the call
written alone, and the tricky values must be what the contract says.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from llmpulse.schemas import EnrichedCall
from llmpulse.sinks.arrow import _timestamp_micros, _uuid_bytes, to_arrow, uuid_array
from llmpulse.sinks.columns import as_python, attribute_maps, attributes_map, same_lineup
from llmpulse.sinks.rows import (
    CALL_COLUMNS,
    VERDICT_COLUMNS,
    call_columns,
    call_row,
    call_values,
    verdict_columns,
    verdict_row,
)
from llmpulse.sinks.testing import VARIED_AT, sample_calls, varied_calls

AT = VARIED_AT


def _batch() -> list[EnrichedCall]:
    return varied_calls()


def test_each_call_in_a_batch_gets_the_row_it_has_alone() -> None:
    batch = _batch()
    columns = call_values(batch)
    for i, call in enumerate(batch):
        assert tuple(column[i] for column in columns) == call_row(call), call.call_id


def test_a_batch_of_one_scorer_set_gets_the_rows_of_any_batch() -> None:
    """Calls that all carry the same scorers in the same order take the names, statuses
    and versions from the first call where every call agrees: their rows must be the rows
    the general path gives them (forced by one call of another lineup in the batch)."""
    calls = sample_calls(40, seed=3)
    toxicity = calls[5].scores[0]
    changed = [  # a status and a version that differ from the other calls' at their position
        msgspec.structs.replace(calls[5], scores=[msgspec.structs.replace(toxicity, status="error"),
                                                  *calls[5].scores[1:]]),
        msgspec.structs.replace(calls[9], scores=[msgspec.structs.replace(toxicity, scorer_version="9"),
                                                  *calls[9].scores[1:]])]
    other = msgspec.structs.replace(calls[0], scores=calls[0].scores[:1])
    for batch in (calls, [*calls[:5], changed[0], *calls[6:9], changed[1], *calls[10:]]):
        names = [s.name for c in batch for s in c.scores]
        assert same_lineup(names, np.array([len(c.scores) for c in batch])) is not None  # the fast path
        alone, mixed = call_columns(batch), call_columns([*batch, other])
        for name, one, general in zip(CALL_COLUMNS, alone, mixed, strict=True):
            if isinstance(one, pa.Array):  # Arrow's equality keeps a map's order and its types
                assert one.equals(general.slice(0, len(batch))), name
            else:
                assert one == general[:len(batch)], name
    assert call_values(changed)[CALL_COLUMNS.index("scores_unavailable")][0] == ["toxicity", "groundedness"]


def test_each_verdict_in_a_batch_gets_the_row_it_has_alone() -> None:
    """Verdicts nested in calls (the call fills what the verdict leaves out) and on their own."""
    batch = _batch()
    pairs = [(verdict, call) for call in batch for verdict in call.verdicts]
    agent_verdicts = [verdict for verdict, call in pairs if call is not None and call.call_id == "c-agent"]
    pairs += [(verdict, None) for verdict in (pairs[0][0], *agent_verdicts)]  # on their own (llm.alerts)
    columns = [as_python(column) for column in verdict_columns(pairs)]
    rows = [tuple(column[i] for column in columns) for i in range(len(pairs))]
    assert rows == [verdict_row(verdict, call) for verdict, call in pairs]
    agent = dict(zip(VERDICT_COLUMNS, rows[[v.call_id for v, _ in pairs].index("c-agent")], strict=True))
    assert (agent["prompt_id"], agent["model"], agent["trace_id"], agent["span_id"]) == (
        "plan", "o4-mini", "t-9", "s-2")  # from the call, which the verdict does not name
    alone = dict(zip(VERDICT_COLUMNS, rows[-1], strict=True))
    assert (alone["prompt_id"], alone["trace_id"], alone["attributes"]) == ("", "", {})


def test_attribute_maps_of_one_key_lineup_give_each_maps_text() -> None:
    """Maps with the same keys in the same order are converted key by key: each key's
    values of one type (str, int, bool, None) or of several must give ``attributes_map``'s
    text, as maps of other keys do."""
    lineup = [{"s": f"v{i}", "i": i * 7 - 3, "b": i % 2 == 0, "n": None, "f": i / 4, "mixed": [1, "x", True,
               None, 2.5, float("inf"), {"a": 1}][i % 7]} for i in range(30)]
    others = [*lineup, {"s": "alone"}]
    for maps in (lineup, others, [{} for _ in range(3)], [{"only": 1}]):
        column = attribute_maps(maps)
        assert [dict(pairs) for pairs in column.to_pylist()] == [attributes_map(m) for m in maps]


def test_nested_values_are_stored_as_the_contract_says() -> None:
    batch = _batch()
    columns = call_values(batch)
    rows = {row["call_id"]: row for row in (dict(zip(CALL_COLUMNS, values, strict=True))
                                            for values in zip(*columns, strict=True))}
    agent = rows["c-agent"]
    assert agent["occurred_at"] == AT
    assert json.loads(agent["prompt_messages"]) == [
        {"role": "user", "content": "Zoë: \"météo\"\nà Paris ? 🌧"}]
    assert agent["template_variables"] == {"ville": "Paris", "clé": "ü"}
    assert agent["toxicity"] == 0.25  # the later error does not erase the value
    assert agent["custom_scores"] == {"brand": 3.0, "cost_usd": 0.002}  # a name given twice: the last
    assert agent["scores_unavailable"] == ["toxicity", "judge"]  # not_applicable is not missing
    assert agent["scorer_versions"] == {
        "toxicity": "2", "brand": "4", "pii": "1", "judge": "1", "cost_usd": "1"}
    assert agent["attributes"] == {
        "region": "eu", "tier": "2", "ratio": "0.5", "beta": "true", "none": "null",
        "cost_usd.price_source": "genai-prices", "cost_usd.price_date": "2026-12-01"}
    assert (agent["guardrail_rules"], agent["guardrail_severity"]) == (["pii.email", "secret"], "critical")
    assert (agent["guardrail_flagged"], agent["guardrail_blocked"], agent["guardrail_redacted"]) == (
        True, False, True)
    assert (agent["tool_call_count"], agent["tool_call_names"]) == (2, ["weather", "calendar"])
    assert (agent["span_id"], agent["parent_span_id"], agent["trace_id"]) == ("s-2", "s-1", "t-9")
    assert (agent["reasoning_tokens"], agent["cache_creation_input_tokens"]) == (40, 7)
    assert agent["model"] == "o4-mini"

    failed, v1, bare = rows["c-failed"], rows["c-v1"], rows["c-bare"]
    assert (failed["prompt_messages"], failed["template_variables"], failed["error_type"]) == (
        "", {}, "RateLimitError")
    assert (failed["guardrail_severity"], failed["guardrail_blocked"], failed["scores_unavailable"]) == (
        "high", True, [])
    assert (v1["retrieved_context_ids"], v1["relevance"], v1["tool_call_names"], v1["span_id"]) == (
        ["d-1", "d-2"], 0.5, [], "")
    assert (v1["custom_scores"], v1["scorer_versions"], v1["attributes"]) == ({}, {"relevance": "1"}, {})
    assert (bare["prompt_messages"], bare["latency_ms"], bare["guardrail_rules"]) == ("", None, [])
    assert bare["guardrail_severity"] == "none"
    assert (bare["complete"], bare["incomplete_reason"], bare["tool_call_count"]) == (
        False, "response_timeout", 0)


@pytest.mark.parametrize("python_table", [True, False])
def test_the_batch_columns_take_their_clickhouse_types(python_table: bool) -> None:
    types = {"prompt_messages": "String", "custom_scores": "Map(LowCardinality(String), Float64)",
             "toxicity": "Nullable(Float32)",
             "guardrail_severity": "Enum8('none' = 0, 'high' = 4, 'critical' = 5)",
             "tool_call_names": "Array(LowCardinality(String))", "attributes": "Map(String, String)"}
    names = list(types)
    batch = _batch()
    columns = dict(zip(CALL_COLUMNS, call_columns(batch), strict=True))
    table = to_arrow(types, names, [columns[name] for name in names], python_table=python_table)
    text = pa.string() if python_table else pa.binary()
    assert table.schema.field("prompt_messages").type == text
    assert table.schema.field("custom_scores").type == pa.map_(text, pa.float64())
    assert table.schema.field("toxicity").type == pa.float32()
    assert table.column("toxicity").to_pylist()[20] == 0.25
    assert table.column("guardrail_severity").to_pylist()[20:22] == ["critical", "none"]
    key = str if python_table else str.encode
    assert table.column("custom_scores").to_pylist()[20] == [(key("brand"), 3.0), (key("cost_usd"), 0.002)]


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65_535, 65_536])
@pytest.mark.parametrize("python_table", [False, True])
def test_uuid_columns_hold_each_ids_bytes_whatever_the_batch_size(count: int, python_table: bool) -> None:
    # MessagePack's array header is 1, 3 or 5 bytes by length; every size gives the ids' bytes.
    ids = [uuid.uuid4() for _ in range(count)]
    column = uuid_array(ids, python_table=python_table).to_pylist()
    expected = [u.bytes[7::-1] + u.bytes[:7:-1] if python_table else u.bytes for u in ids]
    assert column == expected
    assert count == 0 or _uuid_bytes(ids) is not None  # cut out of msgspec's encoding, not id by id


def test_uuid_columns_take_text_among_the_ids() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert uuid_array([first, str(second)]).to_pylist() == [first.bytes, second.bytes]
    assert uuid_array([str(first), second]).to_pylist() == [first.bytes, second.bytes]
    with pytest.raises(ValueError):
        uuid_array([first, "not an id"])


@pytest.mark.parametrize("count", [1, 15, 16, 65_536])
def test_timestamps_are_each_instants_microseconds_whatever_the_batch_size(count: int) -> None:
    # MessagePack's timestamp 64 cut out of msgspec's encoding (1, 3 or 5 byte header), and
    # every other form (a whole second, before 1970, naive, None) through Arrow's own reading.
    india = timezone(timedelta(hours=5, minutes=30))
    instants = [AT + timedelta(microseconds=7 * i + 1) for i in range(count)]
    instants[0] = instants[0].astimezone(india)
    assert _timestamp_micros(instants) is not None
    kind = {"at": "DateTime64(6, 'UTC')"}
    odd = [[*instants, AT.replace(microsecond=0)], [*instants, datetime(1969, 7, 20, 20, 17, 40, 5, UTC)],
           [*instants, datetime(2026, 1, 1, 0, 0, 0, 1)], [*instants, None]]
    for values in [instants, *odd]:
        column = to_arrow(kind, ["at"], [values], python_table=True).column("at")
        assert column.equals(pa.chunked_array([pa.array(values, pa.timestamp("us", tz="UTC"))]))
    assert all(_timestamp_micros(values) is None for values in odd)


@pytest.mark.parametrize("python_table", [True, False])
def test_a_string_column_of_one_value_is_that_value_in_every_row(python_table: bool) -> None:
    kind = {"app": "LowCardinality(String)"}
    for values in (["bot"] * 5, ["bot", "other", "bot", "bot", "bot"], ["é"] * 3, ["bot", None, "bot"]):
        column = to_arrow(kind, ["app"], [values], python_table=python_table).column("app")
        expected = pa.array(values, pa.string() if python_table else pa.binary())
        assert column.equals(pa.chunked_array([expected])), values
    with pytest.raises(TypeError):
        to_arrow(kind, ["app"], [["bot", b"bot", 3, "bot"]])  # not repeated: Arrow refuses as before


def test_last_per_key_keeps_each_keys_last_position_whatever_the_keys_range() -> None:
    """Sparse keys (a row times many score names) must not cost a count over their range."""
    import numpy as np

    from llmpulse.sinks.columns import last_per_key

    positions = np.arange(4)
    assert last_per_key(np.array([3, 1, 3, 2]), positions).tolist() == [1, 2, 3]
    assert last_per_key(np.array([0, 10**12, 7, 10**12 - 1]), positions).tolist() == [0, 1, 2, 3]
    assert last_per_key(np.array([10**12, 5, 10**12, 5]), positions).tolist() == [2, 3]
    assert last_per_key(np.array([4, 9]), np.array([], dtype=np.int64)).tolist() == []
