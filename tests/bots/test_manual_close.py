"""Closing ONE position now (Telegram /close today, the API and dashboard later): a manual exit,
under the bot's lease, with no decision maker involved."""

from __future__ import annotations

import pytest

from bots.cycle import run_cycle
from bots.exceptions import BotBusy, InvalidTransition
from bots.models import Bot
from bots.services import bot_lease_acquire, bot_lease_release, position_close
from tests.factories import SLOT, BotFactory
from trading.models import Order, Position

pytestmark = pytest.mark.django_db(transaction=True)


def _holding_bot(**extra: object) -> Bot:
    bot = BotFactory(model="buy_and_hold", **extra, start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    assert Position.objects.filter(bot=bot, status="open").count() == 1
    return bot


def test_closes_the_position_as_a_manual_exit_by_the_user() -> None:
    bot = _holding_bot()
    # Every LLM could be down: the bot's decision maker is never asked (no server behind this one).
    Bot.objects.filter(pk=bot.pk).update(provider=Bot.Provider.OPENAI_COMPATIBLE, model="unreachable")
    bot.refresh_from_db()
    result = position_close(bot=bot, symbol="BTC/USD", user=bot.owner)
    position = Position.objects.get(bot=bot)
    assert result.closed and result.position_id == position.pk
    assert position.status == "closed" and position.close_reason == "manual" and position.closed_by == bot.owner
    assert result.net_pnl == position.realized_pnl - position.fees and result.exit_price == position.exit_price
    [exit_order] = Order.objects.filter(position=position, intent="close")
    assert exit_order.status == "filled" and exit_order.client_order_id == f"ta-{bot.pk}-p{position.pk}-x0"
    bot.refresh_from_db()
    assert bot.status == "active", "closing a position does not stop the bot"
    assert bot.lease_owner == "", "the lease is given back"


def test_a_second_close_finds_nothing_and_sends_no_second_order() -> None:
    bot = _holding_bot()
    position_close(bot=bot, symbol="BTC/USD")
    with pytest.raises(InvalidTransition, match="no open position on BTC/USD"):
        position_close(bot=bot, symbol="BTC/USD")
    assert Order.objects.filter(bot=bot, intent="close").count() == 1


def test_waits_for_a_running_cycle_and_says_so_when_it_does_not_end() -> None:
    bot = _holding_bot()
    assert bot_lease_acquire(bot_id=bot.pk, owner="cycle:0:running")
    try:
        with pytest.raises(BotBusy):
            position_close(bot=bot, symbol="BTC/USD", lease_wait_seconds=0.3)
        assert Position.objects.get(bot=bot).status == "open"
    finally:
        bot_lease_release(bot_id=bot.pk, owner="cycle:0:running")


def test_works_on_a_paused_bot() -> None:
    from bots.services import bot_pause

    bot = _holding_bot()
    bot_pause(bot=bot)
    assert position_close(bot=bot, symbol="BTC/USD").closed
