"""Which MatMuls of MiniLM can be int8 on OpenVINO, and does more int8 make it faster? NNCF
variants of the real MiniLM's fp32 export (``model_type=TRANSFORMER``, the rest of the model in
OpenVINO's default bf16 on an AMX CPU), each measured for speed (texts per CPU second, one
thread, batch 32, the backend's rounded shapes, 128 texts of the scoring corpus, median of 3
runs after two) and for cosine to ONNX Runtime fp32: the minimum over the agreement tests'
texts (``tests``: the texts of ``test_models_openvino.py``'s cosine test but its five short
messages, which ``short`` holds with 25 more), 400 held-out texts
of the guardrails corpus (``held_out``) and 30 one-to-three-word chat messages (``short``).

Variants (``--variants``, comma-separated; ``NAME`` or ``NAME:OPTION``):

- ``bf16``: no int8 at all (the fp32 export computed in bf16);
- which MatMuls are int8: ``ffn_in`` (each layer's FFN input: the backend's recipe),
  ``qkv_ffn_in`` (and the fused Q/K/V projection), ``ffn`` (FFN input and output),
  ``no_ffn_out`` (every linear layer but the FFN output), ``linear`` (every linear layer; the
  attention's activation-by-activation MatMuls stay bf16), ``linear_mid`` (those of layers 1-4:
  the first and last layers stay bf16), ``all`` (NNCF's default: the attention's too);
- options: ``broad`` (calibrated on 157 texts: three of each language, place and label of the
  guardrails corpus past its first 464 texts, and 32 everyday READMEs and docs, in place of
  the 64 shipped English attacks), ``nosq`` (no SmoothQuant), ``sqA`` (SmoothQuant alpha A),
  ``nofbc`` (no fast bias correction), ``mixed`` (``preset=MIXED``: asymmetric activations).

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/openvino_int8_variants.py \\
        --models DIR --variants bf16,ffn_in,ffn_in:broad,qkv_ffn_in,linear,linear:broad

``--models``: a models folder with ``minilm`` exported (``llmpulse models export``). Prints
one JSON object a variant, as it goes (NNCF's progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).parents[1] / "processors" / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embedding_int8_agreement import CORPUS, SHORT, corpus_texts
from model_bench import mixed_texts, openvino_runner
from scoring_corpus import ANSWERS, QUESTIONS

EVERYDAY = CORPUS.parent / "everyday_benign.jsonl"
LINEAR = {(384, 1152): "qkv", (384, 384): "out", (384, 1536): "ffn_in", (1536, 384): "ffn_out"}
CHOSEN: dict[str, Callable[[str, int], bool]] = {
    "all": lambda kind, layer: True,
    "linear": lambda kind, layer: kind != "attention",
    "ffn_in": lambda kind, layer: kind == "ffn_in",
    "qkv_ffn_in": lambda kind, layer: kind in ("qkv", "ffn_in"),
    "ffn": lambda kind, layer: kind in ("ffn_in", "ffn_out"),
    "no_ffn_out": lambda kind, layer: kind in ("qkv", "out", "ffn_in"),
    "linear_mid": lambda kind, layer: kind != "attention" and 0 < layer < 5,
}


def broad_calibration() -> list[str]:
    """Three texts of each (language, place, benign or attack) of the guardrails corpus past
    the 464 that ``held_out`` and the shipped set use, and 32 everyday READMEs and docs."""
    rng = random.Random(15)
    groups: dict[tuple[str, str, bool], list[str]] = defaultdict(list)
    rows = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines() if line.startswith("{")]
    for row in rows[464:]:
        groups[(row["lang"], row["where"], row["label"] is None)].append(row["text"])
    picked = []
    for key in sorted(groups):
        rng.shuffle(groups[key])
        picked += groups[key][:3]
    everyday = [json.loads(line) for line in EVERYDAY.read_text("utf-8").splitlines() if line.startswith("{")]
    texts = [row["text"] for row in everyday if row.get("split") == "everyday"]
    rng.shuffle(texts)
    return picked + texts[:32]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--variants", default="bf16,ffn_in,ffn_in:broad,qkv_ffn_in,linear,linear:broad")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import nncf
    import openvino
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )
    from test_models_onnx import TEXTS

    from llmpulse.processors.models.export import ONNX_FP32
    from llmpulse.processors.models.openvino_backend import calibration_feeds, calibration_texts
    from llmpulse.processors.models.runtime import OnnxTextModel

    model_dir = args.models / "minilm"
    fp32 = OnnxTextModel(model_dir, precision="fp32", threads=1)
    sets = {"tests": TEXTS + QUESTIONS + ANSWERS, "held_out": corpus_texts()[64:464],
            "short": SHORT}
    reference = {name: fp32.run(texts) for name, texts in sets.items()}
    base = openvino.Core().read_model(str(model_dir / ONNX_FP32))
    matmuls = [op for op in base.get_ops() if op.get_type_name() == "MatMul"]
    kinds: dict[str, tuple[str, int]] = {}
    counts: dict[str, int] = defaultdict(int)
    for op in matmuls:
        weight = op.input_value(1)
        kind = "attention"
        if weight.get_node().get_type_name() == "Constant":
            kind = LINEAR[tuple(d.get_length() for d in weight.get_partial_shape())]
        kinds[op.get_friendly_name()] = (kind, counts[kind])
        counts[kind] += 1
    texts = mixed_texts(128)

    def measure(variant: str, model: Any, int8: int) -> None:
        runner = openvino_runner(model_dir, model)
        runner.run(texts), runner.run(texts)
        spent = []
        for _ in range(3):
            start = time.process_time()
            runner.run(texts)
            spent.append(time.process_time() - start)
        cosines = {name: float((runner.run(t) * reference[name]).sum(axis=1).min())
                   for name, t in sets.items()}
        print(json.dumps({"variant": variant, "int8_matmuls": int8,
                          "texts_per_cpu_s": round(len(texts) / sorted(spent)[1], 1),
                          **{f"cosine_min_{k}": round(v, 4) for k, v in cosines.items()},
                          "load_average_1m": round(os.getloadavg()[0], 2)}), flush=True)

    for variant in args.variants.split(","):
        name, _, option = variant.partition(":")
        if name == "bf16":
            measure(variant, base, 0)
            continue
        chosen = [n for n, (kind, layer) in kinds.items() if CHOSEN[name](kind, layer)]
        options: dict[str, Any] = {}
        if option == "nosq" or option.startswith("sq"):
            alpha = -1.0 if option == "nosq" else float(option[2:])
            options["advanced_parameters"] = AdvancedQuantizationParameters(
                smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha))
        if option == "nofbc":
            options["fast_bias_correction"] = False
        if option == "mixed":
            options["preset"] = nncf.QuantizationPreset.MIXED
        chosen_texts = broad_calibration() if option == "broad" else calibration_texts()
        calibration = calibration_feeds(model_dir, chosen_texts)
        quantised = nncf.quantize(
            base.clone(), nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration), **options,
            ignored_scope=nncf.IgnoredScope(names=[n for n in kinds if n not in chosen], validate=False))
        measure(variant, quantised, len(chosen))


if __name__ == "__main__":
    main()
