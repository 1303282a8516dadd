"""Exits never wait for a decision maker: stop, stop-loss and take-profit work with every LLM down."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from alerts.models import Alert
from bots.cycle import run_cycle
from bots.models import Bot, Cycle
from bots.services import bot_stop
from marketdata.services import snapshot_build
from tests.factories import SLOT, BotFactory
from trading.models import Order, Position

pytestmark = pytest.mark.django_db


def _open_long_then_switch_to_llm(**extra: object) -> Bot:
    bot = BotFactory(model="buy_and_hold", **extra, start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    assert Position.objects.filter(bot=bot, status="open").count() == 1
    Bot.objects.filter(pk=bot.pk).update(provider=Bot.Provider.OPENAI_COMPATIBLE, model="local-model")
    bot.refresh_from_db()
    return bot


def test_stop_closes_every_position_while_the_llm_is_down(down_llm):
    bot = _open_long_then_switch_to_llm()
    result = bot_stop(bot=bot)
    assert result.closed_positions == 1
    assert down_llm.hits == 0  # stop never asks a decision maker
    position = Position.objects.get(bot=bot)
    assert position.status == Position.Status.CLOSED and position.close_reason == "bot_stopped"
    assert result.realized_pnl == position.realized_pnl - position.fees
    bot.refresh_from_db()
    assert bot.status == Bot.Status.STOPPED and bot.next_cycle_at is None
    # All cash is back: starting capital plus the trade's net PnL.
    assert bot.account.cash == Decimal(10000) + position.realized_pnl - position.fees


def test_stop_loss_triggers_in_a_cycle_whose_llm_is_down(down_llm):
    bot = _open_long_then_switch_to_llm()
    position = Position.objects.get(bot=bot)
    # Put the stop just under the next candles' lows, so the next market move crosses it.
    later = SLOT + timedelta(seconds=180) * 8
    snapshot = snapshot_build(exchange=bot.exchange, symbols=bot.symbols, timeframe=bot.timeframe, slot=later)
    fresh = [c for c in snapshot.markets["BTC/USD"].candles if c.open_time > position.checked_until]
    assert fresh, "the replay clock must move between the two slots"
    lowest = min(c.low for c in fresh)
    Position.objects.filter(pk=position.pk).update(stop_loss=lowest + Decimal("0.01"), take_profit=None)

    cycle = run_cycle(bot_id=bot.pk, slot=later)

    position.refresh_from_db()
    assert position.status == Position.Status.CLOSED and position.close_reason == "stop_loss"
    assert Order.objects.get(bot=bot, intent="stop_loss").status == Order.Status.FILLED
    assert down_llm.hits >= 1  # the model was asked after the exit and failed
    assert cycle.status == Cycle.Status.COMPLETED
    assert cycle.decision_error  # the failed answer is recorded, the cycle held
    assert all(a["action"] == "hold" for a in cycle.decision["actions"])
    # The alert reads like a price, not like the 12-place column it came from.
    alert = Alert.objects.get(bot=bot, kind="trade")
    stop = format((lowest + Decimal("0.01")).normalize(), "f")
    assert alert.message == f"{bot.name}: BTC/USD closed by stop-loss at {stop}", alert.message
