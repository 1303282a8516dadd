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
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, ProtectedError, Q
from django.utils import timezone

from alerts import realtime
from alerts.services import AlertKind, Event, Severity, alert_raise
from bots import rules
from bots.exceptions import BotBusy, BotConfigurationError, BotError, InvalidTransition
from bots.llm_costs import LLM_TOTALS
from bots.marks import stop_mark_record
from bots.models import Bot
from bots.providers import BASELINE
from marketdata.services import markets_now
from trading.brokers import broker_for_account
from trading.brokers.base import Broker, BrokerError
from trading.executors import executor_for
from trading.models import ExchangeAccount, Order, Position
from trading.numbers import money
from trading.services import (
    exchange_account_save,
    orders_cancel_open,
    positions_close_all,
    trading_account_fund,
    trading_account_open,
)
from trading.services import position_close as trading_position_close

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
    """Create a bot (inactive) with its paper account funded with the starting capital.

    Held to the operator's caps (bots.rules): a new LLM bot that names no daily budget gets the
    default one, and a user at the bots-per-user cap is refused (BotConfigurationError)."""
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    if "llm_daily_budget" not in fields:
        fields["llm_daily_budget"] = rules.default_llm_budget(provider=fields.get("provider") or BASELINE)
    bot = Bot(owner=owner, **fields)
    bot.full_clean()
    _ensure_caps(bot=bot, changed=fields)
    with transaction.atomic():
        # The owner's row, locked: two creates at once cannot both take the last bot of the cap.
        User.objects.select_for_update().filter(pk=owner.pk).exists()
        problem = rules.bots_per_user_problem(owner=owner)
        if problem:
            raise BotConfigurationError(problem)
        bot.save()
        trading_account_open(
            bot_id=bot.pk, owner_id=bot.owner_id, capital=bot.starting_capital, today=timezone.now().date()
        )
    return bot


def bot_update(*, bot: Bot, data: dict[str, Any]) -> Bot:
    """Change a bot's settings; capital, mode and account are frozen once it has run, and the
    markets of an open position cannot be taken away from it."""
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS and getattr(bot, k) != v}
    problem = rules.change_problem(bot=bot, fields=fields)
    if problem:
        raise BotConfigurationError(problem)
    has_run = bot.cycles.exists()
    if (
        "provider" in fields
        and "llm_daily_budget" not in data
        and bot.llm_daily_budget is None
        and bot.provider == BASELINE
    ):
        # A baseline becoming an LLM bot is a new LLM bot: it gets the default budget too.
        fields["llm_daily_budget"] = rules.default_llm_budget(provider=fields["provider"])
    for key, value in fields.items():
        setattr(bot, key, value)
    _ensure_caps(bot=bot, changed=fields)
    update = [*fields, "updated_at"]
    if ("mode" in fields or "exchange_account" in fields) and data.get("live_confirmed") is not True:
        # A switch of where the bot trades must be confirmed again (at start, or by the admin
        # form's confirmation box ticked in the same edit).
        bot.live_confirmed = False
        update.append("live_confirmed")
    bot.full_clean()
    with transaction.atomic():
        # Only the fields that changed: the row's state (status, lease) moves under us while a
        # request is validated, and writing back a stale copy would undo a breaker.
        bot.save(update_fields=update)
        if "starting_capital" in fields and not has_run:
            trading_account_fund(bot_id=bot.pk, capital=bot.starting_capital)
    if "interval_seconds" in fields:
        Bot.objects.filter(pk=bot.pk, status=Bot.Status.ACTIVE).update(next_cycle_at=first_slot(bot=bot))
    return bot


def _ensure_caps(*, bot: Bot, changed: Any) -> None:
    """The operator's per-bot caps, for the fields being set (every surface saves through here)."""
    errors = rules.cap_problems(value=lambda name: getattr(bot, name), changed=set(changed))
    if errors:
        raise ValidationError(errors)


def bot_delete(*, bot: Bot) -> None:
    """Delete a bot that never ran (the API and the admin both delete through here); a bot with
    books is refused (InvalidTransition, 409): the books are append-only."""
    problem = rules.delete_problem(bot=bot)
    if problem:
        raise InvalidTransition(problem)
    try:
        with transaction.atomic():
            bot.delete()
    except (ProtectedError, IntegrityError):
        # Its first cycle started between the check and the delete: the books protect it.
        raise InvalidTransition(rules.delete_problem(bot=bot) or "the bot has started trading") from None


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
    rules.ensure_startable(bot=bot, confirm_live=confirm_live)
    extra: dict[str, Any] = {
        "next_cycle_at": first_slot(bot=bot),
        "consecutive_failures": 0,
    }
    if bot.mode == Bot.Mode.LIVE:
        extra["live_confirmed"] = True
    return _transition(bot=bot, allowed_from=(Bot.Status.INACTIVE, Bot.Status.PAUSED), to=Bot.Status.ACTIVE, **extra)


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
    stopped_now = False
    # Whether there is anything to close: if so, the stop that closes it tells the owner.
    held = rules.holds_anything(bot=bot)
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
        if closed:
            # No cycle follows a stop: mark the account after the close (bots.marks).
            bot.refresh_from_db()
            stop_mark_record(bot=bot)
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
        if user is not None:
            # Who asked, written while the position is still open: a closed position is final
            # (trading.ledger_guards), and a close that fails takes it back below.
            Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(closed_by=user)
        executor = None
        try:
            executor = executor_for(bot_id=bot.pk, broker=broker_for_bot(bot=bot))
            market = markets_now(
                exchange=bot.exchange, symbols=[symbol], timeframe=bot.timeframe, now=timezone.now()
            ).get(symbol)
            if market is None:
                raise BotError(f"no price for {symbol} (market data unavailable): the position stays open")
            position = trading_position_close(
                executor=executor, position=position, market=market, reason=Position.CloseReason.MANUAL
            )
        except BrokerError as exc:
            Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(closed_by=None)
            raise BotError(f"the exchange could not close the position ({exc}); it stays open") from None
        except BaseException:
            Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(closed_by=None)
            raise
        finally:
            if executor is not None:
                executor.close()
        closed = position.status == Position.Status.CLOSED
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


# --- Close-out (stop) ------------------------------------------------------------------------------


def broker_for_bot(*, bot: Bot) -> Broker | None:
    """The live broker of a live bot; None for paper (its executor is trading.executors.PaperExecutor)."""
    if bot.mode != Bot.Mode.LIVE or bot.exchange_account is None:
        return None
    return broker_for_account(bot.exchange_account)


def bot_close_out(*, bot: Bot) -> tuple[int, Decimal, int]:
    """Cancel the bot's open orders and close its positions at market; (closed, realized, canceled).

    The caller holds the bot's lease. No decision maker is involved. Exchange failures become a
    BotError (the bot stays stopped; the dispatcher retries the close-out).
    """
    executor = None
    try:
        executor = executor_for(bot_id=bot.pk, broker=broker_for_bot(bot=bot))
        canceled = orders_cancel_open(executor=executor)
        open_symbols = sorted({p.symbol for p in executor.books.open_positions()})
        markets = (
            markets_now(exchange=bot.exchange, symbols=open_symbols, timeframe=bot.timeframe, now=timezone.now())
            if open_symbols
            else {}
        )
        closed, realized = positions_close_all(
            executor=executor, markets=markets, reason=Position.CloseReason.BOT_STOPPED
        )
    except BrokerError as exc:
        raise BotError(f"the exchange could not close the positions ({exc}); the close-out is retried") from None
    finally:
        if executor is not None:
            executor.close()
    if not bot.positions.filter(status=Position.Status.OPEN).exists():
        Bot.objects.filter(pk=bot.pk, status=Bot.Status.STOPPED).update(next_cycle_at=None)
    return closed, realized, canceled


# --- What a cycle records on its bot -------------------------------------------------------------


def bot_count_failure(*, bot: Bot, error: str) -> None:
    """One more failed cycle; enough in a row trip the repeated-failure breaker."""
    Bot.objects.filter(pk=bot.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    bot.refresh_from_db(fields=["consecutive_failures", "status"])
    if bot.consecutive_failures >= settings.BOT_MAX_CONSECUTIVE_FAILURES:
        bot_trip_breaker(
            bot=bot,
            breaker="failures",
            reason=f"{bot.consecutive_failures} cycles in a row failed; last error: {error[:200]}",
        )


def bot_reset_failures(*, bot: Bot) -> None:
    """A cycle completed: the repeated-failure count starts again."""
    if bot.consecutive_failures:
        Bot.objects.filter(pk=bot.pk).update(consecutive_failures=0)


def bot_add_llm_usage(
    *, bot: Bot, cost: Decimal, input_tokens: int, output_tokens: int, converted: dict[str, Any] | None = None
) -> None:
    """Add a cycle's LLM calls to the bot's running totals (the leaderboard reads them unaggregated);
    `converted` adds to the totals in the quote currency (bots.llm_costs.CostConversion.bot_totals)."""
    Bot.objects.filter(pk=bot.pk).update(
        llm_cost_total=F("llm_cost_total") + cost,
        llm_input_tokens_total=F("llm_input_tokens_total") + input_tokens,
        llm_output_tokens_total=F("llm_output_tokens_total") + output_tokens,
        **(converted or {}),
    )
    bot.refresh_from_db(fields=[*LLM_TOTALS])


def bot_status_now(*, bot: Bot) -> str | None:
    """The bot's status as stored now (a stop or a breaker may have changed it during the cycle)."""
    return Bot.objects.filter(pk=bot.pk).values_list("status", flat=True).first()


# --- Exchange accounts ---------------------------------------------------------------------------


def exchange_account_update(*, account: ExchangeAccount, data: dict[str, Any]) -> ExchangeAccount:
    """Create or change an exchange account (the API and the admin both save through here).

    Refused (ValidationError, a 400 in the API) while live bots use it and its exchange or testnet
    would change. An account that leaves its testnet moves its live bots from test money to real
    money: each must be confirmed again, and the running ones pause until their owner does.
    """
    problem = rules.exchange_account_live_bots_problem(
        account=account,
        exchange=data.get("exchange", account.exchange),
        testnet=data.get("testnet", account.testnet),
    )
    if problem:
        raise ValidationError({"exchange": problem})
    account, left_testnet = exchange_account_save(account=account, data=data)
    if left_testnet:
        live = Bot.objects.filter(exchange_account_id=account.pk, mode=Bot.Mode.LIVE)
        live.update(live_confirmed=False)
        for bot in live.filter(status=Bot.Status.ACTIVE):
            _transition_quietly(bot=bot, reason="the exchange account left its testnet: confirm live trading again")
    return account


def _transition_quietly(*, bot: Bot, reason: str) -> None:
    try:
        _transition(bot=bot, allowed_from=(Bot.Status.ACTIVE,), to=Bot.Status.PAUSED, reason=reason)
    except InvalidTransition:
        pass  # paused or stopped meanwhile: nothing left to pause


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
