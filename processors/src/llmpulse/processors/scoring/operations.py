"""Operations: latency, time to first token, tokens and cost from a price table.

The cost is the one the SDK reported when it sent one; otherwise the token counts times
the model's price in the table (the shipped ``data/prices.yaml`` plus the user's files).
A model that is not in the table gets no cost, and says so.

Example:
    >>> from llmpulse.processors.scoring.operations import PriceTable
    >>> table = PriceTable.load()
    >>> price = table.lookup("openai/gpt-4o-mini-2024-07-18")
    >>> price.model, price.input
    ('gpt-4o-mini', 0.15)
    >>> round(price.cost(input_tokens=1000, output_tokens=500), 6)
    0.00045
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import msgspec
import yaml
from msgspec import Struct

from llmpulse.processors.config import BatchSettings, OperationsConfig
from llmpulse.processors.errors import ConfigError
from llmpulse.processors.scoring.base import not_applicable, unavailable
from llmpulse.schemas import EnrichedCall, ScoreResult

__all__ = ["ModelPrice", "OperationsScorer", "PriceTable"]


class ModelPrice(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """US dollars per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    model: str = ""

    def cost(self, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """The cost of one call, in dollars. Cached input tokens are part of input tokens."""
        cached = min(cached_input_tokens, input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return ((input_tokens - cached) * self.input + cached * cached_price
                + output_tokens * self.output) / 1_000_000


class _TableFile(Struct, kw_only=True):
    version: str = ""
    currency: str = "USD"
    models: dict[str, ModelPrice] = {}


class PriceTable:
    """Model prices, looked up by model name (exact, then the longest matching prefix)."""

    def __init__(self, prices: dict[str, ModelPrice], version: str) -> None:
        self.prices = {name.lower(): msgspec.structs.replace(p, model=name.lower())
                       for name, p in prices.items()}
        self.version = version
        self._by_length = sorted(self.prices, key=len, reverse=True)
        self.lookup = lru_cache(maxsize=4096)(self._lookup)

    @classmethod
    def load(cls, extra: Sequence[str | Path] = ()) -> PriceTable:
        """The shipped table with ``extra`` files laid over it (later files win).

        Raises:
            ConfigError: a file is missing or not a price table.
        """
        shipped = resources.files("llmpulse.processors.scoring").joinpath("data/prices.yaml")
        sources: list[tuple[str, str]] = [("prices.yaml", shipped.read_text(encoding="utf-8"))]
        for path in extra:
            try:
                sources.append((str(path), Path(path).read_text(encoding="utf-8")))
            except OSError as exc:
                raise ConfigError(str(exc), source=str(path)) from None
        prices: dict[str, ModelPrice] = {}
        versions: list[str] = []
        for name, text in sources:
            try:
                table = msgspec.convert(yaml.safe_load(text) or {}, _TableFile, strict=False)
            except (yaml.YAMLError, msgspec.ValidationError) as exc:
                raise ConfigError(f"not a price table: {exc}", source=name) from None
            if table.currency.upper() != "USD":
                raise ConfigError(f"prices must be in USD, not {table.currency}", source=name)
            prices.update(table.models)
            versions.append(table.version or Path(name).stem)
        return cls(prices, "+".join(versions))

    def _lookup(self, model: str) -> ModelPrice | None:
        name = model.lower().rsplit("/", 1)[-1]
        if name in self.prices:
            return self.prices[name]
        for key in self._by_length:
            if name.startswith(key) and name[len(key)] in "-:@.":
                return self.prices[key]
        return None


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
        self._table_backend = f"price-table:{self.prices.version}"

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
        price = self.prices.lookup(model)
        if price is None:
            return unavailable("cost_usd", v, self._table_backend,
                               f"no price for model {model!r} in the price table")
        usage = response.usage
        if usage is None:
            return unavailable("cost_usd", v, self._table_backend, "the SDK reported no token usage")
        cost = price.cost(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                          cached_input_tokens=usage.cached_input_tokens)
        return ScoreResult(name="cost_usd", scorer_version=v, backend=self._table_backend,
                           value=cost, label=price.model)
