"""Errors of the stream processors' scoring and guardrail library.

Scorers do not raise for a missing model: they return ``ScoreResult(status="unavailable")``
naming it. These exceptions are for configuration that cannot work at all.

Example:
    >>> from llmpulse.processors.errors import ConfigError, missing_dependency
    >>> err = missing_dependency("detoxify", "the toxicity scorer")
    >>> print(err)
    the toxicity scorer needs 'detoxify': pip install 'llmpulse-processors[ml]'
    >>> isinstance(err, ConfigError)
    True
    >>> print(missing_dependency("pyarrow", "a Parquet dataset", extra="replay"))
    a Parquet dataset needs 'pyarrow': pip install 'llmpulse-processors[replay]'
"""

from __future__ import annotations

from llmpulse.schemas.errors import LlmpulseError

__all__ = [
    "ConfigError",
    "ModelUnavailableError",
    "PolicyError",
    "ProcessorError",
    "missing_dependency",
]

INSTALL_ML = "pip install 'llmpulse-processors[ml]'"
"""The install line for the model-backed scorers and Presidio."""



class ProcessorError(LlmpulseError):
    """The root of the processors' errors."""


class ConfigError(ProcessorError):
    """The configuration file or an ``LLMPULSE_*`` variable is invalid.

    Attributes:
        source: the file or variable that holds the bad value, when known.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class PolicyError(ConfigError):
    """A guardrail policy file is invalid (the rule id and the key are in the message)."""


class ModelUnavailableError(ProcessorError):
    """A model could not be loaded; scorers turn this into ``status="unavailable"``.

    Attributes:
        model: the model or checkpoint that is missing, by name or path.
    """

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"{model}: {reason}")


def missing_dependency(package: str, what: str, *, extra: str = "ml") -> ConfigError:
    """The error for an optional dependency that is not installed, with the line to run
    (``extra`` names the ``llmpulse-processors`` extra that brings it)."""
    return ConfigError(f"{what} needs {package!r}: pip install 'llmpulse-processors[{extra}]'")
