"""The price table in force and the cost of a call.

The default prices are each provider's, in the registry (bots.providers); `LLM_PRICES` in the
environment overrides or extends them without a release. A model missing from the table cannot
start a bot on a paid provider (bots.providers.ensure_configured), so every call's cost is known.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from bots.providers import REGISTRY, ModelPrice

MILLION = Decimal(1_000_000)
# Cost is stored with 12 decimal places (bots.models.MONEY).
COST_QUANTUM = Decimal("0.000000000001")


def price_table() -> dict[str, dict[str, ModelPrice]]:
    """The default table with `settings.LLM_PRICES` applied (overrides and extra models)."""
    table = {name: dict(entry.prices) for name, entry in REGISTRY.items() if entry.is_llm}
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
