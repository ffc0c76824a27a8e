"""Generated LLM traffic with a known truth, and shifts to inject: for tests, benchmarks, demos.

``TrafficGenerator`` writes a support bot's calls (questions about orders, RAG context on
some, refusals, a little toxicity, feedback), deterministic for a seed. A shift changes
what it writes from the next call on:

- ``longer_answers``: answers about twice as long;
- ``topic_change``: users ask about programming instead of orders;
- ``toxicity_up``: a quarter of the answers are abusive (toxicity scores and texts);
- ``relevance_down``: half the answers miss the question (relevance and groundedness drop);
- ``language_change``: questions and answers in French;
- ``errors_up``: a fifth of the calls fail; ``refusals_up``: 30% of the answers refuse
  (3% before); ``feedback_collapse``: half the thumbs go down.

A partial shift sends only a ``share`` of the calls through it (one customer segment, one
locale, a model update that misbehaves on some inputs). ``locale_cycle=(low, high)`` makes
traffic whose mix follows the hour of the day: French questions are ``low`` of the calls at
08:00 UTC and ``high`` at 20:00 (a cosine in between), with no shift at all.

``calls()`` returns ``EnrichedCall`` with simulated scores (no model needed); ``pairs()``
returns the raw prompt and response events, to run through the real ``Enricher``.

Example:
    >>> from llmpulse.processors.drift.simulate import TrafficGenerator
    >>> gen = TrafficGenerator(seed=7)
    >>> calls = gen.calls(3)
    >>> [c.prompt_id for c in calls], calls[0].scores[0].name
    (['support-answer', 'support-answer', 'support-answer'], 'toxicity')
    >>> fr = gen.calls(1, shift="language_change")[0]
    >>> fr.prompt.messages[-1].content.startswith(("Où", "Comment", "Mon", "Quand"))
    True
    >>> some = gen.calls(1000, shift="errors_up", share=0.3)
    >>> 0.03 < sum(c.response.error is not None for c in some) / 1000 < 0.1
    True
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Literal

from llmpulse.processors.pipeline import CallPair, join
from llmpulse.schemas import (
    ChatMessage,
    EnrichedCall,
    ErrorInfo,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    ScoreResult,
    TokenUsage,
)

__all__ = ["DRIFT_SHIFTS", "RATE_SHIFTS", "SHIFTS", "Shift", "TrafficGenerator"]

Shift = Literal["longer_answers", "topic_change", "toxicity_up", "relevance_down", "language_change",
                "errors_up", "refusals_up", "feedback_collapse"]
SHIFTS: tuple[str, ...] = ("longer_answers", "topic_change", "toxicity_up", "relevance_down",
                           "language_change", "errors_up", "refusals_up", "feedback_collapse")
DRIFT_SHIFTS: tuple[str, ...] = SHIFTS[:5]
"""The shifts of the first detection criterion (whole traffic, within two windows)."""
RATE_SHIFTS: tuple[str, ...] = ("toxicity_up", "errors_up", "refusals_up")
"""Shifts of a rare event's rate: detected at a share of 0.1 within five windows."""

_ITEMS = ("shoes", "jacket", "lamp", "blender", "backpack", "headphones", "chair", "kettle")
_DAYS = ("yesterday", "last week", "on Monday", "two days ago", "on Friday")
_ORDERS = (
    ("Where is my order? It was supposed to arrive {day}.",
     ["Your order left our warehouse and is on its way.", "The parcel is with the courier and "
      "should reach you within two working days.", "Tracking shows the package at your local depot."]),
    ("How can I return the {item} I bought {day}?",
     ["You can return the {item} within thirty days from your account page.", "Print the free "
      "return label and drop the {item} at any post office.", "Returns are free: start one under "
      "My Orders and pack the {item} in its box."]),
    ("My {item} arrived damaged, what should I do?",
     ["I am sorry about the damaged {item}; we will send a replacement today.", "Please upload a "
      "photo of the {item} and we will refund you at once.", "We can replace the {item} or refund "
      "it, whichever you prefer."]),
    ("When will I get the refund for the {item}?",
     ["Refunds reach your card three to five days after we receive the {item}.", "Your refund for "
      "the {item} was approved and is on its way.", "The refund is issued as soon as the {item} "
      "is checked at our warehouse."]),
    ("Can I change the delivery address of the order I placed {day}?",
     ["Yes, you can change the address until the order ships.", "The order has not shipped yet, "
      "so I updated the address for you.", "Open the order page and choose a new delivery address."]),
    ("I was charged twice for the {item}, can you help?",
     ["I see two charges for the {item}; the second one will be cancelled.", "The duplicate charge "
      "is a pending hold and will disappear within a few days.", "I have refunded the extra charge "
      "for the {item} to your card."]),
)
_CLOSERS = ("Is there anything else I can help with?", "Thank you for shopping with us.",
            "Let me know if you have other questions.", "Have a great day!")
_MORE = ("You will receive an email with every update, and you can follow each step of the process "
         "from your account page at any time.", "If anything goes wrong, our support team is available "
         "every day from eight in the morning until eight in the evening by chat or by phone.")
_CODING = (
    ("How do I read a {thing} file in Python?",
     ["Use the built-in open function and parse the {thing} with the standard library module.",
      "The pandas library reads a {thing} file into a dataframe with one function call."]),
    ("Why does my {thing} parser raise a KeyError?",
     ["A KeyError means the key is missing; check the {thing} input with the get method first.",
      "Print the keys of the parsed {thing} object to see which field is absent."]),
    ("What is the fastest way to sort a list of {thing} records?",
     ["Call sorted with a key function; it runs in n log n time on {thing} records.",
      "Use list.sort with operator.itemgetter to sort the {thing} records in place."]),
    ("How can I write unit tests for my {thing} exporter?",
     ["Write pytest functions that export a small {thing} sample and compare the output.",
      "Use a temporary directory fixture and assert on the exported {thing} content."]),
)
_THINGS = ("CSV", "JSON", "YAML", "XML", "Parquet", "TOML")
_FRENCH = (
    ("Où est ma commande ? Elle devait arriver {day}.",
     ["Votre commande a quitté notre entrepôt et elle est en route.", "Le colis est chez le "
      "transporteur et devrait arriver dans deux jours ouvrés."]),
    ("Comment puis-je retourner {item} acheté {day} ?",
     ["Vous pouvez retourner {item} sous trente jours depuis votre compte.", "Imprimez "
      "l'étiquette de retour gratuite et déposez {item} au bureau de poste."]),
    ("Mon colis est arrivé abîmé, que dois-je faire ?",
     ["Nous sommes désolés, nous vous envoyons un remplacement aujourd'hui.", "Envoyez-nous une "
      "photo et nous vous rembourserons tout de suite."]),
    ("Quand vais-je recevoir le remboursement pour {item} ?",
     ["Le remboursement arrive sur votre carte trois à cinq jours après réception.", "Votre "
      "remboursement a été approuvé et il est en cours."]),
)
_ITEMS_FR = ("les chaussures", "la veste", "la lampe", "le mixeur", "le sac à dos", "le casque")
_DAYS_FR = ("hier", "la semaine dernière", "lundi", "il y a deux jours")
_CLOSERS_FR = ("Puis-je vous aider pour autre chose ?", "Merci pour votre achat.",
               "Bonne journée à vous !")
_TOXIC = ("Figure it out yourself, you idiot. Stop wasting my time with stupid questions.",
          "What a pathetic question. Only a moron would lose their own parcel.",
          "Shut up and read the stupid website like everyone else, you useless fool.",
          "You are too dumb to be helped. Go away and stop whining.")
_OFF_TOPIC = ("Our spring collection features bright colours and new fabrics.",
              "Did you know we opened three new stores downtown this year?",
              "Subscribe to our newsletter to get the latest fashion tips.",
              "The weather is lovely this time of year for a walk in the park.")
_REFUSALS = ("I'm sorry, but I can't help with that request.",
             "I'm afraid I cannot assist with this. Please contact a human agent.")
_DOC = "Returns are accepted within 30 days. Refunds take 3 to 5 business days. Shipping is free."


class TrafficGenerator:
    """A deterministic source of one prompt version's traffic.

    Args:
        seed: the random seed (same seed, same traffic).
        app, environment, prompt_id, prompt_version, model: the key of every call.
        start: the first call's time.
        calls_per_second: mean arrival rate (exponential gaps).
        feedback_rate: share of calls that get thumbs (half of those also a rating).
        locale_cycle: ``(low, high)``: the share of French questions follows the hour of
            the day, ``low`` at 08:00 UTC, ``high`` at 20:00 (None: English only).
    """

    def __init__(self, *, seed: int = 0, app: str = "support-bot", environment: str = "production",
                 prompt_id: str = "support-answer", prompt_version: str = "1", model: str = "gpt-4o-mini",
                 start: datetime = datetime(2025, 1, 6, 9, 0, tzinfo=UTC), calls_per_second: float = 1.0,
                 feedback_rate: float = 0.3, locale_cycle: tuple[float, float] | None = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.app, self.environment, self.model = app, environment, model
        self.prompt_id, self.prompt_version = prompt_id, prompt_version
        self.now = start
        self.rate = calls_per_second
        self.feedback_rate = feedback_rate
        self.locale_cycle = locale_cycle
        self.count = 0

    def locale_share(self, when: datetime) -> float:
        """The share of French questions at this time (0 without ``locale_cycle``)."""
        if self.locale_cycle is None:
            return 0.0
        low, high = self.locale_cycle
        hours = when.hour + when.minute / 60 + when.second / 3600
        return low + (high - low) * (1 + math.cos(2 * math.pi * (hours - 20) / 24)) / 2

    def _texts(self, shift: str | None) -> tuple[str, str, dict[str, bool]]:
        rng = self.rng
        truth = {"toxic": False, "off_topic": False, "refusal": False}
        if shift == "language_change":
            question, answers = rng.choice(_FRENCH)
            fill = {"item": rng.choice(_ITEMS_FR), "day": rng.choice(_DAYS_FR)}
            answer = f"{rng.choice(answers)} {rng.choice(_CLOSERS_FR)}"
        elif shift == "topic_change":
            question, answers = rng.choice(_CODING)
            fill = {"thing": rng.choice(_THINGS)}
            answer = f"{rng.choice(answers)} {rng.choice(_CLOSERS)}"
        else:
            question, answers = rng.choice(_ORDERS)
            fill = {"item": rng.choice(_ITEMS), "day": rng.choice(_DAYS)}
            answer = f"{rng.choice(answers)} {rng.choice(_CLOSERS)}"
            if shift == "longer_answers":
                answer = f"{rng.choice(answers)} {_MORE[0]} {_MORE[1]} {rng.choice(_CLOSERS)}"
        toxic_share = 0.25 if shift == "toxicity_up" else 0.01
        off_share = 0.5 if shift == "relevance_down" else 0.02
        refusal_share = 0.3 if shift == "refusals_up" else 0.03
        roll = rng.random()
        if roll < toxic_share:
            answer, truth["toxic"] = rng.choice(_TOXIC), True
        elif roll < toxic_share + off_share:
            answer, truth["off_topic"] = rng.choice(_OFF_TOPIC), True
        elif roll < toxic_share + off_share + refusal_share:
            answer, truth["refusal"] = rng.choice(_REFUSALS), True
        return question.format(**fill), answer.format(**fill), truth

    def _one(self, shift: str | None, share: float = 1.0) -> tuple[CallPair, dict[str, bool], bool]:
        rng = self.rng
        self.now += timedelta(seconds=rng.expovariate(self.rate))
        self.count += 1
        call_id = f"sim-{self.seed}-{self.count}"
        if shift is not None and share < 1.0 and rng.random() >= share:
            shift = None  # this call is outside the shifted slice
        texts = shift
        if self.locale_cycle is not None and shift is None and rng.random() < self.locale_share(self.now):
            texts = "language_change"  # the evening's locale, not a shift
        question, answer, truth = self._texts(texts)
        rag = rng.random() < 0.4
        common = {"call_id": call_id, "app": self.app, "environment": self.environment,
                  "prompt_id": self.prompt_id, "prompt_version": self.prompt_version,
                  "request_model": self.model, "occurred_at": self.now}
        prompt = PromptEvent(**common, messages=[  # type: ignore[arg-type]
            ChatMessage(role="system", content="You are a helpful shop assistant."),
            ChatMessage(role="user", content=question)],
            retrieved_context=[RetrievedDocument(id="policy", content=_DOC)] if rag else [])
        failed = rng.random() < (0.2 if shift == "errors_up" else 0.01)
        latency = rng.lognormvariate(6.5, 0.35)
        if failed:
            response = ResponseEvent(**common, latency_ms=latency,  # type: ignore[arg-type]
                                     error=ErrorInfo(type="RateLimitError", message="429 Too Many Requests"))
        else:
            usage = TokenUsage(input_tokens=40 + len(question) // 4, output_tokens=len(answer) // 4)
            response = ResponseEvent(**common, text=answer, latency_ms=latency,  # type: ignore[arg-type]
                                     finish_reason="stop", usage=usage)
        truth = {**truth, "rag": rag, "shifted": shift is not None}
        return CallPair(prompt=prompt, response=response), truth, failed

    def pairs(self, n: int, shift: str | None = None, share: float = 1.0) -> list[CallPair]:
        """``n`` raw prompt/response pairs (for the real enricher)."""
        return [self._one(shift, share)[0] for _ in range(n)]

    def calls(self, n: int, shift: str | None = None, share: float = 1.0) -> list[EnrichedCall]:
        """``n`` enriched calls with simulated scores and guardrail verdicts."""
        return self.traffic(n, shift, share)[0]

    def traffic(self, n: int, shift: str | None = None, share: float = 1.0
                ) -> tuple[list[EnrichedCall], list[FeedbackEvent]]:
        """``n`` enriched calls and the feedback some of them got; ``share``: the share of
        the calls that go through ``shift`` (each call drawn at random)."""
        calls, feedback = [], []
        for _ in range(n):
            pair, truth, failed = self._one(shift, share)
            call = join(pair)
            if not failed:
                call.scores = self._scores(truth)
                if truth["toxic"]:
                    call.verdicts = [GuardrailVerdict(
                        call_id=call.call_id, app=call.app, environment=call.environment,
                        prompt_id=call.prompt_id, prompt_version=call.prompt_version,
                        request_model=call.request_model, occurred_at=call.occurred_at,
                        rule_id="toxicity-response", rule_kind="score", applies_to="response",
                        severity="high", action="flag", policy_version="sim")]
            call.processed_at = call.occurred_at
            calls.append(call)
            event = self._feedback(call, truth, failed, shift if truth["shifted"] else None)
            if event is not None:
                feedback.append(event)
        return calls, feedback

    def _scores(self, truth: dict[str, bool]) -> list[ScoreResult]:
        rng = self.rng

        def score(name: str, value: float) -> ScoreResult:
            return ScoreResult(name=name, scorer_version="sim", backend="simulated",
                               value=round(min(1.0, max(-1.0, value)), 6))

        bad = truth["off_topic"] or truth["toxic"]
        scores = [score("toxicity", rng.betavariate(6, 2) if truth["toxic"] else rng.betavariate(1.2, 40)),
                  score("relevance", rng.gauss(0.25 if bad else 0.62, 0.08)),
                  score("refusal", 1.0 if truth["refusal"] else 0.0)]
        if truth["rag"]:
            scores.append(score("groundedness", rng.gauss(0.3 if bad else 0.68, 0.09)))
        else:
            scores.append(ScoreResult(name="groundedness", scorer_version="sim", backend="simulated",
                                      status="not_applicable", detail="no retrieved context"))
        return scores

    def _feedback(self, call: EnrichedCall, truth: dict[str, bool], failed: bool,
                  shift: str | None) -> FeedbackEvent | None:
        rng = self.rng
        if rng.random() >= self.feedback_rate:
            return None
        bad = failed or truth["toxic"] or truth["off_topic"] or truth["refusal"]
        p_down = 0.6 if bad else 0.1
        if shift == "feedback_collapse":
            p_down = max(p_down, 0.5)
        down = rng.random() < p_down
        rating = None
        if rng.random() < 0.5:
            rating = rng.choice((1, 2)) if down else rng.choice((3, 4, 4, 5, 5))
        return FeedbackEvent(call_id=call.call_id, app=call.app, environment=call.environment,
                             occurred_at=call.occurred_at + timedelta(seconds=rng.uniform(5, 60)),
                             thumbs="down" if down else "up", rating=rating)
