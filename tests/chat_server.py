"""A local, deterministic server that speaks the OpenAI chat-completions protocol.

The answer to a request is ``"Echo: " + <last user message>``, split into chunks of
words when streaming (Server-Sent Events, ``data: [DONE]`` at the end, a usage chunk
when ``stream_options.include_usage`` is set). A user message ``"FAIL"`` gets an HTTP
500 with an OpenAI-style error body. Used by the SDK and replay tests.

    with ChatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append(body)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        user = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
        question = user[-1] if user else ""
        if question == "FAIL":
            self._json(500, {"error": {"message": "model crashed", "type": "server_error"}})
            return
        answer = f"Echo: {question}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(answer.split()),
                 "total_tokens": prompt_tokens + len(answer.split())}
        model = body.get("model", "echo")
        if not body.get("stream"):
            self._json(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                             "model": model, "usage": usage,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": answer}}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        words = answer.split(" ")
        for i, word in enumerate(words):
            delta = {"content": word if i == 0 else " " + word}
            if i == 0:
                delta["role"] = "assistant"
            self._event({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0,
                         "model": model, "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": None}]})
            time.sleep(self.server.chunk_delay_s)
        self._event({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0,
                     "model": model, "choices": [{"index": 0, "delta": {},
                                                  "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 0,
                         "model": model, "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, data: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
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
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._server.requests

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
