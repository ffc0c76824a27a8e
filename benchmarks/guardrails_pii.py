"""Personal-data detection: llmpulse's detectors against Presidio in regex-only mode.

Both run on the same labelled texts: the speed (texts per second, and the ratio) and
what each finds of the labelled items (recall) and besides them (extra findings).
Presidio runs with a blank spaCy pipeline (no model) and its pattern recognizers.
Prints JSON.

    uv run python benchmarks/guardrails_pii.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import time

from llmpulse.processors.guardrails.presidio import regex_only_analyzer
from llmpulse.schemas.detectors import find_pii

# (template, item, our kind, Presidio entity)
ITEMS = [
    ("Please mail the invoice to {} today.", "jane.doe@example.com", "email", "EMAIL_ADDRESS"),
    ("You can reach me on {} after six.", "+44 20 7946 0958", "phone", "PHONE_NUMBER"),
    ("Charge it to {} please.", "4111 1111 1111 1111", "credit_card", "CREDIT_CARD"),
    ("My IBAN is {} for the refund.", "DE89 3704 0044 0532 0130 00", "iban", "IBAN_CODE"),
    ("My social security number is {}.", "536-22-8470", "national_id", "US_SSN"),
    ("The request came from {} this morning.", "81.2.69.142", "ip_address", "IP_ADDRESS"),
]
FILLER = ("Thanks for getting back to me so quickly. The parcel arrived but the jacket is the wrong "
          "size, so I would like to exchange it for a medium. ")
ENTITIES = sorted({item[3] for item in ITEMS})


def corpus(n: int, seed: int = 3) -> list[tuple[str, str | None, str | None]]:
    rng = random.Random(seed)
    out: list[tuple[str, str | None, str | None]] = []
    for i in range(n):
        if i % 3 == 0:
            template, item, ours, theirs = rng.choice(ITEMS)
            out.append((FILLER + template.format(item), ours, theirs))
        else:
            out.append((FILLER * 2, None, None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    texts = corpus(args.n)
    analyzer = regex_only_analyzer("en")
    analyzer.analyze(text=texts[0][0], language="en", entities=ENTITIES)

    start = time.perf_counter()
    ours = [find_pii(t) for t, _, _ in texts]
    ours_s = time.perf_counter() - start
    presidio_n = min(len(texts), 600)
    start = time.perf_counter()
    theirs = [analyzer.analyze(text=t, language="en", entities=ENTITIES, score_threshold=0.5)
              for t, _, _ in texts[:presidio_n]]
    theirs_s = time.perf_counter() - start

    labelled = [i for i, (_, kind, _) in enumerate(texts[:presidio_n]) if kind]
    ours_hits = sum(any(f.kind == texts[i][1] for f in ours[i]) for i in labelled)
    theirs_hits = sum(any(r.entity_type == texts[i][2] for r in theirs[i]) for i in labelled)
    ours_extra = sum(len([f for f in ours[i] if f.kind != texts[i][1]]) for i in range(presidio_n))
    theirs_extra = sum(len([r for r in theirs[i] if r.entity_type != texts[i][2]]) for i in range(presidio_n))
    ours_rate, theirs_rate = len(texts) / ours_s, presidio_n / theirs_s
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({texts[i][1] for i in labelled}):  # type: ignore[type-var]
        idx = [i for i in labelled if texts[i][1] == kind]
        by_kind[kind] = {
            "llmpulse": round(sum(any(f.kind == kind for f in ours[i]) for i in idx) / len(idx), 2),
            "presidio": round(sum(any(r.entity_type == texts[i][2] for r in theirs[i])
                                  for i in idx) / len(idx), 2),
        }
    print(json.dumps({
        "benchmark": "guardrails_pii",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "texts": len(texts),
        "mean_chars": round(sum(len(t) for t, _, _ in texts) / len(texts)),
        "llmpulse_texts_per_s": round(ours_rate),
        "presidio_regex_only_texts_per_s": round(theirs_rate),
        "speed_ratio_llmpulse_to_presidio": round(ours_rate / theirs_rate, 1),
        "labelled_items": len(labelled),
        "recall": {"llmpulse": round(ours_hits / len(labelled), 3),
                   "presidio": round(theirs_hits / len(labelled), 3)},
        "recall_by_kind": by_kind,
        "extra_findings": {"llmpulse": ours_extra, "presidio": theirs_extra},
    }, indent=2))


if __name__ == "__main__":
    main()
