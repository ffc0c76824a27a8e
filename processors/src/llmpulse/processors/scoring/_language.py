"""A small, fast language guess: the script, then common words for Latin-script languages.

Good enough to say "the user wrote French and the answer is English"; it answers None
rather than guess on short or mixed text. Costs ~10 us for a paragraph.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["LANGUAGE_NAMES", "guess_language", "requested_language"]

_COMMON_WORDS = {
    "en": "the and is are was were to of in that it you your for on with this be have has not "
          "what how can do does i we they there which would should will from at by an or if",
    "fr": "le la les et est sont de des du un une que qui pour pas dans vous nous je il elle "
          "sur avec ce cette au aux ne mais ou leur votre est-ce c'est très aussi",
    "de": "der die das und ist sind nicht ein eine einen zu den mit von sie es ich wir ihr auf "
          "für dem des sich auch wie bitte oder aber wird werden kann können",
    "es": "el la los las y es son de que en un una por para con no se su al lo como pero más "
          "está usted esto muy también del sus hay puede",
    "it": "il lo la gli le e è di che un una per non con sono del della si ma come anche "
          "questo questa nel alla delle sua può più",
    "pt": "o a os as e é de que em um uma para com não se do da por mais como mas você são "
          "isso pode muito também dos das nos",
    "nl": "de het een en is zijn van dat niet op te met voor je ik wij ze maar ook kan dit "
          "wordt worden naar bij",
}
_LANGS = tuple(_COMMON_WORDS)
# Each common word maps to one int holding an 8-bit counter per language it belongs to, so
# summing the ints of a text's words counts every language at once (in C, not in a loop).
_PACKED: dict[str, int] = {}
for _i, _words in enumerate(_COMMON_WORDS.values()):
    for _word in set(_words.split()):
        _PACKED[_word] = _PACKED.get(_word, 0) + (1 << (8 * _i))
_ALL_COMMON = frozenset(_PACKED)

LANGUAGE_NAMES = {
    "english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "chinese": "zh", "japanese": "ja", "korean": "ko",
    "russian": "cyrl", "ukrainian": "cyrl", "arabic": "ar", "hebrew": "he", "greek": "el",
    "hindi": "hi", "thai": "th",
}
"""Language names a prompt may ask for, and the label ``guess_language`` gives them."""

_SCRIPTS = (  # (first, last, label); Han is decided after kana (Japanese uses both)
    (0x3040, 0x30FF, "ja"), (0xAC00, 0xD7AF, "ko"), (0x1100, 0x11FF, "ko"),
    (0x4E00, 0x9FFF, "zh"), (0x0400, 0x04FF, "cyrl"), (0x0600, 0x06FF, "ar"),
    (0x0590, 0x05FF, "he"), (0x0370, 0x03FF, "el"), (0x0900, 0x097F, "hi"),
    (0x0E00, 0x0E7F, "th"),
)
_NON_LATIN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u0e00-\u0e7f"
                        r"\u1100-\u11ff\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
_REQUEST = re.compile(
    r"\b(?:answer|respond|reply|write|speak|translate|rewrite|explain)\b[^.?!\n]{0,40}?"
    r"\b(?:in|into)\s+(" + "|".join(LANGUAGE_NAMES) + r")\b",
    re.IGNORECASE,
)


def _script(sample: str) -> str | None:
    counts: Counter[str] = Counter()
    letters = 0
    for ch in sample:
        code = ord(ch)
        if code < 0x370:
            letters += ch.isalpha()
            continue
        for first, last, label in _SCRIPTS:
            if first <= code <= last:
                counts[label] += 1
                break
    if not counts:
        return None
    label, count = counts.most_common(1)[0]
    if label == "zh" and counts.get("ja", 0) >= max(2, count // 10):
        label, count = "ja", count + counts["ja"]
    return label if count >= letters else None


def guess_language(text: str, *, min_words: int = 5) -> str | None:
    """Guess the language of ``text``: an ISO 639-1 code, a script label, or None.

    Latin-script text is told apart by its common words (en, fr, de, es, it, pt, nl);
    other scripts are named by the script (``zh``, ``ja``, ``ko``, ``ar``, ``cyrl``...).
    """
    sample = text[:200]
    if not sample.isascii() and _NON_LATIN.search(sample):
        label = _script(sample)
        if label is not None:
            return label
    words = sample.lower().split()  # words before punctuation are lost: few are common words
    if len(words) < min_words:
        return None
    distinct = set(words)
    total = sum(map(_PACKED.__getitem__, distinct & _ALL_COMMON))
    if not total:
        return None
    best, hits, second = "", 0, 0
    for i, lang in enumerate(_LANGS):
        n = (total >> (8 * i)) & 0xFF
        if n > hits:
            best, hits, second = lang, n, hits
        elif n > second:
            second = n
    if hits < 2 or hits < 0.12 * len(distinct) or hits < 1.5 * second:
        return None
    return best


def requested_language(prompt_text: str) -> str | None:
    """The language a prompt asks the answer to be in (``answer in French``), if any."""
    lowered = prompt_text.lower()
    if not any(name in lowered for name in LANGUAGE_NAMES):
        return None
    match = _REQUEST.search(prompt_text)
    return LANGUAGE_NAMES[match.group(1).lower()] if match else None
