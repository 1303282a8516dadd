"""Alerts: the write side. Other apps raise alerts only through `alert_raise`."""

from __future__ import annotations

import logging
from datetime import datetime
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


# What other apps name alerts with (they reach alerts only through this module and realtime).
AlertKind = Alert.Kind
AlertSeverity = Alert.Severity


def alert_raised_since(*, bot_id: int, kind: str, since: datetime, payload_flag: str) -> bool:
    """Whether the bot already has an alert of `kind` since `since` whose payload sets `payload_flag`."""
    return Alert.objects.filter(
        bot_id=bot_id, kind=kind, created_at__gte=since, **{f"payload__{payload_flag}": True}
    ).exists()
