"""Checks of a bot's configuration that need outside knowledge or more than one field.

Single-field limits (capital, interval, risk percentages, ...) are validators on the model, so
every surface inherits them. What needs the market data feed's markets, the LLM providers' models
or the pairing of mode, exchange and account lives here, and both the API serializer and the admin
form run it: a bot is held to the same rules whichever surface creates or edits it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from bots.models import MIN_STARTING_CAPITAL, Bot, quote_of
from marketdata.exceptions import FeedError

logger = logging.getLogger(__name__)

# Quotes worth about a dollar: in these the starting capital is at least MIN_STARTING_CAPITAL. In
# another quote (ETH/BTC trades in BTC) 100 units would be a fortune; there it must be positive.
USD_QUOTES = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDP", "PYUSD", "USDE"})


def config_problems(*, value: Callable[[str], Any], changed: Collection[str]) -> dict[str, list[str]]:
    """Field errors for a bot configuration; `value(name)` gives a field's new (or kept) value.

    Only the groups a change touches are checked, so an edit of the risk limits does not fail
    because the feed's market list is momentarily unavailable.
    """
    errors: dict[str, list[str]] = {}
    if {"provider", "model"} & set(changed):
        problem = model_problem(provider=value("provider") or Bot.Provider.BASELINE, model=value("model"))
        if problem:
            errors["model"] = [problem]
    symbols = value("symbols")
    if not (isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)):
        return errors  # not a list of names: the field's own validator says so
    if {"exchange", "symbols", "timeframe"} & set(changed):
        errors.update(
            market_problems(exchange=value("exchange") or "", symbols=symbols, timeframe=value("timeframe") or "")
        )
    if {"starting_capital", "symbols"} & set(changed):
        capital = value("starting_capital")
        quote = quote_of(symbols[0]) if symbols else ""
        if capital is not None and quote in USD_QUOTES and capital < MIN_STARTING_CAPITAL:
            errors["starting_capital"] = [
                f"Ensure this value is greater than or equal to {MIN_STARTING_CAPITAL} (in {quote})."
            ]
    mode, account = value("mode"), value("exchange_account")
    if mode == Bot.Mode.LIVE and account is None:
        errors["exchange_account"] = ["Live trading needs one of your exchange accounts."]
    elif mode == Bot.Mode.LIVE and {"mode", "exchange", "exchange_account"} & set(changed):
        from bots.services import live_exchange_problem

        problem = live_exchange_problem(exchange=value("exchange"), account_exchange=account.exchange)
        if problem:
            errors.setdefault("exchange", []).append(problem[0].upper() + problem[1:] + ".")
    return errors


def model_problem(*, provider: str, model: str | None) -> str:
    """Why this provider/model pair is unknown, or ""."""
    if not model:
        return "This field is required."
    if provider == Bot.Provider.BASELINE:
        from bots.baselines import BASELINES

        if model not in BASELINES:
            return f"Unknown baseline {model!r}; choose one of: {', '.join(sorted(BASELINES))}."
        return ""
    from bots.llm import PROVIDERS, known_models

    if provider not in PROVIDERS:
        return f"Provider {provider!r} is not available."
    models = known_models(provider)
    if models is not None and model not in models:
        return f"Unknown model {model!r} for {provider}; choose one of: {', '.join(models)}."
    return ""


def market_problems(*, exchange: str, symbols: list[str], timeframe: str) -> dict[str, list[str]]:
    """Field errors for markets the configured feed does not offer."""
    from marketdata.services import available_symbols, available_timeframes

    try:
        offered = available_symbols(exchange=exchange)
    except FeedError as exc:
        logger.info("markets of %r unavailable: %s", exchange, exc)
        return {"exchange": [f"The markets of {exchange!r} could not be loaded: {exc}"]}
    if exchange not in offered:
        choices = ", ".join(sorted(offered)) or "none"
        return {"exchange": [f"The market data feed does not offer {exchange!r} (offered: {choices})."]}
    unknown = [s for s in symbols if s not in offered[exchange]]
    if unknown:
        sample = ", ".join(offered[exchange][:20])
        return {"symbols": [f"Not offered on {exchange}: {', '.join(unknown)} (offered: {sample})."]}
    for symbol in symbols:
        try:
            timeframes = available_timeframes(exchange=exchange, symbol=symbol)
        except FeedError as exc:
            return {"timeframe": [f"The timeframes of {symbol} could not be loaded: {exc}"]}
        if timeframe not in timeframes:
            return {"timeframe": [f"{symbol} on {exchange} offers {', '.join(timeframes)}, not {timeframe!r}."]}
    return {}
