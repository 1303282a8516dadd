from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bots.models import Bot
from bots.services import bot_create, bot_start
from tests.clock import FakeClock
from tests.factories import UserFactory
from tests.protocol_server import ProtocolHandler, ProtocolServer

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


class _DownHandler(ProtocolHandler):
    def do_POST(self) -> None:
        with self.service.lock:
            self.service.hits += 1
        self.send_json(503, {"error": {"message": "service unavailable", "type": "server_error"}})


class DownLLM(ProtocolServer):
    """An OpenAI-compatible endpoint that is down: every request gets a 503 and is counted."""

    handler = _DownHandler

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0


@pytest.fixture
def down_llm(settings: Any, llm_fake_clock: FakeClock) -> Iterator[DownLLM]:
    """The openai_compatible provider pointed at a server that is down (retried on a fake clock)."""
    with DownLLM() as server:
        settings.OPENAI_COMPATIBLE_BASE_URL = f"{server.url}/v1"
        settings.OPENAI_COMPATIBLE_API_KEY = "local"
        yield server
