"""Email through Django's email backend (SMTP settings from the environment, see the README)."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from alerts.channels import DeliveryError
from alerts.channels.messages import subject, text

if TYPE_CHECKING:
    from alerts.models import Alert, Channel


def _smtp_error(code: int, message: object) -> DeliveryError:
    said = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    # 5xx: the server refuses for good (no such mailbox, rejected); 4xx: try again later.
    return DeliveryError(f"SMTP {code}: {said}", transient=not 500 <= code < 600)


def send_email(*, channel: Channel, alert: Alert) -> None:
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
    message = EmailMessage(
        subject=subject(alert),
        body=text(alert),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[channel.email],
        connection=connection,
        headers={"X-Tradingagent-Alert": str(alert.pk), "Auto-Submitted": "auto-generated"},
    )
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        code, said = next(iter(exc.recipients.values()))
        raise _smtp_error(code, said) from None
    except smtplib.SMTPAuthenticationError as exc:
        # The server's own login (EMAIL_HOST_USER/PASSWORD), not the address: not the channel's fault.
        raise DeliveryError(
            f"the SMTP server refused this server's login ({exc.smtp_code}): check EMAIL_HOST_USER/EMAIL_HOST_PASSWORD",
            transient=True,
            blame_channel=False,
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise _smtp_error(exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"could not send through {settings.EMAIL_HOST}:{settings.EMAIL_PORT} ({type(exc).__name__}: {exc})",
            transient=True,
        ) from None


class UnconfiguredBackend:
    """The email backend of a production server without EMAIL_HOST: every send fails, saying why."""

    def __init__(self, fail_silently: bool = False, **kwargs: object) -> None:
        self.fail_silently = fail_silently

    def send_messages(self, messages: object) -> int:
        raise DeliveryError(
            "this server sends no email: set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, ...)",
            transient=False,
            blame_channel=False,
        )
