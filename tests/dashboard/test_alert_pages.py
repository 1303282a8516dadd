"""The dashboard's alerts page: channels with their test button, rules, Telegram linking, deliveries."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from alerts.models import Alert, AlertRule, Channel
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, user):  # type: ignore[no-untyped-def]
    client.force_login(user)
    cache.delete_many([f"alerts:test:{pk}" for pk in Channel.objects.values_list("pk", flat=True)])
    return client


def test_the_page_lists_channels_rules_and_deliveries(alice, user) -> None:  # type: ignore[no-untyped-def]
    page = alice.get("/alerts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Dashboard" in html and "Drawdown" in html and "Nothing sent yet." in html
    assert 'aria-current="page">Alerts' in html


def test_adding_a_channel_with_field_errors_then_right(alice, user) -> None:  # type: ignore[no-untyped-def]
    bad = alice.post("/alerts/", {"form": "channel", "channel-kind": "webhook", "channel-name": "ops",
                                  "channel-url": "http://10.0.0.1/hook", "channel-secret": "short"})  # fmt: skip
    html = bad.content.decode()
    assert (
        bad.status_code == 200 and "refused: 10.0.0.1 is a private address" in html and "at least 16 characters" in html
    )
    good = alice.post("/alerts/", {"form": "channel", "channel-kind": "email", "channel-name": "inbox",
                                   "channel-email": "alice@example.com"})  # fmt: skip
    assert good.status_code == 302
    assert Channel.objects.get(owner=user, name="inbox").email == "alice@example.com"


def test_the_test_button(alice, user) -> None:  # type: ignore[no-untyped-def]
    in_app = Channel.objects.get(owner=user, kind="in_app")
    answer = alice.post(f"/alerts/channels/{in_app.pk}/test/")
    alert = Alert.objects.get(owner=user, event="test")
    assert answer.status_code == 302 and answer["Location"] == f"/alerts/?tested={alert.pk}#deliveries"
    page = alice.get(answer["Location"]).content.decode()
    assert f'data-alert-id="{alert.pk}"' in page and "Test message from tradingagent" in page
    assert alice.post(f"/alerts/channels/{in_app.pk}/test/").status_code == 302  # throttled, said on the page
    assert Alert.objects.filter(owner=user, event="test").count() == 1


def test_rules_add_edit_disable_delete(alice, user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user, name="swing")
    in_app = Channel.objects.get(owner=user, kind="in_app")
    bad = alice.post("/alerts/", {"form": "rule", "rule-kind": "volatility", "rule-threshold": "5", "rule-severity": "warning",
                                  "rule-cooldown_seconds": "3600", "rule-enabled": "on"})  # fmt: skip
    assert "required for this kind" in bad.content.decode()
    good = alice.post("/alerts/", {"form": "rule", "rule-kind": "daily_loss", "rule-threshold": "3", "rule-bot": bot.pk,
                                   "rule-severity": "critical", "rule-cooldown_seconds": "600", "rule-channels": [in_app.pk],
                                   "rule-enabled": "on"})  # fmt: skip
    assert good.status_code == 302
    rule = AlertRule.objects.get(owner=user, kind="daily_loss")
    assert rule.bot == bot and list(rule.channels.all()) == [in_app]
    edit = alice.post(f"/alerts/rules/{rule.pk}/", {"rule-kind": "daily_loss", "rule-threshold": "4", "rule-severity": "warning",
                                                  "rule-cooldown_seconds": "60", "rule-enabled": "on"})  # fmt: skip
    assert edit.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 4 and rule.severity == "warning" and list(rule.channels.all()) == []
    assert alice.post(f"/alerts/rules/{rule.pk}/disable/").status_code == 302
    rule.refresh_from_db()
    assert not rule.enabled
    assert alice.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_another_users_rules_and_channels_are_404(alice, other_user) -> None:  # type: ignore[no-untyped-def]
    theirs = Channel.objects.get(owner=other_user, kind="in_app")
    rule = AlertRule.objects.filter(owner=other_user).first()
    assert rule is not None
    assert alice.post(f"/alerts/channels/{theirs.pk}/test/").status_code == 404
    assert alice.post(f"/alerts/channels/{theirs.pk}/disable/").status_code == 404
    assert alice.get(f"/alerts/rules/{rule.pk}/").status_code == 404
    assert alice.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 404
    assert AlertRule.objects.filter(pk=rule.pk).exists()
    # A rule's form offers only my bots and channels.
    form = alice.get("/alerts/").content.decode()
    assert f'value="{theirs.pk}"' not in form


def test_linking_telegram_shows_the_code_once(alice, user) -> None:  # type: ignore[no-untyped-def]
    shown = alice.post("/alerts/telegram-link/", follow=True).content.decode()
    assert "/start " in shown and "it works once" in shown
    again = alice.get("/alerts/").content.decode()
    assert "/start " not in again.split('id="telegram"')[1].split("</section>")[0]
