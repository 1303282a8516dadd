"""factory_boy factories for the models; tests build only the rows they need."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from bots.models import Bot
from trading.models import ExchangeAccount
from trading.services import trading_account_open


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-test-123")


class BotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bot
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"bot-{n}")
    provider = Bot.Provider.BASELINE
    model = "ema_rsi"
    exchange = "coinbase"
    symbols = factory.LazyFunction(lambda: ["BTC/USD"])
    timeframe = "1h"
    starting_capital = Decimal(10000)
    interval_seconds = 180

    @factory.post_generation
    def account(bot: Bot, create: bool, extracted: object, **kwargs: object) -> None:
        # Every bot trades with an account funded with its capital (bots.services.bot_create does the same).
        if create:
            trading_account_open(
                bot_id=bot.pk, owner_id=bot.owner_id, capital=bot.starting_capital, today=timezone.now().date()
            )


class ExchangeAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeAccount

    owner = factory.SubFactory(UserFactory)
    exchange = "binance"
    label = factory.Sequence(lambda n: f"account-{n}")
    api_key = "test-api-key"
    api_secret = "test-api-secret"
    testnet = True
