"""Mail goes out through Django's SMTP backend to a real SMTP server (aiosmtpd on a local port)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from scripts.test_services import free_port

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "tradingagent <noreply@trading.example.com>"
    try:
        yield inbox
    finally:
        controller.stop()


def test_a_password_reset_mail_reaches_a_real_smtp_server(
    anon, user, smtp_server, eager_tasks, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://trading.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        response = anon.post("/api/auth/password/reset/", {"email": "alice@example.com"}, format="json")

    assert response.status_code == 202
    [(sender, recipients, message)] = smtp_server.messages
    assert sender == "noreply@trading.example.com" and recipients == ["alice@example.com"]
    assert message["Subject"] == "Reset your tradingagent password"
    body = message.get_content()
    assert "https://trading.example.com/password/reset/" in body and "token: " in body
