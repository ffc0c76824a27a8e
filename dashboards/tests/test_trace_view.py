"""The trace view: one trace's calls and spans as a tree with timings, read from the store,
drawn as a waterfall that lays out in headless Chromium with every piece of text escaped."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from llmpulse.dashboards.agents_board import AGENTS
from llmpulse.dashboards.cli import report as report_cli
from llmpulse.dashboards.report import build_report
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.dashboards.trace_view import Trace, TraceStep, load_trace, trace_html
from llmpulse.schemas import EnrichedCall, ErrorInfo, GuardrailVerdict, PromptEvent, ResponseEvent, SpanEvent
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)  # inside the raw TTL
HOSTILE = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"


def _step(step_id: str, parent: str | None, ms: float, latency: float = 10.0) -> TraceStep:
    return TraceStep(step_id, parent, "tool", step_id, T0 + timedelta(milliseconds=ms), latency)


def test_steps_nest_under_their_parents_in_start_order() -> None:
    trace = Trace(
        "t",
        [
            _step("late", "root", 50),
            _step("root", None, 0, 100),
            _step("early", "root", 10),
            _step("grandchild", "early", 12),
        ],
    )
    assert [(s.id, depth, note) for s, depth, note in trace.rows()] == [
        ("root", 0, ""),
        ("early", 1, ""),
        ("grandchild", 2, ""),
        ("late", 1, ""),
    ]
    assert trace.duration_ms == 100


def test_a_missing_parent_and_a_parent_cycle_are_drawn_and_said() -> None:
    trace = Trace(
        "t",
        [
            _step("orphan", "never-arrived", 5),
            _step("a", "b", 10),
            _step("b", "a", 20),
            _step("self", "self", 30),
        ],
    )
    rows = {s.id: (depth, note) for s, depth, note in trace.rows()}
    assert rows["orphan"] == (0, "parent not stored")
    assert rows["a"] == (0, "parent cycle") and rows["b"] == (1, "")  # cut at the earliest
    assert rows["self"] == (0, "")  # its own parent: a root
    assert len(trace.rows()) == 4


def test_a_huge_trace_draws_the_first_rows_and_counts_the_rest() -> None:
    trace = Trace("t", [_step("root", None, 0, 5000)] + [_step(f"s{i}", "root", i) for i in range(10_000)])
    page = trace_html(trace, max_rows=300)
    assert 'data-points="300"' in page and "9,701 more steps not drawn" in page


def test_the_sample_loop_trace_reads_back_as_its_events(traffic_store: Store, traffic: SampleTraffic) -> None:
    loop = next(e for e in traffic.events if isinstance(e, GuardrailVerdict) and e.rule_id == "agent_loop")
    mine = [
        e for e in traffic.events if isinstance(e, EnrichedCall | SpanEvent) and e.trace_id == loop.trace_id
    ]
    trace = load_trace(traffic_store, loop.trace_id or "")
    rows = trace.rows()
    assert len(rows) == len(mine)
    root, depth, _ = rows[0]
    assert (root.kind, root.name, depth) == ("agent", "order-agent", 0)
    assert all(d == 1 for _, d, _ in rows[1:])  # every call and tool ran inside the agent
    assert [s.name for s, _, _ in rows if s.kind == "tool"] == ["lookup_order"] + ["carrier_status"] * 4
    flagged = [s for s, _, _ in rows if "agent_loop" in s.flags]
    assert len(flagged) == 1 and flagged[0].status == "error"
    starts = [s.started for s, _, _ in rows[1:]]
    assert starts == sorted(starts)


def _hostile_trace(store: Store) -> tuple[str, int]:
    trace_id, agent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    common = {"app": "shop", "environment": "production", "trace_id": trace_id}
    call = {
        **common,
        "call_id": "c-hostile",
        "span_id": "a1a2a3a4a5a6a7a8",
        "parent_span_id": agent,
        "request_model": "gpt-4o-mini",
    }
    events = [
        EnrichedCall(
            occurred_at=T0,
            **call,
            prompt=PromptEvent(occurred_at=T0, **call, messages=[]),
            response=ResponseEvent(
                occurred_at=T0 + timedelta(milliseconds=400),
                **call,
                text=f"answer {HOSTILE}",
                latency_ms=400.0,
            ),
        ),
        SpanEvent(
            occurred_at=T0 + timedelta(milliseconds=700),
            **common,
            call_id="b1b2b3b4b5b6b7b8",
            span_id="b1b2b3b4b5b6b7b8",
            parent_span_id=agent,
            name="lookup</text><script>x</script>",
            operation="execute_tool",
            started_at=T0 + timedelta(milliseconds=410),
            latency_ms=290.0,
            status="error",
            error=ErrorInfo(type="ToolError", message=HOSTILE),
            result_preview=f"<b>{HOSTILE}</b>",
        ),
        SpanEvent(
            occurred_at=T0 + timedelta(milliseconds=800),
            **common,
            call_id=agent,
            span_id=agent,
            name="shop-agent",
            operation="invoke_agent",
            started_at=T0,
            latency_ms=800.0,
        ),
    ]
    result = Writer(store).write([Sourced(e) for e in events])
    assert not result.rejected, result.rejected
    return trace_id, len(events)


def test_the_trace_view_lays_out_in_chromium_with_its_text_escaped(
    fresh_store: Store, tmp_path: Path, dump_dom: Callable[[Path], str]
) -> None:
    trace_id, steps = _hostile_trace(fresh_store)
    result = build_report(
        fresh_store,
        since=T0 - timedelta(hours=1),
        until=T0 + timedelta(hours=1),
        out_path=tmp_path / "trace.html",
        dashboards=[AGENTS],
        compare=False,
        trace_id=trace_id,
    )
    text = result.path.read_text()
    assert 'id="trace"' in text and "<script>x</script>" not in text and HOSTILE not in text
    dom = dump_dom(result.path)
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attributes = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert "pwned" not in body.group(1)  # no markup from the data ran
    assert int(attributes["waterfall-bars"]) == steps, attributes  # every step laid out a bar
    assert "lookup&lt;/text&gt;&lt;script&gt;x&lt;/script&gt;" in dom  # shown as text
    assert dom.count('data-status="error"') == 1


def test_the_report_command_draws_the_trace_asked_for(fresh_store: Store, tmp_path: Path) -> None:
    trace_id, _ = _hostile_trace(fresh_store)
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(
        report_cli,
        [
            "--clickhouse",
            fresh_store.url,
            "--since",
            (T0 - timedelta(hours=1)).isoformat(),
            "--until",
            (T0 + timedelta(hours=1)).isoformat(),
            "--no-compare",
            "--trace-id",
            trace_id,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert f"<h2>Trace {trace_id}</h2>" in text and "the trace asked for" in text
    missing = CliRunner().invoke(
        report_cli,
        [
            "--clickhouse",
            fresh_store.url,
            "--since",
            "1h",
            "--no-compare",
            "--trace-id",
            "x' OR 1=1 --",
            "--out",
            str(out),
        ],
    )
    assert missing.exit_code == 0, missing.output
    assert "No call or span of trace x&#x27; OR 1=1 --" in out.read_text()
