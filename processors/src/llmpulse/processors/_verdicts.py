"""What every verdict copies from the event it is about: the call envelope.

The guardrail policy and the agent checks both make ``GuardrailVerdict`` events; both take
the app, the ids and the model from the call or span through ``envelope``, so a verdict on
a span carries its ``call_id``, ``trace_id`` and ``span_id`` as one on a call does.

Example:
    >>> from llmpulse.processors._verdicts import envelope
    >>> from llmpulse.schemas import EnrichedCall
    >>> sorted(envelope(EnrichedCall(call_id="c", app="a", span_id="s1")))[:4]
    ['app', 'call_id', 'environment', 'occurred_at']
"""

from __future__ import annotations

from typing import Any

from llmpulse.schemas import CallEvent

__all__ = ["envelope"]


def envelope(event: CallEvent) -> dict[str, Any]:
    """The fields a verdict on ``event`` copies from it (keywords of ``GuardrailVerdict``)."""
    return {
        "occurred_at": event.occurred_at, "app": event.app, "environment": event.environment,
        "call_id": event.call_id, "trace_id": event.trace_id, "span_id": event.span_id,
        "parent_span_id": event.parent_span_id, "session_id": event.session_id,
        "user_id": event.user_id, "prompt_id": event.prompt_id,
        "prompt_version": event.prompt_version, "request_model": event.request_model,
        "provider": event.provider,
    }
