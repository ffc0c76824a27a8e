"""Prompts as versioned artifacts: templates in files, versions by content hash, movable labels.

A prompt is a TOML (or YAML, when PyYAML is installed) file in the app's repository,
``prompts/<id>.toml``::

    description = "Answer a support question"
    model = "gpt-4o-mini"
    [model_settings]
    temperature = 0.2
    [[messages]]
    role = "system"
    content = "You answer for {company}."
    [[messages]]
    role = "user"
    content = "{question}"

Its version is a hash of what changes the model's input (messages, model, settings).
Published versions are kept under ``prompts/.versions/<id>/<version>.json`` and labels
(``production``, ``staging``, ``v3``) in ``prompts/.versions/labels.json``, so
``get`` works offline from the files; ``publish`` also sends them to the compacted
``llm.prompt-versions`` topic. Messages rendered from a template carry the prompt's id,
version and variables, and calls made with them are tagged automatically.

Example:
    >>> import tempfile, pathlib
    >>> from llmpulse.producers.prompts import PromptRegistry
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "greet.toml").write_text(
    ...     'model = "m"\\n[[messages]]\\nrole = "user"\\ncontent = "Hello {name}"\\n')
    >>> registry = PromptRegistry(folder)
    >>> template = registry.get("greet")
    >>> rendered = template.render(name="Ada")
    >>> rendered.messages[0]["content"], rendered.prompt_id, len(rendered.prompt_version)
    ('Hello Ada', 'greet', 12)
    >>> template.render()
    Traceback (most recent call last):
    ...
    llmpulse.producers.prompts.PromptVariableError: prompt 'greet' needs variable(s) ['name']
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmpulse.schemas import ChatMessage, PromptLabel, PromptVersion, encode_event, utcnow
from llmpulse.schemas import environment as env
from llmpulse.schemas.errors import LlmpulseError
from llmpulse.schemas.topics import PROMPT_VERSIONS, topic_name

__all__ = [
    "PromptError",
    "PromptRegistry",
    "PromptTemplate",
    "PromptVariableError",
    "RenderedMessages",
    "RenderedPrompt",
    "get",
    "registry",
]

PROMPTS_DIR = env.PROMPTS_DIR
_FORMATTER = string.Formatter()


class PromptError(LlmpulseError):
    """A prompt file, version or label that cannot be used."""


class PromptVariableError(PromptError):
    """Rendering without a variable the template needs."""


class RenderedMessages(list[dict[str, str]]):
    """Chat messages rendered from a template; they remember where they came from, so
    ``track``, ``call`` and ``wrap`` tag the call with the prompt's id and version."""

    llmpulse_prompt: tuple[str, str, dict[str, str]]


@dataclass(frozen=True)
class RenderedPrompt:
    """A template with its variables filled in."""

    prompt_id: str
    prompt_version: str
    messages: RenderedMessages
    variables: dict[str, str]
    model: str | None
    model_settings: dict[str, Any]

    def call_options(self) -> dict[str, Any]:
        """Keywords for ``llmpulse.producers.call(...)``."""
        return {"prompt_id": self.prompt_id, "prompt_version": self.prompt_version,
                "messages": self.messages, "template_variables": self.variables,
                "model": self.model}


@dataclass(frozen=True)
class PromptTemplate:
    """One version of a prompt."""

    id: str
    messages: list[dict[str, str]]
    model: str | None = None
    model_settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    @property
    def version(self) -> str:
        """A hash of what the model sees: messages, model and settings (12 hex digits)."""
        canonical = json.dumps({"messages": self.messages, "model": self.model,
                                "model_settings": self.model_settings},
                               sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def variables(self) -> list[str]:
        """The ``{name}`` placeholders of the messages, sorted."""
        names: set[str] = set()
        for message in self.messages:
            for _, name, _, _ in _FORMATTER.parse(message["content"]):
                if name:
                    names.add(name.split(".")[0].split("[")[0])
        return sorted(names)

    def render(self, **variables: Any) -> RenderedPrompt:
        """Fill the variables in. Raises ``PromptVariableError`` naming what is missing."""
        missing = [v for v in self.variables if v not in variables]
        if missing:
            raise PromptVariableError(f"prompt {self.id!r} needs variable(s) {missing}")
        values = {k: str(v) for k, v in variables.items()}
        messages = RenderedMessages(
            {"role": m["role"], "content": m["content"].format_map(values)} for m in self.messages)
        used = {k: values[k] for k in self.variables}
        messages.llmpulse_prompt = (self.id, self.version, used)
        return RenderedPrompt(self.id, self.version, messages, used, self.model,
                              dict(self.model_settings))

    def to_event(self, app: str = "prompt-registry") -> PromptVersion:
        """The ``PromptVersion`` contract of this template."""
        return PromptVersion(
            app=app, prompt_id=self.id, version=self.version,
            messages=[ChatMessage(role=m["role"], content=m["content"])  # type: ignore[arg-type]
                      for m in self.messages],
            variables=self.variables, model=self.model, model_settings=dict(self.model_settings),
            metadata=dict(self.metadata), source=self.source)

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "version": self.version, "messages": self.messages,
                           "model": self.model, "model_settings": self.model_settings,
                           "metadata": self.metadata, "source": self.source},
                          indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _template(prompt_id: str, data: Mapping[str, Any], source: str | None) -> PromptTemplate:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PromptError(f"{source or prompt_id}: a prompt needs a non-empty [[messages]] list")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "content" not in m:
            raise PromptError(f"{source or prompt_id}: messages[{i}] needs role and content")
        role = str(m.get("role", "user"))
        if role not in {"system", "user", "assistant", "tool", "developer"}:
            raise PromptError(f"{source or prompt_id}: messages[{i}] has unknown role {role!r}")
        clean.append({"role": role, "content": str(m["content"])})
    metadata = {k: str(v) for k, v in data.get("metadata", {}).items()}
    if "description" in data:
        metadata.setdefault("description", str(data["description"]))
    return PromptTemplate(id=str(data.get("id", prompt_id)), messages=clean,
                          model=data.get("model"), model_settings=dict(data.get("model_settings", {})),
                          metadata=metadata, source=source)


def load_file(path: Path) -> PromptTemplate:
    """Read one prompt file (TOML, or YAML when PyYAML is installed)."""
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            try:
                import yaml
            except ImportError:
                raise PromptError(f"{path}: YAML prompts need PyYAML: "
                                  "pip install 'llmpulse-producers[yaml]'") from None
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise PromptError(f"{path}: {exc}") from None
    return _template(path.stem, data, str(path))


class PromptRegistry:
    """The prompts of one folder: current files, published versions and labels."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.store = self.directory / ".versions"

    # -- reading -----------------------------------------------------------------------
    def files(self) -> dict[str, Path]:
        found = {}
        for pattern in ("*.toml", "*.yaml", "*.yml"):
            for path in sorted(self.directory.glob(pattern)):
                found[path.stem] = path
        return found

    def current(self, prompt_id: str) -> PromptTemplate:
        path = self.files().get(prompt_id)
        if path is None:
            raise PromptError(f"no prompt {prompt_id!r} in {self.directory}")
        return load_file(path)

    def versions(self, prompt_id: str) -> list[str]:
        """Published versions of a prompt, oldest first (by publication time)."""
        folder = self.store / prompt_id
        stamped = []
        for path in folder.glob("*.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            stamped.append((data.get("published_at", ""), path.stem))
        return [version for _, version in sorted(stamped)]

    def labels(self, prompt_id: str | None = None) -> dict[str, Any]:
        path = self.store / "labels.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return data.get(prompt_id, {}) if prompt_id is not None else data

    def get(self, prompt_id: str, *, label: str | None = None,
            version: str | None = None) -> PromptTemplate:
        """A template by label or version; with neither, the file as it is now."""
        if label is not None and version is not None:
            raise PromptError("give a label or a version, not both")
        if label is not None:
            version = self.labels(prompt_id).get(label)
            if version is None:
                raise PromptError(f"prompt {prompt_id!r} has no label {label!r} "
                                  f"(labels: {sorted(self.labels(prompt_id))})")
        if version is None:
            return self.current(prompt_id)
        path = self.store / prompt_id / f"{version}.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            return _template(prompt_id, data, data.get("source"))
        current = self.current(prompt_id)
        if current.version == version:
            return current
        raise PromptError(f"prompt {prompt_id!r} has no version {version!r} "
                          f"(published: {self.versions(prompt_id)})")

    def resolve(self, ref: str) -> PromptTemplate:
        """``id``, ``id@version`` or ``id@label``."""
        prompt_id, _, which = ref.partition("@")
        if not which:
            return self.current(prompt_id)
        if which in self.labels(prompt_id):
            return self.get(prompt_id, label=which)
        return self.get(prompt_id, version=which)

    def diff(self, a: str, b: str) -> str:
        """A unified diff of two prompt references (see ``resolve``)."""
        left, right = self.resolve(a), self.resolve(b)
        return "".join(difflib.unified_diff(
            left.to_json().splitlines(keepends=True), right.to_json().splitlines(keepends=True),
            fromfile=f"{left.id}@{left.version}", tofile=f"{right.id}@{right.version}"))

    # -- writing -----------------------------------------------------------------------
    def snapshot(self, template: PromptTemplate) -> bool:
        """Keep this version in the store; False when it was already there."""
        path = self.store / template.id / f"{template.version}.json"
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(template.to_json())
        data["published_at"] = utcnow().isoformat()
        path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        return True

    def set_label(self, prompt_id: str, label: str, version: str) -> None:
        """Point a label at a published version (labels move; versions never change)."""
        self.get(prompt_id, version=version)  # it must exist
        data = self.labels()
        data.setdefault(prompt_id, {})[label] = version
        self.store.mkdir(parents=True, exist_ok=True)
        (self.store / "labels.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")

    def publish(self, *, bootstrap_servers: str | None = None, topic_prefix: str | None = None,
                ids: Iterable[str] | None = None,
                kafka_config: Mapping[str, str] | None = None) -> list[tuple[str, str, bool]]:
        """Snapshot every current file's version; send versions and labels to Kafka.

        Returns ``(prompt_id, version, new)`` for each prompt.
        """
        wanted = set(ids) if ids is not None else None
        report = []
        templates = [load_file(p) for pid, p in self.files().items()
                     if wanted is None or pid in wanted]
        for template in templates:
            report.append((template.id, template.version, self.snapshot(template)))
        if bootstrap_servers:
            from confluent_kafka import Producer

            producer = Producer({"bootstrap.servers": bootstrap_servers,
                                 "enable.idempotence": True, **dict(kafka_config or {})})
            topic = topic_name(PROMPT_VERSIONS, topic_prefix)
            for template in templates:
                for version in self.versions(template.id):
                    event = self.get(template.id, version=version).to_event()
                    producer.produce(topic, encode_event(event), f"{template.id}@{version}")
                for label, version in self.labels(template.id).items():
                    moved = PromptLabel(app="prompt-registry", prompt_id=template.id,
                                        label=label, version=version)
                    producer.produce(topic, encode_event(moved), f"{template.id}#{label}")
            if producer.flush(30):
                raise PromptError("could not deliver every prompt version to Kafka")
        return report


_registry: PromptRegistry | None = None


def registry() -> PromptRegistry:
    """The app's registry: ``$LLMPULSE_PROMPTS_DIR`` or ``./prompts``."""
    global _registry
    folder = Path(os.environ.get(PROMPTS_DIR, "prompts"))
    if _registry is None or _registry.directory != folder:
        _registry = PromptRegistry(folder)
    return _registry


def get(prompt_id: str, *, label: str | None = None, version: str | None = None) -> PromptTemplate:
    """``llmpulse.producers.prompts.get("answer", label="production")``."""
    return registry().get(prompt_id, label=label, version=version)
