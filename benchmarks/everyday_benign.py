"""Build the everyday benign set of the ``prompt_injection`` rule from real text on this
machine (no network): what a retrieval step, a tool or a user sends every day, none of it an
attack. The learned tiers were trained on the corpus's near-misses only and, on the blind
holdout6, flagged 18% of retrieved documents and 15% of tool results; this is the traffic
they never saw.

Sources (each case's ``source`` names its file and package version):

- ``context``: paragraphs of the installed Python packages' READMEs (``*.dist-info/METADATA``),
  of ``/usr/share/doc`` (READMEs, NEWS, changelogs), of module and function docstrings in
  site-packages, and of the manual pages in ``/usr/share/man/{de,es,fr,it,nl,pt,pt_BR}``
  (rendered by ``man``). Half of each is drawn from paragraphs with the words an attack uses
  too (ignore, override, system, instructions, forget, prompt, "you must", HTML comments...).
- ``tool``: JSON tool results made of real records (a package index lookup from a
  ``METADATA``, a dpkg status entry, a search API's hits over README paragraphs, customer and
  order records from Faker's locale data in six languages) and chunks of the gettext
  catalogues (``*.mo``) of de/es/fr/it/nl/pt: a program's own messages.
- ``prompt``: spaCy's example sentences of each language (``spacy.lang.XX.examples``).

Sampling is fixed (``random.Random(SEED)`` over sorted candidates), so the same installed
packages give the same file. Each case's ``split`` is ``everyday`` (training and calibration)
or ``everyday_heldout`` (its source group, a package or a catalogue, is never trained on: the
FPR figure on real documents). Writes ``processors/tests/data/everyday_benign.jsonl``.

    uv run python benchmarks/everyday_benign.py [--out FILE] [--per-source 60]
"""

from __future__ import annotations

import argparse
import ast
import gettext
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "processors" / "tests" / "data" / "everyday_benign.jsonl"
SEED = 20261202
LANGS = ("de", "es", "fr", "it", "nl", "pt")
MIN_CHARS, MAX_CHARS = 60, 700
HELDOUT_SHARE = 0.3
_TRIGGER = re.compile(
    r"\b(?:ignor\w*|overrid\w*|system|instructions?|forget|disregard|prompt|assistant|you\s+must|"
    r"do\s+not|pretend|act\s+as|role|previous|above|secret|password|token|admin|execute|"
    r"ignorer|ignorieren|ignorar|ignora|negeer|Anweisung\w*|instrucci\w*|istruzion\w*|"
    r"instru[çc][õo]\w*|instructies)\b|<!--", re.IGNORECASE)


def _group_heldout(group: str) -> bool:
    """A source group's fixed part: held out or not, by the hash of its name."""
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < HELDOUT_SHARE


def _clip(text: str) -> str | None:
    """A paragraph made one case: tidy white space, at most ``MAX_CHARS`` (cut at a sentence
    or a line), None when too short or not text."""
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    if len(text) > MAX_CHARS:
        cut = max(text.rfind(mark, 0, MAX_CHARS) for mark in (". ", "\n"))
        text = text[:cut + 1 if cut > MIN_CHARS else MAX_CHARS].rstrip()
    letters = sum(ch.isalpha() for ch in text)
    if len(text) < MIN_CHARS or letters < 0.5 * len(text):
        return None
    return text


def _paragraphs(text: str) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", text):
        clipped = _clip(block)
        if clipped is not None:
            yield clipped


def _sample(rng: random.Random, items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` items, half from those with an attack's words (where there are that many)."""
    items = sorted(items, key=lambda c: (c["source"], c["text"]))
    hot: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    for case in items:
        (hot if _TRIGGER.search(case["text"]) else cold).append(case)
    picked = rng.sample(hot, min(len(hot), n // 2))
    picked += rng.sample(cold, min(len(cold), n - len(picked)))
    return picked


def _case(text: str, where: str, lang: str, source: str, group: str) -> dict[str, Any]:
    return {"text": text, "where": where, "lang": lang, "source": source, "group": group}


_ENGLISH = re.compile(r"\b(?:the|and|is|are|of|to|with|this|that|for)\b", re.IGNORECASE)


def _language(text: str, lang: str) -> str:
    """``en`` for a paragraph a translated manual left in English (many English function
    words), else the manual's language."""
    words = max(1, len(text.split()))
    return "en" if len(_ENGLISH.findall(text)) / words > 0.12 else lang


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _metadata() -> list[tuple[str, str, Any]]:
    """(name, version, parsed METADATA) of every installed distribution."""
    out = []
    for meta in sorted(_site_packages().glob("*.dist-info/METADATA")):
        msg = Parser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        if msg["Name"]:
            out.append((msg["Name"], msg["Version"] or "", msg))
    return out


def readme_paragraphs(metadata: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, version, msg in metadata:
        body = msg.get_payload() or msg.get("Description") or ""
        for para in _paragraphs(str(body)):
            out.append(_case(para, "context", "en", f"pypi:{name} {version} README (METADATA)",
                             f"pypi:{name}"))
    return out


def doc_paragraphs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path("/usr/share/doc").glob("*/*")):
        named = re.match(r"(?i)(readme|news|changelog|changes|faq|todo|copyright)", path.name)
        if not named or not path.is_file():
            continue
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        for para in _paragraphs(raw.decode("utf-8", errors="replace")):
            out.append(_case(para, "context", "en", f"debian:{path}", f"debian:{path.parent.name}"))
    return out


def docstrings(metadata: list[tuple[str, str, Any]], rng: random.Random,
               files: int = 400) -> list[dict[str, Any]]:
    versions = {re.sub(r"[-_.]+", "_", name).lower(): version for name, version, _ in metadata}
    paths = sorted(p for p in _site_packages().glob("*/**/*.py") if "test" not in str(p).lower())
    out = []
    for path in rng.sample(paths, min(files, len(paths))):
        package = path.relative_to(_site_packages()).parts[0]
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
        for node in nodes:
            doc = ast.get_docstring(node)  # type: ignore[arg-type]
            for para in _paragraphs(doc or ""):
                rel = path.relative_to(_site_packages())
                version = versions.get(package.lower(), "?")
                out.append(_case(para, "context", "en", f"docstring:{rel} ({version})", f"pypi:{package}"))
    return out


def man_paragraphs() -> list[dict[str, Any]]:
    out = []
    env = {**os.environ, "MANWIDTH": "80", "LANG": "C.UTF-8", "MAN_KEEP_FORMATTING": "0"}
    for lang in (*LANGS, "pt_BR"):
        for path in sorted(Path(f"/usr/share/man/{lang}").glob("man[1-8]/*")):
            try:
                # A generous limit: a page skipped because the machine was busy would change the sample.
                text = subprocess.run(["man", "-l", "-P", "cat", str(path)], capture_output=True, text=True,
                                      env=env, timeout=300, check=False).stdout
            except subprocess.TimeoutExpired:
                print(f"everyday_benign: {path} took over 300 s; skipped (the sample changes)",
                      file=sys.stderr)
                continue
            text = re.sub(".\b", "", text)
            for para in _paragraphs(text):
                para = re.sub(r"^ {3,}", "", para, flags=re.MULTILINE)
                out.append(_case(para, "context", _language(para, lang[:2]), f"man:{path}",
                                 f"man:{path.name.split('.')[0]}"))
    return out


def catalogue_chunks(rng: random.Random) -> list[dict[str, Any]]:
    """Three to six messages of one gettext catalogue, one per line: a program's own output."""
    out = []
    for lang in LANGS:
        for path in sorted(Path("/usr/share/locale").glob(f"{lang}*/LC_MESSAGES/*.mo")):
            try:
                with path.open("rb") as f:
                    catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            messages = sorted(v for k, v in catalog.items()
                              if k and isinstance(v, str) and 25 <= len(v) <= 300 and "%" not in v)
            rng.shuffle(messages)
            for i in range(0, min(len(messages), 24), 6):
                text = _clip("\n".join(messages[i:i + rng.randint(3, 6)]))
                if text:
                    out.append(_case(text, "tool", lang, f"gettext:{path}", f"gettext:{path.stem}"))
    return out


def package_lookups(metadata: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, version, msg in metadata:
        record = {"name": name, "version": version, "summary": msg["Summary"] or "",
                  "requires_python": msg["Requires-Python"] or None,
                  "requires_dist": (msg.get_all("Requires-Dist") or [])[:6],
                  "project_urls": (msg.get_all("Project-URL") or [])[:3]}
        out.append(_case(json.dumps(record, ensure_ascii=False), "tool", "en",
                         f"pypi:{name} {version} METADATA (as a package index lookup)", f"pypi:{name}"))
    return out


def dpkg_entries() -> list[dict[str, Any]]:
    out = []
    text = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Section|Description|Homepage): ?(.*)$", block,
                                 re.MULTILINE))
        desc = re.search(r"^Description: .*\n((?: .*\n?)*)", block, re.MULTILINE)
        if "Package" not in fields:
            continue
        record = {"package": fields["Package"], "version": fields.get("Version"),
                  "section": fields.get("Section"), "summary": fields.get("Description"),
                  "description": " ".join(desc.group(1).split()).replace(" . ", "\n")[:400] if desc else ""}
        out.append(_case(json.dumps(record, ensure_ascii=False), "tool", "en",
                         f"dpkg:/var/lib/dpkg/status {fields['Package']}", f"debian:{fields['Package']}"))
    return out


def search_results(readmes: list[dict[str, Any]], rng: random.Random, n: int) -> list[dict[str, Any]]:
    """A search API's answer: two or three hits, each a README paragraph of its package."""
    out = []
    by_group: dict[str, list[dict[str, Any]]] = {}
    for case in readmes:
        by_group.setdefault(case["group"], []).append(case)
    groups = sorted(by_group)
    for _ in range(n):
        group = rng.choice(groups)
        hits = rng.sample(by_group[group], min(len(by_group[group]), rng.randint(2, 3)))
        record = {"query": group.split(":", 1)[1], "results": [
            {"title": f"{group.split(':', 1)[1]} documentation", "snippet": h["text"][:300], "score": round(
                rng.uniform(0.4, 0.99), 2)} for h in hits]}
        out.append(_case(json.dumps(record, ensure_ascii=False), "tool", "en",
                         f"search hits over {hits[0]['source']}", group))
    return out


def faker_records(rng: random.Random, n: int) -> list[dict[str, Any]]:
    from faker import Faker

    locales = {"de": "de_DE", "es": "es_ES", "fr": "fr_FR", "it": "it_IT", "nl": "nl_NL", "pt": "pt_PT"}
    out = []
    for lang, locale in locales.items():
        fake = Faker(locale)
        fake.seed_instance(SEED)
        for i in range(n):
            kind = i % 3
            if kind == 0:
                record: dict[str, Any] = {
                    "customer": fake.name(), "email": fake.email(), "phone": fake.phone_number(),
                    "address": fake.address(), "company": fake.company(), "job": fake.job()}
            elif kind == 1:
                record = {"order_id": fake.bothify("ORD-#####"),
                          "status": rng.choice(["shipped", "pending", "delivered"]),
                          "ship_to": fake.address(),
                          "items": [{"sku": fake.bothify("??-####"), "qty": rng.randint(1, 4)}
                                    for _ in range(rng.randint(1, 3))],
                          "note": fake.sentence(nb_words=10)}
            else:
                record = {"ticket": fake.bothify("T-####"), "opened_by": fake.name(), "city": fake.city(),
                          "created": fake.iso8601(), "summary": fake.sentence(nb_words=8),
                          "body": fake.paragraph(nb_sentences=3)}
            out.append(_case(json.dumps(record, ensure_ascii=False), "tool", lang,
                             f"faker {fake.__class__.__module__.split('.')[0]} locale {locale} (seed {SEED})",
                             f"faker:{locale}:{i % 10}"))
    return out


def spacy_examples() -> list[dict[str, Any]]:
    import importlib

    import spacy

    out = []
    for lang in ("en", *LANGS):
        module = importlib.import_module(f"spacy.lang.{lang}.examples")
        for i, sentence in enumerate(module.sentences):
            out.append(_case(sentence, "prompt", lang,
                             f"spacy {spacy.__version__} spacy/lang/{lang}/examples.py",
                             f"spacy:{lang}:{i % 3}"))
    return out


def build(per_source: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    metadata = _metadata()
    print(f"everyday_benign: {len(metadata)} installed distributions", file=sys.stderr)
    readmes = readme_paragraphs(metadata)
    pools = {
        "readme": (readmes, per_source * 2),
        "debian_doc": (doc_paragraphs(), per_source),
        "docstring": (docstrings(metadata, rng), per_source),
        "man": (man_paragraphs(), per_source * 2),
        "gettext": (catalogue_chunks(rng), per_source * 2),
        "package_lookup": (package_lookups(metadata), per_source // 2),
        "dpkg": (dpkg_entries(), per_source // 2),
        "search": (search_results(readmes, rng, per_source), per_source),
        "faker": (faker_records(rng, per_source // 3), per_source * 2),
        "spacy": (spacy_examples(), 10 ** 6),
    }
    cases = []
    for kind, (pool, n) in pools.items():
        picked = _sample(rng, pool, n)
        print(f"everyday_benign: {kind}: {len(picked)} of {len(pool)}", file=sys.stderr)
        cases += [{**c, "kind": kind} for c in picked]
    seen: set[str] = set()
    out = []
    for n, c in enumerate(c for c in cases if not (c["text"] in seen or seen.add(c["text"]))):  # type: ignore[func-returns-value]
        out.append({"id": f"ev-{n + 1:04d}", "class": "injection", "label": None, "lang": c["lang"],
                    "where": c["where"], "text": c["text"], "source": c["source"], "group": c["group"],
                    "kind": c["kind"],
                    "split": "everyday_heldout" if _group_heldout(c["group"]) else "everyday"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--per-source", type=int, default=60)
    args = parser.parse_args()
    cases = build(args.per_source)
    header = ("# Everyday benign traffic for the prompt_injection rule, built by "
              "benchmarks/everyday_benign.py from real text installed on the machine "
              "(sources per case; none is an attack). "
              "split everyday: training and calibration; everyday_heldout: never trained on.")
    args.out.write_text(header + "\n" + "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases),
                        encoding="utf-8")
    summary: dict[str, Any] = {}
    for c in cases:
        key = f"{c['split']}/{c['where']}"
        summary[key] = summary.get(key, 0) + 1
    print(json.dumps({"benchmark": "everyday_benign", "cases": len(cases), "by_split_where": summary,
                      "languages": sorted({c["lang"] for c in cases}), "out": str(args.out)}, indent=1))


if __name__ == "__main__":
    main()
