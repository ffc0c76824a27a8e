"""Export a fetched model from its torch checkpoint to ONNX, once, and quantise it to int8.

Needs torch, transformers and onnx (``llmpulse-processors[ml]``); the result runs on
ONNX Runtime alone (``llmpulse-processors[onnx]``). Each export is written into the
model's folder, ``onnx/model.onnx`` (fp32) and ``onnx/model.int8.onnx`` (dynamic int8
quantisation of the weights of the matrix multiplications, after ONNX Runtime's transformer
fusions; for sentence embeddings only the FFN input ones, ``INT8_RECIPES``), with ``onnx/model.json`` that
the runtime reads (what the outputs are, the class names, the maximum tokens), and recorded
with its sha256 in the folder's manifest. torch's dynamo exporter is used: the TorchScript
one produces wrong graphs for transformers 5 models (measured here: errors of 2.4 on
MiniLM's hidden states).

Example:
    $ llmpulse models fetch detoxify-original minilm --dir /models       # exports too
    >>> from llmpulse.processors.models.export import ONNX_FP32, ONNX_INT8
    >>> ONNX_FP32, ONNX_INT8
    ('onnx/model.onnx', 'onnx/model.int8.onnx')
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from llmpulse.processors.errors import INSTALL_ML, ModelUnavailableError
from llmpulse.processors.models.folder import ModelsFolder

__all__ = [
    "INT8_RECIPES",
    "MODEL_INFO",
    "ONNX_FP32",
    "ONNX_INT8",
    "export_model",
    "fuse_transformer",
    "int8_recipes",
    "load_classifier_torch",
    "load_detoxify_torch",
    "max_tokens_of",
    "quantize_int8",
    "requantize",
    "stale_int8",
]

logger = logging.getLogger(__name__)

ONNX_FP32 = "onnx/model.onnx"
ONNX_INT8 = "onnx/model.int8.onnx"
MODEL_INFO = "onnx/model.json"
INT8_RECIPES = {"sentence-embedding": "int8-v2 ffn-in only", "default": "int8-v1 all MatMul/Attention"}
"""How each kind of model is quantised, recorded with its int8 export: an export made with
another recipe is quantised again (``llmpulse models fetch/export``). Sentence embeddings
keep everything but each layer's FFN input MatMul in fp32: quantising all of MiniLM gave
cosines to fp32 down to 0.939 (docs/FIGURES.md)."""

_DETOXIFY_NAMES = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}


def max_tokens_of(folder: Path) -> int:
    """The most tokens the model takes: sentence-transformers' ``max_seq_length``, else the
    tokenizer's ``model_max_length``, else the positions the model has (less RoBERTa's
    padding offset)."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"),
                      ("tokenizer_config.json", "model_max_length")):
        file = folder / name
        if file.is_file():
            value = json.loads(file.read_text("utf-8")).get(key)
            if isinstance(value, int) and 0 < value <= 100_000:
                return value
    config = json.loads((folder / "config.json").read_text("utf-8"))
    positions = int(config.get("max_position_embeddings", 512))
    return positions - 2 if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"} else positions


def load_detoxify_torch(checkpoint: Path, base_dir: Path, device: str = "cpu") -> tuple[Any, Any, list[str]]:
    """A Detoxify checkpoint as a transformers model, tokenizer and class names, built from
    the base model's local config (Detoxify's own loader asks the hub for the config first).

    Raises:
        ModelUnavailableError: torch or transformers is missing, or the checkpoint does not load.
    """
    from llmpulse.processors.scoring.base import hub_offline

    hub_offline()
    try:
        import torch
        import transformers
    except ImportError:
        raise ModelUnavailableError("torch", f"not installed: {INSTALL_ML}") from None
    try:
        loaded = torch.load(checkpoint, map_location=device, weights_only=False)  # verified file
        args = loaded["config"]["arch"]["args"]
        model_class = getattr(transformers, args["model_name"])
        config = model_class.config_class.from_pretrained(str(base_dir), num_labels=args["num_classes"])
        model = model_class.from_pretrained(None, config=config, state_dict=loaded["state_dict"])
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    except Exception as exc:  # torch, transformers and file errors alike
        raise ModelUnavailableError(f"Detoxify checkpoint {checkpoint}",
                                    f"{type(exc).__name__}: {exc}") from None
    classes = [_DETOXIFY_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    return model.to(device).eval(), tokenizer, classes


def load_classifier_torch(model_dir: Path, device: str = "cpu") -> tuple[Any, Any, list[str]]:
    """A transformers sequence classifier (``AutoModelForSequenceClassification``) from a
    local folder: the model, its tokenizer and its class names (``id2label``, in order).

    Raises:
        ModelUnavailableError: torch or transformers is missing, or the folder does not load.
    """
    from llmpulse.processors.scoring.base import hub_offline

    hub_offline()
    try:
        import transformers
    except ImportError:
        raise ModelUnavailableError("transformers", f"not installed: {INSTALL_ML}") from None
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except Exception as exc:  # torch, transformers and file errors alike
        raise ModelUnavailableError(f"sequence classifier {model_dir}",
                                    f"{type(exc).__name__}: {exc}") from None
    labels = model.config.id2label
    classes = [str(labels[i]) for i in range(len(labels))]
    return model.to(device).eval(), tokenizer, classes


def _export(module: Any, inputs: dict[str, Any], target: Path) -> None:
    import torch

    names = list(inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs.values()), str(target), dynamo=True, input_names=names,
                          output_names=["output"], opset_version=18, external_data=False,
                          dynamic_shapes=tuple({0: "batch", 1: "tokens"} for _ in names))


_ADDITIVE_MASK_TYPES = {"bert", "roberta", "xlm-roberta", "camembert"}
"""Model types whose transformers 5 code takes a ready 4-D additive mask as it is (and whose
attention ONNX Runtime's BERT fusion knows); DeBERTa reads its mask as a boolean, so not it."""


def _wrap(model: Any, names: list[str]) -> Any:
    """The model as a module of positional tensors returning its first output.

    For the BERT family the 2-D padding mask is turned into the additive mask BERT itself
    used before transformers 5, ``(1 - mask[:, None, None, :]) * -10000``: transformers 5
    passes a 4-D mask through unchanged, and this form is the one ONNX Runtime's attention
    fusion recognises (its own GreaterOrEqual/And/Where mask is not), so each layer's
    attention becomes one fused ``Attention`` op, quantised as ``QAttention``.
    """
    import torch

    additive = getattr(model.config, "model_type", "") in _ADDITIVE_MASK_TYPES

    def mask_of(attention_mask: Any) -> Any:
        if not additive:
            return attention_mask
        return (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0

    class WithTokenTypes(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=mask_of(attention_mask),
                              token_type_ids=token_type_ids)[0]

    class WithoutTokenTypes(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=mask_of(attention_mask))[0]

    return WithTokenTypes() if "token_type_ids" in names else WithoutTokenTypes()


def _example(config: Any) -> dict[str, Any]:
    import torch

    ids = torch.full((2, 16), 5, dtype=torch.long)
    ids[:, 0] = 0
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if getattr(config, "type_vocab_size", 0) > 1:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    return inputs


def export_model(folder: ModelsFolder, name: str, *, quantize: bool = True) -> list[str]:
    """Export one fetched model to ONNX (and int8); returns the files written.

    Raises:
        ModelUnavailableError: torch, transformers or onnx is missing, or the model does not load.
    """
    entry = folder.entry(name)
    if entry is None:
        raise ModelUnavailableError(name, f"not in {folder.root}; run llmpulse models fetch {name}")
    model_dir = folder.model_dir(name)
    try:
        import torch
        import transformers
    except ImportError:
        raise ModelUnavailableError("torch", f"exporting needs torch: {INSTALL_ML}") from None
    if entry["kind"] == "detoxify":
        checkpoint = next(p for p in entry["files"] if p.endswith(".ckpt"))
        model, _, classes = load_detoxify_torch(model_dir / checkpoint, model_dir / "base")
        info: dict[str, Any] = {"task": "multi-label", "classes": classes, "tokenizer": "base/tokenizer.json",
                                "max_tokens": max_tokens_of(model_dir / "base")}
    elif entry["kind"] == "sequence-classification":
        model, _, classes = load_classifier_torch(model_dir)
        info = {"task": "single-label", "classes": classes, "tokenizer": "tokenizer.json",
                "max_tokens": max_tokens_of(model_dir)}
    else:
        model = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        info = {"task": "sentence-embedding", "pooling": "mean", "normalize": True,
                "tokenizer": "tokenizer.json", "max_tokens": max_tokens_of(model_dir)}
    # Eager attention exports as plain MatMul/Softmax; the default SDPA one brings a NaN guard
    # per layer (IsNaN + Where) that int8 runs in fp32: measured 1.13-1.2x faster in int8 on
    # the BERT-base architecture here, outputs within 6e-7 of the SDPA export.
    model.set_attn_implementation("eager")
    inputs = _example(model.config)
    info["inputs"] = list(inputs)
    info["pad_token_id"] = int(getattr(model.config, "pad_token_id", None) or 0)
    logger.info("%s: exporting to ONNX (once; this takes a minute for a BERT-base model)", name)
    try:
        with torch.no_grad():
            _export(_wrap(model, list(inputs)), inputs, model_dir / ONNX_FP32)
    except ImportError as exc:  # onnx / onnxscript, which the dynamo exporter needs
        raise ModelUnavailableError("onnx", f"{exc}: {INSTALL_ML}") from None
    except Exception as exc:  # the exporter raises many kinds; the fetched files stay usable
        raise ModelUnavailableError(f"{name} ONNX export", f"{type(exc).__name__}: {exc}") from None
    fused = fuse_transformer(model_dir / ONNX_FP32, model.config)
    logger.info("%s: fused %s", name, ", ".join(f"{op} x{n}" for op, n in sorted(fused.items())) or "nothing")
    (model_dir / MODEL_INFO).write_text(json.dumps(info, indent=1) + "\n", "utf-8")
    written = [ONNX_FP32, MODEL_INFO]
    folder.record_export(name, ONNX_FP32, {
        "precision": "fp32",
        "from": "torch.onnx dynamo, opset 18, eager attention, onnxruntime bert fusions",
        "fused": fused})
    folder.record_export(name, MODEL_INFO, {})
    if quantize:
        written.append(requantize(folder, name))
    return written


def requantize(folder: ModelsFolder, name: str) -> str:
    """Quantise a model's fp32 export to int8 with its kind's current recipe and record it
    (ONNX Runtime and onnx alone: no torch); returns the file written."""
    model_dir = folder.model_dir(name)
    task = json.loads((model_dir / MODEL_INFO).read_text("utf-8")).get("task", "")
    embedding = task == "sentence-embedding"
    quantize_int8(model_dir / ONNX_FP32, model_dir / ONNX_INT8, ffn_input_only=embedding)
    folder.record_export(name, ONNX_INT8, {
        "precision": "int8", "recipe": int8_recipe_of(task),
        "from": "onnxruntime quantize_dynamic QInt8 per channel"
                + (", only the FFN input MatMuls" if embedding else "")})
    return ONNX_INT8


def int8_recipes(folder: ModelsFolder, name: str) -> tuple[str | None, str]:
    """The recipe recorded with a model's int8 export (None: none recorded) and its kind's
    current one."""
    record = ((folder.entry(name) or {}).get("exports") or {}).get(ONNX_INT8) or {}
    info = folder.model_dir(name) / MODEL_INFO
    task = json.loads(info.read_text("utf-8")).get("task", "") if info.is_file() else ""
    return record.get("recipe"), int8_recipe_of(task)


def stale_int8(folder: ModelsFolder, name: str) -> bool:
    """Whether a model's recorded int8 export was made with another recipe than its kind's
    current one (exports from before recipes were recorded count as stale)."""
    recorded, current = int8_recipes(folder, name)
    return recorded != current


def int8_recipe_of(task: str) -> str:
    """The current int8 recipe for a model of this task (``MODEL_INFO``'s ``task``)."""
    return INT8_RECIPES.get(task, INT8_RECIPES["default"])


def fuse_transformer(path: Path, config: Any) -> dict[str, int]:
    """Rewrite an exported BERT-family graph with ONNX Runtime's transformer fusions
    (Attention, SkipLayerNormalization, BiasGelu...), in place; returns the fused operators
    and how many of each. Same outputs (1e-7 here)."""
    try:
        import onnx
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:
        logger.warning("onnxruntime.transformers is missing: the ONNX model is left unfused")
        return {}
    graph = onnx.load(str(path))
    _prepare_for_fusion(graph)
    onnx.save(graph, str(path))  # optimize_model given a ModelProto loses small tensors (DeBERTa's)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        fused = optimize_model(str(path), model_type="bert", num_heads=int(config.num_attention_heads),
                               hidden_size=int(config.hidden_size))
        fused.save_model_to_file(str(path))
    finally:
        root.setLevel(level)
    counts = {op: n for op, n in fused.get_fused_operator_statistics().items() if n}
    layers = int(getattr(config, "num_hidden_layers", 0))
    if counts.get("Attention", 0) < layers:
        logger.warning("%s: attention fused in %d of %d layers (runs slower, same results)",
                       path, counts.get("Attention", 0), layers)
    return counts


def _prepare_for_fusion(graph: Any) -> None:
    """Rewrite two details of the dynamo export into the forms ONNX Runtime's BERT attention
    fusion matches: the single ``Unsqueeze(mask, axes=[1, 2])`` (the torch code is
    ``mask[:, None, None, :]``; the exporter merges the two) as two Unsqueezes, and the
    attention scores' scale ``MatMul * (1/sqrt(d))`` as ``MatMul / sqrt(d)`` (with a Mul there
    the fusion takes it for the mask's ``* -10000`` and gives up)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inputs = {i.name for i in graph.graph.input}
    values = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer if len(i.dims) <= 1}
    producers = {out: node for node in graph.graph.node for out in node.output}
    consumers: dict[str, list[str]] = {}
    for node in graph.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    nodes = []
    for node in graph.graph.node:
        if (node.op_type == "Unsqueeze" and node.input[0] in inputs
                and node.input[1] in values and values[node.input[1]].tolist() == [1, 2]):
            for axis in (1, 2):
                graph.graph.initializer.append(helper.make_tensor(f"{node.name}_axis{axis}",
                                                                  onnx.TensorProto.INT64, [1], [axis]))
            middle = f"{node.output[0]}_axis1"
            nodes.append(helper.make_node("Unsqueeze", [node.input[0], f"{node.name}_axis1"], [middle],
                                          f"{node.name}_1"))
            nodes.append(helper.make_node("Unsqueeze", [middle, f"{node.name}_axis2"], [node.output[0]],
                                          f"{node.name}_2"))
        elif (node.op_type == "Mul" and getattr(producers.get(node.input[0]), "op_type", "") == "MatMul"
              and node.input[1] in values and values[node.input[1]].size == 1
              and consumers.get(node.output[0]) == ["Add"]):
            scale = values[node.input[1]]
            divisor = numpy_helper.from_array(np.asarray(1.0 / scale, dtype=scale.dtype),
                                              f"{node.name}_divisor")
            graph.graph.initializer.append(divisor)
            nodes.append(helper.make_node("Div", [node.input[0], divisor.name], list(node.output), node.name))
        else:
            nodes.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    unused = [i for i in graph.graph.initializer if i.name not in used]
    for initializer in unused:  # the replaced constants, which ONNX Runtime refuses to keep unused
        graph.graph.initializer.remove(initializer)


def quantize_int8(source: Path, target: Path, *, ffn_input_only: bool = False) -> None:
    """Dynamic int8 quantisation of an ONNX model's weights (activations quantised at run time).

    Args:
        ffn_input_only: quantise only each layer's FFN input MatMul (the one feeding
            ``BiasGelu``); attention, its output projection, the FFN output and the
            embeddings stay fp32.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelUnavailableError("onnxruntime",
                                    f"quantising needs onnxruntime and onnx: {INSTALL_ML}") from None
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # its advice to pre-process is logged on the root logger
    try:
        extra: dict[str, Any] = {}
        if ffn_input_only:
            import onnx

            graph = onnx.load(str(source))
            consumers = {name: node.op_type for node in graph.graph.node for name in node.input}
            extra = {"op_types_to_quantize": ["MatMul"],
                     "nodes_to_quantize": [n.name for n in graph.graph.node if n.op_type == "MatMul"
                                           and consumers.get(n.output[0]) == "BiasGelu"]}
            if not extra["nodes_to_quantize"]:
                logger.warning("%s: no FFN input MatMul (unfused?): int8 quantises every MatMul", source)
                extra = {}
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, **extra)
    finally:
        root.setLevel(level)
