"""A live bot's cycle through the real ccxt client against a local Binance server: a submit that
times out is looked up by its client order id on the next cycle, never placed a second time."""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal

import pytest

import bots.cycle
import marketdata.feeds
from bots.cycle import run_cycle
from bots.models import Bot
from bots.services import bot_create, bot_start
from tests.factories import SLOT, ExchangeAccountFactory, UserFactory
from tests.trading.binance_server import BinanceServer
from trading.brokers import broker_for_account
from trading.models import Order, Position

pytestmark = pytest.mark.django_db

API_KEY, SECRET = "live-key-123", "live-secret-456"


@pytest.fixture
def binance_replay(settings, tmp_path, monkeypatch):
    """Recorded candles under the name of the market the local Binance server lists (BTC/USDT)."""
    source = settings.REPLAY_DATA_DIR / "coinbase_BTC-USD_1h.csv"
    shutil.copy(source, tmp_path / "binance_BTC-USDT_1h.csv")
    settings.REPLAY_DATA_DIR = tmp_path
    monkeypatch.setattr(marketdata.feeds, "_feeds", {})  # a fresh replay feed reads the new folder
    return tmp_path


@pytest.mark.slow
def test_timed_out_submit_is_found_by_client_id_not_sent_again(binance_replay, monkeypatch):
    owner = UserFactory()
    account = ExchangeAccountFactory(owner=owner, exchange="binance", api_key=API_KEY, api_secret=SECRET, testnet=True)
    bot = bot_create(
        owner=owner,
        data={
            "name": "live",
            "model": "buy_and_hold",
            "exchange": "binance",
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "starting_capital": Decimal(1000),
            "mode": Bot.Mode.LIVE,
            "exchange_account": account,
            "interval_seconds": 180,
        },
    )
    bot = bot_start(bot=bot, confirm_live=True)

    with BinanceServer(api_key=API_KEY, secret=SECRET) as server:
        monkeypatch.setattr(
            bots.cycle,
            "broker_for_bot",
            lambda bot: broker_for_account(
                bot.exchange_account, timeout_ms=1000, config_overrides=server.ccxt_overrides()
            ),
        )
        # The exchange records the order, then answers after the client gave up.
        server.state.order_delay = 2.5
        first = run_cycle(bot_id=bot.pk, slot=SLOT)
        assert first.status == "completed", first.error
        order = Order.objects.get(bot=bot)
        assert order.status == Order.Status.UNKNOWN
        assert len(server.state.posts()) == 1
        sent = server.state.posts()[0].params
        assert sent["newClientOrderId"] == order.client_order_id

        server.state.order_delay = 0
        second = run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180))
        assert second.status == "completed", second.error

    order.refresh_from_db()
    assert order.status == Order.Status.FILLED and order.exchange_order_id
    assert len(server.state.posts()) == 1  # looked up, never placed again
    lookups = [r for r in server.state.requests if r.method == "GET" and r.path == "/api/v3/order"]
    assert lookups and lookups[0].params.get("origClientOrderId") == order.client_order_id
    position = Position.objects.get(bot=bot, status="open")
    assert position.entry_price == Decimal("50000.00")
    assert Order.objects.filter(bot=bot).count() == 1
