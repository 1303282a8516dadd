"""The live trading cycle: one bot, one slot, driven from the wall clock (the stages: bots.stages).

`run_cycle` holds the bot's lease, finds or writes the (bot, slot) cycle row, and runs the stages
with the live inputs: the shared market data fetch, the bot's decision maker, trading.risk, the
paper or live executor over the account's database books, the `Cycle` row as the record and the
WebSocket streams as the publisher.

Guarantees (each has a test in tests/bots/):
- At most once per slot: the (bot, slot) row is unique; a duplicate delivery finds it finished
  and returns. A cycle left `running` by a dead worker is resumed by the next delivery of the
  same slot once its lease expired: the stored decision and the already written orders are reused,
  so nothing is decided or ordered twice.
- No overlap: the bot's lease is held for the whole cycle.
- No slow I/O in transactions: market data, the decision maker and the exchange are called with
  no transaction open; each database write is its own short transaction.
- Exits first: stop-loss/take-profit/liquidation are checked from candle highs/lows before the
  decision maker is asked, so they work when every LLM is down.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from alerts import realtime
from alerts.services import AlertKind, Event, Severity, alert_raise
from bots.decisions import DecisionOutcome
from bots.exceptions import BotError
from bots.llm_costs import CostConversion
from bots.models import Bot, Cycle, LLMCall
from bots.providers import get_decision_maker
from bots.services import (
    bot_add_llm_usage,
    bot_close_out,
    bot_count_failure,
    bot_lease_acquire,
    bot_lease_release,
    bot_reset_failures,
    bot_status_now,
    bot_trip_breaker,
    broker_for_bot,
)
from bots.stages import Clock, CycleContext, Timer, run_trade_stages
from marketdata.exceptions import FeedError
from marketdata.services import snapshot_build
from marketdata.types import MarketSnapshot
from trading import risk
from trading.books import DatabaseBooks
from trading.brokers.base import BrokerError
from trading.executors import Executor, executor_for
from trading.models import Position
from trading.numbers import money, plain
from trading.services import ExitEvent

logger = logging.getLogger(__name__)


def run_cycle(*, bot_id: int, slot: datetime) -> Cycle:
    """Run (or resume, or skip) the cycle of `bot_id` for `slot`; safe to call any number of times."""
    # The lease owner names the slot, so a delivery that finds the lease taken can tell a
    # duplicate of its own slot (nothing to do) from an overlap with another cycle or a stop.
    slot_key = f"cycle:{int(slot.timestamp())}:"
    owner = f"{slot_key}{uuid.uuid4().hex[:12]}"
    if not bot_lease_acquire(bot_id=bot_id, owner=owner):
        return _lease_taken(bot_id=bot_id, slot=slot, slot_key=slot_key)
    try:
        # The owner too: the LLM's budget per user and fair share are theirs (bots.rules).
        bot = Bot.objects.select_related("exchange_account", "owner").get(pk=bot_id)
        cycle = _cycle_row(bot=bot, slot=slot)
        if cycle.status != Cycle.Status.RUNNING:
            logger.info("cycle %s of bot %s already %s", slot.isoformat(), bot_id, cycle.status)
            return cycle
        if bot.status == Bot.Status.STOPPED and bot.positions.filter(status=Position.Status.OPEN).exists():
            return _run_close_out(bot=bot, cycle=cycle)
        if bot.status not in (Bot.Status.ACTIVE, Bot.Status.PAUSED):
            return _finish(cycle, bot=bot, status=Cycle.Status.SKIPPED, error=f"skipped: the bot is {bot.status}")
        return _run(bot=bot, cycle=cycle, lease_owner=owner)
    finally:
        bot_lease_release(bot_id=bot_id, owner=owner)


def _lease_taken(*, bot_id: int, slot: datetime, slot_key: str) -> Cycle:
    holder = Bot.objects.filter(pk=bot_id).values_list("lease_owner", flat=True).first() or ""
    existing = Cycle.objects.filter(bot_id=bot_id, slot=slot).first()
    if existing is not None or holder.startswith(slot_key):
        # A duplicate delivery of a slot another worker is running (or has run).
        return existing or Cycle(bot_id=bot_id, slot=slot, status=Cycle.Status.RUNNING, started_at=timezone.now())
    now = timezone.now()
    cycle, _ = Cycle.objects.get_or_create(
        bot_id=bot_id,
        slot=slot,
        defaults={
            "status": Cycle.Status.SKIPPED,
            "error": f"skipped: the bot was busy ({holder.split(':')[0] or 'lease'} still running)",
            "started_at": now,
            "finished_at": now,
        },
    )
    return cycle


def _cycle_row(*, bot: Bot, slot: datetime) -> Cycle:
    """The slot's cycle: new, resumed (left running by a dead worker) or already finished."""
    kind = Cycle.Kind.TRADE
    if bot.status == Bot.Status.PAUSED:
        kind = Cycle.Kind.PROTECT
    elif bot.status == Bot.Status.STOPPED:
        kind = Cycle.Kind.CLOSE_OUT
    try:
        cycle, created = Cycle.objects.get_or_create(
            bot=bot, slot=slot, defaults={"kind": kind, "started_at": timezone.now()}
        )
    except IntegrityError:
        cycle, created = Cycle.objects.get(bot=bot, slot=slot), False
    if created or cycle.status != Cycle.Status.RUNNING:
        return cycle
    # Running, yet we hold the lease: its worker died mid-cycle. Resume it.
    Cycle.objects.filter(pk=cycle.pk).update(attempts=F("attempts") + 1)
    cycle.attempts += 1
    logger.warning("resuming interrupted cycle %s of bot %s (attempt %d)", cycle.pk, bot.pk, cycle.attempts)
    return cycle


def _run(*, bot: Bot, cycle: Cycle, lease_owner: str) -> Cycle:
    timer = Timer()
    executor: Executor | None = None
    try:
        books = DatabaseBooks(bot_id=bot.pk, publisher=realtime)
        executor = executor_for(bot_id=bot.pk, broker=broker_for_bot(bot=bot), books=books)
        ctx = CycleContext(
            bot=bot,
            cycle=cycle,
            clock=Clock(slot=cycle.slot),
            market=LiveMarket(),
            decision_maker=get_decision_maker,
            risk=risk,
            executor=executor,
            recorder=DatabaseRecorder(),
            control=LiveControl(bot=bot, lease_owner=lease_owner),
            publisher=realtime,
            timer=timer,
        )
        return run_trade_stages(ctx)
    except Exception as exc:
        if isinstance(exc, (FeedError, BrokerError, BotError)):
            # An outside service or the bot's setup, said in the message: no traceback to read.
            logger.warning("cycle %s of bot %s failed: %s", cycle.pk, bot.pk, exc)
        else:
            logger.exception("cycle %s of bot %s failed", cycle.pk, bot.pk)
        error = f"{type(exc).__name__}: {exc}"
        bot_count_failure(bot=bot, error=error)
        return _finish(cycle, bot=bot, status=Cycle.Status.FAILED, error=error, timings=timer.finish())
    finally:
        if executor is not None:
            executor.close()


def _finish(cycle: Cycle, *, bot: Bot, status: str, error: str = "", timings: dict[str, int] | None = None) -> Cycle:
    DatabaseRecorder().finish(cycle, status=status, error=error, timings=timings)
    realtime.publish_cycle(cycle, owner_id=bot.owner_id)
    return cycle


def _run_close_out(*, bot: Bot, cycle: Cycle) -> Cycle:
    """A stopped bot that still holds positions (its stop could not finish): close them."""
    timer = Timer()
    try:
        with timer.stage("execution"):
            closed, realized, _ = bot_close_out(bot=bot)
        with timer.stage("record"):
            bot.refresh_from_db()
            DatabaseBooks(bot_id=bot.pk).record_equity(
                prices={},
                llm_cost=bot.llm_cost_total,
                llm_cost_quote=bot.llm_cost_quote_total,
                llm_cost_unconverted=bot.llm_cost_unconverted_total,
                cycle_id=cycle.pk,
            )
        if closed:
            alert_raise(
                owner_id=bot.owner_id,
                bot_id=bot.pk,
                kind=AlertKind.SYSTEM,
                event=Event.BOT_STOPPED,
                message=f"{bot.name}: stop completed, {closed} position(s) closed, realized PnL after fees {money(realized, currency=bot.quote_currency)}",
                payload={"closed_positions": closed, "realized_pnl": str(realized)},
            )
        return _finish(cycle, bot=bot, status=Cycle.Status.COMPLETED, timings=timer.finish())
    except Exception as exc:
        logger.exception("close-out cycle %s of bot %s failed", cycle.pk, bot.pk)
        return _finish(
            cycle, bot=bot, status=Cycle.Status.FAILED, error=f"{type(exc).__name__}: {exc}", timings=timer.finish()
        )


# --- The live inputs of the stages -----------------------------------------------------------------


class LiveMarket:
    """The shared, cached fetch every bot of a slot reads (marketdata.services.snapshot_build)."""

    def snapshot(self, *, exchange: str, symbols: list[str], timeframe: str, slot: datetime) -> MarketSnapshot:
        return snapshot_build(exchange=exchange, symbols=symbols, timeframe=timeframe, slot=slot)


class DatabaseRecorder:
    """The cycle's record as its `Cycle` row (and its `LLMCall` rows), each write at once."""

    def market(self, cycle: Cycle, snapshot: MarketSnapshot) -> None:
        cycle.snapshot = snapshot.data
        cycle.snapshot_hash = snapshot.hash
        cycle.market_time = snapshot.market_time
        cycle.save(update_fields=["snapshot", "snapshot_hash", "market_time"])

    def kind(self, cycle: Cycle, *, kind: str, error: str) -> None:
        cycle.kind = kind
        cycle.error = error
        cycle.save(update_fields=["kind", "error"])

    def decision(self, cycle: Cycle, outcome: DecisionOutcome, conversion: CostConversion | None) -> None:
        if outcome.calls:
            LLMCall.objects.bulk_create(
                [
                    LLMCall(
                        cycle=cycle,
                        bot_id=cycle.bot_id,
                        provider=c.provider,
                        model=c.model,
                        purpose=c.purpose,
                        status=LLMCall.Status.OK if c.ok else LLMCall.Status.ERROR,
                        attempts=c.attempts,
                        latency_ms=c.latency_ms,
                        input_tokens=c.input_tokens,
                        output_tokens=c.output_tokens,
                        cost=c.cost,
                        **(conversion.call_fields(c.cost) if conversion is not None else {}),
                        error=_text(c.error)[:4000],
                    )
                    for c in outcome.calls
                ]
            )
        cycle.prompt_version = _text(outcome.prompt_version)
        cycle.prompt = _text(outcome.prompt)
        cycle.raw_output = _text(outcome.raw_output)
        cycle.decision = None if outcome.skipped_reason else outcome.decision.model_dump(mode="json")
        cycle.decision_error = _text(outcome.error)[:4000]
        cycle.input_tokens = outcome.input_tokens
        cycle.output_tokens = outcome.output_tokens
        cycle.llm_cost = outcome.cost
        cycle.llm_latency_ms = outcome.latency_ms
        cycle.save(
            update_fields=[
                "prompt_version",
                "prompt",
                "raw_output",
                "decision",
                "decision_error",
                "input_tokens",
                "output_tokens",
                "llm_cost",
                "llm_latency_ms",
            ]
        )

    def risk(self, cycle: Cycle, record: dict[str, Any]) -> None:
        cycle.risk = record
        cycle.save(update_fields=["risk"])

    def finish(self, cycle: Cycle, *, status: str, error: str, timings: dict[str, int] | None) -> None:
        cycle.status = status
        cycle.finished_at = timezone.now()
        if error:
            cycle.error = error[:4000]
        update = ["status", "finished_at", "error"]
        if timings is not None:
            cycle.timings = timings
            update.append("timings")
        cycle.save(update_fields=update)


def _text(value: str) -> str:
    """Text for PostgreSQL, which refuses NUL characters (models do emit them)."""
    return value.replace("\x00", "")


class LiveControl:
    """The live bot's side of a cycle: its lease and row (bots.services) and its owner's alerts."""

    def __init__(self, *, bot: Bot, lease_owner: str) -> None:
        self.bot = bot
        self.lease_owner = lease_owner

    def extend_lease(self) -> None:
        bot_lease_acquire(bot_id=self.bot.pk, owner=self.lease_owner)

    def status(self) -> str | None:
        return bot_status_now(bot=self.bot)

    def trip_breaker(self, *, breaker: str, reason: str) -> None:
        bot_trip_breaker(bot=self.bot, breaker=breaker, reason=reason)

    def count_failure(self, *, error: str) -> None:
        bot_count_failure(bot=self.bot, error=error)

    def reset_failures(self) -> None:
        bot_reset_failures(bot=self.bot)

    def add_llm_usage(self, outcome: DecisionOutcome, conversion: CostConversion | None) -> None:
        if outcome.calls:
            bot_add_llm_usage(
                bot=self.bot,
                cost=outcome.cost,
                input_tokens=outcome.input_tokens,
                output_tokens=outcome.output_tokens,
                converted=conversion.bot_totals([c.cost for c in outcome.calls]) if conversion is not None else {},
            )

    def exit_hit(self, event: ExitEvent) -> None:
        bot = self.bot
        label = {"stop_loss": "stop-loss", "take_profit": "take-profit", "liquidation": "liquidation"}.get(
            event.reason, event.reason
        )
        alert_raise(
            owner_id=bot.owner_id,
            bot_id=bot.pk,
            kind=AlertKind.TRADE,
            severity=Severity.CRITICAL if event.reason == "liquidation" else Severity.INFO,
            message=f"{bot.name}: {event.symbol} closed by {label} at {plain(event.price)}",
            payload={
                "reason": event.reason,
                "symbol": event.symbol,
                "price": str(event.price),
                "position_id": event.position_id,
            },
            event=Event.POSITION_CLOSED,
            # The same fact the alert evaluator reads from the fills: whichever tells first, tells once.
            dedupe_key=f"position:{event.position_id}",
        )

    def budget_reached(self, *, reason: str) -> None:
        bot = self.bot
        # The bot's own budget, or the operator's budget per user that all the owner's bots share.
        per_user = "your bots" in reason
        whose = (
            "your bots reached this platform's daily LLM limit per user"
            if per_user
            else "it reached its daily LLM budget"
        )
        # Once a day is enough: per bot, or per user for the limit all the owner's bots share.
        today = timezone.now().date().isoformat()
        dedupe = f"llm_budget_user:{bot.owner_id}:{today}" if per_user else f"llm_budget:{bot.pk}:{today}"
        alert_raise(
            owner_id=bot.owner_id,
            bot_id=bot.pk,
            kind=AlertKind.RISK,
            severity=Severity.WARNING,
            message=f"{bot.name} holds until 00:00 UTC: {whose} ({reason})",
            payload={"llm_budget": True, "breaker": "llm_budget", "reason": reason},
            event=Event.BREAKER_TRIPPED,
            dedupe_key=dedupe,
        )
