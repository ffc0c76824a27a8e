"""Does OpenVINO pay for input shapes it has not seen? The Detoxify ``original`` architecture
(generated weights, exported) on OpenVINO int8 and ONNX Runtime int8, one thread, batch 32:
texts per CPU second on a set of texts run for the first time (new batch shapes) and the same
set run again (shapes seen), for two sets of different lengths. A stream scores new texts
all the time, so its length buckets bring new (batch, tokens) shapes; a benchmark that runs
the same texts round after round sees only known ones. Prints JSON.

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
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from model_bench import mixed_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--texts", type=int, default=48, help="texts a set")
    args = parser.parse_args()
    from llmpulse.processors.models.openvino_backend import OpenVinoTextModel
    from llmpulse.processors.models.runtime import OnnxTextModel

    model_dir = args.models / "detoxify-original"
    models = {"openvino_int8": OpenVinoTextModel(model_dir, threads=1),
              "onnx_int8": OnnxTextModel(model_dir, threads=1)}
    texts = mixed_texts(2 * args.texts + 2)
    sets = {"a": texts[2:2 + args.texts],
            "b": [t + " more" * (i % 7) for i, t in enumerate(texts[2 + args.texts:])]}
    out: dict[str, object] = {"benchmark": "openvino_shapes", "texts_a_set": args.texts, "threads": 1,
                              "measure": "texts per CPU second",
                              "load_average_1m": round(os.getloadavg()[0], 2)}
    for name, model in models.items():
        model.run(texts[:2])  # warm up
        rates = {}
        for label, batch in sets.items():
            for run in ("new_shapes", "seen_shapes"):
                start = time.process_time()
                model.run(batch)
                rates[f"{label}_{run}"] = round(len(batch) / (time.process_time() - start), 1)
        out[name] = rates
    out["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
