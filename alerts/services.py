"""Alerts: the write side. Other apps raise alerts only through `alert_raise`."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from alerts import realtime
from alerts.models import Alert

logger = logging.getLogger(__name__)


def alert_raise(
    *,
    owner_id: int,
    kind: str,
    message: str,
    severity: str = Alert.Severity.INFO,
    bot_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Alert:
    """Record an alert and push it to the owner's (and bot's) stream after commit."""
    with transaction.atomic():
        alert = Alert.objects.create(
            owner_id=owner_id,
            bot_id=bot_id,
            kind=kind,
            severity=severity,
            message=message[:500],
            payload=payload or {},
        )
        realtime.publish_alert(alert)
    logger.info("alert %s/%s for user %s: %s", kind, severity, owner_id, message)
    return alert
