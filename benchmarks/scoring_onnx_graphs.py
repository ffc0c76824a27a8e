"""Does unfusing ONNX Runtime's SkipLayerNormalization make the int8 exports faster? The
Detoxify ``original`` architecture (generated weights) and MiniLM, one thread, batch 32:
torch fp32, the ONNX fp32 and int8 exports as ``llmpulse models export`` writes them, and
int8 of the same fp32 graph with each SkipLayerNormalization rewritten as Add (+ bias Add)
+ LayerNormalization (what ``optimize_model`` gives with ``enable_skip_layer_norm=False``),
quantised with the same recipe. Speeds are texts per second of **CPU time** (the process's,
one thread), median of the rounds, so that other jobs on a shared machine change them
little; models interleaved round by round. Prints JSON.

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/scoring_onnx_graphs.py --models DIR [--rounds 3]

``--models`` is a models folder with ``detoxify-original`` (BERT-base, generated) and
``minilm`` exported; without it one is made (three minutes of export).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from model_bench import interleaved, mixed_texts, models_folder


def unfuse_skip_layer_norm(source: Path, target: Path) -> None:
    """``source`` with each SkipLayerNormalization as Add, Add (bias) and LayerNormalization."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(source))
    nodes = []
    for node in graph.graph.node:
        if node.op_type != "SkipLayerNormalization":
            nodes.append(node)
            continue
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        bias = node.input[4] if len(node.input) > 4 and node.input[4] else None
        total = node.output[3] if len(node.output) > 3 and node.output[3] else f"{node.name}_sum"
        first = f"{node.name}_residual" if bias else total
        nodes.append(helper.make_node("Add", list(node.input[:2]), [first], f"{node.name}_add"))
        if bias:
            nodes.append(helper.make_node("Add", [first, bias], [total], f"{node.name}_bias"))
        nodes.append(helper.make_node("LayerNormalization", [total, *node.input[2:4]], [node.output[0]],
                                      f"{node.name}_norm", axis=-1, epsilon=epsilon))
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    onnx.save(graph, str(target))


def variants(model_dir: Path, work: Path, embedding: bool) -> dict[str, Any]:
    """The export's int8 model and the unfused one, as OnnxTextModels (one thread)."""
    import onnxruntime

    from llmpulse.processors.models.export import ONNX_FP32, quantize_int8
    from llmpulse.processors.models.runtime import OnnxTextModel

    unfused = work / f"{model_dir.name}.unfused.onnx"
    unfuse_skip_layer_norm(model_dir / ONNX_FP32, work / "fp32.onnx")
    quantize_int8(work / "fp32.onnx", unfused, ffn_input_only=embedding)
    models = {p: OnnxTextModel(model_dir, precision=p, threads=1) for p in ("fp32", "int8")}
    other = OnnxTextModel(model_dir, precision="int8", threads=1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    other.session = onnxruntime.InferenceSession(str(unfused), options, providers=["CPUExecutionProvider"])
    return {"onnx_fp32": models["fp32"], "onnx_int8": models["int8"], "onnx_int8_unfused_layer_norm": other}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, help="a models folder with both exported")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    import torch

    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.models.runtime import TorchTextModel
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    torch.set_num_threads(1)
    mixed = mixed_texts(256)
    out: dict[str, Any] = {"benchmark": "scoring_onnx_graphs", "threads": 1, "batch": 32,
                           "measure": "texts per CPU second, median",
                           "load_average_1m": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        root = models_folder(args.models, Path(tmp) / "models")
        config = EmbeddingConfig(threads=1, batch_size=32, backend="sentence-transformers")
        torch_embed = EmbeddingScorer(config)
        torch_embed.load()
        cases = (("detoxify-original", mixed[:64], False), ("minilm", mixed[:128], True))
        for name, texts, embedding in cases:
            work = Path(tmp) / name
            work.mkdir()
            models = variants(root / name, work, embedding)
            runs: dict[str, Callable[[list[str]], Any]] = {
                "torch_fp32": torch_embed.embed if embedding
                else TorchTextModel(root / name, threads=1, batch_size=32).run,
                **{k: m.run for k, m in models.items()}}
            speed = interleaved(runs, texts, args.rounds, time.process_time)
            sample = texts[:32]
            fused = models["onnx_int8"].run(sample)
            unfused = models["onnx_int8_unfused_layer_norm"].run(sample)
            out[name] = {"texts_per_cpu_s": speed,
                         "onnx_int8_to_torch_fp32": round(speed["onnx_int8"] / speed["torch_fp32"], 2),
                         "unfused_to_fused_int8": round(
                             speed["onnx_int8_unfused_layer_norm"] / speed["onnx_int8"], 3),
                         "unfused_int8_max_abs_diff_to_fused_int8": float(np.abs(fused - unfused).max())}
    out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
