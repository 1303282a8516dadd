"""End to end: a bot whose provider is a local server speaking Anthropic's protocol trades
through the full cycle (bots.cycle.run_cycle), and its Cycle row records what the model saw,
said and cost."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import Alert
from bots.cycle import run_cycle
from bots.models import Bot, Cycle, LLMCall
from bots.prompts import PROMPT_VERSION, market_section
from marketdata.services import snapshot_build
from tests.factories import BotFactory
from tests.llm import protocols
from tests.llm.conftest import point_at
from tests.llm.wire import WireServer
from trading.models import Position

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PROTO = protocols.ANTHROPIC  # claude-sonnet-4-6: 3 / 15 USD per million tokens


@pytest.fixture
def e2e_settings(llm_settings: Any, wire: WireServer, redis_client: Any) -> Any:
    point_at(llm_settings, PROTO, wire)
    llm_settings.MARKET_DATA_FEED = "replay"
    yield llm_settings
    redis_client.delete(f"ta:llm:ratelimit:{PROTO.provider}:{PROTO.model}")


def _bot(**fields: Any) -> Bot:
    bot: Bot = BotFactory(
        provider=PROTO.provider,
        model=PROTO.model,
        start=True,
        exchange="coinbase",
        symbols=["BTC/USD"],
        timeframe="1h",
        **fields,
    )
    return bot


def _answer(price: Decimal) -> str:
    return json.dumps(
        {
            "market_summary": "BTC holds above its 20-period EMA.",
            "actions": [
                {
                    "symbol": "BTC/USD",
                    "reasoning": "Trend and momentum agree.",
                    "action": "open_long",
                    "size_pct": 10,
                    "leverage": 2,
                    "stop_loss": float((price * Decimal("0.97")).quantize(Decimal("0.01"))),
                    "take_profit": float((price * Decimal("1.05")).quantize(Decimal("0.01"))),
                    "confidence": 0.7,
                    "invalidation": "An hourly close below the stop.",
                }
            ],
        }
    )


def test_llm_bot_trades_through_the_full_cycle(e2e_settings: Any, wire: WireServer) -> None:
    bot = _bot()
    slot = timezone.now().replace(microsecond=0)
    price = snapshot_build(exchange="coinbase", symbols=["BTC/USD"], timeframe="1h", slot=slot).price("BTC/USD")
    answer = _answer(price)
    wire.queue(PROTO.ok(answer, input_tokens=1200, output_tokens=300))

    cycle = run_cycle(bot_id=bot.pk, slot=slot)

    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.COMPLETED, cycle.error
    # What the model saw: the versioned prompt with the snapshot's market section.
    assert cycle.prompt_version == PROMPT_VERSION
    assert market_section(cycle.snapshot) in cycle.prompt
    [request] = wire.requests
    assert request.body["model"] == PROTO.model and market_section(cycle.snapshot) in PROTO.user_texts(request)[0]
    # What it said, and what was parsed from it.
    assert cycle.raw_output == answer and cycle.decision_error == ""
    [action] = cycle.decision["actions"]
    assert action["symbol"] == "BTC/USD" and action["action"] == "open_long"
    # Tokens, cost, latency.
    assert (cycle.input_tokens, cycle.output_tokens, cycle.llm_cost) == (1200, 300, Decimal("0.0081"))
    [call] = LLMCall.objects.filter(cycle=cycle)
    assert (call.purpose, call.status, call.attempts, call.cost) == ("decide", "ok", 1, Decimal("0.0081"))
    assert cycle.llm_latency_ms >= call.latency_ms >= 0
    bot.refresh_from_db()
    assert bot.llm_cost_total == Decimal("0.0081") and bot.llm_input_tokens_total == 1200
    # And it traded: a long with the model's exit plan and thesis.
    [position] = Position.objects.filter(bot=bot, status=Position.Status.OPEN)
    assert position.side == "long" and position.stop_loss == Decimal(str(action["stop_loss"]))
    assert position.invalidation == "An hourly close below the stop."


def test_unusable_answers_hold_and_record_the_error(e2e_settings: Any, wire: WireServer) -> None:
    bot = _bot()
    wire.queue(PROTO.ok("I think BTC goes up!"), PROTO.ok('{"actions": "buy"}'))

    cycle = run_cycle(bot_id=bot.pk, slot=timezone.now().replace(microsecond=0))

    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.COMPLETED
    assert "after one repair" in cycle.decision_error
    assert "I think BTC goes up!" in cycle.raw_output and '{"actions": "buy"}' in cycle.raw_output
    assert [a["action"] for a in cycle.decision["actions"]] == ["hold"]
    assert LLMCall.objects.filter(cycle=cycle).count() == 2
    assert not Position.objects.filter(bot=bot).exists()


def test_spent_budget_skips_the_cycle_without_calling_the_model(e2e_settings: Any, wire: WireServer) -> None:
    bot = _bot(llm_daily_budget=Decimal("0.01"))
    LLMCall.objects.create(bot=bot, provider=PROTO.provider, model=PROTO.model, cost=Decimal("0.02"))

    cycle = run_cycle(bot_id=bot.pk, slot=timezone.now().replace(microsecond=0))

    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.SKIPPED and cycle.error.startswith("llm_budget:")
    assert wire.requests == []


def test_the_users_daily_budget_holds_all_their_bots_and_alerts(e2e_settings: Any, wire: WireServer) -> None:
    e2e_settings.USER_LLM_DAILY_BUDGET = Decimal("0.01")
    bot = _bot()
    sibling = _bot(owner=bot.owner, name="sibling")
    LLMCall.objects.create(bot=sibling, provider=PROTO.provider, model=PROTO.model, cost=Decimal("0.02"))

    cycle = run_cycle(bot_id=bot.pk, slot=timezone.now().replace(microsecond=0))

    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.SKIPPED and cycle.error.startswith("llm_budget: your bots spent 0.02 USD")
    assert wire.requests == []
    (alert,) = Alert.objects.filter(bot=bot)
    assert "holds until 00:00 UTC: your bots reached this platform's daily LLM limit per user" in alert.message
    # Once a day: the next slot holds again without a second alert.
    run_cycle(bot_id=bot.pk, slot=timezone.now().replace(microsecond=0) + timedelta(seconds=180))
    assert Alert.objects.filter(bot=bot).count() == 1
