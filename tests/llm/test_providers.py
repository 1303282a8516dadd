"""Every provider, through its real SDK, against a local server speaking its wire protocol.

Each case checks what our decision maker made of the answer and what the server received.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bots.decisions import Action, DecisionOutcome
from bots.llm.base import LLMDecisionMaker
from bots.llm.ratelimit import RateLimiter
from bots.prompts import PROMPT_VERSION, market_section
from bots.providers import decision_maker_class
from tests.clock import FakeClock
from tests.llm import protocols
from tests.llm.builders import PRICES, decision_json, make_context, make_snapshot
from tests.llm.conftest import point_at
from tests.llm.protocols import Protocol
from tests.llm.wire import Reply, WireServer

# List prices of the tested models at 1200 input + 300 output tokens (USD per million tokens):
EXPECTED_COST = {
    "gpt-5-mini": Decimal("0.0009"),  # 0.25 / 2
    "deepseek-v4-flash": Decimal("0.000252"),  # 0.14 / 0.28
    "qwen3:8b": Decimal(0),  # a local server: no price
    "claude-sonnet-4-6": Decimal("0.0081"),  # 3 / 15
    "claude-opus-4-1": Decimal("0.0405"),  # 15 / 75
    "gemini-2.5-flash": Decimal("0.00111"),  # 0.30 / 2.50
}

BROKEN_JSON = '{"market_summary": "BTC up", "actions": [{"symbol": "BTC/USD", "action": '


@pytest.fixture(params=protocols.ALL, ids=lambda p: f"{p.provider}-{p.model}")
def protocol(request: pytest.FixtureRequest, wire: WireServer, llm_settings: Any) -> Protocol:
    proto: Protocol = request.param
    point_at(llm_settings, proto, wire)
    return proto


def _maker(protocol: Protocol, limiter: RateLimiter, sleeps: FakeClock) -> LLMDecisionMaker:
    return decision_maker_class(protocol.provider)(
        model=protocol.model, limiter=limiter, sleep=sleeps.sleep, clock=sleeps.monotonic
    )


def _decide(
    protocol: Protocol, limiter: RateLimiter, sleeps: FakeClock, wire: WireServer
) -> tuple[DecisionOutcome, Any]:
    ctx = make_context(make_snapshot(PRICES))
    outcome = _maker(protocol, limiter, sleeps).decide(ctx)
    # Every request the server got, retries and repairs included, was a complete decision request.
    section = market_section(ctx.snapshot.data)
    for request in wire.requests:
        assert request.method == "POST" and request.path == protocol.path()
        assert protocol.model_of(request) == protocol.model
        if protocol.api_key:
            assert protocol.api_key in protocol.auth_of(request)
        assert section in protocol.user_texts(request)[0] and "=== OUTPUT FORMAT ===" in protocol.system_of(request)
        if protocol.provider != "deepseek":
            schema = protocol.schema_of(request)
            assert schema is not None and schema["properties"]["actions"]["items"]["properties"]["symbol"]["enum"] == [
                "BTC/USD",
                "ETH/USD",
            ]
    return outcome, ctx


def _all_hold(outcome: DecisionOutcome) -> bool:
    return sorted(a.symbol for a in outcome.decision.actions) == ["BTC/USD", "ETH/USD"] and all(
        a.action == Action.HOLD for a in outcome.decision.actions
    )


def test_valid_structured_decision(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(protocol.ok(decision_json()))

    outcome, ctx = _decide(protocol, limiter, sleeps, wire)

    assert outcome.error == "" and outcome.skipped_reason == ""
    btc = outcome.decision.for_symbol("BTC/USD")
    assert btc is not None and btc.action == Action.OPEN_LONG
    assert (btc.size_pct, btc.leverage, btc.stop_loss, btc.take_profit) == (
        Decimal(10),
        Decimal(2),
        Decimal("89500.5"),
        Decimal(94000),
    )
    assert btc.invalidation == "A 1h close below 89500."
    eth = outcome.decision.for_symbol("ETH/USD")
    assert eth is not None and eth.action == Action.HOLD
    # Tokens, cost (list price) and one recorded call.
    assert (outcome.input_tokens, outcome.output_tokens) == (1200, 300)
    assert outcome.cost == EXPECTED_COST[protocol.model]
    [call] = outcome.calls
    assert (call.provider, call.model, call.purpose, call.ok, call.attempts) == (
        protocol.provider,
        protocol.model,
        "decide",
        True,
        1,
    )
    assert call.cost == outcome.cost and call.input_tokens == 1200 and call.output_tokens == 300
    # What was recorded for the cycle.
    assert outcome.prompt_version == PROMPT_VERSION
    assert market_section(ctx.snapshot.data) in outcome.prompt
    assert json.loads(outcome.raw_output) == json.loads(decision_json())

    # What the server received.
    [request] = wire.requests
    assert request.method == "POST" and request.path == protocol.path()
    assert protocol.model_of(request) == protocol.model
    if protocol.api_key:
        assert protocol.api_key in protocol.auth_of(request)
    schema = protocol.schema_of(request)
    if protocol.provider == "deepseek":
        # DeepSeek's JSON Output mode: the schema travels in the prompt.
        assert schema is None and request.body["response_format"] == {"type": "json_object"}
        assert request.body["max_tokens"] == 2048
    else:
        assert schema is not None
        item = schema["properties"]["actions"]["items"]
        assert item["properties"]["symbol"]["enum"] == ["BTC/USD", "ETH/USD"]
        assert item["properties"]["action"]["enum"] == ["open_long", "open_short", "close", "hold"]
        assert set(item["required"]) == set(item["properties"]) and item["additionalProperties"] is False
    if protocol.provider == "openai":
        assert request.body["response_format"]["json_schema"]["strict"] is True
        assert request.body["max_completion_tokens"] == 2048
    system = protocol.system_of(request)
    assert "=== OUTPUT FORMAT ===" in system and '"market_summary"' in system and "=== RULES ===" in system
    [user] = protocol.user_texts(request)
    assert market_section(ctx.snapshot.data) in user and "=== YOUR ACCOUNT ===" in user


def test_malformed_json_then_successful_repair(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(
        protocol.ok(BROKEN_JSON, input_tokens=1000, output_tokens=100),
        protocol.ok(decision_json(), input_tokens=1200, output_tokens=300),
    )

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert outcome.error == ""
    btc = outcome.decision.for_symbol("BTC/USD")
    assert btc is not None and btc.action == Action.OPEN_LONG
    assert [c.purpose for c in outcome.calls] == ["decide", "repair"] and all(c.ok for c in outcome.calls)
    assert (outcome.input_tokens, outcome.output_tokens) == (2200, 400)
    assert outcome.cost == outcome.calls[0].cost + outcome.calls[1].cost
    assert outcome.calls[1].cost == EXPECTED_COST[protocol.model]
    assert BROKEN_JSON in outcome.raw_output and '"open_long"' in outcome.raw_output
    # The repair request replays the broken answer and carries the validation error.
    first, second = wire.requests
    assert protocol.user_texts(first) == protocol.user_texts(second)[:1]
    assert protocol.assistant_texts(second) == [BROKEN_JSON]
    assert "not valid JSON" in protocol.user_texts(second)[-1]


def test_failed_repair_holds_and_records_the_error(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wrong_stop = json.loads(decision_json())
    wrong_stop["actions"][0]["stop_loss"] = 95000  # above the price for a long
    absurd_leverage = json.loads(decision_json())
    absurd_leverage["actions"][0]["leverage"] = 500
    wire.queue(protocol.ok(json.dumps(wrong_stop)), protocol.ok(json.dumps(absurd_leverage)))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome)
    assert "after one repair" in outcome.error and "leverage" in outcome.error and "stop_loss" in outcome.error
    assert len(wire.requests) == 2 and [c.purpose for c in outcome.calls] == ["decide", "repair"]
    assert "stop_loss 95000 must be below the price 91000" in protocol.user_texts(wire.requests[1])[-1]


def test_429_with_retry_after_is_honoured(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(protocol.error(429, retry_after="1"), protocol.ok(decision_json()))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert outcome.error == ""
    [call] = outcome.calls
    assert call.ok and call.attempts == 2
    assert len(sleeps.delays) == 1 and 1.0 <= sleeps.delays[0] <= 1.1
    assert len(wire.requests) == 2


def test_500_is_retried(protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock) -> None:
    wire.queue(protocol.error(500), protocol.ok(decision_json()))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert outcome.error == "" and outcome.calls[0].attempts == 2 and len(sleeps.delays) == 1


def test_500_every_time_is_recorded_after_the_retries(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock, llm_settings: Any
) -> None:
    wire.queue(*[protocol.error(500)] * 3)

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome)
    assert "HTTP 500" in outcome.error and "gave up after 3 attempts" in outcome.error
    [call] = outcome.calls
    assert not call.ok and call.attempts == llm_settings.LLM_MAX_RETRIES + 1 and "HTTP 500" in call.error
    assert (outcome.input_tokens, outcome.output_tokens, outcome.cost) == (0, 0, Decimal(0))
    assert len(wire.requests) == 3


@pytest.mark.slow
def test_timeout_is_retried(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock, llm_settings: Any
) -> None:
    # The retry must get its whole answer within the same timeout: 1 s leaves room on a busy
    # machine (0.3 s did not, for an SDK's first parse of an answer).
    llm_settings.LLM_TIMEOUT_SECONDS = 1.0
    wire.queue(dataclasses.replace(protocol.ok(decision_json()), delay=1.5), protocol.ok(decision_json()))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert outcome.error == "" and outcome.calls[0].attempts == 2


@pytest.mark.slow
def test_timeouts_every_time_are_recorded(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock, llm_settings: Any
) -> None:
    llm_settings.LLM_TIMEOUT_SECONDS = 0.2
    llm_settings.LLM_MAX_RETRIES = 1
    wire.queue(*[dataclasses.replace(protocol.ok(decision_json()), delay=0.6)] * 2)

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome) and "timed out after 0.2s" in outcome.error
    assert outcome.calls[0].attempts == 2 and not outcome.calls[0].ok


def test_total_wait_is_capped(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock, llm_settings: Any
) -> None:
    # The server asks for 5 s but the cycle may wait 1.5 s in all: give up now, do not sleep.
    llm_settings.LLM_MAX_WAIT_SECONDS = 1.5
    wire.queue(protocol.error(429, retry_after="5"), protocol.ok(decision_json()))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome) and "LLM_MAX_WAIT_SECONDS" in outcome.error
    assert sleeps.delays == [] and len(wire.requests) == 1 and outcome.calls[0].attempts == 1


@pytest.mark.slow
def test_total_wait_cap_shortens_attempts(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock, llm_settings: Any
) -> None:
    # Plenty of retries allowed, but slow answers exhaust the 1.2 s wait budget first.
    llm_settings.LLM_TIMEOUT_SECONDS = 0.8
    llm_settings.LLM_MAX_WAIT_SECONDS = 1.2
    llm_settings.LLM_MAX_RETRIES = 10
    wire.queue(*[dataclasses.replace(protocol.ok(decision_json()), delay=1.5)] * 11)

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome) and outcome.error
    assert outcome.calls[0].attempts < 4
    assert sum(sleeps.delays) < llm_settings.LLM_MAX_WAIT_SECONDS


@pytest.mark.slow
def test_a_trickling_answer_cannot_hold_an_attempt_past_its_timeout(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock, llm_settings: Any
) -> None:
    # A byte now and then keeps every per-read timeout of the SDKs happy: each answer takes 6 s.
    # The timeouts are wall-clock caps all the same: 1 s per attempt, 2 s for the decision.
    llm_settings.LLM_TIMEOUT_SECONDS = 1.0
    llm_settings.LLM_MAX_WAIT_SECONDS = 2.0
    wire.queue(*[dataclasses.replace(protocol.ok(decision_json()), trickle=0.3)] * 3)

    maker, ctx = _maker(protocol, limiter, sleeps), make_context(make_snapshot(PRICES))
    started = time.monotonic()
    outcome = maker.decide(ctx)
    took = time.monotonic() - started

    assert took < 2.5, f"decide() took {took:.1f}s with LLM_MAX_WAIT_SECONDS=2"
    # Recorded like any timeout: retried within the cap, then an error, and the bot holds.
    assert _all_hold(outcome) and "timed out after" in outcome.error
    [call] = outcome.calls
    assert not call.ok and call.attempts >= 1 and "timed out" in call.error
    # The abandoned attempts hung up on the server and their threads ended: nothing reads on.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and (
        wire.dropped < len(wire.requests)
        or any(t.name.startswith("llm-") and t.is_alive() for t in threading.enumerate())
    ):
        time.sleep(0.05)
    assert wire.dropped == len(wire.requests) >= 1
    assert not [t.name for t in threading.enumerate() if t.name.startswith("llm-") and t.is_alive()]


def test_refusal_holds_without_a_repair(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(protocol.refusal())

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome) and "refused" in outcome.error
    assert len(wire.requests) == 1 and outcome.calls[0].ok


def test_empty_answer_gets_a_repair(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(protocol.empty(), protocol.ok(decision_json()))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert outcome.error == "" and len(wire.requests) == 2
    repair = protocol.user_texts(wire.requests[1])[-1]
    assert "empty" in repair and "cut off" in repair
    # The server refused nothing: the repair request did not replay the empty answer as an empty
    # turn or text block, which the real APIs answer with a 400.
    assert all(protocol.check(request) is None for request in wire.requests)
    if protocol.provider in ("anthropic", "gemini"):
        assert protocol.assistant_texts(wire.requests[1]) == []


@pytest.mark.parametrize("protocol", [protocols.ANTHROPIC, protocols.ANTHROPIC_TOOL, protocols.GEMINI], indirect=True)
def test_the_test_server_refuses_an_empty_turn_as_the_real_api_does(protocol: Protocol, wire: WireServer) -> None:
    # The repair test above means something only if the server refuses what the real API refuses.
    if protocol.provider == "anthropic":
        body: dict[str, Any] = {
            "model": protocol.model,
            "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "decide"},
                {"role": "assistant", "content": [{"type": "text", "text": ""}]},
                {"role": "user", "content": "again"},
            ],
        }
    else:
        body = {
            "contents": [
                {"role": "user", "parts": [{"text": "decide"}]},
                {"role": "model", "parts": [{"text": ""}]},
                {"role": "user", "parts": [{"text": "again"}]},
            ]
        }
    wire.queue(protocol.ok(decision_json()))

    response = httpx.post(wire.url + protocol.path(), json=body, timeout=5)

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert ("non-whitespace" in message) if protocol.provider == "anthropic" else ("empty text parameter" in message)


def test_client_error_is_not_retried(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(protocol.error(400))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome) and "HTTP 400" in outcome.error
    assert len(wire.requests) == 1 and outcome.calls[0].attempts == 1 and sleeps.delays == []


def test_garbage_body_cannot_crash_the_cycle(
    protocol: Protocol, wire: WireServer, limiter: RateLimiter, sleeps: FakeClock
) -> None:
    wire.queue(Reply("<html>502 Bad Gateway</html>", status=200), Reply({"unexpected": [1, 2]}))

    outcome, _ = _decide(protocol, limiter, sleeps, wire)

    assert _all_hold(outcome) and outcome.error


def test_no_rate_limit_slot_skips_without_a_request(
    protocol: Protocol, wire: WireServer, limiter_prefix: str, sleeps: FakeClock, llm_settings: Any
) -> None:
    llm_settings.LLM_RATE_LIMIT_WAIT_SECONDS = 0
    full = RateLimiter(limit=1, key_prefix=limiter_prefix)
    assert full.try_acquire(full.key(protocol.provider, protocol.model)) == 0  # another worker took the slot

    outcome, _ = _decide(protocol, full, sleeps, wire)

    assert outcome.skipped_reason.startswith("rate_limited:") and outcome.error == ""
    assert _all_hold(outcome) and outcome.calls == [] and wire.requests == []
