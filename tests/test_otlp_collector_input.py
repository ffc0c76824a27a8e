"""The real OpenTelemetry Collector (built from its Go modules, deploy/otelcol.yaml) at the
door: which credentials it lets in with a tokens file the OTLP stage accepts."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from kafka_broker import KafkaBroker
from otel_collector import OtelCollector, post

from llmpulse.processors.otlp import TokenBindings, TokensFileError

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SPAN = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2}
EMPTY = b'{"resourceSpans": []}'
LIMIT = 8 * 1024 * 1024  # deploy/otelcol.yaml: max_request_body_size


@pytest.fixture(scope="module")
def strict_collector(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[OtelCollector]:
    """A Collector of its own, on a tokens file the stage accepts, with every form the stage
    lets through: blank lines, lines of spaces and tabs, tabs between fields, CRLF, '*'."""
    collector = OtelCollector(tmp_path_factory.mktemp("otelcol-strict"), kafka_broker.bootstrap,
                              prefix="strict.")
    collector.tokens = {"support": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24)}
    collector.tokens_file.write_text(
        f"\n  \n{collector.tokens['support']}\tsupport-bot, faq-bot \r\n\t\n"
        f"{collector.tokens['admin']} *\r\n\n", encoding="utf-8")
    assert len(TokenBindings.load(collector.tokens_file)) == 2
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


NOT_TOKENS = ["Bearer #", "Bearer //", "Bearer ", "Bearer", "", "#", "Bearer \t",
              "Bearer support-bot", "Bearer *", "Bearer faq-bot"]


def _until(condition: Callable[[], bool], timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_tokens_file_the_stage_accepts_lets_in_only_its_tokens(
        strict_collector: OtelCollector) -> None:
    for header in NOT_TOKENS:
        assert post(strict_collector, EMPTY, None, authorization=header) == 401, header
    for token in strict_collector.tokens.values():
        assert post(strict_collector, EMPTY, token) == 200


def test_the_comment_line_the_stage_refuses_is_a_credential_to_the_collector(
        strict_collector: OtelCollector) -> None:
    """Why the stage refuses comment lines: with the old documented file (a '# <token> <app>'
    line first), the real Collector lets 'Bearer #' in. If a later bearertokenauth skips such
    lines, this fails, and the refusal may be relaxed."""
    file = strict_collector.tokens_file
    kept = file.read_text(encoding="utf-8")
    commented = f"# <token> <app>[,<app>...]     (\"*\": any app)\n{kept}"
    with pytest.raises(TokensFileError, match="line 1:"):
        TokenBindings.parse(commented)
    try:
        file.write_text(commented, encoding="utf-8")  # the Collector re-reads it on change
        assert _until(lambda: post(strict_collector, EMPTY, None, authorization="Bearer #") == 200)
    finally:
        file.write_text(kept, encoding="utf-8")
    assert _until(lambda: post(strict_collector, EMPTY, None, authorization="Bearer #") == 401)
