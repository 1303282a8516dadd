"""Alert rules, channels and deliveries in the API: owner-scoped, 400 with field errors."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from alerts.models import Alert, AlertRule, Channel, Delivery
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_test_throttle():  # type: ignore[no-untyped-def]
    cache.delete_many([f"alerts:test:{pk}" for pk in Channel.objects.values_list("pk", flat=True)])


def errors(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def test_rules_crud(api, user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    mail = Channel.objects.create(owner=user, kind="email", name="me", email="alice@example.com")
    created = api.post(
        "/api/alert-rules/",
        {
            "kind": "drawdown",
            "threshold": "15",
            "bot": bot.pk,
            "severity": "critical",
            "channels": [mail.pk],
            "cooldown_seconds": 600,
        },  # fmt: skip
        format="json",
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["unit"] == "%" and rule["channels"] == [mail.pk] and rule["bot"] == bot.pk
    listed = api.get("/api/alert-rules/?kind=drawdown").json()["results"]
    assert [r["threshold"] for r in listed] == ["10.000000", "15.000000"]  # the default and mine
    patched = api.patch(f"/api/alert-rules/{rule['id']}/", {"threshold": "25", "enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["threshold"] == "25.000000" and not patched.json()["enabled"]
    assert api.delete(f"/api/alert-rules/{rule['id']}/").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "drawdown"}, "threshold"),
        ({"kind": "volatility", "threshold": "5"}, "window_minutes"),
        ({"kind": "drawdown", "threshold": "150"}, "threshold"),
        ({"kind": "breaker_tripped", "threshold": "1"}, "threshold"),
        ({"kind": "drawdown", "threshold": "5", "symbol": "BTC/USD"}, "symbol"),
        ({"kind": "telepathy"}, "kind"),
        ({"kind": "drawdown", "threshold": "abc"}, "threshold"),
        ({"kind": "drawdown", "threshold": "5", "cooldown_seconds": -1}, "cooldown_seconds"),
        ({"kind": "unusual_activity", "threshold": "3", "window_minutes": 999999}, "window_minutes"),
    ],
)
def test_bad_rules_are_400_with_the_field_named(api, body, field) -> None:  # type: ignore[no-untyped-def]
    assert field in errors(api.post("/api/alert-rules/", body, format="json"))


def test_a_patch_is_checked_against_the_whole_rule(api, user) -> None:  # type: ignore[no-untyped-def]
    rule = AlertRule.objects.get(owner=user, kind="volatility")
    assert "window_minutes" in errors(
        api.patch(f"/api/alert-rules/{rule.pk}/", {"window_minutes": None}, format="json")
    )


def test_another_users_bot_channel_rule_and_channel_are_not_there(api, other_api, user, other_user) -> None:  # type: ignore[no-untyped-def]
    their_bot = BotFactory(owner=other_user)
    their_channel = Channel.objects.create(owner=other_user, kind="email", name="bob", email="bob@example.com")
    their_rule = AlertRule.objects.filter(owner=other_user).first()
    assert their_rule is not None
    assert "bot" in errors(api.post("/api/alert-rules/", {"kind": "bot_stopped", "bot": their_bot.pk}, format="json"))
    assert "channels" in errors(
        api.post("/api/alert-rules/", {"kind": "bot_stopped", "channels": [their_channel.pk]}, format="json")
    )
    for url in (f"/api/alert-rules/{their_rule.pk}/", f"/api/alert-channels/{their_channel.pk}/"):
        assert api.get(url).status_code == 404
        assert api.patch(url, {"name": "mine now"}, format="json").status_code == 404
        assert api.delete(url).status_code == 404
    assert api.post(f"/api/alert-channels/{their_channel.pk}/test/").status_code == 404
    their_channel.refresh_from_db()
    assert their_channel.name == "bob" and AlertRule.objects.filter(pk=their_rule.pk).exists()
    # Lists show only mine.
    assert {c["name"] for c in api.get("/api/alert-channels/").json()["results"]} == {"Dashboard"}


def test_channels(api, user, settings) -> None:  # type: ignore[no-untyped-def]
    mail = api.post(
        "/api/alert-channels/", {"kind": "email", "name": "inbox", "email": "alice@example.com"}, format="json"
    )
    assert mail.status_code == 201 and mail.json()["target"] == "alice@example.com"
    hook = api.post(
        "/api/alert-channels/",
        {"kind": "webhook", "name": "ops", "url": "https://hooks.example.com/ta", "secret": SECRET},
        format="json",
    )
    assert hook.status_code == 201
    assert "secret" not in hook.json() and hook.json()["has_secret"] is True
    assert Channel.objects.get(pk=hook.json()["id"]).secret == SECRET
    # Write-only: a PATCH without it keeps it; kind cannot change.
    patched = api.patch(f"/api/alert-channels/{hook.json()['id']}/", {"name": "ops-2", "kind": "email"}, format="json")
    assert patched.status_code == 200 and patched.json()["kind"] == "webhook"
    assert Channel.objects.get(pk=hook.json()["id"]).secret == SECRET


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "name": "a", "url": "http://169.254.169.254/latest/", "secret": SECRET}, "url"),
        ({"kind": "webhook", "name": "a", "url": "http://10.0.0.1/", "secret": SECRET}, "url"),
        ({"kind": "webhook", "name": "a", "url": "https://user:pw@example.com/", "secret": SECRET}, "url"),
        ({"kind": "webhook", "name": "a", "url": "https://example.com/", "secret": "short"}, "secret"),
        ({"kind": "webhook", "name": "a", "url": "gopher://example.com/", "secret": SECRET}, "url"),
        ({"kind": "email", "name": "a", "email": "not-an-address"}, "email"),
        ({"kind": "email", "name": "a"}, "email"),
        ({"kind": "email", "name": "a", "email": "a@example.com", "url": "https://x.example/"}, "url"),
        ({"kind": "telegram", "name": "a"}, "kind"),
        ({"kind": "in_app", "name": "a"}, "kind"),
        ({"kind": "email", "name": "Dashboard", "email": "a@example.com"}, "name"),
    ],
)
def test_bad_channels_are_400_with_the_field_named(api, body, field) -> None:  # type: ignore[no-untyped-def]
    assert field in errors(api.post("/api/alert-channels/", body, format="json"))


def test_the_in_app_channel_stays(api, user) -> None:  # type: ignore[no-untyped-def]
    in_app = Channel.objects.get(owner=user, kind="in_app")
    assert api.delete(f"/api/alert-channels/{in_app.pk}/").status_code == 400
    assert Channel.objects.filter(pk=in_app.pk).exists()


def test_test_button_queues_a_message_and_is_throttled(api, user) -> None:  # type: ignore[no-untyped-def]
    mail = Channel.objects.create(owner=user, kind="email", name="inbox", email="alice@example.com")
    first = api.post(f"/api/alert-channels/{mail.pk}/test/")
    assert first.status_code == 202
    alert = Alert.objects.get(pk=first.json()["alert"])
    assert alert.event == "test" and not alert.in_app
    assert api.post(f"/api/alert-channels/{mail.pk}/test/").status_code == 429
    in_app = Channel.objects.get(owner=user, kind="in_app")
    assert api.post(f"/api/alert-channels/{in_app.pk}/test/").status_code == 202
    assert Delivery.objects.get(channel=in_app).status == "sent"


def test_telegram_link_code(api, user) -> None:  # type: ignore[no-untyped-def]
    answer = api.post("/api/alert-channels/telegram-link/")
    assert answer.status_code == 201
    body = answer.json()
    assert len(body["code"]) == 12 and body["expires_at"]


def test_deliveries_are_mine_only(api, other_api, user) -> None:  # type: ignore[no-untyped-def]
    in_app = Channel.objects.get(owner=user, kind="in_app")
    alert = Alert.objects.create(owner=user, kind="system", message="hello", event="test")
    Delivery.objects.create(alert=alert, channel=in_app, status="sent", latency_ms=0)
    mine = api.get(f"/api/alert-deliveries/?alert={alert.pk}").json()["results"]
    assert [(d["channel_kind"], d["status"], d["alert_message"]) for d in mine] == [("in_app", "sent", "hello")]
    assert other_api.get("/api/alert-deliveries/").json()["results"] == []
    assert other_api.get(f"/api/alert-deliveries/{mine[0]['id']}/").status_code == 404
