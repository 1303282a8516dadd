"""alert_raise: the owner's rules decide whether an event becomes an alert, how loud, where it goes."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction

from alerts.models import Alert, AlertRule, Channel, Delivery
from alerts.services import AlertKind, Event, Severity, alert_notice, alert_raise
from tests.alerts.conftest import SECRET, channel
from tests.factories import BotFactory, UserFactory

pytestmark = pytest.mark.django_db


def breaker(bot, **extra: object) -> Alert | None:  # type: ignore[no-untyped-def]
    return alert_raise(
        owner_id=bot.owner_id,
        bot_id=bot.pk,
        kind=AlertKind.RISK,
        severity=Severity.CRITICAL,
        event=Event.BREAKER_TRIPPED,
        message=f"{bot.name} paused by the drawdown breaker",
        payload={"breaker": "drawdown"},
        **extra,
    )


def alerts_queue() -> int:
    return int(redis.Redis.from_url(django_settings.CELERY_BROKER_URL).llen("alerts"))


def test_a_new_account_gets_the_dashboard_channel_and_the_default_rules(user) -> None:  # type: ignore[no-untyped-def]
    [in_app] = Channel.objects.filter(owner=user)
    assert in_app.kind == "in_app" and in_app.verified_at is not None
    kinds = set(AlertRule.objects.filter(owner=user).values_list("kind", flat=True))
    assert kinds == {"breaker_tripped", "bot_stopped", "position_closed", "drawdown", "volatility", "failure_rate",
                     "unusual_activity"}  # fmt: skip
    drawdown = AlertRule.objects.get(owner=user, kind="drawdown")
    assert drawdown.threshold == 10 and list(drawdown.channels.all()) == [in_app]


def test_a_breaker_becomes_one_in_app_alert_heard_by_two_rules(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    alert = breaker(bot)
    assert alert is not None and alert.in_app and alert.event == "breaker_tripped"
    # "breaker tripped" and "bot stopped or paused" both hear it: one alert, one in-app delivery.
    assert set(alert.rules.values_list("kind", flat=True)) == {"breaker_tripped", "bot_stopped"}
    assert list(Delivery.objects.filter(alert=alert).values_list("channel__kind", "status")) == [("in_app", "sent")]


def test_external_channels_are_enqueued_after_commit_only(user, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    hook = channel(user, "webhook", url="https://hooks.example.com/x", secret=SECRET)
    AlertRule.objects.get(owner=user, kind="breaker_tripped").channels.add(hook)
    before = alerts_queue()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        breaker(bot)
    assert alerts_queue() == before, "nothing is sent before the commit"
    for callback in callbacks:
        callback()
    assert alerts_queue() == before + 1  # one task: the webhook (in-app needs none)


def test_a_rolled_back_event_is_never_told(user, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                breaker(bot)
                raise RuntimeError("the cycle failed after the breaker")
        except RuntimeError:
            pass
    assert callbacks == [] and not Alert.objects.filter(owner=user).exists()


def test_cooldown_is_per_rule_and_bot(user) -> None:  # type: ignore[no-untyped-def]
    AlertRule.objects.filter(owner=user).update(cooldown_seconds=3600)
    first, second = BotFactory(owner=user), BotFactory(owner=user)
    assert breaker(first) is not None
    assert breaker(first) is None, "the same rule, the same bot, inside the cooldown"
    assert breaker(second) is not None, "another bot is another subject"


def test_a_fact_is_told_once(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    kwargs = {"owner_id": user.pk, "bot_id": bot.pk, "kind": "trade", "message": "BTC/USD closed by stop-loss",
              "event": Event.POSITION_CLOSED, "dedupe_key": "position:1"}  # fmt: skip
    assert alert_raise(**kwargs) is not None
    assert alert_raise(**kwargs) is None
    assert Alert.objects.filter(owner=user, dedupe_key="position:1").count() == 1


def test_disabled_rules_and_rules_of_other_bots_stay_quiet(user) -> None:  # type: ignore[no-untyped-def]
    bot, other = BotFactory(owner=user), BotFactory(owner=user)
    AlertRule.objects.filter(owner=user, kind="breaker_tripped").update(enabled=False)
    AlertRule.objects.filter(owner=user, kind="bot_stopped").update(bot=other)
    assert breaker(bot) is None
    assert breaker(other) is not None


def test_the_loudest_severity_wins_and_a_rule_may_raise_it(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    AlertRule.objects.filter(owner=user, kind="bot_stopped").update(severity="critical")
    paused = alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="system", message="paused", event=Event.BOT_PAUSED)
    assert paused is not None and paused.severity == "critical"


def test_size_filter_of_a_trade_rule(user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    AlertRule.objects.create(owner=user, kind="trade_filled", threshold=Decimal(1000), cooldown_seconds=0)
    small = alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="small", event=Event.TRADE_FILLED,
                        notional=Decimal(50))  # fmt: skip
    big = alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="big", event=Event.TRADE_FILLED,
                      notional=Decimal(5000))  # fmt: skip
    assert small is None and big is not None
    assert not big.in_app, "the rule has no channel: recorded (with its deliveries), not in the feed"


def test_notices_reach_the_feed_whatever_the_rules(user) -> None:  # type: ignore[no-untyped-def]
    AlertRule.objects.filter(owner=user).delete()
    notice = alert_notice(owner_id=user.pk, message="Alert channel 'x' was disabled")
    assert notice is not None and notice.in_app and notice.severity == "warning"


def test_another_users_channel_on_my_rule_gets_nothing(user, other_user) -> None:  # type: ignore[no-untyped-def]
    bot = BotFactory(owner=user)
    foreign = channel(other_user, "email", email="bob@example.com")
    # Only possible by writing the table directly (the API and forms refuse it); still nothing leaks.
    AlertRule.objects.get(owner=user, kind="breaker_tripped").channels.add(foreign)
    alert = breaker(bot)
    assert alert is not None and not Delivery.objects.filter(channel=foreign).exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_raising_the_same_event_at_once_alert_once() -> None:
    owner = UserFactory()
    AlertRule.objects.filter(owner=owner).update(cooldown_seconds=600)
    bot = BotFactory(owner=owner)
    barrier = threading.Barrier(4)
    results: list[Alert | None] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(breaker(bot))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for r in results if r is not None) == 1
    assert Alert.objects.filter(owner=owner).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_publishes_its_alerts_live_at_its_end() -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from alerts import realtime

    owner = UserFactory()
    layer = get_channel_layer()
    channel_name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(realtime.user_group(owner.pk), channel_name)
    with realtime.batched():
        for n in range(3):
            alert_notice(owner_id=owner.pk, message=f"notice {n}")
        assert Alert.objects.filter(owner=owner).count() == 3, "each alert is committed at once"

    async def receive_all() -> list[str]:
        return [(await layer.receive(channel_name))["payload"]["data"]["message"] for _ in range(3)]

    assert async_to_sync(receive_all)() == ["notice 0", "notice 1", "notice 2"]
