"""Plain value types of market data, shared by feeds, indicators, snapshots, risk and brokers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class CandleData:
    open_time: datetime  # aware UTC, the candle's open
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What trading one market needs to know: precision and minimums (from ccxt's markets)."""

    symbol: str
    base: str
    quote: str
    amount_step: Decimal  # quantities are multiples of this (rounded down)
    price_step: Decimal  # prices are multiples of this
    min_amount: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)  # in the quote currency
    contract: bool = False  # a perpetual/futures contract (shorting, funding) vs. spot
    # Base units per contract (ccxt `contractSize`); 1 for spot and for most linear perpetuals.
    contract_size: Decimal = Decimal(1)

    def round_amount(self, amount: Decimal) -> Decimal:
        """Round a quantity down to the market's step, so an order never exceeds what risk approved."""
        from decimal import ROUND_DOWN

        steps = (amount / self.amount_step).to_integral_value(rounding=ROUND_DOWN)
        return (steps * self.amount_step).quantize(self.amount_step)

    def round_price(self, price: Decimal) -> Decimal:
        from decimal import ROUND_HALF_EVEN

        steps = (price / self.price_step).to_integral_value(rounding=ROUND_HALF_EVEN)
        return (steps * self.price_step).quantize(self.price_step)


@dataclass(frozen=True, slots=True)
class SymbolMarket:
    """One symbol's slice of a snapshot: candles up to the market time and the latest price."""

    symbol: str
    info: MarketInfo
    candles: tuple[CandleData, ...]  # oldest first, the last one is the latest closed candle
    funding_rate: Decimal | None = None

    @property
    def price(self) -> Decimal:
        return self.candles[-1].close


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """The market as every bot trading these symbols in this slot sees it.

    `data` is the JSON-ready content (prices, indicators, series) recorded on the cycle and shown
    to decision makers; `hash` is the sha256 of its canonical JSON, identical for identical input.
    """

    exchange: str
    timeframe: str
    slot: datetime
    market_time: datetime
    markets: dict[str, SymbolMarket]
    data: dict[str, Any] = field(default_factory=dict)
    hash: str = ""

    def price(self, symbol: str) -> Decimal:
        return self.markets[symbol].price
