"""Untrusted model output that is valid JSON but unfit for the database (a NUL character, a price
too large for the columns) never fails the cycle, and the paid call is always recorded."""

import json
from typing import Any

import pytest
from django.utils import timezone

from bots.cycle import run_cycle
from bots.models import Bot, Cycle, LLMCall
from marketdata.services import snapshot_build
from tests.factories import BotFactory
from tests.llm import protocols
from tests.llm.conftest import point_at
from tests.llm.wire import WireServer

pytestmark = [pytest.mark.django_db]

PROTO = protocols.OPENAI


@pytest.fixture
def e2e(llm_settings: Any, wire: WireServer, redis_client: Any) -> Any:
    point_at(llm_settings, PROTO, wire)
    llm_settings.MARKET_DATA_FEED = "replay"
    yield llm_settings
    redis_client.delete(f"ta:llm:ratelimit:{PROTO.provider}:{PROTO.model}")


def llm_bot() -> Bot:
    """An active bot asking the local OpenAI server, on the recorded BTC/USD market."""
    return BotFactory(
        provider=PROTO.provider,
        model=PROTO.model,
        start=True,
        exchange="coinbase",
        symbols=["BTC/USD"],
        timeframe="1h",
    )


def test_nul_in_model_reasoning_does_not_crash_cycle(e2e: Any, wire: WireServer) -> None:
    bot = llm_bot()
    answer = json.dumps(
        {
            "market_summary": "ok",
            "actions": [
                {
                    "symbol": "BTC/USD",
                    "reasoning": "flat\u0000",
                    "action": "hold",
                    "size_pct": 0,
                    "leverage": 1,
                    "stop_loss": None,
                    "take_profit": None,
                    "confidence": 0.5,
                    "invalidation": "",
                }
            ],
        }
    )
    assert "\\u0000" in answer
    wire.queue(PROTO.ok(answer, input_tokens=1000, output_tokens=100))
    cycle = run_cycle(bot_id=bot.pk, slot=timezone.now().replace(microsecond=0))
    cycle.refresh_from_db()
    bot.refresh_from_db()
    # the paid call must be accounted for whatever the model wrote
    assert LLMCall.objects.filter(bot=bot).count() == 1, "LLM call not recorded"
    assert bot.llm_cost_total > 0
    assert cycle.status == Cycle.Status.COMPLETED, cycle.error


def test_huge_take_profit_does_not_fail_the_cycle(e2e: Any, wire: WireServer) -> None:
    bot = llm_bot()
    slot = timezone.now().replace(microsecond=0)
    price = snapshot_build(exchange="coinbase", symbols=["BTC/USD"], timeframe="1h", slot=slot).price("BTC/USD")
    answer = json.dumps(
        {
            "market_summary": "ok",
            "actions": [
                {
                    "symbol": "BTC/USD",
                    "reasoning": "up",
                    "action": "open_long",
                    "size_pct": 10,
                    "leverage": 1,
                    "stop_loss": float(price) * 0.95,
                    "take_profit": 1e25,
                    "confidence": 0.5,
                    "invalidation": "x",
                }
            ],
        }
    )
    wire.queue(PROTO.ok(answer))
    cycle = run_cycle(bot_id=bot.pk, slot=slot)
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.COMPLETED, cycle.error


def test_an_answer_nested_too_deeply_is_an_invalid_decision(e2e: Any, wire: WireServer) -> None:
    bot = llm_bot()
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000  # json.loads gives up with a RecursionError
    wire.queue(PROTO.ok(deep))
    wire.queue(PROTO.ok(deep))  # the repair attempt answers the same
    cycle = run_cycle(bot_id=bot.pk, slot=timezone.now().replace(microsecond=0))
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.COMPLETED, cycle.error
    assert "nested too deeply" in cycle.decision_error
    assert all(action["action"] == "hold" for action in cycle.decision["actions"])
    assert LLMCall.objects.filter(bot=bot).count() == 2  # both paid calls recorded
