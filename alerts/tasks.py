"""Celery tasks of the alerts app, on their own `alerts` queue (a worker of its own in `make run`
and compose), so a slow channel never takes a thread a trading cycle could use.

Time limits are enforced by the prefork pool only; every send carries its own timeout
(ALERT_WEBHOOK_TIMEOUT_SECONDS, EMAIL_TIMEOUT, ALERT_TELEGRAM_TIMEOUT_SECONDS) in any pool.
"""

from __future__ import annotations

import logging

from celery import shared_task

from alerts import services

logger = logging.getLogger(__name__)


@shared_task(name="alerts.tasks.alert_deliver", ignore_result=True, acks_late=True, soft_time_limit=60, time_limit=90)
def alert_deliver(alert_id: int, channel_id: int, attempt: int = 1) -> str:
    """Attempt one delivery of an alert to a channel; schedule the next attempt if it may help."""
    result = services.delivery_attempt(alert_id=alert_id, channel_id=channel_id, attempt=attempt)
    if result.retry_in is not None:
        services.delivery_schedule(
            alert_id=alert_id, channel_id=channel_id, attempt=attempt + 1, countdown=result.retry_in
        )
    return result.status


@shared_task(name="alerts.tasks.alerts_evaluate", ignore_result=True, soft_time_limit=120, time_limit=150)
def alerts_evaluate() -> dict[str, int]:
    """Evaluate every alert rule against the books (run by beat every ALERT_EVALUATE_SECONDS)."""
    from alerts.evaluation import evaluate

    return evaluate()
