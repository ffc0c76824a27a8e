"""What bf16 and int8 on AMX through OpenVINO would give: OpenVINO (bf16 inference on this
CPU's AMX tiles) against ONNX Runtime int8 (the default backend) and torch fp32 (the
baseline), on the same fp32 ONNX exports, texts and length buckets, one process, interleaved
rounds. Not a backend of llmpulse: a measurement of the option, with its agreement to torch.

With ``--nncf`` it adds OpenVINO int8: the fp32 export quantised statically by NNCF
(``model_type=TRANSFORMER``, activations calibrated on 64 texts of the guardrails corpus,
none of them measured), run with the rest of the model in bf16 (``openvino_int8``) and in
fp32 (``openvino_int8_f32``). ``--clock cpu`` measures texts per second of the process's CPU
time (what other jobs on a shared machine change least); the default is wall time.

OpenVINO and NNCF are not dependencies of the project; uv brings them for the run:

    flock /tmp/llmpulse-heavy.lock uv run --with openvino python benchmarks/scoring_openvino.py [--threads 1]
    flock /tmp/llmpulse-heavy.lock uv run --with openvino --with nncf python benchmarks/scoring_openvino.py \
        --models DIR --nncf --clock cpu --only detoxify
    ... --only minilm --texts 128 --nncf --ffn-input-only --clock cpu

``--ffn-input-only`` quantises only MiniLM's FFN input MatMuls, as the project's int8-v2
recipe does in ONNX Runtime (all-int8 MiniLM fails the 0.99 cosine bar in both runtimes).

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

from embedding_int8_agreement import corpus_texts
from scoring_corpus import ANSWERS, QUESTIONS


class OpenVinoSession:
    """An OpenVINO compiled model behind ONNX Runtime's ``session.run(None, feed)``, so that
    ``OnnxTextModel`` tokenises, buckets and pools exactly as it does for ONNX Runtime."""

    def __init__(self, model: Path | Any, threads: int, precision: str) -> None:
        import openvino

        core = openvino.Core()
        model = core.read_model(str(model)) if isinstance(model, Path) else model
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.names = [i.get_any_name() for i in self.compiled.inputs]

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[Any]:
        return [self.request.infer({name: feed[name] for name in self.names})[0].copy()]


class _Recorder:
    """An ONNX Runtime session that keeps every feed it runs (NNCF's calibration inputs, made by
    the same tokenising and bucketing as the measured runs)."""

    def __init__(self, session: Any) -> None:
        self.session, self.feeds = session, []

    def run(self, outputs: Any, feed: dict[str, Any]) -> Any:
        self.feeds.append(dict(feed))
        return self.session.run(outputs, feed)


def ffn_inputs(model: Any) -> list[str]:
    """The MatMuls with the widest constant weight: each layer's FFN input (hidden -> 4 x
    hidden), the only ones int8-v2 quantises."""
    matmuls = {op.get_friendly_name(): op.input_value(1).get_partial_shape()[-1]
               for op in model.get_ops() if op.get_type_name() == "MatMul"}
    widths = {name: d.get_length() for name, d in matmuls.items() if d.is_static}
    return [name for name, width in widths.items() if width == max(widths.values())]


def nncf_int8(model_dir: Path, calibration: list[str], *, ffn_input_only: bool = False) -> Any:
    """The fp32 export quantised to int8 by NNCF, activations calibrated on ``calibration``;
    with ``ffn_input_only`` only each layer's FFN input MatMul (as the int8-v2 recipe)."""
    import nncf
    import openvino

    from llmpulse.processors.models.export import ONNX_FP32
    from llmpulse.processors.models.runtime import OnnxTextModel

    fp32 = OnnxTextModel(model_dir, precision="fp32", threads=1, batch_size=32)
    recorder = _Recorder(fp32.session)
    fp32.session = recorder  # type: ignore[assignment]
    fp32.run(calibration)
    model = openvino.Core().read_model(str(model_dir / ONNX_FP32))
    ignored = nncf.IgnoredScope()
    if ffn_input_only:
        keep = set(ffn_inputs(model))
        ignored = nncf.IgnoredScope(validate=False, names=[
            op.get_friendly_name() for op in model.get_ops()
            if op.get_type_name() == "MatMul" and op.get_friendly_name() not in keep])
    return nncf.quantize(model, nncf.Dataset(recorder.feeds), model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(recorder.feeds), ignored_scope=ignored)


def interleaved(runs: dict[str, Callable[[list[str]], Any]], texts: list[str],
                rounds: int, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """texts/s of each, the median of ``rounds`` rounds taken in turn (a busy machine slows
    all of them alike within a round), by ``clock`` (wall or process CPU time)."""
    for run in runs.values():
        run(texts[:2])
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = clock()
            run(texts)
            seconds[name].append(clock() - start)
    return {name: round(len(texts) / sorted(s)[len(s) // 2], 1) for name, s in seconds.items()}


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


def compare(name: str, model_dir: Path, torch_run: Callable[[list[str]], Any], texts: list[str],
            threads: int, rounds: int, *, embeddings: bool, calibration: list[str] | None = None,
            ffn_input_only: bool = False,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    import numpy as np

    from llmpulse.processors.models.export import ONNX_FP32
    from llmpulse.processors.models.runtime import OnnxTextModel

    int8 = OnnxTextModel(model_dir, precision="int8", threads=threads)
    bf16 = OnnxTextModel(model_dir, precision="fp32", threads=threads)
    bf16.session = OpenVinoSession(model_dir / ONNX_FP32, threads, "bf16")  # type: ignore[assignment]
    models = {"onnx_int8": int8, "openvino_bf16": bf16}
    if calibration:
        quantised = nncf_int8(model_dir, calibration, ffn_input_only=ffn_input_only)
        for label, precision in (("openvino_int8", "bf16"), ("openvino_int8_f32", "f32")):
            models[label] = OnnxTextModel(model_dir, precision="fp32", threads=threads)
            models[label].session = OpenVinoSession(quantised, threads, precision)  # type: ignore[assignment]
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
        calibration = corpus_texts()[:64] if args.nncf else None
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        out = {"benchmark": "scoring_openvino", "openvino": openvino.__version__, "torch": torch.__version__,
               "threads": args.threads, "rounds": args.rounds, "texts": len(texts), "batch": 32,
               "clock": args.clock, "nncf": args.nncf, "ffn_input_only": args.ffn_input_only,
               "onnxruntime_amx_tiles": amx_tiles(),
               "load_average_1m": round(os.getloadavg()[0], 2)}
        if args.only in (None, "detoxify"):
            out["detoxify_original_architecture"] = compare(
                "detoxify", root / "detoxify-original", detoxify.run, texts, args.threads, args.rounds,
                embeddings=False, calibration=calibration, clock=clock)
        if args.only in (None, "minilm"):
            out["minilm"] = compare("minilm", root / "minilm", minilm.embed, texts, args.threads, args.rounds,
                                    embeddings=True, calibration=calibration, clock=clock,
                                    ffn_input_only=args.ffn_input_only)
        out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
