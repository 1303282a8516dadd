"""The LLM bill in the bot's quote currency: each call is converted when it is recorded.

An LLM call costs US dollars; the account is in its quote currency (USD, USDT, BTC, ...). The
call is converted at the dollar rate of the cycle's market time (marketdata.rates), and the rate,
its source and the converted cost are kept on the call. Without a rate the converted cost is
unknown (None) and the call's dollars are added to the bot's unconverted total instead: every
figure net of the LLM bill is then unknown for the periods that hold it, never mixed currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F

from bots.models import Bot
from marketdata.rates import UsdRate, usd_rate
from trading.paper import money

ZERO = Decimal(0)
# The bot's running LLM totals (refreshed after a cycle's calls are recorded).
LLM_TOTALS = (
    "llm_cost_total",
    "llm_input_tokens_total",
    "llm_output_tokens_total",
    "llm_cost_quote_total",
    "llm_cost_unconverted_total",
)


@dataclass(frozen=True, slots=True)
class CostConversion:
    currency: str
    rate: UsdRate | None

    def convert(self, usd: Decimal) -> Decimal | None:
        """`usd` in the quote currency at the rate, to the money precision; None without a rate."""
        if usd == 0:
            return ZERO  # nothing to convert: no rate needed
        if self.rate is None:
            return None
        return money(usd * self.rate.per_usd)

    def call_fields(self, usd: Decimal) -> dict[str, Any]:
        """The LLMCall fields that record the conversion of a call costing `usd`."""
        return {
            "quote_currency": self.currency,
            "usd_rate": None if self.rate is None else self.rate.per_usd,
            "cost_quote": self.convert(usd),
            "rate_source": "" if self.rate is None else self.rate.source[:200],
        }

    def bot_totals(self, costs: list[Decimal]) -> dict[str, Any]:
        """F-expressions adding calls costing `costs` (USD each) to the bot's converted and
        unconverted totals (the converted total is the sum of the calls' converted costs)."""
        converted = [self.convert(c) for c in costs]
        return {
            "llm_cost_quote_total": F("llm_cost_quote_total") + sum((c for c in converted if c is not None), ZERO),
            "llm_cost_unconverted_total": F("llm_cost_unconverted_total")
            + sum((usd for usd, c in zip(costs, converted, strict=True) if c is None), ZERO),
        }


def llm_cost_conversion(*, bot: Bot, at: datetime | None, cost: Decimal) -> CostConversion:
    """How this cycle's LLM calls convert into the bot's quote currency (no lookup for a zero
    cost or a USD account). Market data is read outside any transaction (it may ask the feed)."""
    currency = bot.quote_currency
    if cost == 0 or at is None:
        return CostConversion(currency=currency, rate=None if currency != "USD" else _usd())
    return CostConversion(
        currency=currency, rate=usd_rate(currency=currency, exchange=bot.exchange, at=at, timeframe=bot.timeframe)
    )


def _usd() -> UsdRate:
    return UsdRate(currency="USD", per_usd=Decimal(1), source="USD")
