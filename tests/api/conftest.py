"""Fixtures of the API tests: two users with API clients, bots that have really traded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from bots.cycle import run_cycle
from bots.models import Bot
from bots.services import bot_create, bot_start
from marketdata.feeds import get_feed
from marketdata.services import candles_upsert

# A fixed slot on the 180 s grid: the replayed market (coinbase BTC/USD 1h) is the same every run.
SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def clear_throttles() -> None:
    """Forget the throttles' request history (only their keys: the Redis db is shared)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match="ta:*throttle_*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    clear_throttles()
    yield
    clear_throttles()


def bot_config(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "alpha",
        "provider": "baseline",
        "model": "buy_and_hold",
        "exchange": "coinbase",
        "symbols": ["BTC/USD"],
        "timeframe": "1h",
        "starting_capital": "10000",
        "interval_seconds": 180,
        "max_trades_per_day": 100,
    }
    data.update(overrides)
    return data


def make_bot(*, owner: Any, start: bool = False, **overrides: Any) -> Bot:
    data = bot_config(**overrides)
    data["starting_capital"] = Decimal(str(data["starting_capital"]))
    bot = bot_create(owner=owner, data=data)
    return bot_start(bot=bot) if start else bot


def store_candles(*, bot: Bot, until: datetime, limit: int = 300) -> None:
    """Store the candles the bot's cycle saw, as a worker's first fetch does.

    The market data layer memoizes fetched candles per process and in Redis, so a cycle of a later
    test may not write them again, while each test's transaction drops what an earlier one wrote.
    """
    feed = get_feed()
    for symbol in bot.symbols:
        candles = feed.fetch_ohlcv(
            exchange=bot.exchange, symbol=symbol, timeframe=bot.timeframe, until=until, limit=limit
        )
        candles_upsert(exchange=bot.exchange, symbol=symbol, timeframe=bot.timeframe, candles=candles)


def traded(*, owner: Any, name: str = "trader", model: str = "buy_and_hold", slot: datetime = SLOT) -> Bot:
    """A bot that ran one real cycle on the replay feed and the paper broker."""
    bot = make_bot(owner=owner, name=name, model=model, start=True)
    cycle = run_cycle(bot_id=bot.pk, slot=slot)
    assert cycle.status == "completed", cycle.error
    assert cycle.market_time is not None
    store_candles(bot=bot, until=cycle.market_time)
    bot.refresh_from_db()
    return bot


@pytest.fixture
def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def other_api(other_user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(other_user)
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def traded_bot(db: None, user: Any) -> Bot:
    return traded(owner=user)
