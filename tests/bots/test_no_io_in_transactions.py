"""Slow I/O (market data, the decision maker, the exchange) never runs inside a transaction."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

import bots.cycle
import marketdata.services
from bots.baselines import get_baseline
from bots.cycle import run_cycle
from bots.models import Bot
from tests.factories import SLOT, BotFactory, ExchangeAccountFactory
from trading.brokers.base import BrokerResult
from trading.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


class Spy:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def saw(self, what: str) -> None:
        self.calls.append((what, connection.in_atomic_block))


def test_decision_maker_feed_and_exchange_run_outside_transactions(monkeypatch):
    spy = Spy()
    owner_bot = BotFactory(model="buy_and_hold")
    account = ExchangeAccountFactory(owner=owner_bot.owner, exchange=owner_bot.exchange, testnet=False)
    # Started at the row: the start checks (live market data, a buildable broker) are not what
    # this test is about, and the exchange below is a stand-in.
    Bot.objects.filter(pk=owner_bot.pk).update(
        mode=Bot.Mode.LIVE, exchange_account=account, live_confirmed=True, status=Bot.Status.ACTIVE
    )
    bot = Bot.objects.get(pk=owner_bot.pk)

    real_maker = get_baseline("buy_and_hold")

    class SpyMaker:
        provider, model = "baseline", "buy_and_hold"

        def decide(self, ctx):
            spy.saw("decide")
            return real_maker.decide(ctx)

    class SpyExchange:
        """Stands in for the exchange's side of the wire; records the transaction state of each call."""

        def submit(self, order):
            spy.saw("submit")
            return BrokerResult(
                status="filled",
                exchange_order_id="x1",
                filled_quantity=order.quantity,
                average_price=Decimal(4000),
                fee=Decimal("0.5"),
            )

        def lookup(self, *, client_order_id, symbol):
            spy.saw("lookup")
            return None

        def cancel(self, *, client_order_id, symbol):
            spy.saw("cancel")

        def close(self):
            pass

    real_build = marketdata.services.snapshot_build

    def spy_build(**kwargs):
        spy.saw("market_data")
        return real_build(**kwargs)

    monkeypatch.setattr(bots.cycle, "get_decision_maker", lambda bot: SpyMaker())
    monkeypatch.setattr(bots.cycle, "broker_for_bot", lambda bot: SpyExchange())
    monkeypatch.setattr(bots.cycle, "snapshot_build", spy_build)

    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)

    assert cycle.status == "completed", cycle.error
    assert [what for what, _ in spy.calls] == ["market_data", "decide", "submit"]
    assert not any(in_tx for _, in_tx in spy.calls), spy.calls
    order = Order.objects.get(bot=bot)
    assert order.status == Order.Status.FILLED and order.exchange_order_id == "x1"
    assert order.submitted_at is not None
