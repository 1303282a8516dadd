"""Delivery to each channel against a local server speaking its protocol: what arrives, what is
recorded per attempt, what is retried, and when a channel is switched off."""

from __future__ import annotations

import json

import pytest

from alerts.models import Alert, Channel, Delivery
from alerts.services import delivery_attempt
from bots.models import Bot
from tests.alerts.conftest import SECRET, channel
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db


def make_alert(owner, **fields: object) -> Alert:  # type: ignore[no-untyped-def]
    bot = fields.pop("bot", None) or Bot.objects.filter(owner=owner, name="trend-follower").first()
    bot = bot or BotFactory(owner=owner, name="trend-follower")
    return Alert.objects.create(
        owner=owner,
        bot=bot,
        kind="risk",
        severity="critical",
        event="breaker_tripped",
        message=fields.pop("message", "trend-follower paused by the drawdown breaker: drawdown 21 % over 20 %"),
        payload={"breaker": "drawdown"},
        **fields,
    )


# --- Email -----------------------------------------------------------------------------------------


def test_email_reaches_the_smtp_server(user, smtp) -> None:  # type: ignore[no-untyped-def]
    mail = channel(user, "email", email="alice@example.com")
    alert = make_alert(user)
    result = delivery_attempt(alert_id=alert.pk, channel_id=mail.pk, attempt=1)
    assert result.status == "sent"
    [received] = smtp.wait_for(1)
    assert received.rcpt_tos == ["alice@example.com"]
    # Long subjects are folded over lines on the wire.
    assert " ".join(received.message["Subject"].split()) == f"[tradingagent] CRITICAL: {alert.message}"
    body = received.message.get_payload(decode=True).decode()
    assert alert.message in body and "Bot: trend-follower" in body
    delivery = Delivery.objects.get(alert=alert, channel=mail)
    assert delivery.status == "sent" and delivery.attempt == 1 and delivery.latency_ms is not None
    mail.refresh_from_db()
    assert mail.verified_at is not None


def test_a_refused_mailbox_is_permanent_and_three_in_a_row_disable_the_channel(user, smtp, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_CHANNEL_DISABLE_AFTER = 3
    smtp.refuse.add("gone@example.com")
    mail = channel(user, "email", email="gone@example.com", name="old address")
    for n in range(3):
        result = delivery_attempt(alert_id=make_alert(user, message=f"alert {n}").pk, channel_id=mail.pk, attempt=1)
        assert result.status == "failed" and result.retry_in is None
    mail.refresh_from_db()
    assert not mail.enabled and "3 failed deliveries" in mail.disabled_reason and "550" in mail.disabled_reason
    notice = Alert.objects.get(owner=user, event="notice")
    assert notice.in_app and notice.severity == "critical" and "'old address' was disabled" in notice.message
    assert Delivery.objects.filter(channel=mail, permanent=True).count() == 3
    # A disabled channel gets nothing more (and the notice itself went only in-app).
    later = delivery_attempt(alert_id=make_alert(user, message="later").pk, channel_id=mail.pk, attempt=1)
    assert later.status == "failed" and len(smtp.mails) == 0


def test_an_unreachable_smtp_server_is_retried(user, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.realtime.servers import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    mail = channel(user, "email", email="alice@example.com")
    result = delivery_attempt(alert_id=make_alert(user).pk, channel_id=mail.pk, attempt=1)
    assert result.status == "retrying" and result.retry_in is not None and 10 <= result.retry_in <= 20
    mail.refresh_from_db()
    assert mail.enabled and mail.consecutive_failures == 0  # not the address's fault


# --- Webhook ---------------------------------------------------------------------------------------


def test_webhook_is_signed_and_the_receiver_verifies_it(user, receiver) -> None:  # type: ignore[no-untyped-def]
    hook = channel(user, "webhook", url=receiver.url, secret=SECRET)
    alert = make_alert(user)
    assert delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=1).status == "sent"
    [request] = receiver.wait_for(1)
    assert request.signature_ok
    assert request.headers["X-Tradingagent-Event"] == "breaker_tripped"
    assert request.headers["X-Tradingagent-Delivery"] == f"{alert.pk}-{hook.pk}"
    assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"
    document = request.json()
    assert document["alert"]["message"] == alert.message
    assert document["alert"]["bot"] == {"id": alert.bot_id, "name": "trend-follower"}
    assert document["alert"]["payload"] == {"breaker": "drawdown"} and document["test"] is False


def test_a_forged_signature_is_what_the_receiver_refuses(user, receiver) -> None:  # type: ignore[no-untyped-def]
    # The channel signs with another key than the receiver expects: the receiver answers 401.
    hook = channel(user, "webhook", url=receiver.url, secret="not-the-receivers-secret")
    result = delivery_attempt(alert_id=make_alert(user).pk, channel_id=hook.pk, attempt=1)
    assert not receiver.requests[0].signature_ok
    assert result.status == "failed" and "HTTP 401" in result.error


def test_webhook_5xx_is_retried_with_backoff_and_the_same_delivery_id(user, receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.statuses = [503, 200]
    hook = channel(user, "webhook", url=receiver.url, secret=SECRET)
    alert = make_alert(user)
    first = delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=1)
    assert first.status == "retrying" and first.retry_in is not None and 12 <= first.retry_in <= 18
    second = delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=2)
    assert second.status == "sent"
    ids = {r.headers["X-Tradingagent-Delivery"] for r in receiver.requests}
    assert ids == {f"{alert.pk}-{hook.pk}"}
    assert [r.json()["attempt"] for r in receiver.requests] == [1, 2]
    rows = list(
        Delivery.objects.filter(alert=alert, channel=hook).order_by("attempt").values_list("attempt", "status", "error")
    )
    assert rows[0][:2] == (1, "retrying") and "HTTP 503" in rows[0][2]
    assert rows[1][:2] == (2, "sent")


def test_retry_after_is_honoured(user, receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.statuses = [429]
    receiver.extra_headers = {"Retry-After": "120"}
    hook = channel(user, "webhook", url=receiver.url, secret=SECRET)
    assert delivery_attempt(alert_id=make_alert(user).pk, channel_id=hook.pk, attempt=1).retry_in == 120


def test_retries_end(user, receiver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 2
    receiver.statuses = [500]
    hook = channel(user, "webhook", url=receiver.url, secret=SECRET)
    alert = make_alert(user)
    assert delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=1).status == "retrying"
    last = delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=2)
    assert last.status == "failed" and last.retry_in is None and "gave up after 2 attempts" in last.error


def test_a_redelivered_task_sends_nothing_twice(user, receiver) -> None:  # type: ignore[no-untyped-def]
    hook = channel(user, "webhook", url=receiver.url, secret=SECRET)
    alert = make_alert(user)
    delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=1)
    again = delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=1)
    later = delivery_attempt(alert_id=alert.pk, channel_id=hook.pk, attempt=2)
    assert again.status == "sent" and later.status == "sent"
    assert len(receiver.requests) == 1
    assert Delivery.objects.filter(alert=alert).count() == 1


def test_the_refused_address_is_a_permanent_failure(user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    hook = Channel.objects.create(owner=user, kind="webhook", name="local", url="http://localhost:9/x", secret=SECRET)
    result = delivery_attempt(alert_id=make_alert(user).pk, channel_id=hook.pk, attempt=1)
    assert result.status == "failed" and "refused: localhost is a local name" in result.error
    assert Delivery.objects.get(channel=hook).permanent


# --- Telegram --------------------------------------------------------------------------------------


def test_telegram_message_reaches_the_chat(user, telegram) -> None:  # type: ignore[no-untyped-def]
    chat = channel(user, "telegram", telegram_chat_id=4242, telegram_user_id=11)
    alert = make_alert(user)
    assert delivery_attempt(alert_id=alert.pk, channel_id=chat.pk, attempt=1).status == "sent"
    [message] = telegram.messages_to(4242)
    assert message.method == "sendMessage" and alert.message in message.params["text"]
    assert "🚨" in message.params["text"]


def test_telegram_blocked_is_permanent_and_flood_control_is_retried_when_asked(user, telegram) -> None:  # type: ignore[no-untyped-def]
    blocked = channel(user, "telegram", telegram_chat_id=5001, telegram_user_id=11, name="blocked")
    telegram.blocked_chats.add(5001)
    result = delivery_attempt(alert_id=make_alert(user).pk, channel_id=blocked.pk, attempt=1)
    assert result.status == "failed" and "blocked by the user" in result.error
    busy = channel(user, "telegram", telegram_chat_id=5002, telegram_user_id=11, name="busy")
    telegram.flood_once.add(5002)
    result = delivery_attempt(alert_id=make_alert(user).pk, channel_id=busy.pk, attempt=1)
    assert result.status == "retrying" and result.retry_in == 2


def test_no_token_in_what_is_recorded(user, telegram, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TELEGRAM_API_BASE_URL = "http://127.0.0.1:9/bot"  # nothing listens: a connection error
    chat = channel(user, "telegram", telegram_chat_id=4242, telegram_user_id=11)
    result = delivery_attempt(alert_id=make_alert(user).pk, channel_id=chat.pk, attempt=1)
    assert result.status == "retrying"
    assert settings.TELEGRAM_BOT_TOKEN not in json.dumps(list(Delivery.objects.values("error")))
