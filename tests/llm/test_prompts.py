"""The prompt: Alpha Arena content, byte-identical market sections, the strict schema."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

from bots.decisions import validate_decision
from bots.prompts import (
    PROMPT_VERSION,
    anthropic_json_schema,
    build_prompt,
    decision_json_schema,
    gemini_json_schema,
    market_section,
)
from tests.llm.builders import PRICES, decision_json, eth_position, make_context, make_snapshot


def test_same_snapshot_gives_a_byte_identical_market_section_for_every_bot() -> None:
    snapshot = make_snapshot(PRICES)
    # Another bot, another account, positions; and the snapshot data rebuilt in another key order.
    reordered = make_snapshot(dict(reversed(list(PRICES.items()))))
    assert reordered.hash == snapshot.hash

    _, user_a = build_prompt(make_context(snapshot, bot_id=1, bot_name="a"))
    _, user_b = build_prompt(make_context(reordered, bot_id=2, bot_name="b", positions=[eth_position()]))

    section = market_section(snapshot.data)
    assert section.encode() == market_section(reordered.data).encode()
    assert section in user_a and section in user_b
    assert user_a != user_b  # the bot-specific parts differ


def test_market_section_states_the_series_order_and_carries_every_value() -> None:
    snapshot = make_snapshot({"BTC/USD": Decimal("91000")})
    snapshot.data["symbols"]["BTC/USD"]["funding_rate"] = "0.0001"

    section = market_section(snapshot.data)

    assert "ORDERED OLDEST -> NEWEST" in section
    assert "current_price=91000" in section and "funding_rate=0.0001" in section
    assert "ema20=90960, ema50=90910, rsi7=61.2, rsi14=57.9, macd=12.4" in section
    assert "close: [90910, 90920, 90930, 90940, 90950, 90960, 90970, 90980, 90990, 91000]" in section
    assert "rsi7: [55.0, 56.1, 58.3, n/a, 60.0" in section  # a null value is n/a
    assert "Higher timeframe context (4h):" in section and "macd=n/a" in section
    assert "Exchange: coinbase. Timeframe: 1h." in section


def test_prompt_has_account_positions_with_thesis_rules_and_schema() -> None:
    ctx = make_context(make_snapshot(PRICES), positions=[eth_position()])

    system, user = build_prompt(ctx)

    assert "Equity: 10250.5 USD" in user and "Free cash: 8100.25 USD" in user
    assert "Return so far: 2.505%" in user and "Sharpe ratio so far: 1.42" in user
    assert "- ETH/USD: LONG quantity=0.5 entry_price=3050 current_price=3100 leverage=2x" in user
    assert "unrealized_pnl=25" in user and "stop_loss=2950 take_profit=3300" in user
    assert "thesis when opened: Breakout above the 4h range with rising volume." in user
    assert "invalidation condition: A 4h close back below 3000." in user
    assert "margin per position at most 20% of equity; leverage at most 3x" in system
    assert "at most 20 opening trades per UTC day" in system
    assert "can only be close or hold. Open now: ETH/USD." in system
    assert json.dumps(decision_json_schema(ctx.symbols), indent=2) in system
    assert PROMPT_VERSION


def test_strict_schema_shape_and_dialects() -> None:
    schema = decision_json_schema(["BTC/USD"])
    item = schema["properties"]["actions"]["items"]
    assert schema["additionalProperties"] is False and schema["required"] == ["market_summary", "actions"]
    assert item["required"] == list(item["properties"]) and item["additionalProperties"] is False
    assert item["properties"]["stop_loss"]["type"] == ["number", "null"]
    # Anthropic/Gemini: one type per schema, nullables as anyOf.
    for dialect in (anthropic_json_schema(["BTC/USD"]), gemini_json_schema(["BTC/USD"])):
        stop = dialect["properties"]["actions"]["items"]["properties"]["stop_loss"]
        assert stop["anyOf"] == [{"type": "number"}, {"type": "null"}] and "type" not in stop
    assert gemini_json_schema(["BTC/USD"])["properties"]["actions"]["items"]["propertyOrdering"][:3] == [
        "symbol",
        "reasoning",
        "action",
    ]


def test_example_answer_in_the_prompt_satisfies_the_validator() -> None:
    # The answer the prompt describes is one validate_decision accepts.
    raw = json.loads(decision_json())
    decision = validate_decision(raw, symbols=["BTC/USD", "ETH/USD"], prices=PRICES)
    assert [a.symbol for a in decision.actions] == ["BTC/USD", "ETH/USD"]


def test_stored_amounts_reach_the_prompt_as_plain_numbers() -> None:
    # Read back from the database, amounts carry 12 decimal places; computed PnL carries more.
    position = dataclasses.replace(
        eth_position(),
        quantity=Decimal("0.500000000000"),
        entry_price=Decimal("3050.000000000000"),
        leverage=Decimal("2.00"),
        unrealized_pnl=Decimal("25.123456789123456789"),
        stop_loss=Decimal("2950.000000000000"),
    )
    ctx = make_context(make_snapshot(PRICES), positions=[position])

    _, user = build_prompt(ctx)

    assert "quantity=0.5 entry_price=3050 current_price=3100 leverage=2x" in user
    assert "unrealized_pnl=25.12345679 " in user and "stop_loss=2950 " in user
    assert "000000" not in user.split("=== OPEN POSITIONS ===")[1].split("thesis")[0]
