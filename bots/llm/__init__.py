"""LLM decision makers: Anthropic, OpenAI, DeepSeek, Gemini and any OpenAI-compatible server.

`build_decision_maker` returns the provider's `DecisionMaker` (see `bots.llm.base` for the flow
every provider shares); `ensure_configured` is called when a bot starts so a missing key or an
unpriced model is a clear error then, not a failure mid-cycle.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from bots.decisions import DecisionMaker
from bots.llm.base import LLMDecisionMaker
from bots.llm.exceptions import LLMNotConfigured
from bots.llm.pricing import price_table

PROVIDERS: tuple[str, ...] = ("anthropic", "openai", "deepseek", "gemini", "openai_compatible")


__all__ = [
    "PROVIDERS",
    "LLMNotConfigured",
    "build_decision_maker",
    "decision_maker_class",
    "ensure_configured",
    "known_models",
]


def decision_maker_class(provider: str) -> type[LLMDecisionMaker]:
    if provider == "anthropic":
        from bots.llm.claude import AnthropicDecisionMaker

        return AnthropicDecisionMaker
    if provider == "openai":
        from bots.llm.openai_chat import OpenAIChatDecisionMaker

        return OpenAIChatDecisionMaker
    if provider == "deepseek":
        from bots.llm.openai_chat import DeepSeekDecisionMaker

        return DeepSeekDecisionMaker
    if provider == "gemini":
        from bots.llm.gemini import GeminiDecisionMaker

        return GeminiDecisionMaker
    if provider == "openai_compatible":
        from bots.llm.openai_chat import OpenAICompatibleDecisionMaker

        return OpenAICompatibleDecisionMaker
    raise LLMNotConfigured(f"unknown LLM provider {provider!r}; choose one of {', '.join(PROVIDERS)}")


def known_models(provider: str) -> list[str] | None:
    """The models the price table knows for a provider; None means any name (openai_compatible)."""
    if provider == "openai_compatible":
        return None
    if provider not in PROVIDERS:
        return []
    return sorted(price_table().get(provider, {}))


def ensure_configured(*, provider: str, model: str) -> None:
    """Raise LLMNotConfigured, with a message for the user, if a bot could not run on this model."""
    if provider not in PROVIDERS:
        raise LLMNotConfigured(f"unknown LLM provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if not model or not model.strip():
        raise LLMNotConfigured(f"a model name is required for {provider}")
    # The API key; for a local server (usually keyless) its base URL.
    setting = decision_maker_class(provider).required_setting
    if not str(getattr(settings, setting, "") or "").strip():
        raise LLMNotConfigured(f"{setting} is not set: set it to start a bot on {provider}")
    models = known_models(provider)
    if models is not None and model not in models:
        raise LLMNotConfigured(
            f"{provider} model {model!r} has no price, so its cost could not be tracked: choose one of "
            f"{', '.join(models)}, or add its price to LLM_PRICES"
        )


def build_decision_maker(
    *, provider: str, model: str, bot_id: int | None, llm_daily_budget: Decimal | None
) -> DecisionMaker:
    """The decision maker of a bot on this provider and model (checked by ensure_configured)."""
    return decision_maker_class(provider)(model=model, bot_id=bot_id, llm_daily_budget=llm_daily_budget)
