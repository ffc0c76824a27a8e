"""Settings of drift detection: windows, reference, tests, features, reports.

Read from the ``drift`` section of the workers' YAML file (``LLMPULSE_CONFIG``) and from
``LLMPULSE_DRIFT__*`` variables (``__`` between levels, values read as YAML scalars)::

    drift:
      window_calls: 1000        # a window closes after this many calls of a key ...
      window_seconds: 3600      # ... or when this much event time has passed
      reference: pinned         # or "trailing" (the last reference_windows windows), or
                                # "seasonal" (windows of the same hour on earlier days)
      reference_calls: 2000
      alpha: 0.005              # false-alarm probability per window, all features together
      thresholds: {toxicity: 0.5}        # rate of calls at or above, tested as a rate
      low_thresholds: {relevance: 0.4}   # rate of calls below
      rate_test: auto           # rare-event rates: a GLR scan while the baseline's calls times
      rate_cusum_events: 300    # ... the rate's prior are below this, then a Bernoulli CUSUM
      rate_prior: {error: 0.01, refusal: 0.03}  # ... (replaces DEFAULT_RATE_PRIOR; no prior: scan)
      rate_scan_windows: 6      # ... over the last 1..6 windows
      rate_cusum_rise: 2        # the rise the CUSUM is tuned to (twice the baseline rate)
      rate_share: 0.75          # the rates' tests' share of alpha together, the rest the others'
      rate_scan_reset: true     # a rate whose scan fired scans only the windows after it
      rate_reference_calls: 20000  # the rates' own baseline: counts of up to this many calls
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

__all__ = ["DEFAULT_RATE_PRIOR", "DEFAULT_SCORES", "DriftConfig", "load_drift_config", "read_section"]

PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Probability = Annotated[float, Meta(gt=0, lt=1)]

DEFAULT_SCORES: dict[str, Literal["numeric", "binary"]] = {
    "toxicity": "numeric", "relevance": "numeric", "groundedness": "numeric", "refusal": "binary",
}
"""The score distributions compared by default, by ``ScoreResult.name``, and how."""

DEFAULT_RATE_PRIOR: dict[str, float] = {
    "error": 0.01, "guardrail": 0.01, "refusal": 0.03, "toxicity>=0.5": 0.01, "relevance<0.4": 0.02,
    "thumbs_down_share": 0.1,
}
"""``rate_test: auto``'s typical rate of each default rate (errors 1%, refusals 3%, a tenth of
thumbs down): with ``rate_cusum_events`` 300 and a 20,000-call baseline, refusals and the
relevance rate are tested by the CUSUM and the 1% rates by the scan; the thumbs by the
CUSUM once the baseline holds 3,000 thumbs (the share's calls are the thumbs given). Left at
its default, a threshold's prior follows the configured threshold (``DriftConfig.priors``:
``thresholds: {toxicity: 0.7}`` gives ``toxicity>=0.7`` the 0.01 of ``toxicity>=0.5``)."""

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
    reference: Literal["pinned", "trailing", "seasonal"] = "pinned"
    """``pinned``: a fixed reference (the first ``reference_calls`` calls of the key, or the
    period ``reference_start``-``reference_end``); ``trailing``: the last
    ``reference_windows`` windows, so slow change is absorbed and a shift resolves;
    ``seasonal``: the last ``reference_windows`` windows that began in the same slot of the
    season (the same hour of earlier days), so a daily rhythm of the mix is not drift."""
    reference_calls: PositiveInt = 2000
    reference_start: datetime | None = None
    reference_end: datetime | None = None
    reference_windows: PositiveInt = 4
    season_seconds: PositiveFloat = 86_400.0
    """The period of ``seasonal`` references (86,400: a day; 604,800: a week)."""
    season_slots: PositiveInt = 24
    """Slots a period is cut into; a window's slot is that of its start."""
    alpha: Probability = 0.005
    """Chance that a window of unchanged traffic is called drifted, for all tests together
    (weighted Holm's step-down over the window's tests, ``rate_share``)."""
    min_samples: PositiveInt = 30
    """A feature with fewer values on either side is not tested in that window."""
    min_drifted_features: PositiveInt = 1
    """Features that must drift for the window to count as drifted."""
    scores: dict[str, Literal["numeric", "binary"]] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_SCORES))
    thresholds: dict[str, float] = msgspec.field(default_factory=lambda: {"toxicity": 0.5})
    """Scores whose rate at or above a threshold is tested (``toxicity>=0.5``): the share of
    rare bad calls, which a test of the whole distribution hardly sees."""
    low_thresholds: dict[str, float] = msgspec.field(default_factory=lambda: {"relevance": 0.4})
    """Scores whose rate below a threshold is tested (``relevance<0.4``)."""
    events: bool = True
    """The rates of failed calls (``error``) and of calls a guardrail flagged (``guardrail``)."""
    tails: bool = True
    """Each numeric feature also gets a test of its tails: the shares beyond the pooled
    ``tail_quantile`` (and below ``1 - tail_quantile``), Fisher's exact test."""
    tail_quantile: Annotated[float, Meta(gt=0.5, lt=1)] = 0.98
    rate_scan_windows: PositiveInt = 6
    """The rates (thresholds, binary scores, events, thumbs down) are tested for a rise over
    every span of the last 1..k windows (a scan, ``rate_scan_<k>w``; 1: the window alone):
    a small share of calls going bad shows over several windows before one window can tell,
    and no one knows in advance over how many."""
    rate_test: Literal["auto", "cusum", "scan"] = "auto"
    """How a rate's windows are tested. ``cusum`` (``drift.cusum``): a Bernoulli CUSUM
    tuned to ``rate_cusum_rise``, its p-value the share of stationary windows in which it
    would alarm, restarted after each alarm (a sequential test's false alarms; closed form,
    averaged over the baseline rate's uncertainty): ``rate_cusum_<k>w``. ``scan``
    (``stats.rate_scan_test``): the GLR scan with an exact per-window p-value, by Monte
    Carlo: ``rate_scan_<k>w``. ``auto``: the CUSUM once the baseline's calls (thumbs, for
    the thumbs-down share) times the rate's ``rate_prior`` reach ``rate_cusum_events``, the
    scan before that and for a rate without a prior. The CUSUM pays for a baseline rate it
    must estimate, much while few events fix it (errors at 1% in a 1,600-call reference:
    16), where the scan's conditional test pays nothing for it; against a long baseline of a
    commoner rate the CUSUM finds more (``benchmarks/drift_rate_power.py``). The pick rests
    on the baseline's size and a fixed prior, never on its events: the baseline's calls say
    nothing about the rate, so each test keeps its own level whichever is picked. All look
    at the last ``rate_scan_windows`` windows and are cut at an alarm (``rate_scan_reset``)."""
    rate_cusum_events: PositiveFloat = 300.0
    """``auto``: the expected events (baseline calls times ``rate_prior``) from which a rate
    is tested by the CUSUM (measured: at 200 events the scan finds as much or more, at 600
    the CUSUM more)."""
    rate_prior: dict[str, Probability] = msgspec.field(default_factory=lambda: dict(DEFAULT_RATE_PRIOR))
    """``auto``: the rate each rate test's baseline is expected to have, by the rate's name
    (``error``, ``toxicity>=0.5``, ``thumbs_down_share``): a typical rate, not a measured
    one; it only picks the test (a wrong prior costs power, never false alarms). A name that
    is not one of the configuration's rates (``features.rate_names``) is refused: misspelt, its
    rate would silently keep the scan. Left at the default, its threshold rates follow the
    configured thresholds (``priors``); the monitor warns at start-up of a rate with none."""
    rate_cusum_rise: Annotated[float, Meta(gt=1)] = 2.0
    """The rise of a rate the CUSUM is tuned to, as a multiple of the baseline's."""
    rate_scan_reset: bool = True
    """A rate whose scan fired scans only the windows after that one, one more each window
    (a CUSUM's reset, ``attributes.rate_scan_cut``): one burst raises one alarm, not one per
    window it stays in the scan (stationary false alarms about halved), and each new alarm
    rests on new evidence. The price: a weak rise that lasts alarms every few windows, as
    evidence gathers again, rather than every window; with the alert rule's ``clear_after``
    below ``rate_scan_windows`` its incident may resolve and open again. False: the rate
    keeps scanning its last ``rate_scan_windows`` windows after an alarm (only with
    ``rate_test: scan``: the CUSUM's level assumes the restart, so the pair is refused)."""
    rate_share: Probability = 0.75
    """The share of ``alpha`` the rates' tests hold together, split evenly among them; the
    other tests (KS, tails, categories, embeddings) split the rest evenly (weighted Holm,
    ``compare.weights``; the family's level stays ``alpha``). The rates are the rare events
    users care about most, where the evidence is thinnest, and a rate's power grows with its
    level where a distribution shift's hardly does: with 6 rates and 25 other tests, each rate
    is held to ``alpha / 8`` and each other test to ``alpha / 100`` (``benchmarks/
    drift_rate_power.py --levels``, docs/FIGURES.md). Fixed, so the rates' level does not
    shrink as tests are added (embeddings add four)."""
    rate_reference_calls: Annotated[int, Meta(ge=0)] = 20_000
    """The rates' own baseline, counts of up to this many calls (``drift.baseline``): a
    ``pinned`` reference's counts (over every call it was built from, beyond its sample: pin
    a long period, ``pin_reference`` or ``reference_start``-``reference_end``, and the rates
    start with up to this many: of a longer period its NEWEST calls, between 15/16 of this
    many and this many, counted in chunks of 1/16 the oldest of which is dropped as the
    count passes the cap: ``WindowData.count_newest``) plus the windows that passed,
    absorbed once they leave the scan, until this cap or the first drifted window; a
    ``trailing`` reference's windows before the scanned ones, at least ``reference_windows``
    and more within this cap. 0: the rates are tested against the sample reference alone.
    ``seasonal``: not used."""
    descriptors: bool = True
    """Text descriptors of prompt and answer: length, non-letter share, language, OOV rate."""
    sentiment: bool = True
    """VADER sentiment of prompt and answer (its lexicon ships in ``vadersentiment``)."""
    tool_mix: bool = True
    """The tools an answer calls, as a category (``none``, ``lookup_order``,
    ``refund+search``): a change in the share of answers with tool calls or in which tools
    they call."""
    feedback: bool = True
    """Thumbs-down share and the ratings of the feedback that arrived during the window."""
    embeddings: bool = True
    """MiniLM embeddings of prompts and answers: Hotelling's T² on the reference's
    principal components."""
    embedding_sample: PositiveInt = 64
    """Calls per window whose prompt and answer are embedded (the first by hash)."""
    reference_embedding_sample: PositiveInt = 256
    embedding_components: PositiveInt = 8
    topic_clusters: Annotated[int, Meta(ge=0)] = 8
    """Topics: k-means clusters of the pooled embeddings, tested as categories (0: not)."""
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
        if self.rate_test != "scan" and not self.rate_scan_reset:
            # its p-value is the crossing rate of a CUSUM restarted after each alarm: one left
            # above its threshold would alarm every window, far above alpha
            raise ValueError(f"drift: rate_test: {self.rate_test} needs rate_scan_reset: true (the "
                             "CUSUM's false-alarm level assumes a restart after each alarm); use "
                             "rate_test: scan to keep "
                             "scanning after an alarm")
        if self.rate_prior != DEFAULT_RATE_PRIOR:  # the defaults name rates a config may lack
            from llmpulse.processors.drift.features import rate_names  # it imports this module

            known = rate_names(self)
            unknown = sorted(set(self.rate_prior) - set(known))
            if unknown:  # a misspelt name would silently leave its rate to the scan
                raise ValueError(f"drift: rate_prior names no rate of this configuration: "
                                 f"{', '.join(unknown)} (its rates: {', '.join(known)})")


    def priors(self) -> dict[str, float]:
        """``rate_prior`` as the tests look it up: the default's threshold rates renamed to
        this configuration's thresholds (a configured ``rate_prior`` is taken as it is).

        Example:
            >>> DriftConfig(thresholds={"toxicity": 0.7}).priors()["toxicity>=0.7"]
            0.01
        """
        if self.rate_prior != DEFAULT_RATE_PRIOR:
            return dict(self.rate_prior)
        priors: dict[str, float] = {}
        for name, prior in self.rate_prior.items():
            score, op, _cut = name.partition(">=") if ">=" in name else name.partition("<")
            cuts = self.thresholds if op == ">=" else self.low_thresholds if op == "<" else {}
            priors[f"{score}{op}{cuts[score]:g}" if score in cuts else name] = prior
        return priors


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
