"""The examples of docs/SEND_OPENTELEMETRY.md, checked so the page cannot rot: the tokens
file shown is one the stage accepts."""

from __future__ import annotations

import re
from pathlib import Path

from llmpulse.processors.otlp import TokenBindings

DOC = Path(__file__).resolve().parents[2] / "docs" / "SEND_OPENTELEMETRY.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split(title, 1)[1].split("\n#", 1)[0]


def _block(section: str, language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert found is not None, f"no ```{language} block"
    return found.group(1)


def test_the_tokens_file_shown_is_accepted() -> None:
    bindings = TokenBindings.parse(_block(_section("## 1. Tokens"), "text"))
    assert len(bindings) == 2
