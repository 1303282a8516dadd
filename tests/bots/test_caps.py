"""The operator's caps (bots.rules), on every surface: the API, the admin and the services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from bots.exceptions import BotConfigurationError
from bots.models import Bot
from bots.services import bot_create, bot_start, bot_stop, bot_update
from tests.api.conftest import bot_config
from tests.bots.test_admin import BOT_URL, errors_of, form_data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def caps(settings: Any) -> Any:
    settings.MAX_BOTS_PER_USER = 2
    settings.BOT_MIN_INTERVAL_SECONDS = 120
    settings.BOT_MAX_LEVERAGE = Decimal(5)
    settings.BOT_DEFAULT_LLM_DAILY_BUDGET = Decimal("2.5")
    settings.USER_LLM_DAILY_BUDGET = Decimal(10)
    return settings


def api_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def admin_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_bots_per_user_in_the_api(caps: Any) -> None:
    user = UserFactory()
    api = api_for(user)
    first = api.post("/api/bots/", bot_config(name="one"), format="json")
    assert first.status_code == 201
    assert api.post("/api/bots/", bot_config(name="two"), format="json").status_code == 201

    third = api.post("/api/bots/", bot_config(name="three"), format="json")

    assert third.status_code == 400
    assert third.json()["error"]["fields"]["non_field_errors"] == [
        "You have 2 bots that are not stopped, the most this platform allows per user (2): stop one to create another."
    ]
    # A stopped bot is history: it no longer counts.
    api.post(f"/api/bots/{first.json()['id']}/stop/")
    assert api.post("/api/bots/", bot_config(name="three"), format="json").status_code == 201
    # Editing a bot at the cap is not creating one.
    assert api.patch(f"/api/bots/{first.json()['id']}/", {"max_trades_per_day": 10}, format="json").status_code == 200


def test_bots_per_user_in_the_admin_and_the_service(caps: Any) -> None:
    user = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="bots"))
    for name in ("one", "two"):
        bot_create(owner=user, data={"name": name, "model": "hold", "symbols": ["BTC/USD"]})
    response = admin_for(user).post(f"{BOT_URL}add/", form_data(owner=user.pk, name="three"))
    assert "the most this platform allows per user (2)" in errors_of(response)
    with pytest.raises(BotConfigurationError, match="the most this platform allows per user"):
        bot_create(owner=user, data={"name": "three", "model": "hold", "symbols": ["BTC/USD"]})
    assert Bot.objects.filter(owner=user).count() == 2


def test_a_superuser_is_exempt_from_the_bots_per_user_cap(caps: Any) -> None:
    operator = UserFactory(is_superuser=True, is_staff=True)
    for name in ("one", "two", "three"):
        bot_create(owner=operator, data={"name": name, "model": "hold", "symbols": ["BTC/USD"]})
    assert api_for(operator).post("/api/bots/", bot_config(name="four"), format="json").status_code == 201


def test_minimum_interval_and_maximum_leverage_in_the_api(caps: Any) -> None:
    api = api_for(UserFactory())
    response = api.post("/api/bots/", bot_config(interval_seconds=60, max_leverage="8"), format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields["interval_seconds"] == [
        "Ensure this value is greater than or equal to 120 (this platform's minimum interval, in seconds)."
    ]
    assert fields["max_leverage"] == [
        "Ensure this value is less than or equal to 5 (this platform's maximum leverage)."
    ]
    created = api.post("/api/bots/", bot_config(interval_seconds=120, max_leverage="5"), format="json")
    assert created.status_code == 201
    changed = api.patch(f"/api/bots/{created.json()['id']}/", {"interval_seconds": 119}, format="json")
    assert changed.status_code == 400 and "interval_seconds" in changed.json()["error"]["fields"]


def test_minimum_interval_and_maximum_leverage_in_the_admin_and_the_service(caps: Any) -> None:
    user = UserFactory(is_superuser=True, is_staff=True)  # per-bot caps apply to superusers too
    errors = errors_of(
        admin_for(user).post(f"{BOT_URL}add/", form_data(owner=user.pk, interval_seconds=60, max_leverage="6"))
    )
    assert "this platform's minimum interval" in errors and "this platform's maximum leverage" in errors
    with pytest.raises(ValidationError) as caught:
        bot_create(owner=user, data={"name": "fast", "model": "hold", "symbols": ["BTC/USD"], "interval_seconds": 30})
    assert "interval_seconds" in caught.value.message_dict
    bot = bot_create(owner=user, data={"name": "ok", "model": "hold", "symbols": ["BTC/USD"]})
    with pytest.raises(ValidationError):
        bot_update(bot=bot, data={"max_leverage": Decimal(10)})


def test_a_bot_made_before_a_lower_cap_is_clamped_and_must_follow_it_to_start(caps: Any) -> None:
    bot = bot_create(owner=UserFactory(), data={"name": "old", "model": "hold", "symbols": ["BTC/USD"]})
    Bot.objects.filter(pk=bot.pk).update(max_leverage=Decimal(20), interval_seconds=30)  # set before the caps
    bot.refresh_from_db()

    assert bot.risk_limits().max_leverage == Decimal(5)  # what the risk manager enforces (and the model is told)
    with pytest.raises(
        BotConfigurationError, match=r"its interval \(30 s\) is below this platform's minimum \(120 s\)"
    ):
        bot_start(bot=bot)
    bot_update(bot=bot, data={"interval_seconds": 120, "name": "old but fine"})
    assert bot_start(bot=bot).status == Bot.Status.ACTIVE


def test_a_new_llm_bot_gets_the_default_daily_budget(caps: Any) -> None:
    caps.MAX_BOTS_PER_USER = 10
    api = api_for(UserFactory())
    llm = {"provider": "openai", "model": "gpt-5-mini"}
    made = api.post("/api/bots/", bot_config(name="llm", **llm), format="json")
    assert made.status_code == 201 and Decimal(made.json()["llm_daily_budget"]) == Decimal("2.5")
    own = api.post("/api/bots/", bot_config(name="own", llm_daily_budget="0.5", **llm), format="json")
    assert Decimal(own.json()["llm_daily_budget"]) == Decimal("0.5")
    none = api.post("/api/bots/", bot_config(name="none", llm_daily_budget=None, **llm), format="json")
    assert none.status_code == 201 and none.json()["llm_daily_budget"] is None  # said so explicitly
    baseline = bot_create(owner=UserFactory(), data={"name": "b", "model": "hold", "symbols": ["BTC/USD"]})
    assert baseline.llm_daily_budget is None
    # A baseline that becomes an LLM bot is a new LLM bot.
    assert bot_update(bot=baseline, data=llm).llm_daily_budget == Decimal("2.5")


def test_a_new_llm_bot_made_in_the_admin_gets_the_default_budget(caps: Any) -> None:
    user = UserFactory(is_superuser=True, is_staff=True)
    response = admin_for(user).post(
        f"{BOT_URL}add/", form_data(owner=user.pk, name="admin-llm", provider="openai", model="gpt-5-mini")
    )
    assert errors_of(response) == ""
    assert Bot.objects.get(name="admin-llm").llm_daily_budget == Decimal("2.5")


def test_stop_keeps_working_whatever_the_caps(caps: Any) -> None:
    bot = bot_create(owner=UserFactory(), data={"name": "b", "model": "hold", "symbols": ["BTC/USD"]})
    bot_start(bot=bot)
    caps.BOT_MIN_INTERVAL_SECONDS = 3600
    caps.MAX_BOTS_PER_USER = 1
    assert bot_stop(bot=bot).closed_positions == 0
