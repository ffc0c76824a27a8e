"""The demo's scenario, shared by the embedded run and ``--kafka``: drive the instrumented
support bot (and, for one request in 40, its order agent: a trace of model calls and tool
spans), then summarise what the store holds (the version comparison and the report).

Example:
    >>> from llmpulse.cli.demo.scenario import simulate, summarise
    >>> # simulate(SupportBot(seed=42, total=3000), 3000, since, span); then
    >>> # summarise(store, out, since, until) -> Summary (both comparisons, their JSON, report)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

__all__ = ["AGENT_PROMPT", "Summary", "agent_line", "agent_summary", "run_agent", "simulate",
           "store_summary", "summarise", "worse_version"]

AGENT_PROMPT = "order-agent"
"""The agent's prompt id (its own drift key, apart from the support answers')."""


def simulate(bot: Any, total: int, since: datetime, span: timedelta,
             on_step: Any = None, agent: Any = None) -> datetime:
    """Drive the instrumented bot (and ``agent``, an ``OrderAgent``, on the requests it
    takes); returns the simulated time the drift started."""
    import llmpulse.producers as llmpulse
    from llmpulse.cli.demo.simulator import GOOD, SYSTEM

    step = span / total
    drift_start = since + step * bot.drift_index
    for i in range(total):
        turn = bot.turn(i)
        at = since + step * i
        context = [{"id": f"kb-{turn.topic}", "content": GOOD[turn.topic].format(order="<order>"),
                    "score": 0.82}]
        with llmpulse.call(prompt_id="support-answer", prompt_version=turn.version,
                           model="gpt-4o-mini", provider="openai", session_id=turn.session_id,
                           user_id=turn.user_id, occurred_at=at, context=context,
                           messages=[{"role": "system", "content": SYSTEM[turn.version]},
                                     {"role": "user", "content": turn.question}]) as call:
            call.record_response(turn.answer, input_tokens=turn.input_tokens,
                                 output_tokens=turn.output_tokens, finish_reason="stop",
                                 latency_ms=turn.latency_ms,
                                 cost_usd=(turn.input_tokens * 0.15 + turn.output_tokens * 0.6)
                                 / 1_000_000)
        said = bot.feedback(turn)
        if said is not None:
            llmpulse.feedback(call.call_id, occurred_at=at + timedelta(seconds=30),
                              prompt_id="support-answer", prompt_version=turn.version,
                              **said)  # type: ignore[arg-type]
        if agent is not None and agent.runs_at(i):
            run_agent(llmpulse, agent.run(), at + timedelta(seconds=1))
        if on_step is not None:
            on_step(i)
    _misconfigured_host(llmpulse)
    return drift_start


def run_agent(llmpulse: Any, run: Any, at: datetime) -> None:
    """One order-agent run through the SDK: a trace holding a model call before each tool
    step (its answer is the tool call), the tool spans, and the model call that answers;
    the times are the simulation's (``occurred_at``, ``record_latency``)."""
    from llmpulse.cli.demo.simulator import AGENT_SYSTEM

    messages: list[dict[str, Any]] = [{"role": "system", "content": AGENT_SYSTEM[run.version]},
                                      {"role": "user", "content": run.question}]
    clock = at
    with llmpulse.trace(name=AGENT_PROMPT, session_id=f"agent-{run.run}", occurred_at=at) as trace:
        for k, latency in enumerate(run.model_latency_ms):
            step = run.steps[k] if k < len(run.steps) else None
            call_id = f"call_{run.run}_{k}"
            with llmpulse.call(prompt_id=AGENT_PROMPT, prompt_version=run.version, model="gpt-4o-mini",
                               provider="openai", occurred_at=clock, messages=list(messages)) as c:
                words = sum(len(str(m.get("content") or "").split()) for m in messages) + 60
                answer = run.answer if step is None else None
                out = 12 if step is not None else len(run.answer.split())
                c.record_response(answer, input_tokens=words, output_tokens=out,
                                  tool_calls=None if step is None else [(call_id, step.name,
                                                                         step.arguments)],
                                  finish_reason="stop" if step is None else "tool_calls",
                                  latency_ms=latency,
                                  cost_usd=(words * 0.15 + out * 0.6) / 1_000_000)
            clock += timedelta(milliseconds=latency)
            if step is None:
                break
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": step.name, "arguments": step.arguments}}]})
            with llmpulse.tool_span(step.name, step.arguments, tool_call_id=call_id,
                                    occurred_at=clock) as tool:
                if step.error:
                    tool.record_error(step.error, f"{step.name}: " + _FAILURES.get(
                        step.error, "the carrier API timed out"))
                else:
                    tool.record_result(step.result)
                tool.record_latency(step.latency_ms)
            clock += timedelta(milliseconds=step.latency_ms)
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": step.result or f"error: {step.error}"})
        trace.record_latency((clock - at).total_seconds() * 1000)


_FAILURES = {"JSONDecodeError": "the arguments are not a JSON object"}


SKEWED_CALLS = 3
"""Calls from a host whose clock runs two days ahead: validation dead-letters them
(``timestamp_out_of_range``), so the report's dead-letter panel shows what a bad producer
looks like while every well-formed call is stored."""


def _misconfigured_host(llmpulse: Any) -> None:
    ahead = datetime.now(UTC) + timedelta(days=2)
    for _ in range(SKEWED_CALLS):
        with llmpulse.call(prompt_id="support-answer", prompt_version="v1", model="gpt-4o-mini",
                           provider="openai", occurred_at=ahead,
                           messages=[{"role": "user", "content": "Where is my order?"}]) as call:
            call.record_response("It left the warehouse today.", input_tokens=12,
                                 output_tokens=8, finish_reason="stop", latency_ms=640.0)


@dataclass
class Summary:
    """What ``summarise`` made: both comparisons, their JSON files and the report."""

    comparison: Any
    """The support answers' v1 against v2 (per call)."""
    comparison_json: Path
    agent_comparison: Any
    """The order agent's v1 against v2 (its calls, and per trace: the agent section)."""
    agent_comparison_json: Path
    report: Path


def summarise(store: Any, out: Path, since: datetime, until: datetime,
              echo: Any = click.echo) -> Summary:
    """The version comparisons of the support answers and of the order agent (printed and
    saved), and the HTML report of the store."""
    from llmpulse.dashboards.compare import compare_versions, comparison_json, comparison_table
    from llmpulse.dashboards.report import render_report

    start, end = since - timedelta(minutes=1), until + timedelta(minutes=1)
    saved = []
    for prompt in ("support-answer", AGENT_PROMPT):
        comparison = compare_versions(store, prompt, "v1", "v2", since=start, until=end,
                                      app="acme-support")
        echo("\n" + comparison_table(comparison))
        path = out / ("comparison.json" if prompt == "support-answer" else "agent-comparison.json")
        path.write_text(comparison_json(comparison), encoding="utf-8")
        saved.append((comparison, path))
    with click.progressbar(length=1, label="rendering the report") as bar:
        def progress(done: int, total: int, what: str) -> None:
            bar.length = total
            bar.update(1)

        # Prompt versions shows the support answers (the agent's versions are compared above).
        # The range runs to now: dead letters carry the time they were refused, after the
        # simulated day's end when processing took long.
        end = max(end, datetime.now(UTC) + timedelta(minutes=1))
        report = render_report(store, since=start, until=end, app="acme-support",
                               out_path=out / "report.html", progress=progress,
                               overrides={"prompt": "support-answer"})
    return Summary(saved[0][0], saved[0][1], saved[1][0], saved[1][1], report)


def worse_version(comparison: Any) -> str | None:
    """The version that is worse on more of the significant metrics (None: a tie)."""
    from llmpulse.dashboards.compare import worse_for_b

    verdicts = [worse_for_b(metric) for metric in comparison.significant]
    score = verdicts.count(True) - verdicts.count(False)  # > 0: B is worse
    if score == 0:
        return None
    return "v2" if score > 0 else "v1"


def store_summary(store: Any) -> dict[str, Any]:
    """What a run left in the store, in the terms both modes must agree on (with the agent
    path's, ``agent_summary``).

    ``drift_windows_by_size`` counts the windows per prompt version that closed because
    they were full; the embedded run also closes the partial last window of each version
    at its end (``closed_by`` ``flush``), which a running worker keeps open.
    """
    by_size = dict(store.query(
        "SELECT prompt_version, count() FROM drift_results "
        "WHERE attributes['closed_by'] != 'flush' GROUP BY prompt_version").rows)
    return {
        "calls": _count(store, "SELECT count() FROM calls"),
        "feedback": _count(store, "SELECT count() FROM feedback"),
        "verdicts": _count(store, "SELECT count() FROM guardrail_verdicts"),
        "drift_windows": _count(store, "SELECT count() FROM drift_results"),
        "drift_windows_by_size": by_size,
        "dead_letters": dict(store.query(
            "SELECT reason, count() FROM dead_letters GROUP BY reason").rows),
        **agent_summary(store),
    }


def agent_summary(store: Any) -> dict[str, Any]:
    """What a run left in the store of the agent path: spans, tool errors, the verdicts in
    traces by rule, the agent's traces by prompt version (what ``agent_line`` prints)."""
    return {
        "spans": _count(store, "SELECT count() FROM spans"),
        "tool_errors": _count(store, "SELECT count() FROM spans WHERE status = 'error'"),
        "agent_verdicts": dict(store.query(
            "SELECT rule_id, count() FROM guardrail_verdicts WHERE trace_id != '' "
            "GROUP BY rule_id").rows),
        "agent_traces_by_version": dict(store.query(
            "SELECT prompt_version, uniqExact(trace_id) FROM calls "
            "WHERE prompt_id = {prompt:String} AND trace_id != '' GROUP BY prompt_version",
            {"prompt": AGENT_PROMPT}).rows),
    }


def _count(store: Any, sql: str) -> int:
    return int(store.query(sql).scalar())


def agent_line(summary: dict[str, Any]) -> str:
    """What the store holds of the agent path (an ``agent_summary``, or a ``store_summary``
    that holds one), in one line."""
    verdicts = summary["agent_verdicts"]
    return (f"agent path: {summary['spans']} spans ({summary['tool_errors']} tool errors); "
            "verdicts in traces: " + (", ".join(f"{n} {rule}" for rule, n in
                                                sorted(verdicts.items())) or "none"))
