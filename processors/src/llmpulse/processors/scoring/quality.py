"""Quality heuristics, cheap enough for every call: empty, truncated, refusal, repetition,
length against what the prompt asked for, JSON validity, language mismatch.

Each heuristic is one ``ScoreResult`` (backend ``heuristic``). A value of 1.0 means the
problem is there; ``repetition`` and ``length_vs_expected`` are ratios. Where a heuristic
cannot say (no answer, no length asked for, too few words to tell the language), the
result is ``not_applicable`` with the reason; it never guesses.

Example:
    >>> from llmpulse.processors.scoring.quality import QualityScorer
    >>> from llmpulse.schemas import ChatMessage, EnrichedCall, PromptEvent, ResponseEvent
    >>> p = PromptEvent(call_id="c", app="a", messages=[
    ...     ChatMessage(role="user", content="Describe the refund rules in 2 sentences.")])
    >>> r = ResponseEvent(call_id="c", app="a", latency_ms=90.0,
    ...     text="I'm sorry, but I can't help with that request.")
    >>> scores = QualityScorer().score_one(EnrichedCall(call_id="c", app="a", prompt=p, response=r))
    >>> {s.name: s.value for s in scores if s.status == "ok"}["refusal"]
    1.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from llmpulse.processors.config import BatchSettings, QualityConfig
from llmpulse.processors.scoring._language import guess_language, requested_language
from llmpulse.processors.scoring.base import last_user_text, not_applicable, shared_result
from llmpulse.schemas import EnrichedCall, PromptEvent, ScoreResult

__all__ = ["JSON_FENCE", "QualityScorer", "asks_for_json", "expected_length"]

_REFUSAL_HINTS = ("sorry", "can't", "cannot", "unable", "as an ai", "won't", "not able", "decline",
                  "refuse", "not allowed", "not permitted", "against my", "violates")
_REFUSAL = re.compile(
    r"\bi(?:'m| am) (?:sorry|afraid)\b[^.!?\n]{0,60}\b(?:can't|cannot|can not|unable|won't|not able)"
    r"|\bi (?:can't|cannot|can not|won't|will not|am unable to|'m unable to|am not able to"
    r"|'m not able to) (?:help|assist|provide|comply|do that|fulfil|fulfill|answer|share|create"
    r"|generate|discuss|support|write|give)"
    r"|\bas an ai(?: language model| assistant)?,? i (?:can't|cannot|don't|do not|am not)"
    r"|\bi(?:'m| am) not (?:allowed|permitted) to"
    r"|\b(?:this|that|your) request (?:violates|goes against)"
    r"|\bi must (?:decline|refuse)"
)
_NUMBERS = {"one": 1, "a single": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5,
            "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "fifty": 50,
            "a hundred": 100, "hundred": 100}
_UNITS = ("word", "sentence", "paragraph", "line", "bullet", "point")
_LENGTH = re.compile(
    r"\b(?:(under|within|at most|no more than|not more than|less than|fewer than|maximum(?: of)?"
    r"|max\.?|up to|at least|no less than|minimum(?: of)?|about|around|roughly|exactly)\s+)?"
    r"(\d{1,4}|" + "|".join(_NUMBERS) + r")[\s-]+"
    r"(words?|sentences?|paragraphs?|lines?|bullet(?:[\s-]?points?)?|bullets|points)\b",
    re.IGNORECASE,
)
_UPPER = {"under", "within", "at most", "no more than", "not more than", "less than", "fewer than",
          "maximum", "maximum of", "max", "max.", "up to"}
_LOWER = {"at least", "no less than", "minimum", "minimum of"}
_JSON_ASK = re.compile(r"\b(?:json)\b", re.IGNORECASE)
JSON_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n?```\s*$", re.DOTALL)
_SENTENCE_END = re.compile("[.!?\u3002\uff01\uff1f]+(?:\\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)


def expected_length(prompt_text: str) -> tuple[int, str, str] | None:
    """The length a prompt asks for: ``(count, unit, bound)`` with bound ``upper``,
    ``lower`` or ``target``; None when it asks for none."""
    lowered = prompt_text.lower()
    if not any(unit in lowered for unit in _UNITS):
        return None
    match = _LENGTH.search(prompt_text)
    if match is None:
        return None
    qualifier = (match.group(1) or "").lower()
    raw = match.group(2).lower()
    count = int(raw) if raw.isdigit() else _NUMBERS[raw]
    unit = match.group(3).lower()
    unit = "bullet" if unit.startswith(("bullet", "point")) else unit.rstrip("s")
    bound = "upper" if qualifier in _UPPER else "lower" if qualifier in _LOWER else "target"
    return (count, unit, bound) if count > 0 else None


def _measure(text: str, unit: str) -> int:
    if unit == "word":
        return len(text.split())
    if unit == "sentence":
        return max(1, len(_SENTENCE_END.findall(text.strip() + " ")))
    if unit == "paragraph":
        return len([p for p in re.split(r"\n\s*\n", text) if p.strip()])
    if unit == "bullet":
        return len(_BULLET.findall(text))
    return len([line for line in text.splitlines() if line.strip()])


def asks_for_json(prompt: PromptEvent | None) -> bool:
    """Whether the prompt asked for a JSON answer (``expects_json``, or says "JSON")."""
    if prompt is None:
        return False
    if prompt.expects_json:
        return True
    for message in prompt.messages:
        content = message.content
        if message.role in ("system", "user", "developer") and (
                "json" in content or "JSON" in content or "Json" in content):
            return _JSON_ASK.search(content) is not None
    return False


class QualityScorer:
    """The light quality heuristics of one call."""

    name = "quality"
    version = "1"
    produces = ("empty_answer", "truncated", "refusal", "repetition", "length_vs_expected",
                "json_valid", "language_mismatch", "quality")
    batching: BatchSettings | None = None
    backend = "heuristic"

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()

    def score(self, calls: Sequence[EnrichedCall]) -> list[list[ScoreResult]]:
        """Score each call (light: no batching needed)."""
        return [self.score_one(call) for call in calls]

    def _ok(self, name: str, value: float, label: str | None = None) -> ScoreResult:
        if value == 0.0 or value == 1.0:
            return shared_result(name, self.version, self.backend, value, label)
        return ScoreResult(name=name, scorer_version=self.version, backend=self.backend,
                           value=value, label=label)

    def _na(self, name: str, why: str) -> ScoreResult:
        return not_applicable(name, self.version, self.backend, why)

    def score_one(self, call: EnrichedCall) -> list[ScoreResult]:
        """The quality scores of one call."""
        response = call.response
        if response is None or response.error is not None:
            why = (f"the call failed ({response.error.type})" if response is not None and response.error
                   else f"no response ({call.incomplete_reason or 'missing'})")
            return [self._na(name, why) for name in self.produces]
        text = response.text or ""
        if not text.strip():
            results = [self._ok("empty_answer", 1.0, "empty")]
            results.append(self._truncated(call))
            results.extend(self._na(n, "empty answer") for n in self.produces[2:-1])
            results.append(ScoreResult(name="quality", scorer_version=self.version,
                                       backend=self.backend, value=0.0, label="empty"))
            return results
        question = last_user_text(call.prompt)
        parts = [
            self._ok("empty_answer", 0.0),
            self._truncated(call),
            self._refusal(text),
            self._repetition(text),
            self._length(question, text),
            self._json(call.prompt, text),
            self._language(question, text),
        ]
        return [*parts, self._overall(parts)]

    # How much each failed check takes off the overall score (a heuristic, documented in
    # processors/README.md): an answer that passes every check scores 1.
    _PENALTY = {"truncated": 0.3, "refusal": 0.5, "repetition": 0.5, "json_valid": 0.4,
                "language_mismatch": 0.4}

    def _overall(self, parts: list[ScoreResult]) -> ScoreResult:
        """``quality`` in [0, 1]: 1 minus the penalties of the checks that failed."""
        score = 1.0
        for part in parts:
            if part.status != "ok" or part.value is None:
                continue
            if part.name == "json_valid":
                score -= self._PENALTY["json_valid"] * (1.0 - part.value)
            elif part.name == "length_vs_expected":
                score -= 0.2 if part.label in {"too_long", "too_short"} else 0.0
            elif part.name in self._PENALTY:
                score -= self._PENALTY[part.name] * part.value
        return ScoreResult(name="quality", scorer_version=self.version, backend=self.backend,
                           value=round(max(0.0, min(1.0, score)), 4))

    def _truncated(self, call: EnrichedCall) -> ScoreResult:
        response = call.response
        assert response is not None
        reason = (response.finish_reason or "").lower()
        if reason in ("length", "max_tokens", "max_output_tokens"):
            return self._ok("truncated", 1.0, f"finish_reason={reason}")
        prompt = call.prompt
        usage = response.usage
        if prompt is not None and prompt.max_tokens and usage is not None \
                and usage.output_tokens >= prompt.max_tokens:
            return self._ok("truncated", 1.0, "max_tokens_reached")
        return self._ok("truncated", 0.0)

    def _refusal(self, text: str) -> ScoreResult:
        head = text[:240].lower().replace("\u2019", "'")
        if any(hint in head for hint in _REFUSAL_HINTS) and _REFUSAL.search(head):
            return self._ok("refusal", 1.0, "refusal")
        return self._ok("refusal", 0.0)

    def _repetition(self, text: str) -> ScoreResult:
        n = self.config.repetition_ngram
        words = text.lower().split()[-300:]
        if len(words) < n + 4:
            return self._na("repetition", f"fewer than {n + 4} words")
        grams = zip(words, words[1:], words[2:]) if n == 3 else zip(*[words[i:] for i in range(n)])  # noqa: B905
        ratio = 1.0 - len(set(grams)) / (len(words) - n + 1)
        label = "repetitive" if ratio >= self.config.repetition_threshold else None
        return self._ok("repetition", ratio, label)

    def _length(self, question: str, text: str) -> ScoreResult:
        asked = expected_length(question) if question else None
        if asked is None:
            return self._na("length_vs_expected", "the prompt asks for no length")
        count, unit, bound = asked
        ratio = _measure(text, unit) / count
        label = "ok"
        if (ratio > self.config.long_ratio and bound != "lower") or (bound == "upper" and ratio > 1.0):
            label = "too_long"
        elif (ratio < self.config.short_ratio and bound != "upper") or (bound == "lower" and ratio < 1.0):
            label = "too_short"
        return self._ok("length_vs_expected", ratio, f"{label}:{count} {unit}s")

    def _json(self, prompt: PromptEvent | None, text: str) -> ScoreResult:
        if not asks_for_json(prompt):
            return self._na("json_valid", "the prompt did not ask for JSON")
        body, label = text, None
        fenced = JSON_FENCE.match(text)
        if fenced:
            body, label = fenced.group(1), "fenced"
        try:
            msgspec.json.decode(body)
        except msgspec.DecodeError:
            return self._ok("json_valid", 0.0, "invalid")
        return self._ok("json_valid", 1.0, label)

    def _language(self, question: str, text: str) -> ScoreResult:
        min_words = self.config.min_language_words
        expected = requested_language(question)
        source = "requested"
        if expected is None:
            expected, source = guess_language(question, min_words=min_words), "prompt"
        if expected is None:
            return self._na("language_mismatch", "the prompt's language is unclear")
        answered = guess_language(text, min_words=min_words)
        if answered is None:
            return self._na("language_mismatch", "the answer's language is unclear")
        mismatch = 1.0 if answered != expected else 0.0
        return self._ok("language_mismatch", mismatch, f"{source}:{expected}->{answered}")
