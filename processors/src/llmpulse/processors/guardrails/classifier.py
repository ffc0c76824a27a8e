"""The classifier tier of the ``prompt_injection`` rule: a sequence-classification model
(``protectai/deberta-v3-base-prompt-injection-v2``, ``meta-llama/Prompt-Guard-86M``...)
from the models folder, on ONNX Runtime or torch.

The model is read only from the models folder (``llmpulse models fetch
deberta-injection``; the rule's ``classifier_models_dir`` or ``$LLMPULSE_MODELS_DIR``), and
run by the same runtime as the toxicity and embedding models (``models.runtime``):
``auto`` takes the fetch's ONNX export where there is one, else torch. Its score for a text
is the probability of every class that is not the benign one (``SAFE``, ``BENIGN``), so
Prompt-Guard's ``INJECTION`` and ``JAILBREAK`` add up. The backend is named
(``deberta-injection+onnx-fp32``, ``deberta-injection+torch``); when the model cannot be
loaded, ``missing`` says why, by name, and a warning is logged once: no score is made up.

Example:
    >>> from llmpulse.processors.guardrails.classifier import InjectionClassifier
    >>> tier = InjectionClassifier("deberta-injection", models_dir="/nonexistent")
    >>> tier.load() is None, tier.backend
    (True, 'none')
    >>> tier.missing
    'deberta-injection: not in a models folder (/nonexistent); run llmpulse models fetch deberta-injection'
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from llmpulse.processors.errors import ModelUnavailableError
from llmpulse.processors.models.folder import configured_model_dir

__all__ = ["BENIGN_CLASSES", "InjectionClassifier"]

logger = logging.getLogger(__name__)

BENIGN_CLASSES = frozenset({"safe", "benign", "label_0", "legit", "legitimate"})
"""Class names (lower case) that mean "no attack"; every other class counts as one."""


class InjectionClassifier:
    """A prompt-injection classifier from the models folder, loaded once on first use.

    Args:
        model: the model's sub-folder in the models folder.
        models_dir: the models folder (None: ``$LLMPULSE_MODELS_DIR``).
        backend: ``auto`` (ONNX export, else torch), ``onnx`` or ``torch``.
        precision: the ONNX model's, ``fp32`` or ``int8``.
        batch_size: texts per model run.
        max_chars: each text is cut here before tokenising (the model truncates at its
            maximum tokens anyway).

    Attributes:
        backend: ``<model>+onnx-<precision>`` or ``<model>+torch``; ``none`` until loaded
            or when missing.
        missing: why the model is not available (None while it is, or before loading).
    """

    def __init__(self, model: str, *, models_dir: str | None = None, backend: str = "auto",
                 precision: str = "fp32", batch_size: int = 32, max_chars: int = 4000) -> None:
        self.model = model
        self.models_dir = models_dir
        self.wanted = backend
        self.precision = precision
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.backend = "none"
        self.missing: str | None = None
        self._runtime: Any = None
        self._benign: list[int] = []
        self._resolved = False
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the model once; None (and ``missing`` says why) when it is not available."""
        with self._lock:
            if not self._resolved:
                self._resolved = True
                try:
                    self._runtime = self._load()
                except ModelUnavailableError as exc:
                    self.missing = f"{self.model}: {exc}" if self.model not in str(exc) else str(exc)
                    logger.warning("guardrails: injection classifier unavailable, only the pattern and "
                                   "similarity tiers run: %s", self.missing)
        return self._runtime

    def _load(self) -> Any:
        from llmpulse.processors.models.runtime import OnnxTextModel, TorchTextModel

        folder = configured_model_dir(self.models_dir, self.model)
        if folder is None:
            where = self.models_dir or "$LLMPULSE_MODELS_DIR"
            raise ModelUnavailableError(self.model, f"not in a models folder ({where}); run llmpulse "
                                        f"models fetch {self.model}")
        reasons: list[str] = []
        runtime: Any = None
        for onnx in [o for o in (True, False) if self.wanted == "auto" or o == (self.wanted == "onnx")]:
            try:
                if onnx:
                    runtime = OnnxTextModel(folder, precision=self.precision, batch_size=self.batch_size)
                    self.backend = f"{self.model}+onnx-{self.precision}"
                else:
                    runtime = TorchTextModel(folder, batch_size=self.batch_size)
                    self.backend = f"{self.model}+torch"
                break
            except ModelUnavailableError as exc:
                reasons.append(str(exc))
        if runtime is None:
            raise ModelUnavailableError(self.model, "; ".join(reasons))
        if runtime.task != "single-label":
            raise ModelUnavailableError(self.model, f"not a sequence classifier (its task is {runtime.task})")
        self._benign = [i for i, c in enumerate(runtime.classes) if c.lower() in BENIGN_CLASSES]
        if len(self._benign) != 1 or len(runtime.classes) < 2:
            self.backend = "none"
            raise ModelUnavailableError(self.model, f"cannot tell its benign class among {runtime.classes}")
        logger.info("guardrails: injection classifier %s from %s", self.backend, folder)
        return runtime

    def scores(self, texts: Sequence[str]) -> list[float] | None:
        """The attack probability of each text (1 - P(benign)); None when the model is missing."""
        runtime = self.load()
        if runtime is None:
            return None
        if not texts:
            return []
        probabilities = runtime.run([t[:self.max_chars] for t in texts])
        return [float(1.0 - row[self._benign[0]]) for row in probabilities]
