"""Models for the model scorers: fetched, verified, exported to ONNX, run without torch.

``llmpulse models fetch`` writes a models folder (``catalog`` says what to download,
``fetch`` downloads and verifies, ``folder`` keeps its manifest, ``export`` makes the ONNX
files, ``openvino_backend`` the OpenVINO int8 models); the toxicity and embedding scorers
read it at run time through ``runtime`` (ONNX Runtime, torch) and ``openvino_backend``.

Example:
    >>> from llmpulse.processors.models import Catalog, ModelsFolder
    >>> "minilm" in Catalog.load()
    True
"""

from llmpulse.processors.models.catalog import Catalog, ModelFile, ModelSpec
from llmpulse.processors.models.fetch import (
    ChecksumError,
    FetchError,
    NetworkError,
    OfflineError,
    fetch_models,
)
from llmpulse.processors.models.folder import ModelsFolder, Problem

__all__ = [
    "Catalog",
    "ChecksumError",
    "FetchError",
    "ModelFile",
    "ModelSpec",
    "ModelsFolder",
    "NetworkError",
    "OfflineError",
    "Problem",
    "fetch_models",
]
