"""What an alert says on each channel: a subject and plain text (email, Telegram), JSON (webhooks)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alerts.models import Alert

SEVERITY_MARK = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


def subject(alert: Alert) -> str:
    first = alert.message.splitlines()[0] if alert.message else ""
    return f"[tradingagent] {alert.severity.upper()}: {first}"[:200]


def text(alert: Alert) -> str:
    """Plain text (no markup to escape): the message, then when and which bot."""
    lines = [f"{SEVERITY_MARK.get(alert.severity, '')} {alert.message}".strip(), ""]
    if alert.bot_id is not None and alert.bot is not None:
        lines.append(f"Bot: {alert.bot.name} (#{alert.bot_id})")
    lines.append(f"When: {alert.created_at:%Y-%m-%d %H:%M:%S} UTC")
    lines.append(f"Severity: {alert.severity} · event: {alert.event or alert.kind}")
    return "\n".join(lines)


def webhook_document(alert: Alert, *, delivery_id: str, attempt: int) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "attempt": attempt,
        "test": alert.event == "test",
        "alert": {
            "id": alert.pk,
            "event": alert.event or alert.kind,
            "kind": alert.kind,
            "severity": alert.severity,
            "message": alert.message,
            "bot": None if alert.bot_id is None or alert.bot is None else {"id": alert.bot_id, "name": alert.bot.name},
            "payload": alert.payload,
            "created_at": alert.created_at.isoformat(),
        },
    }


def webhook_body(alert: Alert, *, delivery_id: str, attempt: int) -> bytes:
    # Compact and key-sorted: the exact bytes are what the signature covers.
    return json.dumps(
        webhook_document(alert, delivery_id=delivery_id, attempt=attempt), sort_keys=True, separators=(",", ":")
    ).encode()
