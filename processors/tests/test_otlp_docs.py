"""The examples of docs/SEND_OPENTELEMETRY.md, run as a reader would run them, so the page
cannot rot: the curl example's shell (with ``curl`` replaced by a function that keeps the
request body) makes a request whose span the mapper stores, and the tokens file shown is
one the stage accepts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from llmpulse.processors.otlp import OtlpMapper, TokenBindings

DOC = Path(__file__).resolve().parents[2] / "docs" / "SEND_OPENTELEMETRY.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split(title, 1)[1].split("\n#", 1)[0]


def _block(section: str, language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found is not None, f"no ```{language} block"
    return found.group(1)


def test_the_curl_example_makes_a_span_that_is_stored(tmp_path: Path) -> None:
    script = _block(_section("### curl (OTLP/JSON)"), "bash")
    body, args = tmp_path / "body.json", tmp_path / "args"
    # The doc's own shell, with curl keeping its arguments and the body it would have sent
    # (-d @- reads stdin).
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c",
                          'curl() { printf "%s\\n" "$@" > "$ARGS"; cat > "$BODY"; }\n' + script],
                         env={**os.environ, "BODY": str(body), "ARGS": str(args), "LLMPULSE_TOKEN": "t"},
                         capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0, ran.stderr
    sent = args.read_text(encoding="utf-8").splitlines()
    assert "http://localhost:4318/v1/traces" in sent  # the Collector's OTLP/HTTP port and path
    assert "Authorization: Bearer t" in sent and "Content-Type: application/json" in sent
    mapped = OtlpMapper().map_record(body.read_bytes(), content_type="json")
    assert [d.reason for d in mapped.dead_letters] == []
    assert len(mapped.prompts) == len(mapped.responses) == 1
    prompt, response = mapped.prompts[0], mapped.responses[0]
    assert (prompt.app, prompt.prompt_id, prompt.prompt_version) == ("support-bot", "order-status", "v3")
    assert prompt.messages[-1].content == "Where is my order?"
    assert (response.text, response.usage.input_tokens, response.usage.output_tokens) == (
        "It ships today.", 12, 4)
    assert response.latency_ms == 800


def test_the_tokens_file_shown_is_accepted() -> None:
    bindings = TokenBindings.parse(_block(_section("## 1. Tokens"), "text"))
    assert len(bindings) == 2
