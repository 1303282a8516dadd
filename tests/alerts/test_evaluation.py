"""The beat evaluator over the books: fills since its cursor, and every condition rule at once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.utils import timezone

from alerts.evaluation import evaluate
from alerts.models import Alert, AlertRule, EvaluationCursor
from bots.models import Bot, Cycle, LLMCall
from marketdata.models import Candle
from tests.books import books_unguarded
from tests.factories import BotFactory, fund_bot
from trading.models import EquitySnapshot, Fill, Order, Position

pytestmark = pytest.mark.django_db

_ids = count(1)


def later(seconds: float = 5) -> timezone.datetime:
    # The evaluator reads fills a couple of seconds old; "now" a little ahead makes new ones old enough.
    return timezone.now() + timedelta(seconds=seconds)


def fill(bot: Bot, *, intent: str = "open", side: str = "buy", price: str = "50000", qty: str = "0.1",
         position: Position | None = None) -> Fill:  # fmt: skip
    order = Order.objects.create(
        bot=bot, client_order_id=f"t-{next(_ids)}", symbol="BTC/USD", side=side, intent=intent,
        quantity=Decimal(qty), status="filled", position=position,
    )  # fmt: skip
    return Fill.objects.create(
        order=order, bot=bot, symbol="BTC/USD", side=side, quantity=Decimal(qty), price=Decimal(price)
    )


def closed_position(bot: Bot, *, reason: str = "stop_loss", pnl: str = "-250", fees: str = "5") -> Position:
    now = timezone.now()
    return Position.objects.create(
        bot=bot, symbol="BTC/USD", side="long", status="closed", quantity=Decimal("0.1"), entry_price=Decimal(50000),
        margin=Decimal(5000), exit_price=Decimal(47500), realized_pnl=Decimal(pnl), fees=Decimal(fees),
        close_reason=reason, opened_at=now, closed_at=now,
    )  # fmt: skip


def test_fills_since_the_cursor_become_trade_and_close_alerts_once(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user, name="swing")
    fill(bot)  # before the evaluator's first run: history, not news
    evaluate(now=later())
    assert not Alert.objects.filter(owner=user).exists()
    start = EvaluationCursor.objects.get().position

    AlertRule.objects.create(owner=user, kind="trade_filled", threshold=Decimal(1000), cooldown_seconds=0)
    fill(bot, qty="0.001")  # 50 USD: under the rule's notional
    big = fill(bot)
    position = closed_position(bot)
    close = fill(bot, intent="stop_loss", side="sell", price="47500", position=position)
    evaluate(now=later())
    trades = list(Alert.objects.filter(owner=user, event="trade_filled").values_list("dedupe_key", flat=True))
    assert sorted(trades) == sorted([f"fill:{big.pk}", f"fill:{close.pk}"])
    [closed] = Alert.objects.filter(owner=user, event="position_closed")
    assert closed.message == "swing: long BTC/USD closed by stop-loss at 47500, net PnL -255.00 USD"
    assert closed.payload["net_pnl"] == "-255.000000000000" and closed.in_app

    # Read again (another evaluator, a retried task): nothing new.
    EvaluationCursor.objects.update(position=start)
    evaluate(now=later())
    assert Alert.objects.filter(owner=user).count() == 3


def test_a_fill_too_young_waits_for_the_next_run(user) -> None:  # type: ignore[no-untyped-def]
    AlertRule.objects.create(owner=user, kind="trade_filled", cooldown_seconds=0)
    evaluate(now=later())
    bot = BotFactory(owner=user)
    young = fill(bot)
    evaluate(now=timezone.now())
    assert not Alert.objects.filter(owner=user, event="trade_filled").exists()
    assert EvaluationCursor.objects.get().position < young.pk
    evaluate(now=later())
    assert Alert.objects.filter(owner=user, event="trade_filled").count() == 1


def test_an_exit_the_cycle_already_told_is_not_told_again(user) -> None:  # type: ignore[no-untyped-def]
    from alerts.services import Event, alert_raise

    evaluate(now=later())
    bot = BotFactory(owner=user)
    position = closed_position(bot)
    alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="closed by stop-loss",
                event=Event.POSITION_CLOSED, dedupe_key=f"position:{position.pk}")  # fmt: skip
    fill(bot, intent="stop_loss", side="sell", position=position)
    evaluate(now=later())
    assert Alert.objects.filter(owner=user, event="position_closed").count() == 1


def snapshot(bot: Bot, equity: str, *, minutes_ago: float = 0) -> None:
    EquitySnapshot.objects.create(
        bot=bot, time=timezone.now() - timedelta(minutes=minutes_ago), equity=Decimal(equity), cash=Decimal(equity)
    )


def test_drawdown_alerts_when_it_starts_and_again_only_after_it_cleared_and_the_cooldown(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user, name="deep", status="active")
    fund_bot(bot, peak_equity=Decimal(10000))
    snapshot(bot, "8800")
    now = timezone.now()
    evaluate(now=now)
    [alert] = Alert.objects.filter(owner=user, event="drawdown")
    assert alert.severity == "critical" and alert.bot_id == bot.pk
    assert alert.message == "deep: drawdown 12.00 % (equity 8,800.00 USD, peak 10,000.00 USD; rule: over 10 %)"
    evaluate(now=now + timedelta(minutes=5))
    assert Alert.objects.filter(owner=user, event="drawdown").count() == 1, "still in drawdown: told once"
    snapshot(bot, "9500")
    evaluate(now=now + timedelta(minutes=10))  # recovered
    snapshot(bot, "8700")
    evaluate(now=now + timedelta(minutes=20))  # in again, inside the hour's cooldown
    assert Alert.objects.filter(owner=user, event="drawdown").count() == 1
    evaluate(now=now + timedelta(minutes=61))
    assert Alert.objects.filter(owner=user, event="drawdown").count() == 2


def test_conditions_of_every_kind(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user, name="busy", status="active")
    fund_bot(bot, day_start_equity=Decimal(10000))
    Bot.objects.filter(pk=bot.pk).update(created_at=timezone.now() - timedelta(days=3))
    for kind, threshold, window in [("daily_loss", 3, None), ("pnl_move", 4, 60), ("llm_spend", "1.5", None)]:
        AlertRule.objects.create(owner=user, kind=kind, threshold=Decimal(threshold), window_minutes=window)
    snapshot(bot, "10000", minutes_ago=90)
    snapshot(bot, "9500")
    # Failures: 3 of 4 cycles in the last hour failed or had invalid output (default rule: 50 %).
    for n, (status, invalid) in enumerate(
        [("failed", ""), ("completed", "not JSON"), ("failed", ""), ("completed", "")]
    ):
        Cycle.objects.create(bot=bot, slot=timezone.now() - timedelta(minutes=5 * n + 1), status=status,
                             decision_error=invalid, started_at=timezone.now())  # fmt: skip
    LLMCall.objects.create(bot=bot, provider="openai", model="gpt", cost=Decimal("1.75"))
    # Unusual activity: 8 fills in the last hour, against 14 in the week before (2 a day).
    for _ in range(8):
        fill(bot)
    old = [fill(bot) for _ in range(14)]
    with books_unguarded():  # fills of two days ago (created_at is set on insert)
        Fill.objects.filter(pk__in=[f.pk for f in old]).update(created_at=timezone.now() - timedelta(days=2))
    # Volatility: BTC/USD moved +6 % in the last hour of market time (the default rule: 5 % in 60 min).
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=400)
    for hour, close in enumerate(["59000", "60000", "63600"]):
        Candle.objects.create(exchange="coinbase", symbol="BTC/USD", timeframe="1h", open_time=start + timedelta(hours=hour),
                              open=Decimal(close), high=Decimal(close), low=Decimal(close), close=Decimal(close),
                              volume=Decimal(1))  # fmt: skip
    evaluate(now=later())
    messages = dict(Alert.objects.filter(owner=user).values_list("event", "message"))
    assert messages["daily_loss"] == "busy: down 5.00 % since 00:00 UTC (10,000.00 USD → 9,500.00 USD)"
    assert messages["pnl_move"] == "busy: equity down 5.00 % in 1 h (10,000.00 USD → 9,500.00 USD)"
    assert (
        messages["failure_rate"] == "busy: 3 of 4 cycles in the last 1 h failed or had invalid model output (75.00 %)"
    )
    assert messages["llm_spend"] == "Your bots' LLM spend today is 1.75 USD (rule: over 1.5 USD)"
    assert messages["unusual_activity"].startswith("busy: 8 trades in the last 1 h, 8.0× its usual")
    assert messages["volatility"] == "BTC/USD on coinbase moved +6.00 % in 1 h of market time (60000 → 63600)"
    assert "drawdown" not in messages  # 5 % is under the default 10 %


def test_a_stopped_bot_is_not_watched_and_other_users_rules_see_only_their_bots(user, other_user) -> None:  # type: ignore[no-untyped-def]
    mine = BotFactory(owner=user, status="stopped")
    theirs = BotFactory(owner=other_user, status="active")
    fund_bot(mine, peak_equity=Decimal(10000))
    fund_bot(theirs, peak_equity=Decimal(10000))
    snapshot(mine, "5000")
    snapshot(theirs, "5000")
    evaluate(now=later())
    assert not Alert.objects.filter(owner=user).exists()
    assert Alert.objects.get(owner=other_user, event="drawdown").bot_id == theirs.pk
