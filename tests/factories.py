"""Factories and builders of test data; tests build only the rows they need.

A bot is built one way: `BotFactory`, which calls the real service (`bots.services.bot_create`,
then `bot_start` with `start=True`), so its account is funded as a user's would be. Its account
state is set one way too: `fund_bot` (cash and the breaker marks).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model

from bots.cycle import run_cycle
from bots.models import Bot
from bots.services import EDITABLE_FIELDS, bot_create, bot_start
from marketdata.feeds import get_feed
from marketdata.services import candles_upsert
from trading.models import ExchangeAccount, TradingAccount

# A fixed slot on the 180 s grid: the replayed market (coinbase BTC/USD 1h) is the same every run.
SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-test-123")


class BotFactory(factory.django.DjangoModelFactory):
    """A paper bot made by `bot_create` (inactive), started by `bot_start` with `start=True`.

    Any field `bot_create` takes can be given. `status=` puts the row in a state directly, for
    states the services reach only through an exchange (a live bot running, or stopped while
    holding a position).
    """

    class Meta:
        model = Bot
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"factory-bot-{n}")  # never one a test picks (bot-1, ...)
    provider = Bot.Provider.BASELINE
    model = "buy_and_hold"
    exchange = "coinbase"
    symbols = factory.LazyFunction(lambda: ["BTC/USD"])
    timeframe = "1h"
    starting_capital = Decimal(10000)
    interval_seconds = 180
    max_trades_per_day = 100
    start = False
    status = None

    @classmethod
    def _create(cls, model_class: type[Bot], *args: Any, **kwargs: Any) -> Bot:
        owner = kwargs.pop("owner")
        start = kwargs.pop("start")
        status = kwargs.pop("status")
        unknown = sorted(set(kwargs) - set(EDITABLE_FIELDS))
        if unknown:
            raise TypeError(f"BotFactory: bot_create does not take {unknown} (account state: use fund_bot)")
        bot = bot_create(owner=owner, data=kwargs)
        if start:
            bot = bot_start(bot=bot, confirm_live=True)
        if status is not None:
            Bot.objects.filter(pk=bot.pk).update(status=status)
            bot.refresh_from_db()
        return bot


def fund_bot(
    bot: Bot,
    *,
    cash: Decimal | None = None,
    peak_equity: Decimal | None = None,
    day_start_equity: Decimal | None = None,
    day_start_date: date | None = None,
) -> None:
    """Set the bot's account state (its cash and the marks its breakers compare equity with).

    The one place the tests write account state, so that where it is stored can change here
    alone. Writes the row only, as a fill does: a `Bot` object already in memory keeps what it had
    (`refresh_from_db()` to see the new state).
    """
    marks = {
        name: value
        for name, value in (
            ("cash", cash),
            ("peak_equity", peak_equity),
            ("day_start_equity", day_start_equity),
            ("day_start_date", day_start_date),
        )
        if value is not None
    }
    if not marks:
        raise TypeError("fund_bot: nothing to set")
    TradingAccount.objects.filter(pk=bot.pk).update(**marks)


def store_candles(*, bot: Bot, until: datetime, limit: int = 300) -> None:
    """Store the candles the bot's cycle saw, as a worker's first fetch does.

    The market data layer memoizes fetched candles per process and in Redis, so a cycle of a later
    test may not write them again, while each test's transaction drops what an earlier one wrote.
    """
    feed = get_feed()
    for symbol in bot.symbols:
        candles = feed.fetch_ohlcv(
            exchange=bot.exchange, symbol=symbol, timeframe=bot.timeframe, until=until, limit=limit
        )
        candles_upsert(exchange=bot.exchange, symbol=symbol, timeframe=bot.timeframe, candles=candles)


def traded(*, owner: Any, name: str = "trader", model: str = "buy_and_hold", slot: datetime = SLOT) -> Bot:
    """A bot that ran one real cycle on the replay feed and the paper broker."""
    bot = BotFactory(owner=owner, name=name, model=model, start=True)
    cycle = run_cycle(bot_id=bot.pk, slot=slot)
    assert cycle.status == "completed", cycle.error
    assert cycle.market_time is not None
    store_candles(bot=bot, until=cycle.market_time)
    bot.refresh_from_db()
    return bot


class ExchangeAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeAccount

    owner = factory.SubFactory(UserFactory)
    exchange = "binance"
    label = factory.Sequence(lambda n: f"account-{n}")
    api_key = "test-api-key"
    api_secret = "test-api-secret"
    testnet = True
