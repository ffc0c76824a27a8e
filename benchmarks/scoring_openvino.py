"""What bf16 on AMX would give: OpenVINO (bf16 inference on this CPU's AMX tiles) against
ONNX Runtime int8 (the default backend) and torch fp32 (the baseline), on the same fp32 ONNX
exports, texts and length buckets, one process, interleaved rounds. Not a backend of
llmpulse: a measurement of the option, with its agreement to torch.

OpenVINO is not a dependency of the project; uv brings it for the run:

    flock /tmp/llmpulse-heavy.lock uv run --with openvino python benchmarks/scoring_openvino.py [--threads 1]

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scoring_corpus import ANSWERS, QUESTIONS


class OpenVinoSession:
    """An OpenVINO compiled model behind ONNX Runtime's ``session.run(None, feed)``, so that
    ``OnnxTextModel`` tokenises, buckets and pools exactly as it does for ONNX Runtime."""

    def __init__(self, onnx_file: Path, threads: int, precision: str) -> None:
        import openvino

        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.names = [i.get_any_name() for i in self.compiled.inputs]

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[Any]:
        return [self.request.infer({name: feed[name] for name in self.names})[0].copy()]


def interleaved(runs: dict[str, Callable[[list[str]], Any]], texts: list[str],
                rounds: int) -> dict[str, float]:
    """texts/s of each, the median of ``rounds`` rounds taken in turn (a busy machine slows
    all of them alike within a round)."""
    for run in runs.values():
        run(texts[:2])
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(texts)
            seconds[name].append(time.perf_counter() - start)
    return {name: round(len(texts) / sorted(s)[len(s) // 2], 1) for name, s in seconds.items()}


def compare(name: str, model_dir: Path, torch_run: Callable[[list[str]], Any], texts: list[str],
            threads: int, rounds: int, *, embeddings: bool) -> dict[str, Any]:
    import numpy as np

    from llmpulse.processors.models.export import ONNX_FP32
    from llmpulse.processors.models.runtime import OnnxTextModel

    int8 = OnnxTextModel(model_dir, precision="int8", threads=threads)
    bf16 = OnnxTextModel(model_dir, precision="fp32", threads=threads)
    bf16.session = OpenVinoSession(model_dir / ONNX_FP32, threads, "bf16")  # type: ignore[assignment]
    speed = interleaved({"torch_fp32": torch_run, "onnx_int8": int8.run, "openvino_bf16": bf16.run},
                        texts, rounds)
    sample = texts[:64]
    reference = np.asarray(torch_run(sample))
    agreement: dict[str, float] = {}
    for label, model in (("onnx_int8", int8), ("openvino_bf16", bf16)):
        out = model.run(sample)
        if embeddings:
            agreement[f"{label}_cosine_to_torch_min"] = round(float((out * reference).sum(axis=1).min()), 5)
        else:
            agreement[f"{label}_max_abs_prob_diff_to_torch"] = round(float(np.abs(out - reference).max()), 5)
    return {"texts_per_s": speed, "agreement": agreement,
            "onnx_int8_to_torch_fp32": round(speed["onnx_int8"] / speed["torch_fp32"], 2),
            "openvino_bf16_to_torch_fp32": round(speed["openvino_bf16"] / speed["torch_fp32"], 2),
            "openvino_bf16_to_onnx_int8": round(speed["openvino_bf16"] / speed["onnx_int8"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--models", help="a models folder with detoxify-original and minilm exported "
                                         "(default: generate and export into a temporary one)")
    args = parser.parse_args()
    import openvino
    import torch

    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.models import Catalog, ModelsFolder, fetch_models
    from llmpulse.processors.models.export import export_model
    from llmpulse.processors.models.generated import BERT_BASE, write_generated_detoxify
    from llmpulse.processors.models.runtime import TorchTextModel, amx_tiles
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    torch.set_num_threads(args.threads)
    texts = [(QUESTIONS[i % len(QUESTIONS)] if i % 2 else ANSWERS[i % len(ANSWERS)]) + f" ({i})"
             for i in range(args.texts)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.models or tmp)
        if not args.models:
            write_generated_detoxify(root, "detoxify-original", architecture=BERT_BASE)
            fetch_models(["minilm"], root, catalog=Catalog.load())
            for name in ("minilm", "detoxify-original"):
                export_model(ModelsFolder(root), name)
        detoxify = TorchTextModel(root / "detoxify-original", threads=args.threads)
        minilm = EmbeddingScorer(EmbeddingConfig(threads=args.threads, batch_size=32,
                                                 backend="sentence-transformers"))
        minilm.load()
        out = {"benchmark": "scoring_openvino", "openvino": openvino.__version__, "torch": torch.__version__,
               "threads": args.threads, "rounds": args.rounds, "texts": len(texts), "batch": 32,
               "onnxruntime_amx_tiles": amx_tiles(), "load_average_1m": round(os.getloadavg()[0], 2),
               "detoxify_original_architecture": compare("detoxify", root / "detoxify-original", detoxify.run,
                                                         texts, args.threads, args.rounds, embeddings=False),
               "minilm": compare("minilm", root / "minilm", minilm.embed, texts, args.threads, args.rounds,
                                 embeddings=True),
               "load_average_1m_end": round(os.getloadavg()[0], 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
