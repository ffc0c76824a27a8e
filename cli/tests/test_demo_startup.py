"""``llmpulse demo`` says at start which model and backend each scorer runs.

The embedded demo runs until its start-up line (the store migrated, every model loaded for
real) and is stopped there through its ``echo`` (the whole run is tests/test_demo.py's).
"""

from __future__ import annotations

import pytest

from llmpulse.cli.demo.command import run_embedded


class StartedUp(Exception):
    """Raised by the test's echo once the demo has printed its scorers."""


def test_the_demo_prints_each_scorers_backend_before_simulating(tmp_path, monkeypatch):
    # no models folder and no Detoxify cache: the documented fallback, named as such
    monkeypatch.delenv("LLMPULSE_MODELS_DIR", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    lines: list[str] = []

    def echo(message: str = "", **kwargs: object) -> None:
        lines.append(message)
        if message.startswith("scorers: "):
            raise StartedUp

    with pytest.raises(StartedUp):
        run_embedded(out=tmp_path / "demo", requests=10, seed=1, clickhouse=None, drift_window=10, echo=echo)
    assert lines[-2] == "loading the scorers' models ..."
    backends = dict(pair.split("=", 1) for pair in lines[-1].removeprefix("scorers: ").split(", "))
    assert backends["toxicity"] == "profanity-check"  # no Detoxify model here: said, not hidden
    assert backends["embeddings"] == "minilm:all-MiniLM-L6-v2"  # sentence-transformers on the packaged model
    assert backends["readability"] == "textstat:flesch_reading_ease"
    assert list(backends) == sorted(backends)
