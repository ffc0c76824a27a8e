"""Settings of drift detection: windows, reference, tests, features, reports.

Read from the ``drift`` section of the workers' YAML file (``LLMPULSE_CONFIG``) and from
``LLMPULSE_DRIFT__*`` variables (``__`` between levels, values read as YAML scalars)::

    drift:
      window_calls: 1000        # a window closes after this many calls of a key ...
      window_seconds: 3600      # ... or when this much event time has passed
      reference: pinned         # or "trailing" (the last reference_windows windows)
      reference_calls: 2000
      alpha: 0.005              # false-alarm probability per window, all features together
      reports_dir: /var/lib/llmpulse/drift-reports

Example:
    >>> from llmpulse.processors.drift.config import load_drift_config
    >>> cfg = load_drift_config(environ={"LLMPULSE_DRIFT__WINDOW_CALLS": "500"})
    >>> cfg.window_calls, cfg.reference, cfg.alpha
    (500, 'pinned', 0.005)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from llmpulse.processors.config import read_file, set_from_env
from llmpulse.processors.errors import ConfigError
from llmpulse.schemas import environment as env

__all__ = ["DEFAULT_SCORES", "DriftConfig", "load_drift_config", "read_section"]

PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Probability = Annotated[float, Meta(gt=0, lt=1)]

DEFAULT_SCORES: dict[str, Literal["numeric", "binary"]] = {
    "toxicity": "numeric", "relevance": "numeric", "groundedness": "numeric", "refusal": "binary",
}
"""The score distributions compared by default, by ``ScoreResult.name``, and how."""

T = TypeVar("T")


class DriftConfig(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How windows are cut, what they are compared with, and how a window is judged."""

    window_calls: PositiveInt | None = 1000
    """A key's window closes when it holds this many calls (None: by time only)."""
    window_seconds: PositiveFloat | None = 3600.0
    """Tumbling windows of event time, aligned to the epoch (None: by count only). With both,
    whichever comes first closes the window."""
    min_window_calls: PositiveInt = 100
    """A time window with fewer calls is not tested: it stays open and joins the next."""
    grace_seconds: NonNegFloat = 0.0
    """``tick(now)`` closes a time window only once ``now`` is this far past its end."""
    sample_size: PositiveInt = 1000
    """Calls kept per window (a uniform sample chosen by a hash of ``call_id``); descriptors
    are computed only for the calls kept, so busy keys cost little per call."""
    reference: Literal["pinned", "trailing"] = "pinned"
    """``pinned``: a fixed reference (the first ``reference_calls`` calls of the key, or the
    period ``reference_start``-``reference_end``); ``trailing``: the last
    ``reference_windows`` windows, so slow change is absorbed and a shift resolves."""
    reference_calls: PositiveInt = 2000
    reference_start: datetime | None = None
    reference_end: datetime | None = None
    reference_windows: PositiveInt = 4
    alpha: Probability = 0.005
    """Chance that a window of unchanged traffic is called drifted, for all features
    together (Bonferroni: each of the F features tested is held to ``alpha / F``)."""
    min_samples: PositiveInt = 30
    """A feature with fewer values on either side is not tested in that window."""
    min_drifted_features: PositiveInt = 1
    """Features that must drift for the window to count as drifted."""
    scores: dict[str, Literal["numeric", "binary"]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_SCORES))
    descriptors: bool = True
    """Text descriptors of prompt and answer: length, non-letter share, language, OOV rate."""
    sentiment: bool = True
    """VADER sentiment of prompt and answer (its lexicon ships in ``vadersentiment``)."""
    feedback: bool = True
    """Thumbs-down share and the ratings of the feedback that arrived during the window."""
    embeddings: bool = True
    """MiniLM embeddings of prompts and answers: Hotelling's T² on the reference's
    principal components."""
    embedding_sample: PositiveInt = 64
    """Calls per window whose prompt and answer are embedded (the first by hash)."""
    reference_embedding_sample: PositiveInt = 256
    embedding_components: PositiveInt = 8
    text_max_chars: PositiveInt = 2000
    """Texts are cut to this length before descriptors and embeddings."""
    reports_dir: str | None = None
    """Where the Evidently HTML report of each drifted window is written (None: none)."""
    max_keys: PositiveInt = 10_000
    """Keys held in memory; beyond it the least recently seen key is dropped (logged)."""

    def __post_init__(self) -> None:
        if self.window_calls is None and self.window_seconds is None:
            raise ValueError("drift: set window_calls, window_seconds or both")
        if (self.reference_start is None) != (self.reference_end is None):
            raise ValueError("drift: set both reference_start and reference_end, or neither")


def read_section(section: str, kind: type[T], path: str | os.PathLike[str] | None = None, *,
                 environ: Mapping[str, str] | None = None,
                 path_keys: tuple[str, ...] = ()) -> T:
    """One section of the workers' file plus its ``LLMPULSE_<SECTION>__*`` variables.

    Args:
        section: the top-level key (``drift``, ``alerting``).
        kind: the msgspec Struct to build.
        path: the YAML file; default ``$LLMPULSE_CONFIG``, else defaults only.
        environ: the variables (default ``os.environ``).
        path_keys: keys holding paths, taken from the file's folder when relative.

    Raises:
        ConfigError: naming the file or variable and what is wrong.
    """
    source_env = os.environ if environ is None else environ
    file = path if path is not None else source_env.get(env.CONFIG) or None
    data: dict[str, Any] = {}
    if file is not None:
        file_path = Path(file)
        data = dict(read_file(file_path).get(section) or {})
        for key in path_keys:
            if isinstance(data.get(key), str):
                data[key] = str(file_path.resolve().parent / Path(data[key]).expanduser())
    prefix = {"drift": env.DRIFT_PREFIX, "alerting": env.ALERTING_PREFIX}.get(
        section, f"LLMPULSE_{section.upper()}__")
    for name, raw in sorted(source_env.items()):
        if name.startswith(prefix):
            set_from_env(data, name[len(prefix):].lower().split("__"), name, raw)
    try:
        return msgspec.convert(data, kind, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(str(exc), source=str(file) if file is not None else "environment") from None


def load_drift_config(path: str | os.PathLike[str] | None = None, *,
                      environ: Mapping[str, str] | None = None) -> DriftConfig:
    """The ``drift`` section of the workers' file and ``LLMPULSE_DRIFT__*`` variables."""
    return read_section("drift", DriftConfig, path, environ=environ, path_keys=("reports_dir",))
