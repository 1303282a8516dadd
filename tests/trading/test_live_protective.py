"""Live positions get their stop-loss placed on the exchange (real ccxt against a local Binance
server), and a stop that fills there is recorded as the position's close."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from bots.models import Bot, Cycle
from bots.services import bot_create
from marketdata.types import CandleData, MarketInfo, SymbolMarket
from tests.factories import ExchangeAccountFactory, UserFactory
from tests.trading.binance_server import BinanceServer
from trading.books import DatabaseBooks, OpenDetails, PlannedOrder
from trading.brokers import broker_for_account
from trading.executors import executor_for
from trading.models import Order, Position
from trading.risk_types import OrderIntent
from trading.services import orders_reconcile

pytestmark = pytest.mark.django_db

API_KEY, SECRET = "prot-key-1", "prot-secret-2"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def btc_market(price: str = "50000") -> SymbolMarket:
    p = Decimal(price)
    return SymbolMarket(
        symbol="BTC/USDT",
        info=MarketInfo(
            symbol="BTC/USDT", base="BTC", quote="USDT", amount_step=Decimal("0.00001"), price_step=Decimal("0.01")
        ),
        candles=(CandleData(open_time=T0, open=p, high=p, low=p, close=p, volume=Decimal(1)),),
    )


def test_stop_rests_on_the_exchange_and_its_fill_closes_the_position():
    owner = UserFactory()
    account = ExchangeAccountFactory(owner=owner, exchange="binance", api_key=API_KEY, api_secret=SECRET)
    bot = bot_create(
        owner=owner,
        data={
            "name": "live",
            "model": "hold",
            "exchange": "binance",
            "symbols": ["BTC/USDT"],
            "mode": Bot.Mode.LIVE,
            "exchange_account": account,
            "starting_capital": Decimal(10000),
        },
    )
    with BinanceServer(api_key=API_KEY, secret=SECRET) as server:
        broker = broker_for_account(account, timeout_ms=3000, config_overrides=server.ccxt_overrides())
        cycle = Cycle.objects.create(bot=bot, slot=T0, started_at=timezone.now())
        [order] = DatabaseBooks(bot_id=bot.pk).prepare_orders(
            cycle_id=cycle.pk,
            slot=cycle.slot,
            planned=[
                PlannedOrder(
                    leg="0o",
                    intent=OrderIntent(
                        symbol="BTC/USDT",
                        intent="open",
                        side="long",
                        quantity=Decimal("0.01"),
                        leverage=Decimal(1),
                        margin=Decimal(500),
                        reference_price=Decimal(50000),
                    ),
                )
            ],
        )
        details = OpenDetails(stop_loss=Decimal("48000"), take_profit=Decimal("55000"), thesis="breakout")
        order = executor_for(bot_id=bot.pk, broker=broker).execute(order=order, market=btc_market(), details=details)

        assert order.status == Order.Status.FILLED
        stop = Order.objects.get(client_order_id=f"{order.client_order_id}-sl")
        assert stop.status == Order.Status.OPEN and stop.intent == "stop_loss" and stop.exchange_order_id
        # Spot: the take-profit stays with the cycle (both would lock the same BTC).
        assert not Order.objects.filter(client_order_id=f"{order.client_order_id}-tp").exists()
        sent = [r.params for r in server.state.posts()]
        assert [p["newClientOrderId"] for p in sent] == [order.client_order_id, stop.client_order_id]
        assert sent[1]["type"] == "STOP_LOSS" and Decimal(sent[1]["stopPrice"]) == Decimal(48000)

        # The market fell through the stop while no cycle ran: the exchange filled it.
        with server.state.lock:
            resting = next(o for o in server.state.orders if o["clientOrderId"] == stop.client_order_id)
            resting.update(status="FILLED", executedQty="0.01000000", cummulativeQuoteQty="479.00000000")

        later = Cycle.objects.create(bot=bot, slot=T0.replace(minute=3), started_at=timezone.now())
        assert (
            orders_reconcile(
                executor=executor_for(bot_id=bot.pk, broker=broker),
                current_cycle_id=later.pk,
                markets={"BTC/USDT": btc_market("47900")},
            )
            == 1
        )
        broker.close()

    stop.refresh_from_db()
    assert stop.status == Order.Status.FILLED
    position = Position.objects.get(bot=bot)
    assert position.status == "closed" and position.close_reason == "stop_loss"
    assert position.exit_price == Decimal("47900")
    assert position.realized_pnl == (Decimal(47900) - Decimal(50000)) * Decimal("0.01")
