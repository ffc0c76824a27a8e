"""Latency, tokens and cost from genai-prices and the user's price files."""

from __future__ import annotations

from importlib import metadata

import genai_prices
import pytest

from llmpulse.processors.config import OperationsConfig
from llmpulse.processors.errors import ConfigError
from llmpulse.processors.scoring.operations import OperationsScorer, PriceTable
from llmpulse.schemas import TokenUsage

from .conftest import make_call


def by_name(scorer: OperationsScorer, call) -> dict[str, object]:
    return {s.name: s for s in scorer.score_one(call)}


def _cost(call, scorer: OperationsScorer | None = None):
    return by_name(scorer or OperationsScorer(), call)["cost_usd"]


def _priced_call(model: str, *, input_tokens: int, output_tokens: int, cached: int = 0):
    call = make_call("hi", "hello")
    call.response.usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens,
                                     cached_input_tokens=cached)
    call.response.response_model = model
    return call


def test_cost_from_genai_prices_with_cached_tokens_and_its_provenance():
    call = _priced_call("gpt-4o-mini-2024-07-18", input_tokens=2000, output_tokens=1000, cached=1000)
    cost = _cost(call)
    assert cost.value == pytest.approx((1000 * 0.15 + 1000 * 0.075 + 1000 * 0.60) / 1e6)
    version = metadata.version("genai-prices")
    assert cost.label == "gpt-4o-mini" and cost.backend == f"prices:genai-prices-{version}"
    assert cost.attributes == {"price_source": f"genai-prices {version}",
                               "price_date": call.occurred_at.date().isoformat(),
                               "price_model": "gpt-4o-mini", "price_provider": "openai"}


@pytest.mark.parametrize(("model", "per_million_in", "per_million_out"), [
    ("gpt-5", 1.25, 10.0),                      # August 2025, after the old table (June 2025)
    ("claude-sonnet-4-5-20250929", 3.0, 15.0),  # September 2025
    ("o3-pro", 20.0, 80.0),                     # the old prefix match priced it as o3 (2 / 8)
    ("gpt-4o-2024-05-13", 5.0, 15.0),           # ... and this one as gpt-4o (2.5 / 10)
])
def test_models_released_after_the_old_table_are_priced_as_sold(model, per_million_in, per_million_out):
    cost = _cost(_priced_call(model, input_tokens=100_000, output_tokens=100_000))  # under long-context tiers
    assert cost.status == "ok" and cost.value == pytest.approx((per_million_in + per_million_out) / 10)


@pytest.mark.parametrize(("model", "input_tokens", "cached"), [
    ("claude-sonnet-4-5", 150_000, 20_000), ("claude-sonnet-4-5", 300_000, 20_000),  # long-context tier
    ("gemini-2.5-pro", 250_000, 0), ("gpt-5-mini", 10_000, 4_000),
])
def test_costs_match_genai_prices_own_calculation(model, input_tokens, cached):
    call = _priced_call(model, input_tokens=input_tokens, output_tokens=2_000, cached=cached)
    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=input_tokens, output_tokens=2_000, cache_read_tokens=cached), model,
        genai_request_timestamp=call.occurred_at)
    assert _cost(call).value == pytest.approx(float(theirs.total_price))


def test_reported_cost_wins_and_unknown_models_get_no_cost():
    call = make_call("hi", "hello")
    call.response.cost_usd = 0.5
    assert by_name(OperationsScorer(), call)["cost_usd"].backend == "reported"
    call = make_call("hi", "hello")
    call.request_model = "my-own-llm"
    call.response.request_model = None
    cost = by_name(OperationsScorer(), call)["cost_usd"]
    assert cost.status == "unavailable" and cost.value is None and "my-own-llm" in cost.detail
    assert "genai-prices" in cost.detail and not cost.attributes


def test_a_user_price_file_extends_and_overrides(tmp_path):
    extra = tmp_path / "prices.yaml"
    extra.write_text("version: acme-1\nmodels:\n  my-own-llm: {input: 1.0, output: 2.0}\n"
                     "  gpt-4o-mini: {input: 9.0, output: 9.0}\n"
                     "  long-llm: {input: 1.0, output: 1.0,\n"
                     "             tiers: [{above_input_tokens: 100, input: 3.0}]}\n")
    scorer = OperationsScorer(OperationsConfig(prices=[str(extra)]))
    assert scorer.prices.version == f"acme-1+genai-prices-{metadata.version('genai-prices')}"
    assert scorer.prices.lookup("my-own-llm").price.cost(input_tokens=1_000_000, output_tokens=0) == 1.0
    mini = scorer.prices.lookup("openai/gpt-4o-mini-2024-07-18")
    assert mini.price.input == 9.0 and (mini.source, mini.date) == (str(extra), "acme-1")
    assert scorer.prices.lookup("gpt-4o").price.input == 2.5  # genai-prices for the rest
    long = scorer.prices.lookup("long-llm").price
    assert long.cost(input_tokens=100, output_tokens=0) * 1e6 == pytest.approx(100)
    assert long.cost(input_tokens=101, output_tokens=0) * 1e6 == pytest.approx(303)
    cost = _cost(_priced_call("my-own-llm", input_tokens=1000, output_tokens=0), scorer)
    assert cost.attributes == {"price_source": str(extra), "price_date": "acme-1",
                               "price_model": "my-own-llm"}


def test_a_broken_price_file_names_itself(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  x: {input: cheap}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        PriceTable.load([bad])


def test_latency_tokens_and_throughput():
    call = make_call("hi", "hello")
    call.response.time_to_first_token_ms = 50.0
    scores = by_name(OperationsScorer(), call)
    assert scores["latency_ms"].value == 350.0 and scores["time_to_first_token_ms"].value == 50.0
    assert scores["output_tokens"].value == 20.0
    assert scores["output_tokens_per_s"].value == pytest.approx(20 / 0.3)
    call.response.usage = None
    scores = by_name(OperationsScorer(), call)
    assert scores["input_tokens"].status == "unavailable" and scores["input_tokens"].value is None


def test_load_light_reads_the_price_table_before_the_first_call():
    """The worker calls ``Enricher.load_light()`` at start: genai-prices' table (about a
    second of CPU) is read then, not inside the first batch's first lookup. A fresh
    interpreter, so no other test has read it already."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from llmpulse.processors.config import load_config\n"
        "from llmpulse.processors.pipeline import Enricher\n"
        "enricher = Enricher(load_config(environ={}), batched_scorers=[])\n"
        "before = 'genai_prices.data_snapshot' in sys.modules\n"
        "enricher.load_light()\n"
        "from genai_prices import data_snapshot\n"
        "print(before, data_snapshot._bundled_snapshot.cache_info().currsize)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "1"]  # not read by building the scorer; read by load_light
