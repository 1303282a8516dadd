"""The decision-maker providers: one registry from which everything about a provider is derived.

Each entry says, for the rule baseline and for each LLM provider: its display name, the settings
that hold its key and its endpoint, which of them it cannot run without, how its decision maker is
built, which models it knows and their list prices (USD per million tokens). From this one table
come the bot model's provider choices, the API catalog, `LLM_PRICES`' provider names, the checks
that a provider is configured (`ensure_configured`, when a bot starts and at each request) and the
factory (`build_decision_maker`). Adding a provider is adding an entry here, its settings (and
README rows) and its decision-maker module.

Prices are the providers' published list prices for standard requests (no batch, no cache
discount, no long-context tier) as checked in November 2026; `LLM_PRICES` in the environment
overrides or extends them without a release (bots.llm.pricing). A model missing from the table
cannot start a bot on a paid provider, so every call's cost is known. Models of `openai_compatible`
servers cost nothing unless `LLM_PRICES` gives them a price: they are usually local.

Light on purpose: no Django model and no SDK is imported here (settings import it), and each
decision maker's module is imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings

from bots.llm.exceptions import LLMNotConfigured

if TYPE_CHECKING:
    from bots.decisions import DecisionMaker
    from bots.llm.base import LLMDecisionMaker
    from bots.models import Bot


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: Decimal  # USD per million input tokens
    output: Decimal  # USD per million output tokens (reasoning/thinking tokens are billed as output)


def _p(input_price: str, output_price: str) -> ModelPrice:
    return ModelPrice(Decimal(input_price), Decimal(output_price))


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # stored on the bot (`Bot.provider`)
    label: str  # shown to users
    # "module:attribute" of the decision maker: an LLMDecisionMaker subclass, or for the baseline
    # the function that builds a baseline by name. Imported on first use.
    maker: str
    key_setting: str = ""  # the setting holding the API key
    base_url_setting: str = ""  # the setting holding the endpoint
    # The setting without which no request can be made: the API key, or a local server's URL.
    required_setting: str = ""
    any_model: bool = False  # any model name is accepted (a local server's); else the priced ones
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    @property
    def is_llm(self) -> bool:
        return self.name != BASELINE


BASELINE = "baseline"

REGISTRY: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(name=BASELINE, label="Rule baseline (no LLM)", maker="bots.baselines:get_baseline"),
        Provider(
            name="anthropic",
            label="Anthropic (Claude)",
            maker="bots.llm.claude:AnthropicDecisionMaker",
            key_setting="ANTHROPIC_API_KEY",
            base_url_setting="ANTHROPIC_BASE_URL",
            required_setting="ANTHROPIC_API_KEY",
            prices={
                # platform.claude.com pricing and model pages.
                "claude-fable-5-1": _p("10", "50"),
                "claude-fable-5": _p("10", "50"),
                "claude-opus-5-5": _p("4", "20"),
                "claude-opus-5": _p("5", "25"),
                "claude-sonnet-5-5": _p("2", "10"),
                "claude-sonnet-5": _p("2", "10"),
                "claude-opus-4-8": _p("5", "25"),
                "claude-opus-4-7": _p("5", "25"),
                "claude-opus-4-6": _p("5", "25"),
                "claude-opus-4-5": _p("5", "25"),
                "claude-opus-4-5-20251101": _p("5", "25"),
                "claude-opus-4-1": _p("15", "75"),
                "claude-opus-4-1-20250805": _p("15", "75"),
                "claude-sonnet-4-6": _p("3", "15"),
                "claude-sonnet-4-5": _p("3", "15"),
                "claude-sonnet-4-5-20250929": _p("3", "15"),
                "claude-sonnet-4-0": _p("3", "15"),
                "claude-sonnet-4-20250514": _p("3", "15"),
                "claude-haiku-4-5": _p("1", "5"),
                "claude-haiku-4-5-20251001": _p("1", "5"),
            },
        ),
        Provider(
            name="openai",
            label="OpenAI (GPT)",
            maker="bots.llm.openai_chat:OpenAIChatDecisionMaker",
            key_setting="OPENAI_API_KEY",
            base_url_setting="OPENAI_BASE_URL",
            required_setting="OPENAI_API_KEY",
            prices={
                "gpt-6-sol": _p("2", "10"),
                "gpt-6-luna": _p("0.10", "0.50"),
                "gpt-5.4": _p("2.50", "15"),
                "gpt-5.2": _p("1.75", "14"),
                "gpt-5.1": _p("1.25", "10"),
                "gpt-5": _p("1.25", "10"),
                "gpt-5-mini": _p("0.25", "2"),
                "gpt-5-nano": _p("0.05", "0.40"),
                "gpt-4.1": _p("2", "8"),
                "gpt-4.1-mini": _p("0.40", "1.60"),
                "gpt-4.1-nano": _p("0.10", "0.40"),
                "gpt-4o": _p("2.50", "10"),
                "gpt-4o-mini": _p("0.15", "0.60"),
                "o3": _p("2", "8"),
                "o4-mini": _p("1.10", "4.40"),
            },
        ),
        Provider(
            name="deepseek",
            label="DeepSeek",
            maker="bots.llm.openai_chat:DeepSeekDecisionMaker",
            key_setting="DEEPSEEK_API_KEY",
            base_url_setting="DEEPSEEK_BASE_URL",
            required_setting="DEEPSEEK_API_KEY",
            prices={
                "deepseek-v4-pro": _p("1.74", "3.48"),
                "deepseek-v4-flash": _p("0.14", "0.28"),
                # Legacy names, now aliases of deepseek-v4-flash (non-thinking / thinking) and billed as it.
                "deepseek-chat": _p("0.14", "0.28"),
                "deepseek-reasoner": _p("0.14", "0.28"),
            },
        ),
        Provider(
            name="gemini",
            label="Google Gemini",
            maker="bots.llm.gemini:GeminiDecisionMaker",
            key_setting="GEMINI_API_KEY",
            base_url_setting="GEMINI_BASE_URL",
            required_setting="GEMINI_API_KEY",
            prices={
                # Prompts up to 200k tokens (ours are far smaller).
                "gemini-2.5-pro": _p("1.25", "10"),
                "gemini-2.5-flash": _p("0.30", "2.50"),
                "gemini-2.5-flash-lite": _p("0.10", "0.40"),
            },
        ),
        Provider(
            name="openai_compatible",
            label="OpenAI-compatible server",
            maker="bots.llm.openai_chat:OpenAICompatibleDecisionMaker",
            key_setting="OPENAI_COMPATIBLE_API_KEY",
            base_url_setting="OPENAI_COMPATIBLE_BASE_URL",
            # A local server is usually keyless: its URL is what it cannot run without.
            required_setting="OPENAI_COMPATIBLE_BASE_URL",
            any_model=True,
        ),
    )
}

# The LLM providers, in the registry's order (every provider but the baseline).
PROVIDERS: tuple[str, ...] = tuple(name for name, p in REGISTRY.items() if p.is_llm)


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) of every provider, the baseline first: the bot model's choices."""
    return [(p.name, p.label) for p in REGISTRY.values()]


def provider(name: str) -> Provider:
    """The registry's entry of an LLM provider; LLMNotConfigured naming the choices otherwise."""
    entry = REGISTRY.get(name)
    if entry is None or not entry.is_llm:
        raise LLMNotConfigured(f"unknown LLM provider {name!r}; choose one of {', '.join(PROVIDERS)}")
    return entry


def _attribute(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def decision_maker_class(name: str) -> type[LLMDecisionMaker]:
    """The decision-maker class of an LLM provider."""
    cls: type[LLMDecisionMaker] = _attribute(provider(name).maker)
    return cls


def known_models(name: str) -> list[str] | None:
    """The models the price table knows for an LLM provider; None means any name (a local server)."""
    entry = REGISTRY.get(name)
    if entry is None or not entry.is_llm:
        return []
    if entry.any_model:
        return None
    from bots.llm.pricing import price_table

    return sorted(price_table().get(name, {}))


def baseline_names() -> list[str]:
    """The rule baselines a bot can run (bots.baselines)."""
    from bots.baselines import BASELINES

    return sorted(BASELINES)


def ensure_configured(*, provider: str, model: str) -> None:
    """Raise LLMNotConfigured, with a message for the user, if a bot could not run on this model."""
    entry = REGISTRY.get(provider)
    if entry is None or not entry.is_llm:
        raise LLMNotConfigured(f"unknown LLM provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if not model or not model.strip():
        raise LLMNotConfigured(f"a model name is required for {provider}")
    setting = entry.required_setting
    if not str(getattr(settings, setting, "") or "").strip():
        raise LLMNotConfigured(f"{setting} is not set: set it to start a bot on {provider}")
    models = known_models(provider)
    if models is not None and model not in models:
        raise LLMNotConfigured(
            f"{provider} model {model!r} has no price, so its cost could not be tracked: choose one of "
            f"{', '.join(models)}, or add its price to LLM_PRICES"
        )


def build_decision_maker(
    *,
    provider: str,
    model: str,
    bot_id: int | None,
    llm_daily_budget: Decimal | None,
    owner_id: int | None = None,
    user_daily_budget: Decimal | None = None,
) -> DecisionMaker:
    """The decision maker of a bot on this LLM provider and model (checked by ensure_configured)."""
    return decision_maker_class(provider)(
        model=model,
        bot_id=bot_id,
        llm_daily_budget=llm_daily_budget,
        owner_id=owner_id,
        user_daily_budget=user_daily_budget,
    )


def get_decision_maker(bot: Bot) -> DecisionMaker:
    """The decision maker that drives a bot: its rule baseline or its LLM provider and model."""
    if bot.provider == BASELINE:
        maker: DecisionMaker = _attribute(REGISTRY[BASELINE].maker)(bot.model)
        return maker
    from bots.rules import user_llm_daily_budget  # the rules import this registry

    return build_decision_maker(
        provider=bot.provider,
        model=bot.model,
        bot_id=bot.pk,
        llm_daily_budget=bot.llm_daily_budget,
        owner_id=bot.owner_id,
        user_daily_budget=user_llm_daily_budget(owner=bot.owner),
    )
