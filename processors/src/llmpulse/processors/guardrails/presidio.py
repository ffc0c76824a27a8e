"""The ``presidio`` rule kind: Microsoft Presidio's recognizers, in regex-only mode.

Presidio covers more entity types and countries than the built-in ``pii`` detectors,
but costs far more (measured by ``benchmarks/guardrails_pii.py``: ~1-2 ms a text), so it
is not in the default policy. It runs with a blank spaCy pipeline (no model download)
and the public suffix list shipped inside ``tldextract`` (no network).

Example (needs ``pip install 'llmpulse-processors[ml]'``)::

    rules:
      - id: presidio-pii
        kind: presidio
        applies_to: [prompt, response]
        entities: [US_DRIVER_LICENSE, US_PASSPORT, MEDICAL_LICENSE]
        score_threshold: 0.5
        action: flag
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from msgspec import Struct

from llmpulse.processors.errors import missing_dependency
from llmpulse.processors.guardrails.base import Match, Rule, RuleCommon
from llmpulse.schemas import EnrichedCall

__all__ = ["PresidioRule", "regex_only_analyzer"]

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def regex_only_analyzer(language: str = "en") -> Any:
    """A Presidio ``AnalyzerEngine`` with a blank spaCy pipeline: pattern recognizers only.

    Raises:
        ConfigError: presidio-analyzer is not installed (the message has the install line).
    """
    try:
        import spacy
        import tldextract.tldextract as tld
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
    except ImportError:
        raise missing_dependency("presidio-analyzer", "the presidio guardrail rule") from None
    # Presidio validates e-mail domains with tldextract, which fetches the public suffix
    # list from the network by default; use the snapshot it ships instead.
    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    class _BlankSpacy(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {language: spacy.blank(language)}  # type: ignore[assignment]

    engine = _BlankSpacy(models=[{"lang_code": language, "model_name": f"blank:{language}"}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=[language])
    registry.remove_recognizer("SpacyRecognizer")
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language])


class _PresidioParams(Struct, kw_only=True, forbid_unknown_fields=True):
    entities: list[str] | None = None
    """Presidio entity types (``EMAIL_ADDRESS``, ``US_SSN``...); None: every one it knows."""
    score_threshold: float = 0.5
    language: str = "en"


class PresidioRule(Rule):
    """Presidio's pattern recognizers (regex plus checksums and context words)."""

    kind = "presidio"
    Params = _PresidioParams

    def __init__(self, common: RuleCommon, params: _PresidioParams) -> None:
        super().__init__(common, params)
        self.analyzer = regex_only_analyzer(params.language)

    def find(self, text: str, labels: set[str] | None, call: EnrichedCall | None,
             where: str = "prompt") -> list[Match]:
        p = self.params
        results = self.analyzer.analyze(text=text, language=p.language, entities=p.entities,
                                        score_threshold=p.score_threshold)
        results.sort(key=lambda r: r.start)
        return [Match(r.start, r.end, f"[{r.entity_type}: {r.end - r.start} chars]", r.entity_type)
                for r in results]
