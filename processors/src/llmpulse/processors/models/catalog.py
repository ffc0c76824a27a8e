"""The models llmpulse knows how to fetch: each one's files, addresses and checksums.

The catalog ships with the project (``models/data/catalog.json``). Each file has the
address its publisher uses (Detoxify's GitHub release assets, the base models' files on
the Hugging Face hub), and, where one can be stated honestly, its sha256 and size; a
Detoxify checkpoint's name carries the first hex digits of its sha256 (the torch.hub
convention), which is checked even where the full hash is not pinned. ``hash_source``
says where each pinned hash comes from.

Example:
    >>> from llmpulse.processors.models.catalog import Catalog
    >>> catalog = Catalog.load()
    >>> catalog["detoxify-original"].scorer, catalog["minilm"].kind
    ('toxicity', 'sentence-transformers')
    >>> sorted(catalog.names)[:2]
    ['detoxify-multilingual', 'detoxify-original']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from llmpulse.processors.errors import ConfigError

__all__ = ["CATALOG_RESOURCE", "Catalog", "ModelFile", "ModelSpec"]

CATALOG_RESOURCE = "data/catalog.json"
"""The shipped catalog, inside ``llmpulse.processors.models``."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, as published.

    Attributes:
        path: where it goes inside the model's folder (``base/tokenizer.json``).
        url: the address its publisher serves it from.
        sha256: its full sha256 when pinned, else None.
        size: its size in bytes when known.
        sha256_prefix: the leading hex digits of its sha256 (from a torch.hub file name).
        role: ``checkpoint`` for a Detoxify checkpoint, else None.
        hash_source: where the pinned hash comes from.
    """

    path: str
    url: str
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None
    role: str | None = None
    hash_source: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether the full sha256 is known before the download."""
        return self.sha256 is not None


@dataclass(frozen=True)
class ModelSpec:
    """A model a scorer can run, and the files it needs.

    Attributes:
        name: ``detoxify-original``, ``minilm``...
        scorer: ``toxicity`` or ``embeddings``.
        kind: ``detoxify`` (a checkpoint plus its base model's config and tokenizer) or
            ``sentence-transformers`` (a whole sentence-transformers folder).
        model_type: Detoxify's name for it (``original``), for Detoxify models.
        package: an installed Python package that may already hold the same files.
    """

    name: str
    scorer: str
    kind: str
    description: str
    base_model: str
    files: tuple[ModelFile, ...]
    model_type: str | None = None
    package: str | None = None

    @property
    def checkpoint(self) -> ModelFile | None:
        """The Detoxify checkpoint file, if this model has one."""
        return next((f for f in self.files if f.role == "checkpoint"), None)


class Catalog:
    """The models known to ``llmpulse models fetch``, by name.

    Args:
        models: the specs by name.
        source: the file they were read from.
    """

    def __init__(self, models: dict[str, ModelSpec], source: str) -> None:
        self.models = models
        self.source = source

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        """Read a catalog (default: the shipped one).

        Raises:
            ConfigError: the file is missing or malformed.
        """
        try:
            if path is None:
                shipped = resources.files("llmpulse.processors.models").joinpath(CATALOG_RESOURCE)
                text = shipped.read_text("utf-8")
                source = f"llmpulse.processors.models/{CATALOG_RESOURCE}"
            else:
                text, source = Path(path).read_text("utf-8"), str(path)
            data = json.loads(text)
            models = {name: _spec(name, raw) for name, raw in data["models"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"not a models catalog: {type(exc).__name__}: {exc}",
                              source=str(path or CATALOG_RESOURCE)) from None
        return cls(models, source)

    @property
    def names(self) -> list[str]:
        """The model names, in catalog order."""
        return list(self.models)

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(self.models)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.models


def _spec(name: str, raw: dict[str, Any]) -> ModelSpec:
    files = tuple(ModelFile(**f) for f in raw["files"])
    return ModelSpec(name=name, scorer=raw["scorer"], kind=raw["kind"],
                     description=raw.get("description", ""), base_model=raw.get("base_model", ""),
                     files=files, model_type=raw.get("model_type"), package=raw.get("package"))
