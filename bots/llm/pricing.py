"""Per-model list prices (USD per million tokens) and the cost of a call.

The defaults are the providers' published list prices for standard requests (no batch, no cache
discount, no long-context tier) as checked in November 2026; `LLM_PRICES` in the environment
overrides or extends them without a release. A model missing from the table cannot start a bot on
a paid provider (see `bots.llm.ensure_configured`), so every call's cost is known. Models of
`openai_compatible` servers cost nothing unless `LLM_PRICES` gives them a price: they are usually
local.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

MILLION = Decimal(1_000_000)
# Cost is stored with 12 decimal places (bots.models.MONEY).
COST_QUANTUM = Decimal("0.000000000001")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: Decimal  # USD per million input tokens
    output: Decimal  # USD per million output tokens (reasoning/thinking tokens are billed as output)


def _p(input_price: str, output_price: str) -> ModelPrice:
    return ModelPrice(Decimal(input_price), Decimal(output_price))


DEFAULT_PRICES: dict[str, dict[str, ModelPrice]] = {
    "anthropic": {
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
    "openai": {
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
    "deepseek": {
        "deepseek-v4-pro": _p("1.74", "3.48"),
        "deepseek-v4-flash": _p("0.14", "0.28"),
        # Legacy names, now aliases of deepseek-v4-flash (non-thinking / thinking) and billed as it.
        "deepseek-chat": _p("0.14", "0.28"),
        "deepseek-reasoner": _p("0.14", "0.28"),
    },
    "gemini": {
        # Prompts up to 200k tokens (ours are far smaller).
        "gemini-2.5-pro": _p("1.25", "10"),
        "gemini-2.5-flash": _p("0.30", "2.50"),
        "gemini-2.5-flash-lite": _p("0.10", "0.40"),
    },
    "openai_compatible": {},
}


def price_table() -> dict[str, dict[str, ModelPrice]]:
    """The default table with `settings.LLM_PRICES` applied (overrides and extra models)."""
    table = {provider: dict(models) for provider, models in DEFAULT_PRICES.items()}
    overrides: dict[str, dict[str, dict[str, str]]] = getattr(settings, "LLM_PRICES", {}) or {}
    for provider, models in overrides.items():
        for model, price in models.items():
            table.setdefault(provider, {})[model] = ModelPrice(Decimal(price["input"]), Decimal(price["output"]))
    return table


def price_for(provider: str, model: str) -> ModelPrice | None:
    """The model's price, or None when the table does not know it (free for openai_compatible)."""
    return price_table().get(provider, {}).get(model)


def cost_of(*, provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """USD cost of one call at list price; zero for a model without a price (a local server)."""
    price = price_for(provider, model)
    if price is None:
        return Decimal(0)
    cost = (Decimal(input_tokens) * price.input + Decimal(output_tokens) * price.output) / MILLION
    return cost.quantize(COST_QUANTUM)
