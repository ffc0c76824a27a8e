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
]


@pytest.mark.parametrize("name", MODULES)
def test_module_example(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
