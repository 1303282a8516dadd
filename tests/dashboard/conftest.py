"""Fixtures and helpers of the dashboard tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bots.cycle import run_cycle
from bots.models import Bot
from tests.factories import SLOT, BotFactory, store_candles


@pytest.fixture(autouse=True)
def _fresh_throttles(fresh_throttles: None) -> None:
    """The login page counts attempts per address (shared with the API's logins, kept in Redis)."""


def small_price_bot(*, owner: Any, name: str = "ada") -> Bot:
    """A bot that bought ADA/BTC (about 0.000058 BTC) on the replay feed, in a BTC account."""
    bot = BotFactory(
        owner=owner,
        name=name,
        exchange="binance",
        symbols=["ADA/BTC"],
        timeframe="5m",
        starting_capital=Decimal(100),
        start=True,
    )
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert cycle.status == "completed", cycle.error
    assert cycle.market_time is not None
    store_candles(bot=bot, until=cycle.market_time)
    return bot
