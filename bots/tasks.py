"""Celery tasks of the bots app: thin wrappers around services (see bots.services, bots.cycle).

Time limits: Celery enforces `soft_time_limit`/`time_limit` in the prefork pool; in the threads
pool the cycle queue uses they are not enforced, so each outside call carries its own timeout
(LLM_MAX_WAIT_SECONDS for the model, ccxt's timeout for exchanges) and the bot's lease expires
after CYCLE_TIME_LIMIT + 30 s in any case.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from bots.cycle import run_cycle
from bots.services import bots_dispatch_due

logger = logging.getLogger(__name__)


def _enqueue_cycle(bot_id: int, slot: datetime, interval_seconds: int) -> None:
    # Expires with the slot: a cycle still queued when the next slot is due is pointless.
    run_trading_cycle.apply_async(args=(bot_id, slot.isoformat()), expires=interval_seconds)


@shared_task(name="bots.tasks.dispatch_due_bots", ignore_result=True)
def dispatch_due_bots() -> int:
    """Claim and enqueue the cycles of every due bot (run by beat every DISPATCHER_TICK_SECONDS)."""
    return len(bots_dispatch_due(now=timezone.now(), enqueue=_enqueue_cycle))


@shared_task(
    name="bots.tasks.run_trading_cycle",
    ignore_result=True,
    acks_late=True,
    soft_time_limit=settings.CYCLE_SOFT_TIME_LIMIT,
    time_limit=settings.CYCLE_TIME_LIMIT,
)
def run_trading_cycle(bot_id: int, slot: str) -> str:
    """Run one bot's cycle for one slot; duplicates and retries are harmless (keyed by slot)."""
    return run_cycle(bot_id=bot_id, slot=datetime.fromisoformat(slot)).status
