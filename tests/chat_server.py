"""A local, deterministic server that speaks three LLM wire protocols, streaming included.

- OpenAI chat completions (``POST /v1/chat/completions``);
- OpenAI Responses (``POST /v1/responses``);
- Anthropic Messages (``POST /v1/messages``).

The answer to a request is ``"Echo: " + <last user text>`` (or, when the last input is a
tool's result, ``"Echo: " + <that result>``), split into chunks of words when streaming
(Server-Sent Events). A user text ``"FAIL"`` gets an HTTP 500 with the API's error body.

Tools: when the request offers tools and the last input is the user's text, the model
"calls" the first tool with the arguments ``{"query": <text>}`` (streamed in three
pieces); a user text starting with ``BADARGS`` makes the arguments not JSON
(``{query: <text>``), as models sometimes produce.

Usage figures are deterministic: input tokens = words in the input; output tokens =
words answered. Chat: a usage chunk when ``stream_options.include_usage`` is set.
Responses: ``cached_tokens`` = input tokens // 2; a request with ``reasoning`` gets a
reasoning item and ``reasoning_tokens`` = 5 (counted in the output tokens). Anthropic: a
``system`` with ``cache_control`` reports ``cache_creation_input_tokens`` = its words and
``cache_read_input_tokens`` = 3; a request with ``thinking`` gets a thinking block and
``output_tokens_details.thinking_tokens`` = 4 (counted in the output tokens).

    with ChatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        claude = anthropic.Anthropic(base_url=server.anthropic_url, api_key="test")
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REASONING_TOKENS = 5
THINKING_TOKENS = 4
CACHE_READ_TOKENS = 3


def _words(value: Any) -> int:
    """Words in a text, or in every text of a nested message/content structure."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return sum(_words(value.get(k)) for k in ("content", "text", "output", "input"))
    return 0


def _text(content: Any) -> str:
    """The text of a message's content: a str, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if isinstance(p, dict))


def _arguments(question: str) -> str:
    if question.startswith("BADARGS"):
        return "{query: " + question
    return json.dumps({"query": question})


def _pieces(text: str, n: int = 3) -> list[str]:
    step = max(1, -(-len(text) // n))
    return [text[i:i + step] for i in range(0, len(text), step)] or [""]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append(body)
        path = self.path.rstrip("/")
        if path == "/v1/chat/completions":
            self._chat(body)
        elif path == "/v1/responses":
            self._responses(body)
        elif path == "/v1/messages":
            self._messages(body)
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    # -- OpenAI chat completions -------------------------------------------------------
    def _chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        user = [m["content"] for m in messages if m.get("role") == "user"]
        question = user[-1] if user else ""
        if question == "FAIL":
            self._json(500, {"error": {"message": "model crashed", "type": "server_error"}})
            return
        calls_tool = bool(body.get("tools")) and last.get("role") == "user"
        answer = f"Echo: {last.get('content') if last.get('role') == 'tool' else question}"
        tool = None
        if calls_tool:
            name = body["tools"][0]["function"]["name"]
            tool = {"id": "call_1", "type": "function",
                    "function": {"name": name, "arguments": _arguments(question)}}
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion = len(answer.split()) if tool is None else 3
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                 "total_tokens": prompt_tokens + completion}
        model = body.get("model", "echo")
        finish = "tool_calls" if tool else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else answer}
            if tool:
                message["tool_calls"] = [tool]
            self._json(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                             "model": model, "usage": usage,
                             "choices": [{"index": 0, "finish_reason": finish,
                                          "message": message}]})
            return
        self._start_sse()

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            self._event({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0,
                         "model": model, "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": finish_reason}]})
            time.sleep(self.server.chunk_delay_s)

        if tool:
            fn = tool["function"]
            for i, piece in enumerate(_pieces(fn["arguments"])):
                part: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
                if i == 0:
                    part.update(id=tool["id"], type="function")
                    part["function"]["name"] = fn["name"]
                chunk({"role": "assistant", "tool_calls": [part]} if i == 0 else
                      {"tool_calls": [part]})
        else:
            for i, word in enumerate(answer.split(" ")):
                delta = {"content": word if i == 0 else " " + word}
                if i == 0:
                    delta["role"] = "assistant"
                chunk(delta)
        chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0,
                         "model": model, "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    # -- OpenAI Responses --------------------------------------------------------------
    def _responses(self, body: dict[str, Any]) -> None:
        items = body.get("input", "")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        last = items[-1] if items else {}
        users = [_text(i.get("content")) for i in items if i.get("role") == "user"]
        question = users[-1] if users else ""
        if question == "FAIL":
            self._json(500, {"error": {"message": "model crashed", "type": "server_error",
                                       "param": None, "code": None}})
            return
        model = body.get("model", "echo")
        output: list[dict[str, Any]] = []
        reasoning = REASONING_TOKENS if body.get("reasoning") else 0
        if reasoning:
            output.append({"type": "reasoning", "id": "rs_1", "summary": []})
        if body.get("tools") and last.get("role") == "user":
            output.append({"type": "function_call", "id": "fc_1", "call_id": "call_1",
                           "name": body["tools"][0]["name"], "status": "completed",
                           "arguments": _arguments(question)})
            answered = 3
        else:
            prior = last.get("output") if last.get("type") == "function_call_output" else question
            answer = f"Echo: {prior}"
            output.append({"type": "message", "id": "msg_1", "role": "assistant",
                           "status": "completed",
                           "content": [{"type": "output_text", "text": answer, "annotations": []}]})
            answered = len(answer.split())
        tokens_in = _words(items) + _words(body.get("instructions"))
        response = {"id": "resp_1", "object": "response", "created_at": 0, "model": model,
                    "status": "completed", "output": output, "parallel_tool_calls": True,
                    "tool_choice": "auto", "tools": body.get("tools", []),
                    "usage": {"input_tokens": tokens_in,
                              "input_tokens_details": {"cached_tokens": tokens_in // 2},
                              "output_tokens": answered + reasoning,
                              "output_tokens_details": {"reasoning_tokens": reasoning},
                              "total_tokens": tokens_in + answered + reasoning}}
        if not body.get("stream"):
            self._json(200, response)
            return
        self._start_sse()
        seq = iter(range(10_000))

        def event(kind: str, **data: Any) -> None:
            self._event({"type": kind, "sequence_number": next(seq), **data}, name=kind)
            time.sleep(self.server.chunk_delay_s)

        event("response.created", response={**response, "status": "in_progress", "output": [],
                                            "usage": None})
        for index, item in enumerate(output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                event("response.output_item.added", output_index=index,
                      item={**item, "status": "in_progress", "content": []})
                event("response.content_part.added", item_id=item["id"], output_index=index,
                      content_index=0, part={"type": "output_text", "text": "", "annotations": []})
                for i, word in enumerate(text.split(" ")):
                    event("response.output_text.delta", item_id=item["id"], output_index=index,
                          content_index=0, delta=word if i == 0 else " " + word, logprobs=[])
                event("response.output_text.done", item_id=item["id"], output_index=index,
                      content_index=0, text=text, logprobs=[])
                event("response.content_part.done", item_id=item["id"], output_index=index,
                      content_index=0, part=item["content"][0])
            elif item["type"] == "function_call":
                event("response.output_item.added", output_index=index,
                      item={**item, "status": "in_progress", "arguments": ""})
                for piece in _pieces(item["arguments"]):
                    event("response.function_call_arguments.delta", item_id=item["id"],
                          output_index=index, delta=piece)
                event("response.function_call_arguments.done", item_id=item["id"],
                      output_index=index, arguments=item["arguments"], name=item["name"])
            else:
                event("response.output_item.added", output_index=index, item=item)
            event("response.output_item.done", output_index=index, item=item)
        event("response.completed", response=response)

    # -- Anthropic Messages ------------------------------------------------------------
    def _messages(self, body: dict[str, Any]) -> None:
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        blocks = last.get("content")
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        results = [b for b in blocks or () if b.get("type") == "tool_result"]
        question = _text(blocks) if last.get("role") == "user" else ""
        if question == "FAIL":
            self._json(500, {"type": "error",
                             "error": {"type": "api_error", "message": "model crashed"}})
            return
        content: list[dict[str, Any]] = []
        thinking = THINKING_TOKENS if body.get("thinking") else 0
        if thinking:
            content.append({"type": "thinking", "thinking": "The user wants an echo.",
                            "signature": "sig-1"})
        if body.get("tools") and not results:
            content.append({"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"],
                            "input": {"query": question}})
            answered, stop = 3, "tool_use"
        else:
            prior = _text(results[-1].get("content")) if results else question
            answer = f"Echo: {prior}"
            content.append({"type": "text", "text": answer})
            answered, stop = len(answer.split()), "end_turn"
        system = body.get("system")
        cached = isinstance(system, list) and any("cache_control" in b for b in system)
        usage = {"input_tokens": _words(messages) + _words(system if isinstance(system, str)
                                                           else _text(system)),
                 "output_tokens": answered + thinking,
                 "cache_creation_input_tokens": _words(_text(system)) if cached else 0,
                 "cache_read_input_tokens": CACHE_READ_TOKENS if cached else 0,
                 "output_tokens_details": {"thinking_tokens": thinking}}
        message = {"id": "msg_01", "type": "message", "role": "assistant",
                   "model": body.get("model", "echo"), "content": content, "stop_reason": stop,
                   "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            self._json(200, message)
            return
        self._start_sse()

        def event(kind: str, **data: Any) -> None:
            self._event({"type": kind, **data}, name=kind)
            time.sleep(self.server.chunk_delay_s)

        event("message_start", message={**message, "content": [], "stop_reason": None,
                                         "usage": {**usage, "output_tokens": 1,
                                                   "output_tokens_details": None}})
        event("ping")
        for index, block in enumerate(content):
            if block["type"] == "text":
                event("content_block_start", index=index, content_block={"type": "text", "text": ""})
                for i, word in enumerate(block["text"].split(" ")):
                    event("content_block_delta", index=index,
                          delta={"type": "text_delta", "text": word if i == 0 else " " + word})
            elif block["type"] == "thinking":
                event("content_block_start", index=index,
                      content_block={"type": "thinking", "thinking": "", "signature": ""})
                event("content_block_delta", index=index,
                      delta={"type": "thinking_delta", "thinking": block["thinking"]})
                event("content_block_delta", index=index,
                      delta={"type": "signature_delta", "signature": block["signature"]})
            else:
                event("content_block_start", index=index,
                      content_block={**block, "input": {}})
                for piece in _pieces(json.dumps(block["input"])):
                    event("content_block_delta", index=index,
                          delta={"type": "input_json_delta", "partial_json": piece})
            event("content_block_stop", index=index)
        event("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
              usage={"output_tokens": usage["output_tokens"],
                     "output_tokens_details": usage["output_tokens_details"]})
        event("message_stop")

    # -- plumbing ----------------------------------------------------------------------
    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    def _event(self, data: dict[str, Any], name: str | None = None) -> None:
        head = f"event: {name}\n".encode() if name else b""
        self.wfile.write(head + b"data: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()

    def _json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]
    chunk_delay_s: float


class ChatServer:
    """Runs the server on a free port of 127.0.0.1 in a background thread."""

    def __init__(self, chunk_delay_s: float = 0.005) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        self._server.chunk_delay_s = chunk_delay_s
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """For OpenAI clients (chat completions and Responses)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def anthropic_url(self) -> str:
        """For Anthropic clients (they add ``/v1/messages`` themselves)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._server.requests

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
