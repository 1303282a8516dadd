from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bots.models import Bot
from bots.services import bot_create, bot_start
from tests.factories import UserFactory

# A fixed slot on the 180 s grid, so the replayed market is the same on every run.
SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def make_bot(*, model: str = "buy_and_hold", provider: str = "baseline", start: bool = True, **extra: object) -> Bot:
    owner = extra.pop("owner", None) or UserFactory()
    data = {
        "name": extra.pop("name", f"{model}-bot"),
        "provider": provider,
        "model": model,
        "exchange": "coinbase",
        "symbols": ["BTC/USD"],
        "timeframe": "1h",
        "starting_capital": Decimal(10000),
        "interval_seconds": 180,
        "max_trades_per_day": 100,
        **extra,
    }
    bot = bot_create(owner=owner, data=data)
    if start:
        bot = bot_start(bot=bot)
    return bot


@pytest.fixture
def slot() -> datetime:
    return SLOT
