"""Lifecycle commands under the conditions users meet: a busy bot, a stale row, a resumed bot."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

import bots.cycle as cycle_module
from bots.cycle import run_cycle
from bots.exceptions import BotBusy, BotConfigurationError
from bots.models import Bot, Cycle
from bots.services import (
    bot_create,
    bot_lease_acquire,
    bot_lease_release,
    bot_pause,
    bot_start,
    bot_stop,
    bot_trip_breaker,
    bot_update,
    bots_dispatch_due,
    exchange_account_update,
    slot_floor,
)
from tests.factories import SLOT, BotFactory, ExchangeAccountFactory, UserFactory
from trading.models import Position

pytestmark = pytest.mark.django_db


def test_a_stop_that_finds_the_bot_busy_is_finished_by_a_close_out_cycle():
    bot = BotFactory(start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    assert Position.objects.filter(bot=bot, status="open").count() == 1
    assert bot_lease_acquire(bot_id=bot.pk, owner="cycle:1:slow-llm")  # a cycle waiting on its model
    with pytest.raises(BotBusy):
        bot_stop(bot=bot, lease_wait_seconds=0)
    bot_lease_release(bot_id=bot.pk, owner="cycle:1:slow-llm")
    bot.refresh_from_db()
    assert bot.status == Bot.Status.STOPPED

    # The dispatcher picks the stopped bot up because it still holds a position, and closes it.
    claimed: list[tuple[int, object]] = []
    bots_dispatch_due(now=timezone.now(), enqueue=lambda b, s, i: claimed.append((b, s)))
    assert [b for b, _ in claimed] == [bot.pk]
    cycle = run_cycle(bot_id=bot.pk, slot=claimed[0][1])
    assert cycle.kind == Cycle.Kind.CLOSE_OUT and cycle.status == Cycle.Status.COMPLETED
    assert not Position.objects.filter(bot=bot, status="open").exists()
    bot.refresh_from_db()
    assert bot.next_cycle_at is None  # nothing left to close: never dispatched again
    assert bot_stop(bot=bot).closed_positions == 0  # stop again: idempotent


def test_stop_during_the_decision_drops_the_opens(monkeypatch):
    bot = BotFactory(start=True)  # buy_and_hold opens on its first cycle
    real = cycle_module.get_decision_maker

    class StoppedWhileThinking:
        def __init__(self, inner):
            self.inner = inner

        def decide(self, ctx):
            with pytest.raises(BotBusy):  # the cycle holds the lease
                bot_stop(bot=Bot.objects.get(pk=bot.pk), lease_wait_seconds=0)
            return self.inner.decide(ctx)

    monkeypatch.setattr(cycle_module, "get_decision_maker", lambda b: StoppedWhileThinking(real(b)))
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    assert cycle.decision["actions"][0]["action"] == "open_long"
    assert cycle.risk["dropped_opens"] == ["BTC/USD"]
    assert not Position.objects.filter(bot=bot).exists()


def test_update_writes_only_what_changed():
    bot = BotFactory(start=True)
    stale = Bot.objects.get(pk=bot.pk)  # read by a request before a cycle and a breaker ran
    run_cycle(bot_id=bot.pk, slot=SLOT)
    bot_trip_breaker(bot=Bot.objects.get(pk=bot.pk), breaker="drawdown", reason="test")
    fresh = Bot.objects.get(pk=bot.pk)
    bot_update(bot=stale, data={"name": "renamed"})
    after = Bot.objects.get(pk=bot.pk)
    assert after.name == "renamed"
    assert (after.account.cash, after.status) == (fresh.account.cash, Bot.Status.PAUSED)


def test_markets_of_an_open_position_cannot_be_taken_away():
    bot = BotFactory(
        exchange="binance", symbols=["ETH/BTC", "ADA/BTC"], timeframe="5m", starting_capital=Decimal(1), start=True
    )
    run_cycle(bot_id=bot.pk, slot=SLOT)
    assert set(Position.objects.filter(bot=bot, status="open").values_list("symbol", flat=True)) == {
        "ETH/BTC",
        "ADA/BTC",
    }
    bot.refresh_from_db()
    with pytest.raises(BotConfigurationError, match="ETH/BTC has an open position"):
        bot_update(bot=bot, data={"symbols": ["ADA/BTC"]})
    with pytest.raises(BotConfigurationError, match="timeframe"):
        bot_update(bot=bot, data={"timeframe": "1h"})


def test_symbols_must_share_one_quote_currency():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="one quote currency"):
        bot_create(owner=UserFactory(), data={"name": "mixed", "model": "hold", "symbols": ["BTC/USDT", "ETH/BTC"]})


def test_a_resumed_bot_trades_within_one_tick_even_when_its_slot_already_ran():
    bot = BotFactory(interval_seconds=86400, start=True)
    slot = slot_floor(at=timezone.now(), interval_seconds=86400)
    run_cycle(bot_id=bot.pk, slot=slot)
    bot_pause(bot=bot)
    bot = bot_start(bot=Bot.objects.get(pk=bot.pk))
    assert bot.next_cycle_at is not None and bot.next_cycle_at > slot  # not the slot that ran
    claimed = bots_dispatch_due(now=timezone.now() + timedelta(seconds=1), enqueue=lambda b, s, i: None)
    assert [b for b, _ in claimed] == [bot.pk]


def test_a_live_bot_whose_exchange_has_no_testnet_does_not_start():
    bot = _live_bot(account_exchange="coinbase", exchange="coinbase", testnet=True)
    with pytest.raises(BotConfigurationError, match="no testnet"):
        bot_start(bot=bot, confirm_live=True)


def test_an_account_leaving_its_testnet_pauses_its_live_bots_until_confirmed_again():
    owner = UserFactory()
    account = ExchangeAccountFactory(owner=owner, exchange="binance", testnet=True)
    bot = bot_create(
        owner=owner,
        data={
            "name": "live",
            "model": "hold",
            "exchange": "binance",
            "symbols": ["ETH/BTC"],
            "timeframe": "5m",
            "mode": Bot.Mode.LIVE,
            "exchange_account": account,
        },
    )
    bot = bot_start(bot=bot, confirm_live=True)
    exchange_account_update(account=account, data={"testnet": False})
    bot.refresh_from_db()
    assert bot.status == Bot.Status.PAUSED and not bot.live_confirmed
    with pytest.raises(BotConfigurationError, match="confirm"):
        bot_start(bot=bot)


def _live_bot(*, account_exchange: str, testnet: bool, exchange: str = "binance") -> Bot:
    owner = UserFactory()
    account = ExchangeAccountFactory(owner=owner, exchange=account_exchange, testnet=testnet)
    # Created as paper, then switched at the model level: the service refuses what the API would.
    bot = bot_create(
        owner=owner,
        data={"name": "live", "model": "hold", "exchange": exchange, "symbols": ["ETH/BTC"], "timeframe": "5m"},
    )
    Bot.objects.filter(pk=bot.pk).update(mode=Bot.Mode.LIVE, exchange_account=account)
    return Bot.objects.get(pk=bot.pk)


def test_a_live_bot_reading_another_exchanges_prices_does_not_start():
    bot = _live_bot(account_exchange="kraken", testnet=True)
    with pytest.raises(BotConfigurationError, match="reads market data from 'binance'.*trades on 'kraken'"):
        bot_start(bot=bot, confirm_live=True)
    assert Bot.objects.get(pk=bot.pk).status == Bot.Status.INACTIVE


def test_real_money_is_never_traded_on_recorded_candles(settings):
    settings.MARKET_DATA_FEED = "replay"
    bot = _live_bot(account_exchange="binance", testnet=False)
    with pytest.raises(BotConfigurationError, match="MARKET_DATA_FEED=ccxt"):
        bot_start(bot=bot, confirm_live=True)
    assert Bot.objects.get(pk=bot.pk).status == Bot.Status.INACTIVE

    # With live market data it starts (the broker is only built here, nothing is sent).
    settings.MARKET_DATA_FEED = "ccxt"
    assert bot_start(bot=bot, confirm_live=True).status == Bot.Status.ACTIVE


def test_a_testnet_bot_may_rehearse_on_recorded_candles(settings):
    settings.MARKET_DATA_FEED = "replay"
    bot = _live_bot(account_exchange="binance", testnet=True)
    assert bot_start(bot=bot, confirm_live=True).status == Bot.Status.ACTIVE


def test_the_quote_currency_is_frozen_once_the_bot_has_run():
    bot = BotFactory(start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    bot.refresh_from_db()
    with pytest.raises(BotConfigurationError, match="quote currency cannot change after the bot has run"):
        bot_update(bot=bot, data={"exchange": "binance", "symbols": ["ETH/BTC"], "timeframe": "5m"})
    assert Bot.objects.get(pk=bot.pk).symbols == ["BTC/USD"]


def test_a_running_bot_cannot_switch_to_a_model_that_cannot_run_here(settings):
    settings.ANTHROPIC_API_KEY = ""
    bot = BotFactory(model="hold", start=True)
    with pytest.raises(BotConfigurationError, match="ANTHROPIC_API_KEY"):
        bot_update(bot=bot, data={"provider": "anthropic", "model": "claude-sonnet-4-6"})
    assert Bot.objects.get(pk=bot.pk).provider == "baseline"
    # An inactive bot may be set up ahead of its key: start refuses until the key is there.
    idle = BotFactory(model="hold", name="idle")
    bot_update(bot=idle, data={"provider": "anthropic", "model": "claude-sonnet-4-6"})


@pytest.mark.django_db(transaction=True)  # five threads, five connections: committed rows only
def test_concurrent_stops_close_once_answer_alike_and_alert_once():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from alerts.models import Alert

    bot = BotFactory(start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)  # buy_and_hold opens a position
    # Five requests each read the bot while it was still active, then stop it at once.
    copies = [Bot.objects.get(pk=bot.pk) for _ in range(5)]

    def stop(copy: Bot) -> int:
        try:
            return bot_stop(bot=copy).closed_positions
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        closed = list(pool.map(stop, copies))

    assert sorted(closed) == [0, 0, 0, 0, 1]  # no InvalidTransition for the repeats
    assert not Position.objects.filter(bot=bot, status="open").exists()
    assert Alert.objects.filter(bot=bot, message__contains="stopped:").count() == 1
