"""The decision schema: what an untrusted answer must satisfy before anything acts on it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bots.decisions import Action, DecisionInvalid, validate_decision

PRICES = {"BTC/USD": Decimal(50000), "ETH/USD": Decimal(3000)}
SYMBOLS = ["BTC/USD", "ETH/USD"]


def answer(**action: object) -> dict[str, object]:
    return {"market_summary": "s", "actions": [{"symbol": "BTC/USD", "action": "hold", **action}]}


def test_an_answer_without_actions_is_invalid_not_a_hold():
    with pytest.raises(DecisionInvalid, match="actions"):
        validate_decision({}, symbols=SYMBOLS, prices=PRICES)


def test_symbols_left_out_are_held():
    decision = validate_decision(answer(), symbols=SYMBOLS, prices=PRICES)
    assert decision.for_symbol("ETH/USD").action == Action.HOLD


@pytest.mark.parametrize(
    ("action", "problem"),
    [
        ({"action": "open_long", "size_pct": 10, "stop_loss": 51000}, "stop_loss 51000 must be below"),
        ({"action": "open_short", "size_pct": 10, "take_profit": 52000}, "take_profit 52000 must be below"),
        ({"action": "open_long", "size_pct": 0}, "size_pct must be above 0"),
        ({"action": "open_long", "size_pct": 10, "take_profit": 1e25}, "take_profit"),
        ({"action": "open_long", "size_pct": 150}, "size_pct"),
        ({"action": "open_long", "size_pct": 10, "leverage": 500}, "leverage"),
        ({"action": "buy_everything"}, "action"),
        ({"symbol": "DOGE/USD"}, "not traded by this bot"),
    ],
)
def test_out_of_range_and_wrong_side_values_are_rejected(action, problem):
    with pytest.raises(DecisionInvalid, match=problem):
        validate_decision(answer(**action), symbols=SYMBOLS, prices=PRICES)


def test_nul_characters_are_removed_from_text():
    decision = validate_decision(answer(reasoning="flat\x00 market"), symbols=SYMBOLS, prices=PRICES)
    assert decision.for_symbol("BTC/USD").reasoning == "flat market"
