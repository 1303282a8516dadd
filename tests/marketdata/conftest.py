"""Fixtures of the market data tests: pinned settings, feeds with their own cache keys, Binance."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings

from marketdata.feeds.base import Feed
from marketdata.feeds.replay import ReplayFeed
from marketdata.services import CACHE_PREFIX
from marketdata.types import CandleData, MarketInfo
from tests.marketdata.binance_server import BinanceServer


@pytest.fixture(autouse=True)
def _market_settings(settings: Any) -> None:
    # The replay clock and depth the tests' expectations are computed with.
    settings.MARKET_DATA_CANDLES = 200
    settings.REPLAY_CANDLE_SECONDS = 15
    settings.MARKET_DATA_FEED = "replay"


class CountingFeed:
    """A real feed under a unique name (so its Redis keys are its own) that counts fetches.

    `delay` holds each fetch open a moment, so concurrent callers really overlap.
    """

    def __init__(self, inner: Feed, *, delay: float = 0.0) -> None:
        self.inner = inner
        self.name = f"test-{uuid.uuid4().hex[:12]}"
        self.delay = delay
        self.fetches = 0
        self.funding_calls = 0
        self._lock = threading.Lock()

    def exchanges(self) -> list[str]:
        return self.inner.exchanges()

    def markets(self, *, exchange: str) -> dict[str, MarketInfo]:
        return self.inner.markets(exchange=exchange)

    def timeframes(self, *, exchange: str, symbol: str) -> list[str]:
        return self.inner.timeframes(exchange=exchange, symbol=symbol)

    def market_time(self, *, exchange: str, symbol: str, timeframe: str, slot: datetime) -> datetime:
        return self.inner.market_time(exchange=exchange, symbol=symbol, timeframe=timeframe, slot=slot)

    def fetch_ohlcv(
        self, *, exchange: str, symbol: str, timeframe: str, until: datetime, limit: int
    ) -> list[CandleData]:
        with self._lock:
            self.fetches += 1
        time.sleep(self.delay)
        return self.inner.fetch_ohlcv(exchange=exchange, symbol=symbol, timeframe=timeframe, until=until, limit=limit)

    def funding_rate(self, *, exchange: str, symbol: str, at: datetime) -> Decimal | None:
        with self._lock:
            self.funding_calls += 1
        return self.inner.funding_rate(exchange=exchange, symbol=symbol, at=at)


# Captured at import: a test may point REDIS_URL at a dead server, the cleanup must not follow it.
_REDIS_URL = str(django_settings.REDIS_URL)


def delete_cache_keys(feed_name: str) -> None:
    client = redis.Redis.from_url(_REDIS_URL)
    keys = list(client.scan_iter(match=f"{CACHE_PREFIX}:{feed_name}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def shared_replay() -> ReplayFeed:
    """One replay feed for the session: the CSVs are parsed once."""
    return ReplayFeed(candle_seconds=15, warmup=200)


@pytest.fixture
def counting_feed(shared_replay: ReplayFeed) -> Iterator[Callable[..., CountingFeed]]:
    made: list[CountingFeed] = []

    def make(inner: Feed | None = None, *, delay: float = 0.0) -> CountingFeed:
        feed = CountingFeed(inner or shared_replay, delay=delay)
        made.append(feed)
        return feed

    yield make
    for feed in made:
        delete_cache_keys(feed.name)


@pytest.fixture
def binance() -> Iterator[BinanceServer]:
    with BinanceServer() as server:
        yield server
