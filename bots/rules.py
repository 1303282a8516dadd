"""Every rule a bot's configuration must follow, in one place.

Every surface holds a bot to the same rules through this module: the model's field validators,
the API serializer, the admin form, the services (create, update, start, delete) and any form to
come. A form gets all its field errors from one call:

    errors = bot_config_errors(values={...proposed fields...}, bot=existing_or_None, changed=[...])

which returns `{"field": ["message", ...], "__all__": [...]}` (empty when the configuration may be
saved). The services raise `BotConfigurationError` / `InvalidTransition` with the same messages.

What needs outside knowledge is asked of its owner: the market data feed's markets
(marketdata.services), the provider registry's models and keys (bots.providers), the broker's
testnets (trading.brokers). Messages are written for the user; tests assert them word for word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from bots.exceptions import BotConfigurationError
from bots.llm.exceptions import LLMNotConfigured
from bots.providers import BASELINE, PROVIDERS, baseline_names, ensure_configured, known_models
from marketdata.exceptions import FeedError

if TYPE_CHECKING:
    from bots.models import Bot
    from trading.models import ExchangeAccount

logger = logging.getLogger(__name__)

NON_FIELD = "__all__"

# --- Limits of single fields (the model's validators) ----------------------------------------------

# In a dollar quote (USD_QUOTES) the starting capital is at least this; positive in another quote.
MIN_STARTING_CAPITAL = Decimal(100)
MAX_STARTING_CAPITAL = Decimal(1_000_000_000_000)
MAX_SYMBOLS = 20
MAX_TRADES_PER_DAY = 1000
MIN_INTERVAL_SECONDS = 5
# A day: the dispatcher computes slots as datetimes, and beyond this a cycle would never run.
MAX_INTERVAL_SECONDS = 86400
# Quotes worth about a dollar: in these the starting capital is at least MIN_STARTING_CAPITAL. In
# another quote (ETH/BTC trades in BTC) 100 units would be a fortune; there it must be positive.
USD_QUOTES = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "TUSD", "USDP", "PYUSD", "USDE"})
# Changing these after the bot traded would rewrite its history.
FROZEN_AFTER_START = ("starting_capital", "mode", "exchange_account")


def quote_of(symbol: str) -> str:
    """The quote currency of a ccxt symbol: `BTC/USD` → `USD`, `XRP/USDT:USDT` → `USDT`."""
    return symbol.split("/")[-1].split(":")[0]


def validate_positive(value: Decimal) -> None:
    if value <= 0:
        raise ValidationError("Ensure this value is greater than 0.")


def validate_symbols(symbols: Any) -> None:
    """A bot's symbols: a field validator, so a form that already flagged the field skips it."""
    if not isinstance(symbols, list) or not all(isinstance(s, str) and "/" in s for s in symbols):
        raise ValidationError('a list of symbols such as ["BTC/USD"]')
    if not symbols:
        raise ValidationError("at least one symbol")
    if len(symbols) > MAX_SYMBOLS:
        raise ValidationError(f"at most {MAX_SYMBOLS} symbols")
    if len(set(symbols)) != len(symbols):
        raise ValidationError("a symbol appears more than once")
    # One account, one currency: cash, margin and PnL of every symbol are in the same quote.
    quotes = sorted({quote_of(s) for s in symbols})
    if len(quotes) > 1:
        raise ValidationError(f"all symbols must share one quote currency (the account's); got {', '.join(quotes)}")


def duplicate_symbols_problem(symbols: list[str]) -> str:
    """Why a list of symbols as typed repeats one, or "" (the API's wording)."""
    return "Each symbol may appear only once." if len(set(symbols)) != len(symbols) else ""


def name_problem(*, owner_id: int | None, name: str, bot_id: int | None) -> str:
    """Why the name cannot be the bot's (blank, or another bot of the owner has it), or ""."""
    from bots.models import Bot

    if not name.strip():
        return "This field may not be blank."
    clash = Bot.objects.filter(owner_id=owner_id, name=name.strip())
    if bot_id is not None:
        clash = clash.exclude(pk=bot_id)
    return "You already have a bot with this name." if clash.exists() else ""


# --- Operator caps: the deployment's limits on every user's bots (settings) -------------------------
#
# Per bot (everyone, superusers included): a minimum interval (BOT_MIN_INTERVAL_SECONDS) and a
# maximum leverage (BOT_MAX_LEVERAGE; the risk manager also clamps bots made before a lower cap),
# and a default daily LLM budget for a new LLM bot (BOT_DEFAULT_LLM_DAILY_BUDGET). Per user
# (superusers exempt: the operator runs the platform and pays its keys): a number of bots not
# stopped (MAX_BOTS_PER_USER) and a daily LLM spend over all their bots (USER_LLM_DAILY_BUDGET).
# The fair share of each model's rate limit per user is the limiter's (bots.llm.ratelimit).


def min_interval_seconds() -> int:
    return int(settings.BOT_MIN_INTERVAL_SECONDS)


def max_leverage() -> Decimal:
    return Decimal(settings.BOT_MAX_LEVERAGE)


def effective_max_leverage(configured: Decimal) -> Decimal:
    """The leverage the risk manager allows a bot: its own limit within the operator's cap."""
    return min(configured, max_leverage())


def exempt_from_user_caps(owner: Any) -> bool:
    return bool(getattr(owner, "is_superuser", False))


def bots_per_user_problem(*, owner: Any) -> str:
    """Why this user may not have one more bot, or ""."""
    from bots.models import Bot

    cap = int(settings.MAX_BOTS_PER_USER)
    if owner is None or not cap or exempt_from_user_caps(owner):
        return ""
    running = Bot.objects.filter(owner=owner).exclude(status=Bot.Status.STOPPED).count()
    if running < cap:
        return ""
    return (
        f"You have {running} bots that are not stopped, the most this platform allows per user ({cap}): "
        "stop one to create another"
    )


def default_llm_budget(*, provider: str) -> Decimal | None:
    """The daily LLM budget (USD) a new bot on `provider` gets when it names none (None: no budget)."""
    if provider == BASELINE:
        return None
    budget = settings.BOT_DEFAULT_LLM_DAILY_BUDGET
    return None if budget is None else Decimal(budget)


def user_llm_daily_budget(*, owner: Any) -> Decimal | None:
    """What all of `owner`'s bots together may spend on LLM calls per UTC day (USD), or None."""
    budget = settings.USER_LLM_DAILY_BUDGET
    if budget is None or exempt_from_user_caps(owner):
        return None
    return Decimal(budget)


def cap_problems(*, value: Callable[[str], Any], changed: Collection[str]) -> dict[str, list[str]]:
    """Field errors for the operator's per-bot caps (only for the fields being set)."""
    errors: dict[str, list[str]] = {}
    interval = value("interval_seconds")
    if "interval_seconds" in changed and isinstance(interval, int) and interval < min_interval_seconds():
        errors["interval_seconds"] = [
            f"Ensure this value is greater than or equal to {min_interval_seconds()} (this platform's minimum "
            "interval, in seconds)."
        ]
    leverage = value("max_leverage")
    if "max_leverage" in changed and isinstance(leverage, Decimal) and leverage > max_leverage():
        errors["max_leverage"] = [
            f"Ensure this value is less than or equal to {max_leverage().normalize():f} (this platform's maximum "
            "leverage)."
        ]
    return errors


# --- The configuration as a whole -----------------------------------------------------------------


def bot_config_errors(
    *,
    values: Mapping[str, Any],
    bot: Bot | None,
    changed: Collection[str] | None = None,
    check_state: bool = True,
    owner: Any = None,
) -> dict[str, list[str]]:
    """Field errors of a proposed configuration: `values` are the fields a form sets, `bot` the bot
    being edited (None when creating). Empty when it may be saved.

    The dashboard's form (or any other) calls this alone. `changed` limits the checks to the groups
    the change touches (default: the fields in `values`, or everything for a new bot). With
    `check_state`, what the bot's state forbids (`change_problem`: it ran, holds a position, runs) is
    a non-field error too; the API leaves that to the service it calls, which refuses it the same.
    With `owner`, the configuration is a new bot of theirs, held to the bots-per-user cap.
    """
    from bots.models import Bot

    def value(name: str) -> Any:
        if name in values:
            return values[name]
        if bot is not None:
            return getattr(bot, name)
        field = Bot._meta.get_field(name)
        return field.get_default() if hasattr(field, "get_default") else None

    if changed is None:
        changed = set(values) if bot is not None else {*values, "provider", "model", "exchange"}
    errors = config_problems(value=value, changed=changed)
    for field, problems in cap_problems(value=value, changed=changed).items():
        errors.setdefault(field, []).extend(problems)
    if bot is None and owner is not None:
        problem = bots_per_user_problem(owner=owner)
        if problem:
            errors.setdefault(NON_FIELD, []).append(problem + ".")
    if check_state and bot is not None and not errors:
        problem = change_problem(bot=bot, fields={k: v for k, v in values.items() if k in changed})
        if problem:
            errors[NON_FIELD] = [problem + "."]
    return errors


def config_problems(*, value: Callable[[str], Any], changed: Collection[str]) -> dict[str, list[str]]:
    """Field errors for a bot configuration; `value(name)` gives a field's new (or kept) value.

    Only the groups a change touches are checked, so an edit of the risk limits does not fail
    because the feed's market list is momentarily unavailable.
    """
    from bots.models import Bot

    errors: dict[str, list[str]] = {}
    if {"provider", "model"} & set(changed):
        problem = model_problem(provider=value("provider") or BASELINE, model=value("model"))
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
        problem = live_exchange_problem(exchange=value("exchange"), account_exchange=account.exchange)
        if problem:
            errors.setdefault("exchange", []).append(problem[0].upper() + problem[1:] + ".")
    return errors


def account_owner_problem(*, owner_id: int | None, account: ExchangeAccount | None) -> str:
    """Why the bot cannot trade with this exchange account (another user's), or ""."""
    if owner_id is not None and account is not None and account.owner_id != owner_id:
        return "This exchange account belongs to another user."
    return ""


def model_problem(*, provider: str, model: str | None) -> str:
    """Why this provider/model pair is unknown, or ""."""
    if not model:
        return "This field is required."
    if provider == BASELINE:
        names = baseline_names()
        if model not in names:
            return f"Unknown baseline {model!r}; choose one of: {', '.join(names)}."
        return ""
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


def live_exchange_problem(*, exchange: str, account_exchange: str) -> str:
    """Why a live bot's market data is not the market its orders go to, or "".

    The model decides and the risk manager sizes on these prices, so they must be the prices of
    the exchange that fills the orders.
    """
    if exchange == account_exchange:
        return ""
    return (
        f"the bot reads market data from {exchange!r} but its exchange account trades on "
        f"{account_exchange!r}: a live bot must read the prices of the exchange it trades on"
    )


# --- What may change, start or go, given the bot's state -------------------------------------------


def change_problem(*, bot: Bot, fields: dict[str, Any]) -> str:
    """Why these changed settings cannot be applied to the bot as it is now, or ""."""
    from bots.models import Bot
    from trading.models import Position

    fields = {k: v for k, v in fields.items() if getattr(bot, k) != v}
    frozen = [k for k in FROZEN_AFTER_START if k in fields]
    has_run = bool(frozen or "symbols" in fields) and bot.cycles.exists()
    if frozen and has_run:
        return f"{', '.join(frozen)} cannot change after the bot has run; create a new bot"
    symbols = fields.get("symbols")
    if has_run and isinstance(symbols, list) and symbols and isinstance(symbols[0], str):
        # The account's money is in the quote currency: another quote would relabel it (10,000
        # USD becoming 10,000 BTC) and mix currencies in its history.
        quote = quote_of(symbols[0])
        if quote != bot.quote_currency:
            return (
                f"the quote currency cannot change after the bot has run (its account is in "
                f"{bot.quote_currency}, not {quote}); create a new bot"
            )
    if ("provider" in fields or "model" in fields) and bot.status in (Bot.Status.ACTIVE, Bot.Status.PAUSED):
        # A running bot must be able to ask its new decision maker: the same check as start.
        try:
            ensure_runnable(provider=fields.get("provider", bot.provider), model=fields.get("model", bot.model))
        except BotConfigurationError as exc:
            return str(exc)
    open_symbols = set(bot.positions.filter(status=Position.Status.OPEN).values_list("symbol", flat=True))
    if open_symbols:
        # The cycle watches a position's stop through the bot's market data: keep it in view.
        if "exchange" in fields or "timeframe" in fields:
            return "exchange and timeframe cannot change while a position is open; close it first"
        removed = open_symbols - set(fields.get("symbols", bot.symbols))
        if removed:
            return f"{', '.join(sorted(removed))} has an open position: close it before removing the symbol"
    if ("mode" in fields or "exchange_account" in fields) and bot.status != Bot.Status.INACTIVE:
        # Where and with what money the bot trades changes only while it is not running.
        return "mode and exchange account can change only while the bot is inactive"
    return ""


def ensure_runnable(*, provider: str, model: str) -> None:
    """Raise BotConfigurationError (user-facing) if this provider/model cannot run here."""
    if provider == BASELINE:
        names = baseline_names()
        if model not in names:
            raise BotConfigurationError(f"unknown baseline {model!r}; choose one of {', '.join(names)}")
        return
    if provider not in PROVIDERS:
        raise BotConfigurationError(f"unknown provider {provider!r}")
    try:
        ensure_configured(provider=provider, model=model)
    except LLMNotConfigured as exc:
        raise BotConfigurationError(str(exc)) from None


def ensure_startable(*, bot: Bot, confirm_live: bool) -> None:
    """Raise BotConfigurationError saying why the bot cannot start as configured."""
    from bots.models import Bot

    if not bot.symbols:
        raise BotConfigurationError("the bot has no symbols to trade")
    if bot.interval_seconds < min_interval_seconds():
        # The operator raised the minimum after this bot was made: it runs again once it follows it.
        raise BotConfigurationError(
            f"its interval ({bot.interval_seconds} s) is below this platform's minimum ({min_interval_seconds()} s): "
            "change it first"
        )
    ensure_runnable(provider=bot.provider, model=bot.model)
    if bot.mode != Bot.Mode.LIVE:
        return
    account = bot.exchange_account
    if account is None:
        raise BotConfigurationError("live trading needs an exchange account")
    if not (confirm_live or bot.live_confirmed):
        raise BotConfigurationError(
            "live trading places real orders with real money: confirm it explicitly (confirm_live)"
        )
    problem = live_exchange_problem(exchange=bot.exchange, account_exchange=account.exchange)
    if problem:
        raise BotConfigurationError(problem)
    if not account.testnet and settings.MARKET_DATA_FEED != "ccxt":
        # Real money is never traded on recorded candles; against a testnet, rehearsing on
        # recorded data is allowed (and is how the live path is tested offline).
        raise BotConfigurationError(
            f"real-money trading needs live market data, but MARKET_DATA_FEED is "
            f"{settings.MARKET_DATA_FEED!r} (recorded candles): set MARKET_DATA_FEED=ccxt"
        )
    _ensure_broker(account)


def _ensure_broker(account: ExchangeAccount) -> None:
    """A live bot whose broker cannot even be built (unknown exchange, no testnet) must not start."""
    from trading.brokers import broker_for_account
    from trading.brokers.base import BrokerError

    try:
        broker_for_account(account).close()
    except BrokerError as exc:
        raise BotConfigurationError(str(exc)) from None


def delete_problem(*, bot: Bot) -> str:
    """Why the bot cannot be deleted, or "".

    A bot that has run is never deleted: its books (cycles, orders, fills, positions, equity, LLM
    calls) are append-only, the record of what it did and what it cost, and deleting a bot that
    lost would flatter every comparison it was part of. It stays, stopped (a stopped bot never runs
    again). A bot that never ran has no books and may go.
    """
    from bots.models import Bot

    history = books_summary(bot=bot)
    if history:
        return (
            f"it has a trading history ({history}) and the books are append-only: a bot that has run is "
            "kept for the record; stop it instead (a stopped bot never runs again)"
        )
    if bot.status not in (Bot.Status.INACTIVE, Bot.Status.STOPPED):
        return f"stop the bot before deleting it (it is {bot.status})"
    if holds_anything(bot=bot):
        return "the bot still holds positions or open orders; its close-out must finish first"
    return ""


def books_summary(*, bot: Bot) -> str:
    """What the bot's books hold ("12 cycles, 3 orders"), or "" when it has none."""
    from trading.models import AccountAdjustment, EquitySnapshot

    counts = [
        (bot.cycles.count(), "cycle"),
        (bot.orders.count(), "order"),
        (EquitySnapshot.objects.filter(bot_id=bot.pk).count(), "equity point"),
        (bot.llm_calls.count(), "LLM call"),
        (AccountAdjustment.objects.filter(bot_id=bot.pk).count(), "adjustment"),
    ]
    return ", ".join(f"{n} {label}{'' if n == 1 else 's'}" for n, label in counts if n)


def user_delete_problem(*, user_id: int) -> str:
    """Why the user cannot be deleted, or "": a user whose bots have books keeps them (and the
    bots); deactivate the account instead."""
    from bots.models import Bot, Cycle
    from trading.models import AccountAdjustment, Order

    bots = Bot.objects.filter(owner_id=user_id)
    if (
        Cycle.objects.filter(bot__in=bots).exists()
        or Order.objects.filter(bot__in=bots).exists()
        or AccountAdjustment.objects.filter(Q(bot__in=bots) | Q(created_by_id=user_id)).exists()
    ):
        return (
            "their bots have trading history and the books are append-only: deactivate the user "
            "instead (untick Active); their bots and books stay"
        )
    return ""


def holds_anything(*, bot: Bot) -> bool:
    """An open position or an order still working on the exchange."""
    from trading.models import Order, Position

    return (
        bot.positions.filter(status=Position.Status.OPEN).exists()
        or bot.orders.filter(status__in=Order.ACTIVE_STATUSES).exists()
    )


def exchange_account_live_bots_problem(*, account: ExchangeAccount, exchange: str, testnet: bool) -> str:
    """Why the account cannot move to `exchange`/`testnet` now, or "".

    A live bot's orders and exits go through this account: moving it to another exchange, or
    between testnet and real money, would orphan what the bot holds there. Leaving the testnet for
    real money is the one move a running bot survives (it pauses until its owner confirms live
    trading again: bots.services.exchange_account_update), as long as it holds no test position.
    """
    from bots.models import Bot
    from trading.models import ExchangeAccount, Position

    if account.pk is None:
        return ""
    before = ExchangeAccount.objects.filter(pk=account.pk).values("exchange", "testnet").first()
    if before is None or (before["exchange"], before["testnet"]) == (exchange, testnet):
        return ""
    live = Bot.objects.filter(exchange_account_id=account.pk, mode=Bot.Mode.LIVE)
    leaving_testnet = before["exchange"] == exchange and before["testnet"] and not testnet
    busy = live.filter(positions__status=Position.Status.OPEN)
    if not leaving_testnet:
        busy = live.filter(
            Q(status__in=(Bot.Status.ACTIVE, Bot.Status.PAUSED)) | Q(positions__status=Position.Status.OPEN)
        )
    if not busy.exists():
        return ""
    names = ", ".join(sorted({b.name for b in busy[:5]}))
    return f"live bots use this account ({names}): stop them before changing exchange or testnet"
