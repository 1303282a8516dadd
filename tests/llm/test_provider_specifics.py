"""What differs between providers: Anthropic's tool_result repair and 529, Gemini's RetryInfo,
DeepSeek's reasoning content, the OpenAI-compatible server's response formats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from bots.decisions import Action
from bots.llm.ratelimit import RateLimiter
from bots.providers import decision_maker_class
from tests.clock import FakeClock
from tests.llm import protocols
from tests.llm.builders import PRICES, decision_json, make_context, make_snapshot
from tests.llm.conftest import point_at
from tests.llm.wire import Reply, WireServer


def _decide(provider: str, model: str, limiter: RateLimiter, sleeps: FakeClock | None = None) -> Any:
    sleeps = sleeps or FakeClock()
    maker = decision_maker_class(provider)(model=model, limiter=limiter, sleep=sleeps.sleep, clock=sleeps.monotonic)
    return maker.decide(make_context(make_snapshot(PRICES)))


def test_anthropic_tool_mode_repair_answers_the_tool_use_with_an_error_result(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter
) -> None:
    proto = protocols.ANTHROPIC_TOOL
    point_at(llm_settings, proto, wire)
    wrong = json.loads(decision_json())
    wrong["actions"][0]["action"] = "buy"
    wire.queue(proto.ok(json.dumps(wrong)), proto.ok(decision_json()))

    outcome = _decide(proto.provider, proto.model, limiter)

    assert outcome.error == ""
    repair = wire.requests[1].body["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    [tool_use] = repair[1]["content"]
    assert tool_use["type"] == "tool_use" and tool_use["name"] == "submit_decision" and tool_use["input"] == wrong
    [result] = repair[2]["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == tool_use["id"] and result["is_error"] is True
    assert "actions.0.action" in result["content"]


def test_anthropic_overloaded_529_is_retried(wire: WireServer, llm_settings: Any, limiter: RateLimiter) -> None:
    proto = protocols.ANTHROPIC
    point_at(llm_settings, proto, wire)
    wire.queue(proto.error(529), proto.ok(decision_json()))

    outcome = _decide(proto.provider, proto.model, limiter)

    assert outcome.error == "" and outcome.calls[0].attempts == 2
    assert wire.requests[0].headers["anthropic-version"]  # the SDK's API version header is sent


def test_gemini_429_retry_info_delay_is_honoured(wire: WireServer, llm_settings: Any, limiter: RateLimiter) -> None:
    proto = protocols.GEMINI
    point_at(llm_settings, proto, wire)
    quota = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
            ],
        }
    }
    sleeps = FakeClock()
    wire.queue(Reply(quota, status=429), proto.ok(decision_json()))

    outcome = _decide(proto.provider, proto.model, limiter, sleeps)

    assert outcome.error == "" and outcome.calls[0].attempts == 2
    assert 1.0 <= sleeps.delays[0] <= 1.1


def test_gemini_thinking_tokens_are_billed_as_output(wire: WireServer, llm_settings: Any, limiter: RateLimiter) -> None:
    proto = protocols.GEMINI
    point_at(llm_settings, proto, wire)
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "Thinking about BTC...", "thought": True}, {"text": decision_json()}],
                    "role": "model",
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 1000,
            "candidatesTokenCount": 200,
            "thoughtsTokenCount": 800,
            "totalTokenCount": 2000,
        },
    }
    wire.queue(Reply(body))

    outcome = _decide(proto.provider, "gemini-2.5-pro", limiter)

    assert outcome.error == "" and outcome.raw_output == decision_json()
    assert (outcome.input_tokens, outcome.output_tokens) == (1000, 1000)
    assert outcome.cost == Decimal("0.01125")  # 1000 x 1.25 + 1000 x 10 per million


def test_deepseek_reasoning_content_is_not_the_answer(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter
) -> None:
    proto = protocols.DEEPSEEK
    point_at(llm_settings, proto, wire)
    reply = proto.ok(decision_json(), input_tokens=1000, output_tokens=2000)
    reply.body["choices"][0]["message"]["reasoning_content"] = "Let me think { not json"
    reply.body["usage"].update({"prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 1000})
    wire.queue(reply)

    outcome = _decide(proto.provider, "deepseek-v4-pro", limiter)

    assert outcome.error == "" and outcome.decision.for_symbol("BTC/USD").action == Action.OPEN_LONG
    assert outcome.cost == Decimal("0.00870")  # 1000 x 1.74 + 2000 x 3.48 per million
    assert wire.requests[0].path == "/chat/completions" and wire.requests[0].body["model"] == "deepseek-v4-pro"


def test_openai_compatible_without_key_and_json_object_mode(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter
) -> None:
    proto = protocols.OPENAI_COMPATIBLE
    point_at(llm_settings, proto, wire)
    llm_settings.OPENAI_COMPATIBLE_RESPONSE_FORMAT = "json_object"
    # Local models often wrap JSON in a code fence.
    wire.queue(proto.ok(f"```json\n{decision_json()}\n```"))

    outcome = _decide(proto.provider, "llama3.1:8b", limiter)

    assert outcome.error == "" and outcome.cost == Decimal(0)
    [request] = wire.requests
    assert request.body["response_format"] == {"type": "json_object"} and request.body["model"] == "llama3.1:8b"


def test_openai_compatible_plain_mode_sends_no_response_format(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter
) -> None:
    proto = protocols.OPENAI_COMPATIBLE
    point_at(llm_settings, proto, wire)
    llm_settings.OPENAI_COMPATIBLE_RESPONSE_FORMAT = "none"
    llm_settings.LLM_PRICES = {"openai_compatible": {"my-hosted-model": {"input": "1", "output": "2"}}}
    wire.queue(proto.ok("Here is my decision:\n" + decision_json() + "\nGood luck!"))

    outcome = _decide(proto.provider, "my-hosted-model", limiter)

    assert outcome.error == "" and "response_format" not in wire.requests[0].body
    assert outcome.cost == Decimal("0.0018")  # priced through LLM_PRICES: 1200 x 1 + 300 x 2 per million


def test_key_removed_while_running_holds_without_a_request(
    wire: WireServer, llm_settings: Any, limiter: RateLimiter
) -> None:
    for proto in (protocols.ANTHROPIC, protocols.OPENAI, protocols.GEMINI):
        point_at(llm_settings, proto, wire)
        setattr(llm_settings, f"{proto.settings_prefix}_API_KEY", "")

        outcome = _decide(proto.provider, proto.model, limiter)

        assert outcome.error == f"{proto.settings_prefix}_API_KEY is not set: set it to run bots on {proto.provider}"
        assert all(a.action == Action.HOLD for a in outcome.decision.actions)
    assert wire.requests == []
