"""``@track`` on a generator or an async generator: the call lasts as long as its items.

The call starts when the first item is asked for, its time to first token is the first item,
its latency runs to the last, and its answer is the items' text put together. While the
generator's own code runs, the call is the active node (a call made inside is its
child); between items the app's context is left as it was, so nothing leaks into the
consumer's code. A consumer that stops early records what it got; an exception inside
is recorded and re-raised.

Example:
    >>> import llmpulse.producers as llmpulse
    >>> _ = llmpulse.init(app="gen", bootstrap_servers=None)
    >>> @llmpulse.track(prompt_id="story")
    ... def story(prompt: str):
    ...     yield "Once "
    ...     yield "upon a time."
    >>> "".join(story("Tell me a story"))
    'Once upon a time.'
    >>> llmpulse.shutdown()
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from llmpulse.producers._client import get_client
from llmpulse.producers._spans import active

__all__ = ["item_text", "tracked_generator"]


def item_text(item: Any) -> str | None:
    """The text an item adds: a str, an OpenAI chat chunk's delta, a Responses text delta,
    or an Anthropic text delta; None for anything else."""
    if isinstance(item, str):
        return item
    choices = getattr(item, "choices", None)
    if choices:
        content = getattr(getattr(choices[0], "delta", None), "content", None)
        return content if isinstance(content, str) else None
    kind = getattr(item, "type", None)
    if kind == "response.output_text.delta":
        delta = getattr(item, "delta", None)
        return delta if isinstance(delta, str) else None
    if kind == "content_block_delta":
        text = getattr(getattr(item, "delta", None), "text", None)
        return text if isinstance(text, str) else None
    return None


class _Answer:
    """Collects a generator's text as its items pass."""

    __slots__ = ("call", "capture", "parts")

    def __init__(self, call: Any, capture: Callable[[Any], Any] | None) -> None:
        self.call, self.capture = call, capture
        self.parts: list[str] = []

    def take(self, item: Any) -> None:
        self.call.first_token()
        try:
            text = self.capture(item) if self.capture is not None else item_text(item)
            if isinstance(text, str) and text:
                self.parts.append(text)
        except Exception:
            get_client().stats.error("track_output")

    def end(self, exc: BaseException | None = None) -> None:
        self.call.record_response(text="".join(self.parts), streamed=True)
        if exc is not None:
            self.call.record_error(exc)
        self.call.finish()


def tracked_generator(fn: Callable[..., Any], start: Callable[[tuple[Any, ...], dict[str, Any]], Any],
                      capture: Callable[[Any], Any] | None) -> Callable[..., Any]:
    """Wrap a generator function (sync or async) so each run is one recorded call."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            call = start(args, kwargs)
            answer = _Answer(call, capture)
            token = active.set(call)
            try:
                inner = fn(*args, **kwargs)
            finally:
                active.reset(token)
            try:
                while True:
                    token = active.set(call)
                    try:
                        item = await inner.__anext__()
                    except StopAsyncIteration:
                        break
                    finally:
                        active.reset(token)
                    answer.take(item)
                    yield item
            except GeneratorExit:  # the consumer stopped early: record what it got
                answer.end()
                await inner.aclose()
                raise
            except BaseException as exc:
                answer.end(exc)
                raise
            answer.end()
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        call = start(args, kwargs)
        answer = _Answer(call, capture)
        token = active.set(call)
        try:
            inner = fn(*args, **kwargs)
        finally:
            active.reset(token)
        try:
            while True:
                token = active.set(call)
                try:
                    item = next(inner)
                except StopIteration:
                    break
                finally:
                    active.reset(token)
                answer.take(item)
                yield item
        except GeneratorExit:
            answer.end()
            inner.close()
            raise
        except BaseException as exc:
            answer.end(exc)
            raise
        answer.end()
    return wrapper
