"""Which decision maker drives a bot: a rule baseline or an LLM provider (bots.llm)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bots.decisions import DecisionMaker
from bots.exceptions import BotConfigurationError

if TYPE_CHECKING:
    from bots.models import Bot

BASELINE = "baseline"


def get_decision_maker(bot: Bot) -> DecisionMaker:
    if bot.provider == BASELINE:
        from bots.baselines import get_baseline

        return get_baseline(bot.model)
    from bots.llm import build_decision_maker

    return build_decision_maker(
        provider=bot.provider, model=bot.model, bot_id=bot.pk, llm_daily_budget=bot.llm_daily_budget
    )


def ensure_runnable(*, provider: str, model: str) -> None:
    """Raise BotConfigurationError (user-facing) if this provider/model cannot run here."""
    if provider == BASELINE:
        from bots.baselines import BASELINES

        if model not in BASELINES:
            raise BotConfigurationError(f"unknown baseline {model!r}; choose one of {', '.join(sorted(BASELINES))}")
        return
    from bots.llm import PROVIDERS, ensure_configured
    from bots.llm.exceptions import LLMNotConfigured

    if provider not in PROVIDERS:
        raise BotConfigurationError(f"unknown provider {provider!r}")
    try:
        ensure_configured(provider=provider, model=model)
    except LLMNotConfigured as exc:
        raise BotConfigurationError(str(exc)) from None
