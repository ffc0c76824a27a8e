"""What bf16 and int8 on AMX through OpenVINO would give: OpenVINO (bf16 inference on this
CPU's AMX tiles) against ONNX Runtime int8 (the default backend) and torch fp32 (the
baseline), on the same fp32 ONNX exports, texts and length buckets, one process, interleaved
rounds: the options weighed before the ``openvino`` backend was built, with their agreement to
torch (the backend itself, its recipes and calibration, is measured by ``scoring_models.py``).

With ``--nncf`` it adds OpenVINO int8: the fp32 export quantised statically by NNCF
(``model_type=TRANSFORMER``, activations calibrated on 64 texts of the guardrails corpus,
none of them measured), run with the rest of the model in bf16 (``openvino_int8``) and in
fp32 (``openvino_int8_f32``). ``--clock cpu`` measures texts per second of the process's CPU
time (what other jobs on a shared machine change least); the default is wall time.
Since 89a9714 the OpenVINO rows run the backend's rounded shapes (``--exact-shapes``: the
exact shapes of earlier runs, under the same keys). The int8 models are calibrated as the
backend's recipe says (v3 since models14: exact shapes, as v1); from 04ebe6d to models14
(recipe v2) they were calibrated on the shapes they ran, so ``--exact-shapes`` switched the
calibration too (v1's), under the same keys. ``--calibrations v1,v2,v2_no_padding_rows``
compares calibrations side by side in one run: an int8 model for each (v1: exact shapes, as v3;
v2: the backend's rounded widths with its padding rows, copies of a run's first text;
v2_no_padding_rows: without them), every one run on the backend's rounded shapes with its
float part in f32 (``openvino_int8_f32_cal_<name>``).

OpenVINO and NNCF are in the processors' ``openvino`` and ``ml`` extras:

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/scoring_openvino.py [--threads 1]
    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/scoring_openvino.py \
        --models DIR --nncf --clock cpu --only detoxify
    ... --only minilm --texts 128 --nncf --ffn-input-only --clock cpu

``--ffn-input-only`` quantises only MiniLM's FFN input MatMuls, as the project's int8-v2
recipe does in ONNX Runtime and its ``ov-int8-v3-ffn-in`` recipe in OpenVINO (all-int8 MiniLM
fails the 0.99 cosine bar in both runtimes).

The Detoxify model has the ``original`` architecture with generated weights (as in
``scoring_models.py``); MiniLM is the real model. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embedding_int8_agreement import corpus_texts
from model_bench import interleaved, mixed_texts, models_folder, openvino_runner


def corpus_held_out(model_dir: Path, models: dict[str, Any]) -> dict[str, Any]:
    """Cosine of each model's embeddings to ONNX fp32's (the int8-v2 recipe's test) on 400
    guardrails-corpus texts that calibration did not see, and on 1-3 word chat messages."""
    from embedding_int8_agreement import SHORT, summary

    from llmpulse.processors.models.runtime import OnnxTextModel

    fp32 = OnnxTextModel(model_dir, precision="fp32", threads=1)
    sets = {"guardrails_corpus_held_out": corpus_texts()[64:464], "short_chat": SHORT}
    out: dict[str, Any] = {}
    for set_name, texts in sets.items():
        reference = fp32.run(texts)
        out[set_name] = {label: summary((model.run(texts) * reference).sum(axis=1))
                         for label, model in models.items()}
    return {"cosine_to_onnx_fp32": out}


CALIBRATIONS = {"v1": {"exact_shapes": True}, "v2": {"exact_shapes": False, "padding_rows": True},
                "v2_no_padding_rows": {"exact_shapes": False, "padding_rows": False}}
"""``--calibrations``' choices: how NNCF's calibration runs are shaped (``calibration_feeds``)."""


def compare(name: str, model_dir: Path, torch_run: Callable[[list[str]], Any], texts: list[str],
            threads: int, rounds: int, *, embeddings: bool, calibration: list[str] | None = None,
            ffn_input_only: bool = False, exact_shapes: bool = False, calibrations: Sequence[str] = (),
            clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    import numpy as np

    from llmpulse.processors.models.export import ONNX_FP32
    from llmpulse.processors.models.openvino_backend import quantize_openvino
    from llmpulse.processors.models.runtime import OnnxTextModel

    shaped = {"threads": threads, "exact_shapes": exact_shapes}  # OpenVINO's runs as the backend's
    models = {"onnx_int8": OnnxTextModel(model_dir, precision="int8", threads=threads),
              "openvino_bf16": openvino_runner(model_dir, model_dir / ONNX_FP32, precision_hint="bf16",
                                               **shaped)}
    if calibration and not calibrations:
        quantised = quantize_openvino(model_dir, ffn_input_only=ffn_input_only, texts=calibration)
        for label, precision in (("openvino_int8", "bf16"), ("openvino_int8_f32", "f32")):
            models[label] = openvino_runner(model_dir, quantised, precision_hint=precision, **shaped)
    for recipe in calibrations if calibration else ():  # each calibration run as the backend runs
        quantised = quantize_openvino(model_dir, ffn_input_only=ffn_input_only, texts=calibration,
                                      **CALIBRATIONS[recipe])
        models[f"openvino_int8_f32_cal_{recipe}"] = openvino_runner(
            model_dir, quantised, precision_hint="f32", threads=threads)
    speed = interleaved({"torch_fp32": torch_run, **{label: m.run for label, m in models.items()}},
                        texts, rounds, clock)
    sample = texts[:64]
    reference = np.asarray(torch_run(sample))
    agreement: dict[str, float] = {}
    for label, model in models.items():
        out = model.run(sample)
        if embeddings:
            agreement[f"{label}_cosine_to_torch_min"] = round(float((out * reference).sum(axis=1).min()), 5)
        else:
            agreement[f"{label}_max_abs_prob_diff_to_torch"] = round(float(np.abs(out - reference).max()), 5)
    held_out = corpus_held_out(model_dir, models) if embeddings and calibration else {}
    return {"texts_per_s": speed, "agreement": agreement, **held_out,
            "onnx_int8_to_torch_fp32": round(speed["onnx_int8"] / speed["torch_fp32"], 2),
            "openvino_bf16_to_torch_fp32": round(speed["openvino_bf16"] / speed["torch_fp32"], 2),
            "openvino_bf16_to_onnx_int8": round(speed["openvino_bf16"] / speed["onnx_int8"], 2),
            **{f"{label}_to_torch_fp32": round(speed[label] / speed["torch_fp32"], 2)
               for label in models if label.startswith("openvino_int8")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--nncf", action="store_true", help="add OpenVINO int8 (NNCF static quantisation)")
    parser.add_argument("--ffn-input-only", action="store_true",
                        help="with --nncf, quantise only MiniLM's FFN input MatMuls (as int8-v2)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="texts per second of wall time or of the process's CPU time")
    parser.add_argument("--only", choices=("detoxify", "minilm"), help="measure one model")
    parser.add_argument("--exact-shapes", action="store_true",
                        help="OpenVINO runs padded to their longest text only (before the rounding)")
    parser.add_argument("--calibrations", default="",
                        help="with --nncf, int8 models calibrated each way (comma-separated: v1 exact "
                             "shapes, v2 rounded shapes with the padding rows, v2_no_padding_rows), each "
                             "run on the backend's rounded shapes with the rest in f32, in place of "
                             "openvino_int8*")
    parser.add_argument("--models", help="a models folder with detoxify-original and minilm exported "
                                         "(default: generate and export into a temporary one)")
    args = parser.parse_args()
    import openvino
    import torch

    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.models.runtime import TorchTextModel, amx_tiles
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    torch.set_num_threads(args.threads)
    texts = mixed_texts(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        root = models_folder(args.models, tmp)
        detoxify = TorchTextModel(root / "detoxify-original", threads=args.threads)
        minilm = EmbeddingScorer(EmbeddingConfig(threads=args.threads, batch_size=32,
                                                 backend="sentence-transformers"))
        minilm.load()
        calibration = corpus_texts()[:64] if args.nncf else None
        chosen = [name for name in args.calibrations.split(",") if name]
        if not set(chosen) <= set(CALIBRATIONS):
            parser.error(f"--calibrations: of {', '.join(CALIBRATIONS)}")
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        out = {"benchmark": "scoring_openvino", "openvino": openvino.__version__, "torch": torch.__version__,
               "threads": args.threads, "rounds": args.rounds, "texts": len(texts), "batch": 32,
               "clock": args.clock, "nncf": args.nncf, "ffn_input_only": args.ffn_input_only,
               "exact_shapes": args.exact_shapes, "calibrations": args.calibrations,
               "onnxruntime_amx_tiles": amx_tiles(),
               "load_average_1m": round(os.getloadavg()[0], 2)}
        if args.only in (None, "detoxify"):
            out["detoxify_original_architecture"] = compare(
                "detoxify", root / "detoxify-original", detoxify.run, texts, args.threads, args.rounds,
                embeddings=False, calibration=calibration, clock=clock,
                exact_shapes=args.exact_shapes, calibrations=chosen)
        if args.only in (None, "minilm"):
            out["minilm"] = compare("minilm", root / "minilm", minilm.embed, texts, args.threads, args.rounds,
                                    embeddings=True, calibration=calibration, clock=clock,
                                    ffn_input_only=args.ffn_input_only, exact_shapes=args.exact_shapes,
                                    calibrations=chosen)
        out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
