"""One trace as a tree with timings (a waterfall): the report's trace view.

A trace is the LLM calls (``calls``) and the other steps (``spans``: tool executions,
agent steps, retrievals) that share a ``trace_id``. ``load_trace`` reads them with
server-side parameters (the trace id comes from the user), ``Trace.rows`` orders them as a
tree (children under their parent, by start time), and ``trace_html`` draws the waterfall
as an inline SVG (one bar per step, placed at its start and as long as it took) above a
table of each step's details. Every piece of text is escaped.

What cannot form a tree is still shown, and said: a step whose parent is not in the
store is drawn at the top level ("parent not stored"), steps whose parents form a cycle
are cut at the earliest of them ("parent cycle"), and a trace of more than ``max_rows``
steps draws the first ``max_rows`` and counts the rest.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from llmpulse.dashboards.trace_view import Trace, TraceStep, trace_html
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> trace = Trace("t1", [
    ...     TraceStep("a", None, "agent", "support-agent", t0, 900.0),
    ...     TraceStep("b", "a", "tool", "lookup_order", t0 + timedelta(milliseconds=100), 40.0)])
    >>> [(s.name, depth) for s, depth, _ in trace.rows()]
    [('support-agent', 0), ('lookup_order', 1)]
    >>> 'class="chart waterfall"' in trace_html(trace)
    True
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmpulse.dashboards.charts import PALETTE, format_value, version_label

__all__ = ["Trace", "TraceStep", "load_trace", "trace_html"]

_KIND_COLOUR = {"llm": PALETTE[0], "tool": PALETTE[2], "agent": PALETTE[7], "error": PALETTE[3]}
_TEXT_CHARS = 400
"""Text of a step shown in the details table (arguments, result, answer), at most."""


@dataclass
class TraceStep:
    """One step of a trace: an LLM call or a span.

    Attributes:
        id: the span id (a call without one: its call id).
        parent_id: the parent span id, if any.
        kind: ``llm``, ``tool``, ``agent`` or the span's operation.
        name: the model (LLM calls), the tool, the agent or the step's name.
        started: when it started.
        latency_ms: how long it took.
        status: ``ok`` or ``error``.
        details: ``(label, text)`` pairs shown in the table (arguments, result, error...).
        flags: guardrail and agent verdicts on this step (rule ids).
    """

    id: str
    parent_id: str | None
    kind: str
    name: str
    started: datetime
    latency_ms: float
    status: str = "ok"
    details: list[tuple[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class Trace:
    """The steps of one trace."""

    trace_id: str
    steps: list[TraceStep]

    @property
    def start(self) -> datetime | None:
        return min((s.started for s in self.steps), default=None)

    @property
    def duration_ms(self) -> float:
        start = self.start
        if start is None:
            return 0.0
        return max((s.started - start).total_seconds() * 1000 + s.latency_ms for s in self.steps)

    def rows(self) -> list[tuple[TraceStep, int, str]]:
        """``(step, depth, note)`` in tree order: each step under its parent, siblings by
        start time; roots are steps without a parent, with a parent not stored, or cut from
        a parent cycle (the note says which)."""
        ids = {s.id for s in self.steps}
        children: dict[str | None, list[TraceStep]] = {}
        for step in self.steps:
            parent = step.parent_id if step.parent_id in ids and step.parent_id != step.id else None
            children.setdefault(parent, []).append(step)
        for group in children.values():
            group.sort(key=lambda s: (s.started, s.id))
        out: list[tuple[TraceStep, int, str]] = []
        seen: set[str] = set()

        def visit(root: TraceStep, note: str) -> None:
            stack = [(root, 0, note)]
            while stack:
                step, depth, why = stack.pop()
                if step.id in seen:
                    continue
                seen.add(step.id)
                out.append((step, depth, why))
                stack.extend((c, depth + 1, "") for c in reversed(children.get(step.id, [])))

        for root in children.get(None, []):
            missing = root.parent_id is not None and root.parent_id not in ids
            visit(root, "parent not stored" if missing else "")
        for step in sorted(self.steps, key=lambda s: (s.started, s.id)):
            if step.id not in seen:  # only reachable through a cycle of parents
                visit(step, "parent cycle")
        return out


def _text(value: Any, limit: int = _TEXT_CHARS) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def load_trace(store: Any, trace_id: str, *, limit: int = 10_000) -> Trace:
    """The calls, spans and verdicts of one trace, read with server-side parameters.

    Args:
        store: an open ``llmpulse.sinks.Store``.
        trace_id: the trace (from the user: never formatted into the SQL).
        limit: at most this many calls and this many spans.
    """
    params = {"trace": trace_id, "limit": limit}
    steps: list[TraceStep] = []
    calls = store.query(
        "SELECT call_id, span_id, parent_span_id, occurred_at, ifNull(latency_ms, 0) AS latency_ms, model, "
        "prompt_id, prompt_version, error_type, error_message, input_tokens, output_tokens, cost_usd, "
        "response_text, tool_call_names FROM calls WHERE trace_id = {trace:String} "
        "ORDER BY occurred_at LIMIT {limit:UInt32}",
        params,
    ).dicts()
    for c in calls:
        details = [
            ("prompt", f"{c['prompt_id']} {version_label(c['prompt_version'])}" if c["prompt_id"] else ""),
            ("tokens", f"{c['input_tokens']} in, {c['output_tokens']} out"),
            ("cost", format_value(c["cost_usd"], "currencyUSD")),
            ("tool calls", ", ".join(c["tool_call_names"])),
            ("answer", _text(c["response_text"])),
            ("error", _text(f"{c['error_type']}: {c['error_message']}" if c["error_type"] else "")),
        ]
        steps.append(
            TraceStep(
                c["span_id"] or c["call_id"],
                c["parent_span_id"] or None,
                "llm",
                c["model"] or "LLM call",
                c["occurred_at"],
                float(c["latency_ms"]),
                "error" if c["error_type"] else "ok",
                [d for d in details if d[1]],
            )
        )
    spans = store.query(
        "SELECT span_id, parent_span_id, name, operation, tool_name, tool_arguments, status, error_type, "
        "error_message, result_preview, started_at, latency_ms, cost_usd FROM spans "
        "WHERE trace_id = {trace:String} ORDER BY started_at LIMIT {limit:UInt32}",
        params,
    ).dicts()
    for s in spans:
        kind = {"execute_tool": "tool", "invoke_agent": "agent"}.get(s["operation"], s["operation"])
        details = [
            ("arguments", _text(s["tool_arguments"])),
            ("result", _text(s["result_preview"])),
            ("cost", format_value(s["cost_usd"], "currencyUSD") if s["cost_usd"] else ""),
            ("error", _text(f"{s['error_type']}: {s['error_message']}" if s["error_type"] else "")),
        ]
        steps.append(
            TraceStep(
                s["span_id"],
                s["parent_span_id"] or None,
                kind or "step",
                s["tool_name"] or s["name"],
                s["started_at"],
                float(s["latency_ms"] or 0),
                str(s["status"]),
                [d for d in details if d[1]],
            )
        )
    ids = sorted({s.id for s in steps} | {c["call_id"] for c in calls})
    if ids:
        verdicts = store.query(
            "SELECT call_id, rule_id FROM guardrail_verdicts WHERE call_id IN {ids:Array(String)} "
            "ORDER BY occurred_at",
            {"ids": ids},
        ).rows
        by_call = {c["call_id"]: c["span_id"] or c["call_id"] for c in calls}
        by_id = {s.id: s for s in steps}
        for call_id, rule_id in verdicts:
            step = by_id.get(by_call.get(call_id, call_id))
            if step is not None and rule_id not in step.flags:
                step.flags.append(rule_id)
    return Trace(trace_id, steps)


def trace_html(trace: Trace, *, max_rows: int = 300) -> str:
    """The waterfall (an inline SVG) and the details table of one trace."""
    rows = trace.rows()
    if not rows:
        return f'<p class="note">No call or span of trace {html.escape(trace.trace_id)} is stored.</p>'
    start, total = trace.start, max(trace.duration_ms, 1e-3)
    assert start is not None
    shown, hidden = rows[:max_rows], len(rows) - max_rows
    width, label_w, row_h, right = 1000, 330, 22, 70
    bar_w = width - label_w - right
    height = row_h * len(shown) + 26
    parts = []
    for tick in range(5):
        x = label_w + bar_w * tick / 4
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 20}" class="grid"/>'
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="axis">'
            f"{html.escape(format_value(total * tick / 4, 'ms'))}</text>"
        )
    table = []
    for i, (step, depth, note) in enumerate(shown):
        offset = (step.started - start).total_seconds() * 1000
        y = i * row_h
        x = label_w + bar_w * offset / total
        w = max(2.0, bar_w * step.latency_ms / total)
        colour = _KIND_COLOUR["error"] if step.status == "error" else _KIND_COLOUR.get(step.kind, PALETTE[4])
        label = f"{step.kind} · {step.name}"
        short = label if len(label) <= 38 - depth else f"{label[: 37 - depth]}…"
        tip = f"{label} ({step.status}): +{offset:,.0f} ms, {step.latency_ms:,.1f} ms"
        flag = " ⚑" if step.flags else ""
        parts.append(
            f'<g class="step" data-kind="{html.escape(step.kind)}" data-status="{html.escape(step.status)}">'
            f"<title>{html.escape(tip)}</title>"
            f'<text x="{4 + depth * 12}" y="{y + 15}" class="axis">{html.escape(short)}{flag}</text>'
            f'<rect class="mark" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{colour}"/>'
            f'<text x="{width - 4}" y="{y + 15}" text-anchor="end" class="axis">'
            f"{html.escape(format_value(step.latency_ms, 'ms'))}</text></g>"
        )
        details = "; ".join(f"{k}: {v}" for k, v in step.details)
        table.append(
            f'<tr class="{"firing" if step.status == "error" else ""}"><td>{offset:,.0f}</td>'
            f"<td>{step.latency_ms:,.1f}</td><td>{'&nbsp;' * 3 * depth}{html.escape(step.kind)}</td>"
            f"<td>{html.escape(step.name)}</td><td>{html.escape(step.status)}</td>"
            f"<td>{html.escape(', '.join(step.flags))}</td><td>{html.escape(note)}</td>"
            f'<td class="text">{html.escape(details)}</td></tr>'
        )
    svg = (
        f'<svg class="chart waterfall" data-points="{len(shown)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'
    )
    more = f'<p class="note">{hidden:,} more steps not drawn.</p>' if hidden > 0 else ""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("start ms", "duration ms", "kind", "name", "status", "verdicts", "note", "details")
    )
    return (
        f'<p class="note">Trace {html.escape(trace.trace_id)}: {len(rows):,} steps in '
        f"{html.escape(format_value(trace.duration_ms, 'ms'))}, from "
        f"{start:%Y-%m-%d %H:%M:%S} UTC.</p>{svg}{more}"
        f'<table class="trace" data-points="{len(shown)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(table)}</tbody></table>"
    )
