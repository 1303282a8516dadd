"""Configuration: clear errors when a bot starts, the price table and its LLM_PRICES override."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from bots.llm.exceptions import LLMNotConfigured
from bots.llm.pricing import cost_of, price_for
from bots.models import Bot
from bots.providers import PROVIDERS, build_decision_maker, ensure_configured, known_models
from tradingagent.settings import _llm_prices


def test_providers_are_the_bot_provider_choices() -> None:
    assert set(PROVIDERS) == {value for value, _ in Bot.Provider.choices} - {"baseline"}


@pytest.mark.parametrize(
    ("provider", "setting"),
    [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
        ("deepseek", "DEEPSEEK_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
        ("openai_compatible", "OPENAI_COMPATIBLE_BASE_URL"),
    ],
)
def test_missing_key_is_a_clear_error(settings: Any, provider: str, setting: str) -> None:
    setattr(settings, setting, "")
    model = (known_models(provider) or ["llama3.1:8b"])[0]

    with pytest.raises(LLMNotConfigured, match=f"^{setting} is not set: set it to start a bot on {provider}$"):
        ensure_configured(provider=provider, model=model)

    setattr(settings, setting, "configured")
    ensure_configured(provider=provider, model=model)


def test_unpriced_model_and_unknown_provider_are_refused(settings: Any) -> None:
    settings.OPENAI_API_KEY = "sk-test"
    with pytest.raises(LLMNotConfigured, match="'gpt-9-imaginary' has no price.*LLM_PRICES"):
        ensure_configured(provider="openai", model="gpt-9-imaginary")
    with pytest.raises(LLMNotConfigured, match="unknown LLM provider 'baseline'"):
        ensure_configured(provider="baseline", model="ema_rsi")
    with pytest.raises(LLMNotConfigured, match="a model name is required"):
        ensure_configured(provider="openai", model=" ")
    # A price in LLM_PRICES makes the model usable.
    settings.LLM_PRICES = {"openai": {"gpt-9-imaginary": {"input": "3", "output": "12"}}}
    ensure_configured(provider="openai", model="gpt-9-imaginary")
    assert "gpt-9-imaginary" in (known_models("openai") or [])


def test_known_models() -> None:
    assert known_models("openai_compatible") is None  # any model name of a local server
    assert "claude-sonnet-4-6" in (known_models("anthropic") or [])
    assert {"gemini-2.5-pro", "gemini-2.5-flash"} <= set(known_models("gemini") or [])
    assert {"deepseek-chat", "deepseek-reasoner"} <= set(known_models("deepseek") or [])
    assert {"gpt-5", "gpt-4.1", "gpt-4o"} <= set(known_models("openai") or [])


def test_cost_from_the_price_table(settings: Any) -> None:
    settings.LLM_PRICES = {}
    assert cost_of(provider="anthropic", model="claude-opus-4-1", input_tokens=2000, output_tokens=1000) == Decimal(
        "0.105"
    )
    assert cost_of(provider="openai_compatible", model="qwen3:8b", input_tokens=10**6, output_tokens=10**6) == 0
    settings.LLM_PRICES = {"anthropic": {"claude-opus-4-1": {"input": "1", "output": "2"}}}
    assert price_for("anthropic", "claude-opus-4-1") is not None
    assert cost_of(provider="anthropic", model="claude-opus-4-1", input_tokens=2000, output_tokens=1000) == Decimal(
        "0.004"
    )


def test_llm_prices_parsing() -> None:
    assert _llm_prices("") == {}
    assert _llm_prices('{"gemini": {"gemini-3-pro": {"input": 2, "output": 12.5}}}') == {
        "gemini": {"gemini-3-pro": {"input": "2", "output": "12.5"}}
    }
    for bad, message in [
        ("{not json", "LLM_PRICES is not valid JSON"),
        ("[1, 2]", "LLM_PRICES must be a JSON object"),
        ('{"mistral": {}}', "LLM_PRICES: unknown provider 'mistral'"),
        ('{"openai": {"gpt-5": {"input": 1}}}', r"LLM_PRICES\['openai'\]\['gpt-5'\] must be"),
        ('{"openai": {"gpt-5": {"input": -1, "output": 2}}}', "must be a number >= 0"),
        ('{"openai": {"gpt-5": {"input": "cheap", "output": 2}}}', "must be a number >= 0"),
    ]:
        with pytest.raises(ImproperlyConfigured, match=message):
            _llm_prices(bad)


def test_build_decision_maker_for_every_provider() -> None:
    for provider in PROVIDERS:
        maker = build_decision_maker(provider=provider, model="m", bot_id=7, llm_daily_budget=Decimal("1.5"))
        assert (maker.provider, maker.model) == (provider, "m")


def test_every_setting_the_registry_names_exists_and_is_documented() -> None:
    from django.conf import settings

    from bots.providers import REGISTRY
    from tests.test_settings_env import BASE_DIR

    readme = (BASE_DIR / "README.md").read_text()
    for entry in REGISTRY.values():
        for name in filter(None, (entry.key_setting, entry.base_url_setting, entry.required_setting)):
            assert hasattr(settings, name), f"{entry.name}: settings has no {name}"
            assert f"| `{name}` |" in readme, f"{entry.name}: {name} is not in the README's table"
        # The factory builds every LLM provider's decision maker from the registry's entry.
        if entry.is_llm:
            assert entry.required_setting in (entry.key_setting, entry.base_url_setting)
