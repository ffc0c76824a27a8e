"""Drift sees the tool mix: the share of answers with tool calls, and which tools."""

from __future__ import annotations

import random

import msgspec

from llmpulse.processors.drift import DriftConfig, DriftMonitor, TrafficGenerator
from llmpulse.processors.drift.features import FeatureSet
from llmpulse.schemas import EnrichedCall, ToolCall

FAST = {"window_calls": 100, "window_seconds": None, "reference_calls": 300, "sentiment": False,
        "embeddings": False}


def with_tools(calls: list[EnrichedCall], share: float, tools: list[str], seed: int) -> list[EnrichedCall]:
    """``share`` of the answers call one of ``tools`` (the rest are unchanged)."""
    rng = random.Random(seed)
    out = []
    for call in calls:
        if call.response is not None and rng.random() < share:
            answer = msgspec.structs.replace(call.response, tool_calls=[
                ToolCall(id="call_1", name=rng.choice(tools), arguments='{"order": 42}')])
            call = msgspec.structs.replace(call, response=answer)
        out.append(call)
    return out


def tool_mix_result(window: list[EnrichedCall], reference: list[EnrichedCall]):
    monitor = DriftMonitor(DriftConfig(**FAST))
    assert monitor.observe(reference) == []
    [result] = monitor.observe(window)
    return result, {f.feature: f for f in result.features}


def test_a_rise_in_tool_calls_is_drift_of_the_tool_mix():
    gen = TrafficGenerator(seed=7)
    reference = with_tools(gen.calls(300), 0.1, ["lookup_order"], seed=1)
    window = with_tools(gen.calls(100), 0.5, ["lookup_order"], seed=2)
    result, features = tool_mix_result(window, reference)
    assert features["tool_calls"].test == "chisquare" and features["tool_calls"].drifted
    assert result.drifted


def test_the_same_share_calling_other_tools_is_drift_too_and_unchanged_traffic_is_not():
    gen = TrafficGenerator(seed=8)
    reference = with_tools(gen.calls(300), 0.3, ["lookup_order"], seed=3)
    swapped = with_tools(gen.calls(100), 0.3, ["refund"], seed=4)
    _, features = tool_mix_result(swapped, reference)
    assert features["tool_calls"].drifted
    gen = TrafficGenerator(seed=8)
    reference = with_tools(gen.calls(300), 0.3, ["lookup_order", "refund"], seed=5)
    same = with_tools(gen.calls(100), 0.3, ["lookup_order", "refund"], seed=6)
    _, features = tool_mix_result(same, reference)
    assert not features["tool_calls"].drifted


def test_the_tool_mix_can_be_switched_off():
    assert "tool_calls" not in FeatureSet(DriftConfig(**FAST, tool_mix=False)).categorical
