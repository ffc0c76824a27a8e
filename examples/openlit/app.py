"""An app instrumented by OpenLIT (its own environment: OpenLIT's releases need openai<3,
which the llmpulse workspace does not lock), sending its OpenAI chat calls to llmpulse
through the OpenTelemetry Collector with a bearer token.

    python app.py OTLP_HTTP_ENDPOINT TOKEN OPENAI_BASE_URL QUESTION...

Prints nothing but errors; tests/test_otlp_ingest.py runs it and finds the calls.
"""

import sys

import openai
import openlit


def main() -> None:
    endpoint, token, base_url, *questions = sys.argv[1:]
    openlit.init(otlp_endpoint=endpoint, otlp_headers=f"Authorization=Bearer {token}",
                 service_name="support-bot", application_name="support-bot", environment="openlit",
                 disable_metrics=True, disable_batch=True)
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
    for question in questions:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": question}])


if __name__ == "__main__":
    main()
