"""A candidate prompt version for replay: the template answered again by a model.

``ChatModel`` calls an OpenAI-compatible chat-completions endpoint (rate-limited, with
retries); ``CandidatePrompt`` renders a ``PromptTemplate`` with a recorded call's
variables, asks the model, and returns the call made again.

Example (not a doctest: it needs a model endpoint)::

    from llmpulse.producers.prompts import PromptRegistry
    from llmpulse.processors.replay import CandidatePrompt, ChatModel

    template = PromptRegistry("prompts").resolve("answer@staging")
    prompt = CandidatePrompt(template, ChatModel("http://localhost:8000/v1"), "gpt-4o-mini")
    again = prompt.answer(pair)     # a CallPair with the new prompt and response
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from llmpulse.processors.errors import missing_dependency
from llmpulse.processors.pipeline import CallPair
from llmpulse.schemas import ChatMessage, ErrorInfo, ResponseEvent, TokenUsage
from llmpulse.schemas.errors import LlmpulseError

__all__ = ["CandidatePrompt", "ChatModel"]


class ChatModel:
    """An OpenAI-compatible chat-completions endpoint, called at most ``rate`` times a second.

    Uses httpx (no SDK needed); retries connection errors, 429 and 5xx twice.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, rate: float = 5.0,
                 timeout_s: float = 60.0, retries: int = 2) -> None:
        try:
            import httpx
        except ImportError:
            raise missing_dependency("httpx", "the candidate model client", extra="replay") from None

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.client = httpx.Client(headers=headers, timeout=timeout_s)
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.retries = retries
        self._next = 0.0
        self.requests = 0

    def _wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval

    def complete(self, messages: list[dict[str, str]], *, model: str,
                 settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{"text", "finish_reason", "response_model", "response_id", "usage", "latency_ms"}``
        or ``{"error": (type, message), "latency_ms"}``."""
        import httpx

        body = {**(settings or {}), "model": model, "messages": messages, "stream": False}
        error: tuple[str, str] = ("unknown", "")
        for attempt in range(self.retries + 1):
            self._wait()
            self.requests += 1
            t0 = time.perf_counter()
            try:
                reply = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                error = (type(exc).__name__, str(exc))
                continue
            latency_ms = (time.perf_counter() - t0) * 1000
            if reply.status_code == 200:
                data = reply.json()
                choice = (data.get("choices") or [{}])[0]
                return {"text": (choice.get("message") or {}).get("content"),
                        "finish_reason": choice.get("finish_reason"),
                        "response_model": data.get("model"), "response_id": data.get("id"),
                        "usage": data.get("usage") or {}, "latency_ms": latency_ms}
            error = (f"http_{reply.status_code}", reply.text[:200])
            if reply.status_code != 429 and reply.status_code < 500:
                break
            if attempt < self.retries:
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
        return {"error": error, "latency_ms": 0.0}

    def close(self) -> None:
        self.client.close()


@dataclass
class CandidatePrompt:
    """A prompt version to answer recorded calls with: ``template`` (a ``PromptTemplate``
    from ``PromptRegistry.resolve``), the model to call and its name."""

    template: Any
    model: ChatModel
    model_name: str | None = None

    @property
    def name(self) -> str:
        return self.model_name or self.template.model or "unknown"

    def describe(self) -> str:
        return f"{self.template.id}@{self.template.version} model={self.name}"

    def answer(self, pair: CallPair) -> CallPair:
        """The call made again: the template rendered with the call's variables, sent to
        the model; the new prompt and response keep the call's id and time."""
        p = pair.prompt
        assert p is not None
        common = dict(call_id=p.call_id, app=p.app, environment=p.environment,
                      occurred_at=p.occurred_at, session_id=p.session_id, user_id=p.user_id,
                      trace_id=p.trace_id, prompt_id=self.template.id,
                      prompt_version=self.template.version, request_model=self.name,
                      provider=p.provider)
        try:
            rendered = self.template.render(**p.template_variables)
        except LlmpulseError as exc:
            prompt = msgspec.structs.replace(p, prompt_version=self.template.version,
                                             request_model=self.name)
            response = ResponseEvent(**common, latency_ms=0.0,
                                     error=ErrorInfo(type="missing_variables", message=str(exc)))
            return CallPair(prompt=prompt, response=response)
        messages = [dict(m) for m in rendered.messages]
        prompt = msgspec.structs.replace(
            p, event_id=uuid.uuid5(p.event_id, "candidate-prompt"),
            messages=[ChatMessage(role=m["role"], content=m["content"]) for m in messages],  # type: ignore[arg-type]
            prompt_version=self.template.version, request_model=self.name,
            template_variables=dict(rendered.variables))
        settings = {k: v for k, v in rendered.model_settings.items()
                    if k in {"temperature", "max_tokens", "top_p", "stop", "seed"}}
        got = self.model.complete(messages, model=self.name, settings=settings)
        rid = uuid.uuid5(p.event_id, "candidate-response")
        if "error" in got:
            kind, message = got["error"]
            response = ResponseEvent(**common, event_id=rid, latency_ms=got["latency_ms"],
                                     error=ErrorInfo(type=kind, message=message[:500]))
        else:
            usage = got["usage"]
            response = ResponseEvent(
                **common, event_id=rid, text=got["text"], finish_reason=got["finish_reason"],
                response_model=got["response_model"], response_id=got["response_id"],
                latency_ms=got["latency_ms"],
                usage=TokenUsage(input_tokens=int(usage.get("prompt_tokens") or 0),
                                 output_tokens=int(usage.get("completion_tokens") or 0)))
        return CallPair(prompt=prompt, response=response)
