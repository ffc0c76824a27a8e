"""``AlertEngine``: turns drift results, calls and feedback into firing and resolved alerts.

Rules (``AlertConfig``): drift on N consecutive windows; toxicity, guardrail-violation and
error rates over a sliding window of event time; feedback collapse (thumbs-down share up,
or mean rating down). Per key (app, environment, prompt id, version, model) and rule there
is one incident at a time:

- an incident fires once (``status="firing"``) and resolves once (``status="resolved"``,
  same ``dedup_key``, ``started_at`` of the firing); nothing is repeated in between;
- rates resolve with hysteresis (at ``threshold * clear_ratio``), drift after
  ``clear_after`` clean windows in a row;
- after a resolve, the same rule and key stay quiet for ``cooldown_seconds``: a flapping
  problem gives one alert, not one per flap (suppressions are counted).

Time is event time: ``now`` defaults to the latest event seen, so replays and tests give
the same alerts as the stream did. Alerts derive their ids from the incident, so a
re-evaluation after a restart writes the same ids (the sink is idempotent).

Example:
    >>> from llmpulse.processors.alerting import AlertConfig, AlertEngine
    >>> from llmpulse.processors.drift.simulate import TrafficGenerator
    >>> engine = AlertEngine(AlertConfig(drift=None, guardrail=None, feedback=None))
    >>> gen = TrafficGenerator(seed=2, calls_per_second=5)
    >>> engine.evaluate(calls=gen.calls(600))
    []
    >>> [(a.rule, a.status) for a in engine.evaluate(calls=gen.calls(600, shift="toxicity_up"))]
    [('toxicity', 'firing')]
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from msgspec import Struct

from llmpulse.processors._ids import derived_uuid7
from llmpulse.processors.alerting.rules import SEVERITY_ORDER, AlertConfig, FeedbackRule, RateRule
from llmpulse.processors.drift.window import DriftKey
from llmpulse.schemas import Alert, DriftResult, EnrichedCall, FeedbackEvent

__all__ = ["AlertEngine"]

logger = logging.getLogger(__name__)
_BUCKETS = 30
"""A rate rule's window is counted in this many buckets."""
_CALL_INDEX = 200_000


class _Incident(Struct, kw_only=True, omit_defaults=True):
    status: Literal["ok", "firing"] = "ok"
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    streak: int = 0
    """Drift: windows drifted in a row (> 0) or clean in a row (< 0)."""
    link: str | None = None


class _KeyAlerts(Struct, kw_only=True, omit_defaults=True):
    version: int = 1
    buckets: dict[str, dict[int, tuple[float, float]]] = {}
    """metric -> bucket -> (hits or sum, count)."""
    incidents: dict[str, _Incident] = {}


class AlertEngine:
    """Evaluates the alert rules per key.

    Args:
        config: the rules (default ``AlertConfig()``).

    Attributes:
        counts: ``fired``, ``resolved``, ``suppressed`` (in cooldown).
    """

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config if config is not None else AlertConfig()
        self.counts: Counter[str] = Counter()
        self._keys: dict[DriftKey, _KeyAlerts] = {}
        self._calls: OrderedDict[str, DriftKey] = OrderedDict()
        self._dirty: set[DriftKey] = set()
        self._clock: datetime | None = None
        cfg = self.config
        self._rates: dict[str, RateRule] = {name: rule for name, rule in
                                            (("toxicity", cfg.toxicity), ("guardrail", cfg.guardrail),
                                             ("errors", cfg.errors)) if rule is not None}

    # -- input ---------------------------------------------------------------------------

    def evaluate(self, drift_results: Iterable[DriftResult] = (), calls: Iterable[EnrichedCall] = (),
                 feedback: Iterable[FeedbackEvent] = (), now: datetime | None = None) -> list[Alert]:
        """Take new results, calls and feedback, then evaluate every rule at ``now``
        (default: the latest event time seen). The alerts that changed state, in order."""
        for call in calls:
            self._add_call(call)
        for event in feedback:
            self._add_feedback(event)
        alerts: list[Alert] = []
        if self.config.drift is not None:
            for result in drift_results:
                alerts.extend(self._drift(result))
        now = now or self._clock
        if now is not None:
            for key in list(self._keys):
                alerts.extend(self._rates_at(key, now))
        return alerts

    def _tick(self, when: datetime) -> None:
        if self._clock is None or when > self._clock:
            self._clock = when

    def _count(self, key: DriftKey, metric: str, width: float, when: datetime, hit: float,
               n: float = 1.0) -> None:
        state = self._keys.setdefault(key, _KeyAlerts())
        buckets = state.buckets.setdefault(metric, {})
        bucket = math.floor(when.timestamp() / width)
        old = buckets.get(bucket, (0.0, 0.0))
        buckets[bucket] = (old[0] + hit, old[1] + n)
        self._dirty.add(key)

    def _add_call(self, call: EnrichedCall) -> None:
        key = DriftKey.of(call)
        self._calls[call.call_id] = key
        if len(self._calls) > _CALL_INDEX:
            self._calls.popitem(last=False)
        when = call.occurred_at
        self._tick(when)
        if "errors" in self._rates:
            response = call.response
            failed = not call.complete or response is None or response.error is not None
            self._count(key, "errors", self._rates["errors"].window_seconds / _BUCKETS, when, float(failed))
        if "toxicity" in self._rates:
            rule = self._rates["toxicity"]
            value = next((s.value for s in call.scores if s.name == "toxicity" and s.status == "ok"
                          and s.value is not None), None)
            if value is not None:
                self._count(key, "toxicity", rule.window_seconds / _BUCKETS, when,
                            float(value >= rule.score_threshold))
        if "guardrail" in self._rates:
            rule = self._rates["guardrail"]
            floor = SEVERITY_ORDER[rule.min_severity]
            hit = any(SEVERITY_ORDER[v.severity] >= floor or v.action == "block" for v in call.verdicts)
            self._count(key, "guardrail", rule.window_seconds / _BUCKETS, when, float(hit))

    def _add_feedback(self, event: FeedbackEvent) -> None:
        rule = self.config.feedback
        if rule is None:
            return
        key = self._calls.get(event.call_id) or DriftKey.of(event)
        width = rule.window_seconds / _BUCKETS
        self._tick(event.occurred_at)
        if event.thumbs is not None:
            self._count(key, "thumbs", width, event.occurred_at, float(event.thumbs == "down"))
        if event.rating is not None:
            self._count(key, "rating", width, event.occurred_at, float(event.rating))

    # -- rules ---------------------------------------------------------------------------

    def _drift(self, result: DriftResult) -> list[Alert]:
        rule = self.config.drift
        assert rule is not None
        key = DriftKey(result.app, result.environment, result.prompt_id or "", result.prompt_version or "",
                       result.request_model or "")
        self._tick(result.window_end)
        incident = self._keys.setdefault(key, _KeyAlerts()).incidents.setdefault("drift", _Incident())
        self._dirty.add(key)
        if result.drifted:
            incident.streak = incident.streak + 1 if incident.streak > 0 else 1
            incident.link = result.report_uri or incident.link
        else:
            incident.streak = incident.streak - 1 if incident.streak < 0 else -1
        drifted = [f.feature for f in result.features if f.drifted]
        if incident.status == "ok":
            summary = (f"Drift in {key.label()}: {len(drifted)} of {len(result.features)} features drifted "
                       f"{incident.streak} windows in a row ({', '.join(drifted[:6])})")
        else:
            summary = f"Drift in {key.label()} cleared: {-incident.streak} windows in a row without drift"
        alert = self._transition(key, "drift", rule.severity, when=result.window_end,
                                 fire=incident.streak >= rule.consecutive,
                                 clear=incident.streak <= -rule.clear_after,
                                 value=result.share_drifted, threshold=None, summary=summary,
                                 link=incident.link)
        return [alert] if alert is not None else []

    def _window(self, key: DriftKey, metric: str, seconds: float, now: datetime) -> tuple[float, float]:
        buckets = self._keys[key].buckets.get(metric)
        if not buckets:
            return 0.0, 0.0
        width = seconds / _BUCKETS
        last = math.floor(now.timestamp() / width)
        first = last - _BUCKETS + 1
        for old in [b for b in buckets if b < first]:
            del buckets[old]
        hits = total = 0.0
        for bucket, (h, n) in buckets.items():
            if bucket <= last:
                hits, total = hits + h, total + n
        return hits, total

    def _rates_at(self, key: DriftKey, now: datetime) -> list[Alert]:
        alerts = []
        names = {"toxicity": "Toxic answers", "guardrail": "Guardrail violations", "errors": "Failed calls"}
        for name, rule in self._rates.items():
            hits, total = self._window(key, name, rule.window_seconds, now)
            if total < rule.min_calls:
                continue
            rate = hits / total
            summary = (f"{names[name]} at {rate:.1%} in {key.label()} (threshold {rule.threshold:.1%}): "
                       f"{int(hits)} of {int(total)} calls in the last {rule.window_seconds:g} s")
            alert = self._transition(key, name, rule.severity, when=now, fire=rate > rule.threshold,
                                     clear=rate <= rule.threshold * rule.clear_ratio, value=rate,
                                     threshold=rule.threshold, summary=summary, link=self.config.link_base)
            if alert is not None:
                alerts.append(alert)
        if self.config.feedback is not None:
            alert = self._feedback_at(key, self.config.feedback, now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _feedback_at(self, key: DriftKey, rule: FeedbackRule, now: datetime) -> Alert | None:
        down, thumbs = self._window(key, "thumbs", rule.window_seconds, now)
        rating_sum, rated = self._window(key, "rating", rule.window_seconds, now)
        share = down / thumbs if thumbs >= rule.min_feedback else None
        mean = rating_sum / rated if rated >= rule.min_feedback and rule.min_mean_rating is not None else None
        if share is None and mean is None:
            return None
        low = rule.min_mean_rating or 0.0
        fire = (share is not None and share > rule.max_thumbs_down_share) or (mean is not None and mean < low)
        clear = (share is None or share <= rule.max_thumbs_down_share * rule.clear_ratio) and \
                (mean is None or mean >= low / rule.clear_ratio)
        parts = []
        if share is not None:
            parts.append(f"{share:.0%} thumbs down of {int(thumbs)}")
        if mean is not None:
            parts.append(f"mean rating {mean:.2f} of {int(rated)}")
        summary = f"Feedback in {key.label()}: {', '.join(parts)} in the last {rule.window_seconds:g} s"
        return self._transition(key, "feedback_collapse", rule.severity, when=now, fire=fire, clear=clear,
                                value=share if share is not None else mean,
                                threshold=rule.max_thumbs_down_share if share is not None else low,
                                summary=summary, link=self.config.link_base)

    def _transition(self, key: DriftKey, rule: str, severity: str, *, when: datetime, fire: bool,
                    clear: bool, value: float | None, threshold: float | None, summary: str,
                    link: str | None) -> Alert | None:
        incident = self._keys.setdefault(key, _KeyAlerts()).incidents.setdefault(rule, _Incident())
        if incident.status == "ok":
            if not fire:
                return None
            cooldown = timedelta(seconds=self.config.cooldown_seconds)
            if incident.resolved_at is not None and when < incident.resolved_at + cooldown:
                self.counts["suppressed"] += 1
                return None
            incident.status, incident.started_at = "firing", when
            self.counts["fired"] += 1
            status: Literal["firing", "resolved"] = "firing"
        elif clear:
            incident.status, incident.resolved_at = "ok", when
            self.counts["resolved"] += 1
            status = "resolved"
            summary = summary if rule == "drift" else f"Resolved: {summary}"
        else:
            return None
        self._dirty.add(key)
        started = incident.started_at or when
        dedup = "/".join((rule, *key))
        logger.info("alert %s %s: %s", status, dedup, summary)
        return Alert(event_id=derived_uuid7(int(when.timestamp() * 1000), dedup, status, started.isoformat()),
                     occurred_at=when, app=key.app, environment=key.environment, rule=rule, status=status,
                     severity=severity, dedup_key=dedup, summary=summary,  # type: ignore[arg-type]
                     prompt_id=key.prompt_id or None, prompt_version=key.prompt_version or None,
                     request_model=key.model or None, started_at=started, value=value,
                     threshold=threshold, link=link)

    # -- state ---------------------------------------------------------------------------

    def keys(self) -> list[DriftKey]:
        """The keys with counters or incidents."""
        return list(self._keys)

    def firing(self) -> list[tuple[DriftKey, str]]:
        """The incidents firing now, as ``(key, rule)``."""
        return [(key, rule) for key, state in self._keys.items()
                for rule, incident in state.incidents.items() if incident.status == "firing"]

    def state_for(self, key: DriftKey) -> bytes:
        """One key's counters and incidents (msgpack), for a table."""
        return msgspec.msgpack.encode(self._keys.get(key) or _KeyAlerts())

    def restore(self, key: DriftKey, data: bytes) -> None:
        """Load what ``state_for`` wrote."""
        self._keys[key] = msgspec.msgpack.decode(data, type=_KeyAlerts)

    def take_dirty(self) -> set[DriftKey]:
        """Keys whose state changed since the last call."""
        dirty, self._dirty = self._dirty, set()
        return dirty
