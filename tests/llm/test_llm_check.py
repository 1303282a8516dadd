"""`manage.py llm_check`: a real prompt from current (replayed) market data to a local server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from tests.llm import protocols
from tests.llm.conftest import point_at
from tests.llm.wire import WireServer

REPO = Path(__file__).resolve().parents[2]


def _btc_answer() -> str:
    # Valid at any price: no stop or target to be on a wrong side.
    return json.dumps(
        {
            "market_summary": "Range-bound.",
            "actions": [
                {
                    "symbol": "BTC/USD",
                    "reasoning": "Momentum turning up.",
                    "action": "open_long",
                    "size_pct": 5,
                    "leverage": 1,
                    "stop_loss": None,
                    "take_profit": None,
                    "confidence": 0.55,
                    "invalidation": "Momentum fades.",
                }
            ],
        }
    )


@pytest.fixture
def llm_check_settings(llm_settings: Any, wire: WireServer, redis_client: Any) -> Any:
    point_at(llm_settings, protocols.OPENAI, wire)
    llm_settings.MARKET_DATA_FEED = "replay"
    yield llm_settings
    # llm_check uses the shared limiter: remove the window it recorded for this model.
    redis_client.delete("ta:llm:ratelimit:openai:gpt-5-mini")


@pytest.mark.django_db
def test_prints_the_parsed_decision_tokens_cost_and_latency(llm_check_settings: Any, wire: WireServer) -> None:
    wire.queue(protocols.OPENAI.ok(_btc_answer(), input_tokens=4000, output_tokens=500))
    out = io.StringIO()

    call_command("llm_check", "openai", "gpt-5-mini", stdout=out)

    text = out.getvalue()
    assert "openai/gpt-5-mini" in text
    assert "BTC/USD: open_long size_pct=5 leverage=1" in text and "invalidation: Momentum fades." in text
    assert "total: 4000 input tokens, 500 output tokens, cost 0.002 USD, latency" in text  # 4000x0.25+500x2 /1e6
    [request] = wire.requests
    system = protocols.OPENAI.system_of(request)
    [user] = protocols.OPENAI.user_texts(request)
    assert "Exchange: coinbase. Timeframe: 1h." in user and "--- BTC/USD ---" in user
    assert "Equity: 10000 USD" in user and "margin per position at most 20% of equity" in system
    assert request.body["model"] == "gpt-5-mini"


@pytest.mark.django_db
def test_unusable_answer_is_a_command_error(llm_check_settings: Any, wire: WireServer) -> None:
    llm_check_settings.LLM_MAX_RETRIES = 0
    wire.queue(protocols.OPENAI.error(500))

    with pytest.raises(CommandError, match="the answer could not be used: openai API request failed: HTTP 500"):
        call_command("llm_check", "openai", "gpt-5-mini", stdout=io.StringIO())


def test_unconfigured_provider_is_a_clear_message(settings: Any) -> None:
    settings.ANTHROPIC_API_KEY = ""
    with pytest.raises(CommandError, match="^ANTHROPIC_API_KEY is not set: set it to start a bot on anthropic$"):
        call_command("llm_check", "anthropic", "claude-sonnet-4-6")


@pytest.mark.slow
def test_unconfigured_provider_from_the_shell_exits_non_zero_without_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", REDIS_URL=django_settings.REDIS_URL)
    result = subprocess.run(
        [sys.executable, "manage.py", "llm_check", "gemini", "gemini-2.5-flash"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "GEMINI_API_KEY is not set: set it to start a bot on gemini" in result.stderr
    assert "Traceback" not in result.stderr
