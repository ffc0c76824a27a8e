"""Does OpenVINO pay for input shapes it has not seen, and does rounding widths help? The
Detoxify ``original`` architecture (generated weights, exported) on OpenVINO int8 (the
backend: each run's width rounded up to ``WIDTH_STEP`` tokens), OpenVINO int8 with exact
widths (each run padded to its longest text, as before the rounding) and ONNX Runtime int8,
one thread, batch 32, texts per CPU second. Prints JSON. Since 89a9714 ``openvino_int8`` is the
rounded backend; runs before it measured exact widths, now ``openvino_int8_exact_widths``.

- ``openvino_int8``, ``openvino_int8_exact_widths``, ``onnx_int8``: a set of texts run for
  the first time (new batch shapes) and the same set run again (shapes seen), for two sets of
  different lengths (keys ``a_new_shapes``, ``a_seen_shapes``, ``b_...``).
- ``stream``: a stream of new texts (``--batches`` micro-batches of ``--texts`` texts, every
  text unique, of varied lengths, as a heavy worker sees), each micro-batch run by every
  model in turn (the order rotating, so that other jobs on a shared machine slow all of them
  alike): texts per CPU second over the whole stream, over its first quarter (few shapes
  seen yet) and its second half, each model's micro-batch by micro-batch, the distinct input
  shapes it ran, and its rate over the rounded model's micro-batch by micro-batch (median).
  ``distinct_shapes_longer_stream`` counts the shapes of a longer stream (``--longer``
  micro-batches; tokenised, not run): OpenVINO keeps what it prepared for a few hundred shapes,
  so past that a stream of exact widths runs new shapes forever.
- ``openvino_int8_memory``: the process's resident memory before and after a fresh OpenVINO
  model runs ``--memory-shapes`` distinct small shapes (what each shape kept costs).

A stream scores new texts all the time, so its length buckets bring new (batch, tokens)
shapes; a benchmark that runs the same texts round after round sees only known ones.

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/openvino_shapes.py --models DIR

``--models``: a models folder with ``detoxify-original`` exported and its OpenVINO int8 model
made (``llmpulse models export``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from model_bench import mixed_texts


def stream(models: dict[str, Any], texts: list[str], size: int) -> dict[str, Any]:
    """Texts per CPU second of each model over micro-batches of ``size`` new texts."""
    seconds: dict[str, list[float]] = {name: [] for name in models}
    shapes: dict[str, set[tuple[int, ...]]] = {name: set() for name in models}
    names = list(models)
    batches = [texts[i:i + size] for i in range(0, len(texts) - size + 1, size)]
    for k, batch in enumerate(batches):
        for name in names[k % len(names):] + names[:k % len(names)]:
            shapes[name] |= {feed["input_ids"].shape for _, feed in models[name].feeds(batch)}
            start = time.process_time()
            models[name].run(batch)
            seconds[name].append(time.process_time() - start)

    def rate(part: list[float]) -> float:
        return round(size * len(part) / sum(part), 1)

    quarter, half = max(1, len(batches) // 4), len(batches) // 2
    out: dict[str, Any] = {"micro_batches": len(batches), "texts_a_micro_batch": size}
    for name, spent in seconds.items():
        out[name] = {"texts_per_cpu_s": rate(spent), "first_quarter": rate(spent[:quarter]),
                     "second_half": rate(spent[half:]), "distinct_shapes": len(shapes[name]),
                     "by_micro_batch": [round(size / s, 1) for s in spent]}
    for name in names[1:]:  # each micro-batch's rates side by side: robust to a drifting load
        paired = sorted(a / b for a, b in zip(seconds[name], seconds[names[0]], strict=True))
        out[f"{names[0]}_to_{name}_median_by_micro_batch"] = round(paired[len(paired) // 2], 2)
        whole = out[names[0]]["texts_per_cpu_s"] / out[name]["texts_per_cpu_s"]
        out[f"{names[0]}_to_{name}"] = round(whole, 2)
    return out


def memory_by_shape(model: Any, shapes: int) -> dict[str, Any]:
    """The process's resident memory before and after a fresh model runs ``shapes`` distinct
    small input shapes (1-4 rows, 16 tokens and up), and what each shape added."""
    import numpy as np

    def rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def run(rows: int, width: int) -> None:
        ids = np.full((rows, width), 1000, dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        model.session.run(None, {name: feed[name] for name in model.input_names})

    run(1, 8)
    before = rss_mb()
    for k in range(shapes):
        run(1 + k % 4, 16 + k // 4)
    after = rss_mb()
    return {"shapes": shapes, "rss_before_mb": round(before), "rss_after_mb": round(after),
            "mb_a_shape": round((after - before) / shapes, 1)}


def varied(texts: list[str]) -> list[str]:
    """The texts made of more varied lengths (0-6 words appended)."""
    return [t + " more" * (i % 7) for i, t in enumerate(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--texts", type=int, default=48, help="texts a set, and a stream's micro-batch")
    parser.add_argument("--batches", type=int, default=16, help="micro-batches of the stream (0: none)")
    parser.add_argument("--longer", type=int, default=400,
                        help="micro-batches of a longer stream whose shapes are counted, not run")
    parser.add_argument("--memory-shapes", type=int, default=100,
                        help="distinct shapes run by a fresh OpenVINO model to measure its memory (0: none)")
    args = parser.parse_args()
    from llmpulse.processors.models.openvino_backend import WIDTH_STEP, OpenVinoTextModel
    from llmpulse.processors.models.runtime import OnnxTextModel

    model_dir = args.models / "detoxify-original"
    made: dict[str, Callable[[], Any]] = {
        "openvino_int8": lambda: OpenVinoTextModel(model_dir, threads=1),
        "openvino_int8_exact_widths": lambda: OpenVinoTextModel(model_dir, threads=1, width_step=1,
                                                                row_step=1),
        "onnx_int8": lambda: OnnxTextModel(model_dir, threads=1)}
    texts = mixed_texts(2 * args.texts + 2 + args.texts * args.batches)
    sets = {"a": texts[2:2 + args.texts], "b": varied(texts[2 + args.texts:2 + 2 * args.texts])}
    out: dict[str, Any] = {"benchmark": "openvino_shapes", "texts_a_set": args.texts, "threads": 1,
                           "measure": "texts per CPU second", "width_step": WIDTH_STEP,
                           "load_average_1m": round(os.getloadavg()[0], 2)}
    models = {name: make() for name, make in made.items()}  # each fresh: none ran another's shapes
    for model in models.values():
        model.run(texts[:2])  # warm up
    rates: dict[str, dict[str, float]] = {name: {} for name in models}
    for label, batch in sets.items():
        for run in ("new_shapes", "seen_shapes"):
            for name, model in models.items():  # in turn, so that other jobs slow them alike
                start = time.process_time()
                model.run(batch)
                rates[name][f"{label}_{run}"] = round(len(batch) / (time.process_time() - start), 1)
    out.update(rates)
    if args.batches:
        fresh = {name: make() for name, make in made.items()}
        for model in fresh.values():
            model.run(texts[:2])
        out["stream"] = stream(fresh, varied(texts[2 + 2 * args.texts:]), args.texts)
        longer = varied(mixed_texts(args.texts * args.longer))
        counted: dict[str, Any] = {"micro_batches": args.longer}
        for name, model in fresh.items():
            counted[name] = len({feed["input_ids"].shape for i in range(0, len(longer), args.texts)
                                 for _, feed in model.feeds(longer[i:i + args.texts])})
        out["distinct_shapes_longer_stream"] = counted
    if args.memory_shapes and Path("/proc/self/statm").is_file():
        out["openvino_int8_memory"] = memory_by_shape(made["openvino_int8"](), args.memory_shapes)
    out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
