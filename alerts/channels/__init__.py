"""Senders, one module per channel kind, behind one function: `send(channel=, alert=, attempt=)`.

Each raises DeliveryError saying whether a retry may help (`transient`) and whether the failure is
the channel's own (`blame_channel`: a refused address, a blocked bot), which is what counts
towards switching a channel off; the server's own configuration (no SMTP login, no bot token)
is not the channel's fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.models import Alert, Channel


class DeliveryError(Exception):
    def __init__(
        self, message: str, *, transient: bool, retry_after: float | None = None, blame_channel: bool = True
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.blame_channel = blame_channel


def send(*, channel: Channel, alert: Alert, attempt: int) -> None:
    """Deliver one alert to one channel, or raise DeliveryError."""
    from alerts.models import Channel

    if channel.kind == Channel.Kind.EMAIL:
        from alerts.channels.email import send_email

        send_email(channel=channel, alert=alert)
    elif channel.kind == Channel.Kind.WEBHOOK:
        from alerts.channels.webhook import send_webhook

        send_webhook(channel=channel, alert=alert, attempt=attempt)
    elif channel.kind == Channel.Kind.TELEGRAM:
        from alerts.channels.telegram import send_telegram

        send_telegram(channel=channel, alert=alert)
    else:
        raise DeliveryError(f"nothing to send for a {channel.kind} channel", transient=False, blame_channel=False)
