"""Latency, tokens and cost from the price table."""

from __future__ import annotations

import pytest

from llmpulse.processors.config import OperationsConfig
from llmpulse.processors.errors import ConfigError
from llmpulse.processors.scoring.operations import OperationsScorer, PriceTable
from llmpulse.schemas import TokenUsage

from .conftest import make_call


def by_name(scorer: OperationsScorer, call) -> dict[str, object]:
    return {s.name: s for s in scorer.score_one(call)}


def test_cost_from_the_price_table_with_cached_tokens():
    call = make_call("hi", "hello")
    call.response.usage = TokenUsage(input_tokens=2000, output_tokens=1000, cached_input_tokens=1000)
    call.response.response_model = "gpt-4o-mini-2024-07-18"
    cost = by_name(OperationsScorer(), call)["cost_usd"]
    assert cost.value == pytest.approx((1000 * 0.15 + 1000 * 0.075 + 1000 * 0.60) / 1e6)
    assert cost.label == "gpt-4o-mini" and cost.backend.startswith("price-table:2025-06")


def test_reported_cost_wins_and_unknown_models_get_no_cost():
    call = make_call("hi", "hello")
    call.response.cost_usd = 0.5
    assert by_name(OperationsScorer(), call)["cost_usd"].backend == "reported"
    call = make_call("hi", "hello")
    call.request_model = "my-own-llm"
    call.response.request_model = None
    cost = by_name(OperationsScorer(), call)["cost_usd"]
    assert cost.status == "unavailable" and cost.value is None and "my-own-llm" in cost.detail


def test_a_user_price_file_extends_and_overrides(tmp_path):
    extra = tmp_path / "prices.yaml"
    extra.write_text("version: acme-1\nmodels:\n  my-own-llm: {input: 1.0, output: 2.0}\n"
                     "  gpt-4o-mini: {input: 9.0, output: 9.0}\n")
    scorer = OperationsScorer(OperationsConfig(prices=[str(extra)]))
    assert scorer.prices.version == "2025-06+acme-1"
    assert scorer.prices.lookup("my-own-llm").cost(input_tokens=1_000_000, output_tokens=0) == 1.0
    assert scorer.prices.lookup("openai/gpt-4o-mini").input == 9.0
    assert scorer.prices.lookup("gpt-4o").input == 2.5  # the shipped entries stay


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
