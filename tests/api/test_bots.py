"""Bots API: create/update validation, account state protection, start/pause/stop, delete."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bots.models import Bot
from tests.api.conftest import bot_config
from tests.factories import BotFactory, traded
from trading.models import Order, Position

pytestmark = pytest.mark.django_db


def test_create_funds_the_paper_account_and_answers_with_equity(api, user):
    response = api.post("/api/bots/", bot_config(starting_capital="2500.5"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    bot = Bot.objects.get(pk=body["id"])
    assert bot.owner == user and bot.status == Bot.Status.INACTIVE
    assert bot.account.cash == bot.account.peak_equity == Decimal("2500.5")
    assert Decimal(body["equity"]) == Decimal("2500.5") and Decimal(body["pnl"]) == 0
    # Fixed-point strings like every other decimal of the API, never an exponent ("0E-12").
    assert body["pnl"] == "0.000000000000" and body["equity"] == "2500.500000000000"
    assert body["open_positions"] == 0


def test_account_state_in_the_request_is_ignored(api):
    payload = bot_config(
        cash="99999999",
        peak_equity="1",
        status="active",
        next_cycle_at="2030-01-01T00:00:00Z",
        lease_owner="me",
        llm_cost_total="5",
        live_confirmed=True,
        consecutive_failures=3,
    )
    response = api.post("/api/bots/", payload, format="json")

    assert response.status_code == 201, response.json()
    bot = Bot.objects.get(pk=response.json()["id"])
    assert bot.account.cash == Decimal(10000) and bot.account.peak_equity == Decimal(10000)
    assert bot.status == Bot.Status.INACTIVE and bot.next_cycle_at is None
    assert bot.lease_owner == "" and bot.llm_cost_total == 0 and not bot.live_confirmed
    assert bot.consecutive_failures == 0

    patched = api.patch(f"/api/bots/{bot.pk}/", {"cash": "1", "status": "stopped", "name": "renamed"}, format="json")
    assert patched.status_code == 200, patched.json()
    bot.refresh_from_db()
    assert bot.name == "renamed" and bot.account.cash == Decimal(10000) and bot.status == Bot.Status.INACTIVE


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"starting_capital": "99.99"}, "starting_capital"),
        ({"starting_capital": "NaN"}, "starting_capital"),
        ({"starting_capital": "0"}, "starting_capital"),
        ({"starting_capital": "-5"}, "starting_capital"),
        ({"interval_seconds": 86401}, "interval_seconds"),
        ({"provider": "nope"}, "provider"),
        ({"provider": "baseline", "model": "crystal_ball"}, "model"),
        ({"provider": "openai", "model": "gpt-imaginary"}, "model"),
        ({"symbols": ["DOGE/USD"]}, "symbols"),
        ({"symbols": []}, "symbols"),
        ({"symbols": ["BTC/USD", "BTC/USD"]}, "symbols"),
        ({"exchange": "kraken"}, "exchange"),
        ({"timeframe": "3m"}, "timeframe"),
        ({"max_leverage": "200"}, "max_leverage"),
        ({"max_position_pct": "0"}, "max_position_pct"),
        ({"max_drawdown_pct": "101"}, "max_drawdown_pct"),
        ({"daily_loss_limit_pct": "-1"}, "daily_loss_limit_pct"),
        ({"max_exposure_pct": "5000"}, "max_exposure_pct"),
        ({"max_trades_per_day": 0}, "max_trades_per_day"),
        ({"interval_seconds": 1}, "interval_seconds"),
        ({"llm_daily_budget": "-5"}, "llm_daily_budget"),
        ({"mode": "live"}, "exchange_account"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_configuration_is_a_400_naming_the_field(api, overrides, field):
    response = api.post("/api/bots/", bot_config(**overrides), format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400 and error["code"] == "invalid"
    assert field in error["fields"], error
    assert all(isinstance(m, str) and m for m in error["fields"][field])
    assert not Bot.objects.exists()


def test_duplicate_name_is_a_field_error_but_another_users_name_is_free(api, other_api, user):
    BotFactory(owner=user, name="alpha")

    assert api.post("/api/bots/", bot_config(name="alpha"), format="json").json()["error"]["fields"]["name"]
    assert other_api.post("/api/bots/", bot_config(name="alpha"), format="json").status_code == 201


def test_another_users_exchange_account_cannot_be_chosen(api, other_user):
    from tests.factories import ExchangeAccountFactory

    foreign = ExchangeAccountFactory(owner=other_user)
    response = api.post("/api/bots/", bot_config(mode="live", exchange_account=foreign.pk), format="json")

    assert response.status_code == 400
    assert "exchange_account" in response.json()["error"]["fields"]


def test_frozen_fields_after_the_bot_ran_are_a_400(api, user):
    bot = traded(owner=user)
    response = api.patch(f"/api/bots/{bot.pk}/", {"starting_capital": "500"}, format="json")

    assert response.status_code == 400
    assert "starting_capital" in response.json()["error"]["message"]


def test_list_shows_live_equity_of_each_bot(api, user, traded_bot):
    BotFactory(owner=user, name="idle")
    response = api.get("/api/bots/")

    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows) == {"idle", "trader"}
    position = Position.objects.get(bot=traded_bot, status="open")
    row = rows["trader"]
    # Equity = free cash + margin + unrealized PnL at the price of the bot's last candle.
    assert Decimal(row["equity"]) == traded_bot.account.cash + position.margin + Decimal(row["unrealized_pnl"])
    assert Decimal(row["pnl"]) == Decimal(row["equity"]) - Decimal(10000)
    assert row["open_positions"] == 1 and rows["idle"]["open_positions"] == 0


def test_start_pause_start_stop(api, user):
    bot = BotFactory(owner=user)

    started = api.post(f"/api/bots/{bot.pk}/start/", {}, format="json")
    assert started.status_code == 200 and started.json()["status"] == "active"
    assert started.json()["next_cycle_at"] is not None
    assert api.post(f"/api/bots/{bot.pk}/pause/").json()["status"] == "paused"
    assert api.post(f"/api/bots/{bot.pk}/start/", {}, format="json").json()["status"] == "active"
    stopped = api.post(f"/api/bots/{bot.pk}/stop/")
    assert stopped.status_code == 200
    assert stopped.json()["bot"]["status"] == "stopped"
    assert stopped.json()["closed_positions"] == 0


def test_an_impossible_transition_is_a_409(api, user):
    bot = BotFactory(owner=user)

    response = api.post(f"/api/bots/{bot.pk}/pause/")

    assert response.status_code == 409
    assert response.json()["error"] == {
        "status": 409,
        "code": "invalid_transition",
        "message": "cannot go from inactive to paused",
    }


def test_start_of_an_unconfigured_llm_is_a_400_with_the_reason(api, user, settings):
    settings.OPENAI_API_KEY = ""
    created = api.post("/api/bots/", bot_config(provider="openai", model="gpt-4o-mini"), format="json")
    assert created.status_code == 201, created.json()

    response = api.post(f"/api/bots/{created.json()['id']}/start/", {}, format="json")

    assert response.status_code == 400
    assert "OPENAI_API_KEY" in response.json()["error"]["message"]
    assert Bot.objects.get(pk=created.json()["id"]).status == Bot.Status.INACTIVE


def test_stop_closes_positions_and_returns_the_realized_pnl(api, user):
    bot = traded(owner=user)
    assert Position.objects.filter(bot=bot, status="open").count() == 1

    response = api.post(f"/api/bots/{bot.pk}/stop/")

    assert response.status_code == 200, response.json()
    body = response.json()
    closed = Position.objects.get(bot=bot)
    assert closed.status == "closed" and closed.close_reason == "bot_stopped"
    assert body["closed_positions"] == 1
    # Net of the position's fees (entry and exit), as bots.services.bot_stop reports it.
    assert Decimal(body["realized_pnl"]) == closed.realized_pnl - closed.fees
    assert Order.objects.filter(bot=bot, intent="close", status="filled").count() == 1
    assert body["bot"]["status"] == "stopped" and body["bot"]["open_positions"] == 0


def test_delete_only_when_not_running(api, user):
    bot = BotFactory(owner=user, start=True)

    assert api.delete(f"/api/bots/{bot.pk}/").status_code == 409
    api.post(f"/api/bots/{bot.pk}/stop/")
    assert api.delete(f"/api/bots/{bot.pk}/").status_code == 204
    assert not Bot.objects.filter(pk=bot.pk).exists()


def test_a_bot_that_has_run_is_never_deleted(api, user):
    bot = traded(owner=user)
    api.post(f"/api/bots/{bot.pk}/stop/")

    response = api.delete(f"/api/bots/{bot.pk}/")

    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert message.startswith("it has a trading history (1 cycle, 2 orders, ")
    assert "the books are append-only" in message
    assert Bot.objects.filter(pk=bot.pk).exists() and Order.objects.filter(bot=bot).count() == 2


def test_candles_up_to_the_bots_market_time(api, traded_bot):
    cycle = traded_bot.cycles.get()

    response = api.get(f"/api/bots/{traded_bot.pk}/candles/?limit=50")

    assert response.status_code == 200
    candles = response.json()
    assert len(candles) == 50
    times = [c["time"] for c in candles]
    assert times == sorted(times)
    assert times[-1] == cycle.market_time.isoformat().replace("+00:00", "Z")
    assert api.get(f"/api/bots/{traded_bot.pk}/candles/?symbol=ETH/BTC").status_code == 400


def test_catalog_lists_providers_baselines_and_markets(api):
    body = api.get("/api/catalog/").json()

    assert {"buy_and_hold", "ema_rsi", "hold"} <= set(body["baselines"])
    assert body["providers"]["openai_compatible"] is None
    assert "BTC/USD" in body["markets"]["coinbase"]


def test_capital_in_a_crypto_quote_needs_only_be_positive(api):
    # 100 is a dollar minimum: ETH/BTC trades in BTC, where 0.5 is a real account.
    config = bot_config(exchange="binance", symbols=["ETH/BTC"], timeframe="5m", starting_capital="0.5")
    response = api.post("/api/bots/", config, format="json")
    assert response.status_code == 201, response.json()
    assert Bot.objects.get(pk=response.json()["id"]).account.cash == Decimal("0.5")
    # Moving that account to a dollar quote brings the dollar minimum back.
    patched = api.patch(
        f"/api/bots/{response.json()['id']}/",
        {"exchange": "coinbase", "symbols": ["BTC/USD"], "timeframe": "1h"},
        format="json",
    )
    assert patched.status_code == 400 and "starting_capital" in patched.json()["error"]["fields"]
