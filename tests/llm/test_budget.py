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
from bots.providers import decision_maker_class, get_decision_maker
from bots.rules import user_llm_daily_budget
from tests.books import books_unguarded
from tests.factories import BotFactory, UserFactory
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


# --- The operator's daily budget per user (USER_LLM_DAILY_BUDGET, bots.rules) -----------------------


def _user_maker(bot: Any, limiter: RateLimiter) -> Any:
    return decision_maker_class("openai")(
        model="gpt-5-mini",
        bot_id=bot.pk,
        llm_daily_budget=bot.llm_daily_budget,
        owner_id=bot.owner_id,
        user_daily_budget=user_llm_daily_budget(owner=bot.owner),
        limiter=limiter,
    )


def test_a_users_bots_share_the_operators_daily_budget(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter, redis_client: Any
) -> None:
    llm_settings.USER_LLM_DAILY_BUDGET = Decimal(10)
    point_at(llm_settings, protocols.OPENAI, wire)
    owner = UserFactory()
    first, second, third = (BotFactory(owner=owner, provider="openai", model="gpt-5-mini") for _ in range(3))
    stranger = BotFactory(provider="openai", model="gpt-5-mini")
    LLMCall.objects.create(bot=first, provider="openai", model="gpt-5-mini", cost=Decimal(6))
    LLMCall.objects.create(bot=stranger, provider="openai", model="gpt-5-mini", cost=Decimal(50))
    wire.queue(protocols.OPENAI.ok(decision_json()))

    # Under the budget: the request is made (and counted in the owner's share of the rate limit).
    below = _user_maker(second, limiter).decide(make_context(make_snapshot(PRICES), bot_id=second.pk))
    assert below.skipped_reason == "" and len(wire.requests) == 1
    assert redis_client.exists(f"{limiter.key('openai', 'gpt-5-mini')}:user:{owner.pk}")
    LLMCall.objects.create(bot=second, provider="openai", model="gpt-5-mini", cost=Decimal(4))

    # 6 + 4 reached 10 for every bot of the owner, the third included, which spent nothing itself.
    held = _user_maker(third, limiter).decide(make_context(make_snapshot(PRICES), bot_id=third.pk))
    assert held.skipped_reason == (
        "llm_budget: your bots spent 10 USD on LLM calls today, the most this platform allows a user per day "
        "is 10 USD; holding until 00:00 UTC (exits still run)"
    )
    assert len(wire.requests) == 1 and held.calls == []
    # Another user's spending is theirs.
    wire.queue(protocols.OPENAI.ok(decision_json()))
    other = BotFactory(provider="openai", model="gpt-5-mini")
    assert _user_maker(other, limiter).decide(make_context(make_snapshot(PRICES), bot_id=other.pk)).skipped_reason == ""


def test_superusers_are_exempt_and_off_means_no_limit(llm_settings: Any) -> None:
    llm_settings.USER_LLM_DAILY_BUDGET = Decimal(10)
    owner = UserFactory()
    bot = BotFactory(owner=owner, provider="openai", model="gpt-5-mini")
    maker = get_decision_maker(bot)  # what the cycle builds
    assert (maker.owner_id, maker.user_daily_budget) == (owner.pk, Decimal(10))  # type: ignore[attr-defined]
    assert user_llm_daily_budget(owner=UserFactory(is_superuser=True)) is None
    llm_settings.USER_LLM_DAILY_BUDGET = None
    assert user_llm_daily_budget(owner=owner) is None
