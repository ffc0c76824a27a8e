"""``wrap(client)``: record every LLM call an OpenAI or Anthropic client makes.

Example:
    >>> import llmpulse.producers as llmpulse
    >>> class Completions:
    ...     def create(self, **kwargs):
    ...         return {"choices": [{"message": {"content": "Hi!"}, "finish_reason": "stop"}]}
    >>> class Chat:
    ...     completions = Completions()
    >>> class FakeOpenAI:
    ...     chat = Chat()
    >>> _ = llmpulse.init(app="wrap-demo", bootstrap_servers=None)
    >>> client = llmpulse.wrap(FakeOpenAI(), prompt_id="greet")
    >>> client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])
    {'choices': [{'message': {'content': 'Hi!'}, 'finish_reason': 'stop'}]}
    >>> llmpulse.shutdown()
"""

from __future__ import annotations

from typing import Any

from llmpulse.producers._anthropic import WrappedAnthropic
from llmpulse.producers._openai import WrappedOpenAI
from llmpulse.producers._streams import check_options

__all__ = ["wrap"]


def wrap(client: Any, *, provider: str | None = None, **defaults: Any) -> Any:
    """Record every call of an OpenAI-compatible or an Anthropic client (sync or async).

    OpenAI (``openai.OpenAI``, ``AsyncOpenAI``, and servers speaking its protocol):
    ``chat.completions.create`` and ``responses.create``/``responses.stream``. Anthropic
    (``anthropic.Anthropic``, ``AsyncAnthropic``): ``messages.create`` and
    ``messages.stream``. Streaming included; tool calls in prompts and answers kept.
    ``defaults`` (prompt_id, prompt_version, session_id, user_id, attributes ...) apply to
    every call; a call can add or override them with ``llmpulse={...}``. Everything else
    on the client passes through untouched.
    """
    check_options(defaults)
    if getattr(client, "chat", None) is None and getattr(client, "messages", None) is not None:
        return WrappedAnthropic(client, provider=provider, **defaults)
    return WrappedOpenAI(client, provider=provider, **defaults)
