"""Live-money safety in the API: where a bot trades cannot change under it, and a bot that still
holds something cannot be deleted."""

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from bots.models import Bot
from tests.factories import BotFactory, ExchangeAccountFactory
from trading.models import Position

pytestmark = pytest.mark.django_db


def _live_bot_with_open_position(user: Any, *, status: str, testnet: bool = True) -> tuple[Bot, Any]:
    account = ExchangeAccountFactory(owner=user, testnet=testnet)
    bot = BotFactory(owner=user, mode=Bot.Mode.LIVE, exchange_account=account, live_confirmed=True, status=status)
    Position.objects.create(
        bot=bot,
        symbol="BTC/USD",
        side="long",
        quantity=Decimal("0.1"),
        entry_price=Decimal(50000),
        margin=Decimal(5000),
        opened_at=timezone.now(),
    )
    return bot, account


def test_stopped_bot_with_open_position_cannot_be_deleted(api: APIClient, user: Any) -> None:
    # bot_stop leaves the bot STOPPED with positions still open when the exchange fails; a
    # close-out cycle is supposed to finish the job. Deleting it now drops the live position.
    bot, _ = _live_bot_with_open_position(user, status=Bot.Status.STOPPED)
    response = api.delete(f"/api/bots/{bot.pk}/")
    assert response.status_code == 409, (response.status_code, "bot with an open live position deleted")


def test_account_of_live_bot_with_open_position_cannot_move_to_another_exchange(api: APIClient, user: Any) -> None:
    bot, account = _live_bot_with_open_position(user, status=Bot.Status.ACTIVE, testnet=False)
    response = api.patch(f"/api/exchange-accounts/{account.pk}/", {"exchange": "kraken"}, format="json")
    assert response.status_code == 400, response.json()


def test_account_of_live_bot_with_real_position_cannot_switch_back_to_testnet(api: APIClient, user: Any) -> None:
    bot, account = _live_bot_with_open_position(user, status=Bot.Status.ACTIVE, testnet=False)
    response = api.patch(f"/api/exchange-accounts/{account.pk}/", {"testnet": True}, format="json")
    bot.refresh_from_db()
    # The real-money position would now be watched/closed on the testnet: refuse or at least pause.
    assert response.status_code == 400, response.json()
    assert bot.status == Bot.Status.ACTIVE


def test_active_paper_bot_cannot_switch_to_live_without_confirmation(api: APIClient, user: Any) -> None:
    from tests.factories import BotFactory

    bot = BotFactory(owner=user, start=True)  # active, first cycle not run yet (due within one tick)
    account = ExchangeAccountFactory(owner=user, exchange=bot.exchange, testnet=False)
    response = api.patch(f"/api/bots/{bot.pk}/", {"mode": "live", "exchange_account": account.pk}, format="json")
    bot.refresh_from_db()
    # The dispatcher would now run it on real money although nobody passed confirm_live.
    assert response.status_code == 400, response.json()
    assert bot.mode == Bot.Mode.PAPER


def test_live_bot_must_read_the_prices_of_the_exchange_it_trades_on(api: APIClient, user: Any) -> None:
    from tests.api.conftest import bot_config

    account = ExchangeAccountFactory(owner=user, exchange="binance", testnet=True)
    response = api.post("/api/bots/", bot_config(mode="live", exchange_account=account.pk), format="json")
    assert response.status_code == 400, response.json()
    assert "'coinbase'" in response.json()["error"]["fields"]["exchange"][0]
    assert not Bot.objects.exists()

    # Paper bots do not trade on the account, so any market data is fine for them.
    paper = api.post("/api/bots/", bot_config(exchange_account=account.pk), format="json")
    assert paper.status_code == 201, paper.json()
    # Turning that bot live is checked the same way.
    switched = api.patch(f"/api/bots/{paper.json()['id']}/", {"mode": "live"}, format="json")
    assert switched.status_code == 400 and "exchange" in switched.json()["error"]["fields"]
    assert Bot.objects.get().mode == Bot.Mode.PAPER
