"""The usage examples at the top of each public module run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "llmpulse.processors",
    "llmpulse.processors.config",
    "llmpulse.processors.errors",
    "llmpulse.processors.pipeline",
    "llmpulse.processors.scoring",
    "llmpulse.processors.scoring.base",
    "llmpulse.processors.scoring.operations",
    "llmpulse.processors.scoring.quality",
    "llmpulse.processors.scoring.toxicity",
    "llmpulse.processors.scoring.embeddings",
    "llmpulse.processors.scoring.readability",
    "llmpulse.processors.guardrails",
    "llmpulse.schemas.detectors",
    "llmpulse.processors.guardrails.rules",
    "llmpulse.processors.guardrails.policy",
    "llmpulse.processors.drift",
    "llmpulse.processors.drift.baseline",
    "llmpulse.processors.drift.compare",
    "llmpulse.processors.drift.config",
    "llmpulse.processors.drift.cusum",
    "llmpulse.processors.drift.embedding",
    "llmpulse.processors.drift.evaluation",
    "llmpulse.processors.drift.features",
    "llmpulse.processors.drift.monitor",
    "llmpulse.processors.drift.keystate",
    "llmpulse.processors.drift.reference",
    "llmpulse.processors.drift.report",
    "llmpulse.processors.drift.simulate",
    "llmpulse.processors.drift.stats",
    "llmpulse.processors.drift.window",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_example(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
