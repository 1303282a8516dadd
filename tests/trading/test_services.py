"""Paper trading through the services, against hand-computed numbers (fee 5 bps, slippage 2 bps)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from bots.models import Cycle
from bots.services import bot_create
from marketdata.types import CandleData, MarketInfo, SymbolMarket
from tests.factories import UserFactory
from trading.books import DatabaseBooks, PlannedOrder
from trading.executors import executor_for
from trading.models import EquitySnapshot, Fill, Order, Position
from trading.risk_types import OrderIntent
from trading.services import positions_protect

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fees(settings):
    settings.PAPER_FEE_BPS = Decimal(5)
    settings.PAPER_SLIPPAGE_BPS = Decimal(2)


def market(close: str, *, high: str | None = None, low: str | None = None, at: datetime = T0) -> SymbolMarket:
    c = Decimal(close)
    candle = CandleData(
        open_time=at, open=c, high=Decimal(high or close), low=Decimal(low or close), close=c, volume=Decimal(1)
    )
    info = MarketInfo(
        symbol="BTC/USDT:USDT",
        base="BTC",
        quote="USDT",
        amount_step=Decimal("0.001"),
        price_step=Decimal("0.01"),
        contract=True,
    )
    return SymbolMarket(symbol="BTC/USDT:USDT", info=info, candles=(candle,))


def new_bot():
    return bot_create(
        owner=UserFactory(),
        data={
            "name": "pnl",
            "model": "hold",
            "exchange": "binanceusdm",
            "symbols": ["BTC/USDT:USDT"],
            "timeframe": "1h",
            "starting_capital": Decimal(10000),
        },
    )


def trade(bot, *, slot_minute: int, intent: str, side: str, quantity: str, leverage: str, price: str):
    cycle = Cycle.objects.create(bot=bot, slot=T0.replace(minute=slot_minute), started_at=timezone.now())
    plan = PlannedOrder(
        leg="0o" if intent == "open" else "0c",
        intent=OrderIntent(
            symbol="BTC/USDT:USDT",
            intent=intent,
            side=side,
            quantity=Decimal(quantity),
            leverage=Decimal(leverage),
            margin=Decimal(0),
            reference_price=Decimal(price),
        ),
    )
    [order] = DatabaseBooks(bot_id=bot.pk).prepare_orders(cycle_id=cycle.pk, slot=cycle.slot, planned=[plan])
    return executor_for(bot_id=bot.pk).execute(order=order, market=market(price))


def test_long_round_trip_matches_hand_computation():
    bot = new_bot()
    opened = trade(bot, slot_minute=0, intent="open", side="long", quantity="1", leverage="2", price="10000")
    # Buy fill 10000 × 1.0002 = 10002.00; notional 10002; margin 5001; fee 10002 × 0.0005 = 5.001.
    assert opened.average_price == Decimal("10002.00") and opened.fee == Decimal("5.001")
    bot.refresh_from_db()
    assert bot.account.cash == Decimal("4993.999")
    position = Position.objects.get(bot=bot)
    assert position.margin == Decimal("5001") and position.side == "long"

    closed = trade(bot, slot_minute=3, intent="close", side="long", quantity="1", leverage="2", price="11000")
    # Sell fill 11000 × 0.9998 = 10997.80; PnL (10997.80 − 10002) × 1 = 995.80; fee 5.4989.
    assert closed.average_price == Decimal("10997.80") and closed.fee == Decimal("5.4989")
    position.refresh_from_db()
    assert position.status == "closed" and position.realized_pnl == Decimal("995.80")
    assert position.fees == Decimal("10.4999")
    bot.refresh_from_db()
    # 10000 + 995.80 − 5.001 − 5.4989
    assert bot.account.cash == Decimal("10985.3001")
    assert Fill.objects.filter(bot=bot).count() == 2


def test_short_round_trip_matches_hand_computation():
    bot = new_bot()
    trade(bot, slot_minute=0, intent="open", side="short", quantity="2", leverage="4", price="10000")
    # Sell fill 9998.00; notional 19996; margin 4999; fee 9.998.
    bot.refresh_from_db()
    assert bot.account.cash == Decimal("4991.002")
    # Marked at 9500 the short is up (9998 − 9500) × 2 = 996.
    account = DatabaseBooks(bot_id=bot.pk).mark(prices={"BTC/USDT:USDT": Decimal(9500)})
    assert account.unrealized_pnl == Decimal("996") and account.equity == Decimal("4991.002") + 4999 + 996

    trade(bot, slot_minute=3, intent="close", side="short", quantity="2", leverage="4", price="9000")
    # Buy fill 9001.80; PnL (9998 − 9001.80) × 2 = 1992.40; fee 18003.6 × 0.0005 = 9.0018.
    position = Position.objects.get(bot=bot)
    assert position.realized_pnl == Decimal("1992.40") and position.fees == Decimal("18.9998")
    bot.refresh_from_db()
    assert bot.account.cash == Decimal("11973.4002")
    snapshot = DatabaseBooks(bot_id=bot.pk).record_equity(prices={"BTC/USDT:USDT": Decimal(9000)})
    assert snapshot.equity == snapshot.cash == Decimal("11973.4002")
    assert snapshot.realized_pnl == Decimal("1992.40") and snapshot.fees == Decimal("18.9998")
    assert EquitySnapshot.objects.filter(bot=bot).count() == 1


def test_stop_loss_between_cycles_closes_at_the_stop_by_the_candle_low():
    bot = new_bot()
    trade(bot, slot_minute=0, intent="open", side="long", quantity="0.5", leverage="1", price="10000")
    position = Position.objects.get(bot=bot)
    Position.objects.filter(pk=position.pk).update(stop_loss=Decimal("9500"), take_profit=Decimal("12000"))
    bot.refresh_from_db()
    # The next candle dipped to 9400 and closed back at 9900: the stop was hit inside it.
    later = T0.replace(hour=13)
    snapshot_markets = {"BTC/USDT:USDT": market("9900", high="10050", low="9400", at=later)}

    class _Snapshot:
        markets = snapshot_markets

    exits = positions_protect(executor=executor_for(bot_id=bot.pk), snapshot=_Snapshot())  # type: ignore[arg-type]
    assert [e.reason for e in exits] == ["stop_loss"]
    position.refresh_from_db()
    # Exit reference 9500, sold with slippage: 9500 × 0.9998 = 9498.10.
    assert position.status == "closed" and position.close_reason == "stop_loss"
    assert position.exit_price == Decimal("9498.10")
    assert position.realized_pnl == (Decimal("9498.10") - Decimal("10002.00")) * Decimal("0.5")
    assert Order.objects.get(bot=bot, intent="stop_loss").client_order_id.endswith(f"p{position.pk}-x0")
    # Running the check again changes nothing: the position is closed once.
    assert positions_protect(executor=executor_for(bot_id=bot.pk), snapshot=_Snapshot()) == []  # type: ignore[arg-type]


def test_a_prepared_order_is_written_once_and_filled_once():
    bot = new_bot()
    cycle = Cycle.objects.create(bot=bot, slot=T0, started_at=timezone.now())
    plan = PlannedOrder(
        leg="0o",
        intent=OrderIntent(
            symbol="BTC/USDT:USDT",
            intent="open",
            side="long",
            quantity=Decimal("0.5"),
            leverage=Decimal(1),
            margin=Decimal(0),
            reference_price=Decimal(10000),
        ),
    )
    books = DatabaseBooks(bot_id=bot.pk)
    first = books.prepare_orders(cycle_id=cycle.pk, slot=cycle.slot, planned=[plan])
    again = books.prepare_orders(cycle_id=cycle.pk, slot=cycle.slot, planned=[plan])
    assert [o.pk for o in first] == [o.pk for o in again]
    assert first[0].status == Order.Status.PENDING_SUBMIT
    executor_for(bot_id=bot.pk).execute(order=first[0], market=market("10000"))
    executor_for(bot_id=bot.pk).execute(order=again[0], market=market("10000"))
    assert Order.objects.filter(bot=bot).count() == 1
    assert Fill.objects.filter(bot=bot).count() == 1
    assert Position.objects.filter(bot=bot).count() == 1
