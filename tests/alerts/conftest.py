from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts.models import Channel
from tests.alerts.servers import (
    SmtpServer,
    TelegramServer,
    WebhookReceiver,
    smtp_server,
    telegram_server,
    webhook_receiver,
)

SECRET = "whsec-0123456789abcdef"
TOKEN = "123456:TEST-token-abcdefghijklmnop"


@pytest.fixture
def smtp(settings) -> Iterator[SmtpServer]:  # type: ignore[no-untyped-def]
    with smtp_server() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        yield server


@pytest.fixture
def receiver(settings) -> Iterator[WebhookReceiver]:  # type: ignore[no-untyped-def]
    # The local receiver is on 127.0.0.1: the operator's switch for receivers on their own network.
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    with webhook_receiver(SECRET) as server:
        yield server


@pytest.fixture
def telegram(settings) -> Iterator[TelegramServer]:  # type: ignore[no-untyped-def]
    with telegram_server(TOKEN) as server:
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.TELEGRAM_API_BASE_URL = server.base_url
        yield server


def channel(owner, kind: str, **fields: object) -> Channel:  # type: ignore[no-untyped-def]
    return Channel.objects.create(owner=owner, kind=kind, name=fields.pop("name", f"{kind} channel"), **fields)
