"""Round trips reconcile with the books: over random sequences of fills (longs and shorts, any
leverage, closes by decision, stop-loss, take-profit and liquidation), the round trips' net PnL
plus the open positions' PnL is exactly the account's PnL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bots.models import Cycle
from bots.services import bot_create
from marketdata.types import CandleData, MarketInfo, SymbolMarket
from tests.factories import UserFactory
from trading.books import DatabaseBooks, OpenDetails, PlannedOrder
from trading.executors import executor_for
from trading.models import Position
from trading.risk_types import OrderIntent
from trading.round_trips import round_trips, trade_stats
from trading.services import positions_protect

pytestmark = pytest.mark.django_db

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
T0 = datetime(2026, 2, 2, 0, 0, tzinfo=UTC)


def market(symbol: str, close: Decimal, *, high: Decimal, low: Decimal, at: datetime) -> SymbolMarket:
    info = MarketInfo(
        symbol=symbol,
        base=symbol.split("/")[0],
        quote="USDT",
        amount_step=Decimal("0.001"),
        price_step=Decimal("0.01"),
        contract=True,
    )
    candle = CandleData(open_time=at, open=close, high=high, low=low, close=close, volume=Decimal(1))
    return SymbolMarket(symbol=symbol, info=info, candles=(candle,))


@dataclass
class _Snapshot:
    markets: dict[str, SymbolMarket]


step = st.tuples(
    st.sampled_from(["open", "close", "candle"]),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["long", "short"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.5"), places=3),  # quantity
    st.sampled_from([Decimal(1), Decimal(2), Decimal(5), Decimal(20)]),  # leverage
    st.decimals(min_value=Decimal(500), max_value=Decimal(1500), places=2),  # price
    st.decimals(min_value=Decimal("0.80"), max_value=Decimal("1.20"), places=3),  # candle range
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_round_trips_and_open_positions_add_up_to_the_account(steps):
    bot = bot_create(
        owner=UserFactory(),
        data={
            "name": "rt",
            "model": "hold",
            "exchange": "binanceusdm",
            "symbols": list(SYMBOLS),
            "timeframe": "1h",
            "starting_capital": Decimal(10000),
        },
    )
    prices = {symbol: Decimal(1000) for symbol in SYMBOLS}
    for n, (kind, symbol, side, quantity, leverage, price, spread) in enumerate(steps):
        at = T0 + timedelta(hours=n)
        prices[symbol] = price
        if kind == "candle":
            # A candle whose range may cross a stop, a target or a liquidation level.
            markets = {
                s: market(s, prices[s], high=prices[s] * max(spread, 1), low=prices[s] * min(spread, 1), at=at)
                for s in SYMBOLS
            }
            bot.refresh_from_db()
            positions_protect(executor=executor_for(bot_id=bot.pk), snapshot=_Snapshot(markets))  # type: ignore[arg-type]
            continue
        cycle = Cycle.objects.create(bot=bot, slot=at, started_at=timezone.now())
        held = Position.objects.filter(bot=bot, symbol=symbol, status="open").first()
        if kind == "close" and held is None:
            continue
        if kind == "open" and held is not None:
            continue
        intent = OrderIntent(
            symbol=symbol,
            intent=kind,
            side=side if held is None else held.side,
            quantity=quantity if held is None else held.quantity,
            leverage=leverage,
            margin=Decimal(0),
            reference_price=price,
        )
        [order] = DatabaseBooks(bot_id=bot.pk).prepare_orders(
            cycle_id=cycle.pk, slot=cycle.slot, planned=[PlannedOrder(leg=f"{n}", intent=intent)]
        )
        details = None
        if kind == "open":
            away = price * (spread - 1) if spread != 1 else price * Decimal("0.05")
            stop, target = (
                (price - abs(away), price + abs(away)) if side == "long" else (price + abs(away), price - abs(away))
            )
            details = OpenDetails(stop_loss=stop, take_profit=target, thesis=f"step {n}", invalidation="a stop")
        executor_for(bot_id=bot.pk).execute(
            order=order, market=market(symbol, price, high=price, low=price, at=at), details=details
        )

    bot.refresh_from_db()
    account = DatabaseBooks(bot_id=bot.pk).mark(prices=prices)
    trips = round_trips(Position.objects.filter(bot=bot))
    open_pnl = sum((m.unrealized_pnl - m.position.fees for m in account.marks), Decimal(0))
    assert sum((t.net_pnl for t in trips), Decimal(0)) + open_pnl == account.equity - bot.starting_capital
    assert trade_stats(trips).round_trips == len(trips) == Position.objects.filter(bot=bot, status="closed").count()
    for trip in trips:
        event(f"closed by {trip.exit_reason}")
        assert trip.exit_reason in {"signal", "stop_loss", "take_profit", "liquidation"}
        assert trip.thesis.startswith("step ") and trip.opened_market_time is not None
