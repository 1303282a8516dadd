"""The per-bot daily LLM budget, read from the LLMCall rows of the current UTC day."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from bots.decisions import Action
from bots.llm.ratelimit import RateLimiter
from bots.models import LLMCall
from bots.providers import decision_maker_class
from tests.books import books_unguarded
from tests.factories import BotFactory
from tests.llm import protocols
from tests.llm.builders import PRICES, decision_json, make_context, make_snapshot
from tests.llm.conftest import point_at
from tests.llm.wire import WireServer

pytestmark = pytest.mark.django_db


def _maker(bot: Any, limiter: RateLimiter) -> Any:
    return decision_maker_class("openai")(
        model="gpt-5-mini", bot_id=bot.pk, llm_daily_budget=bot.llm_daily_budget, limiter=limiter
    )


def test_spent_budget_holds_without_a_request(wire: WireServer, llm_settings: Any, limiter: RateLimiter) -> None:
    point_at(llm_settings, protocols.OPENAI, wire)
    bot = BotFactory(provider="openai", model="gpt-5-mini", llm_daily_budget=Decimal("0.05"))
    LLMCall.objects.create(bot=bot, provider="openai", model="gpt-5-mini", cost=Decimal("0.03"))
    LLMCall.objects.create(bot=bot, provider="openai", model="gpt-5-mini", cost=Decimal("0.02"))

    outcome = _maker(bot, limiter).decide(make_context(make_snapshot(PRICES), bot_id=bot.pk))

    assert outcome.skipped_reason.startswith("llm_budget:") and "0.05 USD" in outcome.skipped_reason
    assert all(a.action == Action.HOLD for a in outcome.decision.actions)
    assert wire.requests == [] and outcome.calls == []


def test_yesterdays_spend_and_other_bots_do_not_count(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter
) -> None:
    point_at(llm_settings, protocols.OPENAI, wire)
    bot = BotFactory(provider="openai", model="gpt-5-mini", llm_daily_budget=Decimal("0.05"))
    other = BotFactory(provider="openai", model="gpt-5-mini")
    old = LLMCall.objects.create(bot=bot, provider="openai", model="gpt-5-mini", cost=Decimal("5"))
    with books_unguarded():  # a call made yesterday (created_at is set on insert)
        LLMCall.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1, hours=1))
    LLMCall.objects.create(bot=other, provider="openai", model="gpt-5-mini", cost=Decimal("5"))
    LLMCall.objects.create(bot=bot, provider="openai", model="gpt-5-mini", cost=Decimal("0.01"))
    wire.queue(protocols.OPENAI.ok(decision_json()))

    outcome = _maker(bot, limiter).decide(make_context(make_snapshot(PRICES), bot_id=bot.pk))

    assert outcome.skipped_reason == "" and outcome.error == "" and len(wire.requests) == 1
