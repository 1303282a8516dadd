"""Breakers need no decision maker, and a model that keeps failing trips the failure breaker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from alerts.models import Alert
from bots.cycle import run_cycle
from bots.models import Bot, Cycle
from tests.factories import SLOT, BotFactory, fund_bot

pytestmark = pytest.mark.django_db


def test_drawdown_breaker_trips_before_the_model_is_asked(down_llm):
    bot = BotFactory(provider=Bot.Provider.OPENAI_COMPATIBLE, model="local-model", start=True)
    fund_bot(bot, peak_equity=Decimal(30000))  # equity 10000: 66 % below its peak
    cycle = run_cycle(bot_id=bot.pk, slot=SLOT)
    bot.refresh_from_db()
    assert bot.status == Bot.Status.PAUSED and bot.status_reason.startswith("drawdown")
    assert cycle.kind == Cycle.Kind.PROTECT and "drawdown" in cycle.error
    assert down_llm.hits == 0  # not asked, not paid for
    assert Alert.objects.filter(bot=bot, kind="risk", severity="critical").exists()


def test_a_model_that_keeps_failing_pauses_the_bot(down_llm, settings):
    settings.BOT_MAX_CONSECUTIVE_FAILURES = 3
    settings.LLM_MAX_RETRIES = 0
    bot = BotFactory(provider=Bot.Provider.OPENAI_COMPATIBLE, model="local-model", start=True)
    for i in range(3):
        cycle = run_cycle(bot_id=bot.pk, slot=SLOT + timedelta(seconds=180 * i))
        assert cycle.status == Cycle.Status.COMPLETED and cycle.decision_error
    bot.refresh_from_db()
    assert bot.status == Bot.Status.PAUSED and bot.status_reason.startswith("failures")
    assert "decision:" in bot.status_reason
