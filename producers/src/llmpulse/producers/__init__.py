"""llmpulse producer SDK: capture every LLM call and its feedback without hurting the app.

Example:
    >>> import llmpulse.producers as llmpulse
    >>> _ = llmpulse.init(app="support-bot", bootstrap_servers=None)  # None: count, don't send
    >>> @llmpulse.track(prompt_id="answer", prompt_version="3", model="gpt-4o-mini")
    ... def answer(question: str) -> str:
    ...     return "Your parcel ships tomorrow."
    >>> answer("Where is my parcel?")
    'Your parcel ships tomorrow.'
    >>> call_id = llmpulse.last_call_id()
    >>> llmpulse.feedback(call_id, thumbs="up", rating=5)
    True
    >>> with llmpulse.call(prompt_id="answer", messages=[{"role": "user", "content": "Hi"}]) as c:
    ...     c.record_response("Hello!", input_tokens=3, output_tokens=2)
    >>> llmpulse.stats()["dropped_by_reason"]
    {'not_configured': 5}
    >>> llmpulse.shutdown()

Three ways to capture calls (``track``, ``call``, ``wrap(client)`` for OpenAI chat
completions and Responses, and Anthropic Messages), ``trace``/``tool``/``tool_span`` for
agent runs and tool executions (a tree of spans), ``feedback`` by call id, redaction and
sampling in ``init``; see ``producers/README.md``.
"""

from __future__ import annotations

from typing import Any

from llmpulse.producers import prompts
from llmpulse.producers._capture import LLMCall, call, current_call, feedback, last_call_id, track
from llmpulse.producers._client import Client, get_client, init
from llmpulse.producers._spans import Span, current_span, span, tool, tool_span, trace
from llmpulse.producers._wrap import wrap
from llmpulse.producers.config import SdkConfig
from llmpulse.producers.metrics import export_metrics
from llmpulse.producers.redaction import Redactor

__all__ = [
    "Client",
    "LLMCall",
    "Redactor",
    "SdkConfig",
    "Span",
    "call",
    "current_call",
    "current_span",
    "export_metrics",
    "feedback",
    "flush",
    "init",
    "last_call_id",
    "prompts",
    "shutdown",
    "span",
    "stats",
    "tool",
    "tool_span",
    "trace",
    "track",
    "wrap",
]


def stats() -> dict[str, Any]:
    """What the SDK did: captured, sent, failed, spooled, dropped (by reason), queue depth."""
    return get_client().snapshot()


def flush(timeout_s: float | None = None) -> bool:
    """Deliver everything queued now; True when nothing is left in flight."""
    return get_client().flush(timeout_s)


def shutdown(timeout_s: float | None = None) -> None:
    """Deliver within the deadline and stop; undelivered records stay in the spool on disk.

    Called for you at interpreter exit.
    """
    get_client().shutdown(timeout_s)
