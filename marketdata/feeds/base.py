"""The market data feed interface. Implementations: replay (recorded CSV) and ccxt (live)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from marketdata.types import CandleData, MarketInfo


class Feed(Protocol):
    name: str

    def exchanges(self) -> list[str]:
        """The exchanges (ccxt ids) this feed serves, sorted."""

    def markets(self, *, exchange: str) -> dict[str, MarketInfo]:
        """Every market the feed offers on this exchange, by ccxt symbol."""

    def timeframes(self, *, exchange: str, symbol: str) -> list[str]:
        """The timeframes the feed offers for this market."""

    def market_time(self, *, exchange: str, symbol: str, timeframe: str, slot: datetime) -> datetime:
        """Open time of the latest closed candle that a cycle for `slot` sees (deterministic)."""

    def fetch_ohlcv(
        self, *, exchange: str, symbol: str, timeframe: str, until: datetime, limit: int
    ) -> list[CandleData]:
        """Up to `limit` closed candles with open_time <= until, oldest first. Raises FeedError."""

    def funding_rate(self, *, exchange: str, symbol: str, at: datetime) -> Decimal | None:
        """The latest funding rate (Decimal) at `at` for a perpetual, or None."""
