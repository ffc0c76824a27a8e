"""Operations: latency, time to first token, tokens and cost from model prices.

The cost is the one the SDK reported when it sent one; otherwise the token counts times
the model's price: from the user's price files (``scoring.operations.prices``) when they
name the model, else from `genai-prices <https://github.com/pydantic/genai-prices>`_ (a
maintained table, updated with each release of the package; prices in effect on the
day of the call, long-context tiers included). Each cost records where its price came
from (``price_source``, ``price_date``, ``price_model``, ``price_provider`` in the
score's attributes). A model neither knows gets no cost, and says so: never a made-up 0.

Example:
    >>> from datetime import UTC, datetime
    >>> from llmpulse.processors.scoring.operations import PriceTable
    >>> table = PriceTable.load()
    >>> quote = table.lookup("openai/gpt-4o-mini-2024-07-18", at=datetime(2026, 1, 5, tzinfo=UTC))
    >>> quote.price.model, quote.price.input, quote.source.split()[0], quote.date
    ('gpt-4o-mini', 0.15, 'genai-prices', '2026-01-05')
    >>> round(quote.price.cost(input_tokens=1000, output_tokens=500), 6)
    0.00045
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import msgspec
import yaml
from msgspec import Struct

from llmpulse.processors.config import BatchSettings, OperationsConfig
from llmpulse.processors.errors import ConfigError
from llmpulse.processors.scoring.base import not_applicable, unavailable
from llmpulse.schemas import EnrichedCall, ScoreResult

__all__ = ["ModelPrice", "OperationsScorer", "PriceQuote", "PriceTable", "PriceTier"]

logger = logging.getLogger(__name__)


class PriceTier(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rates that replace the base rates for every token of a call whose input is longer
    than ``above_input_tokens`` (long-context pricing); a rate left out keeps the base one."""

    above_input_tokens: int
    input: float | None = None
    output: float | None = None
    cached_input: float | None = None


class ModelPrice(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """US dollars per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    tiers: tuple[PriceTier, ...] = ()
    """Long-context tiers, by ascending ``above_input_tokens``."""
    model: str = ""

    def cost(self, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """The cost of one call, in dollars. Cached input tokens are part of input tokens."""
        rate_in, rate_out, rate_cached = self.input, self.output, self.cached_input
        for tier in self.tiers:
            if input_tokens > tier.above_input_tokens:
                rate_in = rate_in if tier.input is None else tier.input
                rate_out = rate_out if tier.output is None else tier.output
                rate_cached = rate_cached if tier.cached_input is None else tier.cached_input
        cached = min(cached_input_tokens, input_tokens)
        cached_price = rate_in if rate_cached is None else rate_cached
        dollars = (input_tokens - cached) * rate_in + cached * cached_price + output_tokens * rate_out
        return dollars / 1_000_000


@dataclass(frozen=True)
class PriceQuote:
    """A model's price and where it came from."""

    price: ModelPrice
    source: str
    """``genai-prices <version>`` or the price file that named the model."""
    date: str
    """The day the price is in effect for (genai-prices: the call's day), or the price
    file's ``version``."""
    provider: str = ""

    def attributes(self) -> dict[str, str]:
        """The provenance recorded with a cost."""
        return {"price_source": self.source, "price_date": self.date, "price_model": self.price.model,
                **({"price_provider": self.provider} if self.provider else {})}


class _TableFile(Struct, kw_only=True):
    version: str = ""
    currency: str = "USD"
    models: dict[str, ModelPrice] = {}


_GENAI_KEYS = {"input": "input_mtok", "output": "output_mtok", "cached_input": "cache_read_mtok"}


def _genai_price(model: Any, at: datetime) -> ModelPrice | None:
    """genai-prices' rates for ``model`` on ``at`` as a ``ModelPrice`` (None when the model
    is not priced per token)."""
    prices = model.get_prices(at)
    rates = {ours: getattr(prices, theirs, None) for ours, theirs in _GENAI_KEYS.items()}
    if rates["input"] is None or rates["output"] is None:
        return None

    def at_size(value: Any, input_tokens: int) -> float | None:
        if value is None or isinstance(value, Decimal | int | float):
            return None if value is None else float(value)
        rate = value.base  # TieredPrices: a tier applies when the input is longer than its start
        for tier in value.tiers:
            if input_tokens > tier.start:
                rate = tier.price
        return float(rate)

    starts = sorted({t.start for v in rates.values() for t in getattr(v, "tiers", ())})
    tiers = tuple(PriceTier(above_input_tokens=s, **{k: at_size(v, s + 1) for k, v in rates.items()})
                  for s in starts)
    base = {k: at_size(v, 0) for k, v in rates.items()}
    return ModelPrice(input=base["input"] or 0.0, output=base["output"] or 0.0,
                      cached_input=base["cached_input"], tiers=tiers, model=model.id)


class PriceTable:
    """Model prices: the user's price files first (a model's own entry, else the longest
    entry it starts with), then genai-prices.

    Args:
        overrides: model name -> (price, file name, file version).
    """

    def __init__(self, overrides: dict[str, tuple[ModelPrice, str, str]] | None = None) -> None:
        self.overrides = {name.lower(): (msgspec.structs.replace(p, model=name.lower()), source, when)
                          for name, (p, source, when) in (overrides or {}).items()}
        self._by_length = sorted(self.overrides, key=len, reverse=True)
        self.genai_version = package_version("genai-prices")
        versions = sorted({when for _, _, when in self.overrides.values()})
        self.version = "+".join([*versions, f"genai-prices-{self.genai_version}"])
        """What the prices come from, for the score's backend (``acme-1+genai-prices-0.2.3``)."""
        self._lookup = lru_cache(maxsize=4096)(self._find)

    @classmethod
    def load(cls, files: Sequence[str | Path] = ()) -> PriceTable:
        """genai-prices with ``files`` laid over it (later files win, model by model).

        Raises:
            ConfigError: a file is missing or not a price table.
        """
        overrides: dict[str, tuple[ModelPrice, str, str]] = {}
        for path in files:
            try:
                text = Path(path).read_text(encoding="utf-8")
                table = msgspec.convert(yaml.safe_load(text) or {}, _TableFile, strict=False)
            except OSError as exc:
                raise ConfigError(str(exc), source=str(path)) from None
            except (yaml.YAMLError, msgspec.ValidationError) as exc:
                raise ConfigError(f"not a price table: {exc}", source=str(path)) from None
            if table.currency.upper() != "USD":
                raise ConfigError(f"prices must be in USD, not {table.currency}", source=str(path))
            when = table.version or Path(path).stem
            for name, price in table.models.items():
                tiers = tuple(sorted(price.tiers, key=lambda t: t.above_input_tokens))
                overrides[name] = (msgspec.structs.replace(price, tiers=tiers), str(path), when)
        return cls(overrides)

    def preload(self) -> None:
        """Load genai-prices' table now (~1 s of CPU, once a process) instead of at the
        first lookup that needs it: a worker calls this at start, so its first batch
        does not pay it."""
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()

    def lookup(self, model: str, *, provider: str | None = None,
               at: datetime | None = None) -> PriceQuote | None:
        """The price of ``model`` (``provider/`` prefixes and case ignored) on the day ``at``
        (default today), or None when no source knows it."""
        day = (at or datetime.now(UTC)).astimezone(UTC).date()
        return self._lookup(model.lower(), (provider or "").lower(), day)

    def _find(self, model: str, provider: str, day: date) -> PriceQuote | None:
        hinted, _, name = model.rpartition("/")
        key = name if name in self.overrides else next(
            (k for k in self._by_length if name.startswith(k) and name[len(k)] in "-:@."), None)
        if key is not None:
            price, source, when = self.overrides[key]
            return PriceQuote(price, source, when)
        from genai_prices import data_snapshot  # its table takes ~0.2 s to load: only when needed

        snapshot = data_snapshot.get_snapshot()
        found = None
        for hint in dict.fromkeys(h for h in (hinted, provider, None) if h != ""):
            try:
                found = snapshot.find_provider_model(name, None, hint, None)
                break
            except LookupError:
                continue
        if found is None:
            return None
        vendor, info = found
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        rates = _genai_price(info, at)
        if rates is None:
            logger.info("genai-prices has no per-token price for %s (%s)", info.id, vendor.id)
            return None
        return PriceQuote(rates, f"genai-prices {self.genai_version}", day.isoformat(), vendor.id)


class OperationsScorer:
    """Latency, time to first token, tokens, throughput and cost of each call."""

    name = "operations"
    version = "1"
    produces = ("latency_ms", "time_to_first_token_ms", "input_tokens", "output_tokens",
                "output_tokens_per_s", "cost_usd")
    batching: BatchSettings | None = None

    def __init__(self, config: OperationsConfig | None = None, *, prices: PriceTable | None = None):
        config = config or OperationsConfig()
        self.prices = prices or PriceTable.load(config.prices)
        self._table_backend = f"prices:{self.prices.version}"

    def load(self) -> None:
        """Load the price table now (see :meth:`PriceTable.preload`)."""
        self.prices.preload()

    def score(self, calls: Sequence[EnrichedCall]) -> list[list[ScoreResult]]:
        """Score each call (light: no batching needed)."""
        return [self.score_one(call) for call in calls]

    def score_one(self, call: EnrichedCall) -> list[ScoreResult]:
        """The operations scores of one call."""
        v = self.version
        response = call.response
        if response is None:
            why = f"no response ({call.incomplete_reason or 'missing'})"
            return [not_applicable(n, v, "reported", why) for n in self.produces]
        results = [ScoreResult(name="latency_ms", scorer_version=v, backend="reported",
                               value=response.latency_ms)]
        if response.time_to_first_token_ms is not None:
            results.append(ScoreResult(name="time_to_first_token_ms", scorer_version=v,
                                       backend="reported", value=response.time_to_first_token_ms))
        else:
            results.append(not_applicable("time_to_first_token_ms", v, "reported",
                                          "not streamed or not reported"))
        usage = response.usage
        if usage is None:
            for n in ("input_tokens", "output_tokens", "output_tokens_per_s"):
                results.append(unavailable(n, v, "reported", "the SDK reported no token usage"))
        else:
            results.append(ScoreResult(name="input_tokens", scorer_version=v, backend="reported",
                                       value=float(usage.input_tokens)))
            results.append(ScoreResult(name="output_tokens", scorer_version=v, backend="reported",
                                       value=float(usage.output_tokens)))
            generating_ms = response.latency_ms - (response.time_to_first_token_ms or 0.0)
            if generating_ms > 0 and usage.output_tokens:
                results.append(ScoreResult(name="output_tokens_per_s", scorer_version=v,
                                           backend="reported",
                                           value=usage.output_tokens * 1000.0 / generating_ms))
            else:
                results.append(not_applicable("output_tokens_per_s", v, "reported",
                                              "no output tokens or no generation time"))
        results.append(self._cost(call))
        return results

    def _cost(self, call: EnrichedCall) -> ScoreResult:
        v = self.version
        response = call.response
        assert response is not None
        if response.cost_usd is not None:
            return ScoreResult(name="cost_usd", scorer_version=v, backend="reported",
                               value=response.cost_usd)
        model = response.response_model or call.request_model or response.request_model
        if not model:
            return unavailable("cost_usd", v, self._table_backend, "no model named on the call")
        quote = self.prices.lookup(model, provider=call.provider or response.provider, at=call.occurred_at)
        if quote is None:
            return unavailable("cost_usd", v, self._table_backend,
                               f"no price for model {model!r} in genai-prices {self.prices.genai_version} "
                               "or the price files (add it to a file in scoring.operations.prices)")
        usage = response.usage
        if usage is None:
            return unavailable("cost_usd", v, self._table_backend, "the SDK reported no token usage")
        cost = quote.price.cost(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                cached_input_tokens=usage.cached_input_tokens)
        return ScoreResult(name="cost_usd", scorer_version=v, backend=self._table_backend,
                           value=cost, label=quote.price.model, attributes=quote.attributes())
