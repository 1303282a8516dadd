"""Bots, the write side: lifecycle commands, the lease, and the dispatcher's claim.

Status machine: inactive → active ⇄ paused → stopped (stopped is final). Every transition is a
conditional UPDATE guarded by the expected current status, so two concurrent commands cannot both
win (the loser gets InvalidTransition).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alerts import realtime
from alerts.services import AlertKind, Event, Severity, alert_raise
from bots.decision_makers import ensure_runnable
from bots.exceptions import BotBusy, BotConfigurationError, BotError, InvalidTransition
from bots.models import Bot, quote_of
from trading.models import Order, Position
from trading.numbers import money

logger = logging.getLogger(__name__)

# Fields a user sets; everything else on Bot is state the platform owns.
EDITABLE_FIELDS = (
    "name",
    "provider",
    "model",
    "exchange",
    "symbols",
    "timeframe",
    "starting_capital",
    "max_position_pct",
    "max_leverage",
    "max_exposure_pct",
    "max_trades_per_day",
    "daily_loss_limit_pct",
    "max_drawdown_pct",
    "llm_daily_budget",
    "mode",
    "exchange_account",
    "live_confirmed",
    "interval_seconds",
)
# Changing these after the bot traded would rewrite its history.
FROZEN_AFTER_START = ("starting_capital", "mode", "exchange_account")


# --- Slots -----------------------------------------------------------------------------------------


def slot_floor(*, at: datetime, interval_seconds: int) -> datetime:
    """The slot containing `at`. Slots sit on a grid of the interval from the epoch, so bots with
    the same interval share slots, and with them the same market snapshot."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_seconds, tz=UTC)


def next_slot_after(*, slot: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The first slot on the grid later than both `slot` and `now` (missed slots are skipped)."""
    return max(slot, slot_floor(at=now, interval_seconds=interval_seconds)) + timedelta(seconds=interval_seconds)


def first_slot(*, bot: Bot) -> datetime:
    """The slot a (re)started bot runs first: the current grid slot, or now when that slot has
    already run (a resumed bot must not wait a whole interval)."""
    now = timezone.now()
    slot = slot_floor(at=now, interval_seconds=bot.interval_seconds)
    if bot.pk is not None and bot.cycles.filter(slot=slot).exists():
        return now.replace(microsecond=0)
    return slot


# --- Create / update -------------------------------------------------------------------------------


def bot_create(*, owner: User, data: dict[str, Any]) -> Bot:
    """Create a bot (inactive) with its paper account funded with the starting capital."""
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    bot = Bot(owner=owner, **fields)
    capital = bot.starting_capital
    bot.cash = capital
    bot.peak_equity = capital
    bot.day_start_equity = capital
    bot.day_start_date = timezone.now().date()
    bot.full_clean()
    bot.save()
    return bot


def bot_update(*, bot: Bot, data: dict[str, Any]) -> Bot:
    """Change a bot's settings; capital, mode and account are frozen once it has run, and the
    markets of an open position cannot be taken away from it."""
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS and getattr(bot, k) != v}
    problem = bot_change_problem(bot=bot, fields=fields)
    if problem:
        raise BotConfigurationError(problem)
    has_run = bot.cycles.exists()
    for key, value in fields.items():
        setattr(bot, key, value)
    update = [*fields, "updated_at"]
    if ("mode" in fields or "exchange_account" in fields) and data.get("live_confirmed") is not True:
        # A switch of where the bot trades must be confirmed again (at start, or by the admin
        # form's confirmation box ticked in the same edit).
        bot.live_confirmed = False
        update.append("live_confirmed")
    if "starting_capital" in fields and not has_run:
        bot.cash = bot.peak_equity = bot.day_start_equity = bot.starting_capital
        update += ["cash", "peak_equity", "day_start_equity"]
    bot.full_clean()
    # Only the fields that changed: the row's state (cash, status, lease) moves under us while a
    # request is validated, and writing back a stale copy would undo fills or a breaker.
    bot.save(update_fields=update)
    if "interval_seconds" in fields:
        Bot.objects.filter(pk=bot.pk, status=Bot.Status.ACTIVE).update(next_cycle_at=first_slot(bot=bot))
    return bot


def bot_change_problem(*, bot: Bot, fields: dict[str, Any]) -> str:
    """Why these changed settings cannot be applied to the bot as it is now, or ""."""
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


def bot_delete_problem(*, bot: Bot) -> str:
    """Why the bot cannot be deleted now, or "": deleting would drop positions no one closes."""
    if bot.status not in (Bot.Status.INACTIVE, Bot.Status.STOPPED):
        return f"stop the bot before deleting it (it is {bot.status})"
    if _holds_anything(bot):
        return "the bot still holds positions or open orders; its close-out must finish first"
    return ""


def _holds_anything(bot: Bot) -> bool:
    """An open position or an order still working on the exchange."""
    return (
        bot.positions.filter(status=Position.Status.OPEN).exists()
        or bot.orders.filter(status__in=Order.ACTIVE_STATUSES).exists()
    )


def bot_delete(*, bot: Bot) -> None:
    """Delete a bot that holds nothing (the API and the admin both delete through here)."""
    problem = bot_delete_problem(bot=bot)
    if problem:
        raise InvalidTransition(problem)
    bot.delete()


# --- Lifecycle -------------------------------------------------------------------------------------


def _transition(*, bot: Bot, allowed_from: tuple[str, ...], to: str, reason: str = "", **extra: Any) -> Bot:
    updated = Bot.objects.filter(pk=bot.pk, status__in=allowed_from).update(
        status=to, status_reason=reason[:300], updated_at=timezone.now(), **extra
    )
    if not updated:
        bot.refresh_from_db(fields=["status"])
        raise InvalidTransition(f"cannot go from {bot.status} to {to}")
    bot.refresh_from_db()
    realtime.publish_bot_status(bot)
    return bot


def bot_start(*, bot: Bot, confirm_live: bool = False) -> Bot:
    """Activate a bot; its first cycle runs within one dispatcher tick."""
    if not bot.symbols:
        raise BotConfigurationError("the bot has no symbols to trade")
    ensure_runnable(provider=bot.provider, model=bot.model)
    if bot.mode == Bot.Mode.LIVE:
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
        _ensure_broker(bot)
    extra: dict[str, Any] = {
        "next_cycle_at": first_slot(bot=bot),
        "consecutive_failures": 0,
    }
    if bot.mode == Bot.Mode.LIVE:
        extra["live_confirmed"] = True
    return _transition(bot=bot, allowed_from=(Bot.Status.INACTIVE, Bot.Status.PAUSED), to=Bot.Status.ACTIVE, **extra)


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


def _ensure_broker(bot: Bot) -> None:
    """A live bot whose broker cannot even be built (unknown exchange, no testnet) must not start."""
    from trading.brokers import broker_for_account
    from trading.brokers.base import BrokerError

    assert bot.exchange_account is not None
    try:
        broker_for_account(bot.exchange_account).close()
    except BrokerError as exc:
        raise BotConfigurationError(str(exc)) from None


def bot_pause(*, bot: Bot, reason: str = "paused by the owner") -> Bot:
    """No new decisions; open positions keep their stop-loss and take-profit (protect cycles)."""
    bot = _transition(bot=bot, allowed_from=(Bot.Status.ACTIVE,), to=Bot.Status.PAUSED, reason=reason)
    alert_raise(
        owner_id=bot.owner_id,
        bot_id=bot.pk,
        kind=AlertKind.SYSTEM,
        event=Event.BOT_PAUSED,
        message=f"{bot.name} paused: {reason}",
        payload={"reason": reason},
    )
    return bot


@dataclass(frozen=True, slots=True)
class StopResult:
    closed_positions: int
    realized_pnl: Decimal
    canceled_orders: int


def bot_stop(*, bot: Bot, reason: str = "stopped by the owner", lease_wait_seconds: float = 20.0) -> StopResult:
    """Stop for good: cancel open orders and close every position at market. No decision maker is
    called, so this works when every LLM is down.

    Idempotent: stopping a stopped bot closes whatever is still open. If a running cycle holds
    the lease longer than `lease_wait_seconds` (BotBusy), or the exchange fails, the bot is stopped
    anyway and the dispatcher runs a close-out cycle for it within one tick.
    """
    from bots.cycle import bot_close_out

    stopped_now = False
    # Whether there is anything to close: if so, the stop that closes it tells the owner.
    held = _holds_anything(bot)
    if bot.status != Bot.Status.STOPPED:
        # next_cycle_at = now: if the closing below cannot finish, a close-out cycle will.
        try:
            _transition(
                bot=bot,
                allowed_from=(Bot.Status.INACTIVE, Bot.Status.ACTIVE, Bot.Status.PAUSED),
                to=Bot.Status.STOPPED,
                reason=reason,
                next_cycle_at=timezone.now(),
            )
            stopped_now = True
        except InvalidTransition:
            # A concurrent stop won the transition: this one is a repeat, answered the same way.
            if bot.status != Bot.Status.STOPPED:
                raise
    # A cycle already running finishes its current stage; wait for its lease so the closing below
    # cannot interleave with its orders. The status change above stops it from opening more.
    owner = f"stop:{uuid.uuid4().hex[:12]}"
    if not bot_lease_acquire(bot_id=bot.pk, owner=owner, wait_seconds=lease_wait_seconds):
        raise BotBusy(
            "a running cycle of this bot did not finish in time; the bot is stopped and its positions "
            "are closed as soon as the cycle ends"
        )
    try:
        closed, realized, canceled = bot_close_out(bot=bot)
    finally:
        bot_lease_release(bot_id=bot.pk, owner=owner)
    bot.refresh_from_db()
    if closed or canceled or (stopped_now and not held):
        # One alert per stop: from the call that closed something, or that stopped an empty bot;
        # a repeat (or a racing twin) that found nothing left to close says nothing new.
        alert_raise(
            owner_id=bot.owner_id,
            bot_id=bot.pk,
            kind=AlertKind.SYSTEM,
            event=Event.BOT_STOPPED,
            message=(
                f"{bot.name} stopped: {closed} position(s) closed, realized PnL after fees "
                f"{money(realized, currency=bot.quote_currency)}"
            ),
            payload={"closed_positions": closed, "realized_pnl": str(realized), "canceled_orders": canceled},
        )
    return StopResult(closed_positions=closed, realized_pnl=realized, canceled_orders=canceled)


def bot_trip_breaker(*, bot: Bot, breaker: str, reason: str) -> None:
    """Pause an active bot because a breaker tripped, and tell its owner."""
    updated = Bot.objects.filter(pk=bot.pk, status=Bot.Status.ACTIVE).update(
        status=Bot.Status.PAUSED, status_reason=f"{breaker}: {reason}"[:300], updated_at=timezone.now()
    )
    if not updated:
        return
    bot.refresh_from_db()
    realtime.publish_bot_status(bot)
    alert_raise(
        owner_id=bot.owner_id,
        bot_id=bot.pk,
        kind=AlertKind.RISK,
        severity=Severity.CRITICAL,
        event=Event.BREAKER_TRIPPED,
        message=f"{bot.name} paused by the {breaker} breaker: {reason}",
        payload={"breaker": breaker, "reason": reason},
    )


@dataclass(frozen=True, slots=True)
class CloseResult:
    position_id: int
    symbol: str
    closed: bool
    exit_price: Decimal | None
    net_pnl: Decimal | None  # after every fee of the position
    order_status: str  # of the exit order: `unknown` while a live exchange has not confirmed it


def position_close(*, bot: Bot, symbol: str, user: User | None = None, lease_wait_seconds: float = 20.0) -> CloseResult:
    """Close the bot's open position on `symbol` at market now: a manual exit by `user`.

    Works in any status (a paused or stopped bot too) and calls no decision maker. Takes the
    bot's lease like `bot_stop`, so it never interleaves with a running cycle's orders (BotBusy if
    the cycle does not finish within `lease_wait_seconds`). The exit order is keyed by the position,
    so a repeated close never sends a second order. Raises InvalidTransition when there is no open
    position on `symbol`, BotError when no price or exchange is available (the position stays open).
    """
    from bots.cycle import broker_for_bot, markets_now
    from trading.brokers.base import BrokerError
    from trading.services import position_close as trading_position_close

    if not bot.positions.filter(status=Position.Status.OPEN, symbol=symbol).exists():
        raise InvalidTransition(f"{bot.name} has no open position on {symbol}")
    owner = f"close:{uuid.uuid4().hex[:12]}"
    if not bot_lease_acquire(bot_id=bot.pk, owner=owner, wait_seconds=lease_wait_seconds):
        raise BotBusy("a running cycle of this bot did not finish in time; try the close again in a moment")
    try:
        # Read again under the lease: a cycle that just ended may have closed it (stop-loss).
        position = bot.positions.filter(status=Position.Status.OPEN, symbol=symbol).first()
        if position is None:
            raise InvalidTransition(f"{bot.name} has no open position on {symbol} (it was closed a moment ago)")
        broker = None
        try:
            broker = broker_for_bot(bot)
            market = markets_now(bot=bot, symbols=[symbol]).get(symbol)
            if market is None:
                raise BotError(f"no price for {symbol} (market data unavailable): the position stays open")
            position = trading_position_close(
                bot=bot, position=position, market=market, reason=Position.CloseReason.MANUAL, broker=broker
            )
        except BrokerError as exc:
            raise BotError(f"the exchange could not close the position ({exc}); it stays open") from None
        finally:
            if broker is not None:
                broker.close()
        closed = position.status == Position.Status.CLOSED
        if closed and user is not None:
            Position.objects.filter(pk=position.pk, close_reason=Position.CloseReason.MANUAL).update(closed_by=user)
        order_status = (
            Order.objects.filter(position=position, intent=Order.Intent.CLOSE)
            .order_by("-pk")
            .values_list("status", flat=True)
            .first()
            or ""
        )
    finally:
        bot_lease_release(bot_id=bot.pk, owner=owner)
    logger.info("position %s of bot %s closed manually by user %s", position.pk, bot.pk, getattr(user, "pk", None))
    return CloseResult(
        position_id=position.pk,
        symbol=symbol,
        closed=closed,
        exit_price=position.exit_price,
        net_pnl=position.realized_pnl - position.fees if closed else None,
        order_status=order_status,
    )


# --- Lease -----------------------------------------------------------------------------------------


def lease_seconds() -> int:
    # Longer than a cycle may run (Celery kills it at CYCLE_TIME_LIMIT), so a lease outlives its
    # holder only when the worker died; then it expires and the bot runs again.
    return int(settings.CYCLE_TIME_LIMIT) + 30


def bot_lease_acquire(*, bot_id: int, owner: str, wait_seconds: float = 0.0) -> bool:
    """Take the bot's lease (one cycle or command at a time); True if taken."""
    deadline = time.monotonic() + wait_seconds
    while True:
        now = timezone.now()
        # Conditional UPDATE: 0 rows means someone else holds an unexpired lease.
        taken = Bot.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner), pk=bot_id
        ).update(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds()))
        if taken or time.monotonic() >= deadline:
            return bool(taken)
        time.sleep(0.2)


def bot_lease_release(*, bot_id: int, owner: str) -> None:
    Bot.objects.filter(pk=bot_id, lease_owner=owner).update(lease_owner="", lease_until=None)


# --- Dispatcher ------------------------------------------------------------------------------------

DISPATCH_BATCH = 1000


def bots_dispatch_due(*, now: datetime, enqueue: Callable[[int, datetime, int], None]) -> list[tuple[int, datetime]]:
    """Claim every due bot for its slot and enqueue its cycle; returns the (bot, slot) pairs claimed.

    Due: active bots, paused bots with an open position (their stops and targets are still
    watched) and stopped bots with an open position (a stop that could not finish: close-out),
    whose `next_cycle_at` has come (index `bot_due`). Each claim is a conditional
    UPDATE on the slot we read; 0 rows means another dispatcher claimed it first.
    """
    open_position = Position.objects.filter(bot=OuterRef("pk"), status=Position.Status.OPEN)
    due = list(
        Bot.objects.filter(next_cycle_at__lte=now)
        .filter(
            Q(status=Bot.Status.ACTIVE) | Q(Exists(open_position), status__in=(Bot.Status.PAUSED, Bot.Status.STOPPED))
        )
        .order_by("next_cycle_at")
        .values_list("pk", "next_cycle_at", "interval_seconds")[:DISPATCH_BATCH]
    )
    claimed: list[tuple[int, datetime]] = []
    for bot_id, slot, interval in due:
        assert slot is not None
        try:
            won = Bot.objects.filter(pk=bot_id, next_cycle_at=slot).update(
                next_cycle_at=next_slot_after(slot=slot, interval_seconds=interval, now=now)
            )
        except (ArithmeticError, ValueError):
            # One bad row must not stop the tick: every other bot's exits depend on it.
            logger.exception("bot %s cannot be scheduled (interval %r s)", bot_id, interval)
            continue
        if won:
            enqueue(bot_id, slot, interval)
            claimed.append((bot_id, slot))
    if claimed:
        logger.info("dispatched %d cycle(s)", len(claimed))
    return claimed
