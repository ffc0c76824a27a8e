"""Readability by textstat, with the CMU dictionary from the cmudict package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmpulse.processors.scoring.readability import ReadabilityScorer

from .conftest import make_call


def test_plain_answers_read_easier_than_jargon():
    pytest.importorskip("textstat")
    easy = "The cat sat on the mat. It was warm. The cat was happy."
    hard = ("Notwithstanding the aforementioned considerations, organisational restructuring "
            "necessitates comprehensive reevaluation of institutional responsibilities.")
    scored = ReadabilityScorer().score([make_call("q", easy), make_call("q", hard), make_call("q", "Yes.")])
    (e,), (h,), (short,) = scored
    assert e.value > 90 > 0 > h.value
    assert e.label == "en:very_easy" and h.label == "en:very_difficult"
    assert short.status == "not_applicable"


def test_textstat_never_asks_nltk_to_download():
    pytest.importorskip("textstat")
    code = ("import sys; from llmpulse.processors.scoring.readability import textstat_with_cmudict;"
            "f = textstat_with_cmudict(); print(round(f('Reading is fun for all of us.', 'en_US'), 1),"
            " 'nltk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    value, nltk_loaded = out.stdout.split()
    assert float(value) > 80 and nltk_loaded == "False"
