"""Re-record the OpenLIT OTLP fixture of the mapper tests from real instrumentation.

OpenLIT (``openlit.init``, its own instrumentation of the real ``openai`` client) calls the
local chat server (``tests/chat_server.py``); OpenLIT reuses the TracerProvider set here,
whose in-memory exporter keeps the finished spans, encoded by the OpenTelemetry SDK's own
OTLP encoder into the protobuf an OTLP exporter sends (``_recording.py``, shared with
``record.py`` for OpenLLMetry). OpenLIT's releases need ``openai<3``, which the workspace does not lock, so
this runs in OpenLIT's own environment (``scripts/setup.sh`` makes ``.venv-openlit`` from
``examples/openlit/requirements.txt``):

    .venv-openlit/bin/python processors/tests/otlp_fixtures/record_openlit.py

``openlit_chat.binpb``: a chat call with a system message and request parameters, a
streamed call with usage, and a failed call (the server's HTTP 500).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests"))

import openai  # noqa: E402
import openlit  # noqa: E402
from _recording import in_memory_provider, three_calls, write_spans  # noqa: E402
from chat_server import ChatServer  # noqa: E402
from opentelemetry import trace  # noqa: E402


def main() -> None:
    provider, exporter = in_memory_provider()
    trace.set_tracer_provider(provider)
    # A local, empty price list: OpenLIT would otherwise download one from GitHub.
    prices = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    prices.write("{}")
    prices.close()
    openlit.init(service_name="support-bot", application_name="support-bot",
                 environment="staging", disable_metrics=True, disable_events=True,
                 disable_batch=True, pricing_json=prices.name)
    with ChatServer() as server:
        three_calls(openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0))
    provider.force_flush()
    write_spans(exporter, "openlit_chat.binpb")


if __name__ == "__main__":
    main()
