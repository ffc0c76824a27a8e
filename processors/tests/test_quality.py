"""Quality heuristics, as a user reading the dashboard would expect them."""

from __future__ import annotations

import pytest

from llmpulse.processors.scoring._language import guess_language
from llmpulse.processors.scoring.quality import QualityScorer, expected_length
from llmpulse.schemas import ErrorInfo, ResponseEvent

from .conftest import make_call


def scores(question: str, answer: str | None, **kwargs: object) -> dict[str, object]:
    return {s.name: s for s in QualityScorer().score_one(make_call(question, answer, **kwargs))}


def test_refusals_are_recognised():
    curly = "I'm sorry, but I can\u2019t help with that."
    assert scores("How do I pick a lock?", curly)["refusal"].value == 1.0
    ai = "As an AI language model, I cannot provide medical advice."
    assert scores("Help?", ai)["refusal"].value == 1.0
    assert scores("Refund?", "Sorry for the wait! Your refund was sent today.")["refusal"].value == 0.0


def test_empty_and_truncated_answers():
    empty = scores("Hi", "   ")
    assert empty["empty_answer"].value == 1.0 and empty["refusal"].status == "not_applicable"
    call = make_call("Write an essay", "The history of")
    call.response.finish_reason = "length"
    truncated = {s.name: s for s in QualityScorer().score_one(call)}["truncated"]
    assert truncated.value == 1.0 and truncated.label == "finish_reason=length"
    assert scores("Hi", "Hello! How can I help?")["truncated"].value == 0.0


def test_failed_and_missing_responses_are_not_scored():
    call = make_call("Hi", None)
    assert {s.status for s in QualityScorer().score_one(call)} == {"not_applicable"}
    call.response = ResponseEvent(call_id="c-1", app="shop", latency_ms=3.0, error=ErrorInfo(type="timeout"))
    assert all("timeout" in s.detail for s in QualityScorer().score_one(call))


def test_repetition_of_a_looping_answer():
    looping = "I can help with that. " * 30
    assert scores("Help", looping)["repetition"].value > 0.9
    assert scores("Help", looping)["repetition"].label == "repetitive"
    varied = "Your parcel left the warehouse on Monday and the courier expects to deliver it on Thursday."
    assert scores("Help", varied)["repetition"].value == 0.0


@pytest.mark.parametrize(("prompt", "expected"), [
    ("Summarise this in 3 sentences.", (3, "sentence", "target")),
    ("Answer in under 50 words please", (50, "word", "upper")),
    ("Give me at least five bullet points", (5, "bullet", "lower")),
    ("What is the capital of France?", None),
])
def test_length_the_prompt_asks_for(prompt, expected):
    assert expected_length(prompt) == expected


def test_length_against_expectation():
    long = scores("Explain it in one sentence.", "First. Second. Third. Fourth.")["length_vs_expected"]
    assert long.value == 4.0 and long.label.startswith("too_long")
    ok = scores("Reply in under 10 words.", "Yes, it ships today.")["length_vs_expected"]
    assert ok.label.startswith("ok")
    assert scores("What time is it?", "Noon.")["length_vs_expected"].status == "not_applicable"


def test_json_validity_only_when_json_was_asked_for():
    assert scores("Return the order as JSON.", '{"id": 1}')["json_valid"].value == 1.0
    fenced = scores("Reply with JSON", '```json\n{"id": 1}\n```')["json_valid"]
    assert fenced.value == 1.0 and fenced.label == "fenced"
    assert scores("x", "{id: 1,}", expects_json=True)["json_valid"].value == 0.0
    assert scores("What is the weather?", "Sunny.")["json_valid"].status == "not_applicable"


def test_language_mismatch():
    french_q = "Où est ma commande ? Je l'ai passée lundi et elle n'est pas encore arrivée."
    english_a = "Your order shipped on Tuesday and it should arrive within three business days."
    mismatch = scores(french_q, english_a)["language_mismatch"]
    assert mismatch.value == 1.0 and mismatch.label == "prompt:fr->en"
    same_q = "Where is my order? It has not arrived yet and I am waiting."
    same = scores(same_q, english_a)["language_mismatch"]
    assert same.value == 0.0
    asked = scores("Please answer in German: where is the station in this town?",
                   "Der Bahnhof ist in der Nähe und Sie können zu Fuß gehen, es ist nicht weit.")
    assert asked["language_mismatch"].value == 0.0 and asked["language_mismatch"].label == "requested:de->de"
    assert scores("ok?", "ok")["language_mismatch"].status == "not_applicable"


@pytest.mark.parametrize(("text", "language"), [
    ("Wo ist meine Bestellung? Ich habe sie am Montag aufgegeben und sie ist nicht angekommen.", "de"),
    ("¿Dónde está mi pedido? Lo hice el lunes y no ha llegado todavía a mi casa.", "es"),
    ("我的订单在哪里？我星期一下的单。", "zh"),  # noqa: RUF001
    ("注文はどこですか？月曜日に注文しました。", "ja"),  # noqa: RUF001
    ("def f(x): return x + 1", None),
])
def test_language_guess(text, language):
    assert guess_language(text) == language


def test_the_overall_quality_score_falls_with_each_failed_check() -> None:
    from llmpulse.processors.scoring.quality import QualityScorer
    from llmpulse.schemas import ChatMessage, EnrichedCall, PromptEvent, ResponseEvent

    def overall(text: str, finish: str = "stop") -> float:
        call = EnrichedCall(call_id="c", app="a", prompt=PromptEvent(
            call_id="c", app="a", messages=[ChatMessage(role="user", content="Where is my parcel?")]),
            response=ResponseEvent(call_id="c", app="a", text=text, latency_ms=1.0,
                                   finish_reason=finish))
        return next(s.value for s in QualityScorer().score_one(call) if s.name == "quality")

    good = overall("Your parcel arrives tomorrow before noon.")
    refusal = overall("I'm sorry, but I can't help with that request.")
    cut = overall("Your parcel arrives tomorrow before", finish="length")
    assert good == 1.0 and refusal == 0.5 and cut == 0.7 and overall("") == 0.0
