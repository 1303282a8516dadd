"""Bots admin: owner scoping, start/pause/stop actions, cycles as a read-only audit record."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from bots.cycle import run_cycle
from bots.models import Bot
from tests.factories import SLOT, BotFactory, UserFactory, fund_bot
from trading.models import Position

pytestmark = pytest.mark.django_db

BOT_URL = "/admin/bots/bot/"


def staff_client() -> tuple[Client, Any]:
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="bots"))
    client = Client()
    client.force_login(user)
    return client, user


def test_staff_see_only_their_own_bots_and_cycles():
    client, user = staff_client()
    mine = BotFactory(owner=user, name="mine", start=True)
    theirs = BotFactory(name="theirs", start=True)
    run_cycle(bot_id=mine.pk, slot=SLOT)
    run_cycle(bot_id=theirs.pk, slot=SLOT)
    page = client.get(BOT_URL).content.decode()
    assert "mine" in page and "theirs" not in page
    assert client.get(f"{BOT_URL}{theirs.pk}/change/").status_code == 302  # not found → back to the list
    cycles = client.get("/admin/bots/cycle/").content.decode()
    assert cycles.count("completed") >= 1 and "theirs" not in cycles


def test_actions_start_pause_and_stop():
    client, user = staff_client()
    bot = BotFactory(owner=user)
    client.post(BOT_URL, {"action": "start_bots", "_selected_action": [bot.pk]})
    bot.refresh_from_db()
    assert bot.status == Bot.Status.ACTIVE
    run_cycle(bot_id=bot.pk, slot=SLOT)  # buy_and_hold opens a position
    client.post(BOT_URL, {"action": "pause_bots", "_selected_action": [bot.pk]})
    bot.refresh_from_db()
    assert bot.status == Bot.Status.PAUSED
    response = client.post(BOT_URL, {"action": "stop_bots", "_selected_action": [bot.pk]}, follow=True)
    bot.refresh_from_db()
    assert bot.status == Bot.Status.STOPPED
    assert not Position.objects.filter(bot=bot, status="open").exists()
    assert "closed 1 position(s)" in response.content.decode()
    # Pausing a stopped bot is refused with a message, not an error page.
    response = client.post(BOT_URL, {"action": "pause_bots", "_selected_action": [bot.pk]}, follow=True)
    assert response.status_code == 200 and "cannot go from stopped to paused" in response.content.decode()


def test_cycles_are_read_only():
    client, user = staff_client()
    bot = BotFactory(owner=user, start=True)
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    page = client.get(f"/admin/bots/cycle/{cycle.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert cycle.snapshot_hash in body and "Save" not in body
    assert client.get("/admin/bots/cycle/add/").status_code == 403


def test_the_bot_form_offers_only_the_users_own_accounts_and_themself():
    from tests.factories import ExchangeAccountFactory

    client, user = staff_client()
    other = UserFactory(username="someone-else")
    ExchangeAccountFactory(owner=user, label="my-account")
    ExchangeAccountFactory(owner=other, label="someone-elses-account")
    page = client.get(f"{BOT_URL}add/").content.decode()
    assert "my-account" in page and "someone-elses-account" not in page
    assert f">{user.username}<" in page and ">someone-else<" not in page


# --- The bot form holds a bot to the API's rules ---------------------------------------------------


def form_data(bot: Bot | None = None, **changes: Any) -> dict[str, Any]:
    """What the admin's bot form posts: a bot's current settings (or a valid new bot's)."""
    data: dict[str, Any] = {
        "name": "admin-made",
        "provider": "baseline",
        "model": "buy_and_hold",
        "exchange": "coinbase",
        "symbols": '["BTC/USD"]',
        "timeframe": "1h",
        "interval_seconds": 180,
        "starting_capital": "10000",
        "max_position_pct": "20",
        "max_leverage": "3",
        "max_exposure_pct": "100",
        "max_trades_per_day": 100,
        "daily_loss_limit_pct": "5",
        "max_drawdown_pct": "20",
        "llm_daily_budget": "",
        "mode": "paper",
        "exchange_account": "",
    }
    if bot is not None:
        for name in data:
            value = getattr(bot, name if name != "exchange_account" else "exchange_account_id")
            data[name] = json.dumps(value) if name == "symbols" else ("" if value is None else value)
        if bot.live_confirmed:
            data["live_confirmed"] = "on"
    data.update(changes)
    return data


def errors_of(response: Any) -> str:
    """The form's error messages, or "" when it was saved (a redirect)."""
    if response.status_code == 302:
        return ""
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return json.dumps(form.errors)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"symbols": '["DOGE/USD"]'}, "Not offered on coinbase: DOGE/USD"),
        ({"exchange": "nowhere"}, "no data for exchange 'nowhere'"),
        ({"timeframe": "7m"}, "not '7m'"),
        ({"model": "gpt-imaginary", "provider": "openai"}, "Unknown model 'gpt-imaginary'"),
        ({"model": "coin-flip"}, "Unknown baseline 'coin-flip'"),
        ({"starting_capital": "-5"}, "greater than or equal to 100"),
        ({"starting_capital": "99.99"}, "greater than or equal to 100"),
        ({"interval_seconds": 99999999999999}, "less than or equal to 86400"),
        ({"interval_seconds": 86401}, "less than or equal to 86400"),
        ({"max_trades_per_day": 0}, "greater than or equal to 1"),
        ({"llm_daily_budget": "-1"}, "greater than or equal to 0"),
        ({"symbols": "[]"}, "This field is required"),
        ({"exchange": "binance", "symbols": '["ETH/BTC", "ETH/BTC"]', "timeframe": "5m"}, "appears more than once"),
        ({"mode": "live"}, "Live trading needs one of your exchange accounts"),
    ],
)
def test_the_add_form_refuses_what_the_api_refuses(changes, expected):
    client, user = staff_client()
    response = client.post(f"{BOT_URL}add/", form_data(owner=user.pk, **changes))
    assert expected in errors_of(response)
    assert not Bot.objects.filter(name="admin-made").exists()


def test_the_add_form_refuses_another_users_exchange_account():
    from tests.factories import ExchangeAccountFactory

    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    owner = UserFactory(username="owner")
    theirs = ExchangeAccountFactory(owner=UserFactory(username="stranger"), exchange="coinbase")
    response = client.post(
        f"{BOT_URL}add/", form_data(owner=owner.pk, mode="live", exchange_account=theirs.pk, live_confirmed="on")
    )
    assert "belongs to another user" in errors_of(response)
    assert not Bot.objects.filter(name="admin-made").exists()


def test_a_bot_added_in_the_admin_has_a_funded_paper_account():
    client, user = staff_client()
    response = client.post(f"{BOT_URL}add/", form_data(owner=user.pk, starting_capital="2500"))
    assert errors_of(response) == ""
    bot = Bot.objects.get(name="admin-made")
    assert bot.owner == user and bot.status == Bot.Status.INACTIVE
    assert bot.account.cash == bot.account.peak_equity == bot.account.day_start_equity == Decimal(2500)
    assert bot.account.day_start_date is not None


def test_a_bot_that_has_run_keeps_its_capital_and_the_markets_of_its_position():
    client, user = staff_client()
    bot = BotFactory(owner=user, start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)  # buy_and_hold opens BTC/USD
    bot.refresh_from_db()
    url = f"{BOT_URL}{bot.pk}/change/"
    refused = {
        "starting_capital": ({"starting_capital": "20000"}, "starting_capital cannot change after the bot has run"),
        "mode": ({"mode": "live"}, "Live trading needs one of your exchange accounts"),
    }
    for changes, expected in refused.values():
        assert expected in errors_of(client.post(url, form_data(bot, **changes)))
    after = Bot.objects.get(pk=bot.pk)
    assert (after.starting_capital, after.mode) == (Decimal(10000), "paper")

    perp = BotFactory(
        owner=user, name="perp", exchange="binanceusdm", symbols=["XRP/USDT:USDT"], timeframe="5m", start=True
    )
    run_cycle(bot_id=perp.pk, slot=SLOT)
    perp.refresh_from_db()
    response = client.post(f"{BOT_URL}{perp.pk}/change/", form_data(perp, timeframe="1h"))
    assert "exchange and timeframe cannot change while a position is open" in errors_of(response)
    assert Bot.objects.get(pk=perp.pk).timeframe == "5m"

    pair = BotFactory(
        owner=user, name="pair", exchange="binance", symbols=["ETH/BTC", "ADA/BTC"], timeframe="5m", start=True
    )
    run_cycle(bot_id=pair.pk, slot=SLOT)  # buy_and_hold opens both
    pair.refresh_from_db()
    response = client.post(f"{BOT_URL}{pair.pk}/change/", form_data(pair, symbols='["ADA/BTC"]'))
    assert "ETH/BTC has an open position" in errors_of(response)
    assert Bot.objects.get(pk=pair.pk).symbols == ["ETH/BTC", "ADA/BTC"]


def test_the_change_form_writes_only_what_changed():
    client, user = staff_client()
    bot = BotFactory(owner=user, start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    bot.refresh_from_db()
    data = form_data(bot, max_leverage="2", interval_seconds=300)
    # A fill moves the account while the form is open: the save must not write the old cash back.
    fund_bot(bot, cash=Decimal("1234.5"))
    assert errors_of(client.post(f"{BOT_URL}{bot.pk}/change/", data)) == ""
    after = Bot.objects.get(pk=bot.pk)
    assert after.max_leverage == Decimal(2) and after.interval_seconds == 300
    assert after.account.cash == Decimal("1234.5")


def test_the_owner_of_a_bot_is_fixed_once_created():
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    bot = BotFactory()
    other = UserFactory(username="someone")
    client.post(f"{BOT_URL}{bot.pk}/change/", form_data(bot, owner=other.pk))
    assert Bot.objects.get(pk=bot.pk).owner_id == bot.owner_id


def test_the_dollar_minimum_of_capital_applies_to_dollar_quotes_only():
    client, user = staff_client()
    btc_quoted = form_data(
        owner=user.pk, exchange="binance", symbols='["ETH/BTC"]', timeframe="5m", starting_capital="0.5"
    )
    assert errors_of(client.post(f"{BOT_URL}add/", btc_quoted)) == ""
    assert Bot.objects.get(name="admin-made").account.cash == Decimal("0.5")
    zero = form_data(owner=user.pk, name="zero", exchange="binance", symbols='["ETH/BTC"]', timeframe="5m")
    assert "greater than 0" in errors_of(client.post(f"{BOT_URL}add/", {**zero, "starting_capital": "0"}))


@pytest.mark.parametrize(
    "symbols", ['{"a": 1}', '[["BTC/USD"]]', "[1]", "5", "true", '"BTC/USD"', "[" * 5000 + "]" * 5000]
)
def test_symbols_that_are_not_a_list_of_names_are_a_form_error(symbols):
    client, user = staff_client()
    response = client.post(f"{BOT_URL}add/", form_data(owner=user.pk, symbols=symbols))
    errors = json.loads(errors_of(response))
    assert list(errors) == ["symbols"], errors
    assert not Bot.objects.filter(name="admin-made").exists()


def test_a_missing_model_is_said_once():
    client, user = staff_client()
    errors = json.loads(errors_of(client.post(f"{BOT_URL}add/", form_data(owner=user.pk, model=""))))
    assert errors["model"] == ["This field is required."]


def test_the_admin_deletes_only_what_the_api_would():
    client, user = staff_client()
    user.user_permissions.add(Permission.objects.get(codename="delete_bot"))
    holding = BotFactory(owner=user, name="holding", start=True)
    run_cycle(bot_id=holding.pk, slot=SLOT)  # active, with an open position
    response = client.post(f"{BOT_URL}{holding.pk}/delete/", {"post": "yes"}, follow=True)
    # (The admin capitalises the first letter of its messages.)
    assert "Holding was not deleted: it has a trading history (1 cycle, 1 order, " in response.content.decode()
    assert Bot.objects.filter(pk=holding.pk).exists()
    assert Position.objects.filter(bot=holding, status="open").exists()
    running = BotFactory(owner=user, name="running", start=True)  # started, never ran
    response = client.post(f"{BOT_URL}{running.pk}/delete/", {"post": "yes"}, follow=True)
    assert "Running was not deleted: stop the bot before deleting it" in response.content.decode()
    # No bulk delete that would go around the check.
    assert "delete_selected" not in client.get(BOT_URL).content.decode()

    idle = BotFactory(owner=user, name="idle")
    client.post(f"{BOT_URL}{idle.pk}/delete/", {"post": "yes"})
    assert not Bot.objects.filter(pk=idle.pk).exists()
