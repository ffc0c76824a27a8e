"""Precision and recall of a guardrail policy on a labelled corpus.

A corpus is a JSON Lines file, one case a line (lines starting with ``#`` are comments,
for the sources): ``class`` (``injection``, ``pii`` or ``secret``), ``label`` (the
expected kind; null for a benign near-miss), ``lang``, ``where`` (``prompt``,
``context`` or ``tool``: a user message, a retrieved document, a tool result), ``text``
and ``source``. Each case is checked by the policy's rules of its class, placed where the
case says. The shipped corpus is ``processors/tests/data/guardrails_corpus.jsonl``.

Counting: an injection case is caught if any ``prompt_injection`` rule matches; a PII case
if a ``pii`` rule finds its kind (every other kind found counts as a false positive); a
secret case if a ``secrets`` rule finds anything (benign cases with a finding are the
false positives).

Example:
    >>> from llmpulse.processors.guardrails.evaluation import Case, evaluate
    >>> from llmpulse.processors.guardrails.policy import GuardrailPolicy
    >>> cases = [Case("1", "pii", "email", "en", "prompt", "mail ada@example.com", ""),
    ...          Case("2", "pii", None, "en", "prompt", "git@github.com:org/repo.git", "")]
    >>> report = evaluate(GuardrailPolicy.load(), cases)
    >>> report["pii"]["recall"], report["pii"]["precision"]
    (1.0, 1.0)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from llmpulse.processors.guardrails.policy import GuardrailPolicy
from llmpulse.schemas.detectors import PII_KINDS

__all__ = ["Case", "default_policy", "evaluate", "load_corpus"]

_RULE_KIND = {"injection": "prompt_injection", "pii": "pii", "secret": "secrets"}
_PLACE = {"prompt": ("prompt", "user"), "tool": ("tool_result", "tool"), "context": ("context", None)}


class Case(NamedTuple):
    """One labelled text."""

    id: str
    cls: str
    label: str | None
    lang: str
    where: str
    text: str
    source: str
    split: str = ""
    """``tune`` (the rules were corrected on it) or ``holdout2`` (written before its author read
    the rules and measured before any change for it; corrected on since)."""
    group: str = ""
    """Cases that share a source (one package's README and docstrings...): cross-validation
    keeps a group in one fold. Empty where the file gives none."""


def default_policy(*, ngram: bool, classifier: str | None = None) -> GuardrailPolicy:
    """The default policy with its injection rule's n-gram tier on or off (off: the pattern
    tier alone, what the learned tiers are trained beside) and, optionally, a classifier."""
    from importlib import resources

    import yaml

    here = resources.files("llmpulse.processors.guardrails")
    data = yaml.safe_load(here.joinpath("default_policy.yaml").read_text(encoding="utf-8"))
    for rule in data["rules"]:
        if rule["kind"] == "prompt_injection":
            rule["ngram"] = ngram
            if classifier is not None:
                rule["classifier"] = classifier
    return GuardrailPolicy.from_yaml(json.dumps(data))


def load_corpus(path: str | Path) -> list[Case]:
    """The cases of a JSON Lines corpus file."""
    cases = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            row = json.loads(line)
            cases.append(Case(str(row.get("id", n)), row["class"], row["label"], row["lang"], row["where"],
                              row["text"], row.get("source", ""), row.get("split", ""), row.get("group", "")))
    return cases


def _pii_kind(match_kind: str) -> str:
    if match_kind in PII_KINDS:
        return match_kind
    return "ip_address" if match_kind in ("ipv4", "ipv6") else "national_id"


def found_by_policy(policy: GuardrailPolicy, case: Case) -> set[str]:
    """What ``policy`` finds in ``case`` of the case's class (kinds of its rule's matches)."""
    where, role = _PLACE[case.where]
    kinds: set[str] = set()
    for rule, matches in policy.check_text(case.text, where, role):
        if rule.kind == _RULE_KIND[case.cls]:
            kinds.update(_pii_kind(m.kind) if case.cls == "pii" else m.kind for m in matches)
    return kinds


class _Tally:
    def __init__(self) -> None:
        self.tp = self.fn = self.fp = self.negatives = self.flagged_negatives = 0

    def add(self, case: Case, found: set[str]) -> None:
        if case.label is None:
            self.negatives += 1
            self.flagged_negatives += bool(found)
            self.fp += len(found) if case.cls == "pii" else bool(found)
            return
        hit = case.label in found if case.cls == "pii" else bool(found)
        self.tp += hit
        self.fn += not hit
        if case.cls == "pii":
            self.fp += len(found - {case.label})

    def report(self) -> dict[str, Any]:
        positives = self.tp + self.fn
        fpr = round(self.flagged_negatives / self.negatives, 3) if self.negatives else None
        return {
            "positives": positives, "benign": self.negatives,
            "recall": round(self.tp / positives, 3) if positives else None,
            "precision": round(self.tp / (self.tp + self.fp), 3) if self.tp + self.fp else None,
            "false_positive_rate": fpr,
        }


def evaluate(policy: GuardrailPolicy, cases: Sequence[Case]) -> dict[str, Any]:
    """Per class: recall, precision and the false-positive rate on benign cases, overall,
    by language, by label and by split; plus the cases missed and the benign cases flagged."""
    out: dict[str, Any] = {}
    for cls in sorted({c.cls for c in cases}):
        overall = _Tally()
        by_lang: dict[str, _Tally] = {}
        by_label: dict[str, _Tally] = {}
        by_split: dict[str, _Tally] = {}
        missed: list[str] = []
        flagged: list[str] = []
        for case in (c for c in cases if c.cls == cls):
            found = found_by_policy(policy, case)
            for tally in (overall, by_lang.setdefault(case.lang, _Tally()),
                          by_label.setdefault(case.label or "benign", _Tally()),
                          by_split.setdefault(case.split or "all", _Tally())):
                tally.add(case, found)
            if case.label is None and found:
                flagged.append(f"{case.id}: {sorted(found)}")
            elif case.label is not None and not (case.label in found if cls == "pii" else found):
                missed.append(f"{case.id}: {case.label} (found {sorted(found)})")
        out[cls] = {**overall.report(), "by_language": _reports(by_lang), "by_label": _reports(by_label),
                    "by_split": _reports(by_split), "missed": missed, "benign_flagged": flagged}
    return out


def _reports(tallies: dict[str, _Tally]) -> dict[str, dict[str, Any]]:
    return {key: tallies[key].report() for key in sorted(tallies)}
